//! Access tokens for `/mcp`: JWTs (RFC 9068 profile, `typ: at+jwt`) signed HS256 with a key
//! derived from `SECRET_KEY`, valid one hour, `aud` the `/mcp` resource. Only Gatehouse reads
//! them, so a shared-secret signature is enough and no key is published. Each carries its
//! family (`fam`): a revoked session, a deleted client or a revoked token is refused even
//! before the token expires (checked against the database, remembered for five seconds).

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::server::clock::UnixTime;
use crate::server::db::{Db, DbError};
use crate::server::secrets::{MasterKey, random_id};

pub const ACCESS_TOKEN_TTL_SECS: i64 = 60 * 60;
const TYP: &str = "at+jwt";
const LEEWAY_SECS: i64 = 60;
const MAX_TOKEN_LEN: usize = 4096;
const LIVENESS_CACHE_SECS: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// The family (authorization) the token was issued from.
    pub fam: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    #[error("The access token has expired.")]
    Expired,
    #[error("The access token is not valid.")]
    Invalid,
    #[error("The access token has been revoked.")]
    Revoked,
}

const ACCESS_KEY_PURPOSE: &str = "gatehouse/mcp-access-token/v1";

pub struct AccessTokenKeys {
    encoding: EncodingKey,
    /// The current key's first, then those of `SECRET_KEY_PREVIOUS`.
    decoding: Vec<DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl AccessTokenKeys {
    pub fn new(master: &MasterKey, issuer: &str, audience: &str) -> Self {
        AccessTokenKeys::with_previous(master, &[], issuer, audience)
    }

    pub fn with_previous(
        master: &MasterKey,
        previous: &[MasterKey],
        issuer: &str,
        audience: &str,
    ) -> Self {
        let key = master.derive(ACCESS_KEY_PURPOSE);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        AccessTokenKeys {
            encoding: EncodingKey::from_secret(&key),
            decoding: std::iter::once(master)
                .chain(previous)
                .map(|m| DecodingKey::from_secret(&m.derive(ACCESS_KEY_PURPOSE)))
                .collect(),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        }
    }

    pub fn issue(
        &self,
        subject: &str,
        client_id: &str,
        scope: &str,
        family: &str,
        now: UnixTime,
    ) -> (String, AccessClaims) {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.to_string(),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            jti: random_id(),
            iat: now,
            exp: now + ACCESS_TOKEN_TTL_SECS,
            fam: family.to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TYP.to_string());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, claims)
    }

    /// Signature, algorithm, type, issuer, audience and expiry. Liveness is checked apart.
    pub fn verify(&self, token: &str, now: UnixTime) -> Result<AccessClaims, AccessTokenError> {
        let claims = self.verify_ignoring_expiry(token)?;
        if claims.iat > now + LEEWAY_SECS {
            return Err(AccessTokenError::Invalid);
        }
        if claims.exp <= now {
            return Err(AccessTokenError::Expired);
        }
        Ok(claims)
    }

    /// For revocation, where an expired token is still recognised.
    pub fn verify_ignoring_expiry(&self, token: &str) -> Result<AccessClaims, AccessTokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(AccessTokenError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AccessTokenError::Invalid)?;
        if header.alg != Algorithm::HS256 || header.typ.as_deref() != Some(TYP) {
            return Err(AccessTokenError::Invalid);
        }
        let claims = self
            .decoding
            .iter()
            .find_map(|key| jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).ok())
            .ok_or(AccessTokenError::Invalid)?
            .claims;
        if claims.iat > claims.exp {
            return Err(AccessTokenError::Invalid);
        }
        Ok(claims)
    }
}

/// Families (and tokens) known to be alive, for a few seconds: a busy client costs one
/// database lookup per few seconds. Revocations clear it at once: those made here directly,
/// those of other replicas when they are heard of (`OAUTH_REVOKED`).
#[derive(Debug, Default)]
pub struct Liveness {
    alive: Mutex<Alive>,
}

