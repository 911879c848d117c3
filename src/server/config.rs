//! Settings: environment variables with matching command-line flags, parsed into a checked
//! `Config`. Parsing is pure (no I/O: files the settings name are read at start-up), so every
//! rule is unit-tested; an invalid setting stops start-up with one line that names the
//! variable.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::model::session::AuthType;
pub use crate::server::db::DatabaseConfig;
use crate::server::net::{is_loopback_host, parse_allowed_host};
use crate::server::secrets::{MasterKey, SECRET_KEY_MIN_BYTES, SecretString};

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/gatehouse.db";
pub const DEFAULT_SESSION_COOKIE_NAME: &str = "gatehouse_session";
pub const DEFAULT_OAUTH2_SCOPES: &str = "openid,email,profile";
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

#[derive(Parser, Debug)]
#[command(
    name = "gatehouse",
    version,
    about = "OAuth connections broker, MCP gateway and OAuth 2.1 authorization server for MCP clients",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: RawSettings,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server (what `gatehouse` does with no command).
    Serve,
    /// Read a password from stdin and print its argon2id hash, for AUTH_BASIC_PASSWORD_HASH.
    HashPassword,
    /// Print a new random SECRET_KEY (64 hex characters).
    GenerateSecretKey,
    /// Copy everything in DATABASE_URL (an SQLite instance) into an empty PostgreSQL database,
    /// migrating it first. Sealed values are copied as they are: use the same SECRET_KEY there.
    CopyData {
        /// The target: postgres://user:password@host:port/database (must hold no data).
        #[arg(long, value_name = "URL", hide_env_values = true)]
        to: String,
    },
    /// Re-seal every sealed value in DATABASE_URL under SECRET_KEY, opening old ones with
    /// SECRET_KEY_PREVIOUS; prints what it did per column.
    RotateSecretKey,
    /// Read the audit trail in DATABASE_URL.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Create, list and delete API tokens in DATABASE_URL.
    #[command(name = "api-tokens")]
    ApiTokens {
        #[command(subcommand)]
        command: ApiTokensCommand,
    },
    /// List the connections in DATABASE_URL, or get a fresh access token of one.
    Connections {
        #[command(subcommand)]
        command: ConnectionsCommand,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ApiTokensCommand {
    /// Create a token and print its value (shown this once; only its hash is stored).
    Create {
        /// What the token is for (shown in the list), at most 100 characters.
        #[arg(long)]
        name: String,
        /// What it may do: mcp (call /mcp), connections:token (get connection tokens). Repeat
        /// for both; mcp when none is given.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Days until it stops working; it never expires when not given.
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<i64>,
        /// Whom the token acts as: with AUTH_TYPE=basic the user by default, with oauth2 an
        /// email address (needed), with none anonymous.
        #[arg(long, value_name = "PERSON")]
        owner: Option<String>,
        /// An admin group of the owner's (AUTH_OAUTH2_ADMIN_GROUPS): the token keeps it, as
        /// one created after a sign-in keeps the groups of that sign-in. Repeatable.
        #[arg(long = "admin-group", value_name = "GROUP")]
        admin_groups: Vec<String>,
        /// Print the token and its details as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Every token, newest first (never their values).
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Delete a token by its id: it stops working at once (on a running server within 5
    /// seconds on SQLite, at once on PostgreSQL).
    Delete {
        /// The token's id, as `api-tokens list` shows it.
        id: String,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ConnectionsCommand {
    /// Every connection with its status, last and next refresh, failures and last error.
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Print a fresh access token of a connection (refreshed first when it is about to
    /// expire), as the token API gives it.
    Token {
        /// The connection's name or id.
        connection: String,
        /// For a per-person connection: whose grant (their username or email).
        #[arg(long, value_name = "PERSON")]
        person: Option<String>,
        /// Refresh even if the token is still fresh.
        #[arg(long)]
        force: bool,
        /// Print the token with its type, expiry and scope as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AuditCommand {
    /// The latest events, oldest of them first; with --follow, new ones as they come.
    Tail {
        /// How many of the latest events to show first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep watching for new events (every 2 seconds) until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Every event the filters select, newest first, as JSON lines on stdout.
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

/// Which events: each option narrows.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilterArgs {
    /// An action (`sign_in`), or a kind with `.*` (`connection.*`).
    #[arg(long)]
    pub action: Option<String>,
    /// Who acted: a person's username or email, a token's or a client's id.
    #[arg(long)]
    pub actor: Option<String>,
    /// What it was done to: an id or a name.
    #[arg(long)]
    pub target: Option<String>,
    /// ok, refused or failed.
    #[arg(long)]
    pub outcome: Option<String>,
    /// From this Unix time on.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub since: Option<i64>,
    /// Before this Unix time.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub until: Option<i64>,
}

/// Settings exactly as given, before any checking. Every one is optional here; `Config::parse`
/// applies defaults and rules. Secret values are hidden from `--help`.
#[derive(Args, Debug, Default, Clone)]
pub struct RawSettings {
    /// Address and port to listen on.
    #[arg(long, env = "LISTEN_ADDR", value_name = "ADDR", global = true)]
    pub listen_addr: Option<String>,
    /// External base URL (scheme, host, port), used for redirect URIs and metadata.
    #[arg(long, env = "PUBLIC_URL", value_name = "URL", global = true)]
    pub public_url: Option<String>,
    /// Database URL: sqlite://path (created on first start) or postgres://user@host/db.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Connections in the database pool (default 8 for SQLite, 10 for PostgreSQL).
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        value_name = "N",
        global = true
    )]
    pub database_max_connections: Option<String>,
    /// Folder for Gatehouse's own files (the generated key); defaults to the SQLite file's folder.
    #[arg(long, env = "DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<String>,
    /// At least 32 bytes; signs sessions and seals stored secrets.
    #[arg(
        long,
        env = "SECRET_KEY",
        value_name = "KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
    /// Earlier SECRET_KEYs, comma-separated: what was sealed or signed under them stays
    /// readable and valid while `gatehouse rotate-secret-key` re-seals it under SECRET_KEY.
    #[arg(
        long,
        env = "SECRET_KEY_PREVIOUS",
        value_name = "KEYS",
        global = true,
        hide_env_values = true
    )]
    pub secret_key_previous: Option<String>,
    /// How people sign in: none, basic or oauth2.
    #[arg(long, env = "AUTH_TYPE", value_name = "TYPE", global = true)]
    pub auth_type: Option<String>,
    #[arg(long, env = "AUTH_BASIC_USERNAME", value_name = "NAME", global = true)]
    pub auth_basic_username: Option<String>,
    #[arg(
        long,
        env = "AUTH_BASIC_PASSWORD",
        value_name = "PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub auth_basic_password: Option<String>,
    /// An argon2 PHC string (see `gatehouse hash-password`), instead of AUTH_BASIC_PASSWORD.
    #[arg(
        long,
        env = "AUTH_BASIC_PASSWORD_HASH",
        value_name = "PHC",
        global = true,
        hide_env_values = true
    )]
    pub auth_basic_password_hash: Option<String>,
    #[arg(long, env = "AUTH_OAUTH2_CLIENT_ID", value_name = "ID", global = true)]
    pub auth_oauth2_client_id: Option<String>,
    #[arg(
        long,
        env = "AUTH_OAUTH2_CLIENT_SECRET",
        value_name = "SECRET",
        global = true,
        hide_env_values = true
    )]
    pub auth_oauth2_client_secret: Option<String>,
    #[arg(
        long,
        env = "AUTH_OAUTH2_AUTHORIZATION_URL",
        value_name = "URL",
        global = true
    )]
    pub auth_oauth2_authorization_url: Option<String>,
    #[arg(long, env = "AUTH_OAUTH2_TOKEN_URL", value_name = "URL", global = true)]
    pub auth_oauth2_token_url: Option<String>,
    #[arg(
        long,
        env = "AUTH_OAUTH2_REDIRECT_URL",
        value_name = "URL",
        global = true
    )]
    pub auth_oauth2_redirect_url: Option<String>,
    /// Comma-separated scopes.
    #[arg(long, env = "AUTH_OAUTH2_SCOPES", value_name = "SCOPES", global = true)]
    pub auth_oauth2_scopes: Option<String>,
    #[arg(
        long,
        env = "AUTH_OAUTH2_USER_INFO_URL",
        value_name = "URL",
        global = true
    )]
    pub auth_oauth2_user_info_url: Option<String>,
    /// OIDC issuer; its discovery document fills in the endpoints not set explicitly.
    #[arg(
        long,
        env = "AUTH_OAUTH2_ISSUER_URL",
        value_name = "URL",
        global = true
    )]
    pub auth_oauth2_issuer_url: Option<String>,
    /// Comma-separated email addresses allowed to sign in.
    #[arg(
        long,
        env = "AUTH_OAUTH2_ALLOWED_USERS",
        value_name = "EMAILS",
        global = true
    )]
    pub auth_oauth2_allowed_users: Option<String>,
    /// Comma-separated email domains allowed to sign in.
    #[arg(
        long,
        env = "AUTH_OAUTH2_ALLOWED_DOMAINS",
        value_name = "DOMAINS",
        global = true
    )]
    pub auth_oauth2_allowed_domains: Option<String>,
    /// Comma-separated email addresses of the people who are admins (AUTH_TYPE=oauth2).
    #[arg(long, env = "AUTH_ADMIN_USERS", value_name = "EMAILS", global = true)]
    pub auth_admin_users: Option<String>,
    /// Comma-separated groups whose members are admins, read from the identity provider's
    /// groups claim (AUTH_TYPE=oauth2).
    #[arg(
        long,
        env = "AUTH_OAUTH2_ADMIN_GROUPS",
        value_name = "GROUPS",
        global = true
    )]
    pub auth_oauth2_admin_groups: Option<String>,
    /// The claim (userinfo or id_token) that lists a person's groups; default `groups`. A
    /// dotted path reaches into an object (`realm_access.roles`).
    #[arg(
        long,
        env = "AUTH_OAUTH2_GROUPS_CLAIM",
        value_name = "CLAIM",
        global = true
    )]
    pub auth_oauth2_groups_claim: Option<String>,
    /// client_secret_basic (default) or client_secret_post.
    #[arg(
        long,
        env = "AUTH_OAUTH2_TOKEN_AUTH_METHOD",
        value_name = "METHOD",
        global = true
    )]
    pub auth_oauth2_token_auth_method: Option<String>,
    /// Name of the session cookie (all auth types).
    #[arg(
        long,
        env = "AUTH_OAUTH2_SESSION_COOKIE_NAME",
        value_name = "NAME",
        global = true
    )]
    pub auth_oauth2_session_cookie_name: Option<String>,
    /// Allow plain-http identity-provider and upstream URLs that are not on loopback.
    #[arg(long, env = "OUTBOUND_ALLOW_HTTP", value_name = "BOOL", global = true)]
    pub outbound_allow_http: Option<String>,
    /// Take the client address from X-Forwarded-For (only behind a proxy that sets it).
    #[arg(long, env = "TRUST_PROXY_HEADERS", value_name = "BOOL", global = true)]
    pub trust_proxy_headers: Option<String>,
    /// Serve the OAuth 2.1 authorization server for MCP clients (/mcp/oauth/*, /.well-known/*).
    #[arg(long, env = "MCP_OAUTH_ENABLED", value_name = "BOOL", global = true)]
    pub mcp_oauth_enabled: Option<String>,
    /// Allow outbound fetches (client metadata documents, later providers) to private,
    /// loopback and link-local addresses.
    #[arg(
        long,
        env = "OUTBOUND_ALLOW_PRIVATE_NETWORKS",
        value_name = "BOOL",
        global = true
    )]
    pub outbound_allow_private_networks: Option<String>,
    /// PEM file of extra CA certificates to trust for outbound https (internal CAs).
    #[arg(long, env = "OUTBOUND_CA_CERTS", value_name = "FILE", global = true)]
    pub outbound_ca_certs: Option<String>,
    /// Comma-separated host names (besides PUBLIC_URL's host and loopback) that requests
    /// may name in `Host`: other names this instance is reached by.
    #[arg(long, env = "ALLOWED_HOSTS", value_name = "HOSTS", global = true)]
    pub allowed_hosts: Option<String>,
    /// Comma-separated browser origins (besides PUBLIC_URL and loopback) allowed to call /mcp.
    #[arg(
        long,
        env = "MCP_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        global = true
    )]
    pub mcp_allowed_origins: Option<String>,
    /// Testing aid: serve the MCP conformance suite's test tools, resources and prompts.
    #[arg(
        long,
        env = "MCP_CONFORMANCE_FIXTURES",
        value_name = "BOOL",
        global = true,
        hide = true
    )]
    pub mcp_conformance_fixtures: Option<String>,
    /// Open MCP sessions one caller (a token, a signed-in client, anonymous) may hold; opening
    /// one more ends its least recently used (default 100).
    #[arg(
        long,
        env = "MCP_MAX_SESSIONS_PER_CALLER",
        value_name = "N",
        global = true
    )]
    pub mcp_max_sessions_per_caller: Option<String>,
    /// Seconds before expiry at which a connection's access token is refreshed (default 60).
    #[arg(
        long,
        env = "CONNECTIONS_REFRESH_SKEW",
        value_name = "SECONDS",
        global = true
    )]
    pub connections_refresh_skew: Option<String>,
    /// Seconds between background passes that renew connection tokens expiring soon
    /// (default 30; 0 turns the background renewal off).
    #[arg(
        long,
        env = "CONNECTIONS_REFRESH_INTERVAL",
        value_name = "SECONDS",
        global = true
    )]
    pub connections_refresh_interval: Option<String>,
    /// A bearer token that may read /metrics (at least 32 characters). Without it and without
    /// METRICS_LISTEN_ADDR there is no /metrics.
    #[arg(
        long,
        env = "METRICS_TOKEN",
        value_name = "TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// A separate address (e.g. 127.0.0.1:9464) serving /metrics to anyone who reaches it.
    #[arg(long, env = "METRICS_LISTEN_ADDR", value_name = "ADDR", global = true)]
    pub metrics_listen_addr: Option<String>,
    /// Days an MCP client registered with Gatehouse may go unused before it is removed with
    /// its consents (default 30; one never used goes after a day).
    #[arg(
        long,
        env = "MCP_OAUTH_CLIENT_IDLE_DAYS",
        value_name = "DAYS",
        global = true
    )]
    pub mcp_oauth_client_idle_days: Option<String>,
    /// Days the audit trail keeps an event (default 365).
    #[arg(long, env = "AUDIT_RETENTION_DAYS", value_name = "DAYS", global = true)]
    pub audit_retention_days: Option<String>,
    /// JSON file of built-in provider overrides: {"<slug>": {<fields>}} (self-hosted
    /// instances such as GitHub Enterprise, or tests pointing a provider at a local server).
    #[arg(long, env = "PROVIDER_OVERRIDES", value_name = "FILE", global = true)]
    pub provider_overrides: Option<String>,
    /// JSON file of extra MCP catalog entries (an array in the shape of `catalog/*.json`);
    /// an entry with a built-in entry's id replaces it.
    #[arg(long, env = "MCP_CATALOG", value_name = "FILE", global = true)]
    pub mcp_catalog: Option<String>,
    /// Deadline in seconds for each call to a provider or upstream (default 15).
    #[arg(long, env = "OUTBOUND_TIMEOUT", value_name = "SECONDS", global = true)]
    pub outbound_timeout: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", value_name = "FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Folder with the built site (pkg/, favicon); cargo-leptos sets it.
    #[arg(long, env = "LEPTOS_SITE_ROOT", value_name = "DIR", global = true)]
    pub site_root: Option<String>,
}

