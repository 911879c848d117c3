//! Who the clients are: dynamic registration (RFC 7591) at `/mcp/oauth/register`, client ID
//! metadata documents (an https `client_id` is the URL of the client's metadata), and the
//! redirect-URI rules both share.

use crate::server::audit::{self, Actor, Event};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderMap, header};
use serde_json::{Map, Value, json};
use url::Url;

use super::OAuthServer;
use super::error::{OAuthCode, OAuthError};
use crate::server::clock::UnixTime;
use crate::server::db::oauth::OAuthClientRow;
use crate::server::db::{Db, DbError};
use crate::server::http::GuardError;
use crate::server::net::is_loopback_host;
use crate::server::secrets::{random_id, random_token, sha256_hex};

pub const MAX_REGISTRATION_BYTES: usize = 64 * 1024;
const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_CHARS: usize = 200;
const CIMD_TIMEOUT: Duration = Duration::from_secs(5);
const CIMD_MAX_BYTES: usize = 64 * 1024;
const CIMD_DEFAULT_TTL: i64 = 60 * 60;
const CIMD_MIN_TTL: i64 = 60;
const CIMD_MAX_TTL: i64 = 24 * 60 * 60;

/// How long the token endpoint trusts a client it has read. Deletions and revocations
/// clear the cache at once, here and (through `OAUTH_REVOKED`) on every replica.
const CLIENT_CACHE_SECS: i64 = 5;
const CLIENT_CACHE_MAX: usize = 10_000;

/// Registered clients as the token endpoint last read them: a grant then costs one write and
/// no read (every refresh used to read its client first).
#[derive(Debug, Default)]
pub struct ClientCache {
    inner: Mutex<CachedClients>,
}

#[derive(Debug, Default)]
struct CachedClients {
    map: HashMap<String, (OAuthClientRow, UnixTime)>,
    /// Bumped by every `forget_all`, so that a read that started before it cannot store a
    /// client over it.
    generation: u64,
}

impl ClientCache {
    pub async fn find(
        &self,
        db: &Db,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Option<OAuthClientRow>, DbError> {
        let generation = {
            let cached = self.inner.lock().expect("client cache lock");
            if let Some((row, at)) = cached.map.get(client_id)
                && now >= *at
                && now - at < CLIENT_CACHE_SECS
            {
                return Ok(Some(row.clone()));
            }
            cached.generation
        };
        let Some(row) = db.find_oauth_client(client_id).await? else {
            return Ok(None);
        };
        let mut cached = self.inner.lock().expect("client cache lock");
        if cached.generation == generation {
            if cached.map.len() >= CLIENT_CACHE_MAX {
                cached
                    .map
                    .retain(|_, (_, at)| now - *at < CLIENT_CACHE_SECS);
                if cached.map.len() >= CLIENT_CACHE_MAX {
                    cached.map.clear();
                }
            }
            cached.map.insert(client_id.to_string(), (row.clone(), now));
        }
        Ok(Some(row))
    }

    /// The client was just marked used at `at` (so the next grant does not write it again).
    pub fn touched(&self, client_id: &str, at: UnixTime) {
        let mut cached = self.inner.lock().expect("client cache lock");
        if let Some((row, _)) = cached.map.get_mut(client_id) {
            row.last_used_at = Some(at);
        }
    }

    pub fn forget_all(&self) {
        let mut cached = self.inner.lock().expect("client cache lock");
        cached.map.clear();
        cached.generation += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Registered at `/mcp/oauth/register`.
    Dcr,
    /// Described by a client ID metadata document.
    Cimd,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Dcr => "dcr",
            ClientKind::Cimd => "cimd",
        }
    }
}

/// Checked client metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidMetadata {
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub application_type: String,
    pub client_name: Option<String>,
    pub scope: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

fn bad_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthCode::InvalidClientMetadata, description)
}

fn bad_redirect(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthCode::InvalidRedirectUri, description)
}

/// Schemes a browser must never be sent to, whatever the client claims.
const FORBIDDEN_SCHEMES: [&str; 9] = [
    "javascript",
    "data",
    "vbscript",
    "file",
    "blob",
    "about",
    "ftp",
    "ws",
    "wss",
];

