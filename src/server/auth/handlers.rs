//! `/auth/*`: login (form and JSON), logout, auth info, and the identity-provider round trip.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use super::middleware::authenticate;
use super::session::{LOGIN_COOKIE, SESSION_TTL_SECS, read_cookie};
use super::throttle::Throttle;
use super::{AuthMethod, roles};
use crate::model::ApiError;
use crate::model::session::{AuthType, Role};
use crate::server::audit::{self, Actor, Event};
use crate::server::error::ApiErrors;
use crate::server::error::{AppError, api_error_response};
use crate::server::net::client_ip;
use crate::server::secrets::{SecretString, constant_time_eq, sha256_hex};
use crate::server::state::AppState;
use crate::util::{encode_query_value, login_url, safe_return_path};

const MAX_LOGIN_BODY: usize = 16 * 1024;

/// `GET /auth/info`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuthInfo {
    pub auth_type: AuthType,
    /// The login page.
    pub login_url: String,
    /// With `oauth2`: where a browser starts signing in.
    pub oauth2_start_url: Option<String>,
    /// Whether the request carried a valid session (always, with `none`).
    pub authenticated: bool,
    pub user: Option<String>,
    pub role: Option<Role>,
    /// Unix seconds.
    pub session_expires_at: Option<i64>,
}

/// `POST /auth/login`'s answer to JSON.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    /// The session, for `Authorization: Bearer`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: i64,
}

/// `GET /auth/info`: how to sign in here, and whether the caller already is.
#[utoipa::path(
    get,
    path = "/auth/info",
    operation_id = "auth_info",
    tag = "auth",
    summary = "How to sign in here, and who the caller is (no session needed)",
    security(()),
    responses((status = 200, body = AuthInfo), ApiErrors),
)]
pub async fn auth_info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let auth_type = state.config.auth.auth_type();
    let identity = match authenticate(&state, &headers).await {
        Ok(Ok(identity)) => Some(identity),
        Ok(Err(_)) => None,
        Err(e) => return e.into_response(),
    };
    let body = AuthInfo {
        auth_type,
        login_url: "/login".into(),
        oauth2_start_url: (auth_type == AuthType::Oauth2).then(|| "/auth/oauth2/start".into()),
        authenticated: identity.is_some(),
        user: identity.as_ref().map(|i| i.subject.clone()),
        role: identity.as_ref().map(|i| i.role),
        session_expires_at: identity.as_ref().and_then(|i| i.expires_at),
    };
    no_store(Json(body).into_response())
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A browser posting the login form: answers are redirects.
    Form,
    /// An API client posting JSON: answers are JSON.
    Json,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct LoginBody {
    username: String,
    #[schema(format = Password)]
    password: String,
    /// Where the login form returns to (a path here); ignored for JSON.
    #[serde(default)]
    next: Option<String>,
}

fn parse_login(caller: Caller, body: &[u8]) -> Result<LoginBody, String> {
    match caller {
        Caller::Json => serde_json::from_slice::<LoginBody>(body).map_err(|e| {
            format!("The body must be JSON like {{\"username\":\"…\",\"password\":\"…\"}} ({e}).")
        }),
        Caller::Form => {
            let mut fields: HashMap<String, String> =
                url::form_urlencoded::parse(body).into_owned().collect();
            Ok(LoginBody {
                username: fields.remove("username").unwrap_or_default(),
                password: fields.remove("password").unwrap_or_default(),
                next: fields.remove("next"),
            })
        }
    }
}

