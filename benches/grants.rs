//! Token grants side by side: Gatehouse's authorization server against oidc-provider (the
//! reference implementation the tests already use), driven by the same load generator.
//!
//!     cargo bench --no-default-features --features ssr --bench grants
//!
//! Both servers run as their own processes on loopback: Gatehouse's release binary on a fresh
//! SQLite file (or on PostgreSQL with `GRANTS_DATABASE_URL=postgres://…`), oidc-provider with
//! its in-memory storage (end2end/support/oidc-provider.mjs). For each, the generator
//! 1. registers `CHAINS` public clients (RFC 7591) and signs each in once through the login
//!    and consent pages, as a browser would;
//! 2. authorizes again (the consent is remembered) and exchanges the codes (authorization_code
//!    with PKCE S256), `CHAINS` at a time, in rounds of ten codes per chain, `CODES` in all;
//! 3. runs `CHAINS` refresh-token chains for `SECONDS` seconds, each presenting the token the
//!    previous rotation returned.
//!
//! It prints throughput and latency for both and their ratio. Settings: `GRANTS_CHAINS` (16),
//! `GRANTS_CODES` (2,000), `GRANTS_SECONDS` (10).

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::server::secrets::random_bytes;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[path = "support.rs"]
#[allow(dead_code)]
mod support;

const REDIRECT: &str = "http://127.0.0.1:33418/callback";
const PASSWORD: &str = "bench password";
/// Codes a chain holds at once.
const ROUND: usize = 10;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One authorization server under load: how to register, sign in, authorize and exchange.
#[derive(Clone)]
struct Server {
    name: &'static str,
    http: reqwest::Client,
    base: String,
    token_url: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// The Gatehouse session cookie of the basic-auth user.
    Gatehouse {
        session: String,
    },
    OidcProvider,
}

/// The state of one chain: its client, its cookies at the server, its latest refresh token.
struct Chain {
    client_id: String,
    cookies: HashMap<String, String>,
}

