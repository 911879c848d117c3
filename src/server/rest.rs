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
}

async fn get_oauth_clients(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    Ok(Json(admin::list_clients(&state, &identity).await?.items).into_response())
}

async fn delete_oauth_client(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    admin::delete_client(&state, &id, &identity).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_oauth_consent(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    admin::revoke_consent(&state, &id, &identity).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_oauth_sessions(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    Ok(Json(admin::list_sessions(&state, &identity).await?.items).into_response())
}

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
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(AppError::BadRequest(match rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    "Send the body as JSON with Content-Type: application/json.".to_string()
                }
                other => other.body_text(),
            })),
        }
    }
}

fn settings_json(view: McpSettingsView) -> serde_json::Value {
    json!({
        "enabled": view.require_auth,
        "mcp_url": view.mcp_url,
        "tokens": view.tokens,
    })
}

async fn get_mcp_settings(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Json<serde_json::Value>, AppError> {
    Ok(Json(settings_json(settings_view(&state, &identity).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutMcpSettings {
    enabled: bool,
}

async fn put_mcp_settings(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    JsonBody(body): JsonBody<PutMcpSettings>,
) -> Result<Json<serde_json::Value>, AppError> {
    set_require_auth(&state, body.enabled, &identity).await?;
    Ok(Json(settings_json(settings_view(&state, &identity).await?)))
}

async fn get_tokens(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    Ok(Json(list_tokens(&state, &identity).await?).into_response())
}

async fn post_token(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    JsonBody(body): JsonBody<NewTokenRequest>,
) -> Result<Response, AppError> {
    let created = create_token(&state, body, &identity).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn delete_api_token(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    delete_token(&state, &id, &identity).await?;
    crate::server::gateway::end_token_sessions(&state, &id).await;
    Ok(StatusCode::NO_CONTENT)
}
