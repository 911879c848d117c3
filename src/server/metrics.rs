//! Prometheus metrics, through the `metrics` facade and its Prometheus exporter (no
//! hand-written exposition format).
//!
//! Counters and histograms are recorded where things happen (the HTTP layer, the gateway, the
//! connection broker, the authorization server); gauges of the moment (open MCP sessions, the
//! database pool) are read when `/metrics` is scraped. Labels are bounded sets: route
//! templates, never raw paths; server, tool and connection ids an admin created.
//!
//! Who may read it is its own setting (`METRICS_TOKEN`, or `METRICS_LISTEN_ADDR` for a
//! separate listener); neither set, there is no `/metrics`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::model::mcp_servers::{UPSTREAM_WINDOW_CALLS, UpstreamCallsView};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from a cached list (a millisecond) to a slow upstream.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder, installed on first use. One per process: the integration tests'
/// many instances share it, as do replicas' metrics nowhere (each process scrapes its own).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("latency buckets are not empty")
            .install_recorder()
            .expect("Gatehouse installs the only metrics recorder");
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        "gatehouse_http_requests_total",
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        "gatehouse_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and route template."
    );
    describe_counter!(
        "gatehouse_mcp_tool_calls_total",
        "Tool calls relayed to upstream MCP servers, by server, tool and outcome (ok, tool_error, failed, needs_input)."
    );
    describe_histogram!(
        "gatehouse_upstream_call_duration_seconds",
        metrics::Unit::Seconds,
        "Time an upstream MCP server took to answer a tool call, by server."
    );
    describe_counter!(
        "gatehouse_connection_refreshes_total",
        "Connection token refreshes, by connection id and outcome (ok, failing, needs_reauth)."
    );
    describe_gauge!(
        "gatehouse_connection_last_refresh_timestamp_seconds",
        metrics::Unit::Seconds,
        "When this process last refreshed a connection's token (any person's grant), by connection id, in Unix seconds."
    );
    describe_counter!(
        "gatehouse_oauth_grants_total",
        "Tokens issued by Gatehouse's authorization server, by grant type."
    );
    describe_gauge!(
        "gatehouse_mcp_sessions_open",
        "MCP sessions (2025-era) used within the idle limit, on every replica."
    );
    describe_gauge!(
        "gatehouse_db_pool_connections",
        "This process's database connections, by state (open, idle)."
    );
}

/// An HTTP request answered.
pub fn http_request(method: &str, route: &str, status: u16, seconds: f64) {
    let (method, route) = (method.to_string(), route.to_string());
    counter!(
        "gatehouse_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    histogram!(
        "gatehouse_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(seconds);
}

/// A tool call relayed to the server `server_id` named `server`, and how long the upstream
/// took (`None`: it was never reached).
pub fn tool_call(
    server_id: &str,
    server: &str,
    tool: &str,
    outcome: &'static str,
    seconds: Option<f64>,
) {
    if outcome != "needs_connect" {
        // Nobody's fault upstream: the caller has not connected an account yet.
        remember_call(server_id, seconds, outcome == "failed", Instant::now());
    }
    counter!(
        "gatehouse_mcp_tool_calls_total",
        "server" => server.to_string(),
        "tool" => tool.to_string(),
        "outcome" => outcome
    )
    .increment(1);
    if let Some(seconds) = seconds {
        histogram!("gatehouse_upstream_call_duration_seconds", "server" => server.to_string())
            .record(seconds);
    }
}

/// How long the per-server windows look back.
const CALL_WINDOW: Duration = Duration::from_secs(3600);

struct Call {
    at: Instant,
    seconds: Option<f64>,
    failed: bool,
}

/// Each server's latest calls, for the percentiles admins see on its card. Prometheus has
/// the histograms; these windows are what one process can answer at a glance without it.
fn recent() -> &'static Mutex<HashMap<String, VecDeque<Call>>> {
    static RECENT: OnceLock<Mutex<HashMap<String, VecDeque<Call>>>> = OnceLock::new();
    RECENT.get_or_init(Mutex::default)
}

