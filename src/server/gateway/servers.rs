//! Upstream MCP server entries: checking what the operator entered, storing it (headers
//! sealed), the views the page and the API show, and "Test".

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

use super::upstream_client::UpstreamSession;
use super::upstreams::{Upstream, headers_context, refresh_tools, summaries};
use crate::model::mcp_servers::{
    McpServerInput, McpServerTestView, McpServerView, PersonalAccountView, ServerPolicy,
};
use crate::server::audit::{self, Event};
use crate::server::auth::Identity;
use crate::server::connections::{GrantKey, SignInRequest};
use crate::server::db::gateway::McpServerRow;
use crate::server::error::AppError;
use crate::server::http::check_outbound_url;
use crate::server::secrets::{random_id, vault};
use crate::server::state::AppState;

pub const DEFAULT_TIMEOUT_SECS: i64 = 30;
pub const MAX_TIMEOUT_SECS: i64 = 300;

/// Headers Gatehouse sets itself (or that would break the transport) and an entry may not.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "content-type",
    "accept",
    "connection",
    "transfer-encoding",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "upgrade",
];

/// `^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`: no `_`, so `<name>__<tool>` splits one way only.
pub fn check_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 32
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(format!(
            "The name {name:?} is not valid: use lowercase letters, digits and '-' (at most 32, not starting or ending with '-'). It prefixes the server's tools: <name>__<tool>."
        ))
    }
}

const STDIO_REFUSED: &str = "The stdio transport is not supported: a stdio server is a program on the machine of the client that starts it, and Gatehouse reaches servers over the network only. Run it behind a stdio-to-HTTP bridge (for example supergateway) and add the bridge's URL with transport http.";

pub fn parse_transport(transport: &str) -> Result<&'static str, String> {
    match transport.trim() {
        "" | "http" | "streamable_http" | "streamable-http" => Ok("http"),
        "sse" => Ok("sse"),
        "stdio" => Err(STDIO_REFUSED.into()),
        other => Err(format!(
            "Unknown transport {other:?}: use http (Streamable HTTP) or sse (the legacy HTTP+SSE transport)."
        )),
    }
}

/// An upstream's URL. Something that reads like a command line (`npx -y some-server`) is a
/// stdio server, which gets the explanation why stdio is refused.
fn parse_server_url(input: &str) -> Result<Url, String> {
    let input = input.trim();
    Url::parse(input).map_err(|e| {
        if input.contains(char::is_whitespace) || !input.contains("://") {
            format!(
                "{input:?} is not a URL; if it is the command that starts a stdio server: {}",
                STDIO_REFUSED
            )
        } else {
            format!("The URL is not valid: {e}.")
        }
    })
}

/// What an input becomes once checked: the row's fields (headers still in the clear).
struct Checked {
    name: String,
    url: String,
    transport: &'static str,
    auth: String,
    connection_id: Option<String>,
    headers: Option<Vec<(String, String)>>,
    secret_refs: BTreeSet<String>,
    timeout_secs: i64,
    enabled: bool,
    /// `None`: keep the stored one.
    policy: Option<ServerPolicy>,
}

/// The policy with its patterns checked and trimmed.
fn check_policy(policy: &ServerPolicy) -> Result<ServerPolicy, String> {
    Ok(ServerPolicy {
        tools: policy.tools.normalized("tool")?,
        prompts: policy.prompts.normalized("prompt")?,
        resources: policy.resources.normalized("resource")?,
    })
}

