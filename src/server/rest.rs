//! The REST API under `/api/v0`, for scripts. Thin like the server functions: parse, call the
//! same `server::…` functions the UI uses, map errors. The session middleware has already
//! refused callers without a session (cookie or Bearer).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::model::mcp_settings::McpSettingsView;
use crate::server::auth::Identity;
use crate::server::auth::api_tokens::{NewTokenRequest, create_token, delete_token, list_tokens};
use crate::server::error::AppError;
use crate::server::gateway::protection::{set_require_auth, settings_view};
use crate::server::oauth_as::admin;
use crate::server::state::AppState;

pub mod audit;
pub mod connections;
pub mod mcp_servers;
pub mod openapi;
pub mod operations;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(audit::routes())
        .merge(connections::routes())
        .merge(mcp_servers::routes())
        .route(
            "/api/v0/settings/mcp",
            get(get_mcp_settings).put(put_mcp_settings),
        )
        .route(
            "/api/v0/settings/mcp/tokens",
            get(get_tokens).post(post_token),
        )
        .route("/api/v0/settings/mcp/tokens/{id}", delete(delete_api_token))
        .route("/api/v0/oauth/clients", get(get_oauth_clients))
        .route("/api/v0/oauth/clients/{id}", delete(delete_oauth_client))
        .route(
            "/api/v0/oauth/clients/{id}/revoke-consent",
            post(revoke_oauth_consent),
        )
        .route("/api/v0/oauth/sessions", get(get_oauth_sessions))
        .route("/api/v0/oauth/sessions/{id}", delete(revoke_oauth_session))
        .layer(axum::middleware::from_fn(json_errors))
}

/// axum's own rejections (a path segment that is not UTF-8, a query it cannot read, a body
/// of the wrong type) answer in plain text; the API answers every error in its JSON shape,
/// as 400 with axum's explanation.
pub async fn json_errors(request: Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !plain || !response.status().is_client_error() {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&body).trim().to_string();
    AppError::BadRequest(if message.is_empty() {
        "The request could not be read.".into()
    } else {
        message
    })
    .into_response()
}

#[utoipa::path(
    get,
    path = "/api/v0/oauth/clients",
    operation_id = "get_oauth_clients",
    tag = "oauth",
    summary = "MCP clients registered with the authorization server (admins)",
    responses((status = 200, body = Vec<crate::model::oauth::OAuthClientView>), openapi::Errors),
)]
async fn get_oauth_clients(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    Ok(Json(admin::list_clients(&state, &identity).await?.items).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v0/oauth/clients/{id}",
    operation_id = "delete_oauth_client",
    tag = "oauth",
    summary = "Delete an MCP client (admins)",
    params(("id" = String, Path, description = "The client's id")),
    responses((status = 204, description = "Deleted, with its consents and sessions"), openapi::Errors),
)]
async fn delete_oauth_client(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    admin::delete_client(&state, &id, &identity).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v0/oauth/clients/{id}/revoke-consent",
    operation_id = "revoke_oauth_consent",
    tag = "oauth",
    summary = "Revoke the consents given to an MCP client (admins)",
    params(("id" = String, Path, description = "The client's id")),
    responses((status = 204, description = "Every consent given to the client revoked"), openapi::Errors),
)]
async fn revoke_oauth_consent(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    admin::revoke_consent(&state, &id, &identity).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v0/oauth/sessions",
    operation_id = "get_oauth_sessions",
    tag = "oauth",
    summary = "Live MCP client sessions: every one for an admin, their own for a member",
    responses((status = 200, body = Vec<crate::model::oauth::OAuthSessionView>), openapi::Errors),
)]
async fn get_oauth_sessions(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    Ok(Json(admin::list_sessions(&state, &identity).await?.items).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v0/oauth/sessions/{id}",
    operation_id = "revoke_oauth_session",
    tag = "oauth",
    summary = "End an MCP client session",
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 204, description = "Ended"), openapi::Errors),
)]
async fn revoke_oauth_session(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    admin::revoke_session(&state, &id, &identity).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller, who must be an admin: a handler that takes it refuses members with 403.
pub struct Admin(pub Identity);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, AppError> {
        let identity = parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or_else(|| AppError::Unauthorized("Sign in to continue.".into()))?;
        identity.require_admin()?;
        Ok(Admin(identity))
    }
}

