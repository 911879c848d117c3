//! Gatehouse's MCP client of upstream servers, on rmcp (the official Rust SDK): rmcp runs the
//! protocol (the handshake, requests and their answers whether JSON or a stream, the
//! session's GET stream, resumption, notifications and the server's own requests, which
//! reach `Relay`); the HTTP is Gatehouse's own (`upstream_http::GuardedHttp`), so that every
//! request goes through the outbound guards, carries exactly the credential Gatehouse chose
//! (never the MCP client's), and reports a 401 as such, which the gateway turns into one
//! refresh and retry.
//!
//! rmcp dropped the 2024-11-05 HTTP+SSE transport, so that one is ours (`LegacySse`): an rmcp
//! `Transport` that POSTs to the endpoint the event stream names and reads the answers from
//! that stream. Everything above the transport is the same for both.

// Sampling, roots and logging are deprecated from 2026-07-28 on (SEP-2577), but servers of
// the 2025 revisions use them, and the gateway relays them.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::{HeaderMap, StatusCode, header};
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequest, CancelledNotificationParam, ClientResult, CreateMessageRequest,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequest, ElicitRequestParams,
    ElicitResult, ErrorCode, GetExtensions, ListRootsRequest, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, RequestId,
    ResourceUpdatedNotificationParam, ServerRequest,
};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ClientJsonRpcMessage, ClientRequest,
    Implementation, ListPromptsRequest, ListResourceTemplatesRequest, ListResourcesRequest,
    ListToolsRequest, PaginatedRequestParams, Prompt, ProtocolVersion, Resource, ResourceTemplate,
    ServerCapabilities, ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{
    ClientLifecycleMode, InboundStreamOrigin, NotificationContext, OriginatingRequestId, Peer,
    PeerRequestOptions, RequestContext, RoleClient, RoleServer, RunningService, ServiceError,
    serve_client_with_lifecycle,
};
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::{
    HttpStatusError, StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::transport::{StreamableHttpClientTransport, Transport as RmcpTransport};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::parked::Asker;
use super::upstream_http::{
    Credential, GuardedHttp, HttpError, HttpFailure, MAX_ANSWER_BYTES, SseParser, refusal,
};
use crate::server::http::{GuardError, Outbound};

/// The revision Gatehouse asks for; servers answer with one they speak.
pub const CLIENT_PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_11_25;
/// Pages of tools/list read at most.
const MAX_PAGES: usize = 50;
/// Reconnects of a session's GET stream before it is left closed (the next listing notices
/// nothing; a session that ended shows as a 404 on the next request).
const STREAM_RETRIES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP.
    Http,
    /// The 2024-11-05 HTTP+SSE transport.
    Sse,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0}")]
    Refused(String),
    #[error("it answered 401 Unauthorized")]
    Unauthorized,
    #[error("it answered 403 Forbidden")]
    Forbidden,
    /// 403 `insufficient_scope`: the token lacks scopes; the challenge's, when it names them.
    #[error("it answered 403: the token lacks scopes{}", .0.as_deref().map(|s| format!(" ({s})")).unwrap_or_default())]
    InsufficientScope(Option<String>),
    #[error("its session ended")]
    SessionExpired,
    #[error("it did not answer within {0} s")]
    Timeout(u64),
    #[error("{0}")]
    Transport(String),
    #[error("it returned JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
}

impl From<GuardError> for UpstreamError {
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::Refused(m) => UpstreamError::Refused(m),
            GuardError::Fetch(f) => UpstreamError::Transport(f.to_string()),
        }
    }
}

impl UpstreamError {
    /// What the HTTP layer said, in the gateway's terms.
    fn from_http(e: &HttpError, timeout: Duration) -> Self {
        match e {
            StreamableHttpError::AuthRequired(_) => UpstreamError::Unauthorized,
            StreamableHttpError::InsufficientScope(e) => {
                UpstreamError::InsufficientScope(e.required_scope.clone())
            }
            StreamableHttpError::HttpStatus(s) if s.status == 403 => UpstreamError::Forbidden,
            StreamableHttpError::HttpStatus(s) => {
                UpstreamError::Transport(format!("it answered HTTP {}", s.status))
            }
            StreamableHttpError::SessionExpired => UpstreamError::SessionExpired,
            StreamableHttpError::Client(HttpFailure::Timeout) => {
                UpstreamError::Timeout(timeout.as_secs())
            }
            StreamableHttpError::Client(f) => UpstreamError::Transport(f.to_string()),
            StreamableHttpError::ResponseBodyTooLarge { .. } => {
                UpstreamError::Transport("its answer is too large".into())
            }
            StreamableHttpError::UnexpectedContentType(kind) => UpstreamError::Transport(format!(
                "it answered with {}, not JSON or an event stream",
                kind.as_deref().unwrap_or("no content type")
            )),
            StreamableHttpError::UnexpectedServerResponse(m) => {
                UpstreamError::Transport(m.to_string())
            }
            other => UpstreamError::Transport(other.to_string()),
        }
    }