/// `POST /auth/login`: JSON `{"username","password"}` answers `{"token","token_type"}`; the
/// login form (urlencoded) gets the session cookie and a redirect.
#[utoipa::path(
    post,
    path = "/auth/login",
    operation_id = "auth_login",
    tag = "auth",
    summary = "Sign in with the username and password (AUTH_TYPE=basic) for a session token",
    description = "The login page's form (application/x-www-form-urlencoded) gets the session cookie and a redirect instead. Wrong credentials count against the address: past five, 429.",
    security(()),
    request_body = LoginBody,
    responses((status = 200, body = LoginAnswer), ApiErrors),
)]
pub async fn login(State(state): State<AppState>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .cloned();
    let (parts, body) = request.into_parts();
    let ip = client_ip(
        &parts.headers,
        peer.as_ref(),
        state.config.trust_proxy_headers,
    );
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let caller = if content_type.starts_with("application/json") {
        Caller::Json
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Caller::Form
    } else {
        return api_error_response(ApiError::BadRequest {
            message: "Send the credentials as application/json (or the login form's application/x-www-form-urlencoded).".into(),
        });
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_LOGIN_BODY).await else {
        return api_error_response(ApiError::BadRequest {
            message: format!("The login request is larger than {MAX_LOGIN_BODY} bytes."),
        });
    };
    let body = match parse_login(caller, &bytes) {
        Ok(body) => body,
        Err(message) => return api_error_response(ApiError::BadRequest { message }),
    };
    let next = body
        .next
        .as_deref()
        .and_then(safe_return_path)
        .unwrap_or_else(|| "/".into());

    let verifier = match state.config.auth.auth_type() {
        AuthType::Basic => state.basic.as_ref().expect("basic mode has a verifier"),
        AuthType::None => {
            return match caller {
                Caller::Form => Redirect::to(&next).into_response(),
                Caller::Json => api_error_response(ApiError::BadRequest {
                    message:
                        "AUTH_TYPE is none: this Gatehouse has no login, and no token is needed."
                            .into(),
                }),
            };
        }
        AuthType::Oauth2 => {
            return match caller {
                Caller::Form => Redirect::to(&format!("/auth/oauth2/start?next={}", encode_query_value(&next))).into_response(),
                Caller::Json => api_error_response(ApiError::BadRequest {
                    message: "This Gatehouse signs people in through its identity provider; open /auth/oauth2/start in a browser.".into(),
                }),
            };
        }
    };

    let now = state.now();
    if let Throttle::Wait(seconds) = state.login_throttle.begin_attempt(ip, now) {
        tracing::warn!(client = %ip, retry_after = seconds, "login throttled");
        let event = Event::new("sign_in", Actor::Anonymous).refused().detail(
            json!({"method": "password", "reason": "too many failed sign-ins from this address"}),
        );
        audit::record(&state.db, now, event).await;
        return match caller {
            Caller::Form => {
                Redirect::to(&login_url(Some(&next), Some("rate_limited"))).into_response()
            }
            Caller::Json => api_error_response(ApiError::TooManyRequests {
                message: format!(
                    "Too many failed logins from your address. Try again in {seconds} s."
                ),
                retry_after: seconds,
            }),
        };
    }

    if !verifier
        .verify(body.username.clone(), SecretString::new(body.password))
        .await
    {
        // Never log the username: people type passwords into it.
        tracing::info!(client = %ip, "login failed");
        let event = Event::new("sign_in", Actor::Anonymous)
            .failed()
            .detail(json!({"method": "password", "reason": "invalid username or password"}));
        audit::record(&state.db, now, event).await;
        return match caller {
            Caller::Form => {
                Redirect::to(&login_url(Some(&next), Some("invalid_credentials"))).into_response()
            }
            Caller::Json => api_error_response(ApiError::Unauthorized {
                message: "Invalid username or password.".into(),
            }),
        };
    }
    state.login_throttle.record_success(ip);
    let session = state
        .sessions
        .issue(&body.username, AuthMethod::Basic, Vec::new(), now);
    tracing::info!(user = %session.claims.sub, client = %ip, "signed in");
    let event = Event::new("sign_in", Actor::Person(session.claims.sub.clone()))
        .detail(json!({"method": "password"}));
    audit::record(&state.db, now, event).await;
    match caller {
        Caller::Form => {
            let mut response = Redirect::to(&next).into_response();
            response
                .headers_mut()
                .append(header::SET_COOKIE, state.cookies.session(&session.token));
            no_store(response)
        }
        Caller::Json => no_store(
            Json(LoginAnswer {
                token: session.token,
                token_type: "Bearer".into(),
                expires_in: SESSION_TTL_SECS,
            })
            .into_response(),
        ),
    }
}

