//! Two replicas on one PostgreSQL database behind a round-robin proxy (`Replicas`): clients
//! must not be able to tell that there are two. These tests need PostgreSQL; scripts/test.sh
//! runs them in its PostgreSQL pass (`--include-ignored`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gatehouse::server::config::RawSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::connections::{
    Ctx, assert_one_refresh_and_no_invalid_grant, custom, provider, reset_stats, settings,
};
use crate::helpers::*;
use crate::oauth_as::{
    live_refresh_tokens, oauth_settings, protected_and_signed_in, refresh_with, register_public,
    sign_in,
};

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn an_mcp_session_opened_on_one_replica_continues_on_the_other() {
    let r = Replicas::start(RawSettings::default()).await;
    let token = create_token(&r.via, json!({"name": "replicas"})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    set_protection(&r.via, true).await;

    let mut mcp = RawMcp::with_token(&r.via, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let session = mcp.session.clone().expect("a 2025-era session id");
    let before = [
        r.sent[0].load(Ordering::SeqCst),
        r.sent[1].load(Ordering::SeqCst),
    ];
    for i in 0..6 {
        let body = mcp.call(10 + i, "tools/list", json!({})).await;
        assert!(body["result"]["tools"].is_array(), "request {i}: {body}");
    }
    // Both replicas served the session.
    for (sent, before) in r.sent.iter().zip(before) {
        assert!(sent.load(Ordering::SeqCst) >= before + 3);
    }
    // Ended through one replica, it is gone on both.
    let ended = client()
        .delete(format!("{}/mcp", r.direct[0]))
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", LATEST_SESSION_VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    for base in &r.direct {
        let gone = client()
            .post(format!("{base}/mcp"))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", LATEST_SESSION_VERSION)
            .json(&json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND, "{base}");
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn a_token_deleted_on_one_replica_is_refused_by_the_other_within_a_second() {
    let r = Replicas::start(RawSettings::default()).await;
    let created = create_token(&r.via, json!({"name": "short-lived"})).await;
    let (id, token) = (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    );
    set_protection(&r.via, true).await;
    // Replica B has checked (and remembered) the token.
    assert_eq!(
        mcp_initialize(&r.direct[1], Some(&token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        mcp_initialize(&r.direct[1], Some(&token)).await.status(),
        StatusCode::OK
    );

    let deleted = client()
        .delete(format!("{}/api/v0/settings/mcp/tokens/{id}", r.direct[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (b, token) = (&r.direct[1], &token);
    within_a_second("replica B refuses a token deleted on A", || async move {
        mcp_initialize(b, Some(token)).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;

    // The protection setting too: turned off on A, B stops asking for tokens at once.
    let off = client()
        .put(format!("{}/api/v0/settings/mcp", r.direct[0]))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::OK);
    within_a_second(
        "replica B serves anonymous callers once A turned protection off",
        || async move { mcp_initialize(b, None).await.status() == StatusCode::OK },
    )
    .await;
}

/// Polls `check` until it holds; fails when a second has passed. The clock the replicas read
/// never moves, so no cache expires meanwhile: only a change notification can make it hold.
async fn within_a_second<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not within a second: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn a_session_revoked_on_one_replica_is_refused_by_the_other_within_a_second() {
    let r = Replicas::start(oauth_settings()).await;
    let mut browser = protected_and_signed_in(&r.via).await;
    let client_id = register_public(&r.via).await;
    let tokens = sign_in(&r.via, &mut browser, &client_id).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    // Replica B has checked (and remembered) that the token's session is alive.
    for _ in 0..2 {
        assert_eq!(
            mcp_initialize(&r.direct[1], Some(&access)).await.status(),
            StatusCode::OK
        );
    }

    let admin = r.via.token().await;
    let sessions: Value = client()
        .get(format!("{}/api/v0/oauth/sessions", r.direct[0]))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sessions[0]["id"].as_str().unwrap();
    let revoked = client()
        .delete(format!("{}/api/v0/oauth/sessions/{id}", r.direct[0]))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    let (b, access) = (&r.direct[1], &access);
    within_a_second("replica B refuses a session revoked on A", || async move {
        mcp_initialize(b, Some(access)).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn a_refresh_token_presented_fifty_times_across_replicas_has_one_successor() {
    let r = Replicas::start(oauth_settings()).await;
    let mut browser = protected_and_signed_in(&r.via).await;
    let client_id = register_public(&r.via).await;
    let tokens = sign_in(&r.via, &mut browser, &client_id).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_string();

    let mut racing = tokio::task::JoinSet::new();
    for i in 0..50 {
        let url = format!("{}/mcp/oauth/token", r.direct[i % 2]);
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt1.clone()),
            ("client_id", client_id.clone()),
        ];
        racing.spawn(async move {
            let response = client().post(url).form(&form).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["refresh_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        });
    }
    let answers = racing.join_all().await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{answers:?}"
    );
    let successor = answers[0].1.clone();
    assert!(answers.iter().all(|(_, t)| *t == successor), "{answers:?}");
    assert_eq!(live_refresh_tokens(&r.via).await, 1);

    // The successor works once; rt1 presented after that, on either replica, ends the family.
    let (status, rt3) = refresh_with(&r.via, &client_id, &successor).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refresh_with(&r.b, &client_id, &rt1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = refresh_with(&r.via, &client_id, &rt3).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the family is revoked");
    assert_eq!(live_refresh_tokens(&r.via).await, 0);

    // Codes are single use across replicas: one exchange on each at the same instant.
    let tokens = sign_in(&r.via, &mut browser, &client_id).await;
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn a_hundred_worker_requests_across_replicas_cause_one_refresh() {
    let idp = provider("jwt").await;
    let r = Replicas::start(settings()).await;
    let Replicas { via, b, direct, .. } = r;
    let ctx = Arc::new(Ctx::over(via).await);
    let id = ctx.create(custom(&idp.issuer, "Shared")).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, first) = ctx.token(&id, false).await;

    ctx.app.clock.advance(3600 + 5);
    reset_stats(&idp.issuer).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let url = format!("{}/api/v0/connections/{id}/token", direct[i % 2]);
        let session = ctx.session.clone();
        tasks.push(tokio::spawn(async move {
            let response = client()
                .post(url)
                .bearer_auth(session)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_string());
    }
    assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
    assert!(!tokens.contains(first["access_token"].as_str().unwrap()));
    assert_one_refresh_and_no_invalid_grant(&idp.issuer).await;
    drop(b);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn the_sdk_clients_sign_in_and_work_through_alternating_replicas() {
    use crate::oauth_clients::{assert_signed_in, protect, python_sign_in, typescript_sign_ins};
    let r = Replicas::start(oauth_settings()).await;
    let session = protect(&r.via).await;
    let url = r.via.url("/mcp");
    let dir = tempfile::tempdir().unwrap();

    // TypeScript 1.x (2025 era, a session), then a refresh on its next run; 2.x (2026-07-28).
    let [first, again, v2] = typescript_sign_ins(&url, &session, dir.path()).await;
    assert_signed_in(&first, "TypeScript SDK v1 test");
    assert_signed_in(&again, "TypeScript SDK v1 test");
    assert_eq!(again["refreshed"], true, "{again}");
    assert_signed_in(&v2, "TypeScript SDK v2 test");

    // Python, both eras.
    for (mode, version) in [("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")] {
        let result = python_sign_in(&url, &session, mode).await;
        assert_signed_in(&result, "Python SDK test");
        assert_eq!(result["protocolVersion"], version);
    }
    // Every one of those requests alternated: both replicas did half the work.
    let (a, b) = (
        r.sent[0].load(Ordering::SeqCst),
        r.sent[1].load(Ordering::SeqCst),
    );
    assert!(a > 20 && a.abs_diff(b) <= 1, "{a} / {b}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn an_mcp_server_added_on_one_replica_is_in_the_others_registry_within_a_second() {
    let r = Replicas::start(settings()).await;
    let admin = r.via.token().await;
    let added = client()
        .post(format!("{}/api/v0/mcp-servers", r.direct[0]))
        .bearer_auth(&admin)
        .json(&json!({"name": "later", "url": "http://127.0.0.1:9/mcp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    // B's registry (what its /mcp lists and calls through), not its database.
    let b = &r.b;
    within_a_second(
        "replica B's gateway knows the server added on A",
        || async move {
            b.state
                .upstreams
                .snapshot()
                .iter()
                .any(|u| u.row.name == "later")
        },
    )
    .await;
}

/// A person's grant made through one replica reaches a 2025-era session on the other: its
/// stream hears `tools/list_changed` and `elicitation/complete`, and its next call works.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn a_grant_made_on_one_replica_is_announced_to_a_session_on_the_other() {
    use crate::people::{ADA, CAROL, Person, connect_link, team_provider, team_settings};
    use futures::StreamExt;

    let idp = team_provider().await;
    let r = Replicas::start(team_settings(&idp.issuer)).await;
    let (ada, carol) = (Person::of(&r.via, ADA), Person::of(&r.via, CAROL));
    let mut body = custom(&idp.issuer, "Tracker");
    body["per_person"] = json!(true);
    let (status, created) = ada
        .send(reqwest::Method::POST, "/api/v0/connections", Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let py = crate::gateway::Upstream::resource_server(&idp.issuer, &format!("{}/api", idp.issuer))
        .await;
    let (status, _) = ada
        .send(
            reqwest::Method::POST,
            "/api/v0/mcp-servers",
            Some(json!({"name": "tracker", "url": py.url, "auth": "connection", "connection_id": id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, token) = carol
        .send(
            reqwest::Method::POST,
            "/api/v0/settings/mcp/tokens",
            Some(json!({"name": "laptop"})),
        )
        .await;
    let token = token["token"].as_str().unwrap().to_string();

    // Carol's session lives on replica B, its stream open there.
    let mut mcp = RawMcp::with_token(&r.b, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let stream = mcp.request(reqwest::Method::GET).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut chunks = stream.bytes_stream();
        while let Some(Ok(chunk)) = chunks.next().await {
            let _ = heard_tx.send(String::from_utf8_lossy(&chunk).into_owned());
        }
    });
    let link = connect_link(&mcp, 1).await;

    // She completes it on replica A, directly.
    carol.complete_link_at(&link, Some(&r.direct[0])).await;

    // Replica B's stream hears both, within seconds.
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seen.contains("notifications/tools/list_changed")
        && seen.contains("notifications/elicitation/complete"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, heard.recv()).await {
            Ok(Some(chunk)) => seen.push_str(&chunk),
            _ => panic!("replica B's stream heard only: {seen}"),
        }
    }
    let answer = mcp
        .call(
            2,
            "tools/call",
            json!({"name": "tracker__whoami", "arguments": {}}),
        )
        .await;
    let who: Value =
        serde_json::from_str(answer["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(who["subject"], CAROL, "{answer}");
}
