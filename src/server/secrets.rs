//! Secret material: redacted newtypes, randomness, hashing, constant-time comparison and key
//! derivation from `SECRET_KEY`.

pub mod rotation;
pub mod vault;

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A string that must never be printed: its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// A 256-bit random token, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A short random id for rows and error references (128 bits, hex).
pub fn random_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// SHA-256 as lowercase hex: how Gatehouse stores values it issues (state, tokens).
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(data.as_ref()))
}

/// Compares two secrets without leaking where they differ, nor (through hashing first) their
/// lengths.
pub fn constant_time_eq(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    let a = Sha256::digest(a.as_ref());
    let b = Sha256::digest(b.as_ref());
    a.ct_eq(&b).into()
}

/// The minimum length of `SECRET_KEY`, in bytes.
pub const SECRET_KEY_MIN_BYTES: usize = 32;

/// `SECRET_KEY`, from which every other key is derived (HKDF-SHA256, one `info` per use), so
/// that a key for one purpose can never be replayed for another.
#[derive(Clone)]
pub struct MasterKey(Vec<u8>);

impl MasterKey {
    /// Takes the key's bytes as given. The caller checks the length (see `config`).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        MasterKey(bytes.into())
    }

    /// A new random key, hex-encoded as it is written to disk.
    pub fn generate_hex() -> String {
        hex::encode(random_bytes::<32>())
    }

    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(b"gatehouse"), &self.0);
        let mut out = [0u8; 32];
        hk.expand(purpose.as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Seals secrets at rest (provider client secrets and tokens, registration access tokens)
/// with AES-256-GCM under a key derived from `SECRET_KEY`.
///
/// A sealed value reads `gh1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id
/// names the key that sealed it, so a later `SECRET_KEY` rotation can keep old keys for
/// opening while sealing with the new one. The caller's `context` (for example
/// `connection/<id>/refresh_token`) is authenticated but not stored: a sealed value copied
/// to another row or column does not open there.
#[derive(Clone)]
pub struct Sealer {
    current: SealKey,
    previous: Vec<SealKey>,
}

#[derive(Clone)]
struct SealKey {
    id: String,
    cipher: aes_gcm::Aes256Gcm,
}

impl SealKey {
    fn new(master: &MasterKey, purpose: &str) -> Self {
        use aes_gcm::KeyInit;
        let key = master.derive(purpose);
        // The at-rest key keeps the id label it has always had: stored values name it.
        let id_label = match purpose {
            AT_REST => "gatehouse/seal/key-id".to_string(),
            other => format!("{other}/key-id"),
        };
        SealKey {
            // Identifies the key without revealing anything usable about it.
            id: sha256_hex(master.derive(&id_label))[..8].to_string(),
            cipher: aes_gcm::Aes256Gcm::new(&key.into()),
        }
    }
}

/// The key sealing secrets at rest; other purposes derive keys of their own.
const AT_REST: &str = "gatehouse/seal/v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnsealError {
    #[error("the sealed value is malformed")]
    Malformed,
    #[error(
        "the value was sealed with key {0}, which this instance does not have (was SECRET_KEY changed?)"
    )]
    UnknownKey(String),
    #[error(
        "the sealed value does not open with this key and context (tampered, or moved from elsewhere)"
    )]
    Tampered,
}

const SEAL_PREFIX: &str = "gh1";

impl Sealer {
    /// The sealer for secrets at rest (connection secrets and tokens, vault values).
    pub fn new(current: &MasterKey, previous: &[MasterKey]) -> Self {
        Sealer::for_purpose(current, previous, AT_REST)
    }

