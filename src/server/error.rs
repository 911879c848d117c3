//! `AppError`: the server's one error type. Users see a clear message; internal failures are
//! logged with a reference id, and only the id is shown.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

use crate::model::ApiError;
use crate::server::secrets::random_bytes;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// A provider or upstream failed; the message says which and how (no secrets).
    #[error("{0}")]
    BadGateway(String),
    /// Something that is our fault (or our dependencies'): details go to the log only.
    #[error("internal error: {0}")]
    Internal(BoxError),
}

impl AppError {
    pub fn internal(error: impl Into<BoxError>) -> Self {
        AppError::Internal(error.into())
    }

    /// The wire form. For internal errors this logs the cause under a fresh reference id.
    pub fn into_api_error(self) -> ApiError {
        match self {
            AppError::BadRequest(message) => ApiError::BadRequest { message },
            AppError::Unauthorized(message) => ApiError::Unauthorized { message },
            AppError::Forbidden(message) => ApiError::Forbidden { message },
            AppError::NotFound(message) => ApiError::NotFound { message },
            AppError::Conflict(message) => ApiError::Conflict { message },
            AppError::BadGateway(message) => ApiError::BadGateway { message },
            AppError::TooManyRequests {
                message,
                retry_after,
            } => ApiError::TooManyRequests {
                message,
                retry_after,
            },
            AppError::Internal(error) => {
                let reference = hex::encode(random_bytes::<6>());
                tracing::error!(reference = %reference, error = %error, "internal error");
                ApiError::Internal {
                    message: format!(
                        "Something went wrong on the server. If it keeps happening, give the operator this reference: {reference}"
                    ),
                    reference,
                }
            }
        }
    }
}

impl From<crate::server::db::DbError> for AppError {
    fn from(e: crate::server::db::DbError) -> Self {
        AppError::internal(e)
    }
}

/// JSON error response in the shared wire shape, never cached.
pub fn api_error_response(error: ApiError) -> Response {
    let status = error.status();
    let retry_after = match &error {
        ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    let mut response = (status, Json(error)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if status == http::StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gatehouse\""),
        );
    }
    response
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        api_error_response(self.into_api_error())
    }
}

/// For the OpenAPI document (`rest::openapi`): every error the API answers, in one shape: `{"error": code, "message": …}` (plus
/// `retry_after` on 429, `reference` on 500). Not every operation can give every one.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ApiErrors {
    /// The request is malformed: not JSON, unknown or missing fields, a value out of range.
    #[response(status = 400)]
    BadRequest(#[to_schema] ApiError),
    /// No session (cookie or Bearer), or it expired.
    #[response(status = 401)]
    Unauthorized(ApiError),
    /// Not for this caller: a member asking for an admin's operation, a request from another
    /// origin, a host name this instance does not answer to.
    #[response(status = 403)]
    Forbidden(ApiError),
    /// No such item (or, for a member, not theirs).
    #[response(status = 404)]
    NotFound(ApiError),
    /// The state does not allow it: a name taken, an item in use, a connection not
    /// connected.
    #[response(status = 409)]
    Conflict(ApiError),
    /// Too many attempts: `retry_after` seconds (and the `Retry-After` header).
    #[response(status = 429)]
    TooManyRequests(ApiError),
    /// Something failed on the server; `reference` is in its log.
    #[response(status = 500)]
    Internal(ApiError),
    /// A provider or upstream server failed or refused; the message says which and how.
    #[response(status = 502)]
    BadGateway(ApiError),
}