/// An invalid setting: which one, and what is wrong with it, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            var,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid setting {}: {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Settings given that this configuration does not use (named, for a start-up warning):
    /// the roles' settings outside `AUTH_TYPE=oauth2`.
    pub ignored_settings: Vec<&'static str>,
    pub listen_addr: SocketAddr,
    /// `PUBLIC_URL` when set; otherwise derived from the bound address at start-up.
    pub public_url: Option<Url>,
    pub database: DatabaseConfig,
    pub data_dir: PathBuf,
    /// `None` only in `none` mode: start-up then loads or generates a key in the data dir.
    pub secret_key: Option<MasterKey>,
    /// `SECRET_KEY_PREVIOUS`: keys that still open and verify, never seal or sign.
    pub secret_key_previous: Vec<MasterKey>,
    pub auth: AuthConfig,
    pub session_cookie_name: String,
    pub outbound_allow_http: bool,
    /// Outbound fetches may reach private, loopback and link-local addresses.
    pub outbound_allow_private_networks: bool,
    /// Extra trusted CA certificates for outbound https (`OUTBOUND_CA_CERTS`).
    pub outbound_ca_certs: Option<PathBuf>,
    pub trust_proxy_headers: bool,
    /// `MCP_OAUTH_ENABLED`: the authorization server for MCP clients is mounted.
    pub mcp_oauth_enabled: bool,
    /// `ALLOWED_HOSTS`: more `Host` names this instance answers to (lowercased).
    pub allowed_hosts: Vec<String>,
    /// Extra origins allowed to call `/mcp` from a browser, as `scheme://host[:port]`.
    pub mcp_allowed_origins: Vec<String>,
    /// Testing aid only (`MCP_CONFORMANCE_FIXTURES`).
    pub mcp_conformance_fixtures: bool,
    /// `MCP_MAX_SESSIONS_PER_CALLER`.
    pub mcp_max_sessions_per_caller: u32,
    /// `CONNECTIONS_REFRESH_SKEW`, seconds.
    pub connections_refresh_skew: i64,
    /// `CONNECTIONS_REFRESH_INTERVAL`, seconds; 0 = no background renewal.
    pub connections_refresh_interval: u64,
    /// `OUTBOUND_TIMEOUT`, seconds.
    pub outbound_timeout: u64,
    /// `AUDIT_RETENTION_DAYS`.
    pub audit_retention_days: u32,
    /// `MCP_OAUTH_CLIENT_IDLE_DAYS`.
    pub mcp_oauth_client_idle_days: u32,
    /// `METRICS_TOKEN`: who may read /metrics on the main listener.
    pub metrics_token: Option<crate::server::secrets::SecretString>,
    /// `METRICS_LISTEN_ADDR`: a listener of its own for /metrics.
    pub metrics_listen_addr: Option<SocketAddr>,
    /// `PROVIDER_OVERRIDES`: a JSON file start-up applies to the built-in providers.
    pub provider_overrides: Option<PathBuf>,
    /// `MCP_CATALOG`: a JSON file of catalog entries start-up adds to the built-in ones.
    pub mcp_catalog: Option<PathBuf>,
    pub log_format: LogFormat,
    pub site_root: String,
}