/// `POST /auth/logout`: ends the session (server side too: the token is refused from now on,
/// even where a copy of it survives) and clears the cookie.
#[utoipa::path(
    post,
    path = "/auth/logout",
    operation_id = "auth_logout",
    tag = "auth",
    summary = "End the session presented (Bearer or cookie), if any",
    responses(
        (status = 204, description = "Ended (or there was none); the cookie is cleared"),
        (status = 303, description = "The same, for a browser (Accept: text/html): to the login page"),
        ApiErrors,
    ),
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Ok(Ok(identity)) = authenticate(&state, &headers).await
        && let (Some(jti), Some(exp)) = (&identity.session_id, identity.expires_at)
    {
        if let Err(e) = state.db.revoke_session(jti, exp).await {
            return AppError::from(e).into_response();
        }
        tracing::info!(user = %identity.subject, "signed out");
        let event = Event::new("sign_out", Actor::Person(identity.subject.clone()));
        audit::record(&state.db, state.now(), event).await;
    }
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let mut response = if wants_html {
        Redirect::to("/login?signed_out=1").into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.cookies.clear_session());
    no_store(response)
}

fn not_oauth2_mode() -> Response {
    api_error_response(ApiError::NotFound {
        message: "This Gatehouse does not sign in through an identity provider (AUTH_TYPE is not oauth2).".into(),
    })
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /auth/oauth2/start`: sends the browser to the identity provider.
pub async fn oauth2_start(
    State(state): State<AppState>,
    Query(query): Query<StartQuery>,
    request: Request,
) -> Response {
    let Some(oauth2) = state.oauth2.as_ref() else {
        return not_oauth2_mode();
    };
    let now = state.now();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>();
    let ip = client_ip(request.headers(), peer, state.config.trust_proxy_headers);
    let next = query
        .next
        .as_deref()
        .and_then(safe_return_path)
        .unwrap_or_else(|| "/".into());
    if !state.login_start_limiter.allow(ip, now) {
        return Redirect::to(&login_url(Some(&next), Some("rate_limited"))).into_response();
    }
    let start = match oauth2.start(&next, now).await {
        Ok(start) => start,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a login at the identity provider");
            return Redirect::to(&login_url(Some(&next), Some(e.code()))).into_response();
        }
    };
    if let Err(e) = state.db.insert_login_state(&start.row).await {
        return AppError::from(e).into_response();
    }
    let mut response = Redirect::to(&start.redirect_to).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.cookies.login(&start.binding));
    no_store(response)
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// A sign-in through the identity provider that did not work, and why (no person is known).
async fn sso_failed(state: &AppState, now: i64, reason: &str) {
    let event = Event::new("sign_in", Actor::Anonymous)
        .failed()
        .detail(json!({"method": "sso", "reason": reason}));
    audit::record(&state.db, now, event).await;
}

/// `GET /auth/callback`: where the identity provider sends the browser back.
pub async fn oauth2_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(oauth2) = state.oauth2.as_ref() else {
        return not_oauth2_mode();
    };
    let now = state.now();
    // Every way out of here clears the one-login cookie.
    let fail = |next: Option<&str>, code: &str| {
        let mut response = Redirect::to(&login_url(next, Some(code))).into_response();
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.cookies.clear_login());
        no_store(response)
    };

    let Some(state_param) = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 512)
    else {
        return fail(None, "state_invalid");
    };
    let login = match state.db.take_login_state(&sha256_hex(state_param)).await {
        Ok(Some(login)) => login,
        Ok(None) => {
            tracing::warn!("login callback with an unknown or already used state");
            sso_failed(&state, now, "an unknown or already used state").await;
            return fail(None, "state_invalid");
        }
        Err(e) => return AppError::from(e).into_response(),
    };
    let next = Some(login.return_to.as_str());
    if login.expires_at <= now {
        return fail(next, "state_expired");
    }
    let binding = read_cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if binding.is_empty() || !constant_time_eq(sha256_hex(&binding), &login.browser_binding) {
        tracing::warn!("login callback from a browser other than the one that started the login");
        sso_failed(
            &state,
            now,
            "the answer came to another browser than the one that started",
        )
        .await;
        return fail(next, "state_mismatch");
    }
    if let Some(error) = query.error.as_deref() {
        tracing::warn!(error = ?error, description = ?query.error_description.as_deref().map(|d| d.chars().take(200).collect::<String>()), "the identity provider refused the login");
        let reason: String = error.chars().take(100).collect();
        sso_failed(
            &state,
            now,
            &format!("the identity provider answered {reason}"),
        )
        .await;
        return fail(
            next,
            if error == "access_denied" {
                "idp_denied"
            } else {
                "idp_error"
            },
        );
    }
    if let Some(iss) = query.iss.as_deref()
        && !oauth2.issuer_matches(iss).await
    {
        tracing::warn!(iss = ?iss, "login callback names another issuer (RFC 9207 mix-up defence)");
        sso_failed(&state, now, "the answer names another issuer").await;
        return fail(next, "idp_error");
    }
    let Some(code) = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
    else {
        return fail(next, "idp_error");
    };
    let signed_in = match oauth2.finish(code, &login, now).await {
        Ok(signed_in) => signed_in,
        Err(e) => {
            tracing::warn!(error = %e, "login through the identity provider failed");
            sso_failed(&state, now, e.code()).await;
            return fail(next, e.code());
        }
    };
    let email = signed_in.email.clone();
    if !oauth2.config().email_allowed(&email) {
        tracing::warn!(email = %email, "refused a login: email not in AUTH_OAUTH2_ALLOWED_USERS / _DOMAINS");
        let event = Event::new("sign_in", Actor::Person(email.clone()))
            .refused()
            .detail(json!({"method": "sso", "reason": "not among the allowed users or domains"}));
        audit::record(&state.db, now, event).await;
        return fail(next, "email_not_allowed");
    }
    let admin_groups = roles::admin_groups_in(&state.config.auth, &signed_in.claims);
    // Their API tokens act with what the provider says now (a group left is left for them too).
    if let Err(e) = state
        .db
        .set_creator_admin_groups(&email, &admin_groups.join(","))
        .await
    {
        tracing::error!(error = %e, "cannot update the admin groups of the user's API tokens");
        return fail(next, "server_error");
    }
    let role = roles::role_of(&state.config.auth, &email, &admin_groups);
    let session = state
        .sessions
        .issue(&email, AuthMethod::Oauth2, admin_groups, now);
    tracing::info!(user = %email, role = role.as_str(), "signed in");
    let event = Event::new("sign_in", Actor::Person(email.clone()))
        .detail(json!({"method": "sso", "role": role.as_str()}));
    audit::record(&state.db, now, event).await;
    let mut response = Redirect::to(&login.return_to).into_response();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, state.cookies.session(&session.token));
    h.append(header::SET_COOKIE, state.cookies.clear_login());
    no_store(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_bodies() {
        let b = parse_login(Caller::Json, br#"{"username":"a","password":"b"}"#).unwrap();
        assert_eq!(
            (b.username.as_str(), b.password.as_str(), b.next),
            ("a", "b", None)
        );
        assert!(parse_login(Caller::Json, b"{").is_err());
        assert!(parse_login(Caller::Json, br#"{"username":"a"}"#).is_err());
        let f = parse_login(Caller::Form, b"username=a%20b&password=p%26q&next=%2Fx").unwrap();
        assert_eq!(
            (f.username.as_str(), f.password.as_str(), f.next.as_deref()),
            ("a b", "p&q", Some("/x"))
        );
    }
}