    /// A sealer whose key serves one other purpose only (values handed to clients, such as
    /// MCP `requestState`), so that what clients can make Gatehouse seal never shares a key
    /// with the secrets at rest.
    pub fn for_purpose(current: &MasterKey, previous: &[MasterKey], purpose: &str) -> Self {
        Sealer {
            current: SealKey::new(current, purpose),
            previous: previous.iter().map(|m| SealKey::new(m, purpose)).collect(),
        }
    }

    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        use aes_gcm::aead::{Aead, Payload};
        let nonce = random_bytes::<12>();
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        format!(
            "{SEAL_PREFIX}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<SecretString, UnsealError> {
        use aes_gcm::aead::{Aead, Payload};
        let mut parts = sealed.splitn(3, '.');
        let (Some(SEAL_PREFIX), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(UnsealError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == kid)
            .ok_or_else(|| UnsealError::UnknownKey(kid.to_string()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| UnsealError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(UnsealError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(12);
        let plaintext = key
            .cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| UnsealError::Tampered)?;
        String::from_utf8(plaintext)
            .map(SecretString::new)
            .map_err(|_| UnsealError::Malformed)
    }

    /// The id of the key new values are sealed with.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Whether `sealed` is under the current key already.
    pub fn is_current(&self, sealed: &str) -> bool {
        let mut parts = sealed.splitn(3, '.');
        parts.next() == Some(SEAL_PREFIX) && parts.next() == Some(self.current.id.as_str())
    }

    /// `sealed` under the current key (`None`: it is already), opened with whichever key it
    /// names, which must be this sealer's.
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<Option<String>, UnsealError> {
        if self.is_current(sealed) {
            return Ok(None);
        }
        let opened = self.open(sealed, context)?;
        Ok(Some(self.seal(opened.expose(), context)))
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer(key {})", self.current.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?}"), "SecretString(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        let k = MasterKey::from_bytes(vec![1u8; 32]);
        assert!(!format!("{k:?}").contains('1'));
    }

    #[test]
    fn tokens_are_256_bits() {
        let t = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_ne!(t, random_token());
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let k = MasterKey::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
        assert_ne!(k.derive("a"), k.derive("b"));
        assert_eq!(k.derive("a"), k.derive("a"));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }

    #[test]
    fn sealing_round_trips_and_binds_the_context() {
        let old = MasterKey::from_bytes(vec![7u8; 32]);
        let new = MasterKey::from_bytes(vec![9u8; 32]);
        let sealer = Sealer::new(&old, &[]);
        let sealed = sealer.seal("refresh-me", "connection/a/refresh_token");
        assert!(sealed.starts_with(&format!("gh1.{}.", sealer.key_id())));
        assert!(!sealed.contains("refresh-me"));
        assert_ne!(
            sealed,
            sealer.seal("refresh-me", "connection/a/refresh_token")
        );
        assert_eq!(
            sealer
                .open(&sealed, "connection/a/refresh_token")
                .unwrap()
                .expose(),
            "refresh-me"
        );
        assert_eq!(
            sealer.open(&sealed, "connection/b/refresh_token"),
            Err(UnsealError::Tampered)
        );
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            sealer.open(
                std::str::from_utf8(&flipped).unwrap(),
                "connection/a/refresh_token"
            ),
            Err(UnsealError::Tampered)
        );
        assert_eq!(sealer.open("plain", "x"), Err(UnsealError::Malformed));

        // After a rotation the old key still opens what it sealed; without it, the error
        // names the missing key.
        let rotated = Sealer::new(&new, std::slice::from_ref(&old));
        assert_ne!(rotated.key_id(), sealer.key_id());
        assert_eq!(
            rotated
                .open(&sealed, "connection/a/refresh_token")
                .unwrap()
                .expose(),
            "refresh-me"
        );
        // A sealer for another purpose has another key: it opens nothing sealed at rest.
        let other = Sealer::for_purpose(&old, &[], "gatehouse/other/v1");
        assert_ne!(other.key_id(), sealer.key_id());
        assert!(other.open(&sealed, "connection/a/refresh_token").is_err());
        // The at-rest key id is the one stored values have always named.
        assert_eq!(
            sealer.key_id(),
            &sha256_hex(old.derive("gatehouse/seal/key-id"))[..8]
        );
        assert!(matches!(
            Sealer::new(&new, &[]).open(&sealed, "connection/a/refresh_token"),
            Err(UnsealError::UnknownKey(_))
        ));
    }
}
