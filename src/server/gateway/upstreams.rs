//! The upstream MCP servers behind `/mcp`: one live session each (reused, re-initialized
//! only when the server ends it), their tool lists cached and refreshed (on the server's
//! `notifications/tools/list_changed`, on a timer, and when a list is older than
//! `TOOLS_TTL`), a circuit breaker per server, and credentials injected per request.
//!
//! A slow or failing upstream never holds up the others: each list refresh runs concurrently
//! under that server's own timeout, and a server whose breaker is open is answered from
//! memory at once. No header of the MCP client is ever sent upstream: requests carry only
//! what Gatehouse chose (a connection's token, or the entry's headers).

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::Value;
use url::Url;

use super::caller::McpCaller;
use super::catalog::Catalog;
use super::events::McpEvent;
use super::tools::{ToolContext, ToolFuture, ToolSource, tool_error};
use super::upstream_client::{ChangeFlag, Transport, UpstreamError, UpstreamSession};
use crate::model::mcp_servers::ToolSummaryView;
use crate::server::clock::{Clock, UnixTime};
use crate::server::connections::{BrokerError, GrantKey};
use crate::server::db::gateway::McpServerRow;
use crate::server::error::AppError;
use crate::server::secrets::vault;
use crate::server::state::AppState;

/// `<server>__<tool>`.
pub const SEPARATOR: &str = "__";
/// A tool list older than this is refreshed (in the background when one is cached).
pub const TOOLS_TTL: i64 = 300;
/// Failures in a row that open a server's breaker, and how long it stays open at first
/// (doubling up to `BREAKER_MAX_SECS`).
const BREAKER_AFTER: u32 = 3;
const BREAKER_FIRST_SECS: i64 = 15;
const BREAKER_MAX_SECS: i64 = 300;

/// One upstream server: its entry, its session and what is known of its health.
pub struct Upstream {
    pub row: McpServerRow,
    session: tokio::sync::Mutex<Option<Arc<UpstreamSession>>>,
    /// One tool-list refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    health: Mutex<Health>,
}

/// Whether a `tools/list` must wait for a server's list: never listed, or the server said
/// it changed (`Now`); only old (`Stale`, refreshed in the background); or `Fresh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListNeed {
    Now,
    Stale,
    Fresh,
}

#[derive(Debug, Clone, Default)]
pub struct Health {
    pub tools: Arc<Vec<Tool>>,
    pub listed_at: Option<UnixTime>,
    pub last_error: Option<String>,
    pub failures: u32,
    pub open_until: Option<UnixTime>,
    pub latency_ms: Option<u64>,
}

/// Why a call to an upstream did not produce a result, worded for the MCP client.
#[derive(Debug)]
pub enum Failure {
    /// The attached connection needs the user: "re-authorize connection X".
    Reauthorize { connection: String, reason: String },
    /// The server (or the way to it) failed; counts towards the breaker.
    Unavailable(String),
    /// The server answered, with an error about this request.
    Refused(String),
}

impl Upstream {
    fn new(row: McpServerRow) -> Self {
        Upstream {
            row,
            session: tokio::sync::Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            health: Mutex::new(Health::default()),
        }
    }

    /// Ends the kept session; the next request opens a new one.
    pub async fn reset_session(&self) {
        self.session.lock().await.take();
    }

    pub fn enabled(&self) -> bool {
        self.row.enabled != 0
    }

