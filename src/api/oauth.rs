//! The authorization server's pages: the consent page, Settings › Sessions and Settings ›
//! OAuth Clients.

use super::ApiError;
pub use crate::model::oauth::*;
use leptos::prelude::*;

#[server(prefix = "/api", endpoint = "get_consent_request")]
pub async fn get_consent_request(request: String) -> Result<ConsentView, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::oauth_as::consent::consent_view(&state, &identity, &request).await,
    )
}

#[server]
pub async fn list_oauth_clients() -> Result<OAuthOverview<OAuthClientView>, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(crate::server::oauth_as::admin::list_clients(&state, &identity).await)
}

#[server]
pub async fn revoke_oauth_consent(client_id: String) -> Result<(), ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::oauth_as::admin::revoke_consent(&state, &client_id, &identity).await,
    )
}

#[server]
pub async fn delete_oauth_client(client_id: String) -> Result<(), ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::oauth_as::admin::delete_client(&state, &client_id, &identity).await,
    )
}

#[server]
pub async fn list_oauth_sessions() -> Result<OAuthOverview<OAuthSessionView>, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(crate::server::oauth_as::admin::list_sessions(&state, &identity).await)
}

#[server]
pub async fn revoke_oauth_session(session_id: String) -> Result<(), ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::oauth_as::admin::revoke_session(&state, &session_id, &identity).await,
    )
}
