//! The MCP gateway against real upstreams: a Python SDK server that is an OAuth resource
//! server of the test oidc-provider (introspection, audience checked), the TypeScript SDK's
//! example server, and the official TS SDK client calling both through `/mcp`. An in-process
//! server stands in only for a hanging upstream.

use std::process::Stdio;
use std::time::{Duration, Instant};

use gatehouse::server::connections::GrantKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::connections::{CLIENT_ID, CLIENT_SECRET, Ctx, custom, reset_stats, stats};
use crate::helpers::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An upstream MCP server process, killed on drop.
pub(crate) struct Upstream {
    pub(crate) url: String,
    _child: Child,
}

impl Upstream {
    /// Ends the server and waits until it has (its port is free again).
    async fn stop(mut self) {
        let _ = self._child.kill().await;
    }

    /// tests/upstreams/py_upstream.py on the Python SDK.
    pub(crate) async fn python(args: &[&str], path: &str) -> Upstream {
        Upstream::python_on(free_port(), args, path).await
    }

    /// `python` on a given port (a server restarted with other settings).
    async fn python_on(port: u16, args: &[&str], path: &str) -> Upstream {
        let python = format!("{ROOT}/.venv/bin/python");
        let mut child = Command::new(python)
            .arg(format!("{ROOT}/tests/upstreams/py_upstream.py"))
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the venv exists (scripts/setup.sh --tests)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the Python upstream starts")
            .unwrap()
            .unwrap_or_default();
        assert!(line.starts_with("ready"), "{line}");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Upstream {
            url: format!("http://127.0.0.1:{port}{path}"),
            _child: child,
        }
    }

    /// The Python upstream as a resource server of `issuer`: tokens must introspect active
    /// there and carry `resource` as their audience.
    pub(crate) async fn resource_server(issuer: &str, resource: &str) -> Upstream {
        Upstream::python(
            &[
                "--issuer",
                issuer,
                "--resource",
                resource,
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
            ],
            "/mcp",
        )
        .await
    }

    /// The TypeScript SDK's own example server (simpleStreamableHttp), unchanged.
    async fn ts_example() -> Upstream {
        Upstream::ts_example_with(&[]).await
    }

