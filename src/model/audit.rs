//! The audit trail: what the Audit page, `/api/v0/audit` and `gatehouse audit` show.

use serde::{Deserialize, Serialize};

/// One recorded event. Never holds a secret: names and ids only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    /// Sorts in recording order; the listing's cursor.
    pub id: String,
    /// Unix time, seconds.
    pub at: i64,
    /// What happened, `<kind>.<verb>`: `sign_in`, `api_token.created`, `connection.refreshed`.
    pub action: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// Who acted: `person`, `token` (an API token, by id), `client` (an MCP client, by id),
    /// `anonymous` or `system` (Gatehouse itself: refreshes, clean-ups).
    pub actor_kind: String,
    pub actor: Option<String>,
    /// What it was done to: `connection`, `mcp_server`, `secret`, `api_token`, `client`, …
    pub target_kind: Option<String>,
    pub target: Option<String>,
    /// The client's address, for what a request caused.
    pub address: Option<String>,
    /// Which Gatehouse process recorded it.
    pub replica: String,
    /// More about it (a reason, a name, scopes), as JSON.
    pub detail: Option<serde_json::Value>,
}

/// A page of events, newest first, and the cursor of the next (older) page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPageView {
    pub events: Vec<AuditEventView>,
    pub next_cursor: Option<String>,
}

/// What to list: every field narrows; none lists everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct AuditFilter {
    /// An action, or a kind with `.*` (`connection.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "ssr",
        param(max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f]{0,200}$")
    )]
    pub action: Option<String>,
    /// An actor (a person's subject, a token's or a client's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "ssr",
        param(max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f]{0,200}$")
    )]
    pub actor: Option<String>,
    /// A target (an id or a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "ssr",
        param(max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f]{0,200}$")
    )]
    pub target: Option<String>,
    /// ok, refused or failed (empty: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(pattern = "^(ok|refused|failed)?$"))]
    pub outcome: Option<String>,
    /// From this Unix time on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Before this Unix time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Older than this event (a page's `next_cursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(max_length = 100, pattern = "^[A-Za-z0-9]*$"))]
    pub cursor: Option<String>,
    /// Events per page (default 50, at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 500))]
    pub limit: Option<u32>,
}

/// Events per page unless asked otherwise, and at most.
pub const AUDIT_PAGE: u32 = 50;
pub const AUDIT_PAGE_MAX: u32 = 500;