#[derive(Debug, Clone)]
pub enum AuthConfig {
    None,
    Basic(BasicAuthConfig),
    Oauth2(Box<OAuth2Config>),
}

impl AuthConfig {
    pub fn auth_type(&self) -> AuthType {
        match self {
            AuthConfig::None => AuthType::None,
            AuthConfig::Basic(_) => AuthType::Basic,
            AuthConfig::Oauth2(_) => AuthType::Oauth2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BasicAuthConfig {
    pub username: String,
    pub password: PasswordCheck,
}

#[derive(Debug, Clone)]
pub enum PasswordCheck {
    Plain(SecretString),
    /// An argon2 PHC string, already checked to parse.
    Hash(SecretString),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Debug, Clone)]
pub struct OAuth2Config {
    pub client_id: String,
    /// `None` makes Gatehouse a public client (PKCE still protects the code).
    pub client_secret: Option<SecretString>,
    pub authorization_url: Option<Url>,
    pub token_url: Option<Url>,
    /// `None`: `<public URL>/auth/callback`, fixed at start-up.
    pub redirect_url: Option<Url>,
    pub scopes: Vec<String>,
    pub user_info_url: Option<Url>,
    pub issuer_url: Option<Url>,
    /// Lowercased email addresses; empty means no restriction by address.
    pub allowed_users: Vec<String>,
    /// Lowercased domains; empty means no restriction by domain.
    pub allowed_domains: Vec<String>,
    /// `AUTH_ADMIN_USERS`, lowercased.
    pub admin_users: Vec<String>,
    /// `AUTH_OAUTH2_ADMIN_GROUPS`, as given (group names are compared exactly).
    pub admin_groups: Vec<String>,
    /// `AUTH_OAUTH2_GROUPS_CLAIM`.
    pub groups_claim: String,
    pub token_auth_method: TokenAuthMethod,
}

impl OAuth2Config {
    /// Whether an email passes `AUTH_OAUTH2_ALLOWED_USERS` / `…_ALLOWED_DOMAINS`. With neither
    /// set, everyone the identity provider authenticates is allowed; with either or both set,
    /// matching either list is enough.
    pub fn email_allowed(&self, email: &str) -> bool {
        if self.allowed_users.is_empty() && self.allowed_domains.is_empty() {
            return true;
        }
        let email = email.trim().to_ascii_lowercase();
        // Not one local part and one domain (`a@evil.example@allowed.example`): no match on
        // either list, whatever its last part says.
        let Some((_, domain)) = split_email(&email) else {
            return false;
        };
        self.allowed_users.contains(&email) || self.allowed_domains.iter().any(|d| d == domain)
    }
}

/// An email address as one local part and one domain, or `None`: exactly one `@`; a local
/// part of at most 64 characters with no spaces, controls, quotes or other specials (quoted
/// local parts and comments are not accepted); a domain of dot-separated labels of letters
/// (of any script, for internationalized domains), digits and `-`. Lengths as RFC 5321 allows (254 in all).
pub fn split_email(email: &str) -> Option<(&str, &str)> {
    let (local, domain) = email.split_once('@')?;
    let local_ok = !local.is_empty()
        && local.chars().count() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| !(c.is_whitespace() || c.is_control() || "@\"(),:;<>[]\\".contains(c)));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    (local_ok && domain_ok && email.chars().count() <= 254).then_some((local, domain))
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A whole number of seconds within `range`, or `default` when unset.
fn parse_seconds(
    var: &'static str,
    value: &Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(v) = present(value) else {
        return Ok(default);
    };
    match v.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            var,
            format!(
                "{v:?} is not a number of seconds between {} and {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// A whole number within `min..=max`.
fn parse_count(var: &'static str, value: &str, min: u32, max: u32) -> Result<u32, ConfigError> {
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            var,
            format!("{value:?} is not a whole number between {min} and {max}"),
        )),
    }
}

fn parse_bool(var: &'static str, value: &Option<String>) -> Result<bool, ConfigError> {
    match present(value).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            var,
            format!("{other:?} is not a boolean; use true or false"),
        )),
    }
}