#[derive(Debug, Default)]
struct Alive {
    /// jti → (client name, checked at).
    map: HashMap<String, (Option<String>, UnixTime)>,
    /// Bumped by every revocation, so that a lookup that started before one cannot store
    /// "alive" over it.
    generation: u64,
}

impl Liveness {
    /// The client's name when the token's family, client and the token itself are alive.
    pub async fn check(
        &self,
        db: &Db,
        claims: &AccessClaims,
        now: UnixTime,
    ) -> Result<Result<Option<String>, AccessTokenError>, DbError> {
        let generation = {
            let alive = self.alive.lock().expect("liveness lock");
            if let Some((name, at)) = alive.map.get(&claims.jti)
                && now >= *at
                && now - at < LIVENESS_CACHE_SECS
            {
                return Ok(Ok(name.clone()));
            }
            alive.generation
        };
        let Some(live) = db.family_liveness(&claims.fam, &claims.jti).await? else {
            return Ok(Err(AccessTokenError::Revoked));
        };
        if live.revoked_at.is_some() || live.jti_revoked > 0 {
            return Ok(Err(AccessTokenError::Revoked));
        }
        let mut alive = self.alive.lock().expect("liveness lock");
        if alive.generation == generation {
            if alive.map.len() >= 10_000 {
                alive
                    .map
                    .retain(|_, (_, at)| now - *at < LIVENESS_CACHE_SECS);
            }
            alive
                .map
                .insert(claims.jti.clone(), (live.client_name.clone(), now));
        }
        Ok(Ok(live.client_name))
    }

    pub fn forget_all(&self) {
        let mut alive = self.alive.lock().expect("liveness lock");
        alive.map.clear();
        alive.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const NOW: i64 = 1_800_000_000;

    fn keys() -> AccessTokenKeys {
        AccessTokenKeys::new(
            &MasterKey::from_bytes(vec![5u8; 32]),
            "https://gh.example.com",
            "https://gh.example.com/mcp",
        )
    }

    #[test]
    fn issue_and_verify() {
        let k = keys();
        let (token, claims) = k.issue("alice@example.com", "c1", "mcp", "fam1", NOW);
        assert_eq!(k.verify(&token, NOW + 10).unwrap(), claims);
        assert_eq!(claims.exp, NOW + 3600);
        assert_eq!(k.verify(&token, NOW + 3600), Err(AccessTokenError::Expired));
        assert!(k.verify_ignoring_expiry(&token).is_ok());
    }

    #[test]
    fn other_audiences_algorithms_and_types_are_refused() {
        let k = keys();
        let master = MasterKey::from_bytes(vec![5u8; 32]);
        let other_aud = AccessTokenKeys::new(
            &master,
            "https://gh.example.com",
            "https://gh.example.com/other",
        );
        let (token, _) = other_aud.issue("a", "c", "mcp", "f", NOW);
        assert_eq!(k.verify(&token, NOW), Err(AccessTokenError::Invalid));
        let other_iss = AccessTokenKeys::new(
            &master,
            "https://evil.example",
            "https://gh.example.com/mcp",
        );
        let (token, _) = other_iss.issue("a", "c", "mcp", "f", NOW);
        assert_eq!(k.verify(&token, NOW), Err(AccessTokenError::Invalid));

        // A session JWT (no at+jwt type) signed with the same derived key is still refused.
        let key = master.derive("gatehouse/mcp-access-token/v1");
        let (_, claims) = k.issue("a", "c", "mcp", "f", NOW);
        let plain = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&key),
        )
        .unwrap();
        assert_eq!(k.verify(&plain, NOW), Err(AccessTokenError::Invalid));

        // alg none.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
            b64.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert_eq!(k.verify(&none, NOW), Err(AccessTokenError::Invalid));
        // HS512 with the right key.
        let mut h = Header::new(Algorithm::HS512);
        h.typ = Some("at+jwt".into());
        let hs512 = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&key)).unwrap();
        assert_eq!(k.verify(&hs512, NOW), Err(AccessTokenError::Invalid));
    }
}
