//! Sign-in to an MCP server from its URL alone, the way the MCP authorization spec has a
//! client do it: the server's 401 names its protected resource metadata (RFC 9728; else the
//! well-known locations), that names the authorization server, whose metadata (RFC 8414, or
//! OpenID Connect discovery) gives the endpoints; Gatehouse identifies itself by its client ID
//! metadata document when the server supports that and Gatehouse has an https address, else
//! registers (RFC 7591), else uses the client the admin registered by hand. What comes out is
//! an ordinary connection: authorization code with PKCE S256 and `resource` set to the
//! server's URL, `iss` checked on the way back (RFC 9207), refreshed like every other.

use serde_json::{Map, Value};
use url::Url;

use super::provider_client::ProviderError;
use crate::model::connections::{ConnectionInput, ConnectionView};
use crate::server::auth::Identity;
use crate::server::db::connections::ConnectionRow;
use crate::server::error::AppError;
use crate::server::http::challenge_param;
use crate::server::state::AppState;

/// Where Gatehouse publishes its client ID metadata document.
pub const CLIENT_METADATA_PATH: &str = "/oauth/client-metadata.json";

/// What the admin gives besides the URL.
#[derive(Debug, Clone)]
pub struct SignInRequest {
    /// The server's name: the connection is named after it.
    pub name: String,
    pub url: Url,
    pub per_person: bool,
    /// A client registered by hand, for an authorization server that registers nobody.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// How Gatehouse will identify itself to the authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Its client ID metadata document's URL is its client ID.
    MetadataDocument(String),
    /// RFC 7591, at the first Connect.
    Dynamic,
    /// A client the admin registered.
    Manual,
}

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub resource: String,
    pub issuer: String,
    pub authorization_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub introspection_url: Option<String>,
    pub scopes: Vec<String>,
    pub registration: Registration,
    /// The server promises `iss` on every answer (RFC 9207): one without it is refused.
    pub iss_required: bool,
    pub token_auth_methods: Vec<String>,
}

fn failed(what: &str, e: ProviderError) -> AppError {
    AppError::BadRequest(format!("Signing in to the MCP server failed: {what}: {e}."))
}

fn string(meta: &Map<String, Value>, key: &str) -> Option<String> {
    meta.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn strings(meta: &Map<String, Value>, key: &str) -> Vec<String> {
    meta.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Two identifiers of one thing: scheme and host compared case-insensitively, a trailing
/// slash ignored (RFC 8707's canonical form has none).
pub fn same_resource(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str().map(str::to_ascii_lowercase)
                    == b.host_str().map(str::to_ascii_lowercase)
                && a.port_or_known_default() == b.port_or_known_default()
                && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
                && a.query() == b.query()
        }
        _ => false,
    }
}

/// Whether the protected resource `resource` covers the server at `url`: the same, or a
/// prefix of it at a path boundary (metadata found at the origin's root location names the
/// origin, RFC 9728 §3.3).
pub fn covers(resource: &str, url: &str) -> bool {
    let (Ok(r), Ok(u)) = (Url::parse(resource), Url::parse(url)) else {
        return false;
    };
    let prefix = r.path().trim_end_matches('/');
    let path = u.path().trim_end_matches('/');
    r.scheme() == u.scheme()
        && r.host_str().map(str::to_ascii_lowercase) == u.host_str().map(str::to_ascii_lowercase)
        && r.port_or_known_default() == u.port_or_known_default()
        && r.query().is_none()
        && (path == prefix || path.starts_with(&format!("{prefix}/")))
}

/// The server's URL as its resource indicator: no fragment, no trailing slash.
pub fn canonical_resource(url: &Url) -> String {
    let mut url = url.clone();
    url.set_fragment(None);
    let s = url.to_string();
    if url.query().is_none() {
        s.trim_end_matches('/').to_string()
    } else {
        s
    }
}

