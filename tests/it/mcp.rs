//! `/mcp` at the protocol level: every status code the transport promises, both eras.

use gatehouse::server::config::RawSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "1"}
    })
}

#[tokio::test]
async fn initialize_negotiates_the_version_and_opens_a_session() {
    let app = spawn_app(RawSettings::default()).await;
    for (asked, agreed) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        // A version it does not know: the server answers with its own latest.
        ("2099-01-01", "2025-11-25"),
    ] {
        let mut mcp = RawMcp::new(&app);
        let body = mcp.initialize(asked).await;
        assert_eq!(body["result"]["protocolVersion"], agreed, "asked {asked}");
        assert_eq!(body["result"]["serverInfo"]["name"], "gatehouse");
        assert_eq!(body["result"]["capabilities"]["tools"]["listChanged"], true);
        assert!(mcp.session.is_some());
    }
}

#[tokio::test]
async fn a_caller_keeps_at_most_its_cap_of_sessions_and_idle_ones_end() {
    let app = spawn_app(RawSettings {
        mcp_max_sessions_per_caller: Some("3".into()),
        ..RawSettings::default()
    })
    .await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        app.clock.advance(1);
        let mut mcp = RawMcp::new(&app);
        mcp.initialize(LATEST_SESSION_VERSION).await;
        sessions.push(mcp);
    }
    // The first is used again, so the second is the least recently used.
    app.clock.advance(120);
    assert_eq!(
        sessions[0].call(1, "ping", json!({})).await["result"],
        json!({})
    );
    app.clock.advance(1);
    let mut fourth = RawMcp::new(&app);
    fourth.initialize(LATEST_SESSION_VERSION).await;
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let (status, _, _) = sessions[1].post(ping.clone()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the least recently used one ended"
    );
    for mcp in [&sessions[0], &sessions[2], &fourth] {
        let (status, _, body) = mcp.post(ping.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(
        app.state.mcp.session_count(app.state.now()).await.unwrap(),
        3
    );

    // An hour without a request ends a session; the client gets 404 and starts again.
    app.clock.advance(3601);
    let (status, _, body) = fourth.post(ping).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        app.state.mcp.session_count(app.state.now()).await.unwrap(),
        0
    );
    assert_eq!(
        app.state.mcp.purge_sessions(app.state.now()).await.unwrap(),
        3
    );
}

