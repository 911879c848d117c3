//! The authorization server's pages: the consent page, Settings › Sessions and Settings ›
//! OAuth Clients.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;

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

#[server(prefix = "/api", endpoint = "get_consent_request")]
pub async fn get_consent_request(request: String) -> Result<ConsentView, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::oauth_as::consent::consent_view(&state, &identity, &request).await,
    )
}

/// A registered MCP client, for Settings › OAuth Clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[server]
pub async fn list_oauth_clients() -> Result<OAuthOverview<OAuthClientView>, ApiError> {
    super::require_identity()?;
    let state = super::app_state();
    super::respond(crate::server::oauth_as::admin::list_clients(&state).await)
}

#[server]
pub async fn revoke_oauth_consent(client_id: String) -> Result<(), ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::oauth_as::admin::revoke_consent(&state, &client_id, &identity.subject).await,
    )
}

#[server]
pub async fn delete_oauth_client(client_id: String) -> Result<(), ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::oauth_as::admin::delete_client(&state, &client_id, &identity.subject).await,
    )
}

#[server]
pub async fn list_oauth_sessions() -> Result<OAuthOverview<OAuthSessionView>, ApiError> {
    super::require_identity()?;
    let state = super::app_state();
    super::respond(crate::server::oauth_as::admin::list_sessions(&state).await)
}

#[server]
pub async fn revoke_oauth_session(session_id: String) -> Result<(), ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::oauth_as::admin::revoke_session(&state, &session_id, &identity.subject)
            .await,
    )
}