struct Code {
    code: String,
    verifier: String,
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn cookie_header(cookies: &HashMap<String, String>) -> String {
    cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn keep_cookies(cookies: &mut HashMap<String, String>, response: &reqwest::Response) {
    for value in response.headers().get_all(SET_COOKIE) {
        let value = value.to_str().unwrap();
        let pair = value.split(';').next().unwrap();
        let (name, v) = pair.split_once('=').unwrap();
        if v.is_empty() || value.contains("expires=Thu, 01 Jan 1970") {
            cookies.remove(name);
        } else {
            cookies.insert(name.to_string(), v.to_string());
        }
    }
}

impl Server {
    async fn get(&self, chain: &mut Chain, url: &str) -> reqwest::Response {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        };
        let response = self
            .http
            .get(&url)
            .header(COOKIE, cookie_header(&chain.cookies))
            .send()
            .await
            .unwrap();
        keep_cookies(&mut chain.cookies, &response);
        response
    }

    async fn post_form(
        &self,
        chain: &mut Chain,
        url: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let response = self
            .http
            .post(format!("{}{url}", self.base))
            .header(COOKIE, cookie_header(&chain.cookies))
            .form(form)
            .send()
            .await
            .unwrap();
        keep_cookies(&mut chain.cookies, &response);
        response
    }

    async fn new_chain(&self, n: usize) -> Chain {
        let (url, body) = match &self.kind {
            Kind::Gatehouse { .. } => (
                format!("{}/mcp/oauth/register", self.base),
                json!({"client_name": format!("bench {n}"), "redirect_uris": [REDIRECT],
                       "application_type": "native"}),
            ),
            Kind::OidcProvider => (
                format!("{}/reg", self.base),
                json!({"client_name": format!("bench {n}"), "redirect_uris": [REDIRECT],
                       "application_type": "native", "token_endpoint_auth_method": "none",
                       "grant_types": ["authorization_code", "refresh_token"],
                       "response_types": ["code"]}),
            ),
        };
        let response = self.http.post(url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201, "{}: registration", self.name);
        let registered: Value = response.json().await.unwrap();
        let mut cookies = HashMap::new();
        if let Kind::Gatehouse { session } = &self.kind {
            cookies.insert("gatehouse_session".to_string(), session.clone());
        }
        Chain {
            client_id: registered["client_id"].as_str().unwrap().to_string(),
            cookies,
        }
    }

    /// One authorization request, through whatever pages the server shows, to the code.
    async fn authorize(&self, chain: &mut Chain) -> Code {
        let (verifier, challenge) = pkce();
        let mut query = vec![
            ("response_type", "code".to_string()),
            ("client_id", chain.client_id.clone()),
            ("redirect_uri", REDIRECT.to_string()),
            ("state", "bench".to_string()),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256".to_string()),
        ];
        let path = match self.kind {
            Kind::Gatehouse { .. } => {
                query.push(("scope", "mcp".into()));
                query.push(("resource", format!("{}/mcp", self.base)));
                "/mcp/oauth/authorize"
            }
            Kind::OidcProvider => {
                query.push(("scope", "read".into()));
                "/auth"
            }
        };
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), &query)
            .unwrap()
            .to_string();
        let mut response = self.get(chain, &url).await;
        for _ in 0..10 {
            let location = match response.headers().get(LOCATION) {
                Some(l) => l.to_str().unwrap().to_string(),
                None => {
                    let status = response.status().as_u16();
                    let page = response.text().await.unwrap();
                    response = self.answer_page(chain, status, &page).await;
                    continue;
                }
            };
            if let Some(query) = location.strip_prefix(&format!("{REDIRECT}?")) {
                let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
                let code = params
                    .get("code")
                    .unwrap_or_else(|| panic!("{}: no code in {location}", self.name));
                return Code {
                    code: code.clone(),
                    verifier,
                };
            }
            response = self.get(chain, &location).await;
        }
        panic!("{}: the authorization did not end in a code", self.name);
    }

    /// A page the browser would fill in: the login or the consent form.
    async fn answer_page(&self, chain: &mut Chain, status: u16, page: &str) -> reqwest::Response {
        assert_eq!(status, 200, "{}: {page}", self.name);
        let field = |name: &str| {
            attribute_of(page, &format!("name=\"{name}\""), "value")
                .unwrap_or_else(|| panic!("no {name} in {page}"))
        };
        match self.kind {
            Kind::Gatehouse { .. } => {
                let (request, csrf) = (field("request"), field("csrf"));
                self.post_form(
                    chain,
                    "/mcp/oauth/consent",
                    &[
                        ("request", &request),
                        ("csrf", &csrf),
                        ("decision", "allow"),
                    ],
                )
                .await
            }
            Kind::OidcProvider => {
                let action = attribute_of(page, "action=\"/interaction/", "action")
                    .filter(|a| a.ends_with("/login"))
                    .unwrap_or_else(|| panic!("no login form in {page}"));
                self.post_form(chain, &action, &[("email", "bench@example.com")])
                    .await
            }
        }
    }

    async fn exchange(&self, client_id: &str, code: &Code) -> String {
        let response = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code.code),
                ("redirect_uri", REDIRECT),
                ("client_id", client_id),
                ("code_verifier", &code.verifier),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{}: code exchange: {body}", self.name);
        body["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no refresh token: {body}", self.name))
            .to_string()
    }

    async fn rotate(&self, client_id: &str, token: &str) -> String {
        let response = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", client_id),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{}: refresh: {body}", self.name);
        body["refresh_token"].as_str().unwrap().to_string()
    }
}

struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    count: usize,
}

fn measure(started: Instant, latencies: Vec<Duration>) -> Measured {
    summarize(started.elapsed(), latencies)
}

fn summarize(elapsed: Duration, mut latencies: Vec<Duration>) -> Measured {
    latencies.sort();
    Measured {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: support::percentile(&latencies, 0.50),
        p99: support::percentile(&latencies, 0.99),
        count: latencies.len(),
    }
}