#[tokio::test]
async fn session_rules() {
    let app = spawn_app(RawSettings::default()).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});

    // No session id on a non-initialize request: 400.
    let (status, _, body) = RawMcp::new(&app).post(list.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["code"], -32600,
        "a JSON-RPC error body: {body}"
    );

    // Unknown session: 404.
    let mut unknown = RawMcp::new(&app);
    unknown.session = Some("not-a-session".into());
    let (status, _, body) = unknown.post(list.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["id"], 1);

    // A live session works; ping answers; notifications are 202.
    let mut mcp = RawMcp::new(&app);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    assert_eq!(mcp.call(2, "ping", json!({})).await["result"], json!({}));
    let (status, _, body) = mcp
        .post(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}}))
        .await;
    assert_eq!((status, body), (StatusCode::ACCEPTED, Value::Null));

    // GET opens the server's stream for a session.
    let stream = mcp
        .request(Method::GET)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(stream);

    // DELETE ends it; then it is 404, and so is a second DELETE.
    let delete = mcp.request(Method::DELETE).send().await.unwrap();
    assert!(delete.status().is_success(), "{}", delete.status());
    let (status, _, _) = mcp.post(list.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        mcp.request(Method::DELETE).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unsupported_version_header_names_the_supported_ones() {
    let app = spawn_app(RawSettings::default()).await;
    let mut mcp = RawMcp::new(&app);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let response = app
        .client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", mcp.session.clone().unwrap())
        .header("mcp-protocol-version", "2024-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["data"]["requested"], "2024-01-01");
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );

    // Two version headers are one too many.
    let doubled = mcp
        .request(Method::POST)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(doubled.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_stateless_2026_era() {
    let app = spawn_app(RawSettings::default()).await;
    let client = &app.client;
    let post = |method: &str, name: Option<&str>, params: Value| {
        let mut r = client
            .post(app.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            r = r.header("mcp-name", name);
        }
        r.json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
    };

    let discover = post("server/discover", None, json!({"_meta": modern_meta()}))
        .send()
        .await
        .unwrap();
    assert_eq!(discover.status(), StatusCode::OK);
    let body: Value = discover.json().await.unwrap();
    assert!(
        body["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );

    let list = post("tools/list", None, json!({"_meta": modern_meta()}))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert!(
        list.headers().get("mcp-session-id").is_none(),
        "no sessions in 2026-07-28"
    );
    let body: Value = list.json().await.unwrap();
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["whoami", "gatehouse_status"]);

    let call = post(
        "tools/call",
        Some("whoami"),
        json!({"name": "whoami", "_meta": modern_meta()}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(call.status(), StatusCode::OK);
    let body: Value = call.json().await.unwrap();
    assert_eq!(body["result"]["structuredContent"]["identity"], "anonymous");

    // Mcp-Name must match the body; a missing Mcp-Method is refused.
    let mismatch = post(
        "tools/call",
        Some("gatehouse_status"),
        json!({"name": "whoami", "_meta": modern_meta()}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        mismatch.json::<Value>().await.unwrap()["error"]["code"],
        -32020
    );
    let missing = client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        -32020
    );

    // No GET stream in this era.
    let get = client
        .get(app.url("/mcp"))
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn malformed_input_gets_json_rpc_errors() {
    let app = spawn_app(RawSettings::default()).await;
    let send = |body: String| {
        app.client
            .post(app.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    for (body, status, code) in [
        ("{not json".to_string(), 400, -32700),
        ("".to_string(), 400, -32700),
        ("[]".to_string(), 400, -32600),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_string(),
            400,
            -32600,
        ),
        (r#"{"id":1,"method":"ping"}"#.to_string(), 400, -32600),
        (
            r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#.to_string(),
            400,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":["x"]}"#.to_string(),
            400,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"x"}"#.to_string(),
            400,
            -32602,
        ),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
                "x".repeat(1_100_000)
            ),
            413,
            -32600,
        ),
    ] {
        let response = send(body.clone()).await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{}",
            &body[..body.len().min(80)]
        );
        let value: Value = response.json().await.unwrap();
        assert_eq!(value["jsonrpc"], "2.0");
        assert_eq!(
            value["error"]["code"],
            code,
            "{}",
            &body[..body.len().min(80)]
        );
    }
    // The server is still fine.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn host_and_origin_are_checked() {
    let app = spawn_app(RawSettings::default()).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}});
    let post = |extra: Vec<(&'static str, &'static str)>| {
        let mut r = app
            .client
            .post(app.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        for (k, v) in extra {
            r = r.header(k, v);
        }
        r.send()
    };
    assert_eq!(
        post(vec![("origin", "https://evil.example")])
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(vec![("origin", "null")]).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(vec![("host", "attacker.example:8080")])
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let ok = post(vec![("origin", "http://localhost:6274")])
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );

    // CORS preflight for a browser-based client.
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/mcp"))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
}

#[tokio::test]
async fn tools_have_schemas_and_bad_arguments_are_tool_errors() {
    let app = spawn_app(RawSettings::default()).await;
    let mut mcp = RawMcp::new(&app);
    mcp.initialize(LATEST_SESSION_VERSION).await;

    let tools = mcp.call(1, "tools/list", json!({})).await;
    for tool in tools["result"]["tools"].as_array().unwrap() {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert_eq!(tool["annotations"]["readOnlyHint"], true);
    }

    let status = mcp
        .call(
            2,
            "tools/call",
            json!({"name": "gatehouse_status", "arguments": {"sections": ["mcp"]}}),
        )
        .await;
    let report = &status["result"]["structuredContent"];
    assert_eq!(report["mcp"]["require_auth"], false);
    assert_eq!(report["mcp"]["endpoint"], format!("{}/mcp", app.address));
    assert!(
        report.get("instance").is_none(),
        "only the section asked for"
    );

    let bad = mcp
        .call(
            3,
            "tools/call",
            json!({"name": "gatehouse_status", "arguments": {"sections": "all"}}),
        )
        .await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    assert!(
        bad["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("sections")
    );

    let extra = mcp
        .call(
            4,
            "tools/call",
            json!({"name": "whoami", "arguments": {"who": "me"}}),
        )
        .await;
    assert_eq!(extra["result"]["isError"], true);

    let unknown = mcp
        .call(5, "tools/call", json!({"name": "rm_rf", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602);

    let unknown_method = mcp
        .call(6, "logging/setLevel", json!({"level": "info"}))
        .await;
    assert_eq!(unknown_method["error"]["code"], -32601);

    // Subscriptions are for the upstreams' resources: any other URI is no resource.
    let unknown_resource = mcp
        .call(7, "resources/subscribe", json!({"uri": "file:///x"}))
        .await;
    assert_eq!(unknown_resource["error"]["code"], -32002);
}