    /// Finds the HTTP error under whatever rmcp wrapped it in.
    fn from_source(e: &(dyn std::error::Error + 'static), timeout: Duration) -> Self {
        let mut source = Some(e);
        while let Some(current) = source {
            if let Some(http) = current.downcast_ref::<HttpError>() {
                return UpstreamError::from_http(http, timeout);
            }
            source = current.source();
        }
        UpstreamError::Transport(e.to_string())
    }

    fn from_service(e: ServiceError, timeout: Duration) -> Self {
        match e {
            ServiceError::McpError(data) => UpstreamError::Rpc {
                code: i64::from(data.code.0),
                message: data.message.chars().take(500).collect(),
            },
            ServiceError::TransportSend(t) => UpstreamError::from_source(t.error.as_ref(), timeout),
            ServiceError::TransportClosed => UpstreamError::SessionExpired,
            ServiceError::Timeout { .. } => UpstreamError::Timeout(timeout.as_secs()),
            other => UpstreamError::Transport(other.to_string()),
        }
    }

    fn from_initialize(e: rmcp::service::ClientInitializeError, timeout: Duration) -> Self {
        use rmcp::service::ClientInitializeError as E;
        match e {
            E::TransportError { error, .. } => {
                UpstreamError::from_source(error.error.as_ref(), timeout)
            }
            E::JsonRpcError(data) => UpstreamError::Rpc {
                code: i64::from(data.code.0),
                message: data.message.chars().take(500).collect(),
            },
            E::ConnectionClosed(_) => {
                UpstreamError::Transport("it closed the connection during the handshake".into())
            }
            other => UpstreamError::Transport(format!("its handshake failed: {other}")),
        }
    }
}

/// "The tool list changed": a flag the next `tools/list` reads, and a call that tells whoever
/// listens for changes (`subscriptions/listen` streams) at once.
#[derive(Clone)]
pub struct ChangeFlag {
    raised: Arc<AtomicBool>,
    on_change: Arc<dyn Fn() + Send + Sync>,
}

impl ChangeFlag {
    pub fn new(on_change: Arc<dyn Fn() + Send + Sync>) -> Self {
        ChangeFlag {
            raised: Arc::new(AtomicBool::new(false)),
            on_change,
        }
    }

    /// The server said its list changed. Only the first announcement until the next listing
    /// is passed on: a server repeating itself cannot flood the listeners.
    fn announce(&self) {
        if !self.raised.swap(true, Ordering::Relaxed) {
            (self.on_change)();
        }
    }

    /// The session ended: list again next time (nobody needs telling yet).
    fn mark(&self) {
        self.raised.store(true, Ordering::Relaxed);
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Relaxed)
    }

    fn clear(&self) {
        self.raised.store(false, Ordering::Relaxed);
    }
}

/// The MCP client a relayed call came from: where the upstream's progress, log messages and
/// requests about that call go.
#[derive(Clone)]
pub struct Downstream {
    pub peer: Peer<RoleServer>,
    /// Its request (the upstream's requests ride that request's stream).
    pub request_id: RequestId,
    /// Its progress token, if it asked for progress.
    pub progress_token: Option<ProgressToken>,
    /// Cancelled when the client cancels its request.
    pub cancelled: CancellationToken,
    /// What it declared: form elicitation, sampling, roots.
    pub elicitation: bool,
    pub sampling: bool,
    pub roots: bool,
    /// Served by the 2026-07-28 rules, which have no requests to the client mid-call.
    pub stateless: bool,
    /// Of a 2026-07-28 client: where the upstream's requests go instead, to be handed to
    /// the client as the input of the call's next round (`parked`).
    pub asker: Option<Asker>,
}

