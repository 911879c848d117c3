//! Discovery: authorization server metadata (RFC 8414) and protected resource metadata
//! (RFC 9728). Every URL in them is built from `PUBLIC_URL`, never from request headers.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::SCOPES_SUPPORTED;
use crate::server::state::AppState;

fn cacheable(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /.well-known/oauth-authorization-server`
pub async fn authorization_server(State(state): State<AppState>) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let auth_methods = ["none", "client_secret_basic", "client_secret_post"];
    cacheable(
        Json(json!({
            "issuer": oauth.issuer,
            "authorization_endpoint": oauth.endpoint("/mcp/oauth/authorize"),
            "token_endpoint": oauth.endpoint("/mcp/oauth/token"),
            "registration_endpoint": oauth.endpoint("/mcp/oauth/register"),
            "revocation_endpoint": oauth.endpoint("/mcp/oauth/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "scopes_supported": SCOPES_SUPPORTED,
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "service_documentation": oauth.endpoint("/login"),
        }))
        .into_response(),
    )
}

/// `GET /.well-known/oauth-protected-resource` and `…/mcp`
pub async fn protected_resource(State(state): State<AppState>) -> Response {
    let Some(oauth) = state.oauth_as.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    cacheable(
        Json(json!({
            "resource": oauth.resource,
            "authorization_servers": [oauth.issuer],
            "scopes_supported": SCOPES_SUPPORTED,
            "bearer_methods_supported": ["header"],
            "resource_name": "Gatehouse MCP",
        }))
        .into_response(),
    )
}
