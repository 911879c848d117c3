//! Stores and replicas side by side, in one run: the worker token API and `tools/list`
//! (2026-07-28, stateless) on SQLite, on PostgreSQL with one replica, and on PostgreSQL with
//! two replicas behind a round-robin proxy; then resident memory with 10,000 idle 2025-era
//! sessions. Run with
//!
//!     cargo bench --bench replicas --features ssr
//!
//! It starts a throw-away PostgreSQL with scripts/postgres.sh. Server, proxy, database and
//! load share the machine (two cores here), so the two-replica numbers measure the overhead
//! of the extra hop and process more than any gain from a second machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse::server::config::RawSettings;
use gatehouse::server::state::AppState;
use serde_json::{Value, json};

#[path = "../tests/support/round_robin.rs"]
mod round_robin;
#[path = "support.rs"]
mod support;
use support::report;

const CONCURRENCY: usize = 16;
const RUN_FOR: Duration = Duration::from_secs(5);
const KEY: &str = "benchmark-secret-key-0123456789abcdef";

async fn start(database_url: &str, public_url: Option<&str>) -> (String, AppState) {
    start_with(database_url, public_url, RawSettings::default()).await
}

async fn start_with(
    database_url: &str,
    public_url: Option<&str>,
    extra: RawSettings,
) -> (String, AppState) {
    let settings = RawSettings {
        secret_key: Some(KEY.into()),
        public_url: public_url.map(str::to_string),
        connections_refresh_interval: Some("0".into()),
        data_dir: Some(std::env::temp_dir().display().to_string()),
        ..extra
    };
    support::start_on(database_url, settings).await
}

/// A connection with a stored day-long grant, and an API token for the worker API and `/mcp`.
async fn seed(base: &str, state: &AppState) -> (String, String) {
    let http = reqwest::Client::new();
    let id = support::seed_connection(&http, base, state).await;
    let token: Value = http
        .post(format!("{base}/api/v0/settings/mcp/tokens"))
        .json(&json!({"name": "bench", "scopes": ["connections:token", "mcp"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (id, token["token"].as_str().unwrap().to_string())
}

/// `CONCURRENCY` clients sending `request` for `RUN_FOR`.
async fn load<F>(label: &str, request: F)
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + Clone + 'static,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut latencies = Vec::new();
            while started.elapsed() < RUN_FOR {
                let t = Instant::now();
                let response = request(&http).send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    report(
        label,
        CONCURRENCY,
        latencies.len(),
        started.elapsed(),
        latencies,
    );
}

async fn measure(setup: &str, base: &str, id: &str, token: &str) {
    let url = format!("{base}/api/v0/connections/{id}/token");
    let t = token.to_string();
    load(&format!("{setup}: worker token API"), move |http| {
        http.post(&url).bearer_auth(&t)
    })
    .await;
    let url = format!("{base}/mcp");
    let t = token.to_string();
    load(&format!("{setup}: tools/list (2026-07-28)"), move |http| {
        http.post(&url)
            .bearer_auth(&t)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}}}}),
            )
    })
    .await;
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Opens `n` 2025-era sessions (initialize, then nothing) and reports the growth in resident
/// memory of this process (server and load generator both live here).
async fn idle_sessions(base: &str, token: &str, n: usize) {
    let before = resident_kib();
    let started = Instant::now();
    let http = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = n / CONCURRENCY;
    for _ in 0..CONCURRENCY {
        let (http, url, token) = (http.clone(), format!("{base}/mcp"), token.to_string());
        tasks.spawn(async move {
            for _ in 0..per_task {
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("accept", "application/json, text/event-stream")
                    .json(
                        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                        "protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": "bench", "version": "1"}}}),
                    )
                    .send()
                    .await
                    .unwrap();
                let opened = r.headers().contains_key("mcp-session-id");
                let status = r.status();
                let body = r.text().await.unwrap();
                assert!(opened, "{status}: {body}");
            }
        });
    }
    tasks.join_all().await;
    let after = resident_kib();
    println!(
        "{n} idle 2025-era sessions (one caller, cap raised to {n}): opened in {:.1} s; resident memory {} MiB -> {} MiB ({:+.1} KiB per session)",
        started.elapsed().as_secs_f64(),
        before / 1024,
        after / 1024,
        (after as f64 - before as f64) / n as f64,
    );
}

#[tokio::main]
async fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let pg_dir = tempfile::tempdir().unwrap().keep();
    let admin = String::from_utf8(
        std::process::Command::new(format!("{root}/scripts/postgres.sh"))
            .args(["start", &pg_dir.display().to_string()])
            .output()
            .expect("scripts/postgres.sh runs")
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let create = |name: &str| {
        let admin = admin.clone();
        let name = name.to_string();
        async move {
            use sqlx::Connection;
            let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            format!("{admin}/{name}")
        }
    };

    // SQLite, one process.
    let dir = tempfile::tempdir().unwrap();
    let (base, state) = start(&format!("sqlite://{}/g.db", dir.path().display()), None).await;
    let (id, token) = seed(&base, &state).await;
    measure("SQLite", &base, &id, &token).await;

    // PostgreSQL, one replica.
    let one = create("bench_one").await;
    let (base, state) = start(&one, None).await;
    let (id, token) = seed(&base, &state).await;
    measure("PostgreSQL, 1 replica", &base, &id, &token).await;

    // PostgreSQL, two replicas behind the proxy.
    let two = create("bench_two").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let (a, state) = start(&two, Some(&proxy)).await;
    let (b, _) = start(&two, Some(&proxy)).await;
    tokio::spawn(round_robin::round_robin(listener, [a, b], Arc::default()));
    let (id, token) = seed(&proxy, &state).await;
    measure("PostgreSQL, 2 replicas behind a proxy", &proxy, &id, &token).await;

    // Memory: a fresh SQLite instance whose one caller may keep 10,000 sessions.
    let dir = tempfile::tempdir().unwrap();
    let settings_db = format!("sqlite://{}/m.db", dir.path().display());
    let (base, state) = start_with(
        &settings_db,
        None,
        RawSettings {
            mcp_max_sessions_per_caller: Some("10000".into()),
            ..RawSettings::default()
        },
    )
    .await;
    let (_, token) = seed(&base, &state).await;
    idle_sessions(&base, &token, 10_000).await;

    let _ = std::process::Command::new(format!("{root}/scripts/postgres.sh"))
        .args(["stop", &pg_dir.display().to_string()])
        .status();
}