    pub fn health(&self) -> Health {
        self.health.lock().expect("health lock").clone()
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.row.timeout_secs.clamp(1, 300) as u64)
    }

    fn transport(&self) -> Transport {
        if self.row.transport == "sse" {
            Transport::Sse
        } else {
            Transport::Http
        }
    }

    /// `Some(reason)` while the breaker is open.
    fn breaker_open(&self, now: UnixTime) -> Option<String> {
        let h = self.health.lock().expect("health lock");
        match h.open_until {
            Some(until) if until > now => Some(format!(
                "{} failures in a row, last: {}; next attempt in {} s",
                h.failures,
                h.last_error.as_deref().unwrap_or("unknown"),
                until - now
            )),
            _ => None,
        }
    }

    fn record_success(&self, latency: Duration) {
        let mut h = self.health.lock().expect("health lock");
        h.failures = 0;
        h.open_until = None;
        h.last_error = None;
        h.latency_ms = Some(latency.as_millis() as u64);
    }

    pub fn record_failure(&self, reason: &str, now: UnixTime) {
        let mut h = self.health.lock().expect("health lock");
        h.failures += 1;
        h.last_error = Some(reason.to_string());
        if h.failures >= BREAKER_AFTER {
            let doublings = (h.failures - BREAKER_AFTER).min(8);
            let secs = (BREAKER_FIRST_SECS << doublings).min(BREAKER_MAX_SECS);
            h.open_until = Some(now + secs);
        }
    }

    fn list_need(&self, now: UnixTime) -> ListNeed {
        let changed = self
            .session
            .try_lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.tools_changed.is_raised()))
            .unwrap_or(false);
        let h = self.health.lock().expect("health lock");
        match h.listed_at {
            None => ListNeed::Now,
            Some(_) if changed => ListNeed::Now,
            Some(at) if now - at >= TOOLS_TTL => ListNeed::Stale,
            Some(_) => ListNeed::Fresh,
        }
    }
}

/// The registry of upstreams, rebuilt from the database when entries change.
pub struct Upstreams {
    servers: RwLock<Arc<Vec<Arc<Upstream>>>>,
    clock: Arc<dyn Clock>,
    /// The catalog of well-known servers (with `MCP_CATALOG`'s entries).
    pub catalog: Catalog,
}

impl Upstreams {
    pub fn new(clock: Arc<dyn Clock>, catalog: Catalog) -> Self {
        Upstreams {
            servers: RwLock::new(Arc::new(Vec::new())),
            clock,
            catalog,
        }
    }

    pub fn snapshot(&self) -> Arc<Vec<Arc<Upstream>>> {
        self.servers.read().expect("upstreams lock").clone()
    }

    pub fn find(&self, id: &str) -> Option<Arc<Upstream>> {
        self.snapshot().iter().find(|u| u.row.id == id).cloned()
    }

    fn by_name(&self, name: &str) -> Option<Arc<Upstream>> {
        self.snapshot().iter().find(|u| u.row.name == name).cloned()
    }

    /// Reads the entries again. An unchanged entry keeps its session, tools and health; a
    /// changed or removed one is dropped (its session ends with it).
    pub async fn reload(&self, state: &AppState) -> Result<(), AppError> {
        let rows = state.db.list_mcp_servers().await?;
        let current = self.snapshot();
        let next: Vec<Arc<Upstream>> = rows
            .into_iter()
            .map(|row| {
                current
                    .iter()
                    .find(|u| u.row == row)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Upstream::new(row)))
            })
            .collect();
        let changed = next.len() != current.len()
            || next
                .iter()
                .zip(current.iter())
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        *self.servers.write().expect("upstreams lock") = Arc::new(next);
        if changed {
            state.mcp.events.send(McpEvent::ToolsChanged);
        }
        Ok(())
    }

    /// Before a `tools/list`: lists the servers never listed yet or whose list changed and
    /// waits for them (each under its own timeout, all at once); refreshes lists that are
    /// only old in the background.
    pub async fn prepare_list(&self, state: &AppState) {
        let now = state.now();
        let mut waits = tokio::task::JoinSet::new();
        for upstream in self.snapshot().iter().filter(|u| u.enabled()) {
            let need = upstream.list_need(now);
            if upstream.breaker_open(now).is_some() || need == ListNeed::Fresh {
                continue;
            }
            let upstream = upstream.clone();
            let state = state.clone();
            if need == ListNeed::Stale {
                tokio::spawn(async move {
                    let _ = refresh_tools(&state, &upstream).await;
                });
            } else {
                waits.spawn(async move {
                    let _ = refresh_tools(&state, &upstream).await;
                });
            }
        }
        waits.join_all().await;
    }

    /// The timer: every enabled server whose list is stale is listed again.
    pub async fn refresh_stale(&self, state: &AppState) {
        let now = state.now();
        let mut due = tokio::task::JoinSet::new();
        for upstream in self.snapshot().iter() {
            if upstream.enabled()
                && upstream.list_need(now) != ListNeed::Fresh
                && upstream.breaker_open(now).is_none()
            {
                let (state, upstream) = (state.clone(), upstream.clone());
                due.spawn(async move {
                    let _ = refresh_tools(&state, &upstream).await;
                });
            }
        }
        due.join_all().await;
    }

    pub fn tool_source(self: &Arc<Self>) -> UpstreamTools {
        UpstreamTools(self.clone())
    }
}

