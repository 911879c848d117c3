//! The official MCP SDKs as real clients of `/mcp`: the TypeScript SDK (1.x for the session
//! era, 2.x pinned to 2026-07-28) and the Python SDK in both its legacy and 2026-07-28 modes,
//! each with the token as a header and as `?token=`.

use std::process::Stdio;

use gatehouse::server::config::RawSettings;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::helpers::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Run {
    label: String,
    child: tokio::process::Child,
}

fn ts(url: &str, era: &str, token: &str, via: &str) -> Run {
    let child = Command::new("node")
        .arg(format!("{ROOT}/tests/clients/ts_client.mjs"))
        .args([url, "--era", era, "--token", token, "--via", via])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/setup.sh installs the SDKs)");
    Run {
        label: format!("TypeScript SDK, {era}, token via {via}"),
        child,
    }
}

fn py(url: &str, mode: &str, token: &str, via: &str) -> Run {
    let python = format!("{ROOT}/.venv/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: scripts/setup.sh creates it with the mcp SDK"
    );
    let child = Command::new(python)
        .arg(format!("{ROOT}/tests/clients/py_client.py"))
        .args([url, "--mode", mode, "--token", token, "--via", via])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Run {
        label: format!("Python SDK, {mode}, token via {via}"),
        child,
    }
}

#[tokio::test]
async fn official_sdk_clients_list_and_call_tools_in_both_eras() {
    let app = spawn_app(RawSettings::default()).await;
    let created = create_token(&app, json!({"name": "sdk clients"})).await;
    let token = created["token"].as_str().unwrap().to_string();
    set_protection(&app, true).await;
    let url = app.url("/mcp");

    let mut runs = Vec::new();
    for via in ["header", "query"] {
        runs.push((ts(&url, "legacy", &token, via), "2025-11-25", true));
        runs.push((ts(&url, "modern", &token, via), "2026-07-28", false));
        runs.push((py(&url, "legacy", &token, via), "2025-11-25", true));
        runs.push((py(&url, "2026-07-28", &token, via), "2026-07-28", false));
    }

    for (run, version, has_session) in runs {
        let output = run.child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{}: failed\n{stdout}\n{stderr}",
            run.label
        );
        assert!(!stderr.contains("failed"), "{}: {stderr}", run.label);
        let line = stdout
            .lines()
            .rfind(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("{}: no result\n{stdout}", run.label));
        let result: Value = serde_json::from_str(line).unwrap();
        let label = &run.label;

        assert_eq!(result["protocolVersion"], version, "{label}");
        if let Some(session) = result.get("sessionId") {
            assert_eq!(session.is_string(), has_session, "{label}");
        }
        assert_eq!(
            result["tools"],
            json!(["whoami", "gatehouse_status"]),
            "{label}"
        );
        assert_eq!(
            result["schemas"]["gatehouse_status"]["type"], "object",
            "{label}"
        );
        assert_eq!(result["whoami"]["authenticated_by"], "api_token", "{label}");
        assert_eq!(result["whoami"]["token"]["name"], "sdk clients", "{label}");
        assert_eq!(result["badArguments"]["isError"], true, "{label}");
        assert!(
            result["badArguments"]["text"]
                .as_str()
                .unwrap()
                .contains("sections"),
            "{label}"
        );
    }
    // Every session a client opened was ended by its DELETE.
    assert_eq!(
        app.state.mcp.session_count(app.state.now()).await.unwrap(),
        0
    );
}
