//! Added latency of the gateway: a `tools/call` proxied through `/mcp` to an upstream MCP
//! server, against the same call made to that upstream directly, at a fixed request rate on
//! loopback. Run with
//!
//!     cargo bench --bench gateway --features ssr
//!
//! The upstream is a second Gatehouse (its `/mcp` is a real rmcp Streamable HTTP server, and
//! its `whoami` tool answers from memory), so both paths end at the same server. Each path has
//! one MCP session, as an AI client would; requests are sent on a fixed schedule (open loop),
//! so a slow answer does not slow the sending down.
//!
//! Then each person's own account: 100 people, each with their own MCP session and API token
//! at the gateway, call the upstream through a per-person connection (each person's grant is
//! their own token at the upstream, so the gateway keeps 100 upstream sessions), against the
//! same 100 people calling through a shared connection (one grant, one upstream session).

use std::time::{Duration, Instant};

use gatehouse::server::auth::api_tokens::{NewTokenRequest, create_token};
use gatehouse::server::auth::{AuthMethod, Identity};
use gatehouse::server::config::RawSettings;
use gatehouse::server::connections::GrantKey;
use gatehouse::server::state::AppState;
use serde_json::{Value, json};

#[path = "support.rs"]
mod support;
use support::percentile;

const RATE_PER_SECOND: u64 = 200;
const RUN_FOR: Duration = Duration::from_secs(10);

/// One MCP session over raw HTTP.
struct Session {
    http: reqwest::Client,
    url: String,
    id: String,
    /// JSON-RPC ids must not repeat within a session.
    next: std::sync::atomic::AtomicI64,
}

fn answer(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
            .expect("an answer in the event stream")
    })
}

impl Session {
    async fn open(http: &reqwest::Client, url: &str) -> Session {
        Session::open_as(http, url, None).await
    }

    /// A session presenting `token` (the client's HTTP client carries it on every request).
    async fn open_as(http: &reqwest::Client, url: &str, token: Option<&str>) -> Session {
        let http = match token {
            Some(token) => {
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {token}").parse().unwrap(),
                );
                reqwest::Client::builder()
                    .default_headers(headers)
                    .build()
                    .unwrap()
            }
            None => http.clone(),
        };
        let response = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let session = Session {
            http,
            url: url.to_string(),
            id,
            next: std::sync::atomic::AtomicI64::new(1),
        };
        session
            .request(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        session
    }

    async fn request(&self, body: Value) -> String {
        let response = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.text().await.unwrap()
    }

    async fn call(&self, tool: &str) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let text = self
            .request(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": tool, "arguments": {}}}))
            .await;
        let v = answer(&text);
        assert!(
            v["result"]["isError"] != json!(true) && v.get("error").is_none(),
            "{v}"
        );
    }
}

/// Calls `tool` at `RATE_PER_SECOND` for `RUN_FOR`; the latencies, sorted.
async fn run(session: std::sync::Arc<Session>, tool: &'static str) -> Vec<Duration> {
    run_all(&[session], tool).await
}

/// The same, the calls taking the sessions in turn.
async fn run_all(sessions: &[std::sync::Arc<Session>], tool: &'static str) -> Vec<Duration> {
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SECOND));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut turn = 0;
    while started.elapsed() < RUN_FOR {
        ticker.tick().await;
        let session = sessions[turn % sessions.len()].clone();
        turn += 1;
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            session.call(tool).await;
            t.elapsed()
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    latencies.sort();
    latencies
}

fn line(label: &str, latencies: &[Duration]) -> (f64, f64) {
    let p50 = percentile(latencies, 0.5).as_secs_f64() * 1e3;
    let p99 = percentile(latencies, 0.99).as_secs_f64() * 1e3;
    println!(
        "  {label:<28} p50 {p50:>6.2} ms   p99 {p99:>6.2} ms   ({} calls)",
        latencies.len()
    );
    (p50, p99)
}

