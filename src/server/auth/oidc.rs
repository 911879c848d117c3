//! `AUTH_TYPE=oauth2`: Gatehouse as an OAuth2 client of the operator's identity provider.
//! Authorization code + PKCE (S256) + `state`; with `AUTH_OAUTH2_ISSUER_URL`, OIDC discovery
//! fills the endpoints and a `nonce` binds the id_token. The user's email comes from the
//! userinfo endpoint or, when there is none, from the signature-checked id_token.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use url::Url;

use crate::server::auth::roles;
use crate::server::auth::session::LOGIN_STATE_TTL_SECS;
use crate::server::clock::UnixTime;
use crate::server::config::{OAuth2Config, TokenAuthMethod, parse_endpoint_url, split_email};
use crate::server::db::login_states::LoginStateRow;
use crate::server::http::{FetchError, read_json};
use crate::server::secrets::{constant_time_eq, random_token, sha256_hex};

/// Signature algorithms accepted on id_tokens: asymmetric only (an HMAC id_token would be
/// keyed with the client secret, and `none` is never acceptable).
const ID_TOKEN_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const JWKS_MAX_AGE_SECS: i64 = 10 * 60;
const JWKS_MIN_REFRESH_SECS: i64 = 30;
const CLOCK_LEEWAY_SECS: i64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenFields {}

type LoginTokenResponse = StandardTokenResponse<IdTokenFields, BasicTokenType>;
type LoginClient = oauth2::Client<
    BasicErrorResponse,
    LoginTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why a login through the identity provider failed. `code()` is what the login page shows a
/// message for; `Display` is for the log.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("identity provider discovery failed: {0}")]
    Discovery(String),
    #[error("token exchange failed: {0}")]
    TokenExchange(String),
    #[error("userinfo request failed: {0}")]
    UserInfo(String),
    #[error("id_token rejected: {0}")]
    IdToken(String),
    #[error("the identity provider returned no email address")]
    EmailMissing,
    #[error("the identity provider says the email address is not verified")]
    EmailUnverified,
    #[error(
        "the identity provider returned an email address that is not one local part and one domain"
    )]
    EmailInvalid,
}

impl LoginError {
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::Discovery(_) => "idp_unavailable",
            LoginError::TokenExchange(_) => "token_exchange_failed",
            LoginError::UserInfo(_) | LoginError::IdToken(_) => "userinfo_failed",
            LoginError::EmailMissing => "email_missing",
            LoginError::EmailUnverified => "email_unverified",
            LoginError::EmailInvalid => "email_invalid",
        }
    }
}

