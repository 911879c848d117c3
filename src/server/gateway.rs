//! The MCP side of Gatehouse: the `/mcp` endpoint, who may call it, and the tools behind it.

pub mod caller;
pub mod catalog;
pub mod conformance;
pub mod endpoint;
pub mod events;
pub mod handler;
pub mod input;
pub mod protection;
pub mod servers;
pub mod tools;
pub mod upstream_client;
pub mod upstreams;

/// The protocol revisions `/mcp` speaks: the stateless 2026-07-28 form and the session-based
/// revisions before it.
pub const SUPPORTED_PROTOCOL_VERSIONS: [&str; 4] =
    ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];

use crate::server::state::AppState;

/// Ends every MCP session an API token opened (the token was deleted).
pub fn end_token_sessions(state: &AppState, token_id: &str) {
    state
        .mcp
        .forget_principal(&caller::McpCaller::api_token_key(token_id));
}
