//! Basic-mode credential checks. Both the username and the password are always compared, in
//! constant time, and argon2 runs on the blocking pool (bounded, so a flood of logins cannot
//! starve the async threads or eat all memory).

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use crate::server::config::{BasicAuthConfig, PasswordCheck};
use crate::server::secrets::{SecretString, constant_time_eq};

/// Longest password accepted at login; argon2 over megabytes is a denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Clone)]
pub struct BasicVerifier {
    config: Arc<BasicAuthConfig>,
    permits: Arc<Semaphore>,
}

impl BasicVerifier {
    pub fn new(config: BasicAuthConfig) -> Self {
        let parallel = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        BasicVerifier {
            config: Arc::new(config),
            permits: Arc::new(Semaphore::new(parallel)),
        }
    }

    /// True when both match. Takes the same path whether the username is right or not.
    pub async fn verify(&self, username: String, password: SecretString) -> bool {
        if username.len() > MAX_PASSWORD_BYTES || password.expose().len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || check(&config, &username, &password))
            .await
            .unwrap_or(false)
    }
}

fn check(config: &BasicAuthConfig, username: &str, password: &SecretString) -> bool {
    let user_ok = constant_time_eq(username, &config.username);
    let pass_ok = match &config.password {
        PasswordCheck::Plain(expected) => constant_time_eq(password.expose(), expected.expose()),
        PasswordCheck::Hash(phc) => match PasswordHash::new(phc.expose()) {
            Ok(hash) => Argon2::default()
                .verify_password(password.expose().as_bytes(), &hash)
                .is_ok(),
            Err(_) => false,
        },
    };
    // `&`, not `&&`: no short cut that would time differently for a wrong username.
    user_ok & pass_ok
}

/// An argon2id PHC string for `AUTH_BASIC_PASSWORD_HASH`.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(password: PasswordCheck) -> BasicVerifier {
        BasicVerifier::new(BasicAuthConfig {
            username: "admin".into(),
            password,
        })
    }

    #[tokio::test]
    async fn plain_password() {
        let v = verifier(PasswordCheck::Plain(SecretString::new("correct horse")));
        assert!(
            v.verify("admin".into(), SecretString::new("correct horse"))
                .await
        );
        assert!(
            !v.verify("admin".into(), SecretString::new("correct horsE"))
                .await
        );
        assert!(!v.verify("admin".into(), SecretString::new("")).await);
        assert!(
            !v.verify("Admin".into(), SecretString::new("correct horse"))
                .await
        );
        assert!(
            !v.verify("admin".into(), SecretString::new("x".repeat(5000)))
                .await
        );
    }

    #[tokio::test]
    async fn hashed_password() {
        let phc = hash_password("s3cret!");
        assert!(phc.starts_with("$argon2id$"));
        let v = verifier(PasswordCheck::Hash(SecretString::new(phc)));
        assert!(v.verify("admin".into(), SecretString::new("s3cret!")).await);
        assert!(!v.verify("admin".into(), SecretString::new("s3cret")).await);
        assert!(!v.verify("root".into(), SecretString::new("s3cret!")).await);
    }
}