/// RFC 9728's locations of a resource's metadata: the path inserted, then the root.
fn metadata_locations(resource: &Url) -> Vec<Url> {
    let origin = resource.origin().ascii_serialization();
    let path = resource.path().trim_end_matches('/');
    let mut out = Vec::new();
    if !path.is_empty() {
        out.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    out.push(format!("{origin}/.well-known/oauth-protected-resource"));
    out.into_iter()
        .filter_map(|u| Url::parse(&u).ok())
        .collect()
}

/// Finds how to sign in to the MCP server at `url`.
pub async fn discover(state: &AppState, url: &Url) -> Result<Discovered, AppError> {
    let client = state.connections.provider_client();
    let (status, challenge) = client
        .probe_mcp(url)
        .await
        .map_err(|e| failed("it could not be reached", e))?;
    if status != 401 {
        return Err(AppError::BadRequest(format!(
            "The MCP server answered HTTP {status} without credentials, not 401: it does not ask for sign-in. Add it with no authentication, or with headers."
        )));
    }
    let challenge = challenge.unwrap_or_default();
    let challenged_scope = challenge_param(&challenge, "scope");
    let named = challenge_param(&challenge, "resource_metadata").and_then(|u| url.join(&u).ok());
    let mut locations = named.into_iter().collect::<Vec<_>>();
    locations.extend(metadata_locations(url));
    let mut resource_meta = None;
    for location in &locations {
        if let Some(meta) = client
            .metadata(location)
            .await
            .map_err(|e| failed(&format!("its resource metadata at {location}"), e))?
        {
            resource_meta = Some(meta);
            break;
        }
    }
    let resource_meta = resource_meta.ok_or_else(|| {
        AppError::BadRequest(
            "The MCP server asks for sign-in but publishes no protected resource metadata (RFC 9728): neither its 401 nor the well-known locations name an authorization server. Create a connection for it by hand and choose it instead.".into(),
        )
    })?;
    let resource = string(&resource_meta, "resource").ok_or_else(|| {
        AppError::BadRequest("The MCP server's resource metadata has no \"resource\".".into())
    })?;
    // RFC 9728 §3.3: metadata for another resource is not this server's.
    if !covers(&resource, url.as_str()) {
        return Err(AppError::BadRequest(format!(
            "The MCP server's resource metadata is for {resource}, not {url}: refusing it (RFC 9728 §3.3)."
        )));
    }
    let issuer = strings(&resource_meta, "authorization_servers")
        .into_iter()
        .next()
        .ok_or_else(|| {
            AppError::BadRequest(
                "The MCP server's resource metadata names no authorization server.".into(),
            )
        })?;
    let issuer_url = Url::parse(&issuer).map_err(|e| {
        AppError::BadRequest(format!(
            "The MCP server's authorization server {issuer:?} is not a URL: {e}."
        ))
    })?;
    let as_meta = client.discover(&issuer_url).await.map_err(|e| {
        failed(
            &format!("the metadata of its authorization server {issuer}"),
            e,
        )
    })?;
    // RFC 8414 §3.3: the metadata must be the issuer's own.
    let claimed = string(&as_meta, "issuer").unwrap_or_default();
    if claimed.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(AppError::BadRequest(format!(
            "The authorization server's metadata names the issuer {claimed:?}, not {issuer:?}: refusing it (RFC 8414 §3.3)."
        )));
    }
    let endpoint = |key: &str| {
        string(&as_meta, key).ok_or_else(|| {
            AppError::BadRequest(format!("The authorization server's metadata has no {key}."))
        })
    };
    let authorization_url = endpoint("authorization_endpoint")?;
    let token_url = endpoint("token_endpoint")?;
    // The MCP spec: no advertised S256, no authorization.
    if !strings(&as_meta, "code_challenge_methods_supported")
        .iter()
        .any(|m| m == "S256")
    {
        return Err(AppError::BadRequest(
            "The authorization server does not advertise PKCE with S256 (code_challenge_methods_supported), which MCP clients must refuse.".into(),
        ));
    }
    let scopes = match challenged_scope {
        Some(s) => s.split_whitespace().map(str::to_string).collect(),
        None => strings(&resource_meta, "scopes_supported"),
    };
    let public_https = state.connections.callback_url.starts_with("https://");
    let registration = if as_meta.get("client_id_metadata_document_supported")
        == Some(&Value::Bool(true))
        && public_https
    {
        let base = state.connections.callback_url.clone();
        let origin = Url::parse(&base)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        Registration::MetadataDocument(format!("{origin}{CLIENT_METADATA_PATH}"))
    } else if string(&as_meta, "registration_endpoint").is_some() {
        Registration::Dynamic
    } else {
        Registration::Manual
    };
    Ok(Discovered {
        // The resource the server says it is: what its tokens must be for.
        resource: if same_resource(&resource, url.as_str()) {
            canonical_resource(url)
        } else {
            resource
        },
        issuer: claimed,
        authorization_url,
        token_url,
        revocation_url: string(&as_meta, "revocation_endpoint"),
        introspection_url: string(&as_meta, "introspection_endpoint"),
        scopes,
        registration,
        iss_required: as_meta.get("authorization_response_iss_parameter_supported")
            == Some(&Value::Bool(true)),
        token_auth_methods: strings(&as_meta, "token_endpoint_auth_methods_supported"),
    })
}

