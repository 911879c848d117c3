//! Load benchmark for `/mcp`: the cost of one API-token check, and `tools/list` requests per
//! second with a token, in both protocol eras. Run with
//!
//!     cargo bench --bench mcp --features ssr
//!
//! The server and the load generator share the machine (and, on two cores, compete for it), so
//! the numbers are a floor for a dedicated host. Results go to stdout; the README quotes them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatehouse::server::auth::api_tokens::{ApiTokens, generate};
use gatehouse::server::clock::{Clock, SystemClock};
use gatehouse::server::config::{DatabaseConfig, RawSettings};
use gatehouse::server::db::Db;
use gatehouse::server::db::api_tokens::ApiTokenRow;
use gatehouse::server::secrets::sha256_hex;
use serde_json::{Value, json};

#[path = "support.rs"]
mod support;
use support::percentile;

const CONCURRENCY: usize = 16;
const RUN_FOR: Duration = Duration::from_secs(5);

async fn token_check(dir: &std::path::Path) {
    let db = Db::connect(&DatabaseConfig::sqlite_file(dir.join("bench.db")))
        .await
        .unwrap();
    let now = SystemClock.now();
    let mut presented = String::new();
    for i in 0..1_000 {
        let t = generate();
        db.insert_api_token(&ApiTokenRow {
            id: format!("t{i}"),
            name: format!("token {i}"),
            token_hash: t.hash,
            hint: t.hint,
            scopes: "mcp".into(),
            created_by: "bench".into(),
            creator_admin_groups: String::new(),
            created_at: now,
            last_used_at: None,
            expires_at: None,
        })
        .await
        .unwrap();
        presented = t.value;
    }
    // A fresh cache every time: the database lookup, as for a token's first request.
    let n = 20_000;
    let started = Instant::now();
    for _ in 0..n {
        ApiTokens::default()
            .verify(&db, &presented, now)
            .await
            .unwrap()
            .unwrap();
    }
    let uncached = started.elapsed() / n;
    // One cache: every later request of a busy client within the cache lifetime.
    let tokens = ApiTokens::default();
    tokens.verify(&db, &presented, now).await.unwrap().unwrap();
    let started = Instant::now();
    for _ in 0..n {
        tokens.verify(&db, &presented, now).await.unwrap().unwrap();
    }
    let cached = started.elapsed() / n;

    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(sha256_hex(std::hint::black_box(&presented)));
    }
    let per_hash = started.elapsed() / n;

    println!(
        "API token check, 1,000 tokens in the database (SHA-256 of the token: {:.1} µs):",
        per_hash.as_secs_f64() * 1e6
    );
    println!(
        "  {:>8.1} µs first check (indexed SQLite lookup)",
        uncached.as_secs_f64() * 1e6
    );
    println!(
        "  {:>8.1} µs later checks (verified within the last 5 s)",
        cached.as_secs_f64() * 1e6
    );
}

struct Load {
    requests: AtomicU64,
    errors: AtomicU64,
}

async fn tools_list_load(url: String, token: String, modern: bool) -> (f64, Vec<Duration>, u64) {
    let load = Arc::new(Load {
        requests: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (url, token, load, stop) = (url.clone(), token.clone(), load.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut session = None;
            if !modern {
                let init = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("accept", "application/json, text/event-stream")
                    .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}))
                    .send()
                    .await
                    .unwrap();
                session = Some(init.headers()["mcp-session-id"].to_str().unwrap().to_string());
                let _ = init.text().await;
            }
            let body = if modern {
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {}}}})
            } else {
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            };
            while !stop.load(Ordering::Relaxed) {
                let mut request = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("accept", "application/json, text/event-stream");
                request = match &session {
                    Some(s) => request.header("mcp-session-id", s).header("mcp-protocol-version", "2025-11-25"),
                    None => request.header("mcp-protocol-version", "2026-07-28").header("mcp-method", "tools/list"),
                };
                let started = Instant::now();
                let ok = match request.json(&body).send().await {
                    Ok(r) if r.status().is_success() => r.text().await.is_ok_and(|t| t.contains("whoami")),
                    _ => false,
                };
                latencies.push(started.elapsed());
                load.requests.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    load.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(RUN_FOR).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    (
        load.requests.load(Ordering::Relaxed) as f64 / elapsed,
        all,
        load.errors.load(Ordering::Relaxed),
    )
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    token_check(dir.path()).await;

    let (base, _) = support::start(dir.path(), RawSettings::default()).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/api/v0/settings/mcp/tokens"))
        .json(&json!({"name": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    client
        .put(format!("{base}/api/v0/settings/mcp"))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();

    for (label, modern) in [
        ("2026-07-28 (stateless, JSON)", true),
        ("2025-11-25 (session, SSE)", false),
    ] {
        let (rps, latencies, errors) =
            tools_list_load(format!("{base}/mcp"), token.clone(), modern).await;
        println!(
            "tools/list with a Bearer token, {label}, {CONCURRENCY} concurrent clients, {}s:",
            RUN_FOR.as_secs()
        );
        println!(
            "  {rps:>8.0} requests/s   p50 {:.2} ms   p99 {:.2} ms   errors {errors}",
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
    }
}
