//! The OAuth 2.1 authorization server for MCP clients (`MCP_OAUTH_ENABLED=true`): discovery
//! (RFC 8414, RFC 9728), client registration (RFC 7591) and client ID metadata documents,
//! the authorization endpoint with Gatehouse's own login and a consent page, the token
//! endpoint (authorization code with PKCE S256, rotating refresh tokens) and revocation
//! (RFC 7009). Protocol logic lives here; storage in `db::oauth`.

pub mod access_token;
pub mod admin;
pub mod authorize;
pub mod clients;
pub mod consent;
pub mod error;
pub mod http;
pub mod metadata;
pub mod pages;
pub mod token;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use self::access_token::{AccessTokenKeys, Liveness};
use self::clients::ClientCache;
use crate::server::auth::WindowLimiter;
use crate::server::clock::UnixTime;
use crate::server::db::changes::Change;
use crate::server::db::{Db, DbError};
use crate::server::http::Outbound;
use crate::server::secrets::{MasterKey, Sealer, constant_time_eq};
use crate::server::state::AppState;

/// The one scope: use `/mcp`.
pub const SCOPE_MCP: &str = "mcp";
pub const SCOPES_SUPPORTED: [&str; 1] = [SCOPE_MCP];
/// Requested scopes that are about the token, not the resource; accepted and not recorded.
const IGNORED_SCOPES: [&str; 4] = ["offline_access", "openid", "profile", "email"];

pub const CODE_TTL_SECS: i64 = 60;
pub const PENDING_TTL_SECS: i64 = 10 * 60;
pub const REFRESH_TOKEN_TTL_SECS: i64 = 30 * 24 * 60 * 60;
/// A refresh token used again within this long of its first use, while the token it was
/// exchanged for is still unused, is a client retrying after a lost answer (or two requests
/// racing): it is answered with that same successor, so a family never has two live refresh
/// tokens. Any other second use is a replay that ends the session.
pub const REFRESH_REUSE_GRACE_SECS: i64 = 15;
pub const REFRESH_TOKEN_PREFIX: &str = "gatehouse_rt_";
/// Clients registered less than this long ago are flagged on the consent page.
pub const NEW_CLIENT_SECS: i64 = 24 * 60 * 60;

pub struct OAuthServer {
    /// `PUBLIC_URL`'s origin: never taken from a request.
    pub issuer: String,
    /// The canonical `/mcp` URL: the only audience tokens are issued for.
    pub resource: String,
    pub resource_metadata_url: String,
    pub access_tokens: AccessTokenKeys,
    pub liveness: Liveness,
    pub register_limiter: WindowLimiter,
    pub outbound: Outbound,
    csrf_key: [u8; 32],
    /// Of `SECRET_KEY_PREVIOUS`: a consent form shown before the key changed still submits.
    csrf_previous: Vec<[u8; 32]>,
    /// Seals a refresh token's successor for the grace window (see `Db::rotate_refresh`).
    pub successors: Sealer,
    /// Clients as the token endpoint last read them.
    pub clients: ClientCache,
}

const CSRF_PURPOSE: &str = "gatehouse/oauth-consent-csrf/v1";
/// The purpose of the sealer of refresh tokens' successors (`gatehouse rotate-secret-key`
/// re-seals them too).
pub const SUCCESSOR_PURPOSE: &str = "gatehouse/oauth-refresh-successor/v1";

