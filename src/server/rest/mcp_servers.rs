//! `/api/v0/mcp-servers`, `/api/v0/secrets` and `/api/v0/mcp-catalog`: the MCP Servers page's
//! operations for scripts. Secret values go in and never come out.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde_json::json;

use super::{Admin, JsonBody};
use crate::model::mcp_servers::{McpServerInput, SecretInput};
use crate::server::auth::Identity;
use crate::server::error::AppError;
use crate::server::gateway::{catalog, servers};
use crate::server::secrets::vault;
use crate::server::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v0/mcp-servers", get(list).post(create))
        .route(
            "/api/v0/mcp-servers/{id}",
            get(read).put(update).delete(remove),
        )
        .route("/api/v0/mcp-servers/{id}/test", post(test))
        .route("/api/v0/mcp-catalog", get(list_catalog))
        .route("/api/v0/secrets", get(list_secrets))
        .route(
            "/api/v0/secrets/{name}",
            put(put_secret).delete(delete_secret),
        )
}

#[utoipa::path(
    get,
    path = "/api/v0/mcp-servers",
    operation_id = "mcp_servers_list",
    tag = "mcp-servers",
    summary = "The upstream MCP servers behind /mcp",
    responses((status = 200, body = super::openapi::McpServerList), super::openapi::Errors),
)]
async fn list(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    Ok(Json(json!({"servers": servers::list(&state, &identity).await?})).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v0/mcp-servers",
    operation_id = "mcp_servers_create",
    tag = "mcp-servers",
    summary = "Add an MCP server (admins)",
    request_body(content = McpServerInput, example = json!({"name": "example", "url": "https://mcp.example.com/mcp", "transport": "http", "auth": "none"})),
    responses((status = 201, body = crate::model::mcp_servers::McpServerView), super::openapi::Errors),
)]
async fn create(
    State(state): State<AppState>,
    Admin(identity): Admin,
    JsonBody(input): JsonBody<McpServerInput>,
) -> Result<Response, AppError> {
    let view = servers::create(&state, &identity, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v0/mcp-servers/{id}",
    operation_id = "mcp_servers_read",
    tag = "mcp-servers",
    summary = "One MCP server",
    params(("id" = String, Path, description = "The server's id")),
    responses((status = 200, body = crate::model::mcp_servers::McpServerView), super::openapi::Errors),
)]
async fn read(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(Json(servers::read(&state, &id, &identity).await?).into_response())
}

#[utoipa::path(
    put,
    path = "/api/v0/mcp-servers/{id}",
    operation_id = "mcp_servers_update",
    tag = "mcp-servers",
    summary = "Replace an MCP server (admins)",
    params(("id" = String, Path, description = "The server's id")),
    request_body = McpServerInput,
    responses((status = 200, body = crate::model::mcp_servers::McpServerView), super::openapi::Errors),
)]
async fn update(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<McpServerInput>,
) -> Result<Response, AppError> {
    Ok(Json(servers::update(&state, &identity, &id, input).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v0/mcp-servers/{id}",
    operation_id = "mcp_servers_remove",
    tag = "mcp-servers",
    summary = "Remove an MCP server (admins)",
    params(("id" = String, Path, description = "The server's id")),
    responses((status = 204, description = "Removed"), super::openapi::Errors),
)]
async fn remove(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    servers::delete(&state, &identity, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v0/mcp-servers/{id}/test",
    operation_id = "mcp_servers_test",
    tag = "mcp-servers",
    summary = "Test an MCP server: a new session and its tool list; a failure is ok=false (admins)",
    params(("id" = String, Path, description = "The server's id")),
    responses((status = 200, body = crate::model::mcp_servers::McpServerTestView), super::openapi::Errors),
)]
async fn test(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(Json(servers::test(&state, &id, &identity).await?).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v0/mcp-catalog",
    operation_id = "mcp_servers_list_catalog",
    tag = "mcp-servers",
    summary = "The catalog of known MCP servers (admins)",
    responses((status = 200, body = super::openapi::CatalogList), super::openapi::Errors),
)]
async fn list_catalog(State(state): State<AppState>, _admin: Admin) -> Result<Response, AppError> {
    Ok(Json(json!({"entries": catalog::views(&state)})).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v0/secrets",
    operation_id = "mcp_servers_list_secrets",
    tag = "mcp-servers",
    summary = "Vault secrets: names and uses, never values (admins)",
    responses((status = 200, body = super::openapi::SecretList), super::openapi::Errors),
)]
async fn list_secrets(State(state): State<AppState>, _admin: Admin) -> Result<Response, AppError> {
    Ok(Json(json!({"secrets": vault::list(&state).await?})).into_response())
}

#[utoipa::path(
    put,
    path = "/api/v0/secrets/{name}",
    operation_id = "mcp_servers_put_secret",
    tag = "mcp-servers",
    summary = "Set a vault secret (admins)",
    params(("name" = String, Path, description = "The secret's name: A-Z, 0-9 and _, starting with a letter", pattern = "^[A-Z][A-Z0-9_]{0,63}$")),
    request_body(content = SecretInput, example = json!({"value": "an example secret value"})),
    responses((status = 204, description = "Stored, sealed"), super::openapi::Errors),
)]
async fn put_secret(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(name): Path<String>,
    JsonBody(input): JsonBody<SecretInput>,
) -> Result<StatusCode, AppError> {
    vault::put(&state, &name, &input.value, &identity.subject).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/v0/secrets/{name}",
    operation_id = "mcp_servers_delete_secret",
    tag = "mcp-servers",
    summary = "Delete a vault secret that no server uses (admins)",
    params(("name" = String, Path, description = "The secret's name", pattern = "^[A-Z][A-Z0-9_]{0,63}$")),
    responses((status = 204, description = "Deleted"), super::openapi::Errors),
)]
async fn delete_secret(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    vault::delete(&state, &name, &identity.subject).await?;
    Ok(StatusCode::NO_CONTENT)
}