/// Lists a server's tools (one refresh at a time per server, bounded by its timeout) and
/// records the outcome.
pub async fn refresh_tools(state: &AppState, upstream: &Arc<Upstream>) -> Result<(), String> {
    let _one = upstream.refreshing.lock().await;
    let started = Instant::now();
    let listed = tokio::time::timeout(
        upstream.timeout(),
        with_session(state, upstream, |session, headers| async move {
            session.list_tools(&headers).await
        }),
    )
    .await
    .unwrap_or_else(|_| {
        Err(Failure::Unavailable(format!(
            "it did not answer within {} s",
            upstream.row.timeout_secs
        )))
    });
    let now = state.now();
    match listed {
        Ok(tools) => {
            let tools = prefixed_tools(&upstream.row.name, tools);
            let changed = {
                let mut h = upstream.health.lock().expect("health lock");
                let changed = h.listed_at.is_some() && *h.tools != tools;
                h.tools = Arc::new(tools);
                h.listed_at = Some(now);
                changed
            };
            if changed {
                state.mcp.events.send(McpEvent::ToolsChanged);
            }
            upstream.record_success(started.elapsed());
            Ok(())
        }
        Err(failure) => {
            let reason = failure_text(&failure);
            tracing::warn!(server = %upstream.row.name, error = %reason, "upstream tool list failed");
            upstream.record_failure(&reason, now);
            // Keep the last list (shown as unavailable) but look again soon.
            Err(reason)
        }
    }
}

pub fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Reauthorize { connection, reason } => {
            format!("re-authorize connection {connection}: {reason}")
        }
        Failure::Unavailable(m) | Failure::Refused(m) => m.clone(),
    }
}

/// An upstream's tools as `/mcp` lists them: `<server>__<tool>`, schemas as given. A tool
/// that does not parse is left out (and logged).
pub fn prefixed_tools(server: &str, tools: Vec<Value>) -> Vec<Tool> {
    tools
        .into_iter()
        .filter_map(|mut tool| {
            let name = tool.get("name")?.as_str()?.to_string();
            tool["name"] = Value::String(format!("{server}{SEPARATOR}{name}"));
            match serde_json::from_value::<Tool>(tool) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(server, tool = %name, error = %e, "upstream tool skipped: not a valid tool");
                    None
                }
            }
        })
        .collect()
}

pub fn summaries(tools: &[Tool]) -> Vec<ToolSummaryView> {
    tools
        .iter()
        .map(|t| ToolSummaryView {
            name: t.name.to_string(),
            description: t.description.as_deref().unwrap_or_default().to_string(),
        })
        .collect()
}

