//! `POST /mcp/oauth/token` (authorization code with PKCE; rotating refresh tokens) and
//! `POST /mcp/oauth/revoke` (RFC 7009).
//!
//! A code is used once: consuming it and checking it are one statement, and presenting it
//! again revokes everything issued from it. A refresh token is used once too, except that a
//! second use within a few seconds (a client retrying concurrently) is answered; later, a
//! second use means the token leaked, and the whole family is revoked.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::access_token::{ACCESS_TOKEN_TTL_SECS, AccessTokenError};
use super::clients::redirect_uris;
use super::error::{OAuthCode, OAuthError, no_store};
use super::{
    OAuthServer, REFRESH_REUSE_GRACE_SECS, REFRESH_TOKEN_PREFIX, REFRESH_TOKEN_TTL_SECS,
    pkce_matches, scope_covers,
};
use crate::server::clock::UnixTime;
use crate::server::db::oauth::{CodeUse, FamilyRow, OAuthClientRow, Rotation};
use crate::server::secrets::{constant_time_eq, random_token, sha256_hex};
use crate::server::state::AppState;

const MAX_FORM_BYTES: usize = 16 * 1024;

/// The form body of a token or revocation request; each parameter at most once.
async fn read_form(request: Request) -> Result<(HeaderMap, HashMap<String, String>), OAuthError> {
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
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
    Ok((parts.headers, params))
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

/// Who is calling the token or revocation endpoint.
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<OAuthClientRow, OAuthError> {
    let basic = basic_credentials(headers)?;
    let body_id = params.get("client_id").filter(|v| !v.is_empty());
    let body_secret = params.get("client_secret").filter(|v| !v.is_empty());
    let with_challenge = |mut e: OAuthError| {
        e.basic_challenge = basic.is_some();
        e
    };
    let (client_id, secret) = match (&basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method, not Basic and client_secret both.",
            ));
        }
        (Some((id, _)), Some(body), _) if body != id => {
            return Err(OAuthError::invalid_request(
                "The client_id differs from the one in the Basic credentials.",
            ));
        }
        (Some((id, secret)), _, _) => (id.clone(), Some(secret.clone())),
        (None, Some(id), secret) => (id.clone(), secret.cloned()),
        (None, None, _) => {
            return Err(OAuthError::invalid_client(
                "Client authentication is required: send client_id.",
            ));
        }
    };
    let Some(client) = state.db.find_oauth_client(&client_id).await? else {
        // invalid_client (not invalid_grant): clients take it as "register again".
        return Err(with_challenge(OAuthError::invalid_client(
            "Unknown client: it is not registered here (or was deleted). Register again.",
        )));
    };
    match (
        client.token_endpoint_auth_method.as_str(),
        secret,
        &client.client_secret_hash,
    ) {
        ("none", None, _) => Ok(client),
        ("none", Some(_), _) => Err(with_challenge(OAuthError::invalid_client(
            "This client is public and has no secret.",
        ))),
        (_, Some(secret), Some(hash)) if constant_time_eq(sha256_hex(&secret), hash) => Ok(client),
        (_, Some(_), _) => Err(with_challenge(OAuthError::invalid_client(
            "The client secret is wrong.",
        ))),
        (_, None, _) => Err(with_challenge(OAuthError::invalid_client(
            "This client must authenticate with its client secret.",
        ))),
    }
}

fn token_response(access: String, refresh: String, scope: &str) -> Response {
    let mut response = Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL_SECS,
        "refresh_token": refresh,
        "scope": scope,
    }))
    .into_response();
    no_store(&mut response);
    response
}

fn new_refresh_token() -> String {
    format!("{REFRESH_TOKEN_PREFIX}{}", random_token())
}

/// `POST /mcp/oauth/token`
pub async fn token(State(state): State<AppState>, request: Request) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match token_inner(&state, oauth, request).await {
        Ok(response) => response,
        Err(e) => {
            if e.code != OAuthCode::TemporarilyUnavailable {
                tracing::info!(error = %e.code.as_str(), description = %e.description, "token request refused");
            }
            e.into_response()
        }
    }
}

