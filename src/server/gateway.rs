//! The MCP side of Gatehouse: the `/mcp` endpoint, who may call it, and the tools behind it.

pub mod caller;
pub mod catalog;
pub mod conformance;
pub mod endpoint;
pub mod events;
pub mod handler;
pub mod input;
pub mod offers;
pub mod parked;
pub mod protection;
pub mod servers;
pub mod sessions;
pub mod tools;
pub mod upstream_client;
mod upstream_http;
pub mod upstreams;

/// The protocol revisions `/mcp` speaks: the stateless 2026-07-28 form and the session-based
/// revisions before it.
pub const SUPPORTED_PROTOCOL_VERSIONS: [&str; 4] =
    ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];

use crate::server::connections::{
    CONNECTION_CHANGED, CONNECTION_GRANT_CHANGED, parse_grant_change_key,
};
use crate::server::db::changes::Change;
use crate::server::state::AppState;

/// A change made elsewhere (another replica, or another domain here) arrived.
pub async fn on_change(state: &AppState, change: &Change) {
    if change.is(protection::MCP_PROTECTION_CHANGED) {
        state.mcp.protection.forget();
    }
    if change.is(servers::MCP_SERVERS_CHANGED)
        && let Err(e) = state.upstreams.reload(state).await
    {
        tracing::warn!(error = %e, "cannot read the MCP servers again after a change");
    }
    if change.is(CONNECTION_GRANT_CHANGED)
        && let Some((connection, person, elicitation)) =
            change.key.as_deref().and_then(parse_grant_change_key)
    {
        // Only this person's sessions were opened with that grant; their list changes.
        for upstream in state.upstreams.snapshot().iter() {
            if upstream.per_person && upstream.row.connection_id.as_deref() == Some(connection) {
                upstream.forget_person(person);
            }
        }
        state
            .mcp
            .events
            .send(events::McpEvent::ToolsChangedFor(person.to_string()));
        if let Some(id) = elicitation {
            state
                .mcp
                .events
                .send(events::McpEvent::ElicitationComplete {
                    person: person.to_string(),
                    id: id.to_string(),
                });
        }
    }
    if change.is(CONNECTION_CHANGED) {
        // Sessions opened with the old grant (perhaps another account) end; the next call
        // opens a new one with the current token.
        for upstream in state.upstreams.snapshot().iter() {
            let uses_it = match (&change.key, &upstream.row.connection_id) {
                (Some(changed), Some(used)) => changed == used,
                (None, Some(_)) => true,
                _ => false,
            };
            if uses_it {
                upstream.reset_session().await;
            }
        }
    }
}

/// Ends every MCP session an API token opened (the token was deleted).
pub async fn end_token_sessions(state: &AppState, token_id: &str) {
    state
        .mcp
        .forget_principal(&caller::McpCaller::api_token_key(token_id))
        .await;
}
