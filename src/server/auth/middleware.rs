//! Request guards for the app's routes (pages, `/api/*`, `/auth/*`):
//! - `require_session`: every page but login and every `/api/*` route needs a session;
//! - `cross_origin_guard`: state-changing requests from another site are refused (CSRF).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::Identity;
use super::session::{SessionError, bearer_token, read_cookie};
use crate::model::ApiError;
use crate::server::audit::{self, Actor, Event};
use crate::server::error::{AppError, api_error_response};
use crate::server::net::HostPolicy;
use crate::server::state::AppState;
use crate::util::login_url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Expired,
    Invalid,
}

impl AuthFailure {
    fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => "Sign in to continue.",
            AuthFailure::Expired => "Your session has expired. Sign in again.",
            AuthFailure::Invalid => "The session token is not valid. Sign in again.",
        }
    }
}

/// Paths reachable without a session: the login page and its assets, and the login routes.
fn is_public_path(path: &str) -> bool {
    path == "/login"
        || path.starts_with("/auth/")
        || path.starts_with("/pkg/")
        || path.starts_with("/assets/")
        || path == "/favicon.ico"
        || path == "/robots.txt"
}

/// Who the request is from, by Bearer token first, then session cookie. A present but bad
/// Bearer header is a failure; it never falls back to the cookie.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<Identity, AuthFailure>, AppError> {
    if state.oauth2.is_none() && state.basic.is_none() {
        return Ok(Ok(Identity::anonymous()));
    }
    let token = match bearer_token(headers) {
        Err(_) => return Ok(Err(AuthFailure::Invalid)),
        Ok(Some(token)) => token.to_string(),
        Ok(None) => match read_cookie(headers, &state.cookies.session_name) {
            Some(token) if !token.is_empty() => token,
            _ => return Ok(Err(AuthFailure::Missing)),
        },
    };
    let claims = match state.sessions.verify(&token, state.now()) {
        Ok(claims) => claims,
        Err(SessionError::Expired) => return Ok(Err(AuthFailure::Expired)),
        Err(SessionError::Invalid) => return Ok(Err(AuthFailure::Invalid)),
    };
    if state.db.is_session_revoked(&claims.jti).await? {
        return Ok(Err(AuthFailure::Expired));
    }
    Ok(claims
        .identity(&state.config.auth)
        .ok_or(AuthFailure::Invalid))
}

pub async fn require_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if is_public_path(path) {
        return next.run(request).await;
    }
    let failure = match authenticate(&state, request.headers()).await {
        Err(e) => return e.into_response(),
        Ok(Ok(identity)) => {
            // The route template, not the path: a path may carry a link's sealed note.
            let template = request
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "unmatched".into());
            let route = format!("{} {template}", request.method());
            let subject = identity.subject.clone();
            request.extensions_mut().insert(identity);
            let mut response = next.run(request).await;
            // Every refusal by role ends here as a 403 (server functions set it too).
            if response.status() == StatusCode::FORBIDDEN {
                let event = Event::new("access.refused", Actor::Person(subject))
                    .on("route", route)
                    .refused();
                audit::record(&state.db, state.now(), event).await;
            }
            // Pages and API answers carry the user's data: never into a shared cache.
            response
                .headers_mut()
                .entry(header::CACHE_CONTROL)
                .or_insert(HeaderValue::from_static("no-store"));
            return response;
        }
        Ok(Err(failure)) => failure,
    };

    let is_page =
        matches!(*request.method(), Method::GET | Method::HEAD) && !path.starts_with("/api/");
    let mut response = if is_page {
        let next_path = request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let error = (failure == AuthFailure::Expired).then_some("session_expired");
        Redirect::to(&login_url(Some(next_path), error)).into_response()
    } else {
        api_error_response(ApiError::Unauthorized {
            message: failure.message().into(),
        })
    };
    if failure != AuthFailure::Missing {
        // A dead cookie is only noise on every later request.
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.cookies.clear_session());
    }
    response
}

/// Refuses state-changing requests that a browser sends on behalf of another site. Browsers
/// say where a request comes from (`Sec-Fetch-Site`, or `Origin`); clients that are not
/// browsers send neither and are not subject to CSRF.
pub async fn cross_origin_guard(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if is_same_origin(request.headers(), &state.hosts) {
        next.run(request).await
    } else {
        tracing::warn!(path = %request.uri().path(), "refused a cross-origin request");
        api_error_response(ApiError::Forbidden {
            message: "Cross-origin request refused.".into(),
        })
    }
}

fn is_same_origin(headers: &HeaderMap, hosts: &HostPolicy) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    origin
        .to_str()
        .is_ok_and(|origin| hosts.app_origin_allowed(origin, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn public() -> HostPolicy {
        HostPolicy::new(
            &url::Url::parse("http://127.0.0.1:8080").unwrap(),
            vec![],
            vec![],
        )
    }

    #[test]
    fn same_origin_rules() {
        assert!(is_same_origin(&headers(&[]), &public()));
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            &public()
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            &public()
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            &public()
        ));
        assert!(is_same_origin(
            &headers(&[("origin", "http://127.0.0.1:8080")]),
            &public()
        ));
        assert!(is_same_origin(
            &headers(&[
                ("origin", "http://localhost:8080"),
                ("host", "localhost:8080")
            ]),
            &public()
        ));
        assert!(!is_same_origin(
            &headers(&[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:8080")
            ]),
            &public()
        ));
        assert!(!is_same_origin(
            &headers(&[("origin", "null"), ("host", "127.0.0.1:8080")]),
            &public()
        ));
        // A rebinding page: Origin and Host agree, and neither is a name of this instance.
        assert!(!is_same_origin(
            &headers(&[
                ("origin", "http://evil.example:8080"),
                ("host", "evil.example:8080")
            ]),
            &public()
        ));
    }

    #[test]
    fn public_paths() {
        for p in [
            "/login",
            "/auth/login",
            "/auth/callback",
            "/pkg/gatehouse.js",
            "/favicon.ico",
        ] {
            assert!(is_public_path(p), "{p}");
        }
        for p in ["/", "/api/x", "/loginx", "/login/x", "/settings"] {
            assert!(!is_public_path(p), "{p}");
        }
    }
}
