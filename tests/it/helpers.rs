//! The test harness: the real router on 127.0.0.1:0 with its own store (a temporary SQLite
//! file, or with `GATEHOUSE_TEST_POSTGRES` set a fresh database on that PostgreSQL server), a
//! clock the test moves, and (for OIDC) a real oidc-provider process.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use gatehouse::server::clock::ManualClock;
use gatehouse::server::config::{Config, RawSettings};
use gatehouse::server::startup::Application;
use gatehouse::server::state::AppState;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TEST_KEY: &str = "integration-test-secret-key-0123456789";
pub const USERNAME: &str = "admin";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    /// `METRICS_LISTEN_ADDR`'s listener, when the settings asked for one.
    pub metrics_address: Option<String>,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub data_dir: TempDir,
    /// The store's `DATABASE_URL`: a second app given it is a replica of this one.
    pub database_url: String,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A hung request fails the test with its URL instead of hanging the run.
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `TEST_LOG=debug cargo test …` shows the server's log (the filter syntax of RUST_LOG).
fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

pub async fn spawn_app(settings: RawSettings) -> TestApp {
    spawn_app_with_clock(settings, ManualClock::new()).await
}

/// An app on a given clock: replicas of one instance share theirs.
pub async fn spawn_app_with_clock(mut settings: RawSettings, clock: ManualClock) -> TestApp {
    init_test_log();
    let data_dir = tempfile::tempdir().unwrap();
    // A port of its own unless the test names one (to restart on the same address).
    if settings.listen_addr.is_none() {
        settings.listen_addr = Some("127.0.0.1:0".into());
    }
    if settings.database_url.is_none() {
        settings.database_url = Some(fresh_database(data_dir.path()).await);
    }
    if settings.data_dir.is_none() {
        settings.data_dir = Some(data_dir.path().display().to_string());
    }
    let database_url = settings.database_url.clone().unwrap();
    let config = Config::parse(&settings).expect("test settings are valid");
    let app = Application::build(config, Arc::new(clock.clone()))
        .await
        .expect("the app starts");
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app.metrics_address().map(|a| format!("http://{a}"));
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        metrics_address,
        clock,
        client: client(),
        data_dir,
        database_url,
        state,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// The PostgreSQL server the suite runs on, when it runs on one: an admin URL such as
/// `postgres://postgres@127.0.0.1:5433` (scripts/test.sh starts one with scripts/postgres.sh).
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("GATEHOUSE_TEST_POSTGRES")
        .ok()
        .filter(|v| !v.is_empty())
}

/// A store of its own for one test: a new database on the suite's PostgreSQL server, else an
/// SQLite file in `dir`.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    let Some(admin) = postgres_admin_url() else {
        return format!("sqlite://{}/gatehouse.db", dir.display());
    };
    use sqlx::Connection;
    let name = format!("gh_{}", gatehouse::server::secrets::random_id());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin)
        .await
        .expect("the test PostgreSQL server answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("a test database can be created");
    let _ = conn.close().await;
    format!("{}/{name}", admin.trim_end_matches('/'))
}

/// `gatehouse <args>` run as an operator's shell would, on this app's store and with its
/// settings (basic sign-in, the test key, private networks allowed), as the account `ops`.
pub async fn gatehouse_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("DATA_DIR", app.data_dir.path())
        .env("SECRET_KEY", TEST_KEY)
        .env("AUTH_TYPE", "basic")
        .env("AUTH_BASIC_USERNAME", USERNAME)
        .env("AUTH_BASIC_PASSWORD", PASSWORD)
        .env("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")
        .env("USER", "ops")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("the gatehouse binary runs")
}

pub fn basic_settings() -> RawSettings {
    RawSettings {
        auth_type: Some("basic".into()),
        secret_key: Some(TEST_KEY.into()),
        auth_basic_username: Some(USERNAME.into()),
        auth_basic_password: Some(PASSWORD.into()),
        ..RawSettings::default()
    }
}

pub fn oauth2_settings(issuer: &str) -> RawSettings {
    RawSettings {
        auth_type: Some("oauth2".into()),
        secret_key: Some(TEST_KEY.into()),
        auth_oauth2_client_id: Some("gatehouse-test".into()),
        auth_oauth2_client_secret: Some("gatehouse-test-secret".into()),
        auth_oauth2_issuer_url: Some(issuer.into()),
        ..RawSettings::default()
    }
}