/// A redirect URI is https, or http on a loopback address (RFC 8252 §7.3), or, for native
/// apps, a private-use scheme such as `cursor://` (RFC 8252 §7.1). Never a fragment, never
/// credentials, never a scheme that runs code.
pub fn check_redirect_uri(uri: &str, application_type: &str) -> Result<Url, String> {
    if uri.len() > MAX_URI_LEN {
        return Err("a redirect URI is longer than 2000 characters".into());
    }
    let url = Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI ({e})"))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(format!(
            "{uri:?} has a #fragment, which redirect URIs must not have"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{uri:?} carries credentials"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err(format!(
            "{uri:?} uses http on a host other than loopback; use https"
        )),
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => {
            Err(format!("{uri:?} uses the {scheme}: scheme"))
        }
        _ if application_type == "native" => Ok(url),
        scheme => Err(format!(
            "{uri:?} uses the private-use scheme {scheme}:, which only native clients (application_type \"native\") may register"
        )),
    }
}

/// Whether `presented` may be used for a client registered with `registered`: exact match,
/// except that a loopback http redirect matches on any port (RFC 8252 §7.3).
pub fn redirect_matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(presented_url) = Url::parse(presented) else {
        return false;
    };
    if presented_url.scheme() != "http" || !is_loopback_host(&presented_url) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|mut r| {
            if r.scheme() != "http" || !is_loopback_host(&r) {
                return false;
            }
            let mut p = presented_url.clone();
            let _ = r.set_port(None);
            let _ = p.set_port(None);
            r == p
        })
}

fn string_field(object: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_metadata(format!("{name} must be a string"))),
    }
}

fn string_list(object: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad_metadata(format!("{name} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad_metadata(format!("{name} must be an array of strings"))),
    }
}

fn https_uri(object: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    let Some(value) = string_field(object, name)? else {
        return Ok(None);
    };
    match Url::parse(&value) {
        Ok(url) if url.scheme() == "https" && value.len() <= MAX_URI_LEN => Ok(Some(value)),
        _ => Err(bad_metadata(format!("{name} must be an https URL"))),
    }
}

/// Characters a name must not carry onto the consent page: controls, and the bidirectional
/// overrides that could make "Evil" read as "Trusted".
fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks client metadata (a registration request or a metadata document).
pub fn validate_metadata(
    object: &Map<String, Value>,
    kind: ClientKind,
) -> Result<ValidMetadata, OAuthError> {
    let application_type =
        string_field(object, "application_type")?.unwrap_or_else(|| "web".into());
    if !matches!(application_type.as_str(), "web" | "native") {
        return Err(bad_metadata(format!(
            "application_type {application_type:?} is not \"web\" or \"native\""
        )));
    }
    let redirect_uris = string_list(object, "redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(bad_redirect(
            "redirect_uris is required: list the URIs the client receives authorization codes at",
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(bad_redirect("at most 10 redirect_uris may be registered"));
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri, &application_type).map_err(bad_redirect)?;
    }

    let grant_types =
        string_list(object, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(g) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(bad_metadata(format!(
            "grant type {g:?} is not supported; use authorization_code (and refresh_token)"
        )));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(bad_metadata("grant_types must include authorization_code"));
    }
    let response_types =
        string_list(object, "response_types")?.unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(bad_metadata("response_types may only contain \"code\""));
    }

    // RFC 7591 makes client_secret_basic the default, but a native app cannot keep a secret:
    // native clients that say nothing are public clients.
    let default_method = match (kind, application_type.as_str()) {
        (ClientKind::Cimd, _) | (_, "native") => "none",
        _ => "client_secret_basic",
    };
    let token_endpoint_auth_method = string_field(object, "token_endpoint_auth_method")?
        .unwrap_or_else(|| default_method.into());
    let allowed: &[&str] = match kind {
        ClientKind::Dcr => &["none", "client_secret_basic", "client_secret_post"],
        ClientKind::Cimd => &["none"],
    };
    if !allowed.contains(&token_endpoint_auth_method.as_str()) {
        return Err(bad_metadata(format!(
            "token_endpoint_auth_method {token_endpoint_auth_method:?} is not supported here; use one of {allowed:?}"
        )));
    }

    let client_name = string_field(object, "client_name")?
        .map(|n| {
            n.chars()
                .filter(|c| !is_hidden_char(*c))
                .take(MAX_NAME_CHARS)
                .collect::<String>()
        })
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let scope = string_field(object, "scope")?.filter(|s| !s.trim().is_empty());
    let short = |name: &str| -> Result<Option<String>, OAuthError> {
        Ok(string_field(object, name)?.map(|s| s.chars().take(MAX_NAME_CHARS).collect()))
    };
    Ok(ValidMetadata {
        redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method,
        application_type,
        client_name,
        scope,
        client_uri: https_uri(object, "client_uri")?,
        logo_uri: https_uri(object, "logo_uri")?,
        software_id: short("software_id")?,
        software_version: short("software_version")?,
    })
}

