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
