//! The built site's files: fingerprinted names, negotiated compression, caching headers.
//! (The browser's view, with the real bundle, is end2end/tests/assets.spec.ts.)

use gatehouse::server::config::RawSettings;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, VARY};

use crate::helpers::spawn_app;

/// A site folder like the build's: a bundle of three files, the WASM also precompressed.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("gatehouse.js"),
        "export default function init() {}\n".repeat(50),
    )
    .unwrap();
    std::fs::write(
        pkg.join("gatehouse.css"),
        "body { color: black }\n".repeat(50),
    )
    .unwrap();
    std::fs::write(pkg.join("gatehouse.wasm"), vec![0u8; 4096]).unwrap();
    std::fs::write(pkg.join("gatehouse.wasm.br"), b"precompressed").unwrap();
    std::fs::write(dir.path().join("favicon.ico"), b"icon").unwrap();
    dir
}

#[tokio::test]
async fn the_bundle_is_fingerprinted_compressed_and_kept_for_a_year() {
    let site = site();
    let app = spawn_app(RawSettings {
        site_root: Some(site.path().display().to_string()),
        ..RawSettings::default()
    })
    .await;

    // The page names the bundle by its fingerprint, and is asked for again every time.
    let page = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[CACHE_CONTROL], "no-cache");
    let html = page.text().await.unwrap();
    let start = html.find("/assets/").expect("the page links the bundle") + "/assets/".len();
    let version = &html[start..start + 16];
    assert!(version.bytes().all(|b| b.is_ascii_hexdigit()), "{html}");
    assert!(
        html.contains(&format!("/assets/{version}/pkg/gatehouse.css")),
        "{html}"
    );
    assert!(
        html.contains(&format!("/assets/{version}/pkg/gatehouse.js")),
        "{html}"
    );

    let get = |path: String, encoding: &'static str| {
        app.client
            .get(app.url(&path))
            .header(ACCEPT_ENCODING, encoding)
            .send()
    };
    // Compressed on the fly where the build made no copy, as the browser asks.
    for encoding in ["br", "gzip"] {
        let js = get(format!("/assets/{version}/pkg/gatehouse.js"), encoding)
            .await
            .unwrap();
        assert_eq!(js.status(), StatusCode::OK);
        assert_eq!(js.headers()[CONTENT_ENCODING], encoding);
        assert_eq!(
            js.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(
            js.headers()[VARY]
                .to_str()
                .unwrap()
                .to_ascii_lowercase()
                .contains("accept-encoding")
        );
    }
    // The build's own copy when there is one.
    let wasm = get(format!("/assets/{version}/pkg/gatehouse.wasm"), "gzip, br")
        .await
        .unwrap();
    assert_eq!(wasm.headers()[CONTENT_ENCODING], "br");
    assert_eq!(wasm.bytes().await.unwrap().as_ref(), b"precompressed");
    // Nothing compressed for a client that does not ask.
    let plain = get(format!("/assets/{version}/pkg/gatehouse.css"), "identity")
        .await
        .unwrap();
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());

    // Another build's files are not these; nothing outside the folder is reachable.
    let other = get("/assets/0123456789abcdef/pkg/gatehouse.js".into(), "br")
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let escape = get(
        format!("/assets/{version}/pkg/..%2F..%2Fetc%2Fpasswd"),
        "br",
    )
    .await
    .unwrap();
    assert_eq!(escape.status(), StatusCode::NOT_FOUND);

    // The unversioned names still work, revalidated; other public files are kept a day.
    let unversioned = get("/pkg/gatehouse.css".into(), "identity").await.unwrap();
    assert_eq!(unversioned.status(), StatusCode::OK);
    assert_eq!(unversioned.headers()[CACHE_CONTROL], "no-cache");
    let icon = get("/favicon.ico".into(), "identity").await.unwrap();
    assert_eq!(icon.headers()[CACHE_CONTROL], "public, max-age=86400");

    // Changing the bundle changes the name: a new build is never served from an old cache.
    drop(app);
    std::fs::write(site.path().join("pkg/gatehouse.js"), "export default 2;").unwrap();
    let app = spawn_app(RawSettings {
        site_root: Some(site.path().display().to_string()),
        ..RawSettings::default()
    })
    .await;
    let html = app
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&format!("/assets/{version}/")), "{html}");
}