/// An absolute http(s) URL with a host and no credentials or fragment. Plain http only for
/// loopback unless `allow_http`.
pub fn parse_endpoint_url(
    var: &'static str,
    value: &str,
    allow_http: bool,
) -> Result<Url, ConfigError> {
    let url = Url::parse(value)
        .map_err(|e| ConfigError::new(var, format!("{value:?} is not an absolute URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback_host(&url) => {}
        "http" => {
            return Err(ConfigError::new(
                var,
                format!(
                    "{value:?} uses plain http on a non-loopback host; use https, or set OUTBOUND_ALLOW_HTTP=true if this network is trusted"
                ),
            ));
        }
        other => {
            return Err(ConfigError::new(
                var,
                format!(
                    "{value:?} has scheme {other:?}; only https (or http on loopback) is allowed"
                ),
            ));
        }
    }
    if url.host().is_none() {
        return Err(ConfigError::new(var, format!("{value:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            var,
            "must not contain a username or password; Gatehouse sends client credentials itself",
        ));
    }
    if url.fragment().is_some() {
        return Err(ConfigError::new(
            var,
            format!("{value:?} must not contain a #fragment"),
        ));
    }
    Ok(url)
}

fn parse_list(value: &Option<String>) -> Vec<String> {
    present(value)
        .map(|v| {
            v.split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Derives the base URL when `PUBLIC_URL` is not set: the address Gatehouse listens on, with
/// wildcard addresses replaced by loopback (a wildcard is not somewhere a browser can go).
pub fn derived_public_url(bound: SocketAddr) -> Url {
    let ip = match bound.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    Url::parse(&format!("http://{host}:{}", bound.port()))
        .expect("a socket address is a valid host")
}

fn parse_public_url(value: &str) -> Result<Url, ConfigError> {
    const VAR: &str = "PUBLIC_URL";
    let url = Url::parse(value).map_err(|e| {
        ConfigError::new(
            VAR,
            format!("{value:?} is not an absolute URL like https://gatehouse.example.com ({e})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            VAR,
            format!("{value:?} must start with http:// or https://"),
        ));
    }
    if url.host().is_none() {
        return Err(ConfigError::new(VAR, format!("{value:?} has no host")));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            VAR,
            format!(
                "{value:?} must be just scheme, host and port (Gatehouse is served at the root of its host)"
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            VAR,
            "must not contain a username or password",
        ));
    }
    Ok(url)
}

fn parse_database_url(
    value: &str,
    max_connections: Option<u32>,
) -> Result<DatabaseConfig, ConfigError> {
    DatabaseConfig::from_url(value, max_connections)
        .map_err(|message| ConfigError::new("DATABASE_URL", message))
}

fn parse_secret_key(value: &str) -> Result<MasterKey, ConfigError> {
    parse_key("SECRET_KEY", value)
}

/// `SECRET_KEY_PREVIOUS`: keys separated by commas, each a key as SECRET_KEY is.
fn parse_previous_keys(value: Option<&str>) -> Result<Vec<MasterKey>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| parse_key("SECRET_KEY_PREVIOUS", k))
        .collect()
}

fn parse_key(var: &'static str, value: &str) -> Result<MasterKey, ConfigError> {
    if value.len() < SECRET_KEY_MIN_BYTES {
        return Err(ConfigError::new(
            var,
            format!(
                "is {} bytes; it needs at least {SECRET_KEY_MIN_BYTES}. Make one with `openssl rand -hex 32` (or `gatehouse generate-secret-key`)",
                value.len()
            ),
        ));
    }
    Ok(MasterKey::from_bytes(value.as_bytes().to_vec()))
}

fn is_cookie_name(name: &str) -> bool {
    // RFC 6265 token characters.
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Config {
    /// Checks raw settings and applies defaults.
    pub fn parse(raw: &RawSettings) -> Result<Config, ConfigError> {
        let listen_addr: SocketAddr = present(&raw.listen_addr)
            .unwrap_or(DEFAULT_LISTEN_ADDR)
            .parse()
            .map_err(|_| {
                ConfigError::new(
                    "LISTEN_ADDR",
                    format!(
                        "{:?} is not an IP address and port like 127.0.0.1:8080 or [::]:8080",
                        raw.listen_addr.as_deref().unwrap_or_default()
                    ),
                )
            })?;

        let public_url = present(&raw.public_url).map(parse_public_url).transpose()?;
        let max_connections = present(&raw.database_max_connections)
            .map(|v| parse_count("DATABASE_MAX_CONNECTIONS", v, 1, 1000))
            .transpose()?;
        let database = parse_database_url(
            present(&raw.database_url).unwrap_or(DEFAULT_DATABASE_URL),
            max_connections,
        )?;
        let data_dir = match present(&raw.data_dir) {
            Some(dir) => PathBuf::from(dir),
            None => match &database {
                DatabaseConfig::Sqlite { path, .. } => path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from(".")),
                DatabaseConfig::Postgres { .. } => PathBuf::from("./data"),
            },
        };

        let outbound_allow_http = parse_bool("OUTBOUND_ALLOW_HTTP", &raw.outbound_allow_http)?;
        let trust_proxy_headers = parse_bool("TRUST_PROXY_HEADERS", &raw.trust_proxy_headers)?;

        let auth_type = match present(&raw.auth_type)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("none") => AuthType::None,
            Some("basic") => AuthType::Basic,
            Some("oauth2" | "oidc") => AuthType::Oauth2,
            Some(other) => {
                return Err(ConfigError::new(
                    "AUTH_TYPE",
                    format!("{other:?} is not one of none, basic, oauth2"),
                ));
            }
        };

        let secret_key = match present(&raw.secret_key) {
            Some(v) => Some(parse_secret_key(v)?),
            None if auth_type == AuthType::None => None,
            None => {
                return Err(ConfigError::new(
                    "SECRET_KEY",
                    format!(
                        "is not set, and AUTH_TYPE={} signs sessions with it. Make one with `openssl rand -hex 32` (or `gatehouse generate-secret-key`) and set SECRET_KEY to it",
                        auth_type.as_str()
                    ),
                ));
            }
        };

        let auth = match auth_type {
            AuthType::None => AuthConfig::None,
            AuthType::Basic => AuthConfig::Basic(parse_basic(raw)?),
            AuthType::Oauth2 => {
                AuthConfig::Oauth2(Box::new(parse_oauth2(raw, outbound_allow_http)?))
            }
        };

        let session_cookie_name = present(&raw.auth_oauth2_session_cookie_name)
            .unwrap_or(DEFAULT_SESSION_COOKIE_NAME)
            .to_string();
        if !is_cookie_name(&session_cookie_name) {
            return Err(ConfigError::new(
                "AUTH_OAUTH2_SESSION_COOKIE_NAME",
                format!(
                    "{session_cookie_name:?} is not a valid cookie name (letters, digits and -_. only)"
                ),
            ));
        }

        let log_format = match present(&raw.log_format)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("{other:?} is not one of text, json"),
                ));
            }
        };

        let allowed_hosts = parse_list(&raw.allowed_hosts)
            .iter()
            .map(|h| parse_allowed_host(h).map_err(|e| ConfigError::new("ALLOWED_HOSTS", e)))
            .collect::<Result<Vec<_>, _>>()?;

        let mut mcp_allowed_origins = Vec::new();
        for origin in parse_list(&raw.mcp_allowed_origins) {
            let parsed = Url::parse(&origin).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
            });
            match parsed {
                Some(url) => mcp_allowed_origins.push(url.origin().ascii_serialization()),
                None => {
                    return Err(ConfigError::new(
                        "MCP_ALLOWED_ORIGINS",
                        format!("{origin:?} is not an origin like https://app.example.com"),
                    ));
                }
            }
        }

        // Roles exist with several people only: elsewhere the one user is an admin.
        let ignored_settings = if matches!(auth, AuthConfig::Oauth2(_)) {
            Vec::new()
        } else {
            [
                ("AUTH_ADMIN_USERS", &raw.auth_admin_users),
                ("AUTH_OAUTH2_ADMIN_GROUPS", &raw.auth_oauth2_admin_groups),
                ("AUTH_OAUTH2_GROUPS_CLAIM", &raw.auth_oauth2_groups_claim),
            ]
            .into_iter()
            .filter(|(_, value)| present(value).is_some())
            .map(|(name, _)| name)
            .collect()
        };
        Ok(Config {
            ignored_settings,
            listen_addr,
            public_url,
            database,
            data_dir,
            secret_key,
            secret_key_previous: parse_previous_keys(present(&raw.secret_key_previous))?,
            auth,
            session_cookie_name,
            outbound_allow_http,
            outbound_allow_private_networks: parse_bool(
                "OUTBOUND_ALLOW_PRIVATE_NETWORKS",
                &raw.outbound_allow_private_networks,
            )?,
            outbound_ca_certs: present(&raw.outbound_ca_certs).map(PathBuf::from),
            trust_proxy_headers,
            mcp_oauth_enabled: parse_bool("MCP_OAUTH_ENABLED", &raw.mcp_oauth_enabled)?,
            allowed_hosts,
            mcp_allowed_origins,
            mcp_conformance_fixtures: parse_bool(
                "MCP_CONFORMANCE_FIXTURES",
                &raw.mcp_conformance_fixtures,
            )?,
            mcp_max_sessions_per_caller: present(&raw.mcp_max_sessions_per_caller)
                .map(|v| parse_count("MCP_MAX_SESSIONS_PER_CALLER", v, 1, 10_000))
                .transpose()?
                .unwrap_or(100),
            connections_refresh_skew: parse_seconds(
                "CONNECTIONS_REFRESH_SKEW",
                &raw.connections_refresh_skew,
                60,
                0..=3600,
            )? as i64,
            connections_refresh_interval: parse_seconds(
                "CONNECTIONS_REFRESH_INTERVAL",
                &raw.connections_refresh_interval,
                30,
                0..=3600,
            )?,
            outbound_timeout: parse_seconds(
                "OUTBOUND_TIMEOUT",
                &raw.outbound_timeout,
                15,
                1..=300,
            )?,
            metrics_token: match present(&raw.metrics_token) {
                Some(t) if t.len() >= 32 && t.chars().all(|c| c.is_ascii_graphic()) => {
                    Some(crate::server::secrets::SecretString::new(t))
                }
                Some(_) => {
                    return Err(ConfigError::new(
                        "METRICS_TOKEN",
                        "must be at least 32 printable characters without spaces (gatehouse generate-secret-key makes one)",
                    ));
                }
                None => None,
            },
            metrics_listen_addr: present(&raw.metrics_listen_addr)
                .map(|a| {
                    a.parse::<SocketAddr>().map_err(|_| {
                        ConfigError::new(
                            "METRICS_LISTEN_ADDR",
                            format!("{a:?} is not an IP address and port like 127.0.0.1:9464"),
                        )
                    })
                })
                .transpose()?,
            mcp_oauth_client_idle_days: match present(&raw.mcp_oauth_client_idle_days) {
                Some(days) => parse_count("MCP_OAUTH_CLIENT_IDLE_DAYS", days, 1, 3_650)?,
                None => 30,
            },
            audit_retention_days: match present(&raw.audit_retention_days) {
                Some(days) => parse_count("AUDIT_RETENTION_DAYS", days, 1, 36_500)?,
                None => 365,
            },
            provider_overrides: present(&raw.provider_overrides).map(PathBuf::from),
            mcp_catalog: present(&raw.mcp_catalog).map(PathBuf::from),
            log_format,
            site_root: present(&raw.site_root).unwrap_or("target/site").to_string(),
        })
    }
}