    /// The same with `args`. With `--oauth` it is a protected resource of the SDK's demo
    /// authorization server (on another free port), and names itself `localhost`.
    async fn ts_example_with(args: &[&str]) -> Upstream {
        let port = free_port();
        let oauth = args.contains(&"--oauth");
        let mut child = Command::new("node")
            .arg(format!(
                "{ROOT}/node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js"
            ))
            .args(args)
            .env("MCP_PORT", port.to_string())
            .env("MCP_AUTH_PORT", free_port().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the TS example server starts")
                .unwrap()
                .expect("the TS example server prints that it listens");
            if line.contains("MCP Streamable HTTP Server listening") {
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let host = if oauth { "localhost" } else { "127.0.0.1" };
        Upstream {
            url: format!("http://{host}:{port}/mcp"),
            _child: child,
        }
    }
}

/// Runs tests/clients/ts_gateway_client.mjs: lists tools and makes the calls.
pub(crate) async fn sdk_client(app: &TestApp, token: &str, calls: Value) -> Value {
    let output = Command::new("node")
        .arg(format!("{ROOT}/tests/clients/ts_gateway_client.mjs"))
        .arg(app.url("/mcp"))
        .args(["--token", token, "--calls", &calls.to_string()])
        .output()
        .await
        .unwrap();
    last_json_line("the TS SDK client", &output)
}

pub(crate) fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub(crate) async fn add_server(ctx: &Ctx, body: Value) -> Value {
    let (status, created) = ctx.post("/api/v0/mcp-servers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// An MCP client's token for `/mcp`, with protection on.
pub(crate) async fn mcp_token(ctx: &Ctx) -> String {
    let (status, _) = ctx
        .send(
            reqwest::Method::PUT,
            "/api/v0/settings/mcp",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, created) = ctx
        .post(
            "/api/v0/settings/mcp/tokens",
            Some(json!({"name": "gateway client"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["token"].as_str().unwrap().to_string()
}

/// A connection to the test provider, connected through the popup flow.
async fn connected(ctx: &Ctx, issuer: &str) -> String {
    let id = ctx.create(custom(issuer, "Acme")).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    id
}

async fn revoke_at_provider(issuer: &str, token: &str) {
    let response = client()
        .post(format!("{issuer}/token/revocation"))
        .form(&[
            ("token", token),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn stored_access_token(ctx: &Ctx, id: &str) -> String {
    let tokens = ctx
        .app
        .state
        .db
        .find_connection_tokens(GrantKey::shared(id))
        .await
        .unwrap()
        .unwrap();
    ctx.app
        .state
        .connections
        .open(id, "access_token", &tokens.access_token)
        .unwrap()
        .expose()
        .to_string()
}

#[tokio::test]
async fn an_mcp_client_calls_tools_of_two_real_upstreams_with_credentials_it_never_sees() {
    let idp = OidcProvider::start(&["--connections", "--access-token-format", "opaque"]).await;
    let ctx = Ctx::with(gatehouse::server::config::RawSettings {
        mcp_oauth_enabled: Some("true".into()),
        ..crate::connections::settings()
    })
    .await;
    let connection = connected(&ctx, &idp.issuer).await;
    let resource = format!("{}/api", idp.issuer);
    let py = Upstream::resource_server(&idp.issuer, &resource).await;
    let ts = Upstream::ts_example().await;

    let created = add_server(
        &ctx,
        json!({"name": "acme", "url": py.url, "transport": "streamable_http", "auth": "connection", "connection_id": connection, "timeout_secs": 10}),
    )
    .await;
    assert_eq!(created["transport"], "http");
    assert_eq!(created["connection_name"], "Acme");
    add_server(&ctx, json!({"name": "examples", "url": ts.url})).await;
    let token = mcp_token(&ctx).await;

    let out = sdk_client(
        &ctx.app,
        &token,
        json!([
            ["acme__whoami", {}],
            ["acme__echo", {"text": "hello"}],
            ["examples__greet", {"name": "Ada"}],
            ["acme__seen_headers", {}],
            ["acme__nope", {}],
        ]),
    )
    .await;
    let names: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let (_, servers) = ctx.get("/api/v0/mcp-servers").await;
    for expected in [
        "whoami",
        "gatehouse_status",
        "acme__echo",
        "acme__whoami",
        "acme__seen_headers",
        "examples__greet",
        "examples__multi-greet",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} in {names:?}: {servers}"
        );
    }
    let echo_schema = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acme__echo")
        .unwrap();
    assert_eq!(echo_schema["inputSchema"]["required"], json!(["text"]));

    let results = out["results"].as_array().unwrap();
    let who: Value = serde_json::from_str(&text(&results[0])).unwrap();
    assert_eq!(who["authenticated"], true, "{who}");
    assert_eq!(who["audience"], resource.as_str());
    assert_eq!(who["subject"], "ops@example.com");
    assert_eq!(who["client_id"], CLIENT_ID);
    assert_eq!(text(&results[1]), "py-upstream: hello");
    assert!(text(&results[2]).contains("Hello, Ada"), "{}", results[2]);
    // The upstream saw the connection's token, nothing of the MCP client's.
    let seen: Value = serde_json::from_str(&text(&results[3])).unwrap();
    let upstream_token = stored_access_token(&ctx, &connection).await;
    assert_eq!(seen["authorization"], format!("Bearer {upstream_token}"));
    assert!(!seen.to_string().contains(&token));
    // (seen_headers echoes it by design; nothing else shows it to the client.)
    for shown in [
        &out["tools"],
        &results[0],
        &results[1],
        &results[2],
        &results[4],
    ] {
        assert!(!shown.to_string().contains(&upstream_token), "{shown}");
    }
    // An upstream error comes back as a tool error naming the server.
    assert_eq!(results[4]["isError"], true);
    assert!(text(&results[4]).contains("acme"), "{}", results[4]);

    // An MCP client that signed in through Gatehouse's OAuth (the TS SDK doing discovery,
    // registration, PKCE) calls both upstreams the same way.
    let state_dir = tempfile::tempdir().unwrap();
    let state_file = state_dir.path().join("oauth.json").display().to_string();
    let output = Command::new("node")
        .arg(format!("{ROOT}/tests/clients/ts_oauth_client.mjs"))
        .arg(ctx.app.url("/mcp"))
        .args(["--session", &ctx.session, "--state", &state_file, "--calls"])
        .arg(json!([["acme__whoami", {}], ["examples__greet", {"name": "Oauth"}]]).to_string())
        .output()
        .await
        .unwrap();
    let signed_in = last_json_line("the TS SDK OAuth client", &output);
    assert_eq!(signed_in["browsed"], 1, "{signed_in}");
    let who: Value = serde_json::from_str(&text(&signed_in["results"][0])).unwrap_or(Value::Null);
    assert_eq!(who["audience"], resource.as_str(), "{signed_in}");
    assert!(
        text(&signed_in["results"][1]).contains("Hello, Oauth"),
        "{signed_in}"
    );

    // The upstream adds a tool and says so (notifications/tools/list_changed on its GET
    // stream): the next lists show it without waiting for the timer.
    let mut mcp = RawMcp::with_token(&ctx.app, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let added = mcp
        .call(
            1,
            "tools/call",
            json!({"name": "acme__add_tool", "arguments": {"name": "fresh"}}),
        )
        .await;
    assert_eq!(text(&added["result"]), "added fresh", "{added}");
    let mut listed = false;
    for attempt in 0..40 {
        let list = mcp.call(100 + attempt, "tools/list", json!({})).await;
        if list.to_string().contains("acme__fresh") {
            listed = true;
            break;
        }
        // The notification travels on its own stream: give it a moment to arrive.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listed, "acme__fresh was never listed");

    // The access token expires at the provider mid-session (Gatehouse still thinks it valid):
    // the upstream answers 401, Gatehouse refreshes once and the call goes through.
    reset_stats(&idp.issuer).await;
    let expired = client()
        .post(format!("{}/__expire-access-token", idp.issuer))
        .form(&[("token", upstream_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::NO_CONTENT);
    let answer = mcp
        .call(
            2,
            "tools/call",
            json!({"name": "acme__echo", "arguments": {"text": "again"}}),
        )
        .await;
    assert_eq!(text(&answer["result"]), "py-upstream: again", "{answer}");
    assert_eq!(stats(&idp.issuer).await["grants"]["refresh_token"], 1);
    assert_ne!(stored_access_token(&ctx, &connection).await, upstream_token);

    // The whole grant is revoked: the refresh fails, and the caller is told to re-authorize.
    let refresh = ctx.stored_refresh_token(&connection).await;
    revoke_at_provider(&idp.issuer, &refresh).await;
    let answer = mcp
        .call(
            3,
            "tools/call",
            json!({"name": "acme__echo", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let message = text(&answer["result"]);
    assert!(
        message.contains("Re-authorize connection Acme") && message.contains("acme"),
        "{message}"
    );
    assert_eq!(ctx.view(&connection).await["status"], "needs_reauth");
    // The other upstream is unaffected.
    let answer = mcp
        .call(
            4,
            "tools/call",
            json!({"name": "examples__greet", "arguments": {"name": "Bo"}}),
        )
        .await;
    assert!(text(&answer["result"]).contains("Bo"), "{answer}");

    // A connection in use cannot be deleted.
    let (status, err) = ctx
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v0/connections/{connection}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(err.to_string().contains("acme"), "{err}");
}

/// The log lines written on this thread (the test's runtime, and so the server's) while the
/// guard lives.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn vault_secrets_reach_the_upstream_resolved_and_never_come_back() {
    const SECRET: &str = "vault-value-7f3a9c";
    let logs = Captured::default();
    let writer = logs.clone();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            // rmcp logs whole MCP messages at debug, and seen_headers sends the header (and
            // so the value) back by design: that is the upstream's answer, not Gatehouse's log.
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug,rmcp=info"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    let ctx = Ctx::new().await;
    let py = Upstream::python(
        &["--require-header", &format!("X-Api-Key=key-{SECRET}")],
        "/mcp",
    )
    .await;
    // A header naming a secret that is not in the vault is refused.
    let (status, err) = ctx
        .post(
            "/api/v0/mcp-servers",
            Some(json!({"name": "keyed", "url": py.url, "auth": "headers", "headers": [["X-Api-Key", "key-${API_KEY}"]]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err.to_string().contains("API_KEY"), "{err}");

    let (status, _) = ctx
        .send(
            reqwest::Method::PUT,
            "/api/v0/secrets/API_KEY",
            Some(json!({"value": SECRET})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let created = add_server(
        &ctx,
        json!({"name": "keyed", "url": py.url, "auth": "headers", "headers": [["X-Api-Key", "key-${API_KEY}"], ["X-Team", "ops"]]}),
    )
    .await;
    assert_eq!(created["header_names"], json!(["X-Api-Key", "X-Team"]));
    assert_eq!(created["secret_refs"], json!(["API_KEY"]));
    let id = created["id"].as_str().unwrap();

    let token = mcp_token(&ctx).await;
    let out = sdk_client(&ctx.app, &token, json!([["keyed__seen_headers", {}]])).await;
    let seen: Value = serde_json::from_str(&text(&out["results"][0])).unwrap();
    assert_eq!(seen["custom"]["x-api-key"], format!("key-{SECRET}"));
    assert_eq!(seen["custom"]["x-team"], "ops");
    assert_eq!(
        seen["authorization"],
        Value::Null,
        "no token of the MCP client"
    );

    // "Test" works, and nothing in the API shows the value.
    let (status, tested) = ctx
        .post(&format!("/api/v0/mcp-servers/{id}/test"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(tested["server_name"], "py-upstream");
    let mut everything = String::new();
    for path in [
        "/api/v0/mcp-servers".to_string(),
        format!("/api/v0/mcp-servers/{id}"),
        "/api/v0/secrets".to_string(),
    ] {
        let (_, body) = ctx.get(&path).await;
        everything.push_str(&body.to_string());
    }
    assert!(!everything.contains(SECRET), "{everything}");
    let (_, secrets) = ctx.get("/api/v0/secrets").await;
    assert_eq!(secrets["secrets"][0]["name"], "API_KEY");
    assert_eq!(secrets["secrets"][0]["used_by"], json!(["keyed"]));

    // In use: deleting it is refused, with the user named.
    let (status, err) = ctx
        .send(reqwest::Method::DELETE, "/api/v0/secrets/API_KEY", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(err.to_string().contains("keyed"), "{err}");

    // Replacing the value takes effect at the next call; the old one is gone.
    let (status, _) = ctx
        .send(
            reqwest::Method::PUT,
            "/api/v0/secrets/API_KEY",
            Some(json!({"value": "wrong"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let out = sdk_client(&ctx.app, &token, json!([["keyed__echo", {"text": "x"}]])).await;
    assert_eq!(out["results"][0]["isError"], true);
    assert!(
        text(&out["results"][0]).contains("check the headers"),
        "{}",
        out["results"][0]
    );

    // Editing without headers keeps them; deleting the server frees the secret.
    let (status, edited) = ctx
        .send(
            reqwest::Method::PUT,
            &format!("/api/v0/mcp-servers/{id}"),
            Some(json!({"name": "keyed", "url": py.url, "auth": "headers", "timeout_secs": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["header_names"], json!(["X-Api-Key", "X-Team"]));
    let (status, _) = ctx
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v0/mcp-servers/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = ctx
        .send(reqwest::Method::DELETE, "/api/v0/secrets/API_KEY", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The database holds the value sealed only.
    let stored = ctx.app.stored_text().await;
    assert!(stored.contains("gateway client"), "{stored}");
    assert!(!stored.contains(SECRET));

    // Nor is it in the log, at debug level, though the log saw all of the above.
    let log = logs.text();
    assert!(log.contains("vault secret saved"), "{log}");
    let leaked: Vec<&str> = log.lines().filter(|l| l.contains(SECRET)).collect();
    assert!(leaked.is_empty(), "the secret is in the log: {leaked:#?}");
}

#[tokio::test]
async fn a_stdio_command_line_is_told_why_stdio_is_refused() {
    let ctx = Ctx::new().await;
    for body in [
        json!({"name": "x", "url": "npx -y some-mcp-server", "transport": "stdio"}),
        // The transport left at its default: the command line still reads as stdio.
        json!({"name": "x", "url": "npx -y some-mcp-server"}),
    ] {
        let (status, err) = ctx.post("/api/v0/mcp-servers", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains("stdio transport is not supported"),
            "{body}: {message}"
        );
        assert!(!message.contains("relative URL"), "{message}");
    }
}

#[tokio::test]
async fn a_hanging_upstream_does_not_hold_up_the_others() {
    let ctx = Ctx::new().await;
    let py = Upstream::python(&["--transport", "sse"], "/sse").await;
    // Accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("http://{}/mcp", hang.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            held.push(socket);
        }
    });
    add_server(
        &ctx,
        json!({"name": "legacy", "url": py.url, "transport": "sse"}),
    )
    .await;
    add_server(
        &ctx,
        json!({"name": "stuck", "url": hang_url, "timeout_secs": 2}),
    )
    .await;
    let token = mcp_token(&ctx).await;

    let started = Instant::now();
    let out = sdk_client(
        &ctx.app,
        &token,
        json!([["legacy__echo", {"text": "sse"}], ["stuck__anything", {}]]),
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let names: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"legacy__echo"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("stuck__")), "{names:?}");
    assert_eq!(text(&out["results"][0]), "py-upstream: sse");
    assert_eq!(out["results"][1]["isError"], true);
    assert!(
        text(&out["results"][1]).contains("stuck"),
        "{}",
        out["results"][1]
    );

    let (_, list) = ctx.get("/api/v0/mcp-servers").await;
    let stuck = list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "stuck")
        .unwrap();
    assert_eq!(stuck["status"], "failing", "{stuck}");
    assert!(
        stuck["last_error"].as_str().unwrap().contains("2 s"),
        "{stuck}"
    );
    let legacy = list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "legacy")
        .unwrap();
    assert_eq!(legacy["status"], "healthy", "{legacy}");

    // Entries are checked.
    for (body, needle) in [
        (
            json!({"name": "x", "url": "http://127.0.0.1:1/mcp", "transport": "stdio"}),
            "stdio",
        ),
        (
            json!({"name": "Bad_Name", "url": "http://127.0.0.1:1/mcp"}),
            "name",
        ),
        (json!({"name": "y", "url": "ftp://example.com/"}), "https"),
        (
            json!({"name": "legacy", "url": "http://127.0.0.1:1/mcp"}),
            "exists",
        ),
        (
            json!({"name": "z", "url": "http://127.0.0.1:1/mcp", "auth": "connection"}),
            "connection",
        ),
        (
            json!({"name": "w", "url": "http://127.0.0.1:1/mcp", "auth": "headers", "headers": [["Host", "x"]]}),
            "Host",
        ),
    ] {
        let (status, err) = ctx.post("/api/v0/mcp-servers", Some(body.clone())).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT,
            "{body}: {status}"
        );
        assert!(err.to_string().contains(needle), "{body}: {err}");
    }
}

#[tokio::test]
async fn a_token_the_upstream_keeps_refusing_asks_for_re_authorization() {
    let idp = OidcProvider::start(&["--connections", "--access-token-format", "opaque"]).await;
    let ctx = Ctx::new().await;
    // The connection's tokens are for another resource: valid at the provider, but the
    // upstream (which wants `/api`) refuses them, before and after a refresh.
    let mut body = custom(&idp.issuer, "Elsewhere");
    body["resource"] = json!(format!("{}/other", idp.issuer));
    let connection = ctx.create(body).await;
    let (status, page) = ctx.connect(&connection, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let resource = format!("{}/api", idp.issuer);
    let py = Upstream::resource_server(&idp.issuer, &resource).await;
    let created = add_server(
        &ctx,
        json!({"name": "strict", "url": py.url, "auth": "connection", "connection_id": connection}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    reset_stats(&idp.issuer).await;

    let (_, tested) = ctx
        .post(&format!("/api/v0/mcp-servers/{id}/test"), None)
        .await;
    assert_eq!(tested["ok"], false, "{tested}");
    let error = tested["error"].as_str().unwrap();
    assert!(
        error.contains("re-authorize connection Elsewhere")
            && error.contains("even after a refresh"),
        "{error}"
    );
    // Exactly one refresh was tried, then the connection was marked.
    assert_eq!(stats(&idp.issuer).await["grants"]["refresh_token"], 1);
    let view = ctx.view(&connection).await;
    assert_eq!(view["status"], "needs_reauth", "{view}");
    assert!(
        view["last_error"].as_str().unwrap().contains("strict"),
        "{view}"
    );
}

#[tokio::test]
async fn a_tool_the_policy_hides_is_neither_listed_nor_callable_by_name() {
    let ctx = Ctx::new().await;
    let py = Upstream::python(&[], "/mcp").await;
    let created = add_server(
        &ctx,
        json!({"name": "py", "url": py.url,
               "policy": {"tools": {"mode": "deny", "patterns": [" seen_* ", "add_tool"]}}}),
    )
    .await;
    assert_eq!(
        created["policy"]["tools"],
        json!({"mode": "deny", "patterns": ["seen_*", "add_tool"]})
    );
    let token = mcp_token(&ctx).await;
    let mut mcp = RawMcp::with_token(&ctx.app, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let names = |list: &Value| -> Vec<String> {
        list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let listed = names(&mcp.call(1, "tools/list", json!({})).await);
    assert!(listed.contains(&"py__echo".to_string()), "{listed:?}");
    assert!(listed.contains(&"py__whoami".to_string()), "{listed:?}");
    assert!(
        !listed
            .iter()
            .any(|n| n == "py__seen_headers" || n == "py__add_tool"),
        "{listed:?}"
    );

    // Called by name anyway: the answer of a tool that does not exist, and the upstream is
    // never asked (add_tool would have added a tool).
    for (id, hidden) in [(2, "py__seen_headers"), (3, "py__add_tool")] {
        let refused = mcp
            .call(
                id,
                "tools/call",
                json!({"name": hidden, "arguments": {"name": "sneaky"}}),
            )
            .await;
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
        assert_eq!(
            refused["error"]["message"],
            format!("Unknown tool: {hidden}")
        );
    }
    let echoed = mcp
        .call(
            4,
            "tools/call",
            json!({"name": "py__echo", "arguments": {"text": "hi"}}),
        )
        .await;
    assert_eq!(text(&echoed["result"]), "py-upstream: hi");

    // An allow-list instead, by edit: only what it names is offered.
    let id = created["id"].as_str().unwrap();
    let mut edit = created.clone();
    for k in [
        "id",
        "connection_name",
        "header_names",
        "secret_refs",
        "status",
        "last_error",
        "latency_ms",
        "tools",
        "created_at",
        "updated_at",
        "personal",
        "calls",
    ] {
        edit.as_object_mut().unwrap().remove(k);
    }
    edit["policy"] = json!({"tools": {"mode": "allow", "patterns": ["echo"]}});
    let (status, saved) = ctx
        .send(
            reqwest::Method::PUT,
            &format!("/api/v0/mcp-servers/{id}"),
            Some(edit.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let listed = names(&mcp.call(5, "tools/list", json!({})).await);
    let ours: Vec<&String> = listed.iter().filter(|n| n.starts_with("py__")).collect();
    assert_eq!(ours, ["py__echo"], "{listed:?}");
    let refused = mcp
        .call(
            6,
            "tools/call",
            json!({"name": "py__whoami", "arguments": {}}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    // The card says what is offered.
    let (_, list) = ctx.get("/api/v0/mcp-servers").await;
    assert_eq!(
        list["servers"][0]["policy"]["tools"]["patterns"],
        json!(["echo"])
    );
    assert_eq!(list["servers"][0]["tools"].as_array().unwrap().len(), 1);

    // A pattern that is no name is refused, saying which.
    edit["policy"] = json!({"tools": {"mode": "deny", "patterns": ["two words"]}});
    let (status, err) = ctx
        .send(
            reqwest::Method::PUT,
            &format!("/api/v0/mcp-servers/{id}"),
            Some(edit),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("\"two words\""),
        "{err}"
    );
}

/// Runs tests/clients/{py,ts}_<script>_client against `/mcp` for the server `py`, in `era`
/// (py: --mode, ts: --era), with `extra` arguments; its last JSON line.
async fn script_client(
    app: &TestApp,
    token: &str,
    script: &str,
    sdk: &str,
    era: &str,
    extra: &[&str],
) -> Value {
    let url = app.url("/mcp");
    let mut command = match sdk {
        "py" => {
            let mut c = Command::new(format!("{ROOT}/.venv/bin/python"));
            c.arg(format!("{ROOT}/tests/clients/py_{script}_client.py"))
                .arg(&url)
                .args(["--mode", era]);
            c
        }
        _ => {
            let mut c = Command::new("node");
            c.arg(format!("{ROOT}/tests/clients/ts_{script}_client.mjs"))
                .arg(&url)
                .args(["--era", era]);
            c
        }
    };
    let output = command
        .args(["--token", token, "--server", "py"])
        .args(extra)
        .output()
        .await
        .unwrap();
    last_json_line(&format!("the {sdk} SDK client ({script}, {era})"), &output)
}

#[tokio::test]
async fn an_upstreams_prompts_resources_and_completions_reach_both_sdks_in_both_eras() {
    let ctx = Ctx::new().await;
    let py = Upstream::python(&[], "/mcp").await;
    add_server(
        &ctx,
        json!({"name": "py", "url": py.url, "policy": {
            "prompts": {"mode": "deny", "patterns": ["internal_*"]},
            "resources": {"mode": "deny", "patterns": ["file:///private/*"]}
        }}),
    )
    .await;
    let token = mcp_token(&ctx).await;
    for (sdk, era) in [
        ("py", "legacy"),
        ("py", "2026-07-28"),
        ("ts", "legacy"),
        ("ts", "modern"),
    ] {
        let out = script_client(&ctx.app, &token, "offers", sdk, era, &[]).await;
        let at = format!("{sdk} {era}: {out}");
        assert_eq!(out["prompts"], json!(["py__summarize"]), "{at}");
        assert_eq!(
            out["resources"],
            json!(["gatehouse://py/file:///docs/readme.md"]),
            "{at}"
        );
        assert_eq!(
            out["templates"],
            json!(["gatehouse://py/users://{user_id}/profile"]),
            "{at}"
        );
        assert_eq!(
            out["prompt"],
            json!(["Summarize gateways in three lines."]),
            "{at}"
        );
        assert_eq!(
            out["reads"],
            json!([
                {"uri": "gatehouse://py/file:///docs/readme.md", "text": "# py-upstream readme"},
                {"uri": "gatehouse://py/users://alice/profile", "text": "{\"user\": \"alice\"}"}
            ]),
            "{at}"
        );
        assert_eq!(
            out["completions"],
            json!([["gateways", "gardens"], ["alice", "albert"]]),
            "{at}"
        );
    }

    // What the policy hides is refused by name, and so is what no server has.
    let mut mcp = RawMcp::with_token(&ctx.app, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let hidden = mcp
        .call(1, "prompts/get", json!({"name": "py__internal_notes"}))
        .await;
    assert_eq!(hidden["error"]["code"], -32602, "{hidden}");
    assert_eq!(
        hidden["error"]["message"],
        "Unknown prompt: py__internal_notes"
    );
    for (id, uri) in [
        (2, "gatehouse://py/file:///private/keys.txt"),
        (3, "gatehouse://nowhere/file:///docs/readme.md"),
        (4, "file:///docs/readme.md"),
    ] {
        let refused = mcp.call(id, "resources/read", json!({"uri": uri})).await;
        assert_eq!(refused["error"]["code"], -32002, "{uri}: {refused}");
        assert_eq!(
            refused["error"]["message"],
            format!("Unknown resource: {uri}")
        );
    }
}

#[tokio::test]
async fn an_upstreams_requests_progress_and_log_messages_reach_the_calling_client() {
    let ctx = Ctx::new().await;
    let py = Upstream::python(&[], "/mcp").await;
    add_server(&ctx, json!({"name": "py", "url": py.url})).await;
    let token = mcp_token(&ctx).await;
    let ok = |text: &str| json!({"isError": false, "text": text});
    // 2025 era: the requests go to the client on its call's stream. 2026-07-28: the call is
    // answered with an InputRequiredResult per request and the client's retries carry the
    // answers back to the waiting upstream.
    let eras = [
        ("py", "legacy"),
        ("ts", "legacy"),
        ("py", "2026-07-28"),
        ("ts", "modern"),
    ];
    for (sdk, era) in eras {
        let out = script_client(&ctx.app, &token, "relay", sdk, era, &[]).await;
        let at = format!("{sdk} {era}: {out}");
        let r = &out["results"];
        assert_eq!(r["count"], ok("counted to 3"), "{at}");
        assert_eq!(r["ask_colour"], ok("the user likes teal"), "{at}");
        assert_eq!(
            r["haiku"],
            ok("the model wrote: leaves fall (A haiku about autumn)"),
            "{at}"
        );
        assert_eq!(r["roots"], ok("roots: file:///work/project"), "{at}");
        assert_eq!(
            out["asked"],
            json!([
                "elicitation: What is your favourite colour?",
                "sampling: A haiku about autumn",
                "roots"
            ]),
            "{at}"
        );
        // Progress is relayed under the client's own token; notifications run concurrently,
        // so one may come after the result (and is then dropped): some arrive, all genuine.
        let progress = out["progress"].as_array().unwrap();
        assert!(!progress.is_empty(), "{at}");
        for p in progress {
            let step = p[0].as_f64().unwrap();
            assert_eq!(p[1].as_f64(), Some(3.0), "{at}");
            assert_eq!(p[2], format!("step {step}"), "{at}");
        }
        for log in out["logs"].as_array().unwrap() {
            assert!(log.as_str().unwrap().starts_with("counted "), "{at}");
        }
    }

    // A client that cannot sample: the upstream hears "method not found" and says so in the
    // tool's result; the other requests still work.
    for (sdk, era) in eras {
        let out = script_client(&ctx.app, &token, "relay", sdk, era, &["--no-sampling"]).await;
        let at = format!("{sdk} {era}: {out}");
        let haiku = &out["results"]["haiku"];
        assert_eq!(haiku["isError"], true, "{at}");
        assert!(
            haiku["text"]
                .as_str()
                .unwrap()
                .contains("does not support sampling"),
            "{at}"
        );
        assert_eq!(
            out["results"]["roots"],
            ok("roots: file:///work/project"),
            "{at}"
        );
    }
}

#[tokio::test]
async fn a_2026_only_upstreams_input_required_rounds_reach_clients_of_both_eras() {
    // The upstream refuses `initialize`: Gatehouse speaks 2026-07-28 to it, and its tool asks
    // the user through an InputRequiredResult, which Gatehouse hands to the client (2025 era:
    // as elicitation/create on the call's stream; 2026: as its own InputRequiredResult) and
    // brings the answer back with the upstream's requestState.
    let ctx = Ctx::new().await;
    let py = Upstream::python(&["--modern-only"], "/mcp").await;
    add_server(&ctx, json!({"name": "py", "url": py.url})).await;
    let token = mcp_token(&ctx).await;
    for (sdk, era) in [
        ("py", "legacy"),
        ("ts", "legacy"),
        ("py", "2026-07-28"),
        ("ts", "modern"),
    ] {
        let out = script_client(
            &ctx.app,
            &token,
            "relay",
            sdk,
            era,
            &["--tools", "ask_colour_resolved,count"],
        )
        .await;
        let at = format!("{sdk} {era}: {out}");
        assert_eq!(
            out["results"]["ask_colour_resolved"],
            json!({"isError": false, "text": "the user likes teal"}),
            "{at}"
        );
        assert_eq!(
            out["asked"],
            json!(["elicitation: What is your favourite colour?"]),
            "{at}"
        );
        assert_eq!(
            out["results"]["count"],
            json!({"isError": false, "text": "counted to 3"}),
            "{at}"
        );
    }
}

/// Reads an SSE stream until `what` has come by, for `secs` at most: what came (`Err` when
/// `what` did not).
async fn hear(stream: &mut reqwest::Response, what: &str, secs: u64) -> Result<String, String> {
    let mut seen = String::new();
    let heard = tokio::time::timeout(Duration::from_secs(secs), async {
        while !seen.contains(what) {
            match stream.chunk().await {
                Ok(Some(chunk)) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return false,
            }
        }
        true
    })
    .await;
    match heard {
        Ok(true) => Ok(seen),
        _ => Err(seen),
    }
}

/// `hear` for 10 seconds, or a panic.
async fn until_heard(stream: &mut reqwest::Response, what: &str) -> String {
    hear(stream, what, 10)
        .await
        .unwrap_or_else(|seen| panic!("never heard {what}; heard {seen:?}"))
}

/// Does `act` until `what` comes by on `stream`. An upstream's own stream to Gatehouse opens
/// a moment after its session, and what the upstream announces before that has nowhere to
/// go (the spec lets a server drop it), so a test that acts at once may need to act again.
async fn act_until_heard<F, Fut>(stream: &mut reqwest::Response, what: &str, mut act: F) -> String
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = ()>,
{
    for attempt in 0..10 {
        act(attempt).await;
        if let Ok(seen) = hear(stream, what, 1).await {
            return seen;
        }
    }
    panic!("never heard {what}");
}

/// Asks the upstream's `slow_calls` until `done` says its count is reached.
async fn slow_calls_until(mcp: &RawMcp<'_>, key: &str, count: i64) {
    for attempt in 0..100 {
        let answer = mcp
            .call_tool(1000 + attempt, "py__slow_calls", json!({}))
            .await;
        let calls: Value = serde_json::from_str(&text(&answer["result"])).unwrap();
        if calls[key] == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the upstream never counted {count} {key} slow calls");
}

#[tokio::test]
async fn an_upstreams_list_changes_reach_clients_and_a_cancelled_call_is_cancelled_upstream() {
    let ctx = Ctx::new().await;
    let py = Upstream::python(&[], "/mcp").await;
    add_server(&ctx, json!({"name": "py", "url": py.url})).await;
    let token = mcp_token(&ctx).await;
    let mut mcp = RawMcp::with_token(&ctx.app, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    // The session's own stream, where a 2025-era client hears of changes.
    let mut stream = mcp.request(reqwest::Method::GET).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    // The upstream adds a prompt and a resource, announcing each on its stream to Gatehouse.
    for (id, tool, arguments, notification, method, listed) in [
        (
            1,
            "py__add_prompt",
            json!({"name": "fresh_prompt"}),
            "notifications/prompts/list_changed",
            "prompts/list",
            "py__fresh_prompt",
        ),
        (
            2,
            "py__add_resource",
            json!({"uri": "file:///docs/fresh.md"}),
            "notifications/resources/list_changed",
            "resources/list",
            "gatehouse://py/file:///docs/fresh.md",
        ),
    ] {
        act_until_heard(&mut stream, notification, |attempt| {
            let added = mcp.call_tool(100 * id + attempt, tool, arguments.clone());
            async move {
                let added = added.await;
                assert_eq!(added["result"]["isError"], false, "{added}");
            }
        })
        .await;
        let list = mcp.call(10 + id, method, json!({})).await;
        assert!(list.to_string().contains(listed), "{method}: {list}");
    }

    // A call the client cancels is cancelled at the upstream too.
    let slow = mcp.request(reqwest::Method::POST).json(&json!({
        "jsonrpc": "2.0", "id": 77, "method": "tools/call",
        "params": {"name": "py__slow", "arguments": {}}
    }));
    let slow = tokio::spawn(async move { slow.send().await.map(|r| r.status()) });
    slow_calls_until(&mcp, "started", 1).await;
    let (status, _, _) = mcp
        .post(json!({
            "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 77, "reason": "the user pressed stop"}
        }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    slow_calls_until(&mcp, "cancelled", 1).await;
    slow.abort();
}

/// The upstream's `touch` of its readme: an update if anyone subscribed; who did.
async fn touch(mcp: &RawMcp<'_>, id: i64) -> String {
    let answer = mcp
        .call_tool(id, "py__touch", json!({"uri": "file:///docs/readme.md"}))
        .await;
    text(&answer["result"])
}

#[tokio::test]
async fn subscriptions_to_an_upstreams_resources_reach_it_and_its_updates_come_back() {
    let ctx = Ctx::new().await;
    let py = Upstream::python(&[], "/mcp").await;
    add_server(
        &ctx,
        json!({"name": "py", "url": py.url, "policy": {
            "resources": {"mode": "deny", "patterns": ["file:///private/*"]}
        }}),
    )
    .await;
    let token = mcp_token(&ctx).await;
    let readme = "gatehouse://py/file:///docs/readme.md";

    // 2025 era: resources/subscribe, the updates on the session's stream.
    let mut mcp = RawMcp::with_token(&ctx.app, &token);
    let init = mcp.initialize(LATEST_SESSION_VERSION).await;
    assert_eq!(
        init["result"]["capabilities"]["resources"]["subscribe"], true,
        "{init}"
    );
    let mut stream = mcp.request(reqwest::Method::GET).send().await.unwrap();
    let subscribed = mcp
        .call(1, "resources/subscribe", json!({"uri": readme}))
        .await;
    assert_eq!(subscribed["result"], json!({}), "{subscribed}");
    let heard = act_until_heard(&mut stream, "notifications/resources/updated", |attempt| {
        let touched = touch(&mcp, 200 + attempt);
        async move { assert_eq!(touched.await, r#"["file:///docs/readme.md"]"#) }
    })
    .await;
    assert!(heard.contains(readme), "{heard}");
    for (id, uri) in [
        (3, "gatehouse://py/file:///private/keys.txt"),
        (4, "gatehouse://nowhere/file:///docs/readme.md"),
    ] {
        let refused = mcp
            .call(id, "resources/subscribe", json!({"uri": uri}))
            .await;
        assert_eq!(refused["error"]["code"], -32002, "{uri}: {refused}");
    }
    let unsubscribed = mcp
        .call(5, "resources/unsubscribe", json!({"uri": readme}))
        .await;
    assert_eq!(unsubscribed["result"], json!({}), "{unsubscribed}");
    assert_eq!(touch(&mcp, 6).await, "[]", "the upstream was unsubscribed");

    // 2026-07-28: subscriptions/listen names the resource; the upstream is subscribed while
    // the stream lasts.
    let listen = crate::input_required::modern(
        &ctx.app,
        Some(&token),
        "subscriptions/listen",
        json!({
            "_meta": crate::input_required::meta(json!({})),
            "notifications": {"resourceSubscriptions": [readme]}
        }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(listen.status(), StatusCode::OK);
    let mut listen = listen;
    until_heard(&mut listen, "notifications/subscriptions/acknowledged").await;
    let mut touched = String::new();
    for id in 7..100 {
        touched = touch(&mcp, id).await;
        if touched != "[]" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(touched, r#"["file:///docs/readme.md"]"#);
    let heard = until_heard(&mut listen, "notifications/resources/updated").await;
    assert!(heard.contains(readme), "{heard}");
    drop(listen);
    let mut left = String::new();
    for id in 100..200 {
        left = touch(&mcp, id).await;
        if left == "[]" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        left, "[]",
        "the stream ended: the upstream was unsubscribed"
    );
}

#[tokio::test]
async fn an_mcp_server_with_its_own_authorization_server_is_added_by_its_url_alone() {
    // The upstream is a resource server of `idp` at its own URL; Gatehouse knows neither the
    // issuer nor a client: it has the URL only.
    let idp = authorization_server().await;
    let py = hosted_on(free_port(), &idp.issuer, &[]).await;
    let ctx = discovering().await;
    let created = add_server(
        &ctx,
        json!({"name": "hosted", "url": py.url, "auth": "discover"}),
    )
    .await;
    assert_eq!(created["auth"], "connection", "{created}");
    let id = created["connection_id"].as_str().unwrap().to_string();
    let connection = ctx.view(&id).await;
    assert_eq!(connection["name"], "hosted (MCP sign-in)");
    assert_eq!(connection["resource"], py.url.as_str(), "{connection}");
    assert_eq!(connection["dynamic_registration"], true, "{connection}");
    assert_eq!(connection["registered"], false, "{connection}");
    assert_eq!(connection["pkce"], true);
    assert_eq!(
        connection["authorization_url"],
        format!("{}/auth", idp.issuer)
    );
    assert_eq!(
        connection["provider_domain_url"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        idp.issuer
    );

    // An answer naming another issuer is refused before its code is used (RFC 9207).
    let forged = connect_with_iss(&ctx, &id, Iss::Replaced("http://127.0.0.1:1/evil")).await;
    assert_eq!(forged.0, StatusCode::BAD_REQUEST, "{}", forged.1);
    assert!(forged.1.contains("mix-up"), "{}", forged.1);
    // The server promises `iss` (authorization_response_iss_parameter_supported): an answer
    // without it is refused too.
    let bare = connect_with_iss(&ctx, &id, Iss::Dropped).await;
    assert_eq!(bare.0, StatusCode::BAD_REQUEST, "{}", bare.1);
    assert!(bare.1.contains("promises to name itself"), "{}", bare.1);
    // Registered at the first Connect; signed in with the genuine answer.
    assert_eq!(ctx.view(&id).await["registered"], true);
    let (status, page) = connect_with_iss(&ctx, &id, Iss::Kept).await;
    assert_eq!(status, StatusCode::OK, "{page}");

    let token = mcp_token(&ctx).await;
    let out = sdk_client(
        &ctx.app,
        &token,
        json!([["hosted__whoami", {}], ["hosted__echo", {"text": "by url"}]]),
    )
    .await;
    let who: Value = serde_json::from_str(&text(&out["results"][0])).unwrap();
    assert_eq!(who["authenticated"], true, "{out}");
    assert_eq!(who["subject"], "ops@example.com");
    assert_eq!(who["audience"], py.url.as_str());
    assert_eq!(text(&out["results"][1]), "py-upstream: by url");

    // Its prompts and resources come through too.
    let mut mcp = RawMcp::with_token(&ctx.app, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let prompts = mcp.call(1, "prompts/list", json!({})).await;
    assert!(
        prompts["result"]["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "hosted__summarize"),
        "{prompts}"
    );
    let read = mcp
        .call(
            2,
            "resources/read",
            json!({"uri": "gatehouse://hosted/file:///docs/readme.md"}),
        )
        .await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "# py-upstream readme",
        "{read}"
    );

    // A catalog entry signed in to by discovery is added by its id alone: no client, no
    // connection to choose.
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        json!([{"id": "hosted-test", "name": "Hosted (test)", "server_name": "hosted2",
                "description": "d", "url": py.url, "transport": "http", "provider": null,
                "docs_url": "https://example.com/docs", "sign_in": "discover",
                "sources": ["https://example.com/docs"]}])
        .to_string(),
    )
    .unwrap();
    let listed = Ctx::with(gatehouse::server::config::RawSettings {
        mcp_catalog: Some(catalog.display().to_string()),
        ..crate::connections::settings()
    })
    .await;
    let (_, entries) = listed.get("/api/v0/mcp-catalog").await;
    let entry = entries
        .as_array()
        .or_else(|| entries["entries"].as_array())
        .unwrap()
        .iter()
        .find(|e| e["id"] == "hosted-test")
        .cloned()
        .unwrap();
    assert_eq!(entry["sign_in"], "discover", "{entry}");
    let from_catalog = add_server(&listed, json!({"catalog_id": "hosted-test"})).await;
    assert_eq!(from_catalog["auth"], "connection", "{from_catalog}");
    let made = listed
        .view(from_catalog["connection_id"].as_str().unwrap())
        .await;
    assert_eq!(made["dynamic_registration"], true, "{made}");
    assert_eq!(made["resource"], py.url.as_str());

    // A server that asks for no sign-in is told so; nothing is created.
    let open = Upstream::python(&[], "/mcp").await;
    let (status, err) = ctx
        .post(
            "/api/v0/mcp-servers",
            Some(json!({"name": "open", "url": open.url, "auth": "discover"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("does not ask for sign-in"),
        "{err}"
    );
    let (_, all) = ctx.get("/api/v0/connections").await;
    assert_eq!(all["connections"].as_array().unwrap().len(), 1, "{all}");
}

/// A signed-in app whose outbound calls may take their time: discovery makes several in a
/// row, and a test machine under load is slow.
async fn discovering() -> Ctx {
    Ctx::with(gatehouse::server::config::RawSettings {
        outbound_timeout: Some("10".into()),
        ..crate::connections::settings()
    })
    .await
}

/// What a test does to the `iss` of the authorization answer before it reaches Gatehouse.
enum Iss<'a> {
    Kept,
    Replaced(&'a str),
    Dropped,
}

/// Connect through the provider, coming back with the answer's `iss` as `iss` says: the
/// callback's status and page.
async fn connect_with_iss(ctx: &Ctx, id: &str, iss: Iss<'_>) -> (StatusCode, String) {
    let (status, started) = ctx
        .post(&format!("/api/v0/connections/{id}/connect"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let mut browser = Browser::default();
    let back = walk_provider(
        &mut browser,
        started["authorization_url"].as_str().unwrap(),
        &ctx.app.url("/connections/oauth/callback"),
        Some("ops@example.com"),
    )
    .await;
    let mut url = url::Url::parse(&back).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "iss" || matches!(iss, Iss::Kept))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        if let Iss::Replaced(iss) = iss {
            q.append_pair("iss", iss);
        }
    }
    let page = ctx
        .app
        .client
        .get(url.as_str())
        .bearer_auth(&ctx.session)
        .send()
        .await
        .unwrap();
    (page.status(), page.text().await.unwrap())
}

#[tokio::test]
async fn a_tool_needing_a_scope_the_grant_lacks_steps_up_to_the_union_of_scopes() {
    let idp = authorization_server().await;
    let py = hosted_on(
        free_port(),
        &idp.issuer,
        &["--tool-scope", "write_note=write"],
    )
    .await;
    let ctx = discovering().await;
    let created = add_server(
        &ctx,
        json!({"name": "notes", "url": py.url, "auth": "discover"}),
    )
    .await;
    let id = created["connection_id"].as_str().unwrap().to_string();
    let (status, page) = connect_with_iss(&ctx, &id, Iss::Kept).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let token = mcp_token(&ctx).await;

    // Read access works; writing answers 403 insufficient_scope naming "read write".
    let out = sdk_client(
        &ctx.app,
        &token,
        json!([["notes__echo", {"text": "r"}], ["notes__write_note", {"text": "hi"}]]),
    )
    .await;
    assert_eq!(text(&out["results"][0]), "py-upstream: r");
    assert_eq!(out["results"][1]["isError"], true, "{out}");
    let told = text(&out["results"][1]);
    assert!(
        told.contains("re-authorized") && told.contains("read write"),
        "{told}"
    );
    let connection = ctx.view(&id).await;
    assert_eq!(
        connection["scopes"],
        json!(["read", "write"]),
        "{connection}"
    );
    assert_eq!(connection["status"], "needs_reauth", "{connection}");

    // Authorized again (with the union): the call goes through. The client registered
    // with the narrower scopes was deleted at the authorization server (RFC 7592).
    let (status, page) = connect_with_iss(&ctx, &id, Iss::Kept).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let counted = stats(&idp.issuer).await;
    assert_eq!(counted["registrations"], 2, "{counted}");
    assert_eq!(counted["registrations_deleted"], 1, "{counted}");
    let out = sdk_client(
        &ctx.app,
        &token,
        json!([["notes__write_note", {"text": "hi"}]]),
    )
    .await;
    assert_eq!(text(&out["results"][0]), "noted: hi", "{out}");
}

#[tokio::test]
async fn the_ts_sdks_example_server_with_oauth_is_signed_in_to_by_discovery() {
    // The SDK's example server and its demo authorization server (dynamic registration,
    // PKCE, an authorization endpoint that signs the demo user in at once).
    let ts = Upstream::ts_example_with(&["--oauth"]).await;
    let ctx = discovering().await;
    let created = add_server(
        &ctx,
        json!({"name": "demo", "url": ts.url, "auth": "discover"}),
    )
    .await;
    let id = created["connection_id"].as_str().unwrap().to_string();
    let connection = ctx.view(&id).await;
    assert_eq!(connection["scopes"], json!(["mcp:tools"]), "{connection}");
    assert_eq!(connection["dynamic_registration"], true);
    let (status, page) = ctx.connect(&id, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // Registered at the demo server (which offers no RFC 7592 management).
    assert!(ctx.view(&id).await["client_id"].is_string());

    let token = mcp_token(&ctx).await;
    let out = sdk_client(
        &ctx.app,
        &token,
        json!([["demo__greet", {"name": "Gatehouse"}]]),
    )
    .await;
    assert_eq!(text(&out["results"][0]), "Hello, Gatehouse!", "{out}");
}

#[tokio::test]
async fn an_authorization_server_that_reads_client_metadata_documents_gets_no_registration() {
    // Local https with a throwaway CA: the authorization server serves https (trusted by
    // Gatehouse through OUTBOUND_CA_CERTS, by the upstream through --ca-file), and Gatehouse
    // is at an https PUBLIC_URL behind a TLS front, where the authorization server fetches its
    // client ID metadata document (trusting the CA through NODE_EXTRA_CA_CERTS).
    let dir = tempfile::tempdir().unwrap();
    let ca = ThrowawayCa::make(dir.path()).await;
    let (cert, key) = (ca.cert.to_str().unwrap(), ca.key.to_str().unwrap());
    let idp = OidcProvider::start_with_env(
        &[
            "--connections",
            "--resource-prefix",
            "http://127.0.0.1:",
            "--cimd",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ],
        &[("NODE_EXTRA_CA_CERTS", &ca.ca)],
    )
    .await;
    assert!(idp.issuer.starts_with("https://"), "{}", idp.issuer);
    let py = hosted_on(
        free_port(),
        &idp.issuer,
        &["--ca-file", ca.ca.to_str().unwrap()],
    )
    .await;
    let front_port = free_port();
    let public = format!("https://127.0.0.1:{front_port}");
    let ctx = Ctx::with(gatehouse::server::config::RawSettings {
        outbound_timeout: Some("10".into()),
        public_url: Some(public.clone()),
        // The test itself talks to the instance directly as well.
        allowed_hosts: Some("127.0.0.1".into()),
        outbound_ca_certs: Some(ca.ca.to_str().unwrap().into()),
        ..crate::connections::settings()
    })
    .await;
    let _front = tls_front(&ca, front_port, &ctx.app.address).await;
    let mut browser = Browser {
        ca: Some(ca.certificate()),
        ..Browser::default()
    };

    // The document is served at the https URL that is the client's id.
    let client_id = format!("{public}/oauth/client-metadata.json");
    let document = get_json(&browser.http(), &client_id).await;
    assert_eq!(document["client_id"], client_id.as_str(), "{document}");
    assert_eq!(
        document["redirect_uris"],
        json!([format!("{public}/connections/oauth/callback")])
    );

    let created = add_server(
        &ctx,
        json!({"name": "hosted", "url": py.url, "auth": "discover"}),
    )
    .await;
    let id = created["connection_id"].as_str().unwrap().to_string();
    let connection = ctx.view(&id).await;
    assert_eq!(connection["client_id"], client_id.as_str(), "{connection}");
    assert_eq!(connection["dynamic_registration"], false, "{connection}");

    // Signing in: the authorization server reads the document, and the answer comes back
    // through the front to the https callback.
    let (status, started) = ctx
        .post(&format!("/api/v0/connections/{id}/connect"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let callback = format!("{public}/connections/oauth/callback");
    let back = walk_provider(
        &mut browser,
        started["authorization_url"].as_str().unwrap(),
        &callback,
        Some("ops@example.com"),
    )
    .await;
    let page = browser
        .http()
        .get(&back)
        .bearer_auth(&ctx.session)
        .send()
        .await
        .unwrap();
    let status = page.status();
    assert_eq!(status, StatusCode::OK, "{}", page.text().await.unwrap());
    let connection = ctx.view(&id).await;
    assert_eq!(connection["status"], "connected", "{connection}");
    assert_eq!(connection["registered"], false, "{connection}");

    let token = mcp_token(&ctx).await;
    let out = sdk_client(&ctx.app, &token, json!([["hosted__whoami", {}]])).await;
    let who: Value = serde_json::from_str(&text(&out["results"][0])).unwrap();
    assert_eq!(who["subject"], "ops@example.com", "{out}");
    assert_eq!(who["client_id"], client_id.as_str(), "{out}");
    assert_eq!(who["audience"], py.url.as_str(), "{out}");
    let stats = get_json(&browser.http(), &format!("{}/__stats", idp.issuer)).await;
    assert_eq!(
        stats["registrations"], 0,
        "no registration happened: {stats}"
    );
    assert_eq!(stats["grants"]["authorization_code"], 1, "{stats}");
}

/// The Python upstream as a hosted server is: at its own URL on `port`, a resource server of
/// `issuer` that needs the scope `read`, found through its 401; with `extra` arguments.
async fn hosted_on(port: u16, issuer: &str, extra: &[&str]) -> Upstream {
    let mut args = vec![
        "--issuer",
        issuer,
        "--resource",
        "self",
        "--required-scopes",
        "read",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ];
    args.extend_from_slice(extra);
    Upstream::python_on(port, &args, "/mcp").await
}

/// oidc-provider as the authorization server of servers on loopback ports.
async fn authorization_server() -> OidcProvider {
    OidcProvider::start(&["--connections", "--resource-prefix", "http://127.0.0.1:"]).await
}

#[tokio::test]
async fn a_server_whose_authorization_server_changes_is_registered_with_the_new_one() {
    let (old, new) = (authorization_server().await, authorization_server().await);
    let port = free_port();
    let py = hosted_on(port, &old.issuer, &[]).await;
    let ctx = discovering().await;
    let created = add_server(
        &ctx,
        json!({"name": "moving", "url": py.url, "auth": "discover"}),
    )
    .await;
    let id = created["connection_id"].as_str().unwrap().to_string();
    let (status, page) = connect_with_iss(&ctx, &id, Iss::Kept).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let first_client = ctx.view(&id).await["client_id"].clone();

    // The server now trusts another authorization server (same URL, new metadata).
    py.stop().await;
    let _py = hosted_on(port, &new.issuer, &[]).await;
    let (status, page) = connect_with_iss(&ctx, &id, Iss::Kept).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let moved = ctx.view(&id).await;
    assert_eq!(
        moved["provider_domain_url"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        new.issuer,
        "{moved}"
    );
    assert_eq!(moved["authorization_url"], format!("{}/auth", new.issuer));
    assert_eq!(moved["registered"], true);
    assert_ne!(moved["client_id"], first_client, "registered anew");
    // The registration at the old authorization server was deleted (RFC 7592).
    assert_eq!(stats(&old.issuer).await["registrations_deleted"], 1);

    let token = mcp_token(&ctx).await;
    let out = sdk_client(&ctx.app, &token, json!([["moving__whoami", {}]])).await;
    let who: Value = serde_json::from_str(&text(&out["results"][0])).unwrap();
    assert_eq!(who["authenticated"], true, "{out}");
}
