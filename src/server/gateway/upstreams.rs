//! The upstream MCP servers behind `/mcp`: one live session each (reused, re-initialized
//! only when the server ends it), their tool lists cached and refreshed (on the server's
//! `notifications/tools/list_changed`, on a timer, and when a list is older than
//! `TOOLS_TTL`), a circuit breaker per server, and credentials injected per request.
//!
//! A server reached through a per-person connection acts as each caller: every person has
//! their own session and tool list with it (a `Slot`), opened with their own grant. Someone
//! without a grant sees one tool, `<server>__connect`, that tells them how to connect.
//!
//! A slow or failing upstream never holds up the others: each list refresh runs concurrently
//! under that server's own timeout, and a server whose breaker is open is answered from
//! memory at once. No header of the MCP client is ever sent upstream: requests carry only
//! what Gatehouse chose (a connection's token, or the entry's headers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::Value;
use url::Url;

use super::caller::McpCaller;
use super::catalog::Catalog;
use super::events::McpEvent;
use super::input::{InputNeeded, Outcome, UrlRequired, is_2026};
use super::offers::wrap_uri;
use super::parked::{QUESTION_KEY, Running, Waited, names_parked_call};
use super::tools::{ToolContext, ToolFuture, ToolOutcome, ToolSource, tool_error};
use super::upstream_client::{
    ChangeFlag, Downstream, Notice, Transport, UpstreamError, UpstreamRetry, UpstreamSession,
};
use crate::model::mcp_servers::{NameFilter, ServerPolicy, ToolSummaryView};
use crate::server::clock::{Clock, UnixTime};
use crate::server::connections::{BrokerError, GrantKey};
use crate::server::db::gateway::McpServerRow;
use crate::server::error::AppError;
use crate::server::metrics;
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
/// A person's session with a server ends after this long unused.
const PERSON_IDLE_SECS: i64 = 600;
/// People with a live session per server; beyond it, the least recently active one's ends.
const PEOPLE_PER_SERVER: usize = 1000;
/// The tool a person without a grant of a per-person server sees: `<server>__connect`.
pub const CONNECT_TOOL: &str = "connect";

/// One upstream server: its entry, its sessions and what is known of its health.
pub struct Upstream {
    pub row: McpServerRow,
    /// What of it `/mcp` offers (from `row.policy`).
    pub policy: ServerPolicy,
    /// Reached through a per-person connection: each caller with their own grant.
    pub per_person: bool,
    /// The session and tools of a shared server.
    shared: Arc<Slot>,
    /// Of a per-person server: each person's.
    people: Mutex<HashMap<String, Arc<Slot>>>,
    health: Mutex<Health>,
}

/// A caller's share of a server: its session, and the tools it lists for them.
struct Slot {
    session: tokio::sync::Mutex<Option<Arc<UpstreamSession>>>,
    /// One tool-list refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    listed: Mutex<Listed>,
    last_used: AtomicI64,
}

#[derive(Debug, Clone, Default)]
struct Listed {
    tools: Arc<Vec<Tool>>,
    listed_at: Option<UnixTime>,
    /// The person's grant is missing or dead (why): their list is the connect tool alone.
    needs_connect: Option<String>,
}

impl Slot {
    fn new(now: UnixTime) -> Self {
        Slot {
            session: tokio::sync::Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            listed: Mutex::new(Listed::default()),
            last_used: AtomicI64::new(now),
        }
    }

    fn listed(&self) -> Listed {
        self.listed.lock().expect("listed lock").clone()
    }

    /// Whether a `tools/list` must wait for this slot's list.
    fn list_need(&self, now: UnixTime) -> ListNeed {
        let changed = self
            .session
            .try_lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.tools_changed.is_raised()))
            .unwrap_or(false);
        match self.listed().listed_at {
            None => ListNeed::Now,
            Some(_) if changed => ListNeed::Now,
            Some(at) if now - at >= TOOLS_TTL => ListNeed::Stale,
            Some(_) => ListNeed::Fresh,
        }
    }
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
    /// The caller's own grant of a per-person connection is missing or dead: they must
    /// connect their account. Not the server's fault: no breaker counts it.
    Connect {
        connection: String,
        connection_id: String,
        reason: String,
    },
    /// The server (or the way to it) failed; counts towards the breaker.
    Unavailable(String),
    /// The server answered, with an error about this request.
    Refused(String),
    /// The server answered with a JSON-RPC error (kept, for relaying with its code).
    Rpc { code: i64, message: String },
}

impl Upstream {
    fn new(row: McpServerRow, per_person: bool) -> Self {
        Upstream {
            policy: parse_policy(&row),
            row,
            per_person,
            shared: Arc::new(Slot::new(0)),
            people: Mutex::new(HashMap::new()),
            health: Mutex::new(Health::default()),
        }
    }

