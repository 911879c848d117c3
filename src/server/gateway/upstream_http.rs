//! The HTTP under rmcp's Streamable HTTP client, done by Gatehouse's guarded reqwest clients.
//!
//! rmcp's transport worker drives the protocol (sessions, SSE response streams, the GET
//! stream, resumption); this type only makes the requests. It is ours, not rmcp's built-in
//! client, because (see docs/ARCHITECTURE.md): every request must go through the outbound
//! guards (SSRF checks with the address pinned, no redirects, deadlines); the credential
//! changes during a session's life (a refresh) while rmcp's `auth_header` is fixed at start;
//! a 401 or 403 must be told apart with or without a `WWW-Authenticate` header, and a 404 on
//! the GET stream too; rmcp's built-in client is on reqwest 0.13, Gatehouse (and oauth2) on
//! 0.12; and size limits are the custom client's to enforce.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, HttpStatusError, InsufficientScopeError, SseError, StreamableHttpClient,
    StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use sse_stream::Sse;

/// Largest answer (a JSON body, or one event of a stream) read from an upstream.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// What failed below HTTP: the words a card and a tool error show.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpFailure {
    #[error("the request timed out")]
    Timeout,
    #[error("cannot connect to it")]
    Connect,
    #[error("{0}")]
    Other(String),
}

impl From<reqwest::Error> for HttpFailure {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            HttpFailure::Timeout
        } else if e.is_connect() {
            HttpFailure::Connect
        } else {
            // Without the URL: it may carry a query the operator put a key in.
            HttpFailure::Other(e.without_url().to_string())
        }
    }
}

pub type HttpError = StreamableHttpError<HttpFailure>;

fn client_error(e: reqwest::Error) -> HttpError {
    StreamableHttpError::Client(e.into())
}

/// The credential a session's requests carry now; replaced when it is refreshed.
pub type Credential = Arc<RwLock<HeaderMap>>;

/// Requests to one upstream: `calls` ends each request at the server's timeout, `streams`
/// (the GET stream and the legacy transport's event stream) has no overall deadline.
#[derive(Clone)]
pub struct GuardedHttp {
    pub calls: reqwest::Client,
    pub streams: reqwest::Client,
    pub credential: Credential,
}

impl GuardedHttp {
    fn credential(&self) -> HeaderMap {
        self.credential.read().expect("credential lock").clone()
    }

