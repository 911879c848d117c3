//! Shared by the load benchmarks: the server under test, latency percentiles and the report
//! line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::server::clock::SystemClock;
use gatehouse::server::config::{Config, RawSettings};
use gatehouse::server::connections::GrantKey;
use gatehouse::server::startup::Application;
use gatehouse::server::state::AppState;

/// Starts the real server on a free loopback port with its SQLite file in `dir`, serving in
/// the background; `settings` adds to that. Returns its base URL and state.
#[allow(dead_code)]
pub async fn start(dir: &Path, settings: RawSettings) -> (String, AppState) {
    start_on(
        &format!("sqlite://{}/gatehouse.db", dir.display()),
        settings,
    )
    .await
}

/// The same on any store.
#[allow(dead_code)]
pub async fn start_on(database_url: &str, settings: RawSettings) -> (String, AppState) {
    let settings = RawSettings {
        listen_addr: Some("127.0.0.1:0".into()),
        database_url: Some(database_url.into()),
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

/// A connection with a stored day-long grant (as a callback stores it): its id.
#[allow(dead_code)]
pub async fn seed_connection(http: &reqwest::Client, base: &str, state: &AppState) -> String {
    let id = seed_bare_connection(http, base, "bench", false).await;
    store_grant(
        state,
        GrantKey::shared(&id),
        "bench-access-token",
        Some("bench-refresh-token"),
        Some(86_400),
    )
    .await;
    id
}

/// A connection (`per_person`: one grant per person) to a provider nobody calls: its id.
#[allow(dead_code)]
pub async fn seed_bare_connection(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    per_person: bool,
) -> String {
    let created: serde_json::Value = http
        .post(format!("{base}/api/v0/connections"))
        .json(&serde_json::json!({
            "name": name,
            "client_id": "c",
            "client_secret": "s",
            "authorization_url": "https://provider.example/authorize",
            "token_url": "https://provider.example/token",
            "per_person": per_person,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_string()
}

/// Stores `access_token` as a grant that never expires (as a callback stores one).
#[allow(dead_code)]
pub async fn seed_grant(state: &AppState, key: GrantKey<'_>, access_token: &str) {
    store_grant(state, key, access_token, None, None).await
}

/// Stores a grant as a callback stores one.
async fn store_grant(
    state: &AppState,
    key: GrantKey<'_>,
    access_token: &str,
    refresh_token: Option<&str>,
    expires_in: Option<i64>,
) {
    use gatehouse::server::connections::provider_client::TokenResponse;
    use gatehouse::server::secrets::SecretString;
    let now = state.now();
    let grant = state.sealed_grant(
        key,
        TokenResponse {
            access_token: SecretString::new(access_token),
            refresh_token: refresh_token.map(SecretString::new),
            token_type: "Bearer".into(),
            scope: None,
            expires_in,
        },
        None,
        now,
    );
    state
        .db
        .store_connection_grant(key, &grant, None, None, now)
        .await
        .unwrap();
}
