//! `/api/v0/connections`: the Connections page's operations for scripts, and the token API
//! for workers.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{Admin, JsonBody};
use crate::model::connections::{ConnectStart, ConnectionInput, ReauthorizeChanges};
use crate::model::mcp_settings::TokenScope;
use crate::server::audit::{self, Actor, Event};
use crate::server::auth::api_tokens::TOKEN_PREFIX;
use crate::server::auth::middleware::authenticate;
use crate::server::auth::session::bearer_token;
use crate::server::auth::{Identity, verify_api_token};
use crate::server::connections::manage;
use crate::server::error::AppError;
use crate::server::state::AppState;

/// Behind the session middleware, like every `/api/*` route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v0/connections", get(list).post(create))
        .route(
            "/api/v0/connections/{id}",
            get(read).put(update).delete(remove),
        )
        .route("/api/v0/connections/{id}/connect", post(connect))
        .route("/api/v0/connections/{id}/disconnect", post(disconnect))
        .route("/api/v0/connections/{id}/grants", get(grants))
        .route(
            "/api/v0/connections/{id}/grants/{person}",
            axum::routing::delete(revoke_grant),
        )
        .route("/api/v0/connections/{id}/introspect", post(introspect))
        .route("/api/v0/connections/{id}/registration/sync", post(sync))
        .route("/api/v0/connections/{id}/registration/push", post(push))
}

pub const TOKEN_ROUTE: &str = "/api/v0/connections/{id}/token";

/// An admin's list is every connection; a member's, their own (`manage::overview`).
#[utoipa::path(
    get,
    path = "/api/v0/connections",
    operation_id = "connections_list",
    tag = "connections",
    summary = "Connections: every one for an admin, the per-person ones with their own grant for a member",
    responses((status = 200, body = super::openapi::ConnectionList), super::openapi::Errors),
)]
async fn list(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, AppError> {
    let overview = manage::overview(&state, &identity).await?;
    Ok(
        Json(json!({"connections": overview.items, "redirect_uri": overview.redirect_uri}))
            .into_response(),
    )
}

#[utoipa::path(
    post,
    path = "/api/v0/connections",
    operation_id = "connections_create",
    tag = "connections",
    summary = "Create a connection (admins)",
    request_body(content = ConnectionInput, example = json!({"name": "example", "provider_type": "custom", "grant_type": "authorization_code", "client_id": "gatehouse", "client_secret": "example-secret", "authorization_url": "https://auth.example.com/authorize", "token_url": "https://auth.example.com/token", "scopes": ["read"]})),
    responses((status = 201, body = crate::model::connections::ConnectionView), super::openapi::Errors),
)]
async fn create(
    State(state): State<AppState>,
    Admin(identity): Admin,
    JsonBody(input): JsonBody<ConnectionInput>,
) -> Result<Response, AppError> {
    let view = manage::create(&state, &identity, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v0/connections/{id}",
    operation_id = "connections_read",
    tag = "connections",
    summary = "One connection (admins)",
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, body = crate::model::connections::ConnectionView), super::openapi::Errors),
)]
async fn read(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(Json(manage::get(&state, &identity, &id).await?).into_response())
}

#[utoipa::path(
    put,
    path = "/api/v0/connections/{id}",
    operation_id = "connections_update",
    tag = "connections",
    summary = "Replace a connection's definition; the client secret is kept unless given (admins)",
    params(("id" = String, Path, description = "The connection's id")),
    request_body = ConnectionInput,
    responses((status = 200, body = crate::model::connections::ConnectionView), super::openapi::Errors),
)]
async fn update(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ConnectionInput>,
) -> Result<Response, AppError> {
    Ok(Json(manage::update(&state, &identity, &id, input).await?).into_response())
}

/// Every person's grant of a per-person connection (an admin's view).
#[utoipa::path(
    get,
    path = "/api/v0/connections/{id}/grants",
    operation_id = "connections_grants",
    tag = "connections",
    summary = "Every person's grant of a per-person connection (admins)",
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, body = super::openapi::GrantList), super::openapi::Errors),
)]
async fn grants(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let view = manage::get(&state, &identity, &id).await?;
    if !view.per_person {
        return Err(AppError::BadRequest(format!(
            "The connection {:?} is shared: it has one grant, not one per person.",
            view.name
        )));
    }
    Ok(Json(json!({"grants": view.grants})).into_response())
}