/// A 2026-07-28 upstream's call again, after its `InputRequiredResult`: the client's answers
/// by the upstream's keys, and the upstream's `requestState` echoed.
#[derive(Debug, Clone, Default)]
pub struct UpstreamRetry {
    pub responses: std::collections::BTreeMap<String, Value>,
    pub state: Option<String>,
}

/// Lists other than tools that an upstream said changed, and resources it said were updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    PromptsChanged,
    ResourcesChanged,
    /// A resource subscribed to changed (its URI as the upstream names it).
    ResourceUpdated(String),
}

/// The calls of a session that have a client to relay to, by the upstream request's id, and
/// rmcp's progress token of each (rmcp replaces the client's own).
#[derive(Clone, Default)]
struct InFlight {
    calls: Arc<Mutex<HashMap<RequestId, Downstream>>>,
    progress: Arc<Mutex<HashMap<ProgressToken, RequestId>>>,
    /// Woken at each registration, for a request that came before its call was registered.
    registered: Arc<tokio::sync::Notify>,
}

/// How long an upstream request waits for its call to be registered.
const REGISTRATION_WAIT: Duration = Duration::from_secs(1);

/// Removes a call from `InFlight` when it ends, however it ends.
struct Registered {
    in_flight: InFlight,
    id: RequestId,
    token: ProgressToken,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.in_flight
            .calls
            .lock()
            .expect("calls lock")
            .remove(&self.id);
        self.in_flight
            .progress
            .lock()
            .expect("progress lock")
            .remove(&self.token);
    }
}

impl InFlight {
    fn register(&self, id: RequestId, token: ProgressToken, to: Downstream) -> Registered {
        self.calls
            .lock()
            .expect("calls lock")
            .insert(id.clone(), to);
        self.progress
            .lock()
            .expect("progress lock")
            .insert(token.clone(), id.clone());
        self.registered.notify_waiters();
        Registered {
            in_flight: self.clone(),
            id,
            token,
        }
    }

    fn get(&self, id: &RequestId) -> Option<Downstream> {
        self.calls.lock().expect("calls lock").get(id).cloned()
    }

    fn all(&self) -> Vec<Downstream> {
        self.calls
            .lock()
            .expect("calls lock")
            .values()
            .cloned()
            .collect()
    }

    /// The client of the call an upstream request arrived with. The request may arrive on
    /// the call's stream before the call is registered (rmcp queues it first), so an unknown
    /// id is waited for, a second at most. On the session's GET stream (no call named), the
    /// call it is about is the only one in flight, or none can be told.
    async fn client_of(&self, context: &RequestContext<RoleClient>) -> Option<Downstream> {
        match context.extensions.get::<InboundStreamOrigin>() {
            Some(InboundStreamOrigin::OutboundRequest(id)) => {
                let deadline = tokio::time::Instant::now() + REGISTRATION_WAIT;
                loop {
                    // Asked for before looking, so a registration in between is not missed.
                    let registered = self.registered.notified();
                    if let Some(d) = self.get(id) {
                        return Some(d);
                    }
                    if tokio::time::timeout_at(deadline, registered).await.is_err() {
                        return None;
                    }
                }
            }
            _ => {
                let all = self.all();
                (all.len() == 1).then(|| all.into_iter().next()).flatten()
            }
        }
    }
}

/// What an upstream sends Gatehouse that is not an answer: list changes, and what belongs to
/// a call (progress, log messages, requests to the client), relayed to that call's client.
#[derive(Clone)]
struct Relay {
    tools_changed: ChangeFlag,
    notice: Arc<dyn Fn(Notice) + Send + Sync>,
    in_flight: InFlight,
}

/// The answer an upstream gets when the client cannot be asked `what`.
fn cannot_ask(
    client: Option<&Downstream>,
    what: &str,
    declared: fn(&Downstream) -> bool,
) -> Option<ErrorData> {
    let why = match client {
        None => "no MCP client call is waiting on this request".to_string(),
        Some(d) if d.stateless && d.asker.is_none() => format!(
            "the MCP client calling through Gatehouse speaks 2026-07-28, where a server cannot send it {what} requests in the middle of a call"
        ),
        Some(d) if !declared(d) => {
            format!("the MCP client calling through Gatehouse does not support {what}")
        }
        Some(_) => return None,
    };
    Some(ErrorData::new(ErrorCode::METHOD_NOT_FOUND, why, None))
}

