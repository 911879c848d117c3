//! Session tokens: HS256 JWTs signed with a key derived from `SECRET_KEY`, valid for 24 hours,
//! carried in an HttpOnly cookie (browsers) or an `Authorization: Bearer` header (API callers).
//! Expiry is checked against an injected `now`.

use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{AuthMethod, Identity, roles};
use crate::server::clock::UnixTime;
use crate::server::config::AuthConfig;
use crate::server::secrets::{MasterKey, random_id};

pub const SESSION_TTL_SECS: i64 = 24 * 60 * 60;
/// Tolerated clock skew for `iat` in the future.
const LEEWAY_SECS: i64 = 60;
/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 4096;
/// Keeps session tokens from being accepted anywhere another Gatehouse JWT is expected, and
/// the reverse.
pub const SESSION_AUDIENCE: &str = "gatehouse:ui-session";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    /// How the user authenticated: "basic" or "oauth2".
    pub amr: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The admin groups the identity provider put the person in at sign-in (`roles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_groups: Vec<String>,
}

impl SessionClaims {
    /// Who the session is for, with the role the current settings give them. A session of
    /// another login mode (the instance was switched since), or of someone no longer allowed
    /// in, is no session.
    pub fn identity(&self, auth: &AuthConfig) -> Option<Identity> {
        let method = AuthMethod::parse(&self.amr)?;
        if method.as_str() != auth.auth_type().as_str() {
            return None;
        }
        // Someone taken off the allowed users or domains is out at once, not when the
        // session ends.
        if let AuthConfig::Oauth2(o) = auth
            && !o.email_allowed(&self.sub)
        {
            return None;
        }
        Some(Identity {
            subject: self.sub.clone(),
            method,
            session_id: Some(self.jti.clone()),
            expires_at: Some(self.exp),
            role: roles::role_of(auth, &self.sub, &self.admin_groups),
            admin_groups: self.admin_groups.clone(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session has expired")]
    Expired,
    #[error("the session token is not valid")]
    Invalid,
}

pub struct IssuedSession {
    pub token: String,
    pub claims: SessionClaims,
}

pub struct SessionKeys {
    encoding: EncodingKey,
    /// The current key's first, then those of `SECRET_KEY_PREVIOUS`: a session signed under
    /// an earlier key lasts to its own expiry.
    decoding: Vec<DecodingKey>,
    validation: Validation,
    issuer: String,
}

const SESSION_KEY_PURPOSE: &str = "gatehouse/session-jwt/v1";

impl SessionKeys {
    pub fn new(master: &MasterKey, issuer: &str) -> Self {
        SessionKeys::with_previous(master, &[], issuer)
    }

    pub fn with_previous(master: &MasterKey, previous: &[MasterKey], issuer: &str) -> Self {
        let key = master.derive(SESSION_KEY_PURPOSE);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[SESSION_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked below against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        SessionKeys {
            encoding: EncodingKey::from_secret(&key),
            decoding: std::iter::once(master)
                .chain(previous)
                .map(|m| DecodingKey::from_secret(&m.derive(SESSION_KEY_PURPOSE)))
                .collect(),
            validation,
            issuer: issuer.to_string(),
        }
    }

    pub fn issue(
        &self,
        subject: &str,
        method: AuthMethod,
        admin_groups: Vec<String>,
        now: UnixTime,
    ) -> IssuedSession {
        let claims = SessionClaims {
            iss: self.issuer.clone(),
            aud: SESSION_AUDIENCE.to_string(),
            sub: subject.to_string(),
            amr: method.as_str().to_string(),
            iat: now,
            exp: now + SESSION_TTL_SECS,
            jti: random_id(),
            admin_groups,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of a small JSON object cannot fail");
        IssuedSession { token, claims }
    }

    pub fn verify(&self, token: &str, now: UnixTime) -> Result<SessionClaims, SessionError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(SessionError::Invalid);
        }
        let data = self
            .decoding
            .iter()
            .find_map(|key| {
                jsonwebtoken::decode::<SessionClaims>(token, key, &self.validation).ok()
            })
            .ok_or(SessionError::Invalid)?;
        let claims = data.claims;
        if AuthMethod::parse(&claims.amr).is_none() || claims.iat > now + LEEWAY_SECS {
            return Err(SessionError::Invalid);
        }
        if claims.exp <= now {
            return Err(SessionError::Expired);
        }
        Ok(claims)
    }
}

/// Name and attributes of the cookies Gatehouse sets.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub session_name: String,
    /// Set when `PUBLIC_URL` is https.
    pub secure: bool,
}

/// Binds an identity-provider login to the browser that started it; lives 10 minutes, sent
/// only to `/auth/`.
pub const LOGIN_COOKIE: &str = "gatehouse_login";
pub const LOGIN_STATE_TTL_SECS: i64 = 10 * 60;

impl CookieSettings {
    fn build<'a>(&self, name: &'a str, value: &'a str, path: &'a str, max_age: i64) -> HeaderValue {
        let cookie = Cookie::build((name, value))
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(cookie::time::Duration::seconds(max_age))
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("cookie names and values are header-safe")
    }

    pub fn session(&self, token: &str) -> HeaderValue {
        self.build(&self.session_name, token, "/", SESSION_TTL_SECS)
    }

    pub fn clear_session(&self) -> HeaderValue {
        self.build(&self.session_name, "", "/", 0)
    }

    pub fn login(&self, binding: &str) -> HeaderValue {
        self.build(LOGIN_COOKIE, binding, "/auth/", LOGIN_STATE_TTL_SECS)
    }

    pub fn clear_login(&self) -> HeaderValue {
        self.build(LOGIN_COOKIE, "", "/auth/", 0)
    }
}

/// The value of the first cookie called `name` in the request.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_string()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// An `Authorization` header that is not a usable Bearer credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Authorization header is not a Bearer token")]
pub struct MalformedAuthorization;

/// The token of an `Authorization: Bearer …` header. `Err` when the header is there but is not a
/// Bearer credential (so a malformed header is refused rather than ignored).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, MalformedAuthorization> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| MalformedAuthorization)?;
    let (scheme, token) = value.split_once(' ').ok_or(MalformedAuthorization)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(MalformedAuthorization);
    }
    let token = token.trim();
    if token.is_empty() {
        Err(MalformedAuthorization)
    } else {
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys::new(
            &MasterKey::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec()),
            "http://127.0.0.1:8080",
        )
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn issue_then_verify() {
        let k = keys();
        let issued = k.issue("admin", AuthMethod::Basic, vec![], NOW);
        let claims = k.verify(&issued.token, NOW + 10).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(claims.exp, NOW + SESSION_TTL_SECS);
        let basic = AuthConfig::Basic(crate::server::config::BasicAuthConfig {
            username: "admin".into(),
            password: crate::server::config::PasswordCheck::Plain(
                crate::server::secrets::SecretString::new("pw"),
            ),
        });
        let id = claims.identity(&basic).unwrap();
        assert_eq!(id.subject, "admin");
        assert_eq!(id.method, AuthMethod::Basic);
        // Made under another login mode: no identity.
        assert_eq!(claims.identity(&AuthConfig::None), None);
    }

    #[test]
    fn expiry_uses_the_injected_clock() {
        let k = keys();
        let token = k.issue("admin", AuthMethod::Basic, vec![], NOW).token;
        assert!(k.verify(&token, NOW + SESSION_TTL_SECS - 1).is_ok());
        assert_eq!(
            k.verify(&token, NOW + SESSION_TTL_SECS),
            Err(SessionError::Expired)
        );
        // Issued too far in the future: forged or a broken clock.
        assert_eq!(k.verify(&token, NOW - 3600), Err(SessionError::Invalid));
    }

    #[test]
    fn tampering_is_detected() {
        let k = keys();
        let token = k.issue("admin", AuthMethod::Basic, vec![], NOW).token;
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        // Swap the payload for one that says someone else, keeping the signature.
        let forged = k.issue("mallory", AuthMethod::Basic, vec![], NOW).token;
        parts[1] = forged.split('.').nth(1).unwrap().to_string();
        assert_eq!(k.verify(&parts.join("."), NOW), Err(SessionError::Invalid));
        // Another key, another issuer.
        let other = SessionKeys::new(
            &MasterKey::from_bytes(vec![7u8; 32]),
            "http://127.0.0.1:8080",
        );
        assert_eq!(other.verify(&token, NOW), Err(SessionError::Invalid));
        let other_iss = SessionKeys::new(
            &MasterKey::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec()),
            "http://elsewhere",
        );
        assert_eq!(other_iss.verify(&token, NOW), Err(SessionError::Invalid));
        assert_eq!(k.verify("garbage", NOW), Err(SessionError::Invalid));
        assert_eq!(k.verify(&"a".repeat(5000), NOW), Err(SessionError::Invalid));
    }

    #[test]
    fn alg_none_is_refused() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let k = keys();
        let claims = k.issue("admin", AuthMethod::Basic, vec![], NOW).claims;
        let token = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert_eq!(k.verify(&token, NOW), Err(SessionError::Invalid));
    }

    #[test]
    fn cookies() {
        let s = CookieSettings {
            session_name: "gh".into(),
            secure: true,
        };
        let v = s.session("tok").to_str().unwrap().to_string();
        assert!(v.starts_with("gh=tok;"), "{v}");
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=86400",
        ] {
            assert!(v.contains(attr), "{v} lacks {attr}");
        }
        let insecure = CookieSettings {
            session_name: "gh".into(),
            secure: false,
        };
        assert!(!insecure.session("t").to_str().unwrap().contains("Secure"));
        assert!(s.clear_session().to_str().unwrap().contains("Max-Age=0"));

        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; gh=tok2; b=3"),
        );
        assert_eq!(read_cookie(&headers, "gh").as_deref(), Some("tok2"));
        assert_eq!(read_cookie(&headers, "zz"), None);
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), Ok(None));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h), Ok(Some("abc")));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&h), Ok(Some("abc")));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert_eq!(bearer_token(&h), Err(MalformedAuthorization));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&h), Err(MalformedAuthorization));
    }
}
