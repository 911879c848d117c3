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

async fn list(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    Ok(Json(json!({"servers": servers::list(&state, &identity).await?})).into_response())
}

async fn create(
    State(state): State<AppState>,
    Admin(identity): Admin,
    JsonBody(input): JsonBody<McpServerInput>,
) -> Result<Response, AppError> {
    let view = servers::create(&state, &identity, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn read(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(Json(servers::read(&state, &id, &identity).await?).into_response())
}

async fn update(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<McpServerInput>,
) -> Result<Response, AppError> {
    Ok(Json(servers::update(&state, &identity, &id, input).await?).into_response())
}

async fn remove(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    servers::delete(&state, &identity, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(Json(servers::test(&state, &id, &identity).await?).into_response())
}

async fn list_catalog(State(state): State<AppState>, _admin: Admin) -> Result<Response, AppError> {
    Ok(Json(json!({"entries": catalog::views(&state)})).into_response())
}

async fn list_secrets(State(state): State<AppState>, _admin: Admin) -> Result<Response, AppError> {
    Ok(Json(json!({"secrets": vault::list(&state).await?})).into_response())
}

async fn put_secret(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(name): Path<String>,
    JsonBody(input): JsonBody<SecretInput>,
) -> Result<StatusCode, AppError> {
    vault::put(&state, &name, &input.value, &identity.subject).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_secret(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    vault::delete(&state, &name, &identity.subject).await?;
    Ok(StatusCode::NO_CONTENT)
}