impl TestApp {
    /// Shuts the server down the way SIGTERM does and waits until it has stopped.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Everything the store holds, as text: the SQLite files' bytes, or every PostgreSQL row
    /// rendered as text. For "no secret is stored in clear" checks.
    pub async fn stored_text(&self) -> String {
        if !self.database_url.starts_with("postgres") {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(self.data_dir.path()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if name.starts_with("gatehouse.db") {
                    bytes.extend(std::fs::read(path).unwrap());
                }
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        use sqlx::{Connection, Row};
        let mut conn = sqlx::postgres::PgConnection::connect(&self.database_url)
            .await
            .unwrap();
        let tables: Vec<String> = sqlx::query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        let mut text = String::new();
        for table in tables {
            for row in sqlx::query(&format!("SELECT t::text FROM {table} t"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
            {
                text.push_str(&row.get::<String, _>(0));
                text.push('\n');
            }
        }
        text
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_with_bearer(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn login_json(&self, username: &str, password: &str) -> Response {
        self.client
            .post(self.url("/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn login_form(&self, username: &str, password: &str, next: &str) -> Response {
        let body = format!(
            "username={}&password={}&next={}",
            enc(username),
            enc(password),
            enc(next)
        );
        self.client
            .post(self.url("/auth/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A session token from the JSON login.
    pub async fn token(&self) -> String {
        let response = self.login_json(USERNAME, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }
}

/// A request with a bearer token and an optional JSON body: the status, and the answer as
/// JSON (a JSON string when it is not JSON).
pub async fn send_json(
    app: &TestApp,
    bearer: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

pub fn enc(value: &str) -> String {
    gatehouse::util::encode_query_value(value)
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location header; status {}", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The `Set-Cookie` header for `name`, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// `name=value` from a `Set-Cookie` header, ready for a `Cookie` header.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// A real OpenID Connect provider (end2end/support/oidc-provider.mjs) on a free loopback port.
pub struct OidcProvider {
    pub issuer: String,
    _child: Child,
}

impl OidcProvider {
    pub async fn start(extra_args: &[&str]) -> OidcProvider {
        OidcProvider::start_with_env(extra_args, &[]).await
    }

    /// `start`, with these variables in its environment (NODE_EXTRA_CA_CERTS, say).
    pub async fn start_with_env(
        extra_args: &[&str],
        env: &[(&str, &std::path::Path)],
    ) -> OidcProvider {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/end2end/support/oidc-provider.mjs"
        );
        let mut child = Command::new("node")
            .arg(script)
            .args(["--port", "0"])
            .args(extra_args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (the README's test command installs it and oidc-provider)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with('{') {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                // Keep draining its output: a closed pipe would kill it at its next log line.
                let mut stderr = child.stderr.take().unwrap();
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                tokio::spawn(
                    async move { tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await },
                );
                return OidcProvider {
                    issuer: v["issuer"].as_str().unwrap().to_string(),
                    _child: child,
                };
            }
        }
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        panic!("oidc-provider did not start (run `npm ci` first?): {err}");
    }
}

/// Just enough of a browser to walk an OAuth redirect chain: one cookie jar (like a browser
/// on one loopback host), no automatic redirects.
#[derive(Default)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
    /// A certificate authority it trusts besides the system's (a test's throwaway one).
    pub ca: Option<reqwest::Certificate>,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, headers: &HeaderMap) {
        for value in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = value.split(';').next().unwrap();
            if let Some((name, val)) = pair.split_once('=') {
                let expired = value.to_ascii_lowercase().contains("max-age=0") || val.is_empty();
                if expired {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_string(), val.to_string());
                }
            }
        }
    }

    /// `client()`, trusting `ca` as well.
    pub fn http(&self) -> reqwest::Client {
        let Some(ca) = &self.ca else {
            return client();
        };
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .add_root_certificate(ca.clone())
            .build()
            .unwrap()
    }

    pub async fn get(&mut self, url: &str) -> Response {
        let response = self
            .http()
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.remember(response.headers());
        response
    }

    pub async fn post_form(&mut self, url: &str, body: String) -> Response {
        let response = self
            .http()
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.remember(response.headers());
        response
    }
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_string()
    } else {
        let origin: String = base.split('/').take(3).collect::<Vec<_>>().join("/");
        format!("{origin}{location}")
    }
}

/// Walks from `/auth/oauth2/start` through the identity provider as `email` (or pressing
/// "Deny" when `email` is None) and stops at Gatehouse's callback URL, which it returns
/// without calling it.
pub async fn walk_to_callback(app: &TestApp, browser: &mut Browser, email: Option<&str>) -> String {
    let start = browser.get(&app.url("/auth/oauth2/start?next=%2F")).await;
    assert_eq!(
        start.status(),
        StatusCode::SEE_OTHER,
        "start should redirect to the provider"
    );
    walk_provider(
        browser,
        &location(&start),
        &app.url("/auth/callback"),
        email,
    )
    .await
}

/// Follows a redirect chain through the test provider from `url`, signing in as `email` (or
/// pressing "Deny"), until a URL starting with `stop_at`, which it returns without calling.
pub async fn walk_provider(
    browser: &mut Browser,
    url: &str,
    stop_at: &str,
    email: Option<&str>,
) -> String {
    let mut url = url.to_string();
    for _ in 0..20 {
        if url.starts_with(stop_at) {
            return url;
        }
        let response = browser.get(&url).await;
        if response.status().is_redirection() {
            url = absolute(&url, &location(&response));
            continue;
        }
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "unexpected answer at {url}"
        );
        let html = response.text().await.unwrap();
        let uid = url.rsplit('/').next().unwrap().to_string();
        let base = absolute(&url, "/");
        let next = match email {
            Some(email) => {
                assert!(
                    html.contains("name=\"email\""),
                    "expected the login form, got {html}"
                );
                browser
                    .post_form(
                        &format!("{base}interaction/{uid}/login"),
                        format!("email={}", enc(email)),
                    )
                    .await
            }
            None => {
                browser
                    .post_form(&format!("{base}interaction/{uid}/abort"), String::new())
                    .await
            }
        };
        assert!(
            next.status().is_redirection(),
            "login form post: {}",
            next.status()
        );
        url = absolute(&url, &location(&next));
    }
    panic!("the redirect chain did not reach {stop_at}");
}

/// Creates an API token through the REST API (the app must be in `none` mode or `token` a
/// session) and returns the JSON answer.
pub async fn create_token(app: &TestApp, body: serde_json::Value) -> serde_json::Value {
    let response = app
        .client
        .post(app.url("/api/v0/settings/mcp/tokens"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "creating a token");
    response.json().await.unwrap()
}

/// A 2025-era `initialize` at `base`/mcp, raw.
pub async fn mcp_initialize(base: &str, token: Option<&str>) -> Response {
    let mut request = client()
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": LATEST_SESSION_VERSION, "capabilities": {},
            "clientInfo": {"name": "it", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap()
}

/// Creates an API token as a signed-in user; returns the token.
pub async fn create_token_with(app: &TestApp, session: &str, body: serde_json::Value) -> String {
    let response = app
        .client
        .post(app.url("/api/v0/settings/mcp/tokens"))
        .bearer_auth(session)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "creating a token");
    let created: serde_json::Value = response.json().await.unwrap();
    created["token"].as_str().unwrap().to_string()
}

pub async fn set_protection(app: &TestApp, enabled: bool) {
    let response = app
        .client
        .put(app.url("/api/v0/settings/mcp"))
        .json(&serde_json::json!({"enabled": enabled}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

pub const LATEST_SESSION_VERSION: &str = "2025-11-25";

/// A raw MCP client over reqwest, for checking status codes and bodies exactly.
pub struct RawMcp<'a> {
    pub app: &'a TestApp,
    pub token: Option<String>,
    pub session: Option<String>,
}

/// The JSON-RPC message in a response body, whether JSON or SSE.
pub fn rpc_body(text: &str) -> serde_json::Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| d.starts_with('{'))
        .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap())
        .find(|v| v.get("id").is_some() || v.get("error").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {text:?}"))
}

impl<'a> RawMcp<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        RawMcp {
            app,
            token: None,
            session: None,
        }
    }

    pub fn with_token(app: &'a TestApp, token: &str) -> Self {
        RawMcp {
            app,
            token: Some(token.to_string()),
            session: None,
        }
    }

    pub fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut r = self
            .app
            .client
            .request(method, self.app.url("/mcp"))
            .header("accept", "application/json, text/event-stream");
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(s) = &self.session {
            r = r
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", LATEST_SESSION_VERSION);
        }
        r
    }

    /// POSTs a JSON-RPC message; returns status, headers and the JSON-RPC answer (Null when
    /// there is no body).
    pub async fn post(
        &self,
        body: serde_json::Value,
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        let response = self
            .request(reqwest::Method::POST)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            rpc_body(&text)
        };
        (status, headers, value)
    }

    pub async fn initialize(&mut self, version: &str) -> serde_json::Value {
        let (status, headers, body) = self
            .post(serde_json::json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}
            }))
            .await;
        assert_eq!(status, StatusCode::OK, "initialize: {body}");
        self.session = Some(headers["mcp-session-id"].to_str().unwrap().to_string());
        let (status, _, _) = self
            .post(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        body
    }

    /// `tools/call` of `name` with `arguments`: the JSON-RPC answer.
    pub async fn call_tool(
        &self,
        id: i64,
        name: &str,
        arguments: serde_json::Value,
    ) -> serde_json::Value {
        self.call(
            id,
            "tools/call",
            serde_json::json!({"name": name, "arguments": arguments}),
        )
        .await
    }

    pub async fn call(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        let (status, _, body) = self
            .post(
                serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{method}: {body}");
        body
    }
}

/// Two replicas of one instance on one PostgreSQL database, behind a round-robin proxy: every
/// request (every SSE stream too) goes to the other replica than the one before.
pub struct Replicas {
    /// Replica A, its `address` replaced by the proxy's: helpers that take a `TestApp` talk
    /// through the proxy.
    pub via: TestApp,
    pub b: TestApp,
    /// Each replica directly, bypassing the proxy.
    pub direct: [String; 2],
    /// How many requests the proxy sent to each replica.
    pub sent: Arc<[std::sync::atomic::AtomicUsize; 2]>,
    _proxy: tokio::task::JoinHandle<()>,
}

impl Replicas {
    pub async fn start(settings: RawSettings) -> Replicas {
        assert!(
            postgres_admin_url().is_some(),
            "replica tests need PostgreSQL: set GATEHOUSE_TEST_POSTGRES (scripts/test.sh does)"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_url = format!("http://{}", listener.local_addr().unwrap());
        let clock = ManualClock::new();
        let a = spawn_app_with_clock(
            RawSettings {
                public_url: Some(proxy_url.clone()),
                ..settings.clone()
            },
            clock.clone(),
        )
        .await;
        let b = spawn_app_with_clock(
            RawSettings {
                public_url: Some(proxy_url.clone()),
                database_url: Some(a.database_url.clone()),
                ..settings
            },
            clock,
        )
        .await;
        let direct = [a.address.clone(), b.address.clone()];
        let sent: Arc<[std::sync::atomic::AtomicUsize; 2]> = Arc::default();
        let proxy = tokio::spawn(crate::round_robin::round_robin(
            listener,
            direct.clone(),
            sent.clone(),
        ));
        let mut via = a;
        via.address = proxy_url;
        Replicas {
            via,
            b,
            direct,
            sent,
            _proxy: proxy,
        }
    }
}

/// A throwaway certificate authority and a certificate it issued for 127.0.0.1, made with
/// openssl in `dir`, for a test's local https.
pub struct ThrowawayCa {
    /// The authority's certificate: what a client is told to trust.
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl ThrowawayCa {
    pub async fn make(dir: &std::path::Path) -> ThrowawayCa {
        let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
        std::fs::write(
            path("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let steps = [
            format!(
                "req -x509 {ec} -days 1 -subj /CN=GatehouseTestCA -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -keyout {} -out {}",
                path("ca.key"),
                path("ca.pem")
            ),
            format!(
                "req {ec} -subj /CN=127.0.0.1 -keyout {} -out {}",
                path("key.pem"),
                path("leaf.csr")
            ),
            format!(
                "x509 -req -days 1 -set_serial 2 -in {} -CA {} -CAkey {} -extfile {} -out {}",
                path("leaf.csr"),
                path("ca.pem"),
                path("ca.key"),
                path("leaf.ext"),
                path("cert.pem")
            ),
        ];
        for step in steps {
            // Temporary paths have no spaces: split on them.
            let out = Command::new("openssl")
                .args(step.split(' '))
                .output()
                .await
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {step}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ThrowawayCa {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    pub fn certificate(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap()
    }
}

/// A TLS front (`tests/clients/tls_front.mjs`) on 127.0.0.1:`port` for the http `origin`,
/// with `ca`'s certificate; it serves until dropped.
pub async fn tls_front(ca: &ThrowawayCa, port: u16, origin: &str) -> Child {
    let mut child = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/tls_front.mjs"
        ))
        .arg("--cert")
        .arg(&ca.cert)
        .arg("--key")
        .arg(&ca.key)
        .args(["--port", &port.to_string(), "--to", origin])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let started = announced(&mut child).await;
    assert!(started["port"].is_u64(), "the TLS front did not start");
    child
}

/// The JSON line a helper process prints once it is ready (`{"port": N}`, say).
pub async fn announced(child: &mut Child) -> serde_json::Value {
    let line = BufReader::new(child.stdout.take().expect("stdout piped"))
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap_or_default();
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON line: {line:?}"))
}

/// GET `url` with `http` and read the answer as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// What a client script printed last as a JSON line, once it has exited successfully; its
/// output in the panic otherwise (`what` names it).
pub fn last_json_line(what: &str, output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no result from {what}:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).unwrap()
}