/// Revokes one person's grant: an admin's, or that person's own.
#[utoipa::path(
    delete,
    path = "/api/v0/connections/{id}/grants/{person}",
    operation_id = "connections_revoke_grant",
    tag = "connections",
    summary = "Revoke one person's grant (an admin, or that person)",
    params(("id" = String, Path, description = "The connection's id"), ("person" = String, Path, description = "Whose grant")),
    responses((status = 200, body = super::openapi::Disconnected), super::openapi::Errors),
)]
async fn revoke_grant(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path((id, person)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let warning = manage::disconnect(&state, &identity, &id, Some(&person)).await?;
    Ok(Json(json!({"disconnected": true, "warning": warning})).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v0/connections/{id}",
    operation_id = "connections_remove",
    tag = "connections",
    summary = "Delete a connection, revoking its grants at the provider (admins)",
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, body = super::openapi::Deleted), super::openapi::Errors),
)]
async fn remove(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let warning = manage::delete(&state, &admin, &id).await?;
    Ok(Json(json!({"deleted": true, "warning": warning})).into_response())
}

/// Body optional: `{"client_id", "client_secret", "scopes"}` to re-authorize with changes,
/// applied once the new authorization succeeds. A per-person connection connects the
/// caller's own account; a shared one, and changes, need an admin (`manage::connect`).
#[utoipa::path(
    post,
    path = "/api/v0/connections/{id}/connect",
    operation_id = "connections_connect",
    tag = "connections",
    summary = "Start connecting (or re-authorizing with changes); a per-person connection connects the caller's own account",
    params(("id" = String, Path, description = "The connection's id")),
    request_body = Option<ReauthorizeChanges>,
    responses((status = 200, body = super::openapi::ConnectAnswer), super::openapi::Errors),
)]
async fn connect(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
    body: Option<Json<serde_json::Value>>,
) -> Result<Response, AppError> {
    // No body, or `null`: connect with no changes.
    let changes: Option<ReauthorizeChanges> = match body {
        None | Some(Json(serde_json::Value::Null)) => None,
        Some(Json(value)) => Some(super::object_body(value)?),
    };
    Ok(
        match manage::connect(&state, &identity, &id, changes).await? {
            ConnectStart::Popup { url } => Json(json!({"authorization_url": url})),
            ConnectStart::Connected => Json(json!({"status": "connected"})),
        }
        .into_response(),
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PersonQuery {
    /// Of a per-person connection: whose grant (an admin's choice; default the caller's).
    person: Option<String>,
}

/// The shared grant (admins), or of a per-person connection the caller's own grant, or an
/// admin's choice of `?person=`.
#[utoipa::path(
    post,
    path = "/api/v0/connections/{id}/disconnect",
    operation_id = "connections_disconnect",
    tag = "connections",
    summary = "Disconnect: revoke the grant at the provider and forget it",
    params(("id" = String, Path, description = "The connection's id"), PersonQuery),
    responses((status = 200, body = super::openapi::Disconnected), super::openapi::Errors),
)]
async fn disconnect(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
    Query(query): Query<PersonQuery>,
) -> Result<Response, AppError> {
    let warning = manage::disconnect(&state, &identity, &id, query.person.as_deref()).await?;
    Ok(Json(json!({"disconnected": true, "warning": warning})).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v0/connections/{id}/introspect",
    operation_id = "connections_introspect",
    tag = "connections",
    summary = "Ask the provider about the access token (RFC 7662; admins)",
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, body = super::openapi::ProviderAnswer), super::openapi::Errors),
)]
async fn introspect(
    State(state): State<AppState>,
    Admin(identity): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(answer(manage::introspect(&state, &identity, &id).await?))
}

#[utoipa::path(
    post,
    path = "/api/v0/connections/{id}/registration/sync",
    operation_id = "connections_sync",
    tag = "connections",
    summary = "Read the dynamic registration back from the provider (RFC 7592; admins)",
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, body = super::openapi::ProviderAnswer), super::openapi::Errors),
)]
async fn sync(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(answer(manage::sync_registration(&state, &id).await?))
}

