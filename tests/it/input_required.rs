//! The 2026-07-28 revision's result shapes and its input-required machinery: a tool asks the
//! client for something (a form, a completion, the roots) and gets the answers back, as an
//! `InputRequiredResult` with a sealed `requestState` (2026) or as requests on the stream
//! (2025); `subscriptions/listen` streams.

use std::time::Duration;

use gatehouse::server::config::RawSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::helpers::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

async fn fixtures_app() -> TestApp {
    spawn_app(RawSettings {
        mcp_conformance_fixtures: Some("true".into()),
        ..RawSettings::default()
    })
    .await
}

pub(crate) fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "1"}
    })
}

/// A 2026-07-28 request (headers and `_meta` as that revision wants them).
pub(crate) fn modern(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> reqwest::RequestBuilder {
    let mut r = app
        .client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    // Mcp-Name: the tool or prompt name, or the resource's URI.
    if let Some(name) = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
    {
        r = r.header("mcp-name", name);
    }
    if let Some(token) = token {
        r = r.bearer_auth(token);
    }
    r.json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
}

async fn call(app: &TestApp, token: Option<&str>, params: Value) -> (StatusCode, Value) {
    let response = modern(app, token, "tools/call", params)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, rpc_body(&response.text().await.unwrap()))
}

fn all_capabilities() -> Value {
    json!({"elicitation": {"form": {}, "url": {}}, "sampling": {}, "roots": {}})
}

