//! Building and running the server: key, database, listener, state, router, background jobs.
//! Integration tests build the same `Application` on `127.0.0.1:0`.

use std::future::Future;
use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use leptos::config::{Env, LeptosOptions};
use tokio::net::TcpListener;

use crate::server::assets;
use crate::server::audit;
use crate::server::auth::api_tokens::ApiTokens;
use crate::server::auth::oidc::OAuth2Login;
use crate::server::auth::password::BasicVerifier;
use crate::server::auth::session::{CookieSettings, SessionKeys};
use crate::server::auth::throttle::{LoginThrottle, WindowLimiter};
use crate::server::clock::Clock;
use crate::server::config::{AuthConfig, Config, derived_public_url};
use crate::server::connections::broker::run_maintenance;
use crate::server::connections::{ConnectionsEngine, Providers};
use crate::server::db::changes::Change;
use crate::server::db::{Db, DbError};
use crate::server::files::create_private_dir;
use crate::server::gateway::catalog::Catalog;
use crate::server::gateway::conformance::ConformanceFixtures;
use crate::server::gateway::endpoint::McpEndpoint;
use crate::server::gateway::input::RequestStates;
use crate::server::gateway::sessions::StoredSessions;
use crate::server::gateway::tools::{BuiltinTools, ToolRegistry};
use crate::server::gateway::upstreams::{Upstreams, run_upstream_refresh};
use crate::server::http::{Outbound, OutboundPolicy, load_ca_bundle};
use crate::server::net::HostPolicy;
use crate::server::oauth_as::OAuthServer;
use crate::server::rest::operations::metrics_exposition;
use crate::server::routes;
use crate::server::secrets::{MasterKey, SECRET_KEY_MIN_BYTES, Sealer};
use crate::server::state::{AppState, Inner};

pub const GENERATED_KEY_FILE: &str = "secret_key";
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(10 * 60);
/// How often API token uses are written to the database.
pub const TOKEN_USE_FLUSH_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A file a setting names cannot be used (`PROVIDER_OVERRIDES`, `MCP_CATALOG`): the
    /// message names the setting, as `Config::parse`'s errors do.
    #[error("{0}")]
    Config(String),
    /// A key, file or setting that cannot be used; the message names it.
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Application {
    listener: TcpListener,
    /// `METRICS_LISTEN_ADDR`'s listener, serving /metrics alone.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    router: axum::Router,
}

