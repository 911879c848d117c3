//! The authorization endpoint and the consent decision.
//!
//! `GET /mcp/oauth/authorize` checks the client and its redirect URI first: until both are
//! trusted, problems are shown as a page, never sent to the redirect URI. Then PKCE, the
//! resource and the scope (errors now go back to the client, with `state` and `iss`); then
//! the user, through Gatehouse's own login; then consent, asked on the consent page the first
//! time (or when more scope is wanted) and remembered.

use std::collections::HashMap;

use axum::extract::{Form, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use url::Url;

use super::clients::{ClientLookup, grant_types, redirect_matches, redirect_uris, resolve_client};
use super::error::{OAuthCode, OAuthError};
use super::pages;
use super::{
    CODE_TTL_SECS, OAuthServer, PENDING_TTL_SECS, grant_scope, is_valid_challenge, scope_covers,
};
use crate::server::auth::Identity;
use crate::server::auth::authenticate;
use crate::server::clock::UnixTime;
use crate::server::db::DbError;
use crate::server::db::oauth::{CodeRow, PendingRow};
use crate::server::error::AppError;
use crate::server::secrets::{random_id, random_token, sha256_hex};
use crate::server::state::AppState;
use crate::util::login_url;

/// Sends the browser back to the client: `redirect_uri` with the given parameters, `state`
/// echoed, and `iss` (RFC 9207) so the client knows which server answered.
pub fn redirect_to_client(
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> Response {
    let mut url = match Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return pages::bad_request("The redirect URI is not a URL."),
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(url.as_str()).unwrap_or(HeaderValue::from_static("/")),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_to_client(
    redirect_uri: &str,
    code: OAuthCode,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> Response {
    redirect_to_client(
        redirect_uri,
        &[("error", code.as_str()), ("error_description", description)],
        state,
        issuer,
    )
}

/// What an approved authorization becomes: a single-use code, valid 60 seconds.
pub struct Approved<'a> {
    pub client_id: &'a str,
    pub subject: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub resource: &'a str,
    pub code_challenge: &'a str,
}

pub async fn issue_code(
    state: &AppState,
    approved: &Approved<'_>,
    now: UnixTime,
) -> Result<String, DbError> {
    let code = random_token();
    state
        .db
        .insert_code(&CodeRow {
            id: sha256_hex(&code),
            family_id: random_id(),
            client_id: approved.client_id.to_string(),
            subject: approved.subject.to_string(),
            redirect_uri: approved.redirect_uri.to_string(),
            scope: approved.scope.to_string(),
            resource: approved.resource.to_string(),
            code_challenge: approved.code_challenge.to_string(),
            created_at: now,
            expires_at: now + CODE_TTL_SECS,
            used_at: None,
        })
        .await?;
    Ok(code)
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

/// The query of the authorization request. Each parameter at most once (RFC 6749 §3.1).
fn parse_query(raw: Option<&str>) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("The parameter {k:?} appears more than once."));
        }
    }
    Ok(params)
}

/// `GET /mcp/oauth/authorize`
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match authorize_inner(&state, oauth, &headers, raw.as_deref()).await {
        Ok(response) => response,
        Err(e) => AppError::from(e).into_response(),
    }
}