fn csrf_with(key: &[u8; 32], pending_id: &str, subject: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(pending_id.as_bytes());
    mac.update(b"\n");
    mac.update(subject.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Change topic: a family, client or consent was revoked (access tokens must be checked again).
pub const OAUTH_REVOKED: &str = "oauth_revoked";

impl OAuthServer {
    /// Something was revoked: forget which tokens were alive, here and on every replica.
    pub async fn revoked(&self, db: &Db) {
        self.liveness.forget_all();
        self.clients.forget_all();
        db.tell_replicas(OAUTH_REVOKED, None).await;
    }

    /// Another replica's change arrived.
    pub fn on_change(&self, change: &Change) {
        if change.is(OAUTH_REVOKED) {
            self.liveness.forget_all();
            self.clients.forget_all();
        }
    }

    pub fn new(master: &MasterKey, public_origin: &str, outbound: Outbound) -> Self {
        OAuthServer::with_previous(master, &[], public_origin, outbound)
    }

    pub fn with_previous(
        master: &MasterKey,
        previous: &[MasterKey],
        public_origin: &str,
        outbound: Outbound,
    ) -> Self {
        let issuer = public_origin.trim_end_matches('/').to_string();
        let resource = format!("{issuer}/mcp");
        OAuthServer {
            resource_metadata_url: format!("{issuer}/.well-known/oauth-protected-resource/mcp"),
            access_tokens: AccessTokenKeys::with_previous(master, previous, &issuer, &resource),
            liveness: Liveness::default(),
            register_limiter: WindowLimiter::new(20, 60),
            outbound,
            csrf_key: master.derive(CSRF_PURPOSE),
            csrf_previous: previous.iter().map(|m| m.derive(CSRF_PURPOSE)).collect(),
            clients: ClientCache::default(),
            successors: Sealer::for_purpose(master, previous, SUCCESSOR_PURPOSE),
            issuer,
            resource,
        }
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The consent form's CSRF token: a MAC over the pending request and the user, so it
    /// needs no storage and is useless for any other request or user.
    pub fn consent_csrf(&self, pending_id: &str, subject: &str) -> String {
        csrf_with(&self.csrf_key, pending_id, subject)
    }

    pub fn check_consent_csrf(&self, pending_id: &str, subject: &str, presented: &str) -> bool {
        std::iter::once(&self.csrf_key)
            .chain(&self.csrf_previous)
            .any(|key| constant_time_eq(csrf_with(key, pending_id, subject), presented))
    }

    /// Whether a `resource` parameter names `/mcp` (a trailing slash is tolerated).
    pub fn is_our_resource(&self, resource: &str) -> bool {
        resource.trim_end_matches('/') == self.resource
    }
}

/// The scope to grant for a requested one: `mcp`, whatever the client asked, as long as it
/// asked for nothing this server does not know. Token-shaped scopes (`offline_access`,
/// OpenID ones) are accepted and not granted: refresh tokens are always issued.
pub fn grant_scope(requested: Option<&str>) -> Result<String, String> {
    let unknown: Vec<&str> = requested
        .unwrap_or_default()
        .split_whitespace()
        .filter(|s| !SCOPES_SUPPORTED.contains(s) && !IGNORED_SCOPES.contains(s))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "Unknown scope {}; this server grants only \"mcp\".",
            unknown.join(" ")
        ));
    }
    Ok(SCOPE_MCP.to_string())
}

/// Whether `granted` (space-separated) covers everything in `wanted`.
pub fn scope_covers(granted: &str, wanted: &str) -> bool {
    let granted: Vec<&str> = granted.split_whitespace().collect();
    wanted.split_whitespace().all(|s| granted.contains(&s))
}

/// PKCE S256: BASE64URL(SHA256(verifier)) == challenge. Verifiers are 43–128 unreserved
/// characters (RFC 7636 §4.1).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed
        && constant_time_eq(
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            challenge,
        )
}

pub fn is_valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Who an access token of ours speaks for, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The user who approved the client.
    pub subject: String,
    pub client_id: String,
    pub client_name: Option<String>,
    /// The family (authorization) it was issued from.
    pub family: String,
    pub scope: String,
    pub expires_at: UnixTime,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRefusal {
    /// Not one of ours, or the authorization server is off.
    Invalid,
    Expired,
    /// Its session, client or the token itself was revoked.
    Revoked,
}