impl Application {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Application, StartupError> {
        // The files the settings name come first: a bad one stops start-up before anything
        // is written (key, database) or bound.
        let providers = load_providers(config.provider_overrides.as_deref())?;
        let catalog = load_catalog(config.mcp_catalog.as_deref(), &providers)?;
        let master_key = match &config.secret_key {
            Some(key) => key.clone(),
            None => load_or_generate_key(&config.data_dir)?,
        };
        if !config.secret_key_previous.is_empty() {
            tracing::info!(
                keys = config.secret_key_previous.len(),
                "SECRET_KEY_PREVIOUS: values sealed or signed under earlier keys are still accepted; run `gatehouse rotate-secret-key` to re-seal stored ones"
            );
        }
        let db = Db::connect(&config.database).await?;
        if !db.is_postgres() {
            // One process per SQLite file: a lease left by a process that was killed is stale.
            // (On PostgreSQL, replicas' leases run out on their own.)
            let cleared = db.clear_connection_leases().await?;
            if cleared > 0 {
                tracing::info!(cleared, "cleared refresh leases left by a previous run");
            }
        }
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| StartupError::Listen {
                addr: config.listen_addr,
                source,
            })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: config.listen_addr,
                source,
            })?;
        let metrics_listener = match config.metrics_listen_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Listen { addr, source })?,
            ),
            None => None,
        };

        let state = assemble(config, clock, bound, master_key, db, providers, catalog)?;
        state
            .upstreams
            .reload(&state)
            .await
            .map_err(|e| StartupError::Setting(format!("cannot read the MCP servers: {e}")))?;
        let router = routes::router(state.clone());
        Ok(Application {
            listener,
            metrics_listener,
            state,
            router,
        })
    }

    /// The state a command works with on the store of `DATABASE_URL` (`gatehouse api-tokens`,
    /// `connections`), without listening, background jobs or a key of its own: with no
    /// `SECRET_KEY` it uses the one the server generated in `DATA_DIR`, and never makes one
    /// (what it made would open nothing).
    pub async fn headless(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartupError> {
        let providers = load_providers(config.provider_overrides.as_deref())?;
        let catalog = load_catalog(config.mcp_catalog.as_deref(), &providers)?;
        let master_key = match &config.secret_key {
            Some(key) => key.clone(),
            None => {
                let path = config.data_dir.join(GENERATED_KEY_FILE);
                match std::fs::read_to_string(&path) {
                    Ok(contents) => key_from_file(&path, &contents)?,
                    Err(e) => {
                        return Err(StartupError::Setting(format!(
                            "SECRET_KEY is not set and the key the server generates ({}) cannot be read: {e}",
                            path.display()
                        )));
                    }
                }
            }
        };
        let db = Db::connect(&config.database).await?;
        let bound = config.listen_addr;
        assemble(config, clock, bound, master_key, db, providers, catalog)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Where `METRICS_LISTEN_ADDR`'s listener is bound (a port 0 resolved).
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then ends open MCP streams, lets in-flight requests
    /// finish, writes pending token uses and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Application {
            listener,
            metrics_listener,
            state,
            router,
        } = self;
        // Histograms are drained into their buckets by upkeep (the exporter's own listener
        // would do it; Gatehouse serves the exposition itself).
        let upkeep = tokio::spawn(async {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                crate::server::metrics::handle().run_upkeep();
            }
        });
        let stop_metrics = tokio_util::sync::CancellationToken::new();
        let metrics_server = metrics_listener.map(|listener| {
            let state = state.clone();
            let stop = stop_metrics.clone();
            tokio::spawn(async move {
                let router = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let state = state.clone();
                        async move { metrics_exposition(&state).await }
                    }),
                );
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            })
        });
        let stop_listening = tokio_util::sync::CancellationToken::new();
        let listener_db = state.db.clone();
        let listening = tokio::spawn({
            let stop = stop_listening.clone();
            async move { listener_db.listen_for_changes(stop).await }
        });
        let follower = tokio::spawn(follow_changes(state.clone()));
        let checkpoints = tokio::spawn(state.db.clone().checkpoint_wal());
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let flusher = tokio::spawn(flush_token_uses(state.clone()));
        let renewer = (state.config.connections_refresh_interval > 0).then(|| {
            tokio::spawn(run_maintenance(
                state.clone(),
                std::time::Duration::from_secs(state.config.connections_refresh_interval),
            ))
        });
        let lister = tokio::spawn(run_upstream_refresh(state.clone()));
        let streams = state.mcp.shutdown.clone();
        let shutdown = async move {
            shutdown.await;
            // SSE streams never end on their own; without this, graceful shutdown waits forever.
            streams.cancel();
        };
        // Without TCP_NODELAY, the small writes of an SSE response meet delayed ACKs and
        // every streamed answer waits ~40 ms.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let result = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        stop_listening.cancel();
        let _ = listening.await;
        follower.abort();
        checkpoints.abort();
        housekeeping.abort();
        flusher.abort();
        lister.abort();
        upkeep.abort();
        stop_metrics.cancel();
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        if let Some(renewer) = renewer {
            renewer.abort();
        }
        if let Err(e) = state.api_tokens.uses.flush(&state.db).await {
            tracing::error!(error = %e, "could not write API token last-used times at shutdown");
        }
        state.db.close().await;
        result
    }
}

/// The built-in providers with `PROVIDER_OVERRIDES` applied.
fn load_providers(overrides: Option<&Path>) -> Result<Providers, StartupError> {
    let Some(path) = overrides else {
        return Ok(Providers::builtin());
    };
    let setting =
        |e: String| StartupError::Setting(format!("invalid setting PROVIDER_OVERRIDES: {e}"));
    let json = std::fs::read_to_string(path)
        .map_err(|e| setting(format!("cannot read {}: {e}", path.display())))?;
    Providers::with_overrides(&json).map_err(setting)
}

/// The built-in catalog with `MCP_CATALOG`'s entries, whose providers must exist.
fn load_catalog(extra: Option<&Path>, providers: &Providers) -> Result<Catalog, StartupError> {
    let Some(path) = extra else {
        return Ok(Catalog::builtin());
    };
    let setting = |e: String| StartupError::Config(format!("invalid setting MCP_CATALOG: {e}"));
    let json = std::fs::read_to_string(path)
        .map_err(|e| setting(format!("cannot read {}: {e}", path.display())))?;
    Catalog::with_extra(&json, |p| providers.find(p).is_some()).map_err(setting)
}

/// Cargo-leptos passes the site layout in `LEPTOS_*` variables; a release binary run on its
/// own falls back to the defaults it was built with.
fn leptos_options(config: &Config, bound: SocketAddr) -> LeptosOptions {
    let env_or =
        |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_string());
    let dev = env_or("LEPTOS_ENV", "PROD").eq_ignore_ascii_case("dev");
    LeptosOptions::builder()
        .output_name(env_or("LEPTOS_OUTPUT_NAME", "gatehouse"))
        .site_root(config.site_root.clone())
        .site_pkg_dir(env_or("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(bound)
        .env(if dev { Env::DEV } else { Env::PROD })
        .reload_port(
            env_or("LEPTOS_RELOAD_PORT", "3001")
                .parse::<u32>()
                .unwrap_or(3001),
        )
        .build()
}

/// Applies the changes other replicas (and other domains here) announce: each domain
/// forgets what it cached about them.
async fn follow_changes(state: AppState) {
    use tokio::sync::broadcast::error::RecvError;
    let mut changes = state.db.changes();
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(_)) => Change::everything(),
            Err(RecvError::Closed) => return,
        };
        crate::server::auth::on_change(&state, &change);
        if let Some(oauth) = &state.oauth_as {
            oauth.on_change(&change);
        }
        crate::server::gateway::on_change(&state, &change).await;
    }
}