async fn authorize_inner(
    state: &AppState,
    oauth: &OAuthServer,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Response, DbError> {
    let now = state.now();
    let params = match parse_query(raw) {
        Ok(p) => p,
        Err(why) => return Ok(pages::bad_request(&why)),
    };
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // 1. The client and where to send the browser back. Until both check out, errors are a
    //    page here: the redirect URI cannot be trusted yet.
    let Some(client_id) = get("client_id") else {
        return Ok(pages::bad_request(
            "The request does not say which client it is from (client_id is missing).",
        ));
    };
    let client = match resolve_client(state, oauth, client_id, now).await {
        Ok(client) => client,
        // Clients probing before they open a browser (mcp-remote) ask for JSON: the error
        // code tells them to register again rather than show a dead link.
        Err(ClientLookup::Unknown) if wants_json(headers) => {
            return Ok(OAuthError::invalid_client(
                "Unknown client: it is not registered here (or was deleted). Register again.",
            )
            .into_response());
        }
        Err(ClientLookup::Unknown) => return Ok(pages::unknown_client(client_id)),
        Err(ClientLookup::BadDocument(why)) => {
            return Ok(pages::bad_client_document(client_id, &why));
        }
    };
    let registered = redirect_uris(&client);
    let client_name = client
        .client_name
        .clone()
        .unwrap_or_else(|| client.id.clone());
    let redirect_uri = match get("redirect_uri") {
        Some(uri) => uri.to_string(),
        // OAuth 2.1 lets a client with a single registered URI leave it out.
        None if registered.len() == 1 => registered[0].clone(),
        None => {
            return Ok(pages::bad_request(
                "The request does not say where to send the result (redirect_uri is missing).",
            ));
        }
    };
    if !redirect_matches(&registered, &redirect_uri) {
        return Ok(pages::redirect_mismatch(
            &client_name,
            &redirect_uri,
            &registered,
        ));
    }

    // 2. The rest of the request; errors go back to the client.
    let client_state = get("state");
    let fail = |code: OAuthCode, why: &str| {
        Ok(error_to_client(
            &redirect_uri,
            code,
            why,
            client_state,
            &oauth.issuer,
        ))
    };
    if get("response_type") != Some("code") {
        return fail(
            OAuthCode::UnsupportedResponseType,
            "Only response_type=code is supported.",
        );
    }
    let Some(challenge) = get("code_challenge") else {
        return fail(
            OAuthCode::InvalidRequest,
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return fail(
            OAuthCode::InvalidRequest,
            "Only the S256 code_challenge_method is supported (plain is not).",
        );
    }
    if !is_valid_challenge(challenge) {
        return fail(
            OAuthCode::InvalidRequest,
            "code_challenge is not a base64url SHA-256 value (43 characters).",
        );
    }
    let resource = match get("resource") {
        Some(r) if oauth.is_our_resource(r) => oauth.resource.clone(),
        Some(_) => {
            return fail(
                OAuthCode::InvalidTarget,
                &format!("This server issues tokens only for {}.", oauth.resource),
            );
        }
        None => oauth.resource.clone(),
    };
    let scope = match grant_scope(get("scope")) {
        Ok(scope) => scope,
        Err(why) => return fail(OAuthCode::InvalidScope, &why),
    };
    if !grant_types(&client)
        .iter()
        .any(|g| g == "authorization_code")
    {
        return fail(
            OAuthCode::UnauthorizedClient,
            "This client is not registered for the authorization code grant.",
        );
    }

    // 3. The user: through Gatehouse's login, then back here.
    let identity: Identity = match authenticate(state, headers).await {
        Err(e) => {
            tracing::error!(error = %e, "authorize: cannot check the session");
            return fail(
                OAuthCode::TemporarilyUnavailable,
                "The server could not check your session; try again.",
            );
        }
        Ok(Ok(identity)) => identity,
        Ok(Err(_)) => {
            let here = format!("/mcp/oauth/authorize?{}", raw.unwrap_or_default());
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&login_url(Some(&here), None))
                    .unwrap_or(HeaderValue::from_static("/login")),
            );
            return Ok(response);
        }
    };
    if client.last_used_at.is_none_or(|at| now - at >= 60) {
        state.db.touch_oauth_client(&client.id, now).await?;
    }

    // 4. Consent, unless given before for at least this scope.
    let approved = Approved {
        client_id: &client.id,
        subject: &identity.subject,
        redirect_uri: &redirect_uri,
        scope: &scope,
        resource: &resource,
        code_challenge: challenge,
    };
    let consented = state.db.find_consent(&client.id, &identity.subject).await?;
    if consented
        .as_deref()
        .is_some_and(|granted| scope_covers(granted, &scope))
    {
        let code = issue_code(state, &approved, now).await?;
        return Ok(redirect_to_client(
            &redirect_uri,
            &[("code", &code)],
            client_state,
            &oauth.issuer,
        ));
    }
    let pending = PendingRow {
        id: random_id(),
        client_id: client.id.clone(),
        subject: identity.subject.clone(),
        redirect_uri: redirect_uri.clone(),
        scope,
        resource,
        state: client_state.map(str::to_string),
        code_challenge: challenge.to_string(),
        created_at: now,
        expires_at: now + PENDING_TTL_SECS,
    };
    state.db.insert_pending(&pending).await?;
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/mcp/oauth/consent?request={}", pending.id))
            .expect("hex id"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    request: String,
    csrf: String,
    decision: String,
}

/// `POST /mcp/oauth/consent`: the consent page's form. Behind the session and cross-origin
/// guards; the CSRF token binds the decision to this request and this user.
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let identity = match authenticate(&state, &headers).await {
        Ok(Ok(identity)) => identity,
        Ok(Err(_)) => return pages::expired_request(),
        Err(e) => return e.into_response(),
    };
    match decide_inner(&state, oauth, &identity, &form).await {
        Ok(response) => response,
        Err(e) => AppError::from(e).into_response(),
    }
}