    fn with_headers(
        &self,
        mut request: reqwest::RequestBuilder,
        session_id: Option<&str>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> reqwest::RequestBuilder {
        request = request.headers(self.credential());
        // rmcp's own protocol headers (MCP-Protocol-Version, Mcp-Method, …).
        for (name, value) in custom_headers {
            request = request.header(name, value);
        }
        if let Some(id) = session_id {
            request = request.header("mcp-session-id", id);
        }
        request
    }
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A refusal by status, whatever the body: 401 always as "authorization required" (with the
/// challenge when there is one), 403 as insufficient scope when it says so.
pub fn refusal(status: StatusCode, headers: &HeaderMap) -> Option<HttpError> {
    let challenge = headers
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match status {
        StatusCode::UNAUTHORIZED => Some(StreamableHttpError::AuthRequired(
            AuthRequiredError::new(challenge.unwrap_or_default()),
        )),
        StatusCode::FORBIDDEN => Some(match challenge {
            Some(c) if c.contains("insufficient_scope") => {
                let scope = crate::server::http::challenge_param(&c, "scope");
                StreamableHttpError::InsufficientScope(InsufficientScopeError::new(c, scope))
            }
            _ => StreamableHttpError::HttpStatus(HttpStatusError::new(403, None)),
        }),
        _ => None,
    }
}

/// `refusal`, and within a session a 404 as the session's end.
fn session_refusal(status: StatusCode, headers: &HeaderMap, in_session: bool) -> Option<HttpError> {
    refusal(status, headers).or_else(|| {
        (status == StatusCode::NOT_FOUND && in_session)
            .then_some(StreamableHttpError::SessionExpired)
    })
}

async fn read_capped(response: reqwest::Response, limit: usize) -> Result<bytes::Bytes, HttpError> {
    if response
        .content_length()
        .is_some_and(|n| n as usize > limit)
    {
        return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: limit });
    }
    let mut body = response.bytes_stream();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(client_error)?;
        if out.len() + chunk.len() > limit {
            return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

impl StreamableHttpClient for GuardedHttp {
    type Error = HttpFailure;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let request = self
            .with_headers(
                self.calls.post(uri.as_ref()),
                session_id.as_deref(),
                custom_headers,
            )
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(&message);
        let response = request.send().await.map_err(client_error)?;
        let status = response.status();
        if let Some(refused) = session_refusal(status, response.headers(), session_id.is_some()) {
            return Err(refused);
        }
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        let kind = media_type(response.headers());
        let new_session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let awaits_nothing = !matches!(message, JsonRpcMessage::Request(_));
        let json_limit = limits.max_json_response_size.min(MAX_ANSWER_BYTES);
        if !status.is_success() {
            // A JSON-RPC error in the body says more than the status.
            if kind == "application/json" {
                let body = read_capped(response, json_limit).await?;
                if let Ok(error @ JsonRpcMessage::Error(_)) =
                    serde_json::from_slice::<ServerJsonRpcMessage>(&body)
                {
                    return Ok(StreamableHttpPostResponse::Json(error, new_session));
                }
            }
            return Err(StreamableHttpError::HttpStatus(HttpStatusError::new(
                status.as_u16(),
                None,
            )));
        }
        match kind.as_str() {
            "text/event-stream" => Ok(StreamableHttpPostResponse::Sse(
                sse_events(response, limits.max_sse_event_size.min(MAX_ANSWER_BYTES)),
                new_session,
            )),
            "application/json" => {
                let body = read_capped(response, json_limit).await?;
                match serde_json::from_slice::<ServerJsonRpcMessage>(&body) {
                    Ok(parsed) => Ok(StreamableHttpPostResponse::Json(parsed, new_session)),
                    Err(_) if awaits_nothing => Ok(StreamableHttpPostResponse::Accepted),
                    Err(e) => Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                        format!("its answer is not a JSON-RPC message: {e}"),
                    ))),
                }
            }
            // A notification or a reply needs nothing back: any 2xx will do.
            _ if awaits_nothing => Ok(StreamableHttpPostResponse::Accepted),
            _ => Err(StreamableHttpError::UnexpectedContentType(
                (!kind.is_empty()).then_some(kind),
            )),
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        let response = self
            .with_headers(
                self.calls.delete(uri.as_ref()),
                Some(&session_id),
                custom_headers,
            )
            .send()
            .await
            .map_err(client_error)?;
        // 405: the server does not let clients end sessions; 404: it ended already.
        let status = response.status();
        if status.is_success()
            || status == StatusCode::METHOD_NOT_ALLOWED
            || status == StatusCode::NOT_FOUND
        {
            Ok(())
        } else {
            Err(StreamableHttpError::HttpStatus(HttpStatusError::new(
                status.as_u16(),
                None,
            )))
        }
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            MAX_ANSWER_BYTES,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        let mut request = self
            .with_headers(
                self.streams.get(uri.as_ref()),
                session_id.as_deref(),
                custom_headers,
            )
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.map_err(client_error)?;
        let status = response.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        if let Some(refused) = session_refusal(status, response.headers(), session_id.is_some()) {
            return Err(refused);
        }
        if !status.is_success() {
            return Err(StreamableHttpError::HttpStatus(HttpStatusError::new(
                status.as_u16(),
                None,
            )));
        }
        let kind = media_type(response.headers());
        if kind != "text/event-stream" {
            return Err(StreamableHttpError::UnexpectedContentType(
                (!kind.is_empty()).then_some(kind),
            ));
        }
        Ok(sse_events(
            response,
            max_sse_event_size.min(MAX_ANSWER_BYTES),
        ))
    }
}