async fn token_inner(
    state: &AppState,
    oauth: &OAuthServer,
    request: Request,
) -> Result<Response, OAuthError> {
    let (headers, params) = read_form(request).await?;
    let client = authenticate_client(state, &headers, &params).await?;
    let now = state.now();
    let response = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange_code(state, oauth, &client, &params, now).await?,
        Some("refresh_token") => refresh(state, oauth, &client, &params, now).await?,
        Some(other) => {
            return Err(OAuthError::new(
                OAuthCode::UnsupportedGrantType,
                format!(
                    "grant_type {other:?} is not supported; use authorization_code or refresh_token."
                ),
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is missing.")),
    };
    // "Last used" is shown by the minute: no write per token request.
    if client.last_used_at.is_none_or(|at| now - at >= 60) {
        state.db.touch_oauth_client(&client.id, now).await?;
    }
    Ok(response)
}

fn check_resource(
    oauth: &OAuthServer,
    params: &HashMap<String, String>,
    granted: &str,
) -> Result<(), OAuthError> {
    match params.get("resource") {
        Some(r) if !(oauth.is_our_resource(r) && oauth.is_our_resource(granted)) => {
            Err(OAuthError::new(
                OAuthCode::InvalidTarget,
                format!("Tokens are issued only for {}.", oauth.resource),
            ))
        }
        _ => Ok(()),
    }
}

async fn exchange_code(
    state: &AppState,
    oauth: &OAuthServer,
    client: &OAuthClientRow,
    params: &HashMap<String, String>,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let code = params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("code is missing."))?;
    let verifier = params.get("code_verifier").ok_or_else(|| {
        OAuthError::invalid_request("code_verifier is missing: PKCE is required.")
    })?;
    let code = match state.db.consume_code(&sha256_hex(code), now).await? {
        CodeUse::Consumed(code) => code,
        CodeUse::Unknown => {
            return Err(OAuthError::invalid_grant(
                "The authorization code is not valid.",
            ));
        }
        CodeUse::Replayed(code) => {
            state.db.revoke_family(&code.family_id, now).await?;
            oauth.liveness.forget_all();
            tracing::warn!(client_id = %code.client_id, user = %code.subject, "authorization code replayed: tokens issued from it revoked");
            return Err(OAuthError::invalid_grant(
                "The authorization code was already used; the tokens issued from it have been revoked.",
            ));
        }
    };
    // The code is spent from here on, whatever follows.
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "The authorization code was issued to another client.",
        ));
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "The authorization code has expired (codes are valid for 60 seconds).",
        ));
    }
    match params.get("redirect_uri") {
        Some(uri) if *uri != code.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request.",
            ));
        }
        None if redirect_uris(client).len() != 1 => {
            return Err(OAuthError::invalid_request("redirect_uri is missing."));
        }
        _ => {}
    }
    if !pkce_matches(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "PKCE verification failed: the code_verifier does not match the code_challenge.",
        ));
    }
    check_resource(oauth, params, &code.resource)?;

    let refresh = new_refresh_token();
    let family = FamilyRow {
        id: code.family_id.clone(),
        client_id: client.id.clone(),
        subject: code.subject.clone(),
        scope: code.scope.clone(),
        resource: code.resource.clone(),
        created_at: now,
        expires_at: now + REFRESH_TOKEN_TTL_SECS,
        last_used_at: Some(now),
        revoked_at: None,
    };
    state
        .db
        .insert_family(&family, &sha256_hex(&refresh))
        .await?;
    let (access, _) =
        oauth
            .access_tokens
            .issue(&family.subject, &client.id, &family.scope, &family.id, now);
    tracing::info!(client_id = %client.id, user = %family.subject, "tokens issued for an authorization code");
    Ok(token_response(access, refresh, &family.scope))
}

