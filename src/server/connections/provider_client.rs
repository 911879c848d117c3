//! Calls to a provider's endpoints: token (code, refresh, client credentials), revocation
//! (RFC 7009), introspection (RFC 7662), discovery (RFC 8414), registration (RFC 7591) and
//! registration management (RFC 7592). Every call goes through the outbound guards.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use url::Url;

use super::builtin::TokenShape;
use super::provider::{AUTH_BASIC, AUTH_NONE};
use crate::server::http::{GuardError, Outbound, read_capped};
use crate::server::secrets::SecretString;

/// Largest answer read from a provider.
const MAX_BODY: usize = 256 * 1024;

/// How the client authenticates at the token, revocation and introspection endpoints.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// `client_secret_post`, `client_secret_basic` or `none`.
    pub method: String,
}

/// A token endpoint's success answer.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub token_type: String,
    pub scope: Option<String>,
    pub expires_in: Option<i64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an OAuth error (RFC 6749 §5.2), whatever the HTTP status.
    #[error("the provider answered {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        error: String,
        description: Option<String>,
    },
    /// The call did not produce a usable answer: timeout, network, 5xx, not JSON. Worth
    /// retrying later.
    #[error("{0}")]
    Transient(String),
    /// The URL is not allowed (outbound guards) or the configuration cannot work.
    #[error("{0}")]
    Refused(String),
}

impl ProviderError {
    /// The grant (or the client) is no longer accepted: retrying cannot help; the user must
    /// authorize again (possibly with new client credentials).
    /// Whether only a new authorization can help: RFC 6749's codes, plus the ones a provider
    /// uses instead (`also`, from its definition: Slack's `invalid_refresh_token`).
    pub fn is_dead_grant(&self, also: &[String]) -> bool {
        matches!(self, ProviderError::OAuth { error, .. }
            if matches!(error.as_str(), "invalid_grant" | "invalid_client" | "unauthorized_client")
                || also.iter().any(|code| code == error))
    }
}

impl From<GuardError> for ProviderError {
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::Refused(m) => ProviderError::Refused(m),
            GuardError::Fetch(f) => ProviderError::Transient(describe_fetch(&f)),
        }
    }
}

fn describe_fetch(e: &crate::server::http::FetchError) -> String {
    use crate::server::http::FetchError;
    match e {
        FetchError::Transport(r) if r.is_timeout() => "the provider did not answer in time".into(),
        FetchError::Transport(r) if r.is_connect() => "could not connect to the provider".into(),
        FetchError::Transport(r) => format!("the call to the provider failed: {}", without_url(r)),
        other => other.to_string(),
    }
}

/// reqwest's error text includes the URL, which may carry a query string; keep it out.
fn without_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text.replace(url.as_str(), "(provider URL)"),
        None => text,
    }
}

pub struct ProviderClient<'a> {
    pub outbound: &'a Outbound,
    pub timeout: Duration,
}

/// A provider's answer, parsed leniently: JSON, or a form-encoded body (some older token
/// endpoints answer that way).
struct Answer {
    status: u16,
    body: Map<String, Value>,
}

