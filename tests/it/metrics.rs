//! `/metrics`: who may read it, and a Prometheus parser finding the counters moved by the
//! traffic a test caused.

use reqwest::StatusCode;
use serde_json::json;

use crate::connections::{Ctx, custom, provider};
use crate::gateway::{Upstream, add_server, mcp_token, sdk_client, text};
use crate::helpers::*;
use crate::oauth_as::{protected_and_signed_in, refresh_with, register_public, sign_in};

pub(crate) const METRICS_TOKEN: &str = "metrics-token-for-the-integration-tests-0123456789";

/// A scrape, parsed by the `prometheus-parse` crate.
pub(crate) fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses")
}

/// The value of `name` with these labels (others may be present), summed over matches.
pub(crate) fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => {
                buckets.last().map(|b| b.count).unwrap_or_default()
            }
            _ => 0.0,
        })
        .sum()
}

pub(crate) async fn scrape(app: &TestApp, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn metrics_are_for_the_tokens_bearer_and_count_what_happened() {
    let idp = provider("opaque").await;
    let ctx = Ctx::with(gatehouse::server::config::RawSettings {
        metrics_token: Some(METRICS_TOKEN.into()),
        mcp_oauth_enabled: Some("true".into()),
        ..crate::connections::settings()
    })
    .await;
    let app = &ctx.app;
    let url = app.url("/metrics");
    assert_eq!(
        scrape(app, &url, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        scrape(app, &url, Some("not-the-token")).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Traffic: a health check, a tool call through an upstream, a connection refreshed, and
    // tokens issued and refreshed by the authorization server.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let py = Upstream::python(&[], "/mcp").await;
    add_server(&ctx, json!({"name": "metered", "url": py.url})).await;
    let token = mcp_token(&ctx).await;
    let out = sdk_client(app, &token, json!([["metered__echo", {"text": "m"}]])).await;
    assert_eq!(text(&out["results"][0]), "py-upstream: m");
    let id = ctx.create(custom(&idp.issuer, "Metered")).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, _) = ctx.token(&id, true).await;
    assert_eq!(status, StatusCode::OK);
    let mut browser = protected_and_signed_in(app).await;
    let client_id = register_public(app).await;
    let tokens = sign_in(app, &mut browser, &client_id).await;
    let (status, _) =
        refresh_with(app, &client_id, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    let answer = scrape(app, &url, Some(METRICS_TOKEN)).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = answer.text().await.unwrap();
    let m = parse(&body);
    let at_least_one = |name: &str, labels: &[(&str, &str)]| {
        let v = value(&m, name, labels);
        assert!(v >= 1.0, "{name} {labels:?} = {v}\n{body}");
    };
    at_least_one(
        "gatehouse_http_requests_total",
        &[("route", "/healthz"), ("method", "GET"), ("status", "200")],
    );
    at_least_one(
        "gatehouse_http_request_duration_seconds",
        &[("route", "/mcp"), ("method", "POST")],
    );
    at_least_one(
        "gatehouse_mcp_tool_calls_total",
        &[("server", "metered"), ("tool", "echo"), ("outcome", "ok")],
    );
    at_least_one(
        "gatehouse_upstream_call_duration_seconds",
        &[("server", "metered")],
    );
    at_least_one(
        "gatehouse_connection_refreshes_total",
        &[("connection", &id), ("outcome", "ok")],
    );
    at_least_one(
        "gatehouse_oauth_grants_total",
        &[("grant_type", "authorization_code")],
    );
    at_least_one(
        "gatehouse_oauth_grants_total",
        &[("grant_type", "refresh_token")],
    );
    assert!(
        m.samples
            .iter()
            .any(|s| s.metric == "gatehouse_mcp_sessions_open"),
        "{body}"
    );
    at_least_one("gatehouse_db_pool_connections", &[("state", "open")]);
    // The same measurements at a glance, for admins: the server's recent calls, and the
    // connection's last and next refresh.
    let (status, servers) = ctx.get("/api/v0/mcp-servers").await;
    assert_eq!(status, StatusCode::OK, "{servers}");
    let metered = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "metered")
        .unwrap();
    assert_eq!(metered["calls"]["calls"], 1, "{metered}");
    assert_eq!(metered["calls"]["failed"], 0, "{metered}");
    assert!(metered["calls"]["p99_ms"].is_u64(), "{metered}");
    let connection = ctx.view(&id).await;
    assert!(connection["grant"]["refreshed_at"].is_i64(), "{connection}");
    assert_eq!(connection["failures"], 0);
    assert!(
        connection["next_refresh_at"].as_i64().unwrap()
            < connection["grant"]["expires_at"].as_i64().unwrap(),
        "{connection}"
    );
    // A raw path never becomes a label.
    let _ = app.client.get(app.url("/no/such/page/9f8e7d")).send().await;
    let again = scrape(app, &url, Some(METRICS_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains("9f8e7d"), "a raw path became a label");
    for secret in [METRICS_TOKEN, token.as_str()] {
        assert!(!again.contains(secret));
    }
}

#[tokio::test]
async fn metrics_on_their_own_listener_need_no_token_and_are_off_without_a_setting() {
    let app = spawn_app(gatehouse::server::config::RawSettings {
        metrics_listen_addr: Some("127.0.0.1:0".into()),
        ..basic_settings()
    })
    .await;
    let own = app.metrics_address.clone().expect("a metrics listener");
    let answer = scrape(&app, &format!("{own}/metrics"), None).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let m = parse(&answer.text().await.unwrap());
    assert!(value(&m, "gatehouse_db_pool_connections", &[("state", "open")]) >= 1.0);
    // The main listener has no /metrics (it is an unknown page, behind sign-in): only
    // METRICS_TOKEN puts one there.
    let main = scrape(&app, &app.url("/metrics"), Some(METRICS_TOKEN)).await;
    assert_eq!(main.status(), StatusCode::SEE_OTHER);
    assert!(!main.text().await.unwrap().contains("gatehouse_"));
}
