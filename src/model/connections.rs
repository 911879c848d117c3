//! Connections: OAuth grants Gatehouse holds at third-party providers.

use serde::{Deserialize, Serialize};

/// A connection's definition as the operator enters it (create, edit, re-authorize).
/// `client_secret: None` on an edit keeps the stored secret; secrets are never sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionInput {
    /// `custom` (or empty), or a built-in provider's slug, whose definition supplies the
    /// endpoints and the rest; then only the client, scopes and instance fields are read.
    pub provider: String,
    /// A built-in provider's instance fields (`shop`, `cloud_id`).
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::pairs_schema))]
    pub instance_fields: Vec<(String, String)>,
    #[cfg_attr(feature = "ssr", schema(required = true, schema_with = crate::model::schemas::display_name))]
    pub name: String,
    pub description: String,
    /// Icon hint (`custom`, `crm`, `chat`, …); does not change the flow.
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::provider_type))]
    pub provider_type: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::grant_type))]
    pub grant_type: String,
    /// Register the client at the provider on first connect (RFC 7591) instead of entering
    /// a client id and secret.
    pub dynamic_registration: bool,
    pub client_id: String,
    pub client_secret: Option<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::optional_url))]
    pub authorization_url: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::optional_url))]
    pub token_url: String,
    pub scopes: Vec<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::optional_url))]
    pub revocation_url: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::optional_url))]
    pub introspection_url: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::optional_url))]
    pub provider_domain_url: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::token_auth_method))]
    pub token_auth_method: String,
    pub pkce: bool,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::pairs_schema))]
    pub extra_auth_params: Vec<(String, String)>,
    /// RFC 8707 resource indicator, sent with the authorization and token requests.
    pub resource: String,
    /// Each person authorizes their own account (the connection is a template); otherwise one
    /// shared grant. Chosen at creation; an edit keeps what was chosen.
    pub per_person: bool,
}

/// Where a connection stands, for the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum ConnectionStatus {
    /// Never connected (or disconnected).
    NotConnected,
    Connected,
    /// Connected, but the token expires soon and cannot be refreshed.
    Expiring,
    /// The last refresh or connect attempt failed; it will be retried.
    Failing,
    /// The grant is dead (revoked, expired without a refresh token): connect again.
    NeedsReauth,
}

impl ConnectionStatus {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionStatus::NotConnected => "Not connected",
            ConnectionStatus::Connected => "Connected",
            ConnectionStatus::Expiring => "Expiring",
            ConnectionStatus::Failing => "Failing",
            ConnectionStatus::NeedsReauth => "Needs re-authorization",
        }
    }
}

/// One person's grant of a per-person connection, as its list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PersonGrantView {
    pub person: String,
    pub status: ConnectionStatus,
    pub scope: Option<String>,
    pub expires_at: Option<i64>,
    pub obtained_at: i64,
    pub refreshed_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// Token calls that failed in a row since the last success.
    #[serde(default)]
    pub failures: i64,
    /// When Gatehouse next renews the token on its own (see `ConnectionView`).
    #[serde(default)]
    pub next_refresh_at: Option<i64>,
}

/// What is known about the stored grant; never the tokens themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GrantView {
    pub token_type: String,
    pub scope: Option<String>,
    /// None: the provider gave no expiry.
    pub expires_at: Option<i64>,
    pub has_refresh_token: bool,
    pub obtained_at: i64,
    pub refreshed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub provider: String,
    pub provider_type: String,
    pub grant_type: String,
    pub dynamic_registration: bool,
    pub client_id: Option<String>,
    pub has_client_secret: bool,
    pub authorization_url: Option<String>,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub revocation_url: Option<String>,
    pub introspection_url: Option<String>,
    pub provider_domain_url: Option<String>,
    pub token_auth_method: String,
    pub pkce: bool,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::pairs_schema))]
    pub extra_auth_params: Vec<(String, String)>,
    pub resource: Option<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::pairs_schema))]
    pub instance_fields: Vec<(String, String)>,
    /// Dynamically registered, with RFC 7592 management available.
    pub registered: bool,
    /// Each person has their own grant. `status`, `last_error` and `grant` are then the
    /// caller's own.
    #[serde(default)]
    pub per_person: bool,
    /// A per-person connection's grants: every person's for an admin, the caller's own for
    /// a member; empty for a shared connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<PersonGrantView>,
    pub status: ConnectionStatus,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// Token calls that failed in a row since the last success.
    #[serde(default)]
    pub failures: i64,
    /// When the background pass renews the token next (the retry after a failure, or a
    /// little before it expires); None when it never will (no expiry, no refresh token, or
    /// a grant that needs a new sign-in).
    #[serde(default)]
    pub next_refresh_at: Option<i64>,
    pub grant: Option<GrantView>,
    pub created_at: i64,
    pub updated_at: i64,
    /// After a save: what was changed in the input (query strings removed from URLs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

impl From<&ConnectionView> for ConnectionInput {
    /// What an edit starts from: the stored definition (secrets never come back).
    fn from(c: &ConnectionView) -> Self {
        ConnectionInput {
            provider: c.provider.clone(),
            instance_fields: c.instance_fields.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            provider_type: c.provider_type.clone(),
            grant_type: c.grant_type.clone(),
            dynamic_registration: c.dynamic_registration,
            client_id: c.client_id.clone().unwrap_or_default(),
            client_secret: None,
            authorization_url: c.authorization_url.clone().unwrap_or_default(),
            token_url: c.token_url.clone(),
            scopes: c.scopes.clone(),
            revocation_url: c.revocation_url.clone().unwrap_or_default(),
            introspection_url: c.introspection_url.clone().unwrap_or_default(),
            provider_domain_url: c.provider_domain_url.clone().unwrap_or_default(),
            token_auth_method: c.token_auth_method.clone(),
            pkce: c.pkce,
            extra_auth_params: c.extra_auth_params.clone(),
            resource: c.resource.clone().unwrap_or_default(),
            per_person: c.per_person,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionsOverview {
    /// The caller is an admin, who sees and manages every connection. A member's list is
    /// "my connections": those that need their own account.
    pub can_manage: bool,
    pub items: Vec<ConnectionView>,
    /// The redirect URI to register at providers.
    pub redirect_uri: String,
    pub now: i64,
}

/// A built-in provider, for the create dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltinProviderView {
    pub slug: String,
    pub name: String,
    pub icon: String,
    pub app_console_url: String,
    /// (name, label, help)
    pub instance_fields: Vec<(String, String, String)>,
    /// (scope, description, selected by default)
    pub scopes: Vec<(String, String, bool)>,
    /// The provider takes no scope parameter; its scopes are informational or absent.
    pub scopeless: bool,
    /// (scope, warning shown when it is not selected)
    pub warnings: Vec<(String, String)>,
    pub notes: String,
}

/// What an RFC 7662 introspection, RFC 7592 read or update returned, for the detail panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAnswerView {
    pub title: String,
    /// Introspection: whether the token is active.
    pub active: Option<bool>,
    /// The provider's JSON, pretty-printed, with secrets masked.
    pub json: String,
}

/// Re-authorize with a new client or scopes. Empty fields keep what is stored; the changes
/// take effect only when the provider's answer succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReauthorizeChanges {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
}

/// The outcome of a connect request: a URL for the popup, or (client credentials) done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectStart {
    Popup { url: String },
    Connected,
}