/// Deletes expired login states, session revocations, grants and MCP sessions now and then
/// (on one replica per round).
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tick.tick().await;
        let now = state.now();
        if !state
            .db
            .take_turn("housekeeping", now, HOUSEKEEPING_EVERY)
            .await
        {
            continue;
        }
        if let Err(e) = state.mcp.purge_sessions(now).await {
            tracing::warn!(error = %e, "housekeeping: cannot purge idle MCP sessions");
        }
        if let Err(e) = state.db.purge_expired_login_states(now).await {
            tracing::warn!(error = %e, "housekeeping: cannot purge login states");
        }
        if let Err(e) = state.db.purge_expired_revocations(now).await {
            tracing::warn!(error = %e, "housekeeping: cannot purge revoked sessions");
        }
        if let Err(e) = state.db.purge_expired_oauth(now).await {
            tracing::warn!(error = %e, "housekeeping: cannot purge expired OAuth grants");
        }
        if state.oauth_as.is_some()
            && let Err(e) = crate::server::oauth_as::admin::remove_idle_clients(
                &state,
                now,
                state.config.mcp_oauth_client_idle_days,
            )
            .await
        {
            tracing::warn!(error = %e, "housekeeping: cannot remove idle OAuth clients");
        }
        match audit::purge(&state.db, now, state.config.audit_retention_days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                events = n,
                "housekeeping: audit events past their retention removed"
            ),
            Err(e) => tracing::warn!(error = %e, "housekeeping: cannot purge the audit trail"),
        }
    }
}

/// Writes this replica's API token uses every 30 s (a time never moves backwards, so replicas
/// may flush in any order).
async fn flush_token_uses(state: AppState) {
    let mut tick = tokio::time::interval(TOKEN_USE_FLUSH_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = state.api_tokens.uses.flush(&state.db).await {
            tracing::warn!(error = %e, "cannot write API token last-used times; will retry");
        }
    }
}