/// The headers a request to this server carries: its credential, nothing else.
async fn credentials(
    state: &AppState,
    row: &McpServerRow,
    force_refresh: bool,
) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::new();
    match row.auth.as_str() {
        "connection" => {
            let id = row.connection_id.as_deref().unwrap_or_default();
            let token = state
                .connection_token(GrantKey::shared(id), force_refresh)
                .await
                .map_err(|e| broker_failure(id, e))?;
            let mut value = HeaderValue::from_str(&format!(
                "Bearer {}",
                token.access_token.expose()
            ))
            .map_err(|_| {
                Failure::Unavailable("the connection's token is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        "headers" => {
            let sealed = row.headers.as_deref().unwrap_or("[]");
            let pairs: Vec<(String, String)> = if row.headers.is_some() {
                let opened = state
                    .sealer
                    .open(sealed, &headers_context(&row.id))
                    .map_err(|e| {
                        Failure::Unavailable(format!("its headers cannot be opened: {e}"))
                    })?;
                serde_json::from_str(opened.expose())
                    .map_err(|_| Failure::Unavailable("its stored headers are malformed".into()))?
            } else {
                Vec::new()
            };
            for (name, template) in pairs {
                let mut values = std::collections::HashMap::new();
                for n in vault::placeholders(&template).map_err(Failure::Unavailable)? {
                    let v = vault::open(state, &n).await.map_err(Failure::Unavailable)?;
                    values.insert(n, v);
                }
                let filled = vault::fill(&template, |n| {
                    values
                        .get(n)
                        .cloned()
                        .ok_or_else(|| format!("the secret {n} is not in the vault"))
                })
                .map_err(Failure::Unavailable)?;
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| Failure::Unavailable(format!("{name:?} is not a header name")))?;
                let mut value = HeaderValue::from_str(filled.expose()).map_err(|_| {
                    Failure::Unavailable(format!(
                        "the value of header {name} is not a valid header value"
                    ))
                })?;
                value.set_sensitive(true);
                headers.append(name, value);
            }
        }
        _ => {}
    }
    Ok(headers)
}

pub fn headers_context(server_id: &str) -> String {
    format!("mcp_server/{server_id}/headers")
}

fn broker_failure(id: &str, e: BrokerError) -> Failure {
    match e {
        BrokerError::NeedsReauth { name, reason } => Failure::Reauthorize {
            connection: name,
            reason,
        },
        BrokerError::NotConnected(name) => Failure::Reauthorize {
            connection: name,
            reason: "it is not connected".into(),
        },
        BrokerError::NotFound => {
            Failure::Unavailable(format!("its connection {id} no longer exists"))
        }
        other => Failure::Unavailable(other.to_string()),
    }
}

async fn connection_name(state: &AppState, row: &McpServerRow) -> String {
    let id = row.connection_id.as_deref().unwrap_or_default();
    match state.connection_name(id).await {
        Ok(Some(name)) => name,
        _ => id.to_string(),
    }
}

/// Runs `op` on the server's session, with the recoveries the protocol allows: a session the
/// server ended is opened again once; a 401 with a connection refreshes its token once and
/// retries, and a second 401 marks the connection for re-authorization.
pub async fn with_session<T, F, Fut>(
    state: &AppState,
    upstream: &Upstream,
    op: F,
) -> Result<T, Failure>
where
    F: Fn(Arc<UpstreamSession>, HeaderMap) -> Fut,
    Fut: std::future::Future<Output = Result<T, UpstreamError>>,
{
    let row = &upstream.row;
    let mut forced = false;
    let mut reopened = false;
    loop {
        let headers = credentials(state, row, forced).await?;
        let attempt = async {
            let session = session(state, upstream, &headers).await?;
            op(session, headers.clone()).await
        };
        match attempt.await {
            Ok(v) => return Ok(v),
            Err(UpstreamError::SessionExpired) if !reopened => {
                reopened = true;
                upstream.session.lock().await.take();
            }
            Err(UpstreamError::Unauthorized) if row.auth == "connection" && !forced => {
                forced = true;
                // The session may be bound to the old token: start a new one with the new.
                upstream.session.lock().await.take();
            }
            Err(UpstreamError::Unauthorized) if row.auth == "connection" => {
                let name = connection_name(state, row).await;
                let reason = format!(
                    "the MCP server {} refused its access token even after a refresh (401)",
                    row.name
                );
                let id = row.connection_id.as_deref().unwrap_or_default();
                if let Err(e) = state
                    .report_refused_token(GrantKey::shared(id), &reason)
                    .await
                {
                    tracing::error!(error = %e, "cannot mark the connection");
                }
                tracing::warn!(server = %row.name, connection = id, "upstream refused a refreshed token");
                return Err(Failure::Reauthorize {
                    connection: name,
                    reason,
                });
            }
            Err(UpstreamError::Unauthorized) => {
                return Err(Failure::Refused(if row.auth == "headers" {
                    "it refused the request (401 Unauthorized): check the headers configured for it in Gatehouse".into()
                } else {
                    "it requires authentication (401 Unauthorized): attach a connection or headers to it in Gatehouse".into()
                }));
            }
            Err(UpstreamError::Rpc { code, message }) => {
                return Err(Failure::Refused(format!("error {code}: {message}")));
            }
            Err(e) => {
                if !matches!(e, UpstreamError::Forbidden) {
                    upstream.session.lock().await.take();
                }
                return Err(Failure::Unavailable(e.to_string()));
            }
        }
    }
}

/// Tells `subscriptions/listen` streams that the tools changed.
fn tools_changed_callback(state: &AppState) -> Arc<dyn Fn() + Send + Sync> {
    let events = state.mcp.events.clone();
    Arc::new(move || events.send(McpEvent::ToolsChanged))
}

/// The server's live session, opened with `headers` when there is none.
async fn session(
    state: &AppState,
    upstream: &Upstream,
    headers: &HeaderMap,
) -> Result<Arc<UpstreamSession>, UpstreamError> {
    let mut slot = upstream.session.lock().await;
    if let Some(s) = slot.as_ref().filter(|s| s.alive()) {
        return Ok(s.clone());
    }
    let url = Url::parse(&upstream.row.url).map_err(|e| UpstreamError::Refused(e.to_string()))?;
    let session = Arc::new(
        UpstreamSession::connect(
            &state.outbound,
            &url,
            upstream.transport(),
            upstream.timeout(),
            headers,
            ChangeFlag::new(tools_changed_callback(state)),
        )
        .await?,
    );
    *slot = Some(session.clone());
    Ok(session)
}

/// Calls a tool of an upstream; every failure comes back as a tool error naming the server.
pub async fn call_tool(
    state: &AppState,
    upstream: &Upstream,
    tool: &str,
    arguments: JsonObject,
) -> CallToolResult {
    let server = &upstream.row.name;
    let now = state.now();
    if let Some(reason) = upstream.breaker_open(now) {
        return tool_error(format!(
            "The MCP server {server} is unavailable ({reason})."
        ));
    }
    let started = Instant::now();
    let arguments = Value::Object(arguments);
    let outcome = with_session(state, upstream, |session, headers| {
        let arguments = arguments.clone();
        async move { session.call_tool(tool, arguments, &headers).await }
    })
    .await;
    match outcome {
        Ok(result) => {
            upstream.record_success(started.elapsed());
            match serde_json::from_value::<Value>(result).map(|r| named_error(server, r)) {
                Ok(r) => serde_json::from_value::<CallToolResult>(r).unwrap_or_else(|e| {
                    tool_error(format!(
                        "The MCP server {server} returned a result that is not a tool result: {e}"
                    ))
                }),
                Err(e) => tool_error(format!("The MCP server {server} returned {e}")),
            }
        }
        Err(Failure::Reauthorize { connection, reason }) => tool_error(format!(
            "The MCP server {server} needs the connection {connection:?} to be re-authorized: {reason}. Re-authorize connection {connection} on Gatehouse's Connections page, then try again."
        )),
        Err(Failure::Refused(m)) => {
            tool_error(format!("The MCP server {server} refused the call: {m}."))
        }
        Err(Failure::Unavailable(m)) => {
            upstream.record_failure(&m, state.now());
            tool_error(format!("The MCP server {server} failed: {m}."))
        }
    }
}

/// An upstream's tool error, with the server named in its first text (the model sees tools
/// of many servers); other results pass through untouched.
fn named_error(server: &str, mut result: Value) -> Value {
    if result.get("isError") == Some(&Value::Bool(true))
        && let Some(text) = result
            .pointer_mut("/content/0/text")
            .filter(|t| t.is_string())
    {
        *text = Value::String(format!(
            "The MCP server {server} returned an error: {}",
            text.as_str().unwrap_or_default()
        ));
    }
    result
}

/// The upstream tools as a source of `/mcp`'s registry.
pub struct UpstreamTools(Arc<Upstreams>);

fn unavailable(tool: &Tool, reason: &str) -> Tool {
    let mut t = tool.clone();
    let description = t.description.as_deref().unwrap_or_default();
    t.description = Some(format!("[Unavailable: {reason}] {description}").into());
    t
}

impl ToolSource for UpstreamTools {
    fn list(&self, _caller: &McpCaller) -> Vec<Tool> {
        let now = self.0.clock.now();
        let mut tools = Vec::new();
        for upstream in self.0.snapshot().iter().filter(|u| u.enabled()) {
            let health = upstream.health();
            let down = upstream
                .breaker_open(now)
                .or_else(|| health.last_error.clone().filter(|_| health.failures > 0));
            match down {
                Some(reason) => tools.extend(health.tools.iter().map(|t| unavailable(t, &reason))),
                None => tools.extend(health.tools.iter().cloned()),
            }
        }
        tools
    }

    fn call<'a>(
        &'a self,
        ctx: ToolContext<'a>,
        name: &'a str,
        arguments: JsonObject,
    ) -> Option<ToolFuture<'a>> {
        let (server, tool) = name.split_once(SEPARATOR)?;
        let upstream = self.0.by_name(server).filter(|u| u.enabled())?;
        let state = ctx.state;
        Some(Box::pin(async move {
            call_tool(state, &upstream, tool, arguments).await.into()
        }))
    }
}