#[tokio::test]
async fn the_python_sdk_answers_what_gatehouse_asks_in_both_eras() {
    let app = fixtures_app().await;
    for (mode, version) in [("2026-07-28", "2026-07-28"), ("legacy", "2025-11-25")] {
        let output = Command::new(format!("{ROOT}/.venv/bin/python"))
            .arg(format!("{ROOT}/tests/clients/py_input_client.py"))
            .args([&app.url("/mcp"), "--mode", mode])
            .kill_on_drop(true)
            .output()
            .await
            .expect("scripts/setup.sh creates .venv with the mcp SDK");
        let result = last_json_line(&format!("py_input_client.py {mode}"), &output);
        assert_eq!(result["protocolVersion"], version);
        // Two rounds, the state of the first carried into the second.
        assert_eq!(result["multiRound"], json!(["Ada likes teal."]), "{mode}");
        // A form, a completion and the roots in one round.
        assert_eq!(
            result["several"],
            json!(["Paris Ada: all three answers arrived."]),
            "{mode}"
        );
        // prompts/get asks too.
        assert_eq!(
            result["prompt"],
            json!(["Answer with this context in mind: a test run"]),
            "{mode}"
        );
        // So does resources/read.
        assert_eq!(
            result["resource"],
            json!(["Read after confirmation."]),
            "{mode}"
        );
        let methods: Vec<&str> = result["asked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["method"].as_str().unwrap())
            .collect();
        assert_eq!(methods.len(), 7, "{mode}: {methods:?}");
    }
}

#[tokio::test]
async fn request_state_is_sealed_bound_to_caller_and_call_and_expires() {
    let app = fixtures_app().await;
    let alice = create_token(&app, json!({"name": "alice"})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = create_token(&app, json!({"name": "bob"})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    set_protection(&app, true).await;
    let tool = "test_input_required_result_request_state";
    let first = |token: &str| {
        let token = token.to_string();
        let app = &app;
        async move {
            call(
                app,
                Some(&token),
                json!({"name": tool, "arguments": {}, "_meta": meta(all_capabilities())}),
            )
            .await
        }
    };
    let (status, body) = first(&alice).await;
    assert_eq!(status, StatusCode::OK);
    let result = &body["result"];
    assert_eq!(result["resultType"], "input_required", "{body}");
    assert_eq!(
        result["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let state = result["requestState"].as_str().unwrap().to_string();
    assert!(
        !state.contains("confirm"),
        "the state is sealed, not readable"
    );

    let retry = |token: &str, name: &str, state: String| {
        let params = json!({
            "name": name, "arguments": {}, "_meta": meta(all_capabilities()),
            "inputResponses": {"confirm": {"action": "accept", "content": {"ok": true}}},
            "requestState": state,
        });
        (token.to_string(), params)
    };
    let refused = |body: &Value, why: &str| {
        assert_eq!(body["error"]["code"], -32602, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{body}"
        );
    };

    // Altered.
    let (token, params) = retry(&alice, tool, format!("{state}x"));
    refused(&call(&app, Some(&token), params).await.1, "integrity");
    // Someone else's.
    let (token, params) = retry(&bob, tool, state.clone());
    refused(&call(&app, Some(&token), params).await.1, "integrity");
    // For another call.
    let (token, params) = retry(
        &alice,
        "test_input_required_result_tampered_state",
        state.clone(),
    );
    refused(&call(&app, Some(&token), params).await.1, "integrity");
    // The right one.
    let (token, params) = retry(&alice, tool, state.clone());
    let (status, body) = call(&app, Some(&token), params).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("state-ok")
    );
    // Too late: a state lives fifteen minutes.
    app.clock.advance(15 * 60);
    let (token, params) = retry(&alice, tool, state);
    refused(&call(&app, Some(&token), params).await.1, "expired");
}

#[tokio::test]
async fn a_capability_the_client_did_not_declare_is_never_asked_for() {
    let app = fixtures_app().await;
    // 2026: -32021 with HTTP 400, naming the capability.
    let (status, body) = call(
        &app,
        None,
        json!({"name": "test_missing_capability", "arguments": {}, "_meta": meta(json!({}))}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], -32021);
    assert_eq!(
        body["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    // A tool that adapts asks only for what was declared.
    let (_, body) = call(
        &app,
        None,
        json!({"name": "test_input_required_result_capabilities", "arguments": {}, "_meta": meta(json!({"sampling": {}}))}),
    )
    .await;
    let requests = body["result"]["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "{body}");
    assert_eq!(
        requests["capital_question"]["method"],
        "sampling/createMessage"
    );

    // 2025: a session that declared no elicitation gets -32021, never a request it cannot
    // answer.
    let mut mcp = RawMcp::new(&app);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let body = mcp
        .call(
            2,
            "tools/call",
            json!({"name": "test_elicitation", "arguments": {"message": "Hi?"}}),
        )
        .await;
    assert_eq!(body["error"]["code"], -32021, "{body}");
    assert_eq!(
        body["error"]["data"]["requiredCapabilities"]["elicitation"],
        json!({"form": {}})
    );
}

#[tokio::test]
async fn results_carry_result_type_in_2026_and_not_before() {
    let app = fixtures_app().await;
    for (method, params) in [
        ("tools/call", json!({"name": "whoami", "arguments": {}})),
        ("tools/list", json!({})),
        ("prompts/list", json!({})),
        ("prompts/get", json!({"name": "test_simple_prompt"})),
        ("resources/list", json!({})),
        ("resources/templates/list", json!({})),
        ("resources/read", json!({"uri": "test://static-text"})),
    ] {
        let mut params = params;
        params["_meta"] = meta(json!({}));
        let response = modern(&app, None, method, params).send().await.unwrap();
        let body = rpc_body(&response.text().await.unwrap());
        assert_eq!(body["result"]["resultType"], "complete", "{method}: {body}");
    }
    let mut mcp = RawMcp::new(&app);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let body = mcp
        .call(2, "tools/call", json!({"name": "whoami", "arguments": {}}))
        .await;
    assert!(
        body["result"].get("resultType").is_none(),
        "2025 results keep their shape: {body}"
    );
}

/// Reads SSE frames from `response` until `count` JSON messages have arrived (or the time is up).
async fn frames(mut response: reqwest::Response, count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < count {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            if let Some(data) = line.trim().strip_prefix("data:")
                && let Ok(value) = serde_json::from_str::<Value>(data.trim())
            {
                out.push(value);
            }
        }
    }
    out
}

#[tokio::test]
async fn subscriptions_listen_streams_what_was_asked_for() {
    let app = fixtures_app().await;
    let listen = |filter: Value| {
        modern(
            &app,
            None,
            "subscriptions/listen",
            json!({"_meta": meta(json!({})), "notifications": filter}),
        )
        .send()
    };
    let tools = listen(json!({"toolsListChanged": true})).await.unwrap();
    assert_eq!(tools.status(), StatusCode::OK);
    let prompts_only = listen(json!({"promptsListChanged": true})).await.unwrap();

    // Adding an MCP server changes the tool list.
    let added = app
        .client
        .post(app.url("/api/v0/mcp-servers"))
        .json(&json!({"name": "later", "url": "http://127.0.0.1:1/mcp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);

    let got = frames(tools, 2).await;
    assert_eq!(
        got[0]["method"], "notifications/subscriptions/acknowledged",
        "{got:?}"
    );
    assert_eq!(
        got[0]["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        got[1]["method"], "notifications/tools/list_changed",
        "{got:?}"
    );
    assert_eq!(
        got[1]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );

    // The prompts-only stream heard nothing about tools; a prompt change reaches it.
    let (_, body) = call(
        &app,
        None,
        json!({"name": "test_trigger_prompt_change", "arguments": {}, "_meta": meta(json!({}))}),
    )
    .await;
    assert_eq!(body["result"]["resultType"], "complete");
    let got = frames(prompts_only, 2).await;
    assert_eq!(got[0]["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        got[1]["method"], "notifications/prompts/list_changed",
        "{got:?}"
    );
}
