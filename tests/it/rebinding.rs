//! DNS rebinding: a page whose name an attacker re-points at 127.0.0.1 sends requests with
//! its own `Host` and `Origin`. Every route but `/healthz` must refuse them, in every auth
//! mode, while the names this instance really has keep working.

use gatehouse::server::config::RawSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, basic_settings, spawn_app};

fn port(app: &TestApp) -> String {
    app.address.rsplit(':').next().unwrap().to_string()
}

/// A request as the rebinding page sends it: `Host` and `Origin` both the attacker's name.
async fn as_host(
    app: &TestApp,
    method: Method,
    path: &str,
    host: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("host", host)
        .header("origin", format!("http://{host}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_rebound_name_reaches_no_route_in_none_mode() {
    let app = spawn_app(RawSettings {
        mcp_oauth_enabled: Some("true".into()),
        ..RawSettings::default()
    })
    .await;
    let evil = format!("evil.example:{}", port(&app));

    let token = as_host(
        &app,
        Method::POST,
        "/api/v0/settings/mcp/tokens",
        &evil,
        Some(json!({"name": "stolen", "scopes": ["mcp"]})),
    )
    .await;
    assert_eq!(token.status(), StatusCode::FORBIDDEN);
    let body: Value = token.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("ALLOWED_HOSTS"),
        "{body}"
    );
    assert!(body.get("token").is_none());

    for (method, path, body) in [
        (
            Method::POST,
            "/api/v0/connections/any/token",
            Some(json!({})),
        ),
        (Method::GET, "/", None),
        (Method::GET, "/settings/authentication", None),
        (Method::GET, "/api/v0/settings/mcp/tokens", None),
        (Method::GET, "/api/v0/connections", None),
        (Method::GET, "/auth/info", None),
        (Method::GET, "/login", None),
        (Method::GET, "/.well-known/oauth-authorization-server", None),
        (
            Method::GET,
            "/mcp/oauth/authorize?response_type=code&client_id=x",
            None,
        ),
        (
            Method::POST,
            "/mcp/oauth/register",
            Some(json!({"redirect_uris": ["http://127.0.0.1/cb"]})),
        ),
        (
            Method::GET,
            "/connections/oauth/callback?state=x&code=y",
            None,
        ),
        (Method::GET, "/pkg/gatehouse.js", None),
    ] {
        let response = as_host(&app, method.clone(), path, &evil, body).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }

    // /mcp refuses in JSON-RPC.
    let mcp = as_host(
        &app,
        Method::POST,
        "/mcp",
        &evil,
        Some(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
    )
    .await;
    assert_eq!(mcp.status(), StatusCode::FORBIDDEN);
    let body: Value = mcp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);

    // A Host that is no host at all is no name of ours either.
    let garbage = app
        .client
        .get(app.url("/"))
        .header("host", "evil.example@127.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::FORBIDDEN);

    // Health checks come by address from load balancers: answered whatever the Host.
    let health = as_host(&app, Method::GET, "/healthz", &evil, None).await;
    assert_eq!(health.status(), StatusCode::OK);

    // Nothing was created.
    let tokens: Value = app
        .get("/api/v0/settings/mcp/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens, json!([]));

    // The names this instance has keep working: loopback names and addresses.
    for host in [
        format!("localhost:{}", port(&app)),
        format!("127.0.0.1:{}", port(&app)),
    ] {
        let ok = as_host(
            &app,
            Method::POST,
            "/api/v0/settings/mcp/tokens",
            &host,
            Some(json!({"name": "mine", "scopes": ["mcp"]})),
        )
        .await;
        assert_eq!(ok.status(), StatusCode::CREATED, "{host}");
    }
}

#[tokio::test]
async fn public_url_and_allowed_hosts_name_this_instance() {
    let app = spawn_app(RawSettings {
        public_url: Some("https://gatehouse.example.com".into()),
        allowed_hosts: Some("gatehouse.internal, 192.0.2.10".into()),
        ..RawSettings::default()
    })
    .await;
    for (host, status) in [
        ("gatehouse.example.com", StatusCode::OK),
        ("gatehouse.example.com:443", StatusCode::OK),
        ("GATEHOUSE.internal:8080", StatusCode::OK),
        ("192.0.2.10", StatusCode::OK),
        ("gatehouse.example.com:8443", StatusCode::FORBIDDEN),
        ("gatehouse.example.com.evil.example", StatusCode::FORBIDDEN),
        ("192.0.2.11", StatusCode::FORBIDDEN),
    ] {
        let page = app
            .client
            .get(app.url("/"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), status, "{host}");
    }
    // An allowed name's own origin may post; another allowed name's may not.
    let ok = as_host(
        &app,
        Method::POST,
        "/api/v0/settings/mcp/tokens",
        "gatehouse.internal",
        Some(json!({"name": "internal", "scopes": ["mcp"]})),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let cross = app
        .client
        .post(app.url("/api/v0/settings/mcp/tokens"))
        .header("host", "gatehouse.internal")
        .header("origin", "http://192.0.2.10")
        .json(&json!({"name": "x", "scopes": ["mcp"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_rebound_name_cannot_even_try_a_password() {
    let app = spawn_app(basic_settings()).await;
    let evil = format!("evil.example:{}", port(&app));
    let login = as_host(
        &app,
        Method::POST,
        "/auth/login",
        &evil,
        Some(json!({"username": "admin", "password": "x"})),
    )
    .await;
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    let page = as_host(&app, Method::GET, "/login", &evil, None).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
}

/// Sends `request_line` with `Host: <host>` over a bare socket; returns the status line.
async fn raw_status(app: &TestApp, request_line: &str, host: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("{request_line}\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_absolute_request_uri_must_name_this_instance_too() {
    let app = spawn_app(RawSettings::default()).await;
    let ours = format!("127.0.0.1:{}", port(&app));
    // RFC 9112: the request line's authority wins over Host, so both are checked.
    let evil = raw_status(&app, "GET http://evil.example/ HTTP/1.1", &ours).await;
    assert!(evil.contains(" 403 "), "{evil}");
    let fine = raw_status(&app, &format!("GET http://{ours}/ HTTP/1.1"), &ours).await;
    assert!(fine.contains(" 200 "), "{fine}");
}
