//! A small MCP client for upstream servers: JSON-RPC over Streamable HTTP (a JSON or an SSE
//! answer per POST, `Mcp-Session-Id` kept) or over the legacy HTTP+SSE transport (a GET event
//! stream that names the POST endpoint and carries the answers). It is Gatehouse's own so that
//! every request goes through the outbound guards (`Outbound::guarded_client`: SSRF checks,
//! no redirects, deadlines), carries exactly the headers Gatehouse chose (never the MCP
//! client's), and reports a 401 as such, which the gateway turns into one refresh and retry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use url::Url;

use crate::server::http::{FetchError, GuardError, Outbound};

/// The revision Gatehouse asks for; servers answer with one they speak.
pub const CLIENT_PROTOCOL_VERSION: &str = "2025-11-25";
/// Largest answer read from an upstream (a tools/list of a big server fits easily).
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Pages of tools/list read at most.
const MAX_PAGES: usize = 50;

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
            GuardError::Fetch(f) => UpstreamError::from(f),
        }
    }
}

impl From<FetchError> for UpstreamError {
    fn from(e: FetchError) -> Self {
        UpstreamError::Transport(match e {
            FetchError::TooLarge => "its answer is too large".to_string(),
            other => describe(&other),
        })
    }
}

fn describe(e: &FetchError) -> String {
    match e {
        FetchError::Transport(e) if e.is_timeout() => "the request timed out".to_string(),
        FetchError::Transport(e) if e.is_connect() => "cannot connect to it".to_string(),
        other => other.to_string(),
    }
}

fn http_error(e: reqwest::Error, timeout: Duration) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout(timeout.as_secs())
    } else if e.is_connect() {
        UpstreamError::Transport("cannot connect to it".into())
    } else {
        UpstreamError::Transport(e.to_string())
    }
}

