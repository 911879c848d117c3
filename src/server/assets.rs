//! The built site's files (`pkg/`: the WASM bundle, its JavaScript, the stylesheet): served
//! under a fingerprint so that browsers keep them for a year and never ask again, compressed
//! ahead of time where the build made `.br`/`.gz` files, and on the fly otherwise.
//!
//! The fingerprint is computed here, at start-up, from the files that will be served, rather
//! than by cargo-leptos' `hash-files` (which writes a `hash.txt` beside the binary that a
//! deployment copying the binary and the site folder would have to know about).

use std::path::Path;

use sha2::{Digest, Sha256};

/// For fingerprinted files: the name changes whenever the content does.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For what may change under the same name (pages, unversioned files): ask every time.
pub const REVALIDATE: &str = "no-cache";
/// `favicon.ico` and the like: a day.
pub const PUBLIC_FILE: &str = "public, max-age=86400";

/// The version naming the bundle in `pkg`: 16 hex digits of SHA-256 over every file's name and
/// content (not the `.br`/`.gz` copies, which follow from them). `None` without a built site.
pub fn fingerprint(pkg: &Path) -> Option<String> {
    let mut files: Vec<_> = std::fs::read_dir(pkg)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| !matches!(p.extension().and_then(|e| e.to_str()), Some("br" | "gz")))
        .collect();
    if files.is_empty() {
        return None;
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        let content = std::fs::read(&file).ok()?;
        hash.update(file.file_name()?.as_encoded_bytes());
        hash.update((content.len() as u64).to_be_bytes());
        hash.update(&content);
    }
    Some(hex::encode(&hash.finalize()[..8]))
}

/// Whether `segment` can be a fingerprint (checked before it is compared or used in a path).
pub fn is_fingerprint(segment: &str) -> bool {
    segment.len() == 16 && segment.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_the_content_and_ignores_compressed_copies() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(fingerprint(dir.path()), None);
        std::fs::write(dir.path().join("app.js"), "one").unwrap();
        let first = fingerprint(dir.path()).unwrap();
        assert!(is_fingerprint(&first), "{first}");
        std::fs::write(dir.path().join("app.js.br"), "compressed").unwrap();
        assert_eq!(fingerprint(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join("app.js"), "two").unwrap();
        assert_ne!(fingerprint(dir.path()).unwrap(), first);
        assert!(!is_fingerprint("../../etc"));
        assert!(!is_fingerprint("0123456789abcdeZ"));
    }
}
