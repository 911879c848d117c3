//! The operational endpoints: `/healthz` for load balancers and orchestrators, `/metrics` for
//! Prometheus. Outside `/api/v0` and outside the session: a probe or a scraper has no session.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

use crate::server::metrics;
use crate::server::secrets::constant_time_eq;
use crate::server::state::AppState;

/// The Prometheus text format's content type.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    pub database: DatabaseStatus,
    /// Gatehouse's version.
    pub version: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseStatus {
    Ok,
    Unreachable,
}

/// `GET /healthz`: 200 when the database answers, 503 when it does not. Exempt from the Host
/// check: probes come by address, and it tells nothing beyond "up".
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Up: the database answers", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let version = env!("CARGO_PKG_VERSION").to_string();
    match state.db.ping().await {
        Ok(()) => Json(Health {
            status: HealthStatus::Ok,
            database: DatabaseStatus::Ok,
            version,
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: HealthStatus::Unavailable,
                    database: DatabaseStatus::Unreachable,
                    version,
                }),
            )
                .into_response()
        }
    }
}

/// `GET /metrics` on the main listener: for the bearer of `METRICS_TOKEN` only. Routed only
/// when `METRICS_TOKEN` is set; with `METRICS_ADDR` the metrics are on their own listener.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "The Prometheus text exposition (the README lists the metrics)", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "Not the bearer of METRICS_TOKEN", body = String, content_type = "text/plain; charset=utf-8",
            headers(("www-authenticate" = String, description = "`Bearer realm=\"metrics\"`"))),
        (status = 404, description = "No METRICS_TOKEN is set: the metrics are on METRICS_ADDR's listener, or off"),
    )
)]
pub async fn metrics_with_token(
    State(state): State<AppState>,
    headers: http::HeaderMap,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let allowed = state
        .config
        .metrics_token
        .as_ref()
        .is_some_and(|t| constant_time_eq(presented, t.expose()));
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            "Send METRICS_TOKEN as a Bearer token.\n",
        )
            .into_response();
    }
    metrics_exposition(&state).await
}

/// The Prometheus exposition, with the gauges read now (also served on `METRICS_ADDR`).
pub async fn metrics_exposition(state: &AppState) -> Response {
    let sessions = state.mcp.session_count(state.now()).await.ok();
    let pool = state.db.pool();
    let text = metrics::render(sessions, pool.size(), pool.num_idle());
    ([(header::CONTENT_TYPE, EXPOSITION)], text).into_response()
}