/// One live session with an upstream server. Cheap to share; requests may run concurrently.
pub struct UpstreamSession {
    url: Url,
    timeout: Duration,
    client: reqwest::Client,
    session_id: Option<String>,
    pub protocol_version: String,
    pub server_name: String,
    /// Raised when the server says its tool list changed (or the session ended).
    pub tools_changed: ChangeFlag,
    next_id: AtomicI64,
    sse: Option<SseChannel>,
    /// Ends the background stream reader with the session.
    _reader: Option<AbortOnDrop>,
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

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The legacy transport: POSTs go to `endpoint`, answers come on the event stream.
struct SseChannel {
    endpoint: Url,
    pending: Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>,
    alive: Arc<AtomicBool>,
}

impl UpstreamSession {
    /// Connects and runs the `initialize` handshake. `headers`: what Gatehouse sends (the
    /// credential), on every request of the session.
    pub async fn connect(
        outbound: &Outbound,
        url: &Url,
        transport: Transport,
        timeout: Duration,
        headers: &HeaderMap,
        tools_changed: ChangeFlag,
    ) -> Result<UpstreamSession, UpstreamError> {
        let client = outbound.guarded_client(url, timeout).await?;
        let mut session = UpstreamSession {
            url: url.clone(),
            timeout,
            client,
            session_id: None,
            protocol_version: CLIENT_PROTOCOL_VERSION.into(),
            server_name: String::new(),
            tools_changed: tools_changed.clone(),
            next_id: AtomicI64::new(1),
            sse: None,
            _reader: None,
        };
        if transport == Transport::Sse {
            let stream_client = outbound.guarded_stream_client(url, timeout).await?;
            let (channel, reader) =
                open_sse(&stream_client, url, timeout, headers, tools_changed).await?;
            session.sse = Some(channel);
            session._reader = Some(reader);
        }
        let params = json!({
            "protocolVersion": CLIENT_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")}
        });
        let (result, session_id) = session.exchange("initialize", params, headers).await?;
        if let Some(v) = result.get("protocolVersion").and_then(Value::as_str) {
            session.protocol_version = v.to_string();
        }
        session.server_name = result
            .pointer("/serverInfo/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(100)
            .collect();
        session.session_id = session_id;
        session.notify("notifications/initialized", headers).await?;
        if transport == Transport::Http {
            session._reader = Some(session.listen(outbound, headers).await);
        }
        Ok(session)
    }

    /// Streamable HTTP: the GET stream on which a server sends what is not an answer
    /// (`notifications/tools/list_changed`). A server without one (405) is simply not heard.
    async fn listen(&self, outbound: &Outbound, headers: &HeaderMap) -> AbortOnDrop {
        let request = outbound
            .guarded_stream_client(&self.url, self.timeout)
            .await
            .map(|client| {
                let mut r = client
                    .get(self.url.clone())
                    .headers(headers.clone())
                    .header(header::ACCEPT, "text/event-stream")
                    .header("mcp-protocol-version", &self.protocol_version);
                if let Some(id) = &self.session_id {
                    r = r.header("mcp-session-id", id);
                }
                r
            });
        let tools_changed = self.tools_changed.clone();
        AbortOnDrop(tokio::spawn(async move {
            let Ok(request) = request else { return };
            let Ok(mut response) = request.send().await else {
                return;
            };
            let is_stream = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !response.status().is_success() || !is_stream {
                return;
            }
            let mut parser = SseParser::default();
            while let Ok(Some(chunk)) = response.chunk().await {
                for event in parser.push(&chunk) {
                    if let Ok(message) = serde_json::from_str::<Value>(&event.data) {
                        note_notification(&message, &tools_changed);
                    }
                }
            }
        }))
    }

    /// All the server's tools, page by page.
    pub async fn list_tools(&self, headers: &HeaderMap) -> Result<Vec<Value>, UpstreamError> {
        // Cleared first: a change announced while this list runs is listed again next time.
        self.tools_changed.clear();
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params, headers).await?;
            if let Some(list) = page.get("tools").and_then(Value::as_array) {
                tools.extend(list.iter().cloned());
            }
            cursor = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }

    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Value,
        headers: &HeaderMap,
    ) -> Result<Value, UpstreamError> {
        self.request(
            "tools/call",
            json!({"name": name, "arguments": arguments}),
            headers,
        )
        .await
    }

    pub async fn request(
        &self,
        method: &str,
        params: Value,
        headers: &HeaderMap,
    ) -> Result<Value, UpstreamError> {
        self.exchange(method, params, headers).await.map(|(r, _)| r)
    }

    /// Whether the legacy event stream is still open (always true for Streamable HTTP).
    pub fn alive(&self) -> bool {
        self.sse
            .as_ref()
            .is_none_or(|s| s.alive.load(Ordering::Relaxed))
    }

    async fn notify(&self, method: &str, headers: &HeaderMap) -> Result<(), UpstreamError> {
        let message = json!({"jsonrpc": "2.0", "method": method});
        let target = self.sse.as_ref().map_or(&self.url, |s| &s.endpoint);
        let response = self.post(target, &message, headers).await?;
        check_status(response.status(), self.session_id.is_some())?;
        Ok(())
    }

    async fn exchange(
        &self,
        method: &str,
        params: Value,
        headers: &HeaderMap,
    ) -> Result<(Value, Option<String>), UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let deadline = tokio::time::Instant::now() + self.timeout;
        let work = async {
            match &self.sse {
                Some(sse) => {
                    if !sse.alive.load(Ordering::Relaxed) {
                        return Err(UpstreamError::SessionExpired);
                    }
                    let (tx, rx) = oneshot::channel();
                    sse.pending.lock().expect("pending lock").insert(id, tx);
                    let sent = self.post(&sse.endpoint, &message, headers).await;
                    let sent = sent.and_then(|r| check_status(r.status(), true).map(|_| ()));
                    if let Err(e) = sent {
                        sse.pending.lock().expect("pending lock").remove(&id);
                        return Err(e);
                    }
                    let answer = rx.await.map_err(|_| UpstreamError::SessionExpired)?;
                    Ok((rpc_result(answer)?, None))
                }
                None => {
                    let response = self.post(&self.url, &message, headers).await?;
                    check_status(response.status(), self.session_id.is_some())?;
                    let session_id = response
                        .headers()
                        .get("mcp-session-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let answer = self.read_answer(response, id).await?;
                    Ok((rpc_result(answer)?, session_id))
                }
            }
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => {
                if let Some(sse) = &self.sse {
                    sse.pending.lock().expect("pending lock").remove(&id);
                }
                Err(UpstreamError::Timeout(self.timeout.as_secs()))
            }
        }
    }

