use super::ApiError;
pub use crate::model::instance::*;
use leptos::prelude::*;

#[server]
pub async fn get_instance_info() -> Result<InstanceView, ApiError> {
    super::require_identity()?;
    let state = super::app_state();
    Ok(state.instance_view())
}