impl ValidMetadata {
    /// The metadata as the server holds it (and returns it).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "redirect_uris": self.redirect_uris,
            "grant_types": self.grant_types,
            "response_types": self.response_types,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "application_type": self.application_type,
        });
        let object = v.as_object_mut().expect("an object");
        for (name, value) in [
            ("client_name", &self.client_name),
            ("scope", &self.scope),
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("software_id", &self.software_id),
            ("software_version", &self.software_version),
        ] {
            if let Some(value) = value {
                object.insert(name.into(), Value::String(value.clone()));
            }
        }
        v
    }

    fn row(&self, id: String, kind: ClientKind, now: UnixTime) -> OAuthClientRow {
        let list = |l: &Vec<String>| serde_json::to_string(l).expect("strings serialize");
        OAuthClientRow {
            id,
            kind: kind.as_str().into(),
            client_name: self.client_name.clone(),
            redirect_uris: list(&self.redirect_uris),
            grant_types: list(&self.grant_types),
            response_types: list(&self.response_types),
            token_endpoint_auth_method: self.token_endpoint_auth_method.clone(),
            client_secret_hash: None,
            application_type: self.application_type.clone(),
            scope: self.scope.clone(),
            client_uri: self.client_uri.clone(),
            logo_uri: self.logo_uri.clone(),
            software_id: self.software_id.clone(),
            software_version: self.software_version.clone(),
            metadata: self.to_json().to_string(),
            fingerprint: None,
            created_at: now,
            last_used_at: None,
            metadata_expires_at: None,
        }
    }
}

/// The registered redirect URIs of a stored client.
pub fn redirect_uris(row: &OAuthClientRow) -> Vec<String> {
    serde_json::from_str(&row.redirect_uris).unwrap_or_default()
}

/// The grant types a stored client registered for.
pub fn grant_types(row: &OAuthClientRow) -> Vec<String> {
    serde_json::from_str(&row.grant_types).unwrap_or_default()
}

/// A registration request (RFC 7591) as it arrived: the JSON body, and where it came from
/// (the browser `Origin`, else the client's address), which tells a restarted public client
/// from a new one.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub body: &'a [u8],
    pub from: String,
}

/// A registered client, as the registration response shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// The client metadata with `client_id`, `client_id_issued_at` and, for a confidential
    /// client, its secret (shown this once).
    pub body: Value,
}

/// `POST /mcp/oauth/register` (RFC 7591): dynamic client registration.
pub async fn register(
    db: &Db,
    request: Registration<'_>,
    now: UnixTime,
) -> Result<Registered, OAuthError> {
    let value: Value = serde_json::from_slice(request.body)
        .map_err(|e| bad_metadata(format!("The body is not valid JSON ({e}).")))?;
    let Value::Object(object) = value else {
        return Err(bad_metadata("The client metadata must be a JSON object."));
    };
    if object.contains_key("client_id") || object.contains_key("client_secret") {
        return Err(bad_metadata(
            "client_id and client_secret are assigned by the server, not sent.",
        ));
    }
    let metadata = validate_metadata(&object, ClientKind::Dcr)?;

    // A public client registering again with the same metadata from the same place (a
    // restarted mcp-remote, say) gets its registration back rather than a new row each time.
    let public = metadata.token_endpoint_auth_method == "none";
    let fingerprint =
        public.then(|| sha256_hex(format!("{}\n{}", metadata.to_json(), request.from)));
    if let Some(fp) = &fingerprint
        && let Some(existing) = db.find_oauth_client_by_fingerprint(fp).await?
    {
        tracing::info!(client_id = %existing.id, "client registered again with the same metadata: returning its registration");
        return Ok(registration_answer(&existing, &metadata, None));
    }

    let mut row = metadata.row(random_id(), ClientKind::Dcr, now);
    row.fingerprint = fingerprint;
    let secret = (!public).then(random_token);
    row.client_secret_hash = secret.as_ref().map(sha256_hex);
    db.insert_oauth_client(&row).await?;
    tracing::info!(
        client_id = %row.id,
        name = ?row.client_name,
        auth = %row.token_endpoint_auth_method,
        "OAuth client registered"
    );
    let event = Event::new("mcp_client.registered", Actor::Client(row.id.clone()))
        .on("client", &row.id)
        .detail(serde_json::json!({
            "name": row.client_name,
            "redirect_uris": row.redirect_uris,
            "token_endpoint_auth_method": row.token_endpoint_auth_method,
        }));
    audit::record(db, now, event).await;
    Ok(registration_answer(&row, &metadata, secret.as_deref()))
}

