//! Upstream MCP servers behind `/mcp`, the secrets vault their headers draw on, and the
//! catalog of well-known remote servers.

use serde::{Deserialize, Serialize};

/// An upstream server entry as the operator enters it. `headers: None` on an edit keeps the
/// stored headers (their values are never sent back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct McpServerInput {
    /// A slug (`a-z`, `0-9`, `-`): the prefix of the server's tools, `<name>__<tool>`.
    pub name: String,
    pub url: String,
    /// `http` (default; alias `streamable_http`) or `sse`. `stdio` is refused.
    pub transport: String,
    /// `none` (default), `connection` or `headers`.
    pub auth: String,
    /// With `auth: connection`: the connection whose access token is sent as Bearer.
    pub connection_id: Option<String>,
    /// With `auth: headers`: `[name, value]` pairs; values may hold `${NAME}` placeholders
    /// resolved from the vault at call time.
    pub headers: Option<Vec<(String, String)>>,
    /// Seconds, 1 to 300 (default 30).
    pub timeout_secs: Option<i64>,
    /// Default true.
    pub enabled: Option<bool>,
    /// The catalog entry this came from.
    pub catalog_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSummaryView {
    /// As `/mcp` lists it: `<server>__<tool>`.
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub transport: String,
    pub auth: String,
    pub connection_id: Option<String>,
    pub connection_name: Option<String>,
    /// Header names only; the values are write-only.
    pub header_names: Vec<String>,
    /// Vault names the headers use.
    pub secret_refs: Vec<String>,
    pub timeout_secs: i64,
    pub enabled: bool,
    pub catalog_id: Option<String>,
    /// `healthy`, `failing`, `disabled` or `unknown` (not contacted yet).
    pub status: String,
    pub last_error: Option<String>,
    pub latency_ms: Option<u64>,
    pub tools: Vec<ToolSummaryView>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Reached through a per-person connection: each caller uses their own account, and this
    /// says whether the viewer has connected theirs.
    #[serde(default)]
    pub personal: Option<PersonalAccountView>,
}

/// The viewer's own account of a per-person server's connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalAccountView {
    pub connection_id: String,
    pub connection_name: String,
    pub status: crate::model::connections::ConnectionStatus,
}

/// What "Test" found: the tools, or the precise error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerTestView {
    pub ok: bool,
    pub latency_ms: u64,
    pub server_name: Option<String>,
    pub protocol_version: Option<String>,
    pub tools: Vec<ToolSummaryView>,
    pub error: Option<String>,
}

/// A vault secret: its name and who uses it, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretView {
    pub name: String,
    pub used_by: Vec<String>,
    pub updated_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecretInput {
    pub value: String,
}

/// A well-known remote MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntryView {
    pub id: String,
    pub name: String,
    /// The server name it gets by default (the tool prefix).
    pub server_name: String,
    pub description: String,
    pub url: String,
    pub transport: String,
    /// The built-in provider whose connection it needs, if any.
    pub provider: Option<String>,
    /// That provider's display name.
    pub provider_name: Option<String>,
    pub docs_url: String,
}

/// The page's data in one call: servers, catalog, secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServersOverview {
    /// The caller is an admin, who may add, edit, test and delete (members read).
    pub can_manage: bool,
    pub servers: Vec<McpServerView>,
    pub catalog: Vec<CatalogEntryView>,
    pub secrets: Vec<SecretView>,
}