async fn decide_inner(
    state: &AppState,
    oauth: &OAuthServer,
    identity: &Identity,
    form: &ConsentForm,
) -> Result<Response, DbError> {
    let now = state.now();
    let valid = match state.db.find_pending(&form.request).await? {
        Some(p) => {
            p.subject == identity.subject
                && p.expires_at > now
                && oauth.check_consent_csrf(&p.id, &identity.subject, &form.csrf)
        }
        None => false,
    };
    if !valid {
        return Ok(pages::expired_request());
    }
    let Some(pending) = state.db.take_pending(&form.request).await? else {
        return Ok(pages::expired_request());
    };
    let client_state = pending.state.as_deref();
    if form.decision != "allow" {
        tracing::info!(client_id = %pending.client_id, user = %identity.subject, "consent refused");
        return Ok(error_to_client(
            &pending.redirect_uri,
            OAuthCode::AccessDenied,
            "The user declined to authorize the client.",
            client_state,
            &oauth.issuer,
        ));
    }
    // The consent covers what was granted before and what is granted now.
    let previous = state
        .db
        .find_consent(&pending.client_id, &identity.subject)
        .await?
        .unwrap_or_default();
    let mut scopes: Vec<&str> = previous
        .split_whitespace()
        .chain(pending.scope.split_whitespace())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    state
        .db
        .put_consent(
            &pending.client_id,
            &identity.subject,
            &scopes.join(" "),
            now,
        )
        .await?;
    tracing::info!(client_id = %pending.client_id, user = %identity.subject, "consent given");
    let code = issue_code(
        state,
        &Approved {
            client_id: &pending.client_id,
            subject: &identity.subject,
            redirect_uri: &pending.redirect_uri,
            scope: &pending.scope,
            resource: &pending.resource,
            code_challenge: &pending.code_challenge,
        },
        now,
    )
    .await?;
    Ok(redirect_to_client(
        &pending.redirect_uri,
        &[("code", &code)],
        client_state,
        &oauth.issuer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_parameters_are_refused() {
        assert!(parse_query(Some("a=1&b=2")).is_ok());
        assert!(parse_query(Some("a=1&a=2")).is_err());
        assert!(parse_query(None).unwrap().is_empty());
    }

    #[test]
    fn redirects_keep_the_client_query_and_add_iss() {
        let r = redirect_to_client(
            "http://127.0.0.1:5/cb?x=1",
            &[("code", "abc")],
            Some("s t"),
            "https://gh.example.com",
        );
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            r.headers()["location"],
            "http://127.0.0.1:5/cb?x=1&code=abc&state=s+t&iss=https%3A%2F%2Fgh.example.com"
        );
    }
}