fn registration_answer(
    row: &OAuthClientRow,
    metadata: &ValidMetadata,
    secret: Option<&str>,
) -> Registered {
    let mut body = metadata.to_json();
    let object = body.as_object_mut().expect("an object");
    object.insert("client_id".into(), json!(row.id));
    object.insert("client_id_issued_at".into(), json!(row.created_at));
    if let Some(secret) = secret {
        object.insert("client_secret".into(), json!(secret));
        object.insert("client_secret_expires_at".into(), json!(0));
    }
    Registered { body }
}

/// Why a client could not be found or loaded.
#[derive(Debug)]
pub enum ClientLookup {
    Unknown,
    /// A metadata document that could not be fetched or is not acceptable.
    BadDocument(String),
}

/// Whether a `client_id` is a client ID metadata document URL.
pub fn is_metadata_document_url(client_id: &str, oauth: &OAuthServer) -> bool {
    Url::parse(client_id).is_ok_and(|u| {
        (u.scheme() == "https" || (u.scheme() == "http" && oauth.outbound.policy.allow_http))
            && u.host().is_some()
            && u.path() != "/"
    })
}

/// The client behind a `client_id`: a registered one, or the one a metadata document
/// describes (fetched, checked and cached as its HTTP caching headers allow).
pub async fn resolve_client(
    oauth: &OAuthServer,
    db: &Db,
    client_id: &str,
    now: UnixTime,
) -> Result<OAuthClientRow, ClientLookup> {
    let stored = db.find_oauth_client(client_id).await.map_err(|e| {
        tracing::error!(error = %e, "client lookup failed");
        ClientLookup::BadDocument("Gatehouse could not read its client registrations.".into())
    })?;
    if !is_metadata_document_url(client_id, oauth) {
        return stored.ok_or(ClientLookup::Unknown);
    }
    if let Some(row) = &stored
        && row.metadata_expires_at.is_some_and(|e| e > now)
    {
        return Ok(row.clone());
    }
    let row = fetch_metadata_document(oauth, client_id, now)
        .await
        .map_err(ClientLookup::BadDocument)?;
    let result = match stored {
        Some(_) => db.update_cimd_client(&row).await,
        None => db.insert_oauth_client(&row).await,
    };
    result.map_err(|e| {
        tracing::error!(error = %e, "storing a client metadata document failed");
        ClientLookup::BadDocument("Gatehouse could not store the client's metadata.".into())
    })?;
    // Its document may have changed how it authenticates at the token endpoint.
    oauth.clients.forget_all();
    Ok(row)
}

fn cache_lifetime(headers: &HeaderMap) -> i64 {
    let directives = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    if directives
        .iter()
        .any(|d| d == "no-store" || d == "no-cache")
    {
        return CIMD_MIN_TTL;
    }
    directives
        .iter()
        .find_map(|d| {
            d.strip_prefix("max-age=")
                .and_then(|v| v.parse::<i64>().ok())
        })
        .unwrap_or(CIMD_DEFAULT_TTL)
        .clamp(CIMD_MIN_TTL, CIMD_MAX_TTL)
}