fn parse_basic(raw: &RawSettings) -> Result<BasicAuthConfig, ConfigError> {
    let username = present(&raw.auth_basic_username).ok_or_else(|| {
        ConfigError::new("AUTH_BASIC_USERNAME", "is required when AUTH_TYPE=basic")
    })?;
    // Passwords are taken as given: leading or trailing spaces may be part of them.
    let plain = raw.auth_basic_password.as_deref().filter(|p| !p.is_empty());
    let hash = present(&raw.auth_basic_password_hash);
    let password = match (plain, hash) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "AUTH_BASIC_PASSWORD_HASH",
                "is set together with AUTH_BASIC_PASSWORD; set only one of them",
            ));
        }
        (None, None) => {
            return Err(ConfigError::new(
                "AUTH_BASIC_PASSWORD",
                "is required when AUTH_TYPE=basic (or set AUTH_BASIC_PASSWORD_HASH to the output of `gatehouse hash-password`)",
            ));
        }
        (Some(p), None) => PasswordCheck::Plain(SecretString::new(p)),
        (None, Some(h)) => {
            let parsed = argon2::PasswordHash::new(h).map_err(|e| {
                ConfigError::new(
                    "AUTH_BASIC_PASSWORD_HASH",
                    format!("is not an argon2 PHC string like $argon2id$v=19$m=… ({e}); make one with `gatehouse hash-password`"),
                )
            })?;
            if !matches!(
                parsed.algorithm.as_str(),
                "argon2id" | "argon2i" | "argon2d"
            ) {
                return Err(ConfigError::new(
                    "AUTH_BASIC_PASSWORD_HASH",
                    format!(
                        "uses {}, not argon2; make one with `gatehouse hash-password`",
                        parsed.algorithm
                    ),
                ));
            }
            PasswordCheck::Hash(SecretString::new(h))
        }
    };
    Ok(BasicAuthConfig {
        username: username.to_string(),
        password,
    })
}

