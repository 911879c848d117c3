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

use std::time::{Duration, Instant};

use gatehouse::server::config::RawSettings;
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
            http: http.clone(),
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
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SECOND));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    while started.elapsed() < RUN_FOR {
        ticker.tick().await;
        let session = session.clone();
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
    let (gateway, _) = support::start(
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
}