#[derive(Debug, Clone)]
struct Endpoints {
    authorization: Url,
    token: Url,
    userinfo: Option<Url>,
    jwks: Option<Url>,
    /// The OIDC issuer, for id_token `iss`.
    issuer: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EmailClaims {
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
    /// The rest: the groups claim is read from here (`roles`).
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Who signed in: the email address (lowercased) and the provider's other claims.
#[derive(Debug)]
pub struct SignedIn {
    pub email: String,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct IdTokenClaims {
    nonce: Option<String>,
    exp: i64,
    #[serde(flatten)]
    email: EmailClaims,
}

struct CachedJwks {
    keys: JwkSet,
    fetched_at: UnixTime,
}

/// A login on its way to the identity provider: where to send the browser, what to store, and
/// the value of the cookie that binds it to this browser.
pub struct LoginStart {
    pub redirect_to: String,
    pub row: LoginStateRow,
    pub binding: String,
}

pub struct OAuth2Login {
    config: OAuth2Config,
    redirect_url: Url,
    allow_http: bool,
    http: reqwest::Client,
    endpoints: RwLock<Option<Arc<Endpoints>>>,
    jwks: RwLock<Option<CachedJwks>>,
}

impl OAuth2Login {
    pub fn new(
        config: OAuth2Config,
        redirect_url: Url,
        allow_http: bool,
        http: reqwest::Client,
    ) -> Self {
        OAuth2Login {
            config,
            redirect_url,
            allow_http,
            http,
            endpoints: RwLock::new(None),
            jwks: RwLock::new(None),
        }
    }

    pub fn config(&self) -> &OAuth2Config {
        &self.config
    }

    /// The host shown on the "Sign in" button.
    pub fn provider_host(&self) -> Option<String> {
        self.config
            .issuer_url
            .as_ref()
            .or(self.config.authorization_url.as_ref())
            .and_then(|u| u.host_str().map(str::to_string))
    }

    /// RFC 9207: the `iss` a callback carries must be the issuer this login went to.
    pub async fn issuer_matches(&self, iss: &str) -> bool {
        match self.endpoints().await {
            Ok(endpoints) => match &endpoints.issuer {
                Some(issuer) => issuer.trim_end_matches('/') == iss.trim_end_matches('/'),
                // Without discovery there is no issuer identifier to compare against.
                None => true,
            },
            Err(_) => false,
        }
    }

    /// Explicit settings win over discovery. Discovery runs on the first login (not at
    /// start-up, so Gatehouse starts while the provider is down) and is retried until it works.
    async fn endpoints(&self) -> Result<Arc<Endpoints>, LoginError> {
        if let Some(e) = self.endpoints.read().await.as_ref() {
            return Ok(e.clone());
        }
        let mut slot = self.endpoints.write().await;
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let c = &self.config;
        let endpoints = match &c.issuer_url {
            None => Endpoints {
                authorization: c.authorization_url.clone().expect("checked by config"),
                token: c.token_url.clone().expect("checked by config"),
                userinfo: c.user_info_url.clone(),
                jwks: None,
                issuer: None,
            },
            Some(issuer) => {
                let doc = self.discover(issuer).await?;
                let url = |var: &'static str, v: &str| {
                    parse_endpoint_url(var, v, self.allow_http)
                        .map_err(|e| LoginError::Discovery(e.to_string()))
                };
                Endpoints {
                    authorization: match &c.authorization_url {
                        Some(u) => u.clone(),
                        None => url("authorization_endpoint", &doc.authorization_endpoint)?,
                    },
                    token: match &c.token_url {
                        Some(u) => u.clone(),
                        None => url("token_endpoint", &doc.token_endpoint)?,
                    },
                    userinfo: match (&c.user_info_url, &doc.userinfo_endpoint) {
                        (Some(u), _) => Some(u.clone()),
                        (None, Some(v)) => Some(url("userinfo_endpoint", v)?),
                        (None, None) => None,
                    },
                    jwks: doc
                        .jwks_uri
                        .as_deref()
                        .map(|v| url("jwks_uri", v))
                        .transpose()?,
                    issuer: Some(doc.issuer),
                }
            }
        };
        if endpoints.userinfo.is_none() && endpoints.jwks.is_none() {
            return Err(LoginError::Discovery(
                "the provider has neither a userinfo endpoint nor a jwks_uri; set AUTH_OAUTH2_USER_INFO_URL".into(),
            ));
        }
        let endpoints = Arc::new(endpoints);
        *slot = Some(endpoints.clone());
        Ok(endpoints)
    }

    async fn discover(&self, issuer: &Url) -> Result<DiscoveryDocument, LoginError> {
        let base = issuer.as_str().trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let response = self
            .http
            .get(&url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| LoginError::Discovery(format!("GET {url}: {e}")))?;
        let doc: DiscoveryDocument = read_json(response)
            .await
            .map_err(|e| LoginError::Discovery(format!("GET {url}: {e}")))?;
        if doc.issuer.trim_end_matches('/') != base {
            return Err(LoginError::Discovery(format!(
                "the discovery document's issuer {:?} is not AUTH_OAUTH2_ISSUER_URL {base:?}",
                doc.issuer
            )));
        }
        Ok(doc)
    }

    fn client(&self, endpoints: &Endpoints) -> LoginClient {
        let mut client = oauth2::Client::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(endpoints.authorization.clone()))
            .set_token_uri(TokenUrl::from_url(endpoints.token.clone()))
            .set_redirect_uri(RedirectUrl::from_url(self.redirect_url.clone()))
            .set_auth_type(match self.config.token_auth_method {
                TokenAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
                TokenAuthMethod::ClientSecretPost => AuthType::RequestBody,
            });
        if let Some(secret) = &self.config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
        }
        client
    }

    /// Starts a login that will return to `return_to` (already checked to be a local path).
    pub async fn start(&self, return_to: &str, now: UnixTime) -> Result<LoginStart, LoginError> {
        let endpoints = self.endpoints().await?;
        let state = random_token();
        let nonce = random_token();
        let binding = random_token();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client(&endpoints);
        let mut request = client
            .authorize_url(|| CsrfToken::new(state.clone()))
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if endpoints.issuer.is_some() {
            request = request.add_extra_param("nonce", nonce.clone());
        }
        let (url, _) = request.url();
        Ok(LoginStart {
            redirect_to: url.to_string(),
            row: LoginStateRow {
                id: sha256_hex(&state),
                browser_binding: sha256_hex(&binding),
                pkce_verifier: verifier.secret().clone(),
                nonce,
                return_to: return_to.to_string(),
                created_at: now,
                expires_at: now + LOGIN_STATE_TTL_SECS,
            },
            binding,
        })
    }

    /// Exchanges the code and returns who signed in.
    pub async fn finish(
        &self,
        code: &str,
        login: &LoginStateRow,
        now: UnixTime,
    ) -> Result<SignedIn, LoginError> {
        let endpoints = self.endpoints().await?;
        let token = self
            .client(&endpoints)
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| LoginError::TokenExchange(describe_token_error(e)))?;

