//! Shared by the load benchmarks: the server under test, latency percentiles and the report
//! line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::server::clock::SystemClock;
use gatehouse::server::config::{Config, RawSettings};
use gatehouse::server::startup::Application;
use gatehouse::server::state::AppState;

/// Starts the real server on a free loopback port with its SQLite file in `dir`, serving in
/// the background; `settings` adds to that. Returns its base URL and state.
#[allow(dead_code)]
pub async fn start(dir: &Path, settings: RawSettings) -> (String, AppState) {
    let settings = RawSettings {
        listen_addr: Some("127.0.0.1:0".into()),
        database_url: Some(format!("sqlite://{}/gatehouse.db", dir.display())),
        ..settings
    };
    let app = Application::build(Config::parse(&settings).unwrap(), Arc::new(SystemClock))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    (base, state)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[allow(dead_code)]
pub fn report(
    label: &str,
    concurrency: usize,
    count: usize,
    elapsed: Duration,
    mut latencies: Vec<Duration>,
) {
    latencies.sort();
    println!("{label}, {concurrency} concurrent clients:");
    println!(
        "  {:>8.0} per second   p50 {:.2} ms   p99 {:.2} ms   ({count} in {:.1} s)",
        count as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        elapsed.as_secs_f64(),
    );
}
