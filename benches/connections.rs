//! Load benchmark for the worker token API: `POST /api/v0/connections/{id}/token` with an
//! API token, answered from a stored (cached) access token. Run with
//!
//!     cargo bench --bench connections --features ssr
//!
//! Each request verifies the API token, reads the grant and opens the sealed access token.
//! Server and load share the machine.

use std::time::{Duration, Instant};

use gatehouse::server::config::RawSettings;
use serde_json::{Value, json};

#[path = "support.rs"]
mod support;
use support::report;

const CONCURRENCY: usize = 16;
const RUN_FOR: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (base, state) = support::start(
        dir.path(),
        RawSettings {
            connections_refresh_interval: Some("0".into()),
            ..RawSettings::default()
        },
    )
    .await;
    let http = reqwest::Client::new();

    let id = support::seed_connection(&http, &base, &state).await;
    let worker: Value = http
        .post(format!("{base}/api/v0/settings/mcp/tokens"))
        .json(&json!({"name": "worker", "scopes": ["connections:token"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let worker = worker["token"].as_str().unwrap().to_string();
    let url = format!("{base}/api/v0/connections/{id}/token");

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, url, worker) = (http.clone(), url.clone(), worker.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < RUN_FOR {
                let t = Instant::now();
                let response = http.post(&url).bearer_auth(&worker).send().await.unwrap();
                assert_eq!(response.status(), 200);
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
    let count = latencies.len();
    report(
        "token API, cached access token",
        CONCURRENCY,
        count,
        started.elapsed(),
        latencies,
    );
}