/// Discovers how to sign in to the server and creates the connection for it (not connected
/// yet: that needs a person at a browser).
pub async fn create_for_mcp_server(
    state: &AppState,
    identity: &Identity,
    request: SignInRequest,
) -> Result<ConnectionView, AppError> {
    let found = discover(state, &request.url).await?;
    let manual = request
        .client_id
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty());
    let mut input = ConnectionInput {
        provider: "custom".into(),
        name: request.name.clone(),
        description: format!("Signs Gatehouse in to the MCP server {}.", request.url),
        grant_type: "authorization_code".into(),
        authorization_url: found.authorization_url.clone(),
        token_url: found.token_url.clone(),
        revocation_url: found.revocation_url.clone().unwrap_or_default(),
        introspection_url: found.introspection_url.clone().unwrap_or_default(),
        provider_domain_url: found.issuer.clone(),
        scopes: found.scopes.clone(),
        pkce: true,
        resource: found.resource.clone(),
        per_person: request.per_person,
        ..ConnectionInput::default()
    };
    match (&found.registration, manual) {
        // A client the admin brought wins: they chose it.
        (_, true) => {
            input.client_id = request.client_id.clone().unwrap_or_default();
            input.client_secret = request.client_secret.clone().filter(|s| !s.is_empty());
            if input.client_secret.is_some() {
                input.token_auth_method = if found
                    .token_auth_methods
                    .iter()
                    .any(|m| m == "client_secret_basic")
                    || found.token_auth_methods.is_empty()
                {
                    "client_secret_basic".into()
                } else {
                    "client_secret_post".into()
                };
            } else {
                input.token_auth_method = "none".into();
            }
        }
        (Registration::MetadataDocument(client_id), false) => {
            input.client_id = client_id.clone();
            input.token_auth_method = "none".into();
        }
        (Registration::Dynamic, false) => input.dynamic_registration = true,
        (Registration::Manual, false) => {
            return Err(AppError::BadRequest(format!(
                "The authorization server {} neither registers clients (no registration_endpoint) nor accepts client ID metadata documents{}: register Gatehouse with it (redirect URI {}) and give the client ID and secret.",
                found.issuer,
                if state.connections.callback_url.starts_with("https://") {
                    ""
                } else {
                    " (which would need Gatehouse at an https address)"
                },
                state.connections.callback_url
            )));
        }
    }
    let view = super::manage::create(state, identity, input).await?;
    state
        .db
        .set_connection_issuer(&view.id, &found.issuer, found.iss_required)
        .await?;
    tracing::info!(
        connection = %view.id,
        server = %request.url,
        issuer = %found.issuer,
        registration = ?found.registration,
        "connection created by MCP sign-in discovery"
    );
    Ok(view)
}