    /// The tools of an upstream's list that `/mcp` offers, prefixed with the server's name.
    pub fn offered_tools(&self, mut tools: Vec<Value>) -> Vec<Tool> {
        tools.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| self.policy.tools.allows(n))
        });
        prefixed_tools(&self.row.name, tools)
    }

    /// The slot `person` uses: the shared one, or on a per-person server their own (made on
    /// first use). `None`: a per-person server and a caller who is nobody in particular.
    fn slot(&self, person: Option<&str>, now: UnixTime) -> Option<Arc<Slot>> {
        if !self.per_person {
            return Some(self.shared.clone());
        }
        let person = person?;
        let mut people = self.people.lock().expect("people lock");
        if let Some(slot) = people.get(person) {
            slot.last_used.store(now, Ordering::Relaxed);
            return Some(slot.clone());
        }
        if people.len() >= PEOPLE_PER_SERVER
            && let Some(oldest) = people
                .iter()
                .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
                .map(|(p, _)| p.clone())
        {
            people.remove(&oldest);
        }
        let slot = Arc::new(Slot::new(now));
        people.insert(person.to_string(), slot.clone());
        Some(slot)
    }

    /// A person's slot if they have one (listing does not make one).
    /// The tools `person` was last listed, under the server's own names: a per-person
    /// server's are that person's own (none before they first list), a shared server's
    /// everyone's.
    /// Whether the server listed a tool of this name (its own name, without the prefix), for
    /// `person`: what `tools_of` would find, without copying the list.
    pub fn lists_tool(&self, person: Option<&str>, name: &str) -> bool {
        let prefix = format!("{}{SEPARATOR}", self.row.name);
        self.existing_slot(person).is_some_and(|slot| {
            slot.listed().tools.iter().any(|tool| {
                let listed: &str = &tool.name;
                listed.strip_prefix(&prefix).unwrap_or(listed) == name
            })
        })
    }

    pub fn tools_of(&self, person: Option<&str>) -> Vec<Tool> {
        let prefix = format!("{}{SEPARATOR}", self.row.name);
        let Some(slot) = self.existing_slot(person) else {
            return Vec::new();
        };
        slot.listed()
            .tools
            .iter()
            .map(|tool| {
                let mut tool = tool.clone();
                if let Some(own) = tool.name.strip_prefix(&prefix) {
                    tool.name = own.to_string().into();
                }
                tool
            })
            .collect()
    }

    fn existing_slot(&self, person: Option<&str>) -> Option<Arc<Slot>> {
        if !self.per_person {
            return Some(self.shared.clone());
        }
        self.people
            .lock()
            .expect("people lock")
            .get(person?)
            .cloned()
    }

    /// The grant this server's requests for `person` carry.
    fn grant_key<'a>(&self, id: &'a str, person: Option<&'a str>) -> GrantKey<'a> {
        match person.filter(|_| self.per_person) {
            Some(p) => GrantKey::person(id, p),
            None => GrantKey::shared(id),
        }
    }

    /// Ends the kept sessions, everyone's; the next request opens a new one.
    pub async fn reset_session(&self) {
        self.shared.session.lock().await.take();
        self.people.lock().expect("people lock").clear();
    }

    /// Ends one person's session and forgets their list (their grant changed).
    pub fn forget_person(&self, person: &str) {
        self.people.lock().expect("people lock").remove(person);
    }

    /// Ends the sessions of people who have not called for a while.
    fn drop_idle(&self, now: UnixTime) {
        self.people
            .lock()
            .expect("people lock")
            .retain(|_, s| now - s.last_used.load(Ordering::Relaxed) < PERSON_IDLE_SECS);
    }

    /// Every person with a slot, and the slot.
    fn people(&self) -> Vec<(String, Arc<Slot>)> {
        self.people
            .lock()
            .expect("people lock")
            .iter()
            .map(|(p, s)| (p.clone(), s.clone()))
            .collect()
    }

    pub fn enabled(&self) -> bool {
        self.row.enabled != 0
    }

    pub fn health(&self) -> Health {
        self.health.lock().expect("health lock").clone()
    }

    pub(super) fn timeout(&self) -> Duration {
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
    pub(super) fn breaker_open(&self, now: UnixTime) -> Option<String> {
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
    /// changed or removed one is dropped (its session ends with it). Whether a connection is
    /// per person never changes, so an unchanged entry keeps that too.
    pub async fn reload(&self, state: &AppState) -> Result<(), AppError> {
        let rows = state.db.list_mcp_servers().await?;
        let personal = state.per_person_connections().await?;
        let current = self.snapshot();
        let next: Vec<Arc<Upstream>> = rows
            .into_iter()
            .map(|row| {
                current
                    .iter()
                    .find(|u| u.row == row)
                    .cloned()
                    .unwrap_or_else(|| {
                        let per_person = row.auth == "connection"
                            && row
                                .connection_id
                                .as_ref()
                                .is_some_and(|id| personal.contains(id));
                        Arc::new(Upstream::new(row, per_person))
                    })
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

    /// Before a `tools/list` by `caller`: lists the servers never listed yet for them or
    /// whose list changed and waits for them (each under its own timeout, all at once);
    /// refreshes lists that are only old in the background.
    pub async fn prepare_list(&self, state: &AppState, caller: &McpCaller) {
        let now = state.now();
        let person = caller.person.as_deref();
        let mut waits = tokio::task::JoinSet::new();
        for upstream in self.snapshot().iter().filter(|u| u.enabled()) {
            let Some(slot) = upstream.slot(person, now) else {
                continue;
            };
            let need = slot.list_need(now);
            if upstream.breaker_open(now).is_some() || need == ListNeed::Fresh {
                continue;
            }
            let upstream = upstream.clone();
            let state = state.clone();
            let person = person.map(str::to_string);
            let refresh = async move {
                let _ = refresh_tools(&state, &upstream, person.as_deref()).await;
            };
            if need == ListNeed::Stale {
                tokio::spawn(refresh);
            } else {
                waits.spawn(refresh);
            }
        }
        waits.join_all().await;
    }

    /// The timer: every enabled server's stale lists (the shared one, or those of the people
    /// still using it) are listed again, a few at a time; people idle for long lose their
    /// sessions (the timer's own listing does not count as use).
    pub async fn refresh_stale(&self, state: &AppState) {
        use futures::StreamExt;
        let now = state.now();
        let mut due = Vec::new();
        for upstream in self.snapshot().iter() {
            upstream.drop_idle(now);
            if !upstream.enabled() || upstream.breaker_open(now).is_some() {
                continue;
            }
            let slots: Vec<(Option<String>, Arc<Slot>)> = if upstream.per_person {
                upstream
                    .people()
                    .into_iter()
                    .map(|(p, s)| (Some(p), s))
                    .collect()
            } else {
                vec![(None, upstream.shared.clone())]
            };
            for (person, slot) in slots {
                if slot.list_need(now) != ListNeed::Fresh {
                    due.push((upstream.clone(), person, slot));
                }
            }
        }
        futures::stream::iter(due)
            .for_each_concurrent(
                TIMER_LISTINGS_AT_ONCE,
                |(upstream, person, slot)| async move {
                    let _ = list_into(state, &upstream, person.as_deref(), slot).await;
                },
            )
            .await;
    }

    pub fn tool_source(self: &Arc<Self>) -> UpstreamTools {
        UpstreamTools(self.clone())
    }
}

/// How many lists the timer refreshes at once.
const TIMER_LISTINGS_AT_ONCE: usize = 16;

/// Lists a server's tools for `person` (one refresh at a time per slot, bounded by the
/// server's timeout) and records the outcome.
pub async fn refresh_tools(
    state: &AppState,
    upstream: &Arc<Upstream>,
    person: Option<&str>,
) -> Result<(), String> {
    let Some(slot) = upstream.slot(person, state.now()) else {
        return Err(NO_PERSON.into());
    };
    list_into(state, upstream, person, slot).await
}

/// `refresh_tools` into a given slot.
async fn list_into(
    state: &AppState,
    upstream: &Arc<Upstream>,
    person: Option<&str>,
    slot: Arc<Slot>,
) -> Result<(), String> {
    let _one = slot.refreshing.lock().await;
    let started = Instant::now();
    let listed = tokio::time::timeout(
        upstream.timeout(),
        in_slot(
            state,
            upstream,
            person,
            &slot,
            |session, headers| async move { session.list_tools(&headers).await },
        ),
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
            let tools = Arc::new(upstream.offered_tools(tools));
            let changed = {
                let mut l = slot.listed.lock().expect("listed lock");
                let changed =
                    l.listed_at.is_some() && (*l.tools != *tools || l.needs_connect.is_some());
                *l = Listed {
                    tools: tools.clone(),
                    listed_at: Some(now),
                    needs_connect: None,
                };
                changed
            };
            {
                // The server's card shows the latest list anyone got.
                let mut h = upstream.health.lock().expect("health lock");
                h.tools = tools;
                h.listed_at = Some(now);
            }
            if changed {
                state.mcp.events.send(tools_changed_for(upstream, person));
            }
            upstream.record_success(started.elapsed());
            Ok(())
        }
        Err(Failure::Connect { reason, .. }) => {
            // The person's to fix, not the server's: their list becomes the connect tool.
            let mut l = slot.listed.lock().expect("listed lock");
            let changed = l.needs_connect.is_none() && l.listed_at.is_some();
            *l = Listed {
                tools: Arc::new(Vec::new()),
                listed_at: Some(now),
                needs_connect: Some(reason.clone()),
            };
            drop(l);
            if changed {
                state.mcp.events.send(tools_changed_for(upstream, person));
            }
            Err(reason)
        }
        Err(failure) => {
            let reason = failure_text(&failure);
            tracing::warn!(server = %upstream.row.name, error = %reason, "upstream tool list failed");
            // On a server that acts as each caller, a refusal is about that person's account.
            if !(upstream.per_person
                && matches!(failure, Failure::Refused(_) | Failure::Rpc { .. }))
            {
                upstream.record_failure(&reason, now);
            }
            // Keep the last list (shown as unavailable) but look again soon.
            Err(reason)
        }
    }
}

/// A stored policy that does not read (it was written by Gatehouse, so this is damage)
/// hides everything rather than offering what the operator meant to hide.
fn parse_policy(row: &McpServerRow) -> ServerPolicy {
    serde_json::from_str(&row.policy).unwrap_or_else(|e| {
        tracing::error!(server = %row.name, error = %e, "the server's policy does not read; offering nothing of it");
        let none = NameFilter::allow(&[]);
        ServerPolicy {
            tools: none.clone(),
            prompts: none.clone(),
            resources: none,
        }
    })
}

/// Who is told that a list changed: everyone, or for a person's own list, that person.
fn tools_changed_for(upstream: &Upstream, person: Option<&str>) -> McpEvent {
    match person.filter(|_| upstream.per_person) {
        Some(p) => McpEvent::ToolsChangedFor(p.to_string()),
        None => McpEvent::ToolsChanged,
    }
}

/// Why a per-person server cannot be called without a person.
const NO_PERSON: &str = "it acts as each person who calls it, and this MCP client calls without a token, as nobody in particular: use an API token or sign in with OAuth";

pub fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Reauthorize { connection, reason } => {
            format!("re-authorize connection {connection}: {reason}")
        }
        Failure::Connect {
            connection, reason, ..
        } => {
            format!("connect your account of {connection}: {reason}")
        }
        Failure::Unavailable(m) | Failure::Refused(m) => m.clone(),
        Failure::Rpc { code, message } => format!("error {code}: {message}"),
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

/// The headers a request to this server carries for `person`: its credential, nothing else.
async fn credentials(
    state: &AppState,
    upstream: &Upstream,
    person: Option<&str>,
    force_refresh: bool,
) -> Result<HeaderMap, Failure> {
    let row = &upstream.row;
    let mut headers = HeaderMap::new();
    match row.auth.as_str() {
        "connection" => {
            let id = row.connection_id.as_deref().unwrap_or_default();
            let key = upstream.grant_key(id, person);
            let token = state
                .connection_token(key, force_refresh)
                .await
                .map_err(|e| broker_failure(id, key, e))?;
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

fn broker_failure(id: &str, key: GrantKey<'_>, e: BrokerError) -> Failure {
    match e {
        BrokerError::NeedsReauth { name, reason } if key.person.is_some() => Failure::Connect {
            connection: name,
            connection_id: id.to_string(),
            reason,
        },
        BrokerError::NotConnected(name) if key.person.is_some() => Failure::Connect {
            connection: name,
            connection_id: id.to_string(),
            reason: "you have not connected your account yet".into(),
        },
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
        // A person's grant failing at the provider is theirs, not the server's: no breaker.
        other if key.person.is_some() => Failure::Refused(other.to_string()),
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

/// Runs `op` on `person`'s session with the server (the shared one unless the server is per
/// person), with the recoveries the protocol allows: a session the server ended is opened
/// again once; a 401 with a connection refreshes its token once and retries, and a second
/// 401 marks the grant for re-authorization.
pub async fn with_session<T, F, Fut>(
    state: &AppState,
    upstream: &Upstream,
    person: Option<&str>,
    op: F,
) -> Result<T, Failure>
where
    F: Fn(Arc<UpstreamSession>, HeaderMap) -> Fut,
    Fut: std::future::Future<Output = Result<T, UpstreamError>>,
{
    let Some(slot) = upstream.slot(person, state.now()) else {
        return Err(Failure::Refused(NO_PERSON.into()));
    };
    in_slot(state, upstream, person, &slot, op).await
}

/// `with_session` in a given slot.
async fn in_slot<T, F, Fut>(
    state: &AppState,
    upstream: &Upstream,
    person: Option<&str>,
    slot: &Slot,
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
        let headers = credentials(state, upstream, person, forced).await?;
        let attempt = async {
            let session = session(state, upstream, slot, person, &headers).await?;
            op(session, headers.clone()).await
        };
        match attempt.await {
            Ok(v) => return Ok(v),
            Err(UpstreamError::SessionExpired) if !reopened => {
                reopened = true;
                slot.session.lock().await.take();
            }
            Err(UpstreamError::Unauthorized) if row.auth == "connection" && !forced => {
                forced = true;
                // The session may be bound to the old token: start a new one with the new.
                slot.session.lock().await.take();
            }
            Err(UpstreamError::Unauthorized) if row.auth == "connection" => {
                let name = connection_name(state, row).await;
                let reason = format!(
                    "the MCP server {} refused its access token even after a refresh (401)",
                    row.name
                );
                let id = row.connection_id.as_deref().unwrap_or_default();
                let key = upstream.grant_key(id, person);
                if let Err(e) = state.report_refused_token(key, &reason).await {
                    tracing::error!(error = %e, "cannot mark the connection");
                }
                tracing::warn!(server = %row.name, connection = id, per_person = key.person.is_some(), "upstream refused a refreshed token");
                return Err(authorize_again(key, name, reason));
            }
            // Step-up: the grant must be authorized again, with the scopes it has and the
            // ones asked for (a person: through their connect link).
            Err(UpstreamError::InsufficientScope(scope)) if row.auth == "connection" => {
                let name = connection_name(state, row).await;
                let id = row.connection_id.as_deref().unwrap_or_default();
                let key = upstream.grant_key(id, person);
                let scopes = state
                    .widen_scopes(key, scope.as_deref().unwrap_or_default())
                    .await
                    .map_err(|e| Failure::Unavailable(e.to_string()))?;
                let reason = format!(
                    "the MCP server {} needs more access than the token grants: authorize again with the scopes {}",
                    row.name,
                    scopes.join(" ")
                );
                tracing::info!(server = %row.name, connection = id, scopes = %scopes.join(" "), "upstream asked for more scopes");
                return Err(authorize_again(key, name, reason));
            }
            Err(UpstreamError::Unauthorized) => {
                return Err(Failure::Refused(if row.auth == "headers" {
                    "it refused the request (401 Unauthorized): check the headers configured for it in Gatehouse".into()
                } else {
                    "it requires authentication (401 Unauthorized): attach a connection or headers to it in Gatehouse".into()
                }));
            }
            Err(UpstreamError::Rpc { code, message }) => {
                return Err(Failure::Rpc { code, message });
            }
            // Refused to this person's account, on a server that acts as each caller: about
            // them, not the server, so no breaker.
            Err(UpstreamError::Forbidden) if upstream.per_person => {
                return Err(Failure::Refused(format!(
                    "{} for your account",
                    UpstreamError::Forbidden
                )));
            }
            Err(e) => {
                if !matches!(e, UpstreamError::Forbidden) {
                    slot.session.lock().await.take();
                }
                return Err(Failure::Unavailable(e.to_string()));
            }
        }
    }
}

/// The grant must be authorized again: a person is sent their connect link, a shared
/// connection's admin is told to re-authorize it.
fn authorize_again(key: GrantKey<'_>, connection: String, reason: String) -> Failure {
    match key.person {
        Some(_) => Failure::Connect {
            connection,
            connection_id: key.connection.to_string(),
            reason,
        },
        None => Failure::Reauthorize { connection, reason },
    }
}

/// Tells `subscriptions/listen` streams that the tools changed (a person's own list: them).
fn tools_changed_callback(state: &AppState, event: McpEvent) -> Arc<dyn Fn() + Send + Sync> {
    let events = state.mcp.events.clone();
    Arc::new(move || events.send(event.clone()))
}

/// Tells clients that an upstream's prompts or resources changed (everyone: these lists are
/// not kept per person), or that a resource they watch was updated (the watchers among the
/// people of the session it came on).
fn notice_callback(
    state: &AppState,
    server: &str,
    person: Option<&str>,
) -> Arc<dyn Fn(Notice) + Send + Sync> {
    let events = state.mcp.events.clone();
    let (server, person) = (server.to_string(), person.map(str::to_owned));
    Arc::new(move |notice| {
        events.send(match notice {
            Notice::PromptsChanged => McpEvent::PromptsChanged,
            Notice::ResourcesChanged => McpEvent::ResourcesChanged,
            Notice::ResourceUpdated(uri) => McpEvent::UpstreamResourceUpdated {
                person: person.clone(),
                uri: wrap_uri(&server, &uri),
            },
        })
    })
}

/// The client of a tool call, for what the upstream sends about it.
fn downstream_of(ctx: &ToolContext<'_>) -> Option<Downstream> {
    let request = ctx.request?;
    Some(Downstream {
        peer: request.peer.clone(),
        request_id: request.id.clone(),
        progress_token: request.meta.get_progress_token(),
        cancelled: request.ct.clone(),
        elicitation: ctx.client.elicitation_form(),
        sampling: ctx.client.sampling(),
        roots: ctx.client.roots(),
        stateless: is_2026(request),
        asker: None,
    })
}

/// The slot's live session, opened with `headers` when there is none.
async fn session(
    state: &AppState,
    upstream: &Upstream,
    slot: &Slot,
    person: Option<&str>,
    headers: &HeaderMap,
) -> Result<Arc<UpstreamSession>, UpstreamError> {
    let mut slot = slot.session.lock().await;
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
            ChangeFlag::new(tools_changed_callback(
                state,
                tools_changed_for(upstream, person),
            )),
            notice_callback(state, &upstream.row.name, person),
        )
        .await?,
    );
    *slot = Some(session.clone());
    Ok(session)
}

/// Calls a tool of an upstream as the caller; every failure comes back as a tool error naming
/// the server, except a missing grant of the caller's own, which sends them the link to
/// connect it (`connect_outcome`).
pub async fn call_tool(
    ctx: &ToolContext<'_>,
    upstream: &Arc<Upstream>,
    tool: &str,
    arguments: JsonObject,
) -> ToolOutcome {
    let state = ctx.state;
    let person = ctx.caller.person.as_deref();
    let server = &upstream.row.name;
    let now = state.now();
    if let Some(reason) = upstream.breaker_open(now) {
        return tool_error(format!(
            "The MCP server {server} is unavailable ({reason})."
        ))
        .into();
    }
    let started = Instant::now();
    let arguments = Value::Object(arguments);
    let downstream = downstream_of(ctx);
    if downstream.as_ref().is_some_and(|d| d.stateless) {
        return call_in_rounds(ctx, upstream, tool, arguments, downstream).await;
    }
    let retry = upstream_retry(ctx);
    let outcome = with_session(state, upstream, person, |session, headers| {
        let (arguments, downstream, retry) = (arguments.clone(), downstream.clone(), retry.clone());
        async move {
            session
                .call_tool(tool, arguments, &headers, downstream, retry)
                .await
        }
    })
    .await;
    call_outcome(ctx, upstream, tool, CallEnd { started, outcome })
}

/// How an upstream call ended, for `call_outcome`.
pub struct CallEnd {
    started: Instant,
    outcome: Result<Value, Failure>,
}

/// Where Gatehouse keeps a 2026-07-28 upstream's `requestState` in its own round state.
const UPSTREAM_ROUND: &str = "upstream_round";

/// The retry of an upstream call whose previous round the upstream ended with an
/// `InputRequiredResult` (its state kept under `UPSTREAM_ROUND`).
fn upstream_retry(ctx: &ToolContext<'_>) -> Option<UpstreamRetry> {
    let round = ctx.input?;
    let state = round.state.as_ref()?.get(UPSTREAM_ROUND)?;
    Some(UpstreamRetry {
        responses: round.responses.clone(),
        state: state.as_str().map(str::to_owned),
    })
}

/// An upstream's `InputRequiredResult` as this round's input requests, its state kept.
fn upstream_input_required(result: &Value) -> Option<InputNeeded> {
    if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
        return None;
    }
    let mut needed = InputNeeded::new();
    for (key, request) in result["inputRequests"].as_object().into_iter().flatten() {
        let method = request["method"].as_str().unwrap_or_default();
        needed = needed.ask(key, method, request["params"].clone());
    }
    Some(needed.with_state(serde_json::json!({ UPSTREAM_ROUND: result["requestState"] })))
}

fn call_outcome(
    ctx: &ToolContext<'_>,
    upstream: &Upstream,
    tool: &str,
    end: CallEnd,
) -> ToolOutcome {
    let server = &upstream.row.name;
    let took = end.started.elapsed().as_secs_f64();
    // Only a tool the server listed is a label: a caller may send any name.
    let listed = upstream.lists_tool(ctx.caller.person.as_deref(), tool);
    let tool = if listed { tool } else { "other" };
    if let Ok(result) = &end.outcome
        && let Some(needed) = upstream_input_required(result)
    {
        upstream.record_success(end.started.elapsed());
        metrics::tool_call(&upstream.row.id, server, tool, "needs_input", Some(took));
        return Outcome::NeedInput(needed);
    }
    let (label, reached) = match &end.outcome {
        Ok(r) if r.get("isError") == Some(&Value::Bool(true)) => ("tool_error", true),
        Ok(_) => ("ok", true),
        Err(Failure::Connect { .. }) => ("needs_connect", false),
        Err(Failure::Rpc { .. } | Failure::Refused(_)) => ("failed", true),
        Err(_) => ("failed", false),
    };
    metrics::tool_call(
        &upstream.row.id,
        server,
        tool,
        label,
        reached.then_some(took),
    );
    match end.outcome {
        Err(Failure::Connect {
            connection,
            connection_id,
            reason,
        }) => connect_outcome(ctx, upstream, &connection_id, &connection, &reason),
        other => finish_call(ctx.state, upstream, end.started, other).into(),
    }
}

/// A call of a 2026-07-28 client: the upstream call runs in a task of its own, and each
/// request the upstream sends about it becomes a round of input for the client (`parked`).
async fn call_in_rounds(
    ctx: &ToolContext<'_>,
    upstream: &Arc<Upstream>,
    tool: &str,
    arguments: Value,
    downstream: Option<Downstream>,
) -> ToolOutcome {
    let parked = &ctx.state.mcp.parked;
    let now = ctx.state.now();
    let round_state = ctx.input.and_then(|round| round.state.as_ref());
    let waited = match round_state.filter(|s| names_parked_call(Some(s))) {
        Some(state) => {
            let answer = ctx.input.and_then(|r| r.response(QUESTION_KEY)).cloned();
            parked.resume(state, answer, now).await
        }
        None => {
            let (state, upstream, tool) = (ctx.state.clone(), upstream.clone(), tool.to_string());
            let person = ctx.caller.person.clone();
            let retry = upstream_retry(ctx);
            let running = Running::start(move |hooks| async move {
                let started = Instant::now();
                let downstream = downstream.map(|d| Downstream {
                    asker: Some(hooks.asker),
                    cancelled: hooks.cancelled,
                    ..d
                });
                let outcome =
                    with_session(&state, &upstream, person.as_deref(), |session, headers| {
                        let (arguments, downstream) = (arguments.clone(), downstream.clone());
                        let (tool, retry) = (tool.clone(), retry.clone());
                        async move {
                            session
                                .call_tool(&tool, arguments, &headers, downstream, retry)
                                .await
                        }
                    })
                    .await;
                CallEnd { started, outcome }
            });
            parked.wait(running, now).await
        }
    };
    match waited {
        Waited::Done(end) => call_outcome(ctx, upstream, tool, end),
        Waited::Asked(needed) => Outcome::NeedInput(needed),
        Waited::Gone => tool_error(format!(
            "The MCP server {}'s question about this call is no longer waiting for an answer: it expired, or it waits on another Gatehouse replica. Call the tool again.",
            upstream.row.name
        ))
        .into(),
    }
}

/// A call's result as the client gets it.
fn finish_call(
    state: &AppState,
    upstream: &Upstream,
    started: Instant,
    outcome: Result<Value, Failure>,
) -> CallToolResult {
    let server = &upstream.row.name;
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
        Err(Failure::Connect {
            connection, reason, ..
        }) => tool_error(format!(
            "The MCP server {server} acts as each person who calls it, and your account of {connection:?} is not usable ({reason})."
        )),
        Err(Failure::Refused(m)) => {
            tool_error(format!("The MCP server {server} refused the call: {m}."))
        }
        Err(Failure::Rpc { code, message }) => tool_error(format!(
            "The MCP server {server} refused the call: error {code}: {message}."
        )),
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

/// `<server>__connect`: what someone without a grant of a per-person server sees instead of
/// its tools.
fn connect_tool(upstream: &Upstream, reason: &str) -> Tool {
    Tool::new(
        format!("{}{SEPARATOR}{CONNECT_TOOL}", upstream.row.name),
        format!(
            "The MCP server {} acts as each person who calls it, and needs your own account: {reason}. Call this tool for the link that connects it; its tools appear once you have.",
            upstream.row.name
        ),
        Arc::new(
            serde_json::json!({"type": "object", "properties": {}, "additionalProperties": false})
                .as_object()
                .cloned()
                .expect("an object"),
        ),
    )
    .with_title(format!("Connect your account to {}", upstream.row.name))
    .with_annotations(
        rmcp::model::ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    )
}

/// The input request's key of the link in the 2026 era.
const CONNECT_KEY: &str = "connect_account";

/// What someone whose own grant is missing or dead gets: the link to connect it, as a URL
/// elicitation when their client declared `elicitation.url`, else in a tool error's text. The
/// link is a page of Gatehouse's for this person alone (`connections::link`).
fn connect_outcome(
    ctx: &ToolContext<'_>,
    upstream: &Upstream,
    connection_id: &str,
    connection: &str,
    reason: &str,
) -> ToolOutcome {
    let server = &upstream.row.name;
    let Some(person) = ctx.caller.person.as_deref() else {
        return tool_error(format!("The MCP server {server} {NO_PERSON}.")).into();
    };
    // The user turned the link down in the previous round: say so instead of asking again.
    if let Some(action) = ctx
        .input
        .and_then(|round| round.action(CONNECT_KEY))
        .filter(|a| *a != "accept")
    {
        return tool_error(format!(
            "Not connected: the link to connect your account of {connection:?} was answered {action:?}, so {server} cannot act as you. Call the tool again when you want to connect it."
        ))
        .into();
    }
    let elicitation_id = crate::server::secrets::random_id();
    let url = ctx
        .state
        .connect_link(connection_id, person, &elicitation_id);
    let message = format!(
        "{server} acts as each person who calls it: connect your own account of {connection} to use it ({}).",
        reason.trim_end_matches('.')
    );
    if !ctx.client.elicitation_url() {
        return tool_error(format!(
            "{message} Open this link in a browser, signed in to Gatehouse as yourself, then call the tool again: {url}"
        ))
        .into();
    }
    Outcome::UrlRequired(UrlRequired {
        key: CONNECT_KEY.into(),
        message,
        url,
        elicitation_id,
    })
}

/// The answer of `<server>__connect`: connected already, or the link.
async fn connect_answer(ctx: &ToolContext<'_>, upstream: &Upstream) -> ToolOutcome {
    let (state, server) = (ctx.state, &upstream.row.name);
    let Some(person) = ctx.caller.person.as_deref() else {
        return tool_error(format!("The MCP server {server} {NO_PERSON}.")).into();
    };
    let id = upstream.row.connection_id.as_deref().unwrap_or_default();
    let connection = state
        .connection_name(id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| id.to_string());
    match state
        .connection_token(GrantKey::person(id, person), false)
        .await
    {
        Ok(_) => CallToolResult::success(vec![rmcp::model::ContentBlock::text(format!(
            "Your account of {connection:?} is connected: list the tools again to see those of {server}."
        ))])
        .into(),
        Err(BrokerError::NotConnected(_)) => connect_outcome(
            ctx,
            upstream,
            id,
            &connection,
            "you have not connected your account yet",
        ),
        Err(BrokerError::NeedsReauth { reason, .. }) => {
            connect_outcome(ctx, upstream, id, &connection, &reason)
        }
        Err(e) => tool_error(format!("The MCP server {server} cannot be reached as you: {e}")).into(),
    }
}

impl ToolSource for UpstreamTools {
    fn list(&self, caller: &McpCaller) -> Vec<Tool> {
        let now = self.0.clock.now();
        let person = caller.person.as_deref();
        let mut tools = Vec::new();
        for upstream in self.0.snapshot().iter().filter(|u| u.enabled()) {
            let listed = match upstream.existing_slot(person) {
                Some(slot) => slot.listed(),
                None if upstream.per_person && person.is_none() => {
                    tools.push(connect_tool(upstream, NO_PERSON));
                    continue;
                }
                None => Listed::default(),
            };
            if let Some(reason) = &listed.needs_connect {
                tools.push(connect_tool(upstream, reason));
                continue;
            }
            let health = upstream.health();
            let down = upstream
                .breaker_open(now)
                .or_else(|| health.last_error.clone().filter(|_| health.failures > 0));
            match down {
                Some(reason) => tools.extend(listed.tools.iter().map(|t| unavailable(t, &reason))),
                None => tools.extend(listed.tools.iter().cloned()),
            }
        }
        tools
    }

    /// Any caller's tool of that name: schemas are the upstream's, whoever listed them.
    fn find_any(&self, name: &str) -> Option<Tool> {
        let (server, _) = name.split_once(SEPARATOR)?;
        let upstream = self.0.by_name(server)?;
        let mut slots = vec![upstream.shared.clone()];
        slots.extend(upstream.people().into_iter().map(|(_, s)| s));
        slots
            .iter()
            .find_map(|s| s.listed().tools.iter().find(|t| t.name == name).cloned())
            .or_else(|| {
                (upstream.per_person && name.ends_with(&format!("{SEPARATOR}{CONNECT_TOOL}")))
                    .then(|| connect_tool(&upstream, "you have not connected your account yet"))
            })
    }

    fn call<'a>(
        &'a self,
        ctx: ToolContext<'a>,
        name: &'a str,
        arguments: JsonObject,
    ) -> Option<ToolFuture<'a>> {
        let (server, tool) = name.split_once(SEPARATOR)?;
        let upstream = self.0.by_name(server).filter(|u| u.enabled())?;
        let person = ctx.caller.person.as_deref();
        // A hidden tool is, to callers, no tool at all; Gatehouse's own connect tool is not
        // the upstream's to hide.
        let ours = upstream.per_person && tool == CONNECT_TOOL;
        if !ours && !upstream.policy.tools.allows(tool) {
            return None;
        }
        Some(Box::pin(async move {
            // `<server>__connect` is Gatehouse's unless the person's list has the upstream's
            // own tool of that name.
            let own_connect = upstream.per_person
                && tool == CONNECT_TOOL
                && !upstream
                    .existing_slot(person)
                    .is_some_and(|s| s.listed().tools.iter().any(|t| t.name == name));
            if own_connect {
                return connect_answer(&ctx, &upstream).await;
            }
            call_tool(&ctx, &upstream, tool, arguments).await
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

    fn row() -> McpServerRow {
        McpServerRow {
            id: "s".into(),
            name: "s".into(),
            url: "https://x".into(),
            transport: "http".into(),
            auth: "connection".into(),
            connection_id: Some("c".into()),
            headers: None,
            secret_refs: "[]".into(),
            timeout_secs: 5,
            enabled: 1,
            catalog_id: None,
            policy: "{}".into(),
            created_by: "t".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn people_have_their_own_slots_which_end_when_idle_or_crowded_out() {
        let u = Upstream::new(row(), true);
        assert!(u.slot(None, 0).is_none(), "nobody in particular has none");
        let ada = u.slot(Some("ada"), 0).unwrap();
        assert!(!Arc::ptr_eq(&ada, &u.slot(Some("bob"), 0).unwrap()));
        assert!(Arc::ptr_eq(&ada, &u.slot(Some("ada"), 100).unwrap()));
        // Looking (the timer, a list) is not using.
        assert!(u.existing_slot(Some("ada")).is_some());
        u.drop_idle(100 + PERSON_IDLE_SECS - 1);
        assert!(u.existing_slot(Some("ada")).is_some());
        assert!(
            u.existing_slot(Some("bob")).is_none(),
            "bob was idle since 0"
        );
        u.drop_idle(100 + PERSON_IDLE_SECS);
        assert!(u.existing_slot(Some("ada")).is_none());
        // At the cap, the least recently active person's slot goes.
        for i in 0..PEOPLE_PER_SERVER {
            u.slot(Some(&format!("p{i}")), 1000 + i as i64);
        }
        u.slot(Some("late"), 5000);
        assert_eq!(u.people().len(), PEOPLE_PER_SERVER);
        assert!(u.existing_slot(Some("p0")).is_none());
        assert!(u.existing_slot(Some("p1")).is_some());
        // A shared server has one slot for everyone.
        let shared = Upstream::new(row(), false);
        assert!(Arc::ptr_eq(
            &shared.slot(None, 0).unwrap(),
            &shared.slot(Some("ada"), 0).unwrap()
        ));
    }

    #[test]
    fn the_breaker_opens_after_failures_and_closes_on_success() {
        let u = Upstream::new(
            McpServerRow {
                auth: "none".into(),
                connection_id: None,
                ..row()
            },
            false,
        );
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
