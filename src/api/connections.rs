//! Connections: OAuth grants Gatehouse holds at third-party providers.

use super::ApiError;
pub use crate::model::connections::*;
use leptos::prelude::*;

#[server]
pub async fn list_builtin_providers() -> Result<Vec<BuiltinProviderView>, ApiError> {
    // Public facts about providers (names, endpoints, scopes), nothing of this instance's.
    super::require_identity()?;
    Ok(super::app_state().connections.providers.views())
}

#[server]
pub async fn list_connections() -> Result<ConnectionsOverview, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(crate::server::connections::manage::overview(&state, &identity).await)
}

#[server(input = server_fn::codec::Json)]
pub async fn create_connection(input: ConnectionInput) -> Result<ConnectionView, ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::connections::manage::create(&state, &identity, input).await)
}

#[server(input = server_fn::codec::Json)]
pub async fn update_connection(
    id: String,
    input: ConnectionInput,
) -> Result<ConnectionView, ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::connections::manage::update(&state, &identity, &id, input).await)
}

#[server]
pub async fn delete_connection(id: String) -> Result<Option<String>, ApiError> {
    let admin = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::connections::manage::delete(&state, &admin, &id).await)
}

/// Disconnects the shared grant (admins), or of a per-person connection the caller's own
/// grant, or `person`'s (admins).
#[server]
pub async fn disconnect_connection(
    id: String,
    person: Option<String>,
) -> Result<Option<String>, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(
        crate::server::connections::manage::disconnect(&state, &identity, &id, person.as_deref())
            .await,
    )
}

/// Starts Connect / Re-authorize: the popup URL, or for client credentials, the token. A
/// per-person connection connects the caller's own account.
#[server]
pub async fn connect_connection(id: String) -> Result<ConnectStart, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    super::respond(crate::server::connections::manage::connect(&state, &identity, &id, None).await)
}

/// Re-authorize: Connect, with client or scope changes that apply once it succeeds.
#[server(input = server_fn::codec::Json)]
pub async fn reauthorize_connection(
    id: String,
    changes: ReauthorizeChanges,
) -> Result<ConnectStart, ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(
        crate::server::connections::manage::connect(&state, &identity, &id, Some(changes)).await,
    )
}

#[server]
pub async fn introspect_connection(id: String) -> Result<ProviderAnswerView, ApiError> {
    let identity = super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::connections::manage::introspect(&state, &identity, &id).await)
}

#[server]
pub async fn sync_connection_registration(id: String) -> Result<ProviderAnswerView, ApiError> {
    super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::connections::manage::sync_registration(&state, &id).await)
}

#[server]
pub async fn push_connection_registration(id: String) -> Result<ProviderAnswerView, ApiError> {
    super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::connections::manage::push_registration(&state, &id).await)
}
