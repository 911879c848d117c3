//! The HTTP surface: which path goes where, and the layers around them.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::app::{App, shell};
use crate::model::ApiError;
use crate::server::assets;
use crate::server::audit;
use crate::server::auth::{handlers, middleware};
use crate::server::connections::{
    CALLBACK_PATH, CLIENT_METADATA_PATH, LINK_PATH, discovery, flow, link,
};
use crate::server::error::api_error_response;
use crate::server::gateway::endpoint::{jsonrpc_error, mcp_handler};
use crate::server::metrics;
use crate::server::net::client_ip;
use crate::server::oauth_as::http as oauth_http;
use crate::server::rest;
use crate::server::state::AppState;

const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The app's page routes, generated once per process. Generating them renders the app with
/// resource loading suppressed through a process-wide flag; doing it again while another
/// router in the same process is serving (the integration tests run many) would leave that
/// router's in-flight resources pending forever.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(state: AppState) -> Router {
    let routes = page_routes();
    let leptos_options = state.leptos_options.clone();
    let assets = state
        .bundle_fingerprint
        .as_ref()
        .map(|v| format!("/assets/{v}"))
        .unwrap_or_default();
    let page = {
        let assets = assets.clone();
        move |options: leptos::config::LeptosOptions| shell(options, assets.clone())
    };

    // Pages, server functions (under /api) and the login routes: behind the session and
    // cross-origin guards.
    let app = Router::new()
        .route("/auth/info", get(handlers::auth_info))
        .route("/auth/login", post(handlers::login))
        .route("/auth/logout", post(handlers::logout))
        .route("/auth/oauth2/start", get(handlers::oauth2_start))
        .route("/auth/callback", get(handlers::oauth2_callback))
        .route("/mcp/oauth/consent", post(oauth_http::decide))
        .route(CALLBACK_PATH, get(flow::callback))
        .route(LINK_PATH, get(link::show).post(link::start))
        .merge(rest::routes())
        .route("/assets/{version}/pkg/{*file}", get(versioned_asset))
        .leptos_routes(&state, routes, {
            let page = page.clone();
            move || page(leptos_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(page))
        .layer(from_fn_with_state(
            state.clone(),
            middleware::require_session,
        ))
        .layer(from_fn_with_state(
            state.clone(),
            middleware::cross_origin_guard,
        ))
        .layer(from_fn(cache_headers))
        // Pages, JSON and unversioned files; the bundle comes precompressed when the build
        // made `.br`/`.gz` copies (a response with an encoding is left as it is).
        .layer(CompressionLayer::new().br(true).gzip(true));

    // The authorization server's public endpoints: called by MCP clients (some of them in a
    // browser, hence CORS), authenticated by their own rules, never by the app session.
    let oauth = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth_http::authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/mcp",
            get(oauth_http::authorization_server),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(oauth_http::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(oauth_http::protected_resource),
        )
        // Gatehouse's own client ID metadata document, as the client of MCP servers' sign-in.
        .route(
            CLIENT_METADATA_PATH,
            get(discovery::client_metadata_document),
        )
        .route("/mcp/oauth/register", post(oauth_http::register))
        .route("/mcp/oauth/token", post(oauth_http::token))
        .route("/mcp/oauth/revoke", post(oauth_http::revoke))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("mcp-protocol-version"),
                ])
                .max_age(std::time::Duration::from_secs(600)),
        )
        .route("/mcp/oauth/authorize", get(oauth_http::authorize));

    // Workers fetch connection tokens with API tokens, which the session middleware does not
    // know; the handler authenticates itself. Browsers still may not call it cross-site.
    let worker_api = Router::new()
        .route(
            rest::connections::TOKEN_ROUTE,
            post(rest::connections::token),
        )
        .layer(from_fn(rest::json_errors))
        .layer(from_fn_with_state(
            state.clone(),
            middleware::cross_origin_guard,
        ));

    let mut outer = Router::new()
        .route("/healthz", get(rest::operations::healthz))
        .route("/api/v0/openapi.json", get(rest::openapi::openapi_json));
    if state.config.metrics_token.is_some() {
        outer = outer.route("/metrics", get(rest::operations::metrics_with_token));
    }
    outer
        .merge(worker_api)
        .merge(oauth)
        // `/mcp` does its own checks (Origin, token); it is not behind the app's guards (the
        // Host check, below, covers it like every route).
        .route("/mcp", any(mcp_handler))
        .merge(app)
        .layer(from_fn_with_state(state.clone(), host_guard))
        .layer(from_fn_with_state(state.clone(), audit_address))
        .layer(from_fn(count_request))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn(close_if_unread))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'; base-uri 'self'; object-src 'none'"),
        ))
        // `same-origin` (not `no-referrer`): browsers must keep sending a real `Origin` on
        // same-origin form posts for the cross-origin guard to work.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(
            TraceLayer::new_for_http()
                // The path only: query strings can carry codes, states and tokens.
                .make_span_with(|request: &http::Request<_>| {
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .with_state(state)
}

/// Counts the request and its time under its route template (a path that matched no route
/// is `unmatched`: raw paths would make a label per scanner's guess).
async fn count_request(request: Request, next: Next) -> Response {
    // A method of its own making is no label of its own.
    let method = match *request.method() {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::PATCH
        | Method::HEAD
        | Method::OPTIONS => request.method().as_str().to_string(),
        _ => "other".to_string(),
    };
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics::http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The client's address, for what the request's handling records in the audit trail (the
/// peer, or with `TRUST_PROXY_HEADERS` the proxy's `X-Forwarded-For`).
async fn audit_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .cloned();
    let ip = client_ip(
        request.headers(),
        peer.as_ref(),
        state.config.trust_proxy_headers,
    );
    audit::with_address(ip, next.run(request)).await
}

/// Every route answers only to the names of this instance (`HostPolicy::host_allowed`): the
/// DNS-rebinding defence, in every auth mode. `/healthz` is exempt: load balancers and
/// orchestrators probe it by address, and it tells nothing beyond "up".
async fn host_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    // /metrics needs its bearer token: no browser can be made to send it.
    if path == "/healthz" || path == "/metrics" {
        return next.run(request).await;
    }
    // A Host that is not text is no name of ours.
    let host = request
        .headers()
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or(""));
    // An absolute-form request line (HTTP/1.1) or HTTP/2's `:authority` names a host too, and
    // RFC 9112 says it wins over `Host`: every name the request carries must be ours.
    let authority = request.uri().authority().map(|a| a.as_str());
    let allowed = [host, authority]
        .into_iter()
        .flatten()
        .all(|name| state.hosts.host_allowed(Some(name)));
    if allowed {
        return next.run(request).await;
    }
    // Debug, not info: anyone can send these, and a log line each would let them flood it.
    tracing::debug!(host = ?host, authority = ?authority, path = %path, "refused a request for a host name this instance does not have");
    let message = "This Gatehouse does not answer to that host name. If it is one of yours, set PUBLIC_URL to it or add it to ALLOWED_HOSTS.";
    if path == "/mcp" {
        return jsonrpc_error(
            StatusCode::FORBIDDEN,
            serde_json::Value::Null,
            -32600,
            format!("Forbidden: {message}"),
            None,
        );
    }
    api_error_response(ApiError::Forbidden {
        message: message.into(),
    })
}