fn parse_oauth2(raw: &RawSettings, allow_http: bool) -> Result<OAuth2Config, ConfigError> {
    let url = |var: &'static str, value: &Option<String>| {
        present(value)
            .map(|v| parse_endpoint_url(var, v, allow_http))
            .transpose()
    };
    let client_id = present(&raw.auth_oauth2_client_id)
        .ok_or_else(|| {
            ConfigError::new("AUTH_OAUTH2_CLIENT_ID", "is required when AUTH_TYPE=oauth2")
        })?
        .to_string();
    let client_secret = raw
        .auth_oauth2_client_secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(SecretString::new);
    let issuer_url = url("AUTH_OAUTH2_ISSUER_URL", &raw.auth_oauth2_issuer_url)?;
    if let Some(issuer) = &issuer_url
        && (issuer.query().is_some() || issuer.fragment().is_some())
    {
        return Err(ConfigError::new(
            "AUTH_OAUTH2_ISSUER_URL",
            "must not have a query or fragment (it is the OIDC issuer identifier)",
        ));
    }
    let authorization_url = url(
        "AUTH_OAUTH2_AUTHORIZATION_URL",
        &raw.auth_oauth2_authorization_url,
    )?;
    let token_url = url("AUTH_OAUTH2_TOKEN_URL", &raw.auth_oauth2_token_url)?;
    let user_info_url = url("AUTH_OAUTH2_USER_INFO_URL", &raw.auth_oauth2_user_info_url)?;
    if issuer_url.is_none() {
        // Without discovery every endpoint must be given.
        for (var, value) in [
            ("AUTH_OAUTH2_AUTHORIZATION_URL", &authorization_url),
            ("AUTH_OAUTH2_TOKEN_URL", &token_url),
            ("AUTH_OAUTH2_USER_INFO_URL", &user_info_url),
        ] {
            if value.is_none() {
                return Err(ConfigError::new(
                    var,
                    "is required when AUTH_TYPE=oauth2 and AUTH_OAUTH2_ISSUER_URL (OIDC discovery) is not set",
                ));
            }
        }
    }

    let redirect_url = match present(&raw.auth_oauth2_redirect_url) {
        None => None,
        Some(v) => {
            let parsed = Url::parse(v).map_err(|e| {
                ConfigError::new(
                    "AUTH_OAUTH2_REDIRECT_URL",
                    format!("{v:?} is not an absolute URL ({e})"),
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.path() != "/auth/callback" {
                return Err(ConfigError::new(
                    "AUTH_OAUTH2_REDIRECT_URL",
                    format!(
                        "{v:?} must be this Gatehouse's /auth/callback, e.g. https://gatehouse.example.com/auth/callback"
                    ),
                ));
            }
            Some(parsed)
        }
    };

    let mut scopes = parse_list(&raw.auth_oauth2_scopes);
    if present(&raw.auth_oauth2_scopes).is_none() {
        scopes = DEFAULT_OAUTH2_SCOPES
            .split(',')
            .map(str::to_string)
            .collect();
    }

    let mut allowed_users = Vec::new();
    for user in parse_list(&raw.auth_oauth2_allowed_users) {
        let user = user.to_ascii_lowercase();
        match split_email(&user) {
            Some(_) => allowed_users.push(user),
            None => {
                return Err(ConfigError::new(
                    "AUTH_OAUTH2_ALLOWED_USERS",
                    format!("{user:?} is not an email address"),
                ));
            }
        }
    }
    let mut allowed_domains = Vec::new();
    for domain in parse_list(&raw.auth_oauth2_allowed_domains) {
        let domain = domain.trim_start_matches('@').to_ascii_lowercase();
        if domain.is_empty()
            || domain.contains('@')
            || domain.contains('/')
            || !domain.contains('.') && domain != "localhost"
        {
            return Err(ConfigError::new(
                "AUTH_OAUTH2_ALLOWED_DOMAINS",
                format!("{domain:?} is not a domain like example.com"),
            ));
        }
        allowed_domains.push(domain);
    }

    let mut admin_users = Vec::new();
    for user in parse_list(&raw.auth_admin_users) {
        let user = user.to_ascii_lowercase();
        if split_email(&user).is_none() {
            return Err(ConfigError::new(
                "AUTH_ADMIN_USERS",
                format!("{user:?} is not an email address"),
            ));
        }
        admin_users.push(user);
    }
    // Commas only: a group's name may hold spaces ("Gatehouse Admins").
    let admin_groups: Vec<String> = present(&raw.auth_oauth2_admin_groups)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let groups_claim = present(&raw.auth_oauth2_groups_claim)
        .unwrap_or(DEFAULT_GROUPS_CLAIM)
        .to_string();

    let token_auth_method = match present(&raw.auth_oauth2_token_auth_method)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("client_secret_basic") => TokenAuthMethod::ClientSecretBasic,
        Some("client_secret_post") => TokenAuthMethod::ClientSecretPost,
        Some(other) => {
            return Err(ConfigError::new(
                "AUTH_OAUTH2_TOKEN_AUTH_METHOD",
                format!("{other:?} is not one of client_secret_basic, client_secret_post"),
            ));
        }
    };

    Ok(OAuth2Config {
        client_id,
        client_secret,
        authorization_url,
        token_url,
        redirect_url,
        scopes,
        user_info_url,
        issuer_url,
        allowed_users,
        allowed_domains,
        admin_users,
        admin_groups,
        groups_claim,
        token_auth_method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn raw() -> RawSettings {
        RawSettings::default()
    }

    fn err(raw: RawSettings) -> ConfigError {
        Config::parse(&raw).expect_err("should be refused")
    }

    #[test]
    fn defaults() {
        let c = Config::parse(&raw()).unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.public_url, None);
        assert_eq!(
            c.database,
            DatabaseConfig::Sqlite {
                path: PathBuf::from("./data/gatehouse.db"),
                url: "sqlite://./data/gatehouse.db?mode=rwc".into(),
                max_connections: 8,
            }
        );
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.secret_key.is_none());
        assert!(matches!(c.auth, AuthConfig::None));
        assert_eq!(c.session_cookie_name, "gatehouse_session");
        assert!(!c.outbound_allow_http);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.site_root, "target/site");
    }

    #[test]
    fn roles_settings_outside_oauth2_are_named_as_ignored() {
        let c = Config::parse(&RawSettings {
            auth_admin_users: Some("ada@example.com".into()),
            auth_oauth2_groups_claim: Some("roles".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(
            c.ignored_settings,
            vec!["AUTH_ADMIN_USERS", "AUTH_OAUTH2_GROUPS_CLAIM"]
        );
        assert!(Config::parse(&raw()).unwrap().ignored_settings.is_empty());
    }

    #[test]
    fn public_url_is_derived_from_the_bound_address() {
        assert_eq!(
            derived_public_url("127.0.0.1:8080".parse().unwrap()).as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            derived_public_url("0.0.0.0:9000".parse().unwrap()).as_str(),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            derived_public_url("[::]:9000".parse().unwrap()).as_str(),
            "http://[::1]:9000/"
        );
    }

    #[test]
    fn invalid_values_name_their_variable() {
        let e = err(RawSettings {
            listen_addr: Some("localhost".into()),
            ..raw()
        });
        assert_eq!(e.var, "LISTEN_ADDR");
        assert!(
            e.to_string().starts_with("invalid setting LISTEN_ADDR: "),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));

        for bad in [
            "gatehouse.example.com",
            "ftp://x",
            "https://x.example/base",
            "https://x.example/?a=1",
        ] {
            assert_eq!(
                err(RawSettings {
                    public_url: Some(bad.into()),
                    ..raw()
                })
                .var,
                "PUBLIC_URL",
                "{bad}"
            );
        }
        assert_eq!(
            err(RawSettings {
                auth_type: Some("ldap".into()),
                ..raw()
            })
            .var,
            "AUTH_TYPE"
        );
        assert_eq!(
            err(RawSettings {
                log_format: Some("xml".into()),
                ..raw()
            })
            .var,
            "LOG_FORMAT"
        );
        assert_eq!(
            err(RawSettings {
                outbound_allow_http: Some("maybe".into()),
                ..raw()
            })
            .var,
            "OUTBOUND_ALLOW_HTTP"
        );
        assert_eq!(
            err(RawSettings {
                auth_oauth2_session_cookie_name: Some("a b;".into()),
                ..raw()
            })
            .var,
            "AUTH_OAUTH2_SESSION_COOKIE_NAME"
        );
    }

    #[test]
    fn mcp_allowed_origins() {
        let c = Config::parse(&RawSettings {
            mcp_allowed_origins: Some("https://App.example.com, http://10.0.0.5:3000/".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(
            c.mcp_allowed_origins,
            ["https://app.example.com", "http://10.0.0.5:3000"]
        );
        assert_eq!(
            err(RawSettings {
                mcp_allowed_origins: Some("https://a.example/path".into()),
                ..raw()
            })
            .var,
            "MCP_ALLOWED_ORIGINS"
        );
    }

    #[test]
    fn allowed_hosts() {
        let c = Config::parse(&RawSettings {
            allowed_hosts: Some("Gatehouse.Internal, 192.0.2.10".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(c.allowed_hosts, ["gatehouse.internal", "192.0.2.10"]);
        let e = err(RawSettings {
            allowed_hosts: Some("https://gatehouse.internal".into()),
            ..raw()
        });
        assert_eq!(e.var, "ALLOWED_HOSTS");
        assert!(e.message.contains("no scheme"), "{}", e.message);
    }

    #[test]
    fn public_url_trailing_slash_is_fine() {
        let c = Config::parse(&RawSettings {
            public_url: Some("https://gh.example.com/".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(c.public_url.unwrap().as_str(), "https://gh.example.com/");
    }

    #[test]
    fn database_urls() {
        let c = Config::parse(&RawSettings {
            database_url: Some("sqlite:///var/lib/gh/x.db".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(
            c.database,
            DatabaseConfig::Sqlite {
                path: "/var/lib/gh/x.db".into(),
                url: "sqlite:///var/lib/gh/x.db?mode=rwc".into(),
                max_connections: 8,
            }
        );
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/gh"));
        let c = Config::parse(&RawSettings {
            database_url: Some("sqlite:gh.db".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("."));
        let c = Config::parse(&RawSettings {
            database_url: Some("sqlite://x.db".into()),
            data_dir: Some("/srv/gh".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/gh"));
        for url in [
            "postgres://gh:s3cret@db.internal:6432/gatehouse?sslmode=verify-full",
            "postgresql://gh:s3cret@db.internal:6432/gatehouse?sslmode=verify-full",
        ] {
            let c = Config::parse(&RawSettings {
                database_url: Some(url.into()),
                database_max_connections: Some("25".into()),
                ..raw()
            })
            .unwrap();
            assert_eq!(c.database.backend_name(), "PostgreSQL");
            assert_eq!(c.database.location(), "db.internal:6432/gatehouse");
            assert_eq!(c.database.max_connections(), 25);
            assert!(!format!("{:?}", c.database).contains("s3cret"));
            assert_eq!(c.data_dir, PathBuf::from("./data"));
        }
        let c = Config::parse(&RawSettings {
            database_url: Some("postgres://localhost/gh".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(c.database.max_connections(), 10);
        let e = err(RawSettings {
            database_url: Some("postgres://u:pw@h/db?sslmode=sometimes".into()),
            ..raw()
        });
        assert_eq!(e.var, "DATABASE_URL");
        assert!(!e.to_string().contains("pw@"), "{e}");
        assert!(e.to_string().contains("sslmode"), "{e}");
        for bad in ["0", "1001", "ten"] {
            let e = err(RawSettings {
                database_max_connections: Some(bad.into()),
                ..raw()
            });
            assert_eq!(e.var, "DATABASE_MAX_CONNECTIONS");
        }
        assert_eq!(
            err(RawSettings {
                database_url: Some("sqlite::memory:".into()),
                ..raw()
            })
            .var,
            "DATABASE_URL"
        );
        let e = err(RawSettings {
            database_url: Some("mysql://u:hunter2@h/db".into()),
            ..raw()
        });
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn secret_key_rules() {
        // none: may be missing (generated at start-up); when given it must be long enough.
        let e = err(RawSettings {
            secret_key: Some("short".into()),
            ..raw()
        });
        assert_eq!(e.var, "SECRET_KEY");
        assert!(e.message.contains("openssl rand -hex 32"), "{e}");
        // basic/oauth2: required.
        let e = err(RawSettings {
            auth_type: Some("basic".into()),
            auth_basic_username: Some("admin".into()),
            auth_basic_password: Some("pw".into()),
            ..raw()
        });
        assert_eq!(e.var, "SECRET_KEY");
        assert!(e.message.contains("openssl rand -hex 32"));
        assert!(
            Config::parse(&RawSettings {
                secret_key: Some(KEY.into()),
                ..raw()
            })
            .unwrap()
            .secret_key
            .is_some()
        );
    }

    #[test]
    fn basic_auth_rules() {
        let base = || RawSettings {
            auth_type: Some("basic".into()),
            secret_key: Some(KEY.into()),
            auth_basic_username: Some("admin".into()),
            ..raw()
        };
        assert_eq!(err(base()).var, "AUTH_BASIC_PASSWORD");
        assert_eq!(
            err(RawSettings {
                auth_basic_username: None,
                auth_basic_password: Some("x".into()),
                ..base()
            })
            .var,
            "AUTH_BASIC_USERNAME"
        );
        let c = Config::parse(&RawSettings {
            auth_basic_password: Some(" pw ".into()),
            ..base()
        })
        .unwrap();
        match c.auth {
            AuthConfig::Basic(b) => match b.password {
                PasswordCheck::Plain(p) => assert_eq!(p.expose(), " pw "),
                _ => panic!("expected a plain password"),
            },
            _ => panic!("expected basic"),
        }
        assert_eq!(
            err(RawSettings {
                auth_basic_password_hash: Some("not-a-hash".into()),
                ..base()
            })
            .var,
            "AUTH_BASIC_PASSWORD_HASH"
        );
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$S1yYFOgS4pHTUg/P5bkRngXm07MOiShbgX42hITAnSc";
        assert!(
            Config::parse(&RawSettings {
                auth_basic_password_hash: Some(phc.into()),
                ..base()
            })
            .is_ok()
        );
        assert_eq!(
            err(RawSettings {
                auth_basic_password_hash: Some(phc.into()),
                auth_basic_password: Some("x".into()),
                ..base()
            })
            .var,
            "AUTH_BASIC_PASSWORD_HASH"
        );
        let scrypt = "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E";
        assert_eq!(
            err(RawSettings {
                auth_basic_password_hash: Some(scrypt.into()),
                ..base()
            })
            .var,
            "AUTH_BASIC_PASSWORD_HASH"
        );
    }

    fn oauth2_base() -> RawSettings {
        RawSettings {
            auth_type: Some("oauth2".into()),
            secret_key: Some(KEY.into()),
            auth_oauth2_client_id: Some("gatehouse".into()),
            auth_oauth2_client_secret: Some("s3cret".into()),
            auth_oauth2_issuer_url: Some("https://id.example.com/realms/main".into()),
            ..RawSettings::default()
        }
    }

    fn oauth2(raw: RawSettings) -> OAuth2Config {
        match Config::parse(&raw).unwrap().auth {
            AuthConfig::Oauth2(c) => *c,
            _ => panic!("expected oauth2"),
        }
    }

    #[test]
    fn oauth2_with_discovery() {
        let c = oauth2(oauth2_base());
        assert_eq!(c.scopes, ["openid", "email", "profile"]);
        assert_eq!(c.token_auth_method, TokenAuthMethod::ClientSecretBasic);
        assert!(c.authorization_url.is_none());
        assert!(c.redirect_url.is_none());
    }

    #[test]
    fn oauth2_without_discovery_needs_every_endpoint() {
        let base = || RawSettings {
            auth_oauth2_issuer_url: None,
            ..oauth2_base()
        };
        assert_eq!(err(base()).var, "AUTH_OAUTH2_AUTHORIZATION_URL");
        let full = RawSettings {
            auth_oauth2_authorization_url: Some("https://id.example.com/authorize".into()),
            auth_oauth2_token_url: Some("https://id.example.com/token".into()),
            auth_oauth2_user_info_url: Some("https://id.example.com/userinfo".into()),
            auth_oauth2_scopes: Some("email, profile".into()),
            ..base()
        };
        assert_eq!(oauth2(full.clone()).scopes, ["email", "profile"]);
        assert_eq!(
            err(RawSettings {
                auth_oauth2_user_info_url: None,
                ..full
            })
            .var,
            "AUTH_OAUTH2_USER_INFO_URL"
        );
    }

    #[test]
    fn oauth2_urls_must_be_https_or_loopback() {
        let e = err(RawSettings {
            auth_oauth2_issuer_url: Some("http://id.internal".into()),
            ..oauth2_base()
        });
        assert_eq!(e.var, "AUTH_OAUTH2_ISSUER_URL");
        assert!(e.message.contains("OUTBOUND_ALLOW_HTTP"));
        assert!(
            Config::parse(&RawSettings {
                auth_oauth2_issuer_url: Some("http://127.0.0.1:9000".into()),
                ..oauth2_base()
            })
            .is_ok()
        );
        assert!(
            Config::parse(&RawSettings {
                auth_oauth2_issuer_url: Some("http://localhost:9000".into()),
                ..oauth2_base()
            })
            .is_ok()
        );
        assert!(
            Config::parse(&RawSettings {
                auth_oauth2_issuer_url: Some("http://id.internal".into()),
                outbound_allow_http: Some("true".into()),
                ..oauth2_base()
            })
            .is_ok()
        );
        assert_eq!(
            err(RawSettings {
                auth_oauth2_token_url: Some("https://u:p@id.example.com/t".into()),
                ..oauth2_base()
            })
            .var,
            "AUTH_OAUTH2_TOKEN_URL"
        );
        assert_eq!(
            err(RawSettings {
                auth_oauth2_token_url: Some("javascript:alert(1)".into()),
                ..oauth2_base()
            })
            .var,
            "AUTH_OAUTH2_TOKEN_URL"
        );
        assert_eq!(
            err(RawSettings {
                auth_oauth2_redirect_url: Some("https://gh.example.com/callback".into()),
                ..oauth2_base()
            })
            .var,
            "AUTH_OAUTH2_REDIRECT_URL"
        );
        assert_eq!(
            err(RawSettings {
                auth_oauth2_client_id: None,
                ..oauth2_base()
            })
            .var,
            "AUTH_OAUTH2_CLIENT_ID"
        );
        assert_eq!(
            err(RawSettings {
                auth_oauth2_token_auth_method: Some("private_key_jwt".into()),
                ..oauth2_base()
            })
            .var,
            "AUTH_OAUTH2_TOKEN_AUTH_METHOD"
        );
    }

    #[test]
    fn email_shapes() {
        assert_eq!(
            split_email("first.last+tag@mail.example.com"),
            Some(("first.last+tag", "mail.example.com"))
        );
        assert_eq!(
            split_email("o'neil@xn--bcher-kva.example").map(|e| e.1),
            Some("xn--bcher-kva.example")
        );
        for bad in [
            "a@evil.example@allowed.example",
            "a@",
            "@a.example",
            "a",
            ".a@a.example",
            "a.@a.example",
            "a..b@a.example",
            "a@a..example",
            "a@-a.example",
            "a@a.example.",
            "a@a_b.example",
            "a@[192.0.2.1]",
            "\"a b\"@a.example",
            "a(comment)@a.example",
            "a\n@a.example",
        ] {
            assert_eq!(split_email(bad), None, "{bad:?}");
        }
        assert_eq!(split_email(&format!("{}@a.example", "x".repeat(65))), None);
    }

    #[test]
    fn email_filters() {
        let open = oauth2(oauth2_base());
        assert!(open.email_allowed("anyone@anywhere.example"));

        let c = oauth2(RawSettings {
            auth_oauth2_allowed_users: Some("Alice@Partner.org, bob@corp.example".into()),
            auth_oauth2_allowed_domains: Some("@Corp.example".into()),
            ..oauth2_base()
        });
        assert!(c.email_allowed("alice@partner.org"));
        assert!(c.email_allowed("ALICE@PARTNER.ORG"));
        assert!(c.email_allowed("carol@corp.example"));
        assert!(!c.email_allowed("mallory@partner.org"));
        // A domain matches exactly, not as a suffix.
        assert!(!c.email_allowed("eve@evilcorp.example"));
        assert!(!c.email_allowed("eve@corp.example.evil.com"));
        assert!(!c.email_allowed("eve@sub.corp.example"));
        assert!(!c.email_allowed("@corp.example"));
        assert!(!c.email_allowed("corp.example"));
        // Two @: not one local part and one domain, whatever the last part says.
        assert!(!c.email_allowed("a@evil.example@corp.example"));
        assert!(!c.email_allowed("bob@corp.example@corp.example"));
        assert!(!c.email_allowed("\"a@evil\"@corp.example"));
        assert!(!c.email_allowed("a b@corp.example"));
        assert!(c.email_allowed("Carol@CORP.Example"));

        assert_eq!(
            err(RawSettings {
                auth_oauth2_allowed_users: Some("alice".into()),
                ..oauth2_base()
            })
            .var,
            "AUTH_OAUTH2_ALLOWED_USERS"
        );
        assert_eq!(
            err(RawSettings {
                auth_oauth2_allowed_domains: Some("a@b.c".into()),
                ..oauth2_base()
            })
            .var,
            "AUTH_OAUTH2_ALLOWED_DOMAINS"
        );
    }
}
