//! The audit trail: each kind of event is recorded by the action that causes it, read back
//! through `/api/v0/audit` (and its JSON-lines export), and holds none of the secrets the
//! actions used.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::connections::{CLIENT_SECRET, Ctx, custom, provider};
use crate::helpers::*;
use crate::oauth_as::{protected_and_signed_in, refresh_with, register_public, sign_in};
use crate::people::{ADA, BOB, Person, Team};

/// Every event, oldest first, as `/api/v0/audit/export` gives them (newest first) reversed;
/// and the export's text, to look for secrets in.
async fn trail(app: &TestApp, session: &str) -> (Vec<Value>, String) {
    let response = app
        .client
        .get(app.url("/api/v0/audit/export"))
        .bearer_auth(session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let mut events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    events.reverse();
    (events, text)
}

/// The first event of `action` (and, when given, on `target`), or a panic listing them all.
fn find<'a>(events: &'a [Value], action: &str, target: Option<&str>) -> &'a Value {
    events
        .iter()
        .find(|e| e["action"] == action && target.is_none_or(|t| e["target"] == t))
        .unwrap_or_else(|| {
            let seen: Vec<String> = events
                .iter()
                .map(|e| format!("{} {}", e["action"], e["target"]))
                .collect();
            panic!("no {action} event (target {target:?}) among {seen:#?}")
        })
}