/// `GET /assets/<fingerprint>/pkg/<file>`: the bundle the pages of this build name, kept by
/// browsers for a year. Another fingerprint (a page from another build) is not found: these
/// files are not the ones it asks for.
async fn versioned_asset(
    State(state): State<AppState>,
    Path((version, file)): Path<(String, String)>,
    request: Request,
) -> Response {
    if !assets::is_fingerprint(&version) || state.bundle_fingerprint.as_deref() != Some(&version) {
        return (
            StatusCode::NOT_FOUND,
            "Not found: this file belongs to another version of Gatehouse. Reload the page.",
        )
            .into_response();
    }
    let options = &state.leptos_options;
    let pkg = std::path::Path::new(&*options.site_root).join(&*options.site_pkg_dir);
    let (mut parts, _) = request.into_parts();
    parts.uri = match format!("/{file}").parse() {
        Ok(uri) => uri,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let request = Request::from_parts(parts, Body::empty());
    let served = ServeDir::new(pkg)
        .precompressed_br()
        .precompressed_gzip()
        .oneshot(request)
        .await;
    let mut response = match served {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(assets::IMMUTABLE),
        );
    }
    response
}

/// Caching for what the versioned route does not cover: pages are asked for again every time
/// (signed-in ones already say `no-store`), unversioned bundle files too, other public files
/// (`favicon.ico`) are kept a day.
async fn cache_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    if response.headers().contains_key(header::CACHE_CONTROL) || !response.status().is_success() {
        return response;
    }
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = if is_html || path.starts_with("/pkg/") {
        assets::REVALIDATE
    } else if path.starts_with("/api/") || path.starts_with("/auth/") {
        return response;
    } else {
        assets::PUBLIC_FILE
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    response
}

/// A refusal sent before the request's body was read (a 401, a 403, a 413) leaves the rest
/// of that body on the connection, and hyper closes the connection after the response. A
/// client that reuses it in the meantime fails with "disconnected without a response", so
/// such a response says `Connection: close` and the client opens a new connection instead.
async fn close_if_unread(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() || request.version() >= http::Version::HTTP_2 {
        return next.run(request).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(Watched {
            body,
            read: read.clone(),
        })
    });
    let mut response = next.run(request).await;
    if !read.load(Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that notes when it has been read to its end.
struct Watched {
    body: Body,
    read: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.read.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
