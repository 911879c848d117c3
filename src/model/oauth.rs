//! The authorization server's pages: the consent page, Settings › Sessions and Settings ›
//! OAuth Clients.

use serde::{Deserialize, Serialize};

/// What the user is asked to approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentView {
    /// The pending request, and the form's CSRF token for it.
    pub request: String,
    pub csrf: String,
    pub client_id: String,
    pub client_name: String,
    /// The client is identified by a metadata document at its `client_id` URL.
    pub metadata_document: bool,
    /// Where the browser goes afterwards (host, or the scheme of an app).
    pub redirect_to: String,
    /// Every redirect URI is on this computer (http loopback).
    pub loopback_only: bool,
    /// Registered within the last day.
    pub newly_registered: bool,
    pub registered_at: i64,
    /// (scope, what it allows)
    pub scopes: Vec<(String, String)>,
    /// Who is approving.
    pub user: String,
}

/// A registered MCP client, for Settings › OAuth Clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OAuthClientView {
    pub id: String,
    pub name: String,
    /// "dcr" (registered itself) or "cimd" (metadata document).
    pub kind: String,
    pub redirect_uris: Vec<String>,
    pub registered_at: i64,
    pub last_used_at: Option<i64>,
    /// How many users have consented.
    pub consents: i64,
    /// Live sessions.
    pub sessions: i64,
}

/// A live authorization (refresh-token family), for Settings › Sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OAuthSessionView {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub user: String,
    pub scope: String,
    pub started_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthOverview<T> {
    /// Whether `MCP_OAUTH_ENABLED` is on.
    pub enabled: bool,
    pub items: Vec<T>,
    pub now: i64,
}
