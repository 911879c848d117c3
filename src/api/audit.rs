//! The Audit page's data.

use super::ApiError;
pub use crate::model::audit::*;
use leptos::prelude::*;

/// One page of the audit trail (admins).
#[server(input = server_fn::codec::Json)]
pub async fn list_audit_events(filter: AuditFilter) -> Result<AuditPageView, ApiError> {
    super::require_admin()?;
    let state = super::app_state();
    super::respond(crate::server::audit::list(&state.db, &filter).await)
}