/// Sends `request` to the client, on the stream of its call. In a task of its own: the
/// handler's task carries the upstream's request id, which rmcp would take for the client's.
async fn ask_client(
    to: &Downstream,
    mut request: ServerRequest,
) -> Result<ClientResult, ErrorData> {
    request
        .extensions_mut()
        .insert(OriginatingRequestId(to.request_id.clone()));
    let peer = to.peer.clone();
    let asked = tokio::spawn(async move { peer.send_request(request).await });
    match asked.await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(ServiceError::McpError(e))) => Err(e),
        Ok(Err(e)) => Err(ErrorData::internal_error(
            format!("the MCP client did not answer: {e}"),
            None,
        )),
        Err(e) => Err(ErrorData::internal_error(e.to_string(), None)),
    }
}

/// Asks a 2026-07-28 client through the call's next round, and reads its answer as `R`.
async fn ask_in_rounds<R: serde::de::DeserializeOwned>(
    asker: &Asker,
    method: &'static str,
    params: Value,
) -> Result<R, ErrorData> {
    let answer = asker.ask(method, params).await?;
    serde_json::from_value(answer).map_err(|_| client_answered(method))
}

fn client_answered(kind: &str) -> ErrorData {
    ErrorData::internal_error(
        format!("the MCP client answered {kind} with something else"),
        None,
    )
}

impl ClientHandler for Relay {
    fn get_info(&self) -> ClientConfig {
        // Declared for every client: each request is checked against the calling client's
        // own capabilities, and refused when it lacks them.
        let capabilities: ClientCapabilities = serde_json::from_value(serde_json::json!({
            "elicitation": {"form": {}},
            "sampling": {},
            "roots": {}
        }))
        .expect("capabilities JSON");
        let mut info = ClientConfig::new(
            capabilities,
            Implementation::new("gatehouse", env!("CARGO_PKG_VERSION")),
        );
        info.protocol_version = CLIENT_PROTOCOL_VERSION;
        info
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.announce();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        (self.notice)(Notice::PromptsChanged);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        (self.notice)(Notice::ResourcesChanged);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        (self.notice)(Notice::ResourceUpdated(params.uri));
    }

    async fn on_progress(
        &self,
        mut params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let call = self
            .in_flight
            .progress
            .lock()
            .expect("progress lock")
            .get(&params.progress_token)
            .cloned();
        let Some(client) = call.and_then(|id| self.in_flight.get(&id)) else {
            return;
        };
        if let Some(token) = client.progress_token {
            params.progress_token = token;
            let _ = client.peer.notify_progress(params).await;
        }
    }

    /// Log messages belong to no call in particular: every client with a call in flight on
    /// this session hears them (a session usually serves one at a time).
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        for client in self.in_flight.all() {
            let _ = client.peer.notify_logging_message(params.clone()).await;
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let client = self.in_flight.client_of(&context).await;
        if let Some(refused) = cannot_ask(client.as_ref(), "elicitation", |d| d.elicitation) {
            return Err(refused);
        }
        let client = client.expect("checked");
        if let Some(asker) = &client.asker {
            let params = serde_json::to_value(&params).unwrap_or_default();
            return ask_in_rounds(asker, "elicitation/create", params).await;
        }
        match ask_client(
            &client,
            ServerRequest::ElicitRequest(ElicitRequest::new(params)),
        )
        .await?
        {
            ClientResult::ElicitResult(r) => Ok(r),
            _ => Err(client_answered("elicitation/create")),
        }
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let client = self.in_flight.client_of(&context).await;
        if let Some(refused) = cannot_ask(client.as_ref(), "sampling", |d| d.sampling) {
            return Err(refused);
        }
        let client = client.expect("checked");
        if let Some(asker) = &client.asker {
            let params = serde_json::to_value(&params).unwrap_or_default();
            return ask_in_rounds(asker, "sampling/createMessage", params).await;
        }
        let request = ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params));
        match ask_client(&client, request).await? {
            ClientResult::CreateMessageResult(r) => Ok(*r),
            _ => Err(client_answered("sampling/createMessage")),
        }
    }

    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let client = self.in_flight.client_of(&context).await;
        if let Some(refused) = cannot_ask(client.as_ref(), "roots", |d| d.roots) {
            return Err(refused);
        }
        let client = client.expect("checked");
        if let Some(asker) = &client.asker {
            return ask_in_rounds(asker, "roots/list", serde_json::json!({})).await;
        }
        match ask_client(
            &client,
            ServerRequest::ListRootsRequest(ListRootsRequest::default()),
        )
        .await?
        {
            ClientResult::ListRootsResult(r) => Ok(r),
            _ => Err(client_answered("roots/list")),
        }
    }
}