    async fn post(
        &self,
        target: &Url,
        message: &Value,
        headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut request = self
            .client
            .post(target.clone())
            .headers(headers.clone())
            .header(
                header::ACCEPT,
                HeaderValue::from_static("application/json, text/event-stream"),
            )
            .json(message);
        if self.sse.is_none() && message.get("method") != Some(&json!("initialize")) {
            request = request.header("mcp-protocol-version", &self.protocol_version);
        }
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        request
            .send()
            .await
            .map_err(|e| http_error(e, self.timeout))
    }

    /// The JSON-RPC answer to `id`: the body itself, or the matching event of an SSE answer
    /// (notifications on the way are noted, requests from the server are not answered).
    async fn read_answer(
        &self,
        mut response: reqwest::Response,
        id: i64,
    ) -> Result<Value, UpstreamError> {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            let mut parser = SseParser::default();
            let mut read = 0usize;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| http_error(e, self.timeout))?
            {
                read += chunk.len();
                if read > MAX_ANSWER_BYTES {
                    return Err(UpstreamError::Transport("its answer is too large".into()));
                }
                for event in parser.push(&chunk) {
                    let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                        continue;
                    };
                    if message.get("id").and_then(Value::as_i64) == Some(id)
                        && message.get("method").is_none()
                    {
                        return Ok(message);
                    }
                    note_notification(&message, &self.tools_changed);
                }
            }
            Err(UpstreamError::Transport(
                "its event stream ended without an answer".into(),
            ))
        } else if content_type.starts_with("application/json") {
            let body = crate::server::http::read_capped(response, MAX_ANSWER_BYTES).await?;
            serde_json::from_slice(&body)
                .map_err(|e| UpstreamError::Transport(format!("its answer is not JSON: {e}")))
        } else {
            Err(UpstreamError::Transport(format!(
                "it answered with {}, not JSON or an event stream",
                if content_type.is_empty() {
                    "no content type"
                } else {
                    content_type.split(';').next().unwrap_or_default()
                }
            )))
        }
    }
}

fn check_status(status: StatusCode, has_session: bool) -> Result<(), UpstreamError> {
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED => Err(UpstreamError::Unauthorized),
        StatusCode::FORBIDDEN => Err(UpstreamError::Forbidden),
        StatusCode::NOT_FOUND if has_session => Err(UpstreamError::SessionExpired),
        s => Err(UpstreamError::Transport(format!(
            "it answered HTTP {}",
            s.as_u16()
        ))),
    }
}

fn rpc_result(message: Value) -> Result<Value, UpstreamError> {
    if let Some(error) = message.get("error") {
        return Err(UpstreamError::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .chars()
                .take(500)
                .collect(),
        });
    }
    message
        .get("result")
        .cloned()
        .ok_or_else(|| UpstreamError::Transport("its answer has neither result nor error".into()))
}

fn note_notification(message: &Value, tools_changed: &ChangeFlag) {
    if message.get("method").and_then(Value::as_str) == Some("notifications/tools/list_changed") {
        tools_changed.announce();
    }
}