fn remember_call(server_id: &str, seconds: Option<f64>, failed: bool, at: Instant) {
    let mut recent = recent().lock().expect("the call windows");
    if !recent.contains_key(server_id) {
        // Servers deleted or idle for the window are forgotten when a new one appears.
        recent.retain(|_, calls| {
            calls
                .back()
                .is_some_and(|c| at.duration_since(c.at) < CALL_WINDOW)
        });
    }
    let calls = recent.entry(server_id.to_string()).or_default();
    if calls.len() >= UPSTREAM_WINDOW_CALLS {
        calls.pop_front();
    }
    calls.push_back(Call {
        at,
        seconds,
        failed,
    });
}

/// The server's calls within the window, or None when it has had none.
pub fn upstream_calls(server_id: &str) -> Option<UpstreamCallsView> {
    calls_at(server_id, Instant::now())
}

fn calls_at(server_id: &str, now: Instant) -> Option<UpstreamCallsView> {
    let recent = recent().lock().expect("the call windows");
    let window: Vec<&Call> = recent
        .get(server_id)?
        .iter()
        .filter(|c| now.saturating_duration_since(c.at) < CALL_WINDOW)
        .collect();
    if window.is_empty() {
        return None;
    }
    let mut answered: Vec<f64> = window.iter().filter_map(|c| c.seconds).collect();
    answered.sort_by(f64::total_cmp);
    // Nearest rank: the smallest latency at or above which p of the calls fall.
    let percentile = |p: f64| {
        (!answered.is_empty()).then(|| {
            let rank = ((p * answered.len() as f64).ceil() as usize).clamp(1, answered.len());
            (answered[rank - 1] * 1000.0).round() as u64
        })
    };
    Some(UpstreamCallsView {
        calls: window.len() as u32,
        failed: window.iter().filter(|c| c.failed).count() as u32,
        p50_ms: percentile(0.50),
        p95_ms: percentile(0.95),
        p99_ms: percentile(0.99),
    })
}

/// A connection's refresh at `at` (Unix seconds) and how it ended.
pub fn connection_refresh(connection: &str, outcome: &'static str, at: i64) {
    counter!(
        "gatehouse_connection_refreshes_total",
        "connection" => connection.to_string(),
        "outcome" => outcome
    )
    .increment(1);
    if outcome == "ok" {
        gauge!(
            "gatehouse_connection_last_refresh_timestamp_seconds",
            "connection" => connection.to_string()
        )
        .set(at as f64);
    }
}

/// Tokens issued by the authorization server for a grant of `grant_type`.
pub fn grant_issued(grant_type: &'static str) {
    counter!("gatehouse_oauth_grants_total", "grant_type" => grant_type).increment(1);
}

/// The gauges read at scrape time, then the whole exposition.
pub fn render(sessions_open: Option<i64>, pool_open: u32, pool_idle: usize) -> String {
    let handle = handle();
    if let Some(n) = sessions_open {
        gauge!("gatehouse_mcp_sessions_open").set(n as f64);
    }
    gauge!("gatehouse_db_pool_connections", "state" => "open").set(f64::from(pool_open));
    gauge!("gatehouse_db_pool_connections", "state" => "idle").set(pool_idle as f64);
    handle.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_servers_window_gives_percentiles_and_failures() {
        let start = Instant::now();
        let id = "window-test-server";
        for ms in 1..=100u32 {
            remember_call(id, Some(f64::from(ms) / 1000.0), false, start);
        }
        remember_call(id, None, true, start);
        remember_call(id, Some(5.0), true, start);
        let calls = calls_at(id, start).unwrap();
        assert_eq!((calls.calls, calls.failed), (102, 2));
        assert_eq!(calls.p50_ms, Some(51));
        assert_eq!(calls.p95_ms, Some(96));
        assert_eq!(calls.p99_ms, Some(100));
        assert!(
            calls.summary().contains("2.0% failed of 102 calls"),
            "{}",
            calls.summary()
        );
        // An hour on, the window is empty.
        assert_eq!(calls_at(id, start + CALL_WINDOW), None);
        for _ in 0..UPSTREAM_WINDOW_CALLS + 5 {
            remember_call("window-capped", Some(0.01), false, start);
        }
        assert_eq!(
            calls_at("window-capped", start).unwrap().calls as usize,
            UPSTREAM_WINDOW_CALLS
        );
    }
}