        let id_token = token.extra_fields().id_token.as_deref();
        let mut claims = match &endpoints.userinfo {
            Some(userinfo) => {
                self.userinfo(userinfo, token.access_token().secret())
                    .await?
            }
            None => {
                let id_token = id_token.ok_or_else(|| {
                    LoginError::IdToken("the token response has no id_token and the provider has no userinfo endpoint".into())
                })?;
                self.verify_id_token(&endpoints, id_token, &login.nonce, now)
                    .await?
            }
        };
        // Many providers put groups in the id_token only (Entra ID, Okta by default): when
        // admin groups are configured and userinfo has none, the id_token is checked and read.
        let wants_groups = !self.config.admin_groups.is_empty()
            && roles::groups(&claims.other, &self.config.groups_claim).is_empty();
        if wants_groups
            && endpoints.userinfo.is_some()
            && let Some(id_token) = id_token
            && endpoints.issuer.is_some()
        {
            // Groups are a bonus here: a bad id_token costs the person admin rights, not the
            // sign-in that userinfo already vouched for.
            match self
                .verify_id_token(&endpoints, id_token, &login.nonce, now)
                .await
            {
                Ok(from_token) => {
                    let claim = self.config.groups_claim.as_str();
                    let path_root = claim.split('.').next().unwrap_or_default();
                    for key in [claim, path_root] {
                        if let Some(value) = from_token.other.get(key) {
                            claims.other.insert(key.to_string(), value.clone());
                        }
                    }
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot read groups from the id_token; signing in without admin groups"
                ),
            }
        }
        if is_false(claims.email_verified.as_ref()) {
            return Err(LoginError::EmailUnverified);
        }
        let email = claims
            .email
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .ok_or(LoginError::EmailMissing)?;
        if split_email(&email).is_none() {
            return Err(LoginError::EmailInvalid);
        }
        Ok(SignedIn {
            email,
            claims: claims.other,
        })
    }

    async fn userinfo(&self, url: &Url, access_token: &str) -> Result<EmailClaims, LoginError> {
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(access_token)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| LoginError::UserInfo(e.to_string()))?;
        read_json(response)
            .await
            .map_err(|e| LoginError::UserInfo(e.to_string()))
    }

    async fn jwks(&self, url: &Url, now: UnixTime, refresh: bool) -> Result<JwkSet, LoginError> {
        if let Some(cached) = self.jwks.read().await.as_ref() {
            let age = now - cached.fetched_at;
            if age < JWKS_MAX_AGE_SECS && (!refresh || age < JWKS_MIN_REFRESH_SECS) {
                return Ok(cached.keys.clone());
            }
        }
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| LoginError::IdToken(format!("fetching the JWKS: {e}")))?;
        let keys: JwkSet = read_json(response)
            .await
            .map_err(|e: FetchError| LoginError::IdToken(format!("fetching the JWKS: {e}")))?;
        *self.jwks.write().await = Some(CachedJwks {
            keys: keys.clone(),
            fetched_at: now,
        });
        Ok(keys)
    }

    async fn verify_id_token(
        &self,
        endpoints: &Endpoints,
        id_token: &str,
        nonce: &str,
        now: UnixTime,
    ) -> Result<EmailClaims, LoginError> {
        let (Some(jwks_url), Some(issuer)) = (&endpoints.jwks, &endpoints.issuer) else {
            return Err(LoginError::IdToken(
                "no jwks_uri to check the id_token with".into(),
            ));
        };
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| LoginError::IdToken(format!("malformed: {e}")))?;
        if !ID_TOKEN_ALGS.contains(&header.alg) {
            return Err(LoginError::IdToken(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let mut keys = self.jwks(jwks_url, now, false).await?;
        let pick = |keys: &JwkSet| match &header.kid {
            Some(kid) => keys.find(kid).cloned(),
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        };
        let jwk = match pick(&keys) {
            Some(jwk) => jwk,
            None => {
                // The provider may have rotated its keys since we cached them.
                keys = self.jwks(jwks_url, now, true).await?;
                pick(&keys)
                    .ok_or_else(|| LoginError::IdToken("signed with an unknown key".into()))?
            }
        };
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| LoginError::IdToken(format!("unusable JWK: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<IdTokenClaims>(id_token, &key, &validation)
            .map_err(|e| LoginError::IdToken(e.to_string()))?
            .claims;
        if claims.exp + CLOCK_LEEWAY_SECS <= now {
            return Err(LoginError::IdToken("expired".into()));
        }
        if !constant_time_eq(claims.nonce.as_deref().unwrap_or_default(), nonce) {
            return Err(LoginError::IdToken(
                "nonce does not match this login".into(),
            ));
        }
        Ok(claims.email)
    }
}

/// `email_verified` is a boolean, but some providers send it as a string.
fn is_false(value: Option<&serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Bool(b)) => !b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

fn describe_token_error<E: std::error::Error>(
    error: RequestTokenError<E, BasicErrorResponse>,
) -> String {
    match error {
        RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) => format!("{}: {d}", r.error()),
            None => r.error().to_string(),
        },
        RequestTokenError::Request(e) => format!("request failed: {e}"),
        RequestTokenError::Parse(e, body) => format!(
            "unexpected response ({e}): {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        ),
        RequestTokenError::Other(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn email_verified_shapes() {
        assert!(is_false(Some(&json!(false))));
        assert!(is_false(Some(&json!("false"))));
        assert!(!is_false(Some(&json!(true))));
        assert!(!is_false(Some(&json!("true"))));
        assert!(!is_false(None));
    }
}