/// Opens the legacy transport's event stream and waits for its `endpoint` event. The
/// endpoint must be on the server's own origin: a server cannot send Gatehouse's POSTs (and
/// their credential) elsewhere.
async fn open_sse(
    client: &reqwest::Client,
    url: &Url,
    timeout: Duration,
    headers: &HeaderMap,
    tools_changed: ChangeFlag,
) -> Result<(SseChannel, AbortOnDrop), UpstreamError> {
    let response = tokio::time::timeout(
        timeout,
        client
            .get(url.clone())
            .headers(headers.clone())
            .header(header::ACCEPT, "text/event-stream")
            .send(),
    )
    .await
    .map_err(|_| UpstreamError::Timeout(timeout.as_secs()))?
    .map_err(|e| http_error(e, timeout))?;
    check_status(response.status(), false)?;
    let pending: Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>> = Arc::default();
    let alive = Arc::new(AtomicBool::new(true));
    let (endpoint_tx, endpoint_rx) = oneshot::channel::<String>();
    let reader = {
        let pending = pending.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let mut response = response;
            let mut parser = SseParser::default();
            let mut endpoint_tx = Some(endpoint_tx);
            while let Ok(Some(chunk)) = response.chunk().await {
                for event in parser.push(&chunk) {
                    if event.event == "endpoint" {
                        if let Some(tx) = endpoint_tx.take() {
                            let _ = tx.send(event.data);
                        }
                        continue;
                    }
                    let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                        continue;
                    };
                    note_notification(&message, &tools_changed);
                    if message.get("method").is_none()
                        && let Some(id) = message.get("id").and_then(Value::as_i64)
                        && let Some(tx) = pending.lock().expect("pending lock").remove(&id)
                    {
                        let _ = tx.send(message);
                    }
                }
            }
            alive.store(false, Ordering::Relaxed);
            tools_changed.mark();
            // Dropping the senders fails whoever still waits.
            pending.lock().expect("pending lock").clear();
        })
    };
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
    Ok((
        SseChannel {
            endpoint,
            pending,
            alive,
        },
        reader,
    ))
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// An incremental `text/event-stream` parser (the WHATWG rules that matter here: `event`,
/// multi-line `data`, comments, CR, LF and CRLF line ends, even split across chunks).
#[derive(Default)]
pub struct SseParser {
    line: Vec<u8>,
    skip_lf: bool,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &b in chunk {
            if std::mem::take(&mut self.skip_lf) && b == b'\n' {
                continue;
            }
            if b == b'\r' || b == b'\n' {
                self.skip_lf = b == b'\r';
                let line = std::mem::take(&mut self.line);
                self.end_line(&String::from_utf8_lossy(&line), &mut events);
            } else if self.line.len() < MAX_ANSWER_BYTES {
                self.line.push(b);
            }
        }
        events
    }

    fn end_line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if !self.data.is_empty() {
                let event = std::mem::take(&mut self.event);
                events.push(SseEvent {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data: self.data.join("\n"),
                });
            }
            self.data.clear();
            self.event.clear();
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_across_chunks_and_line_ends() {
        let mut p = SseParser::default();
        assert!(
            p.push(b"event: endpoint\r\ndata: /messages?session=1\r")
                .is_empty()
        );
        let events = p.push(b"\n\r\n: keep-alive\n\ndata: {\"a\":\ndata: 1}\n\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "endpoint".into(),
                    data: "/messages?session=1".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "{\"a\":\n1}".into()
                },
            ]
        );
    }

    #[test]
    fn answers_and_errors() {
        assert_eq!(
            rpc_result(json!({"jsonrpc": "2.0", "id": 1, "result": {"x": 1}})).unwrap(),
            json!({"x": 1})
        );
        let err = rpc_result(
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad"}}),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "it returned JSON-RPC error -32602: bad");
        assert!(matches!(
            check_status(StatusCode::UNAUTHORIZED, true),
            Err(UpstreamError::Unauthorized)
        ));
        assert!(matches!(
            check_status(StatusCode::NOT_FOUND, true),
            Err(UpstreamError::SessionExpired)
        ));
        assert!(matches!(
            check_status(StatusCode::NOT_FOUND, false),
            Err(UpstreamError::Transport(_))
        ));
    }
}
