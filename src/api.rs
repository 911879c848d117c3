//! Server functions: the UI's data operations. Each one is thin: authenticate, call into
//! `server::…`, map the error. Their wire types live in `model` (each module here re-exports
//! its domain's, for the UI's convenience).

pub mod audit;
pub mod connections;
pub mod instance;
pub mod mcp_servers;
pub mod mcp_settings;
pub mod oauth;
pub mod session;

pub use crate::model::ApiError;

/// The identity of the caller of a server function, put there by the session middleware.
#[cfg(feature = "ssr")]
pub(crate) fn require_identity() -> Result<crate::server::auth::Identity, ApiError> {
    use leptos::prelude::use_context;
    use_context::<http::request::Parts>()
        .and_then(|parts| {
            parts
                .extensions
                .get::<crate::server::auth::Identity>()
                .cloned()
        })
        .ok_or_else(|| fail(ApiError::unauthorized()))
}

/// The caller, who must be an admin: a member gets 403 with a message.
#[cfg(feature = "ssr")]
pub(crate) fn require_admin() -> Result<crate::server::auth::Identity, ApiError> {
    let identity = require_identity()?;
    identity
        .require_admin()
        .map_err(|e| fail(e.into_api_error()))?;
    Ok(identity)
}

/// The shared application state, provided to every server function by the router.
#[cfg(feature = "ssr")]
pub(crate) fn app_state() -> crate::server::state::AppState {
    leptos::prelude::expect_context::<crate::server::state::AppState>()
}

/// Sets the HTTP status of the server function's response to match the error, so the browser
/// (and anything else watching the wire) sees a 4xx/5xx rather than a blanket 500.
#[cfg(feature = "ssr")]
pub(crate) fn fail(error: ApiError) -> ApiError {
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(error.status());
    }
    error
}

/// Maps a server-side result onto the wire, logging internal errors with a reference id.
#[cfg(feature = "ssr")]
pub(crate) fn respond<T>(result: Result<T, crate::server::error::AppError>) -> Result<T, ApiError> {
    result.map_err(|e| fail(e.into_api_error()))
}
