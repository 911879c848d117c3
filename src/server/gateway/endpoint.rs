//! `/mcp`: the checks every request passes before rmcp's Streamable HTTP service serves it.
//!
//! In order (after the router's `Host` check, which every route passes): `Origin`
//! (DNS-rebinding and cross-site defence, 403), CORS preflight, the caller's
//! token (401/403 with a `WWW-Authenticate: Bearer` challenge), then for POST the body itself
//! (size, JSON, JSON-RPC shape, `MCP-Protocol-Version`) so that malformed input gets JSON-RPC
//! error codes, and finally the session: an `Mcp-Session-Id` must name a live session opened
//! by the same caller, or the answer is 404. rmcp does the protocol (both eras, sessions, SSE).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::Full;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{Peer, RoleServer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::SUPPORTED_PROTOCOL_VERSIONS;
use super::caller::{McpAuthFailure, authenticate};
use super::events::McpEvents;
use super::handler::GatehouseMcp;
use super::input::RequestStates;
use super::offers::Watches;
use super::parked::ParkedCalls;
use super::protection::McpProtection;
use super::sessions::{SessionCheck, StoredSessions};
use super::tools::ToolRegistry;
use super::upstreams::CallEnd;
use crate::server::audit::{self, Actor, Event};
use crate::server::clock::UnixTime;
use crate::server::db::DbError;
use crate::server::net::HostPolicy;
use crate::server::state::AppState;

/// Largest request body accepted on `/mcp`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A session quiet for this long leaves memory (its row stays; the next request restores it).
const SESSION_IN_MEMORY: Duration = Duration::from_secs(60);

pub const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

pub struct McpEndpoint {
    service: StreamableHttpService<GatehouseMcp, LocalSessionManager>,
    /// The sessions this process holds in memory right now (a cache of `stored`).
    sessions: Arc<LocalSessionManager>,
    /// Every session, with its owner: the store all replicas share.
    stored: StoredSessions,
    pub protection: McpProtection,
    pub tools: ToolRegistry,
    /// Ends every open SSE stream at shutdown, so graceful shutdown does not wait on them.
    pub shutdown: CancellationToken,
    /// Which browser origins may call `/mcp` (the `Host` check is the router's, for every route).
    hosts: HostPolicy,
    /// Seals and opens the `requestState` of input-required rounds.
    pub request_states: RequestStates,
    /// What changed, for `subscriptions/listen` streams.
    pub events: McpEvents,
    /// Upstream calls waiting on a 2026-07-28 client's answer to the upstream's request.
    pub parked: ParkedCalls<CallEnd>,
    /// Who watches which upstream resource (`resources/subscribe`, `subscriptions/listen`).
    pub watches: Watches,
    /// The 2025-era sessions whose worker has a change forwarder here (`on_initialized`):
    /// one per live worker.
    pub(crate) forwarders: std::sync::Mutex<HashMap<String, Peer<RoleServer>>>,
}