/// `AUTH_TYPE=none` without `SECRET_KEY`: use the key stored in the data folder, creating it
/// (mode 0600) on first start.
pub fn load_or_generate_key(data_dir: &Path) -> Result<MasterKey, StartupError> {
    let path = data_dir.join(GENERATED_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(contents) => return key_from_file(&path, &contents),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StartupError::Setting(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    }
    create_private_dir(data_dir).map_err(|e| {
        StartupError::Setting(format!(
            "cannot create the data folder {}: {e}",
            data_dir.display()
        ))
    })?;
    let key = MasterKey::generate_hex();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(key.as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| {
                    StartupError::Setting(format!("cannot write {}: {e}", path.display()))
                })?;
            tracing::warn!(
                path = %path.display(),
                "SECRET_KEY is not set: generated a key and stored it in the data folder. Back it up with the database, or set SECRET_KEY; losing it signs everyone out and makes stored secrets unreadable"
            );
            Ok(MasterKey::from_bytes(key.into_bytes()))
        }
        // Another process created it between our read and our create: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let contents = std::fs::read_to_string(&path).map_err(|e| {
                StartupError::Setting(format!("cannot read {}: {e}", path.display()))
            })?;
            key_from_file(&path, &contents)
        }
        Err(e) => Err(StartupError::Setting(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

fn key_from_file(path: &PathBuf, contents: &str) -> Result<MasterKey, StartupError> {
    let key = contents.trim();
    if key.len() < SECRET_KEY_MIN_BYTES {
        return Err(StartupError::Setting(format!(
            "{} holds a key shorter than {SECRET_KEY_MIN_BYTES} bytes; set SECRET_KEY, or delete the file to have a new key generated",
            path.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the key file is readable by other users; run chmod 600 on it");
        }
    }
    Ok(MasterKey::from_bytes(key.as_bytes().to_vec()))
}

/// Everything a process of Gatehouse holds, from its settings and the parts start-up made.
fn assemble(
    config: Config,
    clock: Arc<dyn Clock>,
    bound: SocketAddr,
    master_key: MasterKey,
    db: Db,
    providers: Providers,
    catalog: Catalog,
) -> Result<AppState, StartupError> {
    let previous = config.secret_key_previous.as_slice();
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| derived_public_url(bound));
    let public_origin = public_url.as_str().trim_end_matches('/').to_string();
    let roots = match &config.outbound_ca_certs {
        Some(path) => load_ca_bundle(path)
            .map_err(|e| StartupError::Setting(format!("OUTBOUND_CA_CERTS: {e}")))?,
        None => Vec::new(),
    };
    let outbound = Outbound::new(
        OutboundPolicy {
            allow_http: config.outbound_allow_http,
            allow_private: config.outbound_allow_private_networks,
        },
        roots,
    );
    let http = outbound.client();
    let (basic, oauth2) = match &config.auth {
        AuthConfig::None => (None, None),
        AuthConfig::Basic(basic) => (Some(BasicVerifier::new(basic.clone())), None),
        AuthConfig::Oauth2(oauth2) => {
            let redirect = oauth2.redirect_url.clone().unwrap_or_else(|| {
                public_url
                    .join("/auth/callback")
                    .expect("a base URL joins a path")
            });
            let login = OAuth2Login::new(
                (**oauth2).clone(),
                redirect,
                config.outbound_allow_http,
                http.clone(),
            );
            (None, Some(login))
        }
    };
    if !config.ignored_settings.is_empty() {
        tracing::warn!(
            settings = %config.ignored_settings.join(", "),
            auth_type = config.auth.auth_type().as_str(),
            "roles apply with AUTH_TYPE=oauth2 only (here the one user is an admin): these settings are ignored"
        );
    }
    if crate::server::auth::everyone_is_admin(&config.auth) {
        tracing::warn!(
            "everyone the identity provider lets in is an admin: set AUTH_ADMIN_USERS or AUTH_OAUTH2_ADMIN_GROUPS to make the others members"
        );
    }

    let upstreams = Arc::new(Upstreams::new(clock.clone(), catalog));
    let mut tools = ToolRegistry::default().with_source(BuiltinTools);
    if config.mcp_conformance_fixtures {
        tracing::warn!(
            "MCP_CONFORMANCE_FIXTURES is on: /mcp serves the conformance suite's test tools"
        );
        tools = tools.with_source(ConformanceFixtures);
    }
    let tools = tools.with_source(upstreams.tool_source());
    let hosts = HostPolicy::new(
        &public_url,
        config.allowed_hosts.clone(),
        config.mcp_allowed_origins.clone(),
    );
    let mcp = McpEndpoint::new(
        hosts.clone(),
        tools,
        config.mcp_conformance_fixtures,
        RequestStates::with_previous(&master_key, previous),
        StoredSessions::new(
            db.clone(),
            clock.clone(),
            config.mcp_max_sessions_per_caller,
        ),
    );
    let oauth_as = config.mcp_oauth_enabled.then(|| {
        OAuthServer::with_previous(&master_key, previous, &public_origin, outbound.clone())
    });
    let connections = ConnectionsEngine::new(
        Sealer::new(&master_key, previous),
        outbound.clone(),
        &public_origin,
        config.connections_refresh_skew,
        std::time::Duration::from_secs(config.outbound_timeout),
        providers,
    );
    let leptos_options = leptos_options(&config, bound);
    // Pages name the bundle by its fingerprint (see `assets`). Not under `cargo leptos
    // watch`, which rebuilds the bundle without restarting the server.
    let bundle_fingerprint = (leptos_options.env != Env::DEV)
        .then(|| {
            assets::fingerprint(
                &Path::new(&*leptos_options.site_root).join(&*leptos_options.site_pkg_dir),
            )
        })
        .flatten();
    Ok(AppState::new(Inner {
        leptos_options,
        bundle_fingerprint,
        sessions: SessionKeys::with_previous(&master_key, previous, &public_origin),
        cookies: CookieSettings {
            session_name: config.session_cookie_name.clone(),
            secure: public_url.scheme() == "https",
        },
        public_url,
        public_origin,
        hosts,
        sealer: Sealer::new(&master_key, previous),
        outbound: outbound.clone(),
        db,
        started_at: clock.now(),
        clock,
        basic,
        oauth2,
        login_throttle: LoginThrottle::default(),
        login_start_limiter: WindowLimiter::new(30, 60),
        oauth_as,
        mcp,
        api_tokens: ApiTokens::default(),
        connections,
        upstreams,
        config,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = load_or_generate_key(&data).unwrap();
        let second = load_or_generate_key(&data).unwrap();
        assert_eq!(first.derive("x"), second.derive("x"));
        let path = data.join(GENERATED_KEY_FILE);
        assert_eq!(std::fs::read_to_string(&path).unwrap().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn short_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(GENERATED_KEY_FILE), "short").unwrap();
        let err = load_or_generate_key(dir.path()).err().unwrap().to_string();
        assert!(err.contains("shorter than 32 bytes"), "{err}");
    }
}