/// A connection made by discovery asks its server again at each Connect. When the server
/// names another authorization server now, the connection takes its endpoints, and a client
/// registered at the old one is dropped so that Connect registers anew at the new one. A
/// client the admin registered by hand cannot follow: that is an error saying what to do.
pub async fn follow_moved_issuer(
    state: &AppState,
    row: &ConnectionRow,
) -> Result<ConnectionRow, AppError> {
    let Some((issuer, _)) = state.db.connection_issuer(&row.id).await? else {
        return Ok(row.clone());
    };
    let Some(resource) = row.resource.as_deref().and_then(|r| Url::parse(r).ok()) else {
        return Ok(row.clone());
    };
    let found = match discover(state, &resource).await {
        Ok(found) => found,
        Err(e) => {
            // Asking is a check, not a condition: sign in with what is stored.
            tracing::warn!(connection = %row.id, error = %e, "cannot ask the MCP server for its authorization server again");
            return Ok(row.clone());
        }
    };
    if found.issuer == issuer {
        return Ok(row.clone());
    }
    let mut moved = row.clone();
    match (row.registration.as_str(), &found.registration) {
        ("dynamic", _) => super::manage::retire_client(state, &mut moved).await,
        // The same document identifies Gatehouse to any server that reads them.
        (_, Registration::MetadataDocument(id)) if row.client_id.as_deref() == Some(id) => {}
        _ => {
            return Err(AppError::BadRequest(format!(
                "The MCP server's authorization server changed from {issuer} to {}: the client registered with the old one means nothing to the new one. Register Gatehouse with the new one and set that client on this connection, or delete the connection and add the server again with sign-in discovery.",
                found.issuer
            )));
        }
    }
    moved.authorization_url = Some(found.authorization_url.clone());
    moved.token_url = found.token_url.clone();
    moved.revocation_url = found.revocation_url.clone();
    moved.introspection_url = found.introspection_url.clone();
    moved.provider_domain_url = Some(found.issuer.clone());
    moved.updated_at = state.now();
    state.db.update_connection_definition(&moved).await?;
    state
        .db
        .set_connection_issuer(&row.id, &found.issuer, found.iss_required)
        .await?;
    tracing::info!(connection = %row.id, from = %issuer, to = %found.issuer, "the MCP server's authorization server changed: signing in there");
    Ok(moved)
}

impl AppState {
    /// `create_for_mcp_server`, for the gateway.
    pub async fn sign_in_connection(
        &self,
        identity: &Identity,
        request: SignInRequest,
    ) -> Result<ConnectionView, AppError> {
        create_for_mcp_server(self, identity, request).await
    }
}

/// Gatehouse's client ID metadata document: what an authorization server that accepts
/// them reads when Gatehouse gives this document's URL as its client ID.
pub fn client_metadata(state: &AppState) -> Value {
    let callback = state.connections.callback_url.clone();
    let origin = Url::parse(&callback)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    serde_json::json!({
        "client_id": format!("{origin}{CLIENT_METADATA_PATH}"),
        "client_name": "Gatehouse",
        "client_uri": origin,
        "redirect_uris": [callback],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "web"
    })
}

/// `GET /oauth/client-metadata.json`.
pub async fn client_metadata_document(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(http::header::CACHE_CONTROL, "public, max-age=3600")],
        axum::Json(client_metadata(&state)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_compare_canonically() {
        assert!(same_resource(
            "https://MCP.example.com/mcp/",
            "https://mcp.example.com/mcp"
        ));
        assert!(same_resource(
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com/mcp"
        ));
        assert!(!same_resource(
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/other"
        ));
        assert!(!same_resource(
            "http://mcp.example.com/mcp",
            "https://mcp.example.com/mcp"
        ));
        let url = Url::parse("https://mcp.example.com/mcp/#x").unwrap();
        assert_eq!(canonical_resource(&url), "https://mcp.example.com/mcp");
        let root = Url::parse("https://mcp.example.com").unwrap();
        assert_eq!(canonical_resource(&root), "https://mcp.example.com");
    }

    #[test]
    fn a_resource_covers_its_own_paths_only() {
        assert!(covers(
            "https://mcp.example.com",
            "https://mcp.example.com/mcp"
        ));
        assert!(covers(
            "https://mcp.example.com/v2",
            "https://mcp.example.com/v2/mcp"
        ));
        assert!(covers(
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com/mcp"
        ));
        assert!(!covers(
            "https://mcp.example.com/v2",
            "https://mcp.example.com/v20/mcp"
        ));
        assert!(!covers(
            "https://other.example.com",
            "https://mcp.example.com/mcp"
        ));
        assert!(!covers(
            "https://mcp.example.com/mcp/deeper",
            "https://mcp.example.com/mcp"
        ));
    }

    #[test]
    fn metadata_is_looked_for_with_the_path_then_at_the_root() {
        let url = Url::parse("https://mcp.example.com/v2/mcp").unwrap();
        let found: Vec<String> = metadata_locations(&url)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "https://mcp.example.com/.well-known/oauth-protected-resource/v2/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            ]
        );
    }
}
