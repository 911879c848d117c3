//! Settings › Authentication: MCP protection and static API tokens.

use super::ApiError;
pub use crate::model::mcp_settings::*;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[server]
pub async fn get_mcp_settings() -> Result<McpSettingsView, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(crate::server::gateway::protection::settings_view(&state, &identity).await)
}

#[server]
pub async fn set_mcp_protection(require_auth: bool) -> Result<bool, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::gateway::protection::set_require_auth(&state, require_auth, &identity)
            .await
            .map(|()| require_auth),
    )
}

#[server(input = Json)]
pub async fn create_api_token(
    name: String,
    scopes: Vec<TokenScope>,
    expires_in_days: Option<u32>,
) -> Result<CreatedTokenView, ApiError> {
    use crate::server::auth::api_tokens::{NewTokenRequest, create_token};
    let identity = super::require_identity()?;
    let state = super::app_state();
    let request = NewTokenRequest {
        name,
        scopes: Some(scopes.iter().map(|s| s.as_str().to_string()).collect()),
        expires_in_days: expires_in_days.map(i64::from),
        expires_at: None,
    };
    super::respond(create_token(&state, request, &identity).await)
}

#[server]
pub async fn delete_api_token(id: String) -> Result<(), ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(crate::server::auth::api_tokens::delete_token(&state, &id, &identity).await)?;
    crate::server::gateway::end_token_sessions(&state, &id).await;
    Ok(())
}
