//! `OAuthError`: the authorization server's errors in RFC 6749 / 7591 / 8707 terms, as JSON
//! with `Cache-Control: no-store`. Failures of Gatehouse itself are logged with a reference
//! and answered `temporarily_unavailable` (503): a client can retry, and nothing internal leaks.

use http::StatusCode;
use serde_json::json;

use crate::server::db::DbError;
use crate::server::secrets::random_bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    /// RFC 8707: the `resource` is not one this server issues tokens for.
    InvalidTarget,
    AccessDenied,
    /// RFC 7591.
    InvalidRedirectUri,
    /// RFC 7591.
    InvalidClientMetadata,
    /// RFC 7009.
    UnsupportedTokenType,
    TemporarilyUnavailable,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::InvalidTarget => "invalid_target",
            OAuthCode::AccessDenied => "access_denied",
            OAuthCode::InvalidRedirectUri => "invalid_redirect_uri",
            OAuthCode::InvalidClientMetadata => "invalid_client_metadata",
            OAuthCode::UnsupportedTokenType => "unsupported_token_type",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: String,
    /// Set when the client tried HTTP Basic authentication (RFC 6749 §5.2: answer 401 with a
    /// matching challenge).
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidClient, description)
    }

    /// Logs an internal failure under a reference and hides it from the client.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let reference = hex::encode(random_bytes::<6>());
        tracing::error!(reference = %reference, error = %error, "authorization server error");
        Self::new(
            OAuthCode::TemporarilyUnavailable,
            format!(
                "The authorization server could not complete the request; try again. Reference: {reference}"
            ),
        )
    }

    /// The JSON body (RFC 6749 §5.2).
    pub fn body(&self) -> serde_json::Value {
        json!({"error": self.code.as_str(), "error_description": self.description})
    }

    pub fn status(&self) -> StatusCode {
        match self.code {
            OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<DbError> for OAuthError {
    fn from(e: DbError) -> Self {
        OAuthError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape() {
        let e = OAuthError::invalid_grant("the code has expired");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            json!({"error": "invalid_grant", "error_description": "the code has expired"})
        );
        let internal = OAuthError::internal("disk on fire");
        assert_eq!(internal.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!internal.description.contains("disk"));
    }
}
