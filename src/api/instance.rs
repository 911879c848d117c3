use super::ApiError;
pub use crate::model::instance::*;
use leptos::prelude::*;

#[server]
pub async fn get_instance_info() -> Result<InstanceView, ApiError> {
    let identity = super::require_identity()?;
    let state = super::app_state();
    let mut view = state.instance_view();
    if !identity.is_admin() {
        // Where the store lives is the operators' business.
        view.storage_location = "(shown to admins)".into();
    }
    Ok(view)
}