/// A response body as server-sent events, none larger than `limit`.
pub fn sse_events(
    response: reqwest::Response,
    limit: usize,
) -> BoxStream<'static, Result<Sse, SseError>> {
    struct Reading {
        body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        parser: SseParser,
        ready: VecDeque<Sse>,
        ended: bool,
    }
    let reading = Reading {
        body: response.bytes_stream().boxed(),
        parser: SseParser::with_limit(limit),
        ready: VecDeque::new(),
        ended: false,
    };
    futures::stream::unfold(reading, |mut r| async move {
        loop {
            if let Some(event) = r.ready.pop_front() {
                return Some((Ok(event), r));
            }
            if r.ended {
                return None;
            }
            match r.body.next().await {
                Some(Ok(chunk)) => match r.parser.push(&chunk) {
                    Ok(events) => r.ready.extend(events),
                    Err(e) => {
                        r.ended = true;
                        return Some((Err(e), r));
                    }
                },
                Some(Err(e)) => {
                    r.ended = true;
                    return Some((Err(SseError::Body(Box::new(e))), r));
                }
                None => r.ended = true,
            }
        }
    })
    .boxed()
}

/// An incremental `text/event-stream` parser (the WHATWG rules that matter here: `event`,
/// multi-line `data`, `id`, `retry`, comments, CR, LF and CRLF line ends, even split across
/// chunks), refusing an event larger than its limit.
pub struct SseParser {
    limit: usize,
    line: Vec<u8>,
    skip_lf: bool,
    size: usize,
    event: Option<String>,
    data: Vec<String>,
    id: Option<String>,
    retry: Option<u64>,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::with_limit(MAX_ANSWER_BYTES)
    }
}

impl SseParser {
    pub fn with_limit(limit: usize) -> Self {
        SseParser {
            limit,
            line: Vec::new(),
            skip_lf: false,
            size: 0,
            event: None,
            data: Vec::new(),
            id: None,
            retry: None,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Sse>, SseError> {
        let mut events = Vec::new();
        for &b in chunk {
            if std::mem::take(&mut self.skip_lf) && b == b'\n' {
                continue;
            }
            if b == b'\r' || b == b'\n' {
                self.skip_lf = b == b'\r';
                let line = std::mem::take(&mut self.line);
                self.end_line(&String::from_utf8_lossy(&line), &mut events);
            } else {
                self.size += 1;
                if self.size > self.limit {
                    return Err(SseError::Body(
                        format!("an event is larger than {} bytes", self.limit).into(),
                    ));
                }
                self.line.push(b);
            }
        }
        Ok(events)
    }

    fn end_line(&mut self, line: &str, events: &mut Vec<Sse>) {
        if line.is_empty() {
            // An event with only an id (a stream's priming event) still moves the id on.
            if !self.data.is_empty() || self.id.is_some() || self.retry.is_some() {
                events.push(Sse {
                    event: self.event.take(),
                    data: (!self.data.is_empty()).then(|| self.data.join("\n")),
                    id: self.id.take(),
                    retry: self.retry.take(),
                });
            }
            self.data.clear();
            self.event = None;
            self.size = 0;
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
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "retry" => self.retry = value.parse().ok(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(event: Option<&str>, data: Option<&str>, id: Option<&str>) -> Sse {
        Sse {
            event: event.map(str::to_string),
            data: data.map(str::to_string),
            id: id.map(str::to_string),
            retry: None,
        }
    }

    #[test]
    fn sse_events_across_chunks_and_line_ends() {
        let mut p = SseParser::default();
        assert!(
            p.push(b"event: endpoint\r\ndata: /messages?session=1\r")
                .unwrap()
                .is_empty()
        );
        let events = p
            .push(b"\n\r\n: keep-alive\n\nid: 7\ndata:\n\ndata: {\"a\":\ndata: 1}\n\n")
            .unwrap();
        assert_eq!(
            events,
            vec![
                sse(Some("endpoint"), Some("/messages?session=1"), None),
                sse(None, Some(""), Some("7")),
                sse(None, Some("{\"a\":\n1}"), None),
            ]
        );
        let mut primed = SseParser::default();
        assert_eq!(
            primed.push(b"id: 0\n\n").unwrap(),
            vec![sse(None, None, Some("0"))]
        );
    }

    #[test]
    fn an_event_over_the_limit_is_refused() {
        let mut p = SseParser::with_limit(16);
        assert!(p.push(b"data: 0123456789\n\n").is_ok());
        assert!(p.push(b"data: 0123456789\ndata: 0123456789\n\n").is_err());
    }
}
