//! The commands for headless work (`api-tokens`, `connections`), each run as a subprocess on
//! the store of a running instance, as an operator's script would.

use reqwest::StatusCode;
use serde_json::Value;

use crate::connections::{Ctx, custom, provider};
use crate::helpers::*;

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json_out(output: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(output)).expect("--json prints JSON")
}

/// A refusal: exit code 2 and the message on stderr.
fn refusal(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn tokens_and_connections_from_the_command_line() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let app = &ctx.app;
    let id = ctx.create(custom(&idp.issuer, "GitHub")).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");

    // Every command explains itself.
    for args in [
        &["api-tokens", "--help"][..],
        &["api-tokens", "create", "--help"],
        &["api-tokens", "list", "--help"],
        &["api-tokens", "delete", "--help"],
        &["connections", "--help"],
        &["connections", "list", "--help"],
        &["connections", "token", "--help"],
    ] {
        let help = stdout(&gatehouse_cli(app, args).await);
        assert!(help.contains("Usage: gatehouse"), "{args:?}: {help}");
    }
    let help = stdout(&gatehouse_cli(app, &["connections", "token", "--help"]).await);
    assert!(
        help.contains("--person") && help.contains("--json"),
        "{help}"
    );

    // A token created on the command line works against the running server.
    let created = json_out(
        &gatehouse_cli(
            app,
            &[
                "api-tokens",
                "create",
                "--name",
                "ci",
                "--scope",
                "connections:token",
                "--expires-in-days",
                "30",
                "--json",
            ],
        )
        .await,
    );
    let token_id = created["id"].as_str().unwrap().to_string();
    let value = created["token"].as_str().unwrap().to_string();
    assert!(value.starts_with("gatehouse_at_"), "{created}");
    assert_eq!(created["created_by"], USERNAME);
    assert_eq!(created["scopes"], serde_json::json!(["connections:token"]));
    let fetch = |bearer: String| {
        let url = app.url(&format!("/api/v0/connections/{id}/token"));
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap()
        }
    };
    let served = fetch(value.clone()).await;
    assert_eq!(served.status(), StatusCode::OK);
    let served: Value = served.json().await.unwrap();

    // Without --json, the value alone on stdout (for TOKEN=$(…)).
    let plain = stdout(&gatehouse_cli(app, &["api-tokens", "create", "--name", "shell"]).await);
    assert!(plain.trim().starts_with("gatehouse_at_") && plain.lines().count() == 1);

    let listed = json_out(&gatehouse_cli(app, &["api-tokens", "list", "--json"]).await);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ci") && names.contains(&"shell"),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains(&value),
        "a list never shows a value"
    );
    let table = stdout(&gatehouse_cli(app, &["api-tokens", "list"]).await);
    assert!(
        table.contains(&token_id) && table.contains("connections:token"),
        "{table}"
    );

    // Connections with their health; the token the server hands out, from the store.
    let connections = json_out(&gatehouse_cli(app, &["connections", "list", "--json"]).await);
    let github = connections
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("the connection is listed");
    assert_eq!(github["status"], "connected");
    assert_eq!(github["failures"], 0);
    assert!(github["next_refresh_at"].is_i64(), "{github}");
    let table = stdout(&gatehouse_cli(app, &["connections", "list"]).await);
    let row = table.lines().find(|l| l.contains("GitHub")).unwrap();
    assert!(row.contains("Connected"), "{table}");

    let fresh = json_out(&gatehouse_cli(app, &["connections", "token", "GitHub", "--json"]).await);
    assert_eq!(fresh["access_token"], served["access_token"]);
    assert!(fresh["expires_in"].as_i64().unwrap() > 0);
    // --force refreshes at the provider; the server then hands out the new token.
    let forced = stdout(&gatehouse_cli(app, &["connections", "token", &id, "--force"]).await);
    let forced = forced.trim();
    assert_ne!(forced, served["access_token"].as_str().unwrap());
    let after: Value = fetch(value.clone()).await.json().await.unwrap();
    assert_eq!(after["access_token"], forced);
    let listed = json_out(&gatehouse_cli(app, &["connections", "list", "--json"]).await);
    assert!(listed[0]["grant"]["refreshed_at"].is_i64(), "{listed}");

    // Clear refusals.
    for (args, expected) in [
        (
            &["connections", "token", "nope"][..],
            "There is no connection named \"nope\"",
        ),
        (
            &["api-tokens", "create", "--name", "x", "--owner", "eve"],
            "the only person is \"admin\"",
        ),
        (
            &["api-tokens", "create", "--name", "x", "--scope", "all"],
            "all",
        ),
    ] {
        let message = refusal(&gatehouse_cli(app, args).await);
        assert!(message.contains(expected), "{args:?}: {message}");
    }

    // Deleted on the command line: the server refuses it once its 5-second cache has passed
    // (at once on PostgreSQL, where the command tells every replica).
    let deleted = stdout(&gatehouse_cli(app, &["api-tokens", "delete", &token_id]).await);
    assert!(deleted.contains(&token_id));
    app.clock.advance(6);
    assert_eq!(
        fetch(value.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = refusal(&gatehouse_cli(app, &["api-tokens", "delete", &token_id]).await);
    assert!(again.contains("There is no API token"), "{again}");

    // The trail says the command line did it, and as whom; never a token.
    let exported = stdout(&gatehouse_cli(app, &["audit", "export", "--actor", "ops"]).await);
    let actions: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fetched: Vec<&Value> = actions
        .iter()
        .filter(|e| e["action"] == "connection.token_fetched")
        .collect();
    assert_eq!(fetched.len(), 2, "{exported}");
    assert!(fetched.iter().all(|e| e["actor_kind"] == "cli"));
    assert!(actions.iter().any(|e| e["action"] == "api_token.deleted"));
    let all = stdout(&gatehouse_cli(app, &["audit", "export"]).await);
    let created_event = all
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["action"] == "api_token.created" && e["target"] == token_id.as_str())
        .unwrap();
    assert_eq!(created_event["actor_kind"], "cli");
    assert_eq!(created_event["actor"], USERNAME);
    for secret in [
        value.as_str(),
        forced,
        served["access_token"].as_str().unwrap(),
    ] {
        assert!(!all.contains(secret));
    }
}