#[utoipa::path(
    post,
    path = "/api/v0/connections/{id}/registration/push",
    operation_id = "connections_push",
    tag = "connections",
    summary = "Write the connection's settings to its dynamic registration (RFC 7592; admins)",
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, body = super::openapi::ProviderAnswer), super::openapi::Errors),
)]
async fn push(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(answer(manage::push_registration(&state, &id).await?))
}

fn answer(view: crate::model::connections::ProviderAnswerView) -> Response {
    let provider: serde_json::Value = serde_json::from_str(&view.json).unwrap_or_default();
    Json(json!({"title": view.title, "active": view.active, "provider": provider})).into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// `true` (or `1`): refresh even if the token is still fresh.
    #[serde(default)]
    #[param(pattern = "^(true|false|1|0)?$")]
    force: Option<String>,
    /// Of a per-person connection: whose grant (an admin's choice; default the caller's).
    #[serde(default)]
    person: Option<String>,
}

/// `POST /api/v0/connections/{id}/token[?force=true][&person=…]`: a fresh access token for a
/// worker, never the refresh token. Callers: an API token with the `connections:token` scope
/// (acting as its creator), or an app session. A shared connection's token is for admins; of
/// a per-person connection, everyone gets their own grant's, and an admin may name the
/// person. Mounted outside the session middleware, which knows only sessions.
#[utoipa::path(
    post,
    path = "/api/v0/connections/{id}/token",
    operation_id = "connections_token",
    tag = "connections",
    summary = "A fresh access token for a worker (refreshed first when about to expire); an API token with connections:token or a session",
    params(("id" = String, Path, description = "The connection's id"), TokenQuery),
    security(("api_token" = []), ("session" = []), ("session_cookie" = [])),
    responses((status = 200, body = super::openapi::ConnectionToken), super::openapi::Errors),
)]
pub async fn token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let force = match query.force.as_deref() {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "force must be true or false, not {other:?}"
            )));
        }
    };
    let caller = match bearer_token(&headers) {
        Ok(Some(presented)) if presented.starts_with(TOKEN_PREFIX) => {
            let token = match verify_api_token(&state, presented, state.now()).await? {
                Ok(token) => token,
                Err(_) => {
                    let event = Event::new("api_token.refused", Actor::Anonymous)
                        .refused()
                        .on("connection", &id)
                        .detail(json!({"reason": "unknown, deleted or expired"}));
                    audit::record(&state.db, state.now(), event).await;
                    return Err(AppError::Unauthorized(
                        "The API token is unknown, deleted or expired.".into(),
                    ));
                }
            };
            if !token.scopes.contains(&TokenScope::ConnectionsToken) {
                let event = Event::new("api_token.refused", Actor::Token(token.id.clone()))
                    .refused()
                    .on("connection", &id)
                    .detail(json!({"reason": "lacks the connections:token scope"}));
                audit::record(&state.db, state.now(), event).await;
                return Err(AppError::Forbidden(
                    "insufficient_scope: this API token lacks the connections:token scope.".into(),
                ));
            }
            token.creator_identity(&state.config.auth)
        }
        _ => match authenticate(&state, &headers).await? {
            Ok(identity) => identity,
            Err(_) => {
                return Err(AppError::Unauthorized(
                    "Send an API token with the connections:token scope (Authorization: Bearer gatehouse_at_…) or a session.".into(),
                ));
            }
        },
    };
    let row = state
        .db
        .find_connection(&id)
        .await?
        .ok_or_else(|| AppError::NotFound("No connection with this id.".into()))?;
    let key = manage::grant_key(&row, &caller, query.person.as_deref())?;
    if let Some(person) = key.person.filter(|p| *p != caller.subject) {
        // Someone else's account at a provider, handed to an admin: worth a line in the log.
        tracing::warn!(connection = %row.id, person, by = %caller.subject, "an admin fetched another person's connection token");
    }
    let fresh = state.connection_token(key, force).await?;
    let now = state.now();
    let mut response = Json(json!({
        "access_token": fresh.access_token.expose(),
        "token_type": fresh.token_type,
        "expires_at": fresh.expires_at,
        "expires_in": fresh.expires_at.map(|at| (at - now).max(0)),
        "scope": fresh.scope,
    }))
    .into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
