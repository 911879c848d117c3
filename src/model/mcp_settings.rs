//! Settings › Authentication: MCP protection and static API tokens.

use super::session::AuthType;
use serde::{Deserialize, Serialize};

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum TokenScope {
    /// Use the `/mcp` endpoint.
    #[serde(rename = "mcp")]
    Mcp,
    /// Fetch access tokens of connections through the token API.
    #[serde(rename = "connections:token")]
    ConnectionsToken,
}

impl TokenScope {
    pub const ALL: [TokenScope; 2] = [TokenScope::Mcp, TokenScope::ConnectionsToken];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Mcp => "mcp",
            TokenScope::ConnectionsToken => "connections:token",
        }
    }

    pub fn parse(value: &str) -> Option<TokenScope> {
        TokenScope::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn description(self) -> &'static str {
        match self {
            TokenScope::Mcp => "Use the MCP endpoint (/mcp) and its tools",
            TokenScope::ConnectionsToken => "Fetch fresh access tokens of connections",
        }
    }
}

/// An API token as lists show it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<TokenScope>,
    /// Prefix and last characters, to tell tokens apart: `gatehouse_at_…x9Qa`.
    pub hint: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub expired: bool,
}

/// A token just created: the only time its value is ever shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedTokenView {
    #[serde(flatten)]
    pub token: ApiTokenView,
    /// The token itself. Shown once; Gatehouse keeps only its SHA-256.
    #[serde(rename = "token")]
    pub value: String,
    /// This instance's MCP endpoint, for client configuration.
    pub mcp_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpSettingsView {
    /// "Require authentication" on `/mcp`.
    pub require_auth: bool,
    pub tokens: Vec<ApiTokenView>,
    /// This instance's MCP endpoint, for the client snippets.
    pub mcp_url: String,
    /// How people sign in to the app (tokens are managed by whoever can open this page).
    pub app_auth_type: AuthType,
    pub now: i64,
    /// The caller is an admin: may change protection, see everyone's tokens and create
    /// `connections:token` tokens. A member sees and manages their own `mcp` tokens.
    pub can_manage: bool,
    /// `oauth2` mode with no admin list: everyone allowed in is an admin.
    pub everyone_is_admin: bool,
}