/// How often the timer looks for stale tool lists (and entries another replica changed).
const REFRESH_TICK: Duration = Duration::from_secs(60);

/// The timer: re-reads the entries and lists again every enabled server whose tool list is
/// older than `TOOLS_TTL` or that said its list changed (aborted at shutdown).
pub async fn run_upstream_refresh(state: AppState) {
    let mut ticker = tokio::time::interval(REFRESH_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(e) = state.upstreams.reload(&state).await {
            tracing::warn!(error = %e, "cannot re-read the MCP servers");
        }
        state.upstreams.refresh_stale(&state).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upstream_tool_errors_name_the_server() {
        let named = named_error(
            "acme",
            json!({"content": [{"type": "text", "text": "Unknown tool: x"}], "isError": true}),
        );
        assert_eq!(
            named["content"][0]["text"],
            "The MCP server acme returned an error: Unknown tool: x"
        );
        let ok = json!({"content": [{"type": "text", "text": "fine"}]});
        assert_eq!(named_error("acme", ok.clone()), ok);
    }

    #[test]
    fn tools_are_prefixed_and_bad_ones_left_out() {
        let tools = prefixed_tools(
            "echo",
            vec![
                json!({"name": "say", "description": "Says", "inputSchema": {"type": "object"}}),
                json!({"name": "broken"}),
                json!({"description": "no name"}),
            ],
        );
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0].name, "echo__say");
        assert_eq!(summaries(&tools)[0].description, "Says");
    }

    #[test]
    fn the_breaker_opens_after_failures_and_closes_on_success() {
        let row = McpServerRow {
            id: "s".into(),
            name: "s".into(),
            url: "https://x".into(),
            transport: "http".into(),
            auth: "none".into(),
            connection_id: None,
            headers: None,
            secret_refs: "[]".into(),
            timeout_secs: 5,
            enabled: 1,
            catalog_id: None,
            created_by: "t".into(),
            created_at: 0,
            updated_at: 0,
        };
        let u = Upstream::new(row);
        u.record_failure("down", 100);
        u.record_failure("down", 100);
        assert!(u.breaker_open(100).is_none());
        u.record_failure("down", 100);
        let reason = u.breaker_open(100).unwrap();
        assert!(
            reason.contains("3 failures") && reason.contains("down"),
            "{reason}"
        );
        assert!(
            u.breaker_open(100 + BREAKER_FIRST_SECS).is_none(),
            "half-open after the wait"
        );
        u.record_failure("down", 200);
        assert_eq!(u.health().open_until, Some(200 + 2 * BREAKER_FIRST_SECS));
        u.record_success(Duration::from_millis(3));
        assert!(u.breaker_open(200).is_none());
        assert_eq!(u.health().failures, 0);
    }
}