struct Results {
    sign_ins: Duration,
    exchanges: Measured,
    rotations: Measured,
}

async fn run(server: &Server, chains: usize, codes: usize, seconds: u64) -> Results {
    // 1. Each chain signs in once through the pages.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..chains {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut chain = server.new_chain(n).await;
            let first = server.authorize(&mut chain).await;
            (chain, first)
        }));
    }
    let mut signed_in = Vec::new();
    for t in tasks {
        signed_in.push(t.await.unwrap());
    }
    let sign_ins = started.elapsed();

    // 2. Codes in rounds of ROUND per chain (oidc-provider's in-memory storage keeps the
    //    last 1,000 objects, so a code held longer may be gone): each round authorizes again
    //    (the consent is remembered), then exchanges its codes. Only the exchanges are timed.
    let rounds = codes.div_ceil(chains * ROUND).max(1);
    let mut chains_now: Vec<(Chain, Vec<Code>)> = signed_in
        .into_iter()
        .map(|(c, first)| (c, vec![first]))
        .collect();
    let mut latencies = Vec::new();
    let mut timed = Duration::ZERO;
    let mut heads = Vec::new();
    for _ in 0..rounds {
        let mut tasks = Vec::new();
        for (mut chain, mut held) in chains_now.drain(..) {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                while held.len() < ROUND {
                    held.push(server.authorize(&mut chain).await);
                }
                (chain, held)
            }));
        }
        let mut holding = Vec::new();
        for t in tasks {
            holding.push(t.await.unwrap());
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (chain, held) in holding {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(held.len());
                let mut refresh = String::new();
                for code in &held {
                    let t = Instant::now();
                    refresh = server.exchange(&chain.client_id, code).await;
                    latencies.push(t.elapsed());
                }
                (chain, refresh, latencies)
            }));
        }
        heads.clear();
        for t in tasks {
            let (chain, refresh, l) = t.await.unwrap();
            latencies.extend(l);
            heads.push((chain.client_id.clone(), refresh));
            chains_now.push((chain, Vec::new()));
        }
        timed += started.elapsed();
    }
    let exchanges = summarize(timed, latencies);

    // 3. Refresh chains for a fixed time.
    let started = Instant::now();
    let run_for = Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (client, mut token) in heads {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < run_for {
                let t = Instant::now();
                token = server.rotate(&client, &token).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    Results {
        sign_ins,
        exchanges,
        rotations: measure(started, latencies),
    }
}

/// The value of `attribute` in the first tag of `page` that contains `marker`.
fn attribute_of(page: &str, marker: &str, attribute: &str) -> Option<String> {
    let at = page.find(marker)?;
    let start = page[..at].rfind('<')?;
    let end = at + page[at..].find('>')?;
    let tag = &page[start..end];
    let key = format!("{attribute}=\"");
    let from = tag.find(&key)? + key.len();
    let value = &tag[from..from + tag[from..].find('"')?];
    Some(value.replace("&amp;", "&"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until_up(http: &reqwest::Client, url: &str, child: &mut Child) {
    for _ in 0..300 {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{url}: the server exited ({status})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

async fn start_gatehouse(http: &reqwest::Client, data: &std::path::Path) -> (Child, Server) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = std::env::var("GRANTS_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/gatehouse.db", data.display()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", database)
        .env("AUTH_TYPE", "basic")
        .env("AUTH_BASIC_USERNAME", "admin")
        .env("AUTH_BASIC_PASSWORD", PASSWORD)
        .env("SECRET_KEY", "bench-secret-key-0123456789abcdef0123456789")
        .env("MCP_OAUTH_ENABLED", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the gatehouse binary runs");
    wait_until_up(http, &format!("{base}/healthz"), &mut child).await;
    let login = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "login: {}", login.status());
    // The JSON sign-in answers with the session token; browsers get it as this cookie.
    let signed_in: Value = login.json().await.unwrap();
    let session = signed_in["token"].as_str().unwrap().to_string();
    let server = Server {
        name: "Gatehouse",
        http: http.clone(),
        token_url: format!("{base}/mcp/oauth/token"),
        base,
        kind: Kind::Gatehouse { session },
    };
    (child, server)
}

async fn start_oidc_provider(
    http: &reqwest::Client,
    name: &'static str,
    format: &str,
) -> (Child, Server) {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut child = Command::new("node")
        .arg(format!("{root}/end2end/support/oidc-provider.mjs"))
        .args(["--connections", "--access-token-format", format])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/setup.sh --tests installs oidc-provider)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines
        .next_line()
        .await
        .unwrap()
        .expect("oidc-provider starts");
    // Read on: a closed pipe would kill it at its next line.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let started: Value = serde_json::from_str(&first).unwrap();
    let issuer = started["issuer"].as_str().unwrap().to_string();
    wait_until_up(
        http,
        &format!("{issuer}/.well-known/openid-configuration"),
        &mut child,
    )
    .await;
    let server = Server {
        name,
        http: http.clone(),
        token_url: format!("{issuer}/token"),
        base: issuer,
        kind: Kind::OidcProvider,
    };
    (child, server)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let chains = setting("GRANTS_CHAINS", 16);
    let codes = setting("GRANTS_CODES", 2_000);
    let seconds = setting("GRANTS_SECONDS", 10) as u64;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(chains * 2)
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();

    let mut results = Vec::new();
    // The reference, twice: with RFC 9068 JWT access tokens (what Gatehouse issues: signed,
    // checked without a lookup) and with its default opaque ones (kept in its memory).
    for (name, format) in [
        ("oidc-provider, JWT access tokens", "jwt"),
        ("oidc-provider, opaque access tokens", "opaque"),
    ] {
        if std::env::var("GRANTS_ONLY_GATEHOUSE").is_ok() {
            break;
        }
        let (_child, server) = start_oidc_provider(&http, name, format).await;
        results.push((name, run(&server, chains, codes, seconds).await));
    }
    {
        let (_child, server) = start_gatehouse(&http, data.path()).await;
        let store = if std::env::var("GRANTS_DATABASE_URL").is_ok() {
            "Gatehouse, PostgreSQL"
        } else {
            "Gatehouse, SQLite"
        };
        results.push((store, run(&server, chains, codes, seconds).await));
    }
    println!();
    println!(
        "{chains} chains, {codes} codes, {seconds} s of refreshes; one machine, one load generator"
    );
    println!(
        "| server | sign-ins (login + consent) | code exchanges/s | p50 | p99 | rotations/s | p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, r) in &results {
        println!(
            "| {name} | {} for {chains} | {:.0} | {} | {} | {:.0} | {} | {} |",
            ms(r.sign_ins),
            r.exchanges.per_second,
            ms(r.exchanges.p50),
            ms(r.exchanges.p99),
            r.rotations.per_second,
            ms(r.rotations.p50),
            ms(r.rotations.p99),
        );
    }
    let (ours_name, ours) = results.last().unwrap();
    for (name, reference) in &results[..results.len() - 1] {
        // (none with GRANTS_ONLY_GATEHOUSE set: a quicker loop while tuning)
        println!(
            "{ours_name} / {name}: code exchanges {:.2}× (p99 {:.2}×), rotations {:.2}× (p99 {:.2}×)",
            ours.exchanges.per_second / reference.exchanges.per_second,
            ours.exchanges.p99.as_secs_f64() / reference.exchanges.p99.as_secs_f64(),
            ours.rotations.per_second / reference.rotations.per_second,
            ours.rotations.p99.as_secs_f64() / reference.rotations.p99.as_secs_f64(),
        );
    }
    println!(
        "{ours_name}: {} exchanges, {} rotations measured",
        ours.exchanges.count, ours.rotations.count
    );
}