async fn fetch_metadata_document(
    oauth: &OAuthServer,
    client_id: &str,
    now: UnixTime,
) -> Result<OAuthClientRow, String> {
    let url = Url::parse(client_id).map_err(|e| format!("The client_id is not a URL ({e})."))?;
    let (status, headers, body) = oauth
        .outbound
        .fetch_guarded(&url, CIMD_MAX_BYTES, CIMD_TIMEOUT)
        .await
        .map_err(|e| match e {
            GuardError::Refused(why) => {
                format!("Gatehouse will not fetch the client's metadata document: {why}.")
            }
            GuardError::Fetch(e) => format!("Fetching the client's metadata document failed: {e}."),
        })?;
    if !status.is_success() {
        return Err(format!(
            "The client's metadata document answered HTTP {}.",
            status.as_u16()
        ));
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("The client's metadata document is not JSON ({e})."))?;
    let Value::Object(object) = value else {
        return Err("The client's metadata document is not a JSON object.".into());
    };
    if object.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(
            "The client's metadata document names a different client_id than its own URL.".into(),
        );
    }
    if object.contains_key("client_secret") || object.contains_key("client_secret_expires_at") {
        return Err("A client metadata document must not carry a client secret.".into());
    }
    let metadata = validate_metadata(&object, ClientKind::Cimd).map_err(|e| {
        format!(
            "The client's metadata document is not acceptable: {}",
            e.description
        )
    })?;
    let mut row = metadata.row(client_id.to_string(), ClientKind::Cimd, now);
    row.metadata_expires_at = Some(now + cache_lifetime(&headers));
    if row.client_name.is_none() {
        row.client_name = url.host_str().map(str::to_string);
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://claude.ai/api/mcp/auth_callback", "web").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:33418/callback", "native").is_ok());
        assert!(check_redirect_uri("http://localhost:6274/oauth/callback", "web").is_ok());
        assert!(check_redirect_uri("http://[::1]:8080/cb", "native").is_ok());
        assert!(
            check_redirect_uri(
                "cursor://anysphere.cursor-retrieval/oauth/callback",
                "native"
            )
            .is_ok()
        );
        for (bad, app) in [
            ("http://example.com/cb", "web"),
            ("javascript:alert(1)", "native"),
            ("data:text/html,<script>x</script>", "native"),
            ("https://example.com/cb#frag", "web"),
            ("https://user:pw@example.com/cb", "web"),
            ("cursor://x/cb", "web"),
            ("/relative", "web"),
            ("file:///etc/passwd", "native"),
        ] {
            assert!(check_redirect_uri(bad, app).is_err(), "{bad} ({app})");
        }
    }

    #[test]
    fn loopback_redirects_match_on_any_port() {
        let registered = vec![
            "http://127.0.0.1:3000/callback".to_string(),
            "https://app.example.com/cb".to_string(),
        ];
        assert!(redirect_matches(
            &registered,
            "http://127.0.0.1:3000/callback"
        ));
        assert!(redirect_matches(
            &registered,
            "http://127.0.0.1:49152/callback"
        ));
        assert!(!redirect_matches(
            &registered,
            "http://127.0.0.1:49152/other"
        ));
        assert!(!redirect_matches(
            &registered,
            "http://localhost:3000/callback"
        ));
        assert!(redirect_matches(&registered, "https://app.example.com/cb"));
        assert!(!redirect_matches(
            &registered,
            "https://app.example.com:8443/cb"
        ));
        assert!(!redirect_matches(
            &registered,
            "https://app.example.com/cb?x=1"
        ));
    }

    #[test]
    fn metadata_defaults_and_errors() {
        let m = validate_metadata(
            &obj(json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "application_type": "native"})),
            ClientKind::Dcr,
        )
        .unwrap();
        assert_eq!(
            m.token_endpoint_auth_method, "none",
            "native clients are public by default"
        );
        assert_eq!(m.grant_types, ["authorization_code"]);
        let web = validate_metadata(
            &obj(json!({"redirect_uris": ["https://a.example/cb"]})),
            ClientKind::Dcr,
        )
        .unwrap();
        assert_eq!(web.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(web.application_type, "web");

        let code = |v: Value| {
            validate_metadata(&obj(v), ClientKind::Dcr)
                .unwrap_err()
                .code
        };
        assert_eq!(code(json!({})), OAuthCode::InvalidRedirectUri);
        assert_eq!(
            code(json!({"redirect_uris": "https://a.example/cb"})),
            OAuthCode::InvalidClientMetadata
        );
        assert_eq!(
            code(json!({"redirect_uris": ["javascript:alert(1)"]})),
            OAuthCode::InvalidRedirectUri
        );
        assert_eq!(
            code(
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]})
            ),
            OAuthCode::InvalidClientMetadata
        );
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]})),
            OAuthCode::InvalidClientMetadata
        );
        assert_eq!(
            code(
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"})
            ),
            OAuthCode::InvalidClientMetadata
        );
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"})),
            OAuthCode::InvalidClientMetadata
        );
        assert_eq!(
            code(
                json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "http://a.example/x.png"})
            ),
            OAuthCode::InvalidClientMetadata
        );
        let many: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
        assert_eq!(
            code(json!({"redirect_uris": many})),
            OAuthCode::InvalidRedirectUri
        );

        let cimd = |v: Value| validate_metadata(&obj(v), ClientKind::Cimd);
        assert!(cimd(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"})).is_err());
        assert_eq!(
            cimd(json!({"redirect_uris": ["https://a.example/cb"]}))
                .unwrap()
                .token_endpoint_auth_method,
            "none"
        );
    }

    #[test]
    fn names_are_cleaned() {
        let m = validate_metadata(&obj(json!({"redirect_uris": ["https://a.example/cb"], "client_name": "  Evil\u{202e}\u{7}Name  "})), ClientKind::Dcr).unwrap();
        assert_eq!(m.client_name.as_deref(), Some("EvilName"));
    }

    #[test]
    fn cache_lifetimes() {
        let h = |v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::CACHE_CONTROL, http::HeaderValue::from_static(v));
            m
        };
        assert_eq!(cache_lifetime(&HeaderMap::new()), 3600);
        assert_eq!(cache_lifetime(&h("public, max-age=600")), 600);
        assert_eq!(cache_lifetime(&h("max-age=5")), 60);
        assert_eq!(cache_lifetime(&h("max-age=9999999")), 86_400);
        assert_eq!(cache_lifetime(&h("no-store")), 60);
    }

    #[tokio::test]
    async fn registration_refusals_and_a_restarted_client() {
        use super::super::testing::{T0, setup};
        let (_oauth, db, _dir) = setup().await;
        let attempt = async |body: &[u8], from: &str| {
            register(
                &db,
                Registration {
                    body,
                    from: from.into(),
                },
                T0,
            )
            .await
        };
        let refused = |e: OAuthError, code: OAuthCode, words: &str| {
            assert_eq!(e.code, code, "{}", e.description);
            assert!(e.description.contains(words), "{}", e.description);
        };
        refused(
            attempt(b"{not json", "a").await.unwrap_err(),
            OAuthCode::InvalidClientMetadata,
            "not valid JSON",
        );
        refused(
            attempt(b"[1]", "a").await.unwrap_err(),
            OAuthCode::InvalidClientMetadata,
            "JSON object",
        );
        refused(
            attempt(
                br#"{"client_id": "mine", "redirect_uris": ["https://a.example/cb"]}"#,
                "a",
            )
            .await
            .unwrap_err(),
            OAuthCode::InvalidClientMetadata,
            "assigned by the server",
        );
        refused(
            attempt(br#"{"redirect_uris": ["http://a.example/cb"]}"#, "a")
                .await
                .unwrap_err(),
            OAuthCode::InvalidRedirectUri,
            "http",
        );

        // A public client registering again from the same place gets its registration back;
        // from elsewhere, a registration of its own. Confidential clients always get a new one.
        let public =
            br#"{"redirect_uris": ["http://127.0.0.1:5/cb"], "application_type": "native"}"#;
        let first = attempt(public, "192.0.2.1").await.unwrap().body;
        assert!(first.get("client_secret").is_none());
        let again = attempt(public, "192.0.2.1").await.unwrap().body;
        assert_eq!(again["client_id"], first["client_id"]);
        let elsewhere = attempt(public, "192.0.2.2").await.unwrap().body;
        assert_ne!(elsewhere["client_id"], first["client_id"]);
        let web = br#"{"redirect_uris": ["https://a.example/cb"]}"#;
        let one = attempt(web, "a").await.unwrap().body;
        let two = attempt(web, "a").await.unwrap().body;
        assert!(one["client_secret"].is_string());
        assert_ne!(one["client_id"], two["client_id"]);
    }
}