/// A JSON body whose rejections (wrong content type, bad JSON, wrong fields) are 400s in the
/// API's error shape, with serde's explanation.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        match Json::<serde_json::Value>::from_request(request, state).await {
            Ok(Json(value)) => object_body(value).map(JsonBody),
            Err(rejection) => Err(AppError::BadRequest(match rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    "Send the body as JSON with Content-Type: application/json.".to_string()
                }
                other => other.body_text(),
            })),
        }
    }
}

/// A body that must be a JSON object: serde would also take a struct's fields from an array
/// in order (`[null, null]`), which no client means.
pub fn object_body<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    if !value.is_object() {
        return Err(AppError::BadRequest(
            "The body must be a JSON object.".to_string(),
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        AppError::BadRequest(format!(
            "Failed to deserialize the JSON body into the target type: {e}"
        ))
    })
}

fn settings_json(view: McpSettingsView) -> serde_json::Value {
    json!({
        "enabled": view.require_auth,
        "mcp_url": view.mcp_url,
        "tokens": view.tokens,
    })
}

#[utoipa::path(
    get,
    path = "/api/v0/settings/mcp",
    operation_id = "get_mcp_settings",
    tag = "settings",
    summary = "Whether /mcp requires a token, its URL, and the API tokens",
    responses((status = 200, body = openapi::McpSettingsResponse), openapi::Errors),
)]
async fn get_mcp_settings(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Json<serde_json::Value>, AppError> {
    Ok(Json(settings_json(settings_view(&state, &identity).await?)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PutMcpSettings {
    enabled: bool,
}

#[utoipa::path(
    put,
    path = "/api/v0/settings/mcp",
    operation_id = "put_mcp_settings",
    tag = "settings",
    summary = "Turn the token requirement of /mcp on or off (admins)",
    request_body = PutMcpSettings,
    responses((status = 200, body = openapi::McpSettingsResponse), openapi::Errors),
)]
async fn put_mcp_settings(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    JsonBody(body): JsonBody<PutMcpSettings>,
) -> Result<Json<serde_json::Value>, AppError> {
    set_require_auth(&state, body.enabled, &identity).await?;
    Ok(Json(settings_json(settings_view(&state, &identity).await?)))
}

#[utoipa::path(
    get,
    path = "/api/v0/settings/mcp/tokens",
    operation_id = "get_tokens",
    tag = "settings",
    summary = "API tokens: every one for an admin, their own for a member (never a value)",
    responses((status = 200, body = Vec<crate::model::mcp_settings::ApiTokenView>), openapi::Errors),
)]
async fn get_tokens(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    Ok(Json(list_tokens(&state, &identity).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v0/settings/mcp/tokens",
    operation_id = "post_token",
    tag = "settings",
    summary = "Create an API token; its value is in this answer only",
    request_body(content = NewTokenRequest, example = json!({"name": "CI", "scopes": ["mcp"], "expires_in_days": 90})),
    responses((status = 201, body = crate::model::mcp_settings::CreatedTokenView), openapi::Errors),
)]
async fn post_token(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    JsonBody(body): JsonBody<NewTokenRequest>,
) -> Result<Response, AppError> {
    let created = create_token(&state, body, &identity).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v0/settings/mcp/tokens/{id}",
    operation_id = "delete_api_token",
    tag = "settings",
    summary = "Delete an API token",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 204, description = "Deleted; the MCP sessions it opened are ended"), openapi::Errors),
)]
async fn delete_api_token(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    delete_token(&state, &id, &identity).await?;
    crate::server::gateway::end_token_sessions(&state, &id).await;
    Ok(StatusCode::NO_CONTENT)
}
