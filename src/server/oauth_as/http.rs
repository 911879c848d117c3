//! The authorization server over HTTP: one thin adapter. It parses each request into the
//! typed request its core function takes (form parameters, Basic credentials, the query,
//! the browser's session, the JSON body), calls the core with the time, and renders the typed
//! outcome: JSON with `Cache-Control: no-store`, a redirect, or a page. No protocol decision
//! is taken here.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Form, RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use super::authorize::{self, AuthorizeOutcome, AuthorizeRequest, ConsentForm, UserCheck};
use super::clients::{self, MAX_REGISTRATION_BYTES, Registration};
use super::error::{OAuthCode, OAuthError};
use super::token::{self, TokenRequest};
use super::{OAuthServer, metadata, pages};
use crate::server::auth::authenticate;
use crate::server::error::AppError;
use crate::server::net::client_ip;
use crate::server::state::AppState;
use crate::util::login_url;

const MAX_FORM_BYTES: usize = 16 * 1024;

/// The headers every response carrying tokens or OAuth errors must have (RFC 6749 §5.1).
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        no_store(&mut response);
        if self.code == OAuthCode::InvalidClient && self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            );
        }
        response
    }
}

/// What every endpoint answers while `MCP_OAUTH_ENABLED` is off.
fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

fn has_content_type(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with(wanted))
}

/// The form body of a token or revocation request, with the Basic credentials.
async fn read_token_request(request: Request) -> Result<TokenRequest, OAuthError> {
    let (parts, body) = request.into_parts();
    if !has_content_type(&parts.headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "Send the parameters form-encoded (Content-Type: application/x-www-form-urlencoded).",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_request("The request body is larger than 16 KiB."))?;
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "The parameter {k:?} appears more than once."
            )));
        }
    }
    Ok(TokenRequest {
        params,
        basic: basic_credentials(&parts.headers)?,
    })
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: form-encoded, then base64).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client(
            "The Authorization header is malformed.",
        ));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "Client authentication uses HTTP Basic or the request body.",
        ));
    }
    let malformed = || {
        let mut e = OAuthError::invalid_client("The Basic credentials are malformed.");
        e.basic_challenge = true;
        e
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unform = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Ok(Some((
        unform(id).ok_or_else(malformed)?,
        unform(secret).ok_or_else(malformed)?,
    )))
}

fn refused(e: OAuthError) -> Response {
    if e.code != OAuthCode::TemporarilyUnavailable {
        tracing::info!(error = %e.code.as_str(), description = %e.description, "token request refused");
    }
    e.into_response()
}

/// `POST /mcp/oauth/token`
pub async fn token(State(state): State<AppState>, request: Request) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return not_found();
    };
    let request = match read_token_request(request).await {
        Ok(request) => request,
        Err(e) => return refused(e),
    };
    match token::grant(oauth, &state.db, &request, state.now()).await {
        Ok(issued) => {
            let mut response = Json(json!({
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "refresh_token": issued.refresh_token,
                "scope": issued.scope,
            }))
            .into_response();
            no_store(&mut response);
            response
        }
        Err(e) => refused(e),
    }
}