async fn check(
    state: &AppState,
    input: McpServerInput,
    existing: Option<&McpServerRow>,
) -> Result<Checked, AppError> {
    let bad = AppError::BadRequest;
    let name = input.name.trim().to_string();
    check_name(&name).map_err(bad)?;
    // The transport first: a stdio entry's "URL" is a command line, and the useful answer is
    // why stdio is refused, not that a command is no URL.
    let transport = parse_transport(&input.transport).map_err(bad)?;
    let url = parse_server_url(&input.url).map_err(bad)?;
    check_outbound_url(&url, state.outbound.policy)
        .map_err(|e| AppError::BadRequest(format!("The URL {e}.")))?;
    if url.fragment().is_some() {
        return Err(AppError::BadRequest(
            "The URL must not have a #fragment.".into(),
        ));
    }
    let timeout_secs = input.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=MAX_TIMEOUT_SECS).contains(&timeout_secs) {
        return Err(AppError::BadRequest(format!(
            "The timeout must be between 1 and {MAX_TIMEOUT_SECS} seconds."
        )));
    }
    let auth = match input.auth.trim() {
        "" => "none",
        a @ ("none" | "connection" | "headers") => a,
        "discover" => {
            return Err(AppError::BadRequest(
                "Sign-in discovery runs when a server is added. To sign in again, re-authorize its connection on the Connections page.".into(),
            ));
        }
        other => {
            return Err(AppError::BadRequest(format!(
                "Unknown authentication {other:?}: use none, connection, headers or (when adding) discover."
            )));
        }
    }
    .to_string();
    let mut connection_id = None;
    let mut headers = None;
    let mut secret_refs = BTreeSet::new();
    match auth.as_str() {
        "connection" => {
            let id = input
                .connection_id
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| {
                    AppError::BadRequest(
                        "Choose the connection whose token this server gets.".into(),
                    )
                })?;
            if state.connection_name(&id).await?.is_none() {
                return Err(AppError::BadRequest(format!(
                    "No connection with id {id:?}."
                )));
            }
            connection_id = Some(id);
        }
        "headers" => match (input.headers, existing) {
            // An edit without headers keeps the stored ones.
            (None, Some(row)) if row.auth == "headers" && row.headers.is_some() => {
                secret_refs = serde_json::from_str(&row.secret_refs).unwrap_or_default();
            }
            (pairs, _) => {
                let pairs = pairs.unwrap_or_default();
                secret_refs = check_headers(state, &pairs).await?;
                headers = Some(
                    pairs
                        .into_iter()
                        .map(|(h, v)| (h.trim().to_string(), v))
                        .collect(),
                );
            }
        },
        _ => {}
    }
    let policy = input
        .policy
        .as_ref()
        .map(check_policy)
        .transpose()
        .map_err(AppError::BadRequest)?;
    Ok(Checked {
        policy,
        name,
        url: url.to_string(),
        transport,
        auth,
        connection_id,
        headers,
        secret_refs,
        timeout_secs,
        enabled: input.enabled.unwrap_or(true),
    })
}

/// Checks static headers (names, reserved ones, duplicates, values, placeholders that must be
/// in the vault); the vault names they use.
async fn check_headers(
    state: &AppState,
    pairs: &[(String, String)],
) -> Result<BTreeSet<String>, AppError> {
    let mut secret_refs = BTreeSet::new();
    if pairs.is_empty() {
        return Err(AppError::BadRequest(
            "Add at least one header, or choose no authentication.".into(),
        ));
    }
    if pairs.len() > 20 {
        return Err(AppError::BadRequest("At most 20 headers.".into()));
    }
    let mut seen = BTreeSet::new();
    for (header, template) in pairs {
        let header = header.trim();
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(AppError::BadRequest(format!(
                "{header:?} is not a valid header name."
            )));
        }
        let lower = header.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(AppError::BadRequest(format!(
                "The header {header} is set by Gatehouse and cannot be configured."
            )));
        }
        if !seen.insert(lower) {
            return Err(AppError::BadRequest(format!(
                "The header {header} is given twice."
            )));
        }
        if template.is_empty()
            || template.len() > 8192
            || template.chars().any(|c| c.is_control() && c != '\t')
        {
            return Err(AppError::BadRequest(format!(
                "The value of {header} is empty, too long, or has a line break."
            )));
        }
        secret_refs.extend(
            vault::placeholders(template)
                .map_err(|e| AppError::BadRequest(format!("The value of {header}: {e}.")))?,
        );
    }
    let missing = vault::missing(state, &secret_refs).await?;
    if !missing.is_empty() {
        return Err(AppError::BadRequest(format!(
            "Not in the vault: {}. Add {} under Secrets first.",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        )));
    }
    Ok(secret_refs)
}

fn apply(state: &AppState, row: &mut McpServerRow, checked: Checked) {
    row.name = checked.name;
    row.url = checked.url;
    row.transport = checked.transport.to_string();
    if let Some(pairs) = checked.headers {
        let json = serde_json::to_string(&pairs).expect("pairs serialize");
        row.headers = Some(state.sealer.seal(&json, &headers_context(&row.id)));
    } else if checked.auth != "headers" {
        row.headers = None;
    }
    row.auth = checked.auth;
    row.connection_id = checked.connection_id;
    row.secret_refs = serde_json::to_string(&checked.secret_refs).expect("names serialize");
    row.timeout_secs = checked.timeout_secs;
    row.enabled = i64::from(checked.enabled);
    if let Some(policy) = checked.policy {
        row.policy = serde_json::to_string(&policy).expect("policy serializes");
    }
}