/// Whether an `initialize` refusal reads like a server of the 2026-07-28 revision only: a
/// JSON-RPC error (-32020, a missing protocol header, or any other), or HTTP 400 or 405.
fn speaks_only_2026(e: &rmcp::service::ClientInitializeError) -> bool {
    use rmcp::service::ClientInitializeError as E;
    match e {
        E::JsonRpcError(_) => true,
        E::TransportError { error, .. } => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.error.as_ref());
            while let Some(current) = source {
                if let Some(StreamableHttpError::HttpStatus(s)) =
                    current.downcast_ref::<HttpError>()
                {
                    return s.status == 400 || s.status == 405;
                }
                source = current.source();
            }
            false
        }
        _ => false,
    }
}

/// One live session with an upstream server. Cheap to share; requests may run concurrently.
pub struct UpstreamSession {
    service: RunningService<RoleClient, Relay>,
    credential: Credential,
    timeout: Duration,
    pub protocol_version: String,
    pub server_name: String,
    /// What the server said it offers (prompts, resources, completions, …).
    pub capabilities: ServerCapabilities,
    /// Raised when the server says its tool list changed (or the session ended).
    pub tools_changed: ChangeFlag,
    in_flight: InFlight,
}

/// A list request of one kind, and how its answer reads: (items, next cursor).
type ListPage<T> = (
    fn(Option<PaginatedRequestParams>) -> ClientRequest,
    fn(ServerResult) -> Option<(Vec<T>, Option<String>)>,
);

pub const PROMPTS: ListPage<Prompt> = (
    |p| {
        ClientRequest::ListPromptsRequest(ListPromptsRequest {
            params: p,
            ..Default::default()
        })
    },
    |r| match r {
        ServerResult::ListPromptsResult(r) => Some((r.prompts, r.next_cursor)),
        _ => None,
    },
);

pub const RESOURCES: ListPage<Resource> = (
    |p| {
        ClientRequest::ListResourcesRequest(ListResourcesRequest {
            params: p,
            ..Default::default()
        })
    },
    |r| match r {
        ServerResult::ListResourcesResult(r) => Some((r.resources, r.next_cursor)),
        _ => None,
    },
);

pub const RESOURCE_TEMPLATES: ListPage<ResourceTemplate> = (
    |p| {
        ClientRequest::ListResourceTemplatesRequest(ListResourceTemplatesRequest {
            params: p,
            ..Default::default()
        })
    },
    |r| match r {
        ServerResult::ListResourceTemplatesResult(r) => Some((r.resource_templates, r.next_cursor)),
        _ => None,
    },
);