impl ProviderClient<'_> {
    async fn send(
        &self,
        url: &Url,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, String, Vec<u8>), ProviderError> {
        let client = self.outbound.guarded_client(url, self.timeout).await?;
        let response = build(&client)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ProviderError::from(GuardError::Fetch(e.into())))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body = read_capped(response, MAX_BODY)
            .await
            .map_err(|e| ProviderError::Transient(describe_fetch(&e)))?;
        Ok((status, content_type, body))
    }

    async fn call(
        &self,
        url: &Url,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        let (status, content_type, body) = self.send(url, build).await?;
        let parsed: Option<Map<String, Value>> = if content_type.contains("x-www-form-urlencoded") {
            Some(
                url::form_urlencoded::parse(&body)
                    .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                    .collect(),
            )
        } else {
            serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.as_object().cloned())
        };
        match parsed {
            Some(body) => {
                if let Some(error) = oauth_error(&body) {
                    return Err(error);
                }
                if status >= 400 {
                    return Err(ProviderError::Transient(format!(
                        "the provider answered HTTP {status}"
                    )));
                }
                Ok(Answer { status, body })
            }
            None if status >= 400 => Err(ProviderError::Transient(format!(
                "the provider answered HTTP {status}"
            ))),
            None if body.is_empty() => Ok(Answer {
                status,
                body: Map::new(),
            }),
            None => Err(ProviderError::Transient(format!(
                "the provider answered HTTP {status} with {}, not JSON",
                if content_type.is_empty() {
                    "an untyped body".to_string()
                } else {
                    content_type
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                }
            ))),
        }
    }

    /// A form POST with client authentication, as RFC 6749 §2.3.1 describes.
    fn authenticated_form(
        client: &reqwest::Client,
        url: &Url,
        auth: &ClientAuth,
        mut form: Vec<(&str, String)>,
    ) -> reqwest::RequestBuilder {
        let mut request = client.post(url.clone());
        match (auth.method.as_str(), &auth.client_secret) {
            (AUTH_BASIC, Some(secret)) => {
                // RFC 6749 §2.3.1: both parts form-urlencoded before the Basic encoding.
                let user = crate::util::encode_query_value(&auth.client_id);
                let pass = crate::util::encode_query_value(secret.expose());
                request = request.header(
                    http::header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}"))),
                );
            }
            (AUTH_NONE, _) | (_, None) => form.push(("client_id", auth.client_id.clone())),
            (_, Some(secret)) => {
                form.push(("client_id", auth.client_id.clone()));
                form.push(("client_secret", secret.expose().to_string()));
            }
        }
        request.form(&form)
    }

    pub async fn token(
        &self,
        token_url: &Url,
        auth: &ClientAuth,
        form: Vec<(&str, String)>,
        shape: TokenShape,
    ) -> Result<TokenResponse, ProviderError> {
        let answer = self
            .call(token_url, |c| {
                Self::authenticated_form(c, token_url, auth, form)
            })
            .await?;
        parse_token_response(&answer.body, shape)
    }

    pub async fn revoke(
        &self,
        url: &Url,
        auth: &ClientAuth,
        token: &SecretString,
        hint: &'static str,
    ) -> Result<(), ProviderError> {
        let form = vec![
            ("token", token.expose().to_string()),
            ("token_type_hint", hint.to_string()),
        ];
        // RFC 7009 §2.2: 200 means revoked (or already invalid); errors come as OAuth errors.
        match self
            .call(url, |c| Self::authenticated_form(c, url, auth, form))
            .await
        {
            Ok(_) => Ok(()),
            Err(ProviderError::OAuth { error, .. }) if error == "unsupported_token_type" => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn introspect(
        &self,
        url: &Url,
        auth: &ClientAuth,
        token: &SecretString,
    ) -> Result<Map<String, Value>, ProviderError> {
        let form = vec![
            ("token", token.expose().to_string()),
            ("token_type_hint", "access_token".to_string()),
        ];
        let answer = self
            .call(url, |c| Self::authenticated_form(c, url, auth, form))
            .await?;
        if !answer.body.get("active").is_some_and(Value::is_boolean) {
            return Err(ProviderError::Transient(
                "the introspection answer has no boolean \"active\" (RFC 7662 §2.2)".into(),
            ));
        }
        Ok(answer.body)
    }

    /// RFC 8414 discovery: the authorization server metadata for `base` (an issuer, or any
    /// URL on it). The order is the MCP authorization spec's: RFC 8414 with the path
    /// inserted, OpenID Connect with it inserted, then appended; then the origin's own.
    pub async fn discover(&self, base: &Url) -> Result<Map<String, Value>, ProviderError> {
        let origin = base.origin().ascii_serialization();
        let path = base.path().trim_end_matches('/');
        let mut candidates = Vec::new();
        if !path.is_empty() {
            candidates.push(format!(
                "{origin}/.well-known/oauth-authorization-server{path}"
            ));
            candidates.push(format!("{origin}/.well-known/openid-configuration{path}"));
            candidates.push(format!("{origin}{path}/.well-known/openid-configuration"));
        }
        candidates.push(format!("{origin}/.well-known/oauth-authorization-server"));
        candidates.push(format!("{origin}/.well-known/openid-configuration"));
        let mut last = ProviderError::Refused("no metadata location to try".into());
        for candidate in candidates {
            let url = Url::parse(&candidate).map_err(|e| ProviderError::Refused(e.to_string()))?;
            match self.call(&url, |c| c.get(url.clone())).await {
                Ok(answer) if answer.status == 200 && !answer.body.is_empty() => {
                    return Ok(answer.body);
                }
                Ok(answer) => {
                    last = ProviderError::Transient(format!(
                        "{candidate} answered HTTP {}",
                        answer.status
                    ))
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A metadata document (RFC 9728 protected resource metadata): `None` when there is
    /// none at `url` (any 4xx).
    pub async fn metadata(&self, url: &Url) -> Result<Option<Map<String, Value>>, ProviderError> {
        match self.call(url, |c| c.get(url.clone())).await {
            Ok(answer) if answer.status == 200 && !answer.body.is_empty() => Ok(Some(answer.body)),
            Ok(answer) if (400..500).contains(&answer.status) => Ok(None),
            Ok(answer) => Err(ProviderError::Transient(format!(
                "{url} answered HTTP {} without a metadata document",
                answer.status
            ))),
            Err(ProviderError::Transient(m)) if m.contains("HTTP 4") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What an MCP server answers a client with no credentials: the status and
    /// `WWW-Authenticate` challenge of the first refusal. A server may let `initialize` through
    /// and challenge only what follows, and a 2026-07-28 server may want the protocol header
    /// on every request: so `initialize`, then (with its session) `tools/list`, then a
    /// 2026-07-28 `tools/list`, stopping at the first 401.
    pub async fn probe_mcp(&self, url: &Url) -> Result<(u16, Option<String>), ProviderError> {
        let client = self.outbound.guarded_client(url, self.timeout).await?;
        let post = |body: serde_json::Value, headers: Vec<(&'static str, String)>| {
            let mut request = client
                .post(url.clone())
                .header(http::header::ACCEPT, "application/json, text/event-stream")
                .json(&body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            async move {
                let response = request
                    .send()
                    .await
                    .map_err(|e| ProviderError::from(GuardError::Fetch(e.into())))?;
                let challenge = response
                    .headers()
                    .get(http::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let session = response
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok::<_, ProviderError>((response.status().as_u16(), challenge, session))
            }
        };
        let initialize = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")}}
        });
        let (status, challenge, session) = post(initialize, Vec::new()).await?;
        if status == 401 {
            return Ok((status, challenge));
        }
        let list = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        let followed = if (200..300).contains(&status) {
            let mut headers = vec![("mcp-protocol-version", "2025-11-25".to_string())];
            if let Some(id) = session {
                headers.push(("mcp-session-id", id));
            }
            let initialized =
                serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            post(initialized, headers.clone()).await?;
            post(list, headers).await?
        } else {
            let headers = vec![
                ("mcp-protocol-version", "2026-07-28".to_string()),
                ("mcp-method", "tools/list".to_string()),
            ];
            post(list, headers).await?
        };
        match followed {
            (401, challenge, _) => Ok((401, challenge)),
            _ => Ok((status, challenge)),
        }
    }

    /// RFC 7591 registration. Returns the registration answer.
    pub async fn register(
        &self,
        registration_endpoint: &Url,
        metadata: &Value,
    ) -> Result<Map<String, Value>, ProviderError> {
        let answer = self
            .call(registration_endpoint, |c| {
                c.post(registration_endpoint.clone()).json(metadata)
            })
            .await?;
        if !answer.body.get("client_id").is_some_and(Value::is_string) {
            return Err(ProviderError::Transient(
                "the registration answer has no client_id".into(),
            ));
        }
        Ok(answer.body)
    }

    /// RFC 7592 read (GET), update (PUT with `metadata`) or delete of a registration.
    pub async fn manage_registration(
        &self,
        method: reqwest::Method,
        registration_client_uri: &Url,
        registration_access_token: &SecretString,
        metadata: Option<&Value>,
    ) -> Result<Map<String, Value>, ProviderError> {
        let answer = self
            .call(registration_client_uri, |c| {
                let r = c
                    .request(method, registration_client_uri.clone())
                    .bearer_auth(registration_access_token.expose());
                match metadata {
                    Some(m) => r.json(m),
                    None => r,
                }
            })
            .await?;
        Ok(answer.body)
    }
}

/// The OAuth error an answer carries, whatever its HTTP status: some providers (Slack,
/// GitHub) answer HTTP 200 with `{"error": …}`.
pub fn oauth_error(body: &Map<String, Value>) -> Option<ProviderError> {
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())?;
    Some(ProviderError::OAuth {
        error: error.chars().take(100).collect(),
        description: body
            .get("error_description")
            .and_then(Value::as_str)
            .map(|d| d.chars().take(300).collect()),
    })
}

/// Reads a token endpoint's answer: `access_token` required, `expires_in` as a number or a
/// numeric string, `token_type` defaulting to Bearer.
pub fn parse_token_response(
    body: &Map<String, Value>,
    shape: TokenShape,
) -> Result<TokenResponse, ProviderError> {
    // Slack: the user token and its refresh data sit under `authed_user`.
    let body = match shape {
        TokenShape::SlackAuthedUser => body
            .get("authed_user")
            .and_then(Value::as_object)
            .filter(|u| u.contains_key("access_token"))
            .unwrap_or(body),
        TokenShape::Standard => body,
    };
    let string = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let access_token = string("access_token")
        .ok_or_else(|| ProviderError::Transient("the token answer has no access_token".into()))?;
    let expires_in = match body.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|&s| s > 0);
    Ok(TokenResponse {
        access_token: SecretString::new(access_token),
        refresh_token: string("refresh_token").map(SecretString::new),
        token_type: string("token_type").unwrap_or_else(|| "Bearer".into()),
        scope: string("scope"),
        expires_in,
    })
}

/// A provider's JSON for display: secrets masked.
pub fn masked(mut body: Map<String, Value>) -> Value {
    for key in [
        "client_secret",
        "registration_access_token",
        "access_token",
        "refresh_token",
    ] {
        if let Some(v) = body.get_mut(key)
            && v.is_string()
        {
            *v = Value::String("••••••".into());
        }
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn token_answers_are_read_leniently() {
        let t = parse_token_response(
            &obj(json!({"access_token": "a", "expires_in": "3600", "refresh_token": "r"})),
            TokenShape::Standard,
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(3600));
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.refresh_token.unwrap().expose(), "r");
        let t = parse_token_response(
            &obj(json!({"access_token": "a", "token_type": "bearer", "expires_in": 0})),
            TokenShape::Standard,
        )
        .unwrap();
        assert_eq!(t.expires_in, None);
        assert!(t.refresh_token.is_none());
    }

    #[test]
    fn dead_grants_are_told_apart_from_transient_failures() {
        let dead = ProviderError::OAuth {
            error: "invalid_grant".into(),
            description: None,
        };
        assert!(dead.is_dead_grant(&[]));
        assert!(
            !ProviderError::OAuth {
                error: "temporarily_unavailable".into(),
                description: None
            }
            .is_dead_grant(&[])
        );
        assert!(
            ProviderError::OAuth {
                error: "invalid_refresh_token".into(),
                description: None
            }
            .is_dead_grant(&["invalid_refresh_token".to_string()])
        );
        assert!(!ProviderError::Transient("x".into()).is_dead_grant(&[]));
    }

    #[test]
    fn masking_hides_secrets() {
        let v = masked(obj(
            json!({"client_id": "c", "client_secret": "s", "registration_access_token": "t"}),
        ));
        assert_eq!(v["client_id"], "c");
        assert_eq!(v["client_secret"], "••••••");
        assert!(!v.to_string().contains("\"t\""));
    }
}