async fn refresh(
    state: &AppState,
    oauth: &OAuthServer,
    client: &OAuthClientRow,
    params: &HashMap<String, String>,
    now: UnixTime,
) -> Result<Response, OAuthError> {
    let presented = params
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing."))?;
    let id = sha256_hex(presented);
    let Some(token) = state.db.find_refresh(&id).await? else {
        return Err(OAuthError::invalid_grant(
            "The refresh token is not valid (revoked, expired or unknown).",
        ));
    };
    if token.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "The refresh token was issued to another client.",
        ));
    }
    if token.family_revoked_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "The session this refresh token belongs to has been revoked.",
        ));
    }
    if token.expires_at <= now {
        return Err(OAuthError::invalid_grant("The refresh token has expired."));
    }
    if let Some(scope) = params.get("scope")
        && !scope_covers(&token.scope, scope)
    {
        return Err(OAuthError::new(
            OAuthCode::InvalidScope,
            "A refresh cannot widen the scope that was granted.",
        ));
    }
    check_resource(oauth, params, &token.resource)?;

    let fresh = new_refresh_token();
    // Sealed for the grace window, bound to the token it replaces.
    let context = format!("oauth_refresh_tokens/{id}/successor");
    let sealed = oauth.successors.seal(&fresh, &context);
    let rotation = state
        .db
        .rotate_refresh(
            &token.family_id,
            &id,
            &sha256_hex(&fresh),
            &sealed,
            now,
            now + REFRESH_TOKEN_TTL_SECS,
            REFRESH_REUSE_GRACE_SECS,
        )
        .await?;
    let refresh = match rotation {
        Rotation::Rotated => fresh,
        Rotation::Retry { successor_sealed } => oauth
            .successors
            .open(&successor_sealed, &context)
            .map_err(|e| {
                tracing::error!(error = %e, "cannot open a refresh token's successor");
                OAuthError::invalid_grant(
                    "The refresh token can no longer be exchanged. Sign in again.",
                )
            })?
            .expose()
            .to_string(),
        Rotation::Reused => {
            oauth.liveness.forget_all();
            tracing::warn!(client_id = %client.id, user = %token.subject, "refresh token reused: session revoked");
            return Err(OAuthError::invalid_grant(
                "The refresh token was already used; the session has been revoked for safety. Sign in again.",
            ));
        }
        Rotation::FamilyEnded => {
            return Err(OAuthError::invalid_grant(
                "The session this refresh token belongs to has been revoked.",
            ));
        }
    };
    let (access, _) = oauth.access_tokens.issue(
        &token.subject,
        &client.id,
        &token.scope,
        &token.family_id,
        now,
    );
    Ok(token_response(access, refresh, &token.scope))
}

/// `POST /mcp/oauth/revoke` (RFC 7009). Revoking a refresh token ends its session (its
/// access tokens stop working too); revoking an access token ends that token. Unknown tokens
/// and tokens of other clients are answered 200 like any other: the caller learns nothing.
pub async fn revoke(State(state): State<AppState>, request: Request) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match revoke_inner(&state, oauth, request).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn revoke_inner(
    state: &AppState,
    oauth: &OAuthServer,
    request: Request,
) -> Result<(), OAuthError> {
    let (headers, params) = read_form(request).await?;
    let client = authenticate_client(state, &headers, &params).await?;
    let token = params
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is missing."))?;
    let now = state.now();
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        if let Some(row) = state.db.find_refresh(&sha256_hex(token)).await?
            && row.client_id == client.id
        {
            state.db.revoke_family(&row.family_id, now).await?;
            tracing::info!(client_id = %client.id, "session revoked by the client");
        }
    } else {
        match oauth.access_tokens.verify_ignoring_expiry(token) {
            Ok(claims) if claims.client_id == client.id => {
                state.db.revoke_session(&claims.jti, claims.exp).await?;
            }
            Ok(_)
            | Err(
                AccessTokenError::Invalid | AccessTokenError::Expired | AccessTokenError::Revoked,
            ) => {}
        }
    }
    oauth.liveness.forget_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
}