impl UpstreamSession {
    /// Connects and runs the `initialize` handshake. `headers`: what Gatehouse sends (the
    /// credential), until a request brings newer ones.
    pub async fn connect(
        outbound: &Outbound,
        url: &Url,
        transport: Transport,
        timeout: Duration,
        headers: &HeaderMap,
        tools_changed: ChangeFlag,
        notice: Arc<dyn Fn(Notice) + Send + Sync>,
    ) -> Result<UpstreamSession, UpstreamError> {
        let http = GuardedHttp {
            calls: outbound.guarded_client(url, timeout).await?,
            streams: outbound.guarded_stream_client(url, timeout).await?,
            credential: Arc::new(RwLock::new(headers.clone())),
        };
        let credential = http.credential.clone();
        let in_flight = InFlight::default();
        let relay = Relay {
            tools_changed: tools_changed.clone(),
            notice,
            in_flight: in_flight.clone(),
        };
        let started = async {
            match transport {
                Transport::Http => {
                    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                        // Gatehouse notices an ended session itself (a request's 404), opens
                        // a new one with the credential of that moment, and lists again.
                        .reinit_on_expired_session(false)
                        .max_json_response_size(MAX_ANSWER_BYTES)
                        .max_sse_event_size(MAX_ANSWER_BYTES);
                    let mut backoff = ExponentialBackoff::default();
                    backoff.max_times = Some(STREAM_RETRIES);
                    backoff.base_duration = Duration::from_secs(1);
                    backoff.max_delay = Some(Duration::from_secs(10));
                    config.retry_config = Arc::new(backoff);
                    let transport =
                        || StreamableHttpClientTransport::with_client(http.clone(), config.clone());
                    // The session-based revisions first: what the relay does mid-call (the
                    // server's requests to the client) needs them. A server that speaks only
                    // 2026-07-28 refuses `initialize`; then its own way, `server/discover`.
                    match relay.clone().serve(transport()).await {
                        Err(first) if speaks_only_2026(&first) => {
                            let modern = ClientLifecycleMode::Discover {
                                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                            };
                            serve_client_with_lifecycle(relay, transport(), modern)
                                .await
                                .map_err(|_| first)
                        }
                        other => other,
                    }
                }
                Transport::Sse => {
                    let legacy = LegacySse::open(http, url, timeout, tools_changed.clone()).await?;
                    relay.serve(legacy).await
                }
            }
            .map_err(|e| UpstreamError::from_initialize(e, timeout))
        };
        let service = tokio::time::timeout(timeout, started)
            .await
            .map_err(|_| UpstreamError::Timeout(timeout.as_secs()))??;
        let info = service.peer().peer_info();
        let protocol_version = info
            .as_ref()
            .map(|i| i.protocol_version.to_string())
            .unwrap_or_else(|| CLIENT_PROTOCOL_VERSION.to_string());
        let server_name = info
            .as_ref()
            .and_then(|i| i.server_info.as_ref())
            .map(|s| s.name.chars().take(100).collect())
            .unwrap_or_default();
        let capabilities = info
            .as_ref()
            .map(|i| i.capabilities.clone())
            .unwrap_or_default();
        Ok(UpstreamSession {
            service,
            credential,
            timeout,
            protocol_version,
            server_name,
            capabilities,
            tools_changed,
            in_flight,
        })
    }

    /// The credential this and later requests of the session carry (it may have been
    /// refreshed since the last).
    fn use_credential(&self, headers: &HeaderMap) {
        let mut current = self.credential.write().expect("credential lock");
        if *current != *headers {
            *current = headers.clone();
        }
    }

    async fn send(&self, request: ClientRequest) -> Result<ServerResult, UpstreamError> {
        // On expiry rmcp tells the server the request is cancelled.
        let options = PeerRequestOptions::with_timeout(self.timeout);
        let sent = async {
            self.service
                .peer()
                .send_request_with_option(request, options)
                .await?
                .await_response()
                .await
        };
        sent.await
            .map_err(|e| UpstreamError::from_service(e, self.timeout))
    }

    /// One request of any kind, with the credential of this moment.
    pub async fn request(
        &self,
        request: ClientRequest,
        headers: &HeaderMap,
    ) -> Result<ServerResult, UpstreamError> {
        self.use_credential(headers);
        self.send(request).await
    }