fn taken(name: &str) -> AppError {
    AppError::Conflict(format!("An MCP server named {name:?} exists already."))
}

pub async fn create(
    state: &AppState,
    identity: &Identity,
    input: McpServerInput,
) -> Result<McpServerView, AppError> {
    let mut input = input;
    let catalog_id = input.catalog_id.clone().filter(|c| !c.is_empty());
    if let Some(id) = &catalog_id {
        from_catalog(state, id, &mut input).await?;
    }
    let made = match input.auth.trim() {
        "discover" => Some(sign_in(state, identity, &mut input).await?),
        _ => None,
    };
    let checked = match check(state, input, None).await {
        Ok(c) => c,
        Err(e) => {
            forget_made(state, made.as_deref()).await;
            return Err(e);
        }
    };
    let now = state.now();
    let mut row = McpServerRow {
        id: random_id(),
        name: String::new(),
        url: String::new(),
        transport: String::new(),
        auth: String::new(),
        connection_id: None,
        headers: None,
        secret_refs: "[]".into(),
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        enabled: 1,
        catalog_id,
        policy: "{}".into(),
        created_by: identity.subject.clone(),
        created_at: now,
        updated_at: now,
    };
    apply(state, &mut row, checked);
    if !state.db.insert_mcp_server(&row).await? {
        forget_made(state, made.as_deref()).await;
        return Err(taken(&row.name));
    }
    tracing::info!(server = %row.name, url = %row.url, by = %identity.subject, "MCP server added");
    let event = Event::new("mcp_server.created", identity.actor())
        .on("mcp_server", &row.id)
        .detail(server_detail(&row));
    audit::record(&state.db, now, event).await;
    reload_everywhere(state).await?;
    get(state, &row.id).await
}

/// `auth: discover`: finds how the server is signed in to, creates that connection, and
/// points the entry at it. Its id, to remove it again if the entry is refused after all.
async fn sign_in(
    state: &AppState,
    identity: &Identity,
    input: &mut McpServerInput,
) -> Result<String, AppError> {
    let name = input.name.trim().to_string();
    check_name(&name).map_err(AppError::BadRequest)?;
    let url = parse_server_url(&input.url).map_err(AppError::BadRequest)?;
    check_outbound_url(&url, state.outbound.policy)
        .map_err(|e| AppError::BadRequest(format!("The URL {e}.")))?;
    if state
        .db
        .list_mcp_servers()
        .await?
        .iter()
        .any(|s| s.name == name)
    {
        return Err(taken(&name));
    }
    let sign_in = input.sign_in.take().unwrap_or_default();
    let request = SignInRequest {
        name: format!("{name} (MCP sign-in)"),
        url,
        per_person: sign_in.per_person,
        client_id: sign_in.client_id,
        client_secret: sign_in.client_secret,
    };
    let connection = state.sign_in_connection(identity, request).await?;
    input.auth = "connection".into();
    input.connection_id = Some(connection.id.clone());
    Ok(connection.id)
}

/// Removes the connection `sign_in` made for an entry that was not saved.
async fn forget_made(state: &AppState, connection: Option<&str>) {
    if let Some(id) = connection
        && let Err(e) = state.db.delete_connection(id).await
    {
        tracing::warn!(connection = id, error = %e, "cannot remove the connection made for a refused MCP server");
    }
}

/// Fills what the operator left empty from a catalog entry, and checks that the connection
/// is one of the provider the entry needs.
async fn from_catalog(
    state: &AppState,
    id: &str,
    input: &mut McpServerInput,
) -> Result<(), AppError> {
    let entry = state
        .upstreams
        .catalog
        .find(id)
        .ok_or_else(|| AppError::BadRequest(format!("No catalog entry {id:?}.")))?
        .clone();
    if input.name.trim().is_empty() {
        input.name = entry.server_name.clone();
    }
    if input.url.trim().is_empty() {
        input.url = entry.url.clone();
    }
    if input.transport.trim().is_empty() {
        input.transport = entry.transport.clone();
    }
    let Some(provider) = &entry.provider else {
        // Signed in to by discovery: no client to bring, nothing to choose.
        if entry.sign_in() == "discover" && input.auth.trim().is_empty() {
            input.auth = "discover".into();
        }
        return Ok(());
    };
    if input.auth.trim().is_empty() {
        input.auth = "connection".into();
    }
    if input.auth == "connection" {
        let display = state
            .provider_name(provider)
            .unwrap_or_else(|| provider.clone());
        let needed = || {
            AppError::BadRequest(format!(
                "{} needs a {display} connection: create and connect one first, then choose it.",
                entry.name
            ))
        };
        let connection_id = input
            .connection_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(needed)?;
        let connection = state
            .db
            .find_connection(connection_id)
            .await?
            .ok_or_else(needed)?;
        if &connection.provider != provider {
            return Err(AppError::BadRequest(format!(
                "{} needs a {display} connection; {:?} is not one.",
                entry.name, connection.name
            )));
        }
    }
    Ok(())
}

