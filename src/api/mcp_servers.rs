//! Upstream MCP servers behind `/mcp`, the secrets vault their headers draw on, and the
//! catalog of well-known remote servers.

use super::ApiError;
pub use crate::model::mcp_servers::*;
use leptos::prelude::*;

#[server]
pub async fn list_mcp_servers() -> Result<McpServersOverview, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    // Members read the servers; the catalog and the vault's names are for admins, who add.
    let admin = identity.is_admin();
    let result = async {
        Ok::<_, crate::server::error::AppError>(McpServersOverview {
            can_manage: admin,
            servers: crate::server::gateway::servers::list(&state, &identity).await?,
            catalog: if admin {
                crate::server::gateway::catalog::views(&state)
            } else {
                Vec::new()
            },
            secrets: if admin {
                crate::server::secrets::vault::list(&state).await?
            } else {
                Vec::new()
            },
        })
    }
    .await;
    super::respond(result)
}

#[server(input = server_fn::codec::Json)]
pub async fn create_mcp_server(input: McpServerInput) -> Result<McpServerView, ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::gateway::servers::create(&state, &identity, input).await)
}

#[server(input = server_fn::codec::Json)]
pub async fn update_mcp_server(
    id: String,
    input: McpServerInput,
) -> Result<McpServerView, ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::gateway::servers::update(&state, &identity, &id, input).await)
}

#[server]
pub async fn delete_mcp_server(id: String) -> Result<(), ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::gateway::servers::delete(&state, &identity, &id).await)
}

#[server]
pub async fn test_mcp_server(id: String) -> Result<McpServerTestView, ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::gateway::servers::test(&state, &id, &identity).await)
}

/// Creates or replaces a vault secret; the value is never sent back.
#[server(input = server_fn::codec::Json)]
pub async fn put_secret(name: String, value: String) -> Result<(), ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(
        crate::server::secrets::vault::put(&state, &name, &value, &identity.subject).await,
    )
}

#[server]
pub async fn delete_secret(name: String) -> Result<(), ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::secrets::vault::delete(&state, &name, &identity.subject).await)
}