    /// Everything of one kind the server lists (`PROMPTS`, `RESOURCES`, …), page by page.
    pub async fn list_all<T>(
        &self,
        (ask, read): ListPage<T>,
        method: &str,
        headers: &HeaderMap,
    ) -> Result<Vec<T>, UpstreamError> {
        self.use_credential(headers);
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor
                .take()
                .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
            let Some((page, next)) = read(self.send(ask(params)).await?) else {
                return Err(UpstreamError::Transport(format!(
                    "its answer to {method} is not a {method} result"
                )));
            };
            items.extend(page);
            cursor = next.filter(|c| !c.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(items)
    }

    /// All the server's tools, page by page.
    pub async fn list_tools(&self, headers: &HeaderMap) -> Result<Vec<Value>, UpstreamError> {
        self.use_credential(headers);
        // Cleared first: a change announced while this list runs is listed again next time.
        self.tools_changed.clear();
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor
                .take()
                .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
            let page = match self
                .send(ClientRequest::ListToolsRequest(ListToolsRequest {
                    method: Default::default(),
                    params,
                    extensions: Default::default(),
                }))
                .await?
            {
                ServerResult::ListToolsResult(page) => page,
                other => return Err(unexpected("tools/list", &other)),
            };
            tools.extend(
                page.tools
                    .iter()
                    .filter_map(|t| serde_json::to_value(t).ok()),
            );
            cursor = page.next_cursor.filter(|c| !c.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }

    /// A tool's result as the upstream sent it (a tool error included). With `client`, what
    /// the upstream sends about the call (progress, log messages, its requests) goes to that
    /// client, and the client cancelling its request cancels the upstream's.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Value,
        headers: &HeaderMap,
        client: Option<Downstream>,
        retry: Option<UpstreamRetry>,
    ) -> Result<Value, UpstreamError> {
        self.use_credential(headers);
        let mut params = CallToolRequestParams::new(name.to_string());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        if let Some(retry) = retry {
            params = params.with_input_responses(retry.responses);
            if let Some(state) = retry.state {
                params = params.with_request_state(state);
            }
        }
        let peer = self.service.peer();
        let failed = |e| UpstreamError::from_service(e, self.timeout);
        let handle = peer
            .send_request_with_option(
                ClientRequest::CallToolRequest(CallToolRequest::new(params)),
                PeerRequestOptions::with_timeout(self.timeout),
            )
            .await
            .map_err(failed)?;
        let id = handle.id.clone();
        let cancelled = client
            .as_ref()
            .map(|c| c.cancelled.clone())
            .unwrap_or_default();
        let _registered = client.map(|c| {
            self.in_flight
                .register(id.clone(), handle.progress_token.clone(), c)
        });
        let answer = tokio::select! {
            answer = handle.await_response() => answer.map_err(failed)?,
            _ = cancelled.cancelled() => {
                let note = CancelledNotificationParam::new(
                    Some(id),
                    Some("the MCP client cancelled its call".into()),
                );
                let _ = peer.notify_cancelled(note).await;
                return Err(UpstreamError::Transport("the call was cancelled".into()));
            }
        };
        match answer {
            ServerResult::CallToolResult(result) => serde_json::to_value(result).map_err(|e| {
                UpstreamError::Transport(format!("its result does not serialize: {e}"))
            }),
            // Passed on as it is (`resultType: "input_required"`): the caller hands the
            // requests to its client and retries with the answers (`UpstreamRetry`).
            ServerResult::InputRequiredResult(result) => {
                serde_json::to_value(result).map_err(|e| {
                    UpstreamError::Transport(format!("its result does not serialize: {e}"))
                })
            }
            other => Err(unexpected("tools/call", &other)),
        }
    }

    /// Whether the session can still carry requests.
    pub fn alive(&self) -> bool {
        !self.service.peer().is_transport_closed()
    }
}

fn unexpected(method: &str, answer: &ServerResult) -> UpstreamError {
    let kind = serde_json::to_value(answer)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
        .unwrap_or_default();
    UpstreamError::Transport(format!(
        "its answer to {method} is not a {method} result (it has {})",
        if kind.is_empty() {
            "nothing".to_string()
        } else {
            kind.join(", ")
        }
    ))
}

/// The 2024-11-05 HTTP+SSE transport: an event stream opened with a GET names the endpoint
/// to POST messages to; every message from the server, answers included, comes on that
/// stream. When the stream ends, so does the session.
struct LegacySse {
    http: GuardedHttp,
    endpoint: Url,
    incoming: mpsc::Receiver<ServerJsonRpcMessage>,
    _reader: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LegacySse {
    /// Opens the event stream and waits for its `endpoint` event. The endpoint must be on
    /// the server's own origin: a server cannot send Gatehouse's POSTs (and their
    /// credential) elsewhere.
    async fn open(
        http: GuardedHttp,
        url: &Url,
        timeout: Duration,
        tools_changed: ChangeFlag,
    ) -> Result<LegacySse, UpstreamError> {
        let failed = |e: HttpError| UpstreamError::from_http(&e, timeout);
        let headers = http.credential.read().expect("credential lock").clone();
        let response = tokio::time::timeout(
            timeout,
            http.streams
                .get(url.clone())
                .headers(headers)
                .header(header::ACCEPT, "text/event-stream")
                .send(),
        )
        .await
        .map_err(|_| UpstreamError::Timeout(timeout.as_secs()))?
        .map_err(|e| failed(StreamableHttpError::Client(e.into())))?;
        if let Some(refused) = refusal(response.status(), response.headers()) {
            return Err(failed(refused));
        }
        if !response.status().is_success() {
            return Err(failed(StreamableHttpError::HttpStatus(
                HttpStatusError::new(response.status().as_u16(), None),
            )));
        }
        let (endpoint_tx, endpoint_rx) = tokio::sync::oneshot::channel::<String>();
        let (tx, incoming) = mpsc::channel(64);
        let reader = tokio::spawn(async move {
            let mut response = response;
            let mut parser = SseParser::default();
            let mut endpoint_tx = Some(endpoint_tx);
            'read: while let Ok(Some(chunk)) = response.chunk().await {
                let Ok(events) = parser.push(&chunk) else {
                    break;
                };
                for event in events {
                    let data = event.data.unwrap_or_default();
                    if event.event.as_deref() == Some("endpoint") {
                        if let Some(endpoint) = endpoint_tx.take() {
                            let _ = endpoint.send(data);
                        }
                        continue;
                    }
                    let Ok(message) = serde_json::from_str::<ServerJsonRpcMessage>(&data) else {
                        continue;
                    };
                    if tx.send(message).await.is_err() {
                        break 'read;
                    }
                }
            }
            // The session is over: whoever waits for an answer hears so, and the tools are
            // listed again on the next session.
            tools_changed.mark();
        });
        let reader = AbortOnDrop(reader);
        let endpoint = tokio::time::timeout(timeout, endpoint_rx)
            .await
            .map_err(|_| UpstreamError::Timeout(timeout.as_secs()))?
            .map_err(|_| {
                UpstreamError::Transport("its event stream ended before naming an endpoint".into())
            })?;
        let endpoint = url
            .join(endpoint.trim())
            .map_err(|e| UpstreamError::Transport(format!("its endpoint is not a URL: {e}")))?;
        if endpoint.origin() != url.origin() {
            return Err(UpstreamError::Refused(format!(
                "its endpoint {endpoint} is on another origin than {url}"
            )));
        }
        Ok(LegacySse {
            http,
            endpoint,
            incoming,
            _reader: reader,
        })
    }
}

impl RmcpTransport<RoleClient> for LegacySse {
    type Error = HttpError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), HttpError>> + Send + 'static {
        let http = self.http.clone();
        let endpoint = self.endpoint.clone();
        async move {
            let headers = http.credential.read().expect("credential lock").clone();
            let response = http
                .calls
                .post(endpoint)
                .headers(headers)
                .json(&item)
                .send()
                .await
                .map_err(|e| StreamableHttpError::Client(e.into()))?;
            let status = response.status();
            if let Some(refused) = refusal(status, response.headers()) {
                return Err(refused);
            }
            match status {
                s if s.is_success() => Ok(()),
                StatusCode::NOT_FOUND => Err(StreamableHttpError::SessionExpired),
                s => Err(StreamableHttpError::HttpStatus(HttpStatusError::new(
                    s.as_u16(),
                    None,
                ))),
            }
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), HttpError> {
        self.incoming.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::transport::streamable_http_client::{AuthRequiredError, InsufficientScopeError};

    #[test]
    fn http_failures_in_the_gateway_s_terms() {
        let t = Duration::from_secs(7);
        let of = |e: HttpError| UpstreamError::from_http(&e, t).to_string();
        assert_eq!(
            of(StreamableHttpError::AuthRequired(AuthRequiredError::new(
                String::new()
            ))),
            "it answered 401 Unauthorized"
        );
        assert_eq!(
            of(StreamableHttpError::InsufficientScope(
                InsufficientScopeError::new(
                    "Bearer error=\"insufficient_scope\", scope=\"a b\"".into(),
                    Some("a b".into())
                )
            )),
            "it answered 403: the token lacks scopes (a b)"
        );
        assert_eq!(
            of(StreamableHttpError::HttpStatus(HttpStatusError::new(
                403, None
            ))),
            "it answered 403 Forbidden"
        );
        assert_eq!(
            of(StreamableHttpError::HttpStatus(HttpStatusError::new(
                503, None
            ))),
            "it answered HTTP 503"
        );
        assert_eq!(of(StreamableHttpError::SessionExpired), "its session ended");
        assert_eq!(
            of(StreamableHttpError::Client(HttpFailure::Timeout)),
            "it did not answer within 7 s"
        );
        assert_eq!(
            of(StreamableHttpError::Client(HttpFailure::Connect)),
            "cannot connect to it"
        );
        assert_eq!(
            of(StreamableHttpError::UnexpectedContentType(Some(
                "text/html".into()
            ))),
            "it answered with text/html, not JSON or an event stream"
        );
        // Under rmcp's wrapping too.
        let wrapped: Box<dyn std::error::Error + Send + Sync> =
            Box::new(StreamableHttpError::<HttpFailure>::SessionExpired);
        assert!(matches!(
            UpstreamError::from_source(wrapped.as_ref(), t),
            UpstreamError::SessionExpired
        ));
    }
}
