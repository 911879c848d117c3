use super::ApiError;
pub use crate::model::session::*;
use leptos::prelude::*;

/// The login page's options. Public (it is drawn before anyone signs in), hence the `/auth`
/// prefix that the session middleware lets through.
#[server(prefix = "/auth", endpoint = "login_options")]
pub async fn get_login_options() -> Result<LoginOptionsView, ApiError> {
    let state = super::app_state();
    Ok(state.login_options())
}

#[server]
pub async fn get_session() -> Result<SessionView, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    Ok(SessionView {
        identity: identity.subject.clone(),
        auth_type: state.config.auth.auth_type(),
        expires_at: identity.expires_at,
        role: identity.role,
        everyone_is_admin: crate::server::auth::everyone_is_admin(&state.config.auth),
    })
}
