//! Discovery: authorization server metadata (RFC 8414) and protected resource metadata
//! (RFC 9728). Every URL in them is built from `PUBLIC_URL`, never from request headers.

use serde_json::{Value, json};

use super::{OAuthServer, SCOPES_SUPPORTED};

/// `GET /.well-known/oauth-authorization-server`
pub fn authorization_server(oauth: &OAuthServer) -> Value {
    let auth_methods = ["none", "client_secret_basic", "client_secret_post"];
    json!({
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
    })
}

/// `GET /.well-known/oauth-protected-resource` and `…/mcp`
pub fn protected_resource(oauth: &OAuthServer) -> Value {
    json!({
        "resource": oauth.resource,
        "authorization_servers": [oauth.issuer],
        "scopes_supported": SCOPES_SUPPORTED,
        "bearer_methods_supported": ["header"],
        "resource_name": "Gatehouse MCP",
    })
}