#[tokio::main]
async fn main() {
    let upstream_dir = tempfile::tempdir().unwrap();
    let (upstream, _) = support::start(upstream_dir.path(), RawSettings::default()).await;
    let gateway_dir = tempfile::tempdir().unwrap();
    let (gateway, gateway_state) = support::start(
        gateway_dir.path(),
        RawSettings {
            outbound_allow_private_networks: Some("true".into()),
            ..RawSettings::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{gateway}/api/v0/mcp-servers"))
        .json(&json!({"name": "up", "url": format!("{upstream}/mcp")}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let direct = std::sync::Arc::new(Session::open(&http, &format!("{upstream}/mcp")).await);
    let proxied = std::sync::Arc::new(Session::open(&http, &format!("{gateway}/mcp")).await);
    // Warm both paths (the gateway opens its upstream session on first use).
    for _ in 0..50 {
        direct.call("whoami").await;
        proxied.call("up__whoami").await;
    }
    let direct_latencies = run(direct, "whoami").await;
    let proxied_latencies = run(proxied, "up__whoami").await;
    println!(
        "tools/call at {RATE_PER_SECOND} per second for {} s:",
        RUN_FOR.as_secs()
    );
    let (d50, d99) = line("upstream directly", &direct_latencies);
    let (p50, p99) = line("through Gatehouse's /mcp", &proxied_latencies);
    println!(
        "  {:<28} p50 {:>6.2} ms   p99 {:>6.2} ms",
        "added by the gateway",
        p50 - d50,
        p99 - d99
    );
    people(&http, &upstream, &gateway, &gateway_state).await;
}

const PEOPLE: usize = 100;

/// 100 people through a per-person connection, against the same people through a shared one.
async fn people(http: &reqwest::Client, upstream: &str, gateway: &str, state: &AppState) {
    // Each person's account at the upstream: an API token of its own there.
    let mut upstream_tokens = Vec::new();
    for i in 0..=PEOPLE {
        let created: Value = http
            .post(format!("{upstream}/api/v0/settings/mcp/tokens"))
            .json(&json!({"name": format!("person-{i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        upstream_tokens.push(created["token"].as_str().unwrap().to_string());
    }
    let mine = support::seed_bare_connection(http, gateway, "mine", true).await;
    let shared = support::seed_bare_connection(http, gateway, "shared", false).await;
    support::seed_grant(state, GrantKey::shared(&shared), &upstream_tokens[PEOPLE]).await;
    for (server, connection) in [("mine", &mine), ("shared", &shared)] {
        let created = http
            .post(format!("{gateway}/api/v0/mcp-servers"))
            .json(&json!({"name": server, "url": format!("{upstream}/mcp"), "auth": "connection", "connection_id": connection}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    // Each person: their grant of `mine`, and an MCP client of their own at the gateway.
    let mut sessions = Vec::new();
    for (i, upstream_token) in upstream_tokens.iter().take(PEOPLE).enumerate() {
        let person = format!("person-{i}@example.com");
        support::seed_grant(state, GrantKey::person(&mine, &person), upstream_token).await;
        let creator = Identity {
            subject: person.clone(),
            method: AuthMethod::Anonymous,
            session_id: None,
            expires_at: None,
            role: gatehouse::model::session::Role::Member,
            admin_groups: Vec::new(),
        };
        let token = create_token(
            state,
            NewTokenRequest {
                name: "bench".into(),
                scopes: None,
                expires_in_days: None,
                expires_at: None,
            },
            &creator,
        )
        .await
        .unwrap();
        let session = Session::open_as(http, &format!("{gateway}/mcp"), Some(&token.value)).await;
        sessions.push(std::sync::Arc::new(session));
    }
    // Warm: every person's upstream session opened, and each answers as its person.
    for session in &sessions {
        session.call("mine__whoami").await;
        session.call("shared__whoami").await;
    }
    let shared_latencies = run_all(&sessions, "shared__whoami").await;
    let mine_latencies = run_all(&sessions, "mine__whoami").await;
    println!(
        "{PEOPLE} people, tools/call at {RATE_PER_SECOND} per second for {} s, the calls taking the people in turn:",
        RUN_FOR.as_secs()
    );
    let (s50, s99) = line("a shared connection", &shared_latencies);
    let (m50, m99) = line("each on their own grant", &mine_latencies);
    println!(
        "  {:<28} p50 {:>6.2} ms   p99 {:>6.2} ms",
        "per person, added",
        m50 - s50,
        m99 - s99
    );
}
