use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// The one error shape on the wire, for server functions and the REST API alike:
/// `{"error":"<code>","message":"<for humans>", …}`. Internal details never appear here;
/// internal errors carry a reference id that is also in the server log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// A provider or upstream Gatehouse called failed (timeout, 5xx, unreadable answer).
    #[error("{message}")]
    BadGateway { message: String },
    #[error("{message}")]
    Internal { message: String, reference: String },
    /// The request never got a proper answer (network failure, undecodable response).
    #[error("{message}")]
    Transport { message: String },
}

impl ApiError {
    pub fn unauthorized() -> Self {
        ApiError::Unauthorized {
            message: "Sign in to continue.".into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ApiError::Unauthorized { .. })
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::BadRequest { message }
            | ApiError::Unauthorized { message }
            | ApiError::Forbidden { message }
            | ApiError::NotFound { message }
            | ApiError::Conflict { message }
            | ApiError::TooManyRequests { message, .. }
            | ApiError::BadGateway { message }
            | ApiError::Internal { message, .. }
            | ApiError::Transport { message } => message,
        }
    }

    #[cfg(feature = "ssr")]
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Transport { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::MissingArg(message) => {
                ApiError::BadRequest { message }
            }
            other => ApiError::Transport {
                message: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_is_flat_json() {
        let json = serde_json::to_value(ApiError::unauthorized()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": "unauthorized", "message": "Sign in to continue."})
        );
        let back: ApiError = serde_json::from_value(json).unwrap();
        assert!(back.is_unauthorized());
    }
}