#[tokio::test]
async fn what_admins_do_is_recorded_without_a_secret() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let app = &ctx.app;

    // A failed sign-in: nobody named (people type passwords into the username).
    let failed = app.login_json("typo-correct horse", "wrong").await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);

    // An API token created, refused once deleted.
    let (status, created) = ctx
        .post(
            "/api/v0/settings/mcp/tokens",
            Some(json!({"name": "ci", "scopes": ["mcp"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token_id = created["id"].as_str().unwrap().to_string();
    let token_value = created["token"].as_str().unwrap().to_string();
    let (status, _) = ctx
        .send(
            Method::DELETE,
            &format!("/api/v0/settings/mcp/tokens/{token_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mcp = RawMcp::with_token(app, &token_value);
    let refused = mcp
        .post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": LATEST_SESSION_VERSION, "capabilities": {},
            "clientInfo": {"name": "it", "version": "1"}}}),
        )
        .await;
    assert_eq!(refused.0, StatusCode::UNAUTHORIZED);

    // A vault secret set and deleted.
    let secret_value = "vault-value-that-must-not-leak-7f3a";
    let (status, _) = ctx
        .send(
            Method::PUT,
            "/api/v0/secrets/AUDIT_SECRET",
            Some(json!({"value": secret_value})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = ctx
        .send(Method::DELETE, "/api/v0/secrets/AUDIT_SECRET", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // An MCP server added, edited and removed.
    let (status, server) = ctx
        .post(
            "/api/v0/mcp-servers",
            Some(json!({"name": "later", "url": "http://127.0.0.1:1/mcp?key=query-secret-k"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{server}");
    let server_id = server["id"].as_str().unwrap().to_string();
    let (status, _) = ctx
        .send(
            Method::PUT,
            &format!("/api/v0/mcp-servers/{server_id}"),
            Some(json!({"name": "later", "url": "http://127.0.0.1:2/mcp", "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ctx
        .send(
            Method::DELETE,
            &format!("/api/v0/mcp-servers/{server_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A connection's life: created, edited, connected, refreshed, disconnected, deleted.
    let id = ctx.create(custom(&idp.issuer, "Audited")).await;
    let mut edited = custom(&idp.issuer, "Audited");
    edited["description"] = json!("edited");
    let (status, _) = ctx
        .send(
            Method::PUT,
            &format!("/api/v0/connections/{id}"),
            Some(edited),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, token) = ctx.token(&id, true).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let access_token = token["access_token"].as_str().unwrap().to_string();
    let refresh_token = ctx.stored_refresh_token(&id).await;
    let (status, _) = ctx
        .post(&format!("/api/v0/connections/{id}/disconnect"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ctx
        .send(Method::DELETE, &format!("/api/v0/connections/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // MCP protection turned on.
    let (status, _) = ctx
        .send(
            Method::PUT,
            "/api/v0/settings/mcp",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // A second session ends.
    let second = app.token().await;
    let out = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);

    let (events, text) = trail(app, &ctx.session).await;
    let failed = events
        .iter()
        .find(|e| e["action"] == "sign_in" && e["outcome"] == "failed")
        .expect("the failed sign-in");
    assert_eq!(failed["actor_kind"], "anonymous");
    assert_eq!(failed["address"], "127.0.0.1");
    let signed_in = events
        .iter()
        .find(|e| e["action"] == "sign_in" && e["outcome"] == "ok")
        .unwrap();
    assert_eq!(signed_in["actor"], USERNAME);
    for (action, target) in [
        ("api_token.created", token_id.as_str()),
        ("api_token.deleted", token_id.as_str()),
        ("secret.set", "AUDIT_SECRET"),
        ("secret.deleted", "AUDIT_SECRET"),
        ("mcp_server.created", server_id.as_str()),
        ("mcp_server.edited", server_id.as_str()),
        ("mcp_server.deleted", server_id.as_str()),
        ("connection.created", id.as_str()),
        ("connection.edited", id.as_str()),
        ("connection.connected", id.as_str()),
        ("connection.refreshed", id.as_str()),
        ("connection.disconnected", id.as_str()),
        ("connection.deleted", id.as_str()),
        ("settings.changed", "mcp.require_auth"),
    ] {
        let event = find(&events, action, Some(target));
        assert_eq!(event["outcome"], "ok", "{event}");
        let who = if action == "connection.refreshed" {
            "system"
        } else {
            "person"
        };
        assert_eq!(event["actor_kind"], who, "{event}");
        assert!(event["replica"].is_string(), "{event}");
    }
    let refused = find(&events, "mcp.token_refused", None);
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(find(&events, "sign_out", None)["actor"], USERNAME);
    let server = find(&events, "mcp_server.created", None);
    assert_eq!(server["detail"]["url"], "http://127.0.0.1:1", "{server}");

    // Nothing that grants access is in the trail.
    for secret in [
        token_value.as_str(),
        secret_value,
        CLIENT_SECRET,
        PASSWORD,
        "wrong",
        "query-secret-k",
        access_token.as_str(),
        refresh_token.as_str(),
        ctx.session.as_str(),
        second.as_str(),
    ] {
        assert!(!text.contains(secret), "the trail holds {secret:?}");
    }

    // Filters and pages.
    let (status, page) = ctx.get("/api/v0/audit?action=connection.*&limit=2").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed = page["events"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["action"], "connection.deleted");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, older) = ctx
        .get(&format!(
            "/api/v0/audit?action=connection.*&cursor={cursor}"
        ))
        .await;
    assert_eq!(older["events"].as_array().unwrap().len(), 4, "{older}");
    assert_eq!(older["next_cursor"], Value::Null);
    let (status, bad) = ctx.get("/api/v0/audit?outcome=perhaps").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let (status, bad) = ctx.get("/api/v0/audit?since=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // The same trail from the command line, on the same store.
    let cli = |args: &'static [&'static str]| gatehouse_cli(app, args);
    let exported = cli(&["audit", "export", "--action", "connection.*"]).await;
    assert!(exported.status.success(), "{exported:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&exported.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["action"], "connection.deleted");
    let tail = cli(&["audit", "tail", "-n", "3"]).await;
    let text = String::from_utf8_lossy(&tail.stdout);
    assert!(tail.status.success(), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.contains("ok      sign_out by person:admin"), "{text}");
    assert_eq!(text.lines().count(), 3);
    let tail = cli(&["audit", "tail", "-n", "1", "--json"]).await;
    let newest: Value = serde_json::from_slice(&tail.stdout).unwrap();
    assert_eq!(newest["action"], "sign_out");
    // --follow prints what happens after it started.
    let mut follow = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "audit", "tail", "-n", "1", "--follow", "--action", "secret.*",
        ])
        .env("DATABASE_URL", &app.database_url)
        .env("SECRET_KEY", TEST_KEY)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(follow.stdout.take().unwrap()));
    let first = lines.next_line().await.unwrap().unwrap();
    assert!(first.contains("secret:AUDIT_SECRET"), "{first}");
    let (status, _) = ctx
        .send(
            Method::PUT,
            "/api/v0/secrets/FOLLOWED",
            Some(json!({"value": "followed-value"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .expect("the new event is printed within seconds")
        .unwrap()
        .unwrap();
    assert!(
        next.contains("secret.set") && next.contains("FOLLOWED"),
        "{next}"
    );
    assert!(!next.contains("followed-value"));
    drop(follow);

    let bad = cli(&["audit", "export", "--outcome", "maybe"]).await;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("outcome must be ok, refused or failed"),
        "{bad:?}"
    );
}

#[tokio::test]
async fn the_authorization_servers_events_are_recorded() {
    let app = spawn_app(gatehouse::server::config::RawSettings {
        mcp_oauth_enabled: Some("true".into()),
        ..basic_settings()
    })
    .await;
    let mut browser = protected_and_signed_in(&app).await;
    let session = app.token().await;
    let client_id = register_public(&app).await;
    let tokens = sign_in(&app, &mut browser, &client_id).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, rt2) = refresh_with(&app, &client_id, &rt1).await;
    assert_eq!(status, StatusCode::OK);
    let (_, rt3) = refresh_with(&app, &client_id, &rt2).await;
    // rt1 again, long after: a copy. The session is revoked.
    app.clock.advance(120);
    let (status, _) = refresh_with(&app, &client_id, &rt1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let revoked = app
        .client
        .post(app.url(&format!("/api/v0/oauth/clients/{client_id}/revoke-consent")))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let deleted = app
        .client
        .delete(app.url(&format!("/api/v0/oauth/clients/{client_id}")))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    let (events, text) = trail(&app, &session).await;
    let registered = find(&events, "mcp_client.registered", Some(&client_id));
    assert_eq!(registered["actor_kind"], "client");
    let consent = find(&events, "consent.given", Some(&client_id));
    assert_eq!(consent["actor"], USERNAME);
    let issued = find(&events, "oauth_token.issued", None);
    assert_eq!(issued["actor"], client_id.as_str());
    assert_eq!(issued["detail"]["user"], USERNAME);
    let refreshes = events
        .iter()
        .filter(|e| e["action"] == "oauth_token.refreshed")
        .count();
    assert_eq!(refreshes, 2);
    let reuse = find(&events, "oauth_session.revoked", None);
    assert_eq!(reuse["outcome"], "refused");
    assert_eq!(reuse["detail"]["reason"], "refresh token reused");
    assert_eq!(reuse["target"], issued["target"], "the same session");
    assert_eq!(
        find(&events, "consent.revoked", Some(&client_id))["actor"],
        USERNAME
    );
    find(&events, "mcp_client.deleted", Some(&client_id));
    for secret in [
        tokens["access_token"].as_str().unwrap(),
        rt1.as_str(),
        rt2.as_str(),
        rt3.as_str(),
        session.as_str(),
    ] {
        assert!(!text.contains(secret), "the trail holds a token");
    }
}

#[tokio::test]
async fn a_member_sees_no_trail_and_the_refusal_is_recorded() {
    let team = Team::start().await;
    let (ada, bob) = (team.person(ADA), team.person(BOB));
    let (status, _) = bob.send(Method::GET, "/api/v0/audit", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let export = team
        .app
        .client
        .get(team.app.url("/api/v0/audit/export"))
        .bearer_auth(&bob.session)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::FORBIDDEN);
    // A member's admin-only server function: refused the same way.
    let (status, _) = bob
        .send(
            Method::POST,
            "/api/v0/connections",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, page) = ada
        .send(Method::GET, "/api/v0/audit?action=access.refused", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let refused = page["events"].as_array().unwrap();
    assert_eq!(refused.len(), 3, "{page}");
    for event in refused {
        assert_eq!(event["actor"], BOB, "{event}");
        assert_eq!(event["outcome"], "refused");
    }
    assert_eq!(refused[2]["target"], "GET /api/v0/audit");
}

/// The question the trail exists for: who connected GitHub for Alice, and when was it last
/// refreshed? Answered from the Audit page (as served, no JavaScript), the command line and
/// Prometheus.
#[tokio::test]
async fn who_connected_github_for_alice_and_when_it_was_last_refreshed() {
    const ALICE: &str = "alice@example.com";
    let idp = crate::people::team_provider().await;
    let app = spawn_app(gatehouse::server::config::RawSettings {
        metrics_token: Some(crate::metrics::METRICS_TOKEN.into()),
        ..crate::people::team_settings(&idp.issuer)
    })
    .await;
    let team = Team { app, idp };
    let app = &team.app;
    let id = team.per_person_connection("GitHub").await;
    let (ada, alice) = (team.person(ADA), Person::of(app, ALICE));
    alice.connect(&id).await;
    app.clock.advance(60);
    let (status, body) = alice.token(&id, "?force=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refreshed_at = app.state.now();

    // The Audit page, filtered by the connection's name, read as the server renders it.
    let page = app
        .client
        .get(app.url("/settings/audit?target=GitHub&action=connection.*"))
        .header(
            "cookie",
            format!("{}={}", app.state.config.session_cookie_name, ada.session),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for expected in ["connection.connected", ALICE, "connection.refreshed"] {
        assert!(
            html.contains(expected),
            "the page lacks {expected}:\n{html}"
        );
    }

    // The same from the REST API (what the page reads): who, and when.
    let (status, listed) = ada
        .send(
            Method::GET,
            "/api/v0/audit?target=GitHub&action=connection.connected",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let connected = &listed["events"][0];
    assert_eq!(connected["actor_kind"], "person", "{listed}");
    assert_eq!(connected["actor"], ALICE);
    assert_eq!(connected["target"], id.as_str());

    // The command line: the trail, and the grant's last refresh.
    let out = gatehouse_cli(
        app,
        &[
            "audit",
            "export",
            "--target",
            "GitHub",
            "--action",
            "connection.*",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_alice = events
        .iter()
        .find(|e| e["action"] == "connection.connected")
        .unwrap();
    assert_eq!(by_alice["actor"], ALICE);
    let refresh = events
        .iter()
        .find(|e| e["action"] == "connection.refreshed")
        .unwrap();
    assert_eq!(refresh["detail"]["person"], ALICE);
    assert_eq!(refresh["at"], refreshed_at);
    let out = gatehouse_cli(app, &["connections", "list", "--json"]).await;
    assert!(out.status.success(), "{out:?}");
    let connections: Value = serde_json::from_slice(&out.stdout).unwrap();
    let grant = connections
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "GitHub")
        .unwrap()["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["person"] == ALICE)
        .cloned()
        .unwrap();
    assert_eq!(grant["refreshed_at"], refreshed_at, "{grant}");
    let table = gatehouse_cli(app, &["connections", "list"]).await;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains(ALICE) && l.contains("Connected")),
        "{table}"
    );

    // Prometheus: the connection's refreshes and the time of the last one.
    let scraped = crate::metrics::scrape(
        app,
        &app.url("/metrics"),
        Some(crate::metrics::METRICS_TOKEN),
    )
    .await
    .text()
    .await
    .unwrap();
    let m = crate::metrics::parse(&scraped);
    let labels = [("connection", id.as_str())];
    assert_eq!(
        crate::metrics::value(
            &m,
            "gatehouse_connection_last_refresh_timestamp_seconds",
            &labels
        ),
        refreshed_at as f64
    );
    assert!(
        crate::metrics::value(
            &m,
            "gatehouse_connection_refreshes_total",
            &[("connection", id.as_str()), ("outcome", "ok")]
        ) >= 1.0
    );
}
