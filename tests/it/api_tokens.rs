//! API tokens and MCP protection: the REST API, hashing at rest, last-used flushing, and the
//! 401/403 answers of `/mcp`.

use gatehouse::server::config::{DatabaseConfig, RawSettings};
use gatehouse::server::db::Db;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn whoami(app: &TestApp, token: Option<&str>, via_query: bool) -> reqwest::Response {
    let url = match (token, via_query) {
        (Some(t), true) => app.url(&format!("/mcp?token={}", enc(t))),
        _ => app.url("/mcp"),
    };
    let mut request = app
        .client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami");
    if let (Some(t), false) = (token, via_query) {
        request = request.bearer_auth(t);
    }
    request
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "whoami",
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
        }}))
        .send()
        .await
        .unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn rest_api_creates_lists_and_deletes_tokens() {
    let app = spawn_app(RawSettings::default()).await;
    let settings: Value = app.get("/api/v0/settings/mcp").await.json().await.unwrap();
    assert_eq!(settings["enabled"], false);
    assert_eq!(settings["tokens"], json!([]));
    assert_eq!(settings["mcp_url"], format!("{}/mcp", app.address));

    let created = create_token(
        &app,
        json!({"name": "Claude Desktop", "scopes": ["mcp"], "expires_in_days": 30}),
    )
    .await;
    let value = created["token"].as_str().unwrap().to_string();
    assert!(value.starts_with("gatehouse_at_"));
    assert_eq!(value.len(), "gatehouse_at_".len() + 43);
    assert_eq!(created["name"], "Claude Desktop");
    assert_eq!(created["scopes"], json!(["mcp"]));
    assert_eq!(created["expires_at"], app.clock_now() + 30 * 86_400);
    let id = created["id"].as_str().unwrap().to_string();

    let list: Value = app
        .get("/api/v0/settings/mcp/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let listed = &list[0];
    assert_eq!(listed["id"], id.as_str());
    assert!(
        listed.get("token").is_none(),
        "a list never carries the value"
    );
    assert!(!list.to_string().contains(&value[13..]));
    assert!(
        listed["hint"]
            .as_str()
            .unwrap()
            .ends_with(&value[value.len() - 4..])
    );
    assert_eq!(listed["last_used_at"], Value::Null);

    let delete = app
        .client
        .delete(app.url(&format!("/api/v0/settings/mcp/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let again = app
        .client
        .delete(app.url(&format!("/api/v0/settings/mcp/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "not_found");
}

impl TestApp {
    fn clock_now(&self) -> i64 {
        use gatehouse::server::clock::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn validation_errors_are_400_with_a_message() {
    let app = spawn_app(RawSettings::default()).await;
    let post = |body: String, content_type: &'static str| {
        app.client
            .post(app.url("/api/v0/settings/mcp/tokens"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (body, content_type, says) in [
        (r#"{"name":""}"#, "application/json", "name"),
        (
            r#"{"name":"x","scopes":["root"]}"#,
            "application/json",
            "root",
        ),
        (
            r#"{"name":"x","scopes":[]}"#,
            "application/json",
            "at least one scope",
        ),
        (
            r#"{"name":"x","expires_in_days":0}"#,
            "application/json",
            "between 1 and 3650",
        ),
        (
            r#"{"name":"x","colour":"red"}"#,
            "application/json",
            "colour",
        ),
        (r#"{"name":"#, "application/json", "EOF"),
        (
            r#"{"name":"x"}"#,
            "text/plain",
            "Content-Type: application/json",
        ),
    ] {
        let response = post(body.to_string(), content_type).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "bad_request");
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{body}: {error}"
        );
    }
    let put = app
        .client
        .put(app.url("/api/v0/settings/mcp"))
        .json(&json!({"enabled": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_rest_api_needs_a_session() {
    let app = spawn_app(basic_settings()).await;
    assert_eq!(
        app.get("/api/v0/settings/mcp").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client
            .post(app.url("/api/v0/settings/mcp/tokens"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let session = app.token().await;
    let created = app
        .client
        .post(app.url("/api/v0/settings/mcp/tokens"))
        .bearer_auth(&session)
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["created_by"], USERNAME);
    // An API token is for /mcp, not a session for the app's API.
    let token = created["token"].as_str().unwrap();
    assert_eq!(
        app.get_with_bearer("/api/v0/settings/mcp", token)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_database_never_holds_a_token_value() {
    let mut app = spawn_app(RawSettings::default()).await;
    let mut values = Vec::new();
    for name in ["a", "b", "c"] {
        values.push(
            create_token(&app, json!({"name": name})).await["token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for v in &values {
        assert_eq!(whoami(&app, Some(v), false).await.status(), StatusCode::OK);
    }
    app.stop().await;
    let text = app.stored_text().await;
    assert!(!text.is_empty());
    for v in &values {
        let secret_part = &v["gatehouse_at_".len()..];
        assert!(
            !text.contains(secret_part),
            "the database file contains a token value"
        );
        let digest = gatehouse::server::secrets::sha256_hex(v);
        assert!(text.contains(&digest), "the digest is what is stored");
    }
}

#[tokio::test]
async fn protection_off_lets_anyone_in_but_still_checks_presented_tokens() {
    let app = spawn_app(RawSettings::default()).await;
    let anon = whoami(&app, None, false).await;
    assert_eq!(anon.status(), StatusCode::OK);
    let bad = whoami(&app, Some("gatehouse_at_forged"), false).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&bad).contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn protection_on_requires_a_token_with_the_mcp_scope() {
    let app = spawn_app(RawSettings::default()).await;
    let token = create_token(&app, json!({"name": "agent", "expires_in_days": 1})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let no_mcp = create_token(
        &app,
        json!({"name": "worker", "scopes": ["connections:token"]}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    set_protection(&app, true).await;

    // No token: 401 with a Bearer challenge.
    let response = whoami(&app, None, false).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), "Bearer realm=\"gatehouse\"");
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "unauthorized"
    );

    // The token, as a header and as ?token=.
    for via_query in [false, true] {
        let response = whoami(&app, Some(&token), via_query).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let me = &body["result"]["structuredContent"];
        assert_eq!(me["authenticated_by"], "api_token");
        assert_eq!(me["token"]["name"], "agent");
        assert_eq!(me["scopes"], json!(["mcp"]));
    }

    // Unknown, malformed, contradictory.
    for response in [
        whoami(
            &app,
            Some("gatehouse_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            false,
        )
        .await,
        whoami(&app, Some("not-even-ours"), true).await,
        app.client
            .post(app.url(&format!("/mcp?token={}", enc(&no_mcp))))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        app.client
            .post(app.url("/mcp"))
            .header("authorization", "Basic YTpi")
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(challenge(&response).contains("invalid_token"));
    }

    // A token without the mcp scope: 403 insufficient_scope.
    let response = whoami(&app, Some(&no_mcp), false).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&response).contains("error=\"insufficient_scope\""));
    assert!(challenge(&response).contains("scope=\"mcp\""));
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "insufficient_scope"
    );

    // Expiry follows the clock.
    app.clock.advance(86_400);
    let response = whoami(&app, Some(&token), false).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).contains("expired"));

    // Turning protection off again.
    set_protection(&app, false).await;
    assert_eq!(whoami(&app, None, false).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_deleted_token_stops_working_and_its_sessions_end() {
    let app = spawn_app(RawSettings::default()).await;
    let created = create_token(&app, json!({"name": "doomed"})).await;
    let token = created["token"].as_str().unwrap().to_string();
    set_protection(&app, true).await;

    let mut mcp = RawMcp::with_token(&app, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    assert!(mcp.call(1, "tools/list", json!({})).await["result"]["tools"].is_array());

    // Someone else cannot ride on the session.
    let other = create_token(&app, json!({"name": "other"})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut hijack = RawMcp::with_token(&app, &other);
    hijack.session = mcp.session.clone();
    let (status, _, _) = hijack
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let id = created["id"].as_str().unwrap();
    app.client
        .delete(app.url(&format!("/api/v0/settings/mcp/tokens/{id}")))
        .send()
        .await
        .unwrap();
    let (status, _, _) = mcp
        .post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn last_used_is_batched_in_memory_and_flushed() {
    let mut app = spawn_app(RawSettings::default()).await;
    let created = create_token(&app, json!({"name": "busy"})).await;
    let token = created["token"].as_str().unwrap().to_string();
    let hash = gatehouse::server::secrets::sha256_hex(&token);
    // A connection of its own: it outlives the server's pool, which closes at shutdown.
    let db = Db::connect(&DatabaseConfig::from_url(&app.database_url, Some(2)).unwrap())
        .await
        .unwrap();
    let stored = || {
        let db = db.clone();
        let hash = hash.clone();
        async move {
            db.find_api_token_by_hash(&hash)
                .await
                .unwrap()
                .unwrap()
                .last_used_at
        }
    };

    let first = app.clock_now();
    for _ in 0..20 {
        assert_eq!(
            whoami(&app, Some(&token), false).await.status(),
            StatusCode::OK
        );
    }
    // Nothing written per request...
    assert_eq!(stored().await, None);
    // ...but the list already shows the use.
    let list: Value = app
        .get("/api/v0/settings/mcp/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["last_used_at"], first);

    // The periodic flush writes it.
    assert_eq!(
        app.state
            .api_tokens
            .uses
            .flush(&app.state.db)
            .await
            .unwrap(),
        1
    );
    assert_eq!(stored().await, Some(first));

    // Uses after the last flush are written at shutdown.
    app.clock.advance(90);
    whoami(&app, Some(&token), true).await;
    app.stop().await;
    assert_eq!(stored().await, Some(first + 90));
}
