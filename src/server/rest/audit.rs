//! `/api/v0/audit`: the audit trail for admins, a page at a time or whole as JSON lines.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::TryStreamExt;
use http::header;

use super::Admin;
use crate::model::audit::AuditFilter;
use crate::server::audit;
use crate::server::error::AppError;
use crate::server::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v0/audit", get(list))
        .route("/api/v0/audit/export", get(export))
}

/// The query string's filter; a malformed one is a 400 saying what is wrong.
fn filter(query: Result<Query<AuditFilter>, QueryRejection>) -> Result<AuditFilter, AppError> {
    query
        .map(|Query(f)| f)
        .map_err(|rejection| AppError::BadRequest(rejection.body_text()))
}

#[utoipa::path(
    get,
    path = "/api/v0/audit",
    operation_id = "audit_list",
    tag = "audit",
    summary = "A page of the audit trail, newest first (admins)",
    params(AuditFilter),
    responses((status = 200, body = crate::model::audit::AuditPageView), super::openapi::Errors),
)]
async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<AuditFilter>, QueryRejection>,
) -> Result<Response, AppError> {
    Ok(Json(audit::list(&state.db, &filter(query)?).await?).into_response())
}

/// Every event the filter selects, newest first, one JSON object per line.
#[utoipa::path(
    get,
    path = "/api/v0/audit/export",
    operation_id = "audit_export",
    tag = "audit",
    summary = "Every event the filters select, as JSON lines (admins)",
    params(AuditFilter),
    responses((status = 200, description = "One event per line, newest first", content_type = "application/x-ndjson", body = crate::model::audit::AuditEventView), super::openapi::Errors),
)]
async fn export(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<AuditFilter>, QueryRejection>,
) -> Result<Response, AppError> {
    let lines = audit::export(state.db.clone(), filter(query)?)?;
    // A failure mid-way ends the body early; what came before is whole lines.
    let body = Body::from_stream(lines.map_err(|e| std::io::Error::other(e.to_string())));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"gatehouse-audit.jsonl\"",
            ),
        ],
        body,
    )
        .into_response())
}