/// Checks an access token presented to `/mcp`: signature, audience, expiry, and that its
/// session, client and the token itself are still alive.
pub async fn verify_access_token(
    state: &AppState,
    token: &str,
    now: UnixTime,
) -> Result<Result<AccessGrant, AccessRefusal>, DbError> {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return Ok(Err(AccessRefusal::Invalid));
    };
    let claims = match oauth.access_tokens.verify(token, now) {
        Ok(claims) => claims,
        Err(access_token::AccessTokenError::Expired) => return Ok(Err(AccessRefusal::Expired)),
        Err(_) => return Ok(Err(AccessRefusal::Invalid)),
    };
    // The token acts as the person who approved the client: someone who may no longer sign
    // in (`AUTH_OAUTH2_ALLOWED_*`) is refused at once, as their sessions and API tokens are.
    if let crate::server::config::AuthConfig::Oauth2(o) = &state.config.auth
        && !o.email_allowed(&claims.sub)
    {
        return Ok(Err(AccessRefusal::Revoked));
    }
    match oauth.liveness.check(&state.db, &claims, now).await? {
        Ok(client_name) => Ok(Ok(AccessGrant {
            subject: claims.sub,
            client_id: claims.client_id,
            client_name,
            family: claims.fam,
            scope: claims.scope,
            expires_at: claims.exp,
        })),
        Err(_) => Ok(Err(AccessRefusal::Revoked)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(grant_scope(None).unwrap(), "mcp");
        assert_eq!(grant_scope(Some("")).unwrap(), "mcp");
        assert_eq!(grant_scope(Some("mcp offline_access")).unwrap(), "mcp");
        assert_eq!(grant_scope(Some("openid")).unwrap(), "mcp");
        assert!(
            grant_scope(Some("mcp admin"))
                .unwrap_err()
                .contains("admin")
        );
        assert!(scope_covers("mcp", "mcp"));
        assert!(!scope_covers("", "mcp"));
    }

    #[test]
    fn pkce() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_valid_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches("short", challenge));
        assert!(!is_valid_challenge("plain-challenge"));
    }

    #[test]
    fn csrf_is_bound_to_request_and_user() {
        let s = OAuthServer::new(
            &MasterKey::from_bytes(vec![1u8; 32]),
            "https://gh.example.com/",
            Outbound::new(
                crate::server::http::OutboundPolicy {
                    allow_http: false,
                    allow_private: false,
                },
                vec![],
            ),
        );
        assert_eq!(s.issuer, "https://gh.example.com");
        assert_eq!(s.resource, "https://gh.example.com/mcp");
        let t = s.consent_csrf("p1", "alice");
        assert!(s.check_consent_csrf("p1", "alice", &t));
        assert!(!s.check_consent_csrf("p2", "alice", &t));
        assert!(!s.check_consent_csrf("p1", "bob", &t));
        assert!(s.is_our_resource("https://gh.example.com/mcp/"));
        assert!(!s.is_our_resource("https://gh.example.com/other"));
    }
}

/// What the core's unit tests share: an authorization server and a fresh database, clients
/// registered through the core itself, PKCE pairs.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::server::db::Db;
    use crate::server::http::OutboundPolicy;

    pub const ISSUER: &str = "https://gh.example.com";
    pub const REDIRECT: &str = "http://127.0.0.1:33418/callback";
    pub const T0: UnixTime = 1_800_000_000;

    pub async fn setup() -> (OAuthServer, Db, tempfile::TempDir) {
        let (db, dir) = crate::server::db::testing::temp_db().await;
        let oauth = OAuthServer::new(
            &MasterKey::from_bytes(vec![3u8; 32]),
            ISSUER,
            Outbound::new(
                OutboundPolicy {
                    allow_http: false,
                    allow_private: false,
                },
                vec![],
            ),
        );
        (oauth, db, dir)
    }

    /// Registers a client through the core; its id and, when confidential, its secret.
    pub async fn register(db: &Db, metadata: serde_json::Value) -> (String, Option<String>) {
        let body = serde_json::to_vec(&metadata).unwrap();
        let registered = clients::register(
            db,
            clients::Registration {
                body: &body,
                from: "192.0.2.1".into(),
            },
            T0,
        )
        .await
        .unwrap()
        .body;
        (
            registered["client_id"].as_str().unwrap().to_string(),
            registered["client_secret"].as_str().map(str::to_string),
        )
    }

    pub async fn public_client(db: &Db) -> String {
        public_client_named(db, "Test").await
    }

    /// A public native client; clients of the same name from the same place are one client.
    pub async fn public_client_named(db: &Db, name: &str) -> String {
        let metadata = serde_json::json!({"client_name": name, "redirect_uris": [REDIRECT],
            "application_type": "native", "grant_types": ["authorization_code", "refresh_token"]});
        register(db, metadata).await.0
    }

    /// A PKCE verifier and its S256 challenge.
    pub fn pkce() -> (String, String) {
        let verifier = crate::server::secrets::random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        (verifier, challenge)
    }
}