pub async fn update(
    state: &AppState,
    identity: &Identity,
    id: &str,
    input: McpServerInput,
) -> Result<McpServerView, AppError> {
    let mut row = find(state, id).await?;
    let checked = check(state, input, Some(&row)).await?;
    apply(state, &mut row, checked);
    row.updated_at = state.now();
    if !state.db.update_mcp_server(&row).await? {
        return Err(taken(&row.name));
    }
    tracing::info!(server = %row.name, by = %identity.subject, "MCP server changed");
    let event = Event::new("mcp_server.edited", identity.actor())
        .on("mcp_server", &row.id)
        .detail(server_detail(&row));
    audit::record(&state.db, row.updated_at, event).await;
    reload_everywhere(state).await?;
    get(state, id).await
}

pub async fn delete(state: &AppState, identity: &Identity, id: &str) -> Result<(), AppError> {
    let row = find(state, id).await?;
    state.db.delete_mcp_server(id).await?;
    tracing::info!(server = %row.name, by = %identity.subject, "MCP server deleted");
    let event = Event::new("mcp_server.deleted", identity.actor())
        .on("mcp_server", id)
        .detail(serde_json::json!({"name": row.name}));
    audit::record(&state.db, state.now(), event).await;
    reload_everywhere(state).await
}

/// What the trail says of a server: where it is and how it is reached; header values and
/// secrets never (their names only).
fn server_detail(row: &McpServerRow) -> serde_json::Value {
    serde_json::json!({
        "name": row.name,
        "url": redacted_url(&row.url),
        "auth": row.auth,
        "connection_id": row.connection_id,
        "enabled": row.enabled != 0,
        "policy": serde_json::from_str::<serde_json::Value>(&row.policy).unwrap_or_default(),
    })
}

