//! The state every handler and server function shares.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use url::Url;

use crate::model::instance::InstanceView;
use crate::model::session::LoginOptionsView;
use crate::server::auth::api_tokens::ApiTokens;
use crate::server::auth::oidc::OAuth2Login;
use crate::server::auth::password::BasicVerifier;
use crate::server::auth::session::{CookieSettings, SessionKeys};
use crate::server::auth::throttle::{LoginThrottle, WindowLimiter};
use crate::server::clock::{Clock, UnixTime};
use crate::server::config::Config;
use crate::server::connections::ConnectionsEngine;
use crate::server::db::Db;
use crate::server::gateway::endpoint::McpEndpoint;
use crate::server::gateway::upstreams::Upstreams;
use crate::server::http::Outbound;
use crate::server::net::HostPolicy;
use crate::server::oauth_as::OAuthServer;
use crate::server::secrets::Sealer;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub leptos_options: LeptosOptions,
    /// The built bundle's fingerprint, when there is one: its files are served under
    /// `/assets/<fingerprint>/` (see `assets`).
    pub bundle_fingerprint: Option<String>,
    pub config: Config,
    /// `PUBLIC_URL`, or the derived one; no trailing slash in `public_origin`.
    pub public_url: Url,
    pub public_origin: String,
    /// The names this instance answers to (`Host`) and the origins that may call it.
    pub hosts: HostPolicy,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Seals secrets at rest (connection secrets, vault values, upstream headers): one key,
    /// derived from `SECRET_KEY`, for every domain that stores secrets.
    pub sealer: Sealer,
    /// Outbound HTTP as configured (address policy, extra CA certificates).
    pub outbound: Outbound,
    pub sessions: SessionKeys,
    pub cookies: CookieSettings,
    /// Present in `basic` mode.
    pub basic: Option<BasicVerifier>,
    /// Present in `oauth2` mode.
    pub oauth2: Option<OAuth2Login>,
    pub login_throttle: LoginThrottle,
    pub login_start_limiter: WindowLimiter,
    /// The authorization server for MCP clients, when `MCP_OAUTH_ENABLED`.
    pub oauth_as: Option<OAuthServer>,
    /// `/mcp`: sessions, protection setting, tool registry.
    pub mcp: McpEndpoint,
    /// API token verification cache and uses waiting to be written.
    pub api_tokens: ApiTokens,
    /// OAuth connections to providers: sealing, outbound calls, refresh coordination.
    pub connections: ConnectionsEngine,
    /// The upstream MCP servers behind `/mcp`: sessions, cached tool lists, health.
    pub upstreams: Arc<Upstreams>,
    pub started_at: UnixTime,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    pub fn login_options(&self) -> LoginOptionsView {
        LoginOptionsView {
            auth_type: self.config.auth.auth_type(),
            provider_host: self.oauth2.as_ref().and_then(|o| o.provider_host()),
        }
    }

    pub fn instance_view(&self) -> InstanceView {
        InstanceView {
            version: env!("CARGO_PKG_VERSION").to_string(),
            auth_type: self.config.auth.auth_type(),
            storage_backend: self.config.database.backend_name().to_string(),
            storage_location: self.config.database.location(),
            public_url: self.public_origin.clone(),
            started_at: self.started_at,
            now: self.now(),
        }
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