/// `POST /mcp/oauth/revoke`
pub async fn revoke(State(state): State<AppState>, request: Request) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return not_found();
    };
    let revoked = match read_token_request(request).await {
        Ok(request) => token::revoke(oauth, &state.db, &request, state.now()).await,
        Err(e) => Err(e),
    };
    match revoked {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /mcp/oauth/register`: rate-limited per address, JSON only, at most 64 KiB.
pub async fn register(State(state): State<AppState>, request: Request) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return not_found();
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .cloned();
    let ip = client_ip(
        request.headers(),
        peer.as_ref(),
        state.config.trust_proxy_headers,
    );
    let now = state.now();
    if !oauth.register_limiter.allow(ip, now) {
        let mut response = OAuthError::invalid_request(
            "Too many registrations from this address; try again in a minute.",
        )
        .into_response();
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    let (parts, body) = request.into_parts();
    if !has_content_type(&parts.headers, "application/json") {
        return OAuthError::invalid_request(
            "Send the client metadata as JSON (Content-Type: application/json).",
        )
        .into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REGISTRATION_BYTES).await else {
        let mut response = OAuthError::new(
            OAuthCode::InvalidClientMetadata,
            "The registration request is larger than 64 KiB.",
        )
        .into_response();
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return response;
    };
    let from = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| ip.to_string());
    let registration = Registration { body: &bytes, from };
    match clients::register(&state.db, registration, now).await {
        Ok(registered) => {
            let mut response = (StatusCode::CREATED, Json(registered.body)).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => e.into_response(),
    }
}

/// Whether the caller prefers JSON to a page (a client's probe rather than a browser).
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    accept.contains("application/json") && !accept.contains("text/html")
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/login")),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn render(oauth: &OAuthServer, outcome: AuthorizeOutcome) -> Response {
    match outcome {
        AuthorizeOutcome::Page(page) => pages::render(&page),
        AuthorizeOutcome::ClientError(e) => e.into_response(),
        AuthorizeOutcome::ToClient(back) => match back.location(&oauth.issuer) {
            Some(location) => redirect(&location),
            None => pages::render(&authorize::ErrorPage::BadRequest(
                "The redirect URI is not a URL.".into(),
            )),
        },
        AuthorizeOutcome::SignIn { next } => redirect(&login_url(Some(&next), None)),
        AuthorizeOutcome::Consent { request } => {
            redirect(&format!("/mcp/oauth/consent?request={request}"))
        }
    }
}

/// `GET /mcp/oauth/authorize`
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return not_found();
    };
    // The session is looked up before the request is checked (the core takes it as input);
    // the core consults it only once the client, redirect URI and parameters are right.
    let user = match authenticate(&state, &headers).await {
        Ok(Ok(identity)) => UserCheck::SignedIn(identity),
        Ok(Err(_)) => UserCheck::SignedOut,
        Err(e) => {
            tracing::error!(error = %e, "authorize: cannot check the session");
            UserCheck::Unknown
        }
    };
    let request = AuthorizeRequest {
        query: raw.as_deref(),
        wants_json: wants_json(&headers),
        user,
    };
    match authorize::authorize(oauth, &state.db, request, state.now()).await {
        Ok(outcome) => render(oauth, outcome),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `POST /mcp/oauth/consent`: the consent page's form. Behind the session and cross-origin
/// guards.
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return not_found();
    };
    let identity = match authenticate(&state, &headers).await {
        Ok(Ok(identity)) => identity,
        Ok(Err(_)) => return pages::render(&authorize::ErrorPage::Expired),
        Err(e) => return e.into_response(),
    };
    match authorize::decide(oauth, &state.db, &identity, &form, state.now()).await {
        Ok(outcome) => render(oauth, outcome),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// Discovery documents may be cached by clients for a while.
fn cacheable(value: serde_json::Value) -> Response {
    let mut response = Json(value).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /.well-known/oauth-authorization-server`
pub async fn authorization_server(State(state): State<AppState>) -> Response {
    match state.oauth_as.as_ref() {
        Some(oauth) => cacheable(metadata::authorization_server(oauth)),
        None => not_found(),
    }
}

/// `GET /.well-known/oauth-protected-resource` and `…/mcp`
pub async fn protected_resource(State(state): State<AppState>) -> Response {
    match state.oauth_as.as_ref() {
        Some(oauth) => cacheable(metadata::protected_resource(oauth)),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        assert_eq!(basic_credentials(&h).unwrap(), None);
        let encoded = STANDARD.encode("my%20client:s%3Acret+x");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("my client".into(), "s:cret x".into()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&h).unwrap_err().basic_challenge);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(
            basic_credentials(&h).unwrap_err().code,
            OAuthCode::InvalidClient
        );
    }

    #[tokio::test]
    async fn oauth_errors_are_json_and_never_cached() {
        let response = OAuthError::invalid_grant("the code has expired").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "invalid_grant");
        let mut basic = OAuthError::invalid_client("no");
        basic.basic_challenge = true;
        assert_eq!(
            basic.into_response().headers()["www-authenticate"],
            "Basic realm=\"gatehouse\""
        );
    }
}