impl McpEndpoint {
    pub fn new(
        hosts: HostPolicy,
        tools: ToolRegistry,
        conformance_fixtures: bool,
        request_states: RequestStates,
        stored: StoredSessions,
    ) -> McpEndpoint {
        let mut sessions = LocalSessionManager::default();
        sessions.session_config.keep_alive = Some(SESSION_IN_MEMORY);
        let sessions = Arc::new(sessions);
        let shutdown = CancellationToken::new();
        let mut config = StreamableHttpServerConfig::default()
            // Host and Origin are checked here, with JSON-RPC error bodies.
            .disable_allowed_hosts()
            .with_cancellation_token(shutdown.child_token());
        config.json_response = true;
        config.sse_keep_alive = Some(Duration::from_secs(15));
        config.session_store = Some(Arc::new(stored.clone()));
        let handler_tools = tools.clone();
        let service = StreamableHttpService::new(
            move || {
                Ok(GatehouseMcp {
                    conformance_fixtures,
                    tools: handler_tools.clone(),
                })
            },
            sessions.clone(),
            config,
        );
        McpEndpoint {
            service,
            sessions,
            stored,
            protection: McpProtection::default(),
            tools,
            shutdown,
            hosts,
            request_states,
            events: McpEvents::default(),
            parked: ParkedCalls::default(),
            watches: Watches::default(),
            forwarders: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Sessions used within the idle limit, on every replica.
    pub async fn session_count(&self, now: UnixTime) -> Result<i64, DbError> {
        self.stored.count_live(now).await
    }

    /// Ends every session a caller opened (its token was deleted), on every replica: each
    /// checks the store on every request. Workers held here leave memory within a minute.
    pub async fn forget_principal(&self, key: &str) {
        if let Err(e) = self.stored.end_all_of(key).await {
            tracing::error!(error = %e, "cannot end the MCP sessions of a deleted token");
        }
    }

    /// Deletes sessions idle past the limit (a housekeeping pass).
    pub async fn purge_sessions(&self, now: UnixTime) -> Result<u64, DbError> {
        self.stored.purge(now).await
    }

    /// Drops the in-memory worker of a session; its row stays.
    async fn release(&self, session_id: &str) {
        use rmcp::transport::streamable_http_server::SessionManager;
        let _ = self.sessions.close_session(&session_id.into()).await;
    }

    /// `Origin`, when a browser sends one: see `HostPolicy::mcp_origin_allowed`.
    fn origin_allowed(&self, origin: &str) -> bool {
        self.hosts.mcp_origin_allowed(origin)
    }
}

/// A JSON-RPC error response with an HTTP status.
pub fn jsonrpc_error(
    status: StatusCode,
    id: Value,
    code: i64,
    message: impl Into<String>,
    data: Option<Value>,
) -> Response {
    let mut error = json!({"code": code, "message": message.into()});
    if let Some(data) = data {
        error["data"] = data;
    }
    let mut response = (
        status,
        axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": error})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL_ERROR: i64 = -32603;
/// 2026-07-28: unsupported protocol version.
const UNSUPPORTED_VERSION: i64 = -32022;

/// What the body says, as far as the checks here need.
struct Message {
    id: Value,
    method: Option<String>,
}

/// Checks that a POST body is one well-formed JSON-RPC 2.0 message.
/// Why a body is not an acceptable JSON-RPC message; answered with HTTP 400.
struct Malformed {
    id: Value,
    code: i64,
    message: String,
}

impl Malformed {
    fn into_response(self) -> Response {
        jsonrpc_error(
            StatusCode::BAD_REQUEST,
            self.id,
            self.code,
            self.message,
            None,
        )
    }
}

fn check_message(body: &[u8]) -> Result<Message, Malformed> {
    let bad = |id: Value, code: i64, message: String| Err(Malformed { id, code, message });
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return bad(
                Value::Null,
                PARSE_ERROR,
                format!("Parse error: the body is not valid JSON ({e})."),
            );
        }
    };
    let Value::Object(object) = value else {
        return if value.is_array() {
            bad(Value::Null, INVALID_REQUEST, "Invalid Request: batches are not supported; send one JSON-RPC message per request.".into())
        } else {
            bad(
                Value::Null,
                INVALID_REQUEST,
                "Invalid Request: the body must be a JSON-RPC 2.0 object.".into(),
            )
        };
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let id_ok = match object.get("id") {
        None => true,
        Some(Value::String(_)) => true,
        Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
        Some(_) => false,
    };
    if !id_ok {
        return bad(
            Value::Null,
            INVALID_REQUEST,
            "Invalid Request: id must be a string or an integer.".into(),
        );
    }
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return bad(
            id,
            INVALID_REQUEST,
            "Invalid Request: jsonrpc must be \"2.0\".".into(),
        );
    }
    match object.get("method") {
        Some(Value::String(method)) => {
            if let Some(params) = object.get("params")
                && !params.is_object()
            {
                return bad(
                    id,
                    INVALID_PARAMS,
                    "Invalid params: params must be an object.".into(),
                );
            }
            Ok(Message {
                id,
                method: Some(method.clone()),
            })
        }
        Some(_) => bad(
            id,
            INVALID_REQUEST,
            "Invalid Request: method must be a string.".into(),
        ),
        // A response to a request the server sent (sampling, elicitation...).
        None if object.contains_key("id")
            && (object.contains_key("result") ^ object.contains_key("error")) =>
        {
            Ok(Message { id, method: None })
        }
        None => bad(
            id,
            INVALID_REQUEST,
            "Invalid Request: a JSON-RPC request needs a method.".into(),
        ),
    }
}

/// The refusal of `/mcp`, with the RFC 6750 challenge. With the authorization server on, the
/// challenge points MCP clients at its metadata (RFC 9728) and names the scope to ask for.
fn auth_failure(failure: McpAuthFailure, resource_metadata: Option<&str>) -> Response {
    let realm = match resource_metadata {
        Some(url) => {
            format!("Bearer realm=\"gatehouse\", resource_metadata=\"{url}\", scope=\"mcp\"")
        }
        None => "Bearer realm=\"gatehouse\"".to_string(),
    };
    let (status, challenge, body) = match failure {
        McpAuthFailure::Missing => (
            StatusCode::UNAUTHORIZED,
            realm.clone(),
            json!({
                "error": "unauthorized",
                "error_description": "This MCP endpoint requires a token: send `Authorization: Bearer <token>` or add `?token=<token>` to the URL.",
            }),
        ),
        McpAuthFailure::InvalidToken(why) => (
            StatusCode::UNAUTHORIZED,
            format!("{realm}, error=\"invalid_token\", error_description=\"{why}\""),
            json!({"error": "invalid_token", "error_description": why}),
        ),
        McpAuthFailure::InsufficientScope => (
            StatusCode::FORBIDDEN,
            match resource_metadata {
                Some(_) => format!("{realm}, error=\"insufficient_scope\""),
                None => format!("{realm}, error=\"insufficient_scope\", scope=\"mcp\""),
            },
            json!({
                "error": "insufficient_scope",
                "error_description": "This token does not have the mcp scope.",
                "scope": "mcp",
            }),
        ),
    };
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).expect("challenge is ASCII"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn cors(response: &mut Response, origin: Option<&HeaderValue>) {
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn preflight(request_headers: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    let allow_headers = request_headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(
            "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID",
        ));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

fn session_not_found(id: Value) -> Response {
    jsonrpc_error(
        StatusCode::NOT_FOUND,
        id,
        INVALID_REQUEST,
        "Session not found: it has ended or expired. Start a new one with initialize.",
        None,
    )
}

/// rmcp answers some refusals (missing session id, wrong Accept or Content-Type, wrong method)
/// in plain text; clients get the same refusal as a JSON-RPC error, headers (e.g. `Allow`)
/// kept.
async fn json_rpc_errors(response: Response, id: Value) -> Response {
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|ct| ct.as_bytes().starts_with(b"text/plain"));
    if !response.status().is_client_error() || !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let mut converted = jsonrpc_error(
        parts.status,
        id,
        INVALID_REQUEST,
        String::from_utf8_lossy(&text).trim().to_string(),
        None,
    );
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            converted.headers_mut().insert(name, value.clone());
        }
    }
    converted
}

/// The `/mcp` route: every method.
pub async fn mcp_handler(State(state): State<AppState>, request: Request) -> Response {
    let mcp = &state.mcp;
    let origin = request.headers().get(header::ORIGIN).cloned();
    if let Some(o) = &origin
        && !o.to_str().is_ok_and(|o| mcp.origin_allowed(o))
    {
        return jsonrpc_error(
            StatusCode::FORBIDDEN,
            Value::Null,
            INVALID_REQUEST,
            "Forbidden: requests from this Origin are not allowed.",
            None,
        );
    }
    if request.method() == Method::OPTIONS {
        let mut response = preflight(request.headers());
        cors(&mut response, origin.as_ref());
        return response;
    }

    let mut response = serve(&state, request).await;
    cors(&mut response, origin.as_ref());
    response
}

async fn serve(state: &AppState, request: Request) -> Response {
    let mcp = &state.mcp;
    let now = state.now();
    let (mut parts, body) = request.into_parts();
    // The body is read before anything is refused, so that a refusal (the 401 every OAuth
    // client starts with) leaves the connection reusable.
    let bytes = if parts.method == Method::POST {
        match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                return jsonrpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Value::Null,
                    INVALID_REQUEST,
                    format!("Invalid Request: the body is larger than {MAX_BODY_BYTES} bytes."),
                    None,
                );
            }
        }
    } else {
        None
    };
    let caller = match authenticate(state, &parts.headers, parts.uri.query(), now).await {
        Ok(Ok(caller)) => caller,
        Ok(Err(failure)) => {
            // A request without a token is how every client starts (to find where to sign
            // in): only a token that was presented and refused goes in the trail.
            let refused = match &failure {
                McpAuthFailure::Missing => None,
                McpAuthFailure::InvalidToken(why) => Some(*why),
                McpAuthFailure::InsufficientScope => Some("The token lacks the mcp scope."),
            };
            if let Some(reason) = refused {
                let event = Event::new("mcp.token_refused", Actor::Anonymous)
                    .refused()
                    .detail(serde_json::json!({ "reason": reason }));
                audit::record(&state.db, now, event).await;
            }
            return auth_failure(
                failure,
                state
                    .oauth_as
                    .as_ref()
                    .map(|o| o.resource_metadata_url.as_str()),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "MCP authentication: database error");
            return jsonrpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                Value::Null,
                INTERNAL_ERROR,
                "Internal error: Gatehouse could not check the token.",
                None,
            );
        }
    };

    let session_id = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let mut request_id = Value::Null;
    let mut is_initialize = false;
    let body = if let Some(bytes) = bytes {
        let message = match check_message(&bytes) {
            Ok(message) => message,
            Err(malformed) => return malformed.into_response(),
        };
        request_id = message.id;
        is_initialize = message.method.as_deref() == Some("initialize");
        let versions: Vec<&str> = parts
            .headers
            .get_all(VERSION_HEADER)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().trim())
            .collect();
        if versions.len() > 1 {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                request_id,
                INVALID_REQUEST,
                "Invalid Request: send one MCP-Protocol-Version header.",
                None,
            );
        }
        if let Some(&version) = versions.first()
            && !SUPPORTED_PROTOCOL_VERSIONS.contains(&version)
        {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                request_id,
                UNSUPPORTED_VERSION,
                format!("Unsupported protocol version {version:?}."),
                Some(json!({"supported": SUPPORTED_PROTOCOL_VERSIONS, "requested": version})),
            );
        }
        bytes
    } else {
        Bytes::new()
    };

    // A session belongs to whoever opened it; to anyone else it does not exist.
    if let Some(id) = &session_id {
        match mcp.stored.check(id, &caller.key(), now).await {
            Ok(SessionCheck::Ours) => {}
            Ok(SessionCheck::NotFound) => {
                // Ended elsewhere (another replica, a deleted token, the cap): not here either.
                mcp.release(id).await;
                return session_not_found(request_id);
            }
            Err(e) => {
                tracing::error!(error = %e, "MCP session check: database error");
                return jsonrpc_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    request_id,
                    INTERNAL_ERROR,
                    "Internal error: Gatehouse could not check the session.",
                    None,
                );
            }
        }
    }

    let is_delete = parts.method == Method::DELETE;
    parts.extensions.insert(state.clone());
    parts.extensions.insert(caller.clone());
    let response = mcp
        .service
        .handle(http::Request::from_parts(parts, Full::new(body)))
        .await
        .map(Body::new);

    let response = json_rpc_errors(response, request_id.clone()).await;
    if is_initialize
        && response.status().is_success()
        && let Some(new_id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        let new_id = new_id.to_string();
        match mcp.stored.claim(&new_id, &caller.key(), now).await {
            Ok(0) => {}
            Ok(ended) => tracing::info!(
                ended,
                "a caller opened more MCP sessions than allowed; ended its least recently used"
            ),
            Err(e) => {
                tracing::error!(error = %e, "cannot record a new MCP session");
                mcp.release(&new_id).await;
                return jsonrpc_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    request_id,
                    INTERNAL_ERROR,
                    "Internal error: Gatehouse could not open the session.",
                    None,
                );
            }
        }
        // An idle session costs its row only; the next request restores the worker.
        mcp.release(&new_id).await;
    }
    if is_delete && response.status().is_success() && session_id.is_some() {
        // rmcp says 202; the session is already gone, and clients expect 200 for that.
        let mut ended = StatusCode::OK.into_response();
        ended
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return ended;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_checks() {
        let code = |body: &str| match check_message(body.as_bytes()) {
            Ok(_) => 0,
            Err(m) => m.into_response().status().as_u16() as i64,
        };
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), 0);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            0
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#), 0);
        for bad in [
            "{",
            "[]",
            "42",
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
        ] {
            assert_eq!(code(bad), 400, "{bad}");
        }
    }
}