/// Where a URL points, without what may be a credential in it: user information, the query,
/// and the path too (some hosted servers put their key in it).
fn redacted_url(url: &str) -> String {
    Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

async fn find(state: &AppState, id: &str) -> Result<McpServerRow, AppError> {
    state
        .db
        .find_mcp_server(id)
        .await?
        .ok_or_else(|| AppError::NotFound("No MCP server with this id.".into()))
}

/// Every server, as `caller` may see it (`for_caller`).
pub async fn list(state: &AppState, caller: &Identity) -> Result<Vec<McpServerView>, AppError> {
    let mut views = Vec::new();
    for upstream in state.upstreams.snapshot().iter() {
        let mut v = view(state, upstream).await?;
        personalize(state, upstream, &mut v, caller).await?;
        views.push(for_caller(v, caller));
    }
    Ok(views)
}

/// A per-person server as `caller` sees it: their own account of its connection, and the
/// tools their own account was listed (not whoever listed last).
async fn personalize(
    state: &AppState,
    upstream: &Upstream,
    view: &mut McpServerView,
    caller: &Identity,
) -> Result<(), AppError> {
    view.personal = personal(state, upstream, view, caller).await?;
    if upstream.per_person {
        view.tools = summaries(&upstream.tools_of(Some(&caller.subject)));
    }
    Ok(())
}

/// Of a per-person server (seen as `view`): the caller's own account of its connection.
async fn personal(
    state: &AppState,
    upstream: &Upstream,
    view: &McpServerView,
    caller: &Identity,
) -> Result<Option<PersonalAccountView>, AppError> {
    let (true, Some(id)) = (upstream.per_person, upstream.row.connection_id.as_deref()) else {
        return Ok(None);
    };
    Ok(Some(PersonalAccountView {
        connection_id: id.to_string(),
        // Read already for the view.
        connection_name: view
            .connection_name
            .clone()
            .unwrap_or_else(|| id.to_string()),
        status: state
            .grant_status(GrantKey::person(id, &caller.subject))
            .await?,
    }))
}

/// A member reads what a server is and whether it works, not how it is reached: the URL
/// loses any credentials and query, and the headers, vault names, connection and error text
/// (which may quote the upstream) are left out.
fn for_caller(mut view: McpServerView, caller: &Identity) -> McpServerView {
    if caller.is_admin() {
        return view;
    }
    if let Ok(mut url) = Url::parse(&view.url) {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        view.url = url.to_string();
    }
    view.header_names.clear();
    view.secret_refs.clear();
    view.connection_id = None;
    view.last_error = None;
    view.calls = None;
    view
}

/// Change topic: the MCP server entries changed.
pub const MCP_SERVERS_CHANGED: &str = "mcp_servers_changed";

/// Reads the entries again here, and has every other replica do the same.
async fn reload_everywhere(state: &AppState) -> Result<(), AppError> {
    let reloaded = state.upstreams.reload(state).await;
    state.db.tell_replicas(MCP_SERVERS_CHANGED, None).await;
    reloaded
}

/// One server, as `caller` may see it (`for_caller`).
pub async fn read(
    state: &AppState,
    id: &str,
    caller: &Identity,
) -> Result<McpServerView, AppError> {
    let mut v = get(state, id).await?;
    if let Some(upstream) = state.upstreams.find(id) {
        personalize(state, &upstream, &mut v, caller).await?;
    }
    Ok(for_caller(v, caller))
}

/// One server, whole (for the admin operations that answer with it).
async fn get(state: &AppState, id: &str) -> Result<McpServerView, AppError> {
    let upstream = match state.upstreams.find(id) {
        Some(u) => u,
        None => {
            // Written by another replica since this one last read the entries.
            state.upstreams.reload(state).await?;
            state
                .upstreams
                .find(id)
                .ok_or_else(|| AppError::NotFound("No MCP server with this id.".into()))?
        }
    };
    view(state, &upstream).await
}

async fn view(state: &AppState, upstream: &Arc<Upstream>) -> Result<McpServerView, AppError> {
    let row = &upstream.row;
    let health = upstream.health();
    let connection_name = match &row.connection_id {
        Some(id) => state.connection_name(id).await?,
        None => None,
    };
    let header_names = match (&row.headers, row.auth.as_str()) {
        (Some(sealed), "headers") => state
            .sealer
            .open(sealed, &headers_context(&row.id))
            .ok()
            .and_then(|opened| serde_json::from_str::<Vec<(String, String)>>(opened.expose()).ok())
            .map(|pairs| pairs.into_iter().map(|(name, _)| name).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let status = if row.enabled == 0 {
        "disabled"
    } else if health.failures > 0 {
        "failing"
    } else if health.listed_at.is_some() || health.latency_ms.is_some() {
        "healthy"
    } else {
        "unknown"
    };
    Ok(McpServerView {
        id: row.id.clone(),
        name: row.name.clone(),
        url: row.url.clone(),
        transport: row.transport.clone(),
        auth: row.auth.clone(),
        connection_id: row.connection_id.clone(),
        connection_name,
        header_names,
        secret_refs: serde_json::from_str(&row.secret_refs).unwrap_or_default(),
        timeout_secs: row.timeout_secs,
        enabled: row.enabled != 0,
        catalog_id: row.catalog_id.clone(),
        status: status.into(),
        last_error: health.last_error,
        latency_ms: health.latency_ms,
        tools: summaries(&health.tools),
        created_at: row.created_at,
        updated_at: row.updated_at,
        personal: None,
        policy: upstream.policy.clone(),
        calls: crate::server::metrics::upstream_calls(&row.id),
    })
}

/// "Test": a new session (replacing the kept one), the tool list, and how long it took; the
/// cached list is refreshed too when it works. A per-person server is tested with the
/// admin's own grant.
pub async fn test(
    state: &AppState,
    id: &str,
    caller: &Identity,
) -> Result<McpServerTestView, AppError> {
    let person = Some(caller.subject.as_str());
    find(state, id).await?;
    let upstream = state
        .upstreams
        .find(id)
        .ok_or_else(|| AppError::NotFound("No MCP server with this id.".into()))?;
    upstream.reset_session().await;
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(upstream.row.timeout_secs as u64),
        super::upstreams::with_session(state, &upstream, person, |session, headers| async move {
            let tools = session.list_tools(&headers).await?;
            Ok((session, tools))
        }),
    )
    .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    // A failed Test is the server's health too: the card shows it as failing, with why.
    let failed = match &outcome {
        Ok(Ok(_)) => None,
        Ok(Err(failure)) => Some(super::upstreams::failure_text(failure)),
        Err(_) => Some(format!(
            "it did not answer within {} s",
            upstream.row.timeout_secs
        )),
    };
    // The admin's own account missing is not the server's failure.
    let personal = matches!(outcome, Ok(Err(super::upstreams::Failure::Connect { .. })));
    if let Some(reason) = failed.as_ref().filter(|_| !personal) {
        upstream.record_failure(reason, state.now());
    }
    Ok(match outcome {
        Ok(Ok((session, tools))) => {
            let _ = refresh_tools(state, &upstream, person).await;
            let session: Arc<UpstreamSession> = session;
            McpServerTestView {
                ok: true,
                latency_ms,
                server_name: Some(session.server_name.clone()),
                protocol_version: Some(session.protocol_version.clone()),
                tools: summaries(&upstream.offered_tools(tools)),
                error: None,
            }
        }
        Ok(Err(failure)) => McpServerTestView {
            ok: false,
            latency_ms,
            server_name: None,
            protocol_version: None,
            tools: Vec::new(),
            error: Some(super::upstreams::failure_text(&failure)),
        },
        Err(_) => McpServerTestView {
            ok: false,
            latency_ms,
            server_name: None,
            protocol_version: None,
            tools: Vec::new(),
            error: failed,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::session::Role;

    /// The OpenAPI document's pattern for a name accepts what `check_name` accepts (after the
    /// trim `check` does), no more and no less: schemathesis sends what it does not match.
    #[test]
    fn the_documented_name_pattern_is_the_check() {
        let pattern = crate::model::schemas::server_name().pattern.unwrap();
        let re = regex::Regex::new(&pattern).unwrap();
        let long = "a".repeat(32);
        let too_long = "a".repeat(33);
        for name in [
            "a",
            "0",
            "linear",
            "a-b",
            "a--b",
            &long,
            &too_long,
            "-a",
            "a-",
            "A",
            "a_b",
            "",
            " ",
            " linear\t",
            "lin ear",
            "a\u{85}",
            "\u{85}a",
            "ä",
            "a\nb",
        ] {
            assert_eq!(
                re.is_match(name),
                check_name(name.trim()).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn members_read_a_server_without_how_it_is_reached() {
        let view = McpServerView {
            id: "s1".into(),
            name: "linear".into(),
            url: "https://user:pw@mcp.example.com/mcp?api_key=k#x".into(),
            transport: "http".into(),
            auth: "headers".into(),
            connection_id: Some("c1".into()),
            connection_name: Some("Linear".into()),
            header_names: vec!["X-Key".into()],
            secret_refs: vec!["LINEAR_KEY".into()],
            timeout_secs: 30,
            enabled: true,
            catalog_id: None,
            status: "failing".into(),
            last_error: Some("401 from https://mcp.example.com/mcp?api_key=k".into()),
            latency_ms: None,
            tools: vec![],
            created_at: 0,
            updated_at: 0,
            personal: None,
            policy: ServerPolicy::default(),
            calls: None,
        };
        let mut member = Identity::anonymous();
        member.role = Role::Member;
        let seen = for_caller(view.clone(), &member);
        assert_eq!(seen.url, "https://mcp.example.com/mcp");
        assert!(seen.header_names.is_empty() && seen.secret_refs.is_empty());
        assert_eq!((seen.connection_id, seen.last_error), (None, None));
        assert_eq!(seen.status, "failing");
        assert_eq!(for_caller(view.clone(), &Identity::anonymous()), view);
    }

    #[test]
    fn command_lines_are_told_about_stdio() {
        for command in ["npx -y some-mcp-server", "uvx mcp-server-git", "./server"] {
            let e = parse_server_url(command).unwrap_err();
            assert!(e.contains("stdio transport is not supported"), "{e}");
        }
        let e = parse_server_url("https://exa mple.com/mcp").unwrap_err();
        assert!(e.contains("stdio"), "{e}");
        let e = parse_server_url("https://[::1/mcp").unwrap_err();
        assert!(e.starts_with("The URL is not valid"), "{e}");
        assert!(parse_server_url(" https://mcp.example.com/mcp ").is_ok());
    }

    #[test]
    fn names_and_transports() {
        for ok in ["github", "a", "my-server-2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "GitHub", "a_b", "-a", "a-", "a b", &"a".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_transport("streamable_http"), Ok("http"));
        assert_eq!(parse_transport(""), Ok("http"));
        assert_eq!(parse_transport("sse"), Ok("sse"));
        assert!(parse_transport("stdio").unwrap_err().contains("network"));
        assert!(parse_transport("ws").is_err());
    }
}
