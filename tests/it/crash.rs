//! The real binary killed with SIGKILL in the middle of a refresh at a slow provider, then
//! started again on the same store: the connection still works, and the provider never sees
//! a refresh token twice. Runs on whichever store the suite uses (on PostgreSQL the dead
//! process's lease on the row must first run out; on SQLite, a single process, start-up clears
//! it).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::connections::{
    Ctx, assert_one_refresh_and_no_invalid_grant, provider, refresh_at_provider, reset_stats,
    settings,
};
use crate::helpers::*;

/// A token endpoint in front of the real one that can hold requests: a held request is never
/// forwarded (the provider never sees it), as when a provider is slow and the caller dies
/// before it answers.
struct SlowTokenEndpoint {
    url: String,
    hold: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
}

async fn slow_token_endpoint(real: String) -> SlowTokenEndpoint {
    let hold = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let (h, n) = (hold.clone(), held.clone());
    let forward = move |headers: http::HeaderMap, body: axum::body::Bytes| {
        let (hold, held, real) = (h.clone(), n.clone(), real.clone());
        async move {
            if hold.load(Ordering::SeqCst) {
                held.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            let mut request = client().post(&real).body(body);
            for name in ["content-type", "authorization", "accept"] {
                if let Some(v) = headers.get(name) {
                    request = request.header(name, v);
                }
            }
            let answer = request.send().await.unwrap();
            let status = answer.status();
            let body = answer.bytes().await.unwrap();
            (status, [("content-type", "application/json")], body)
        }
    };
    let app = axum::Router::new().route("/token", axum::routing::post(forward));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    SlowTokenEndpoint { url, hold, held }
}

/// The `gatehouse` binary on the test's store.
async fn start_binary(database_url: &str, data_dir: &std::path::Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", data_dir)
        .env("SECRET_KEY", TEST_KEY)
        .env("AUTH_TYPE", "basic")
        .env("AUTH_BASIC_USERNAME", USERNAME)
        .env("AUTH_BASIC_PASSWORD", PASSWORD)
        .env("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")
        .env("CONNECTIONS_REFRESH_INTERVAL", "0")
        .env("OUTBOUND_TIMEOUT", "3")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the gatehouse binary runs");
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the binary did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

async fn session(base: &str) -> String {
    let login: Value = client()
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": USERNAME, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_process_killed_during_a_refresh_leaves_a_connection_that_works() {
    let idp = provider("opaque").await;
    let slow = slow_token_endpoint(format!("{}/token", idp.issuer)).await;
    // Set up in process: a connection whose token endpoint is the slow one, connected.
    let ctx = Ctx::with(settings()).await;
    let mut definition = crate::connections::custom(&idp.issuer, "Slow");
    definition["token_url"] = json!(slow.url);
    let id = ctx.create(definition).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, first) = ctx.token(&id, false).await;
    let old_refresh = ctx.stored_refresh_token(&id).await;
    let Ctx { mut app, .. } = ctx;
    app.stop().await;

    // The binary starts a refresh; the provider holds it; the binary is killed.
    let (mut child, base) = start_binary(&app.database_url, app.data_dir.path()).await;
    let token = session(&base).await;
    slow.hold.store(true, Ordering::SeqCst);
    reset_stats(&idp.issuer).await;
    let pending = tokio::spawn({
        let url = format!("{base}/api/v0/connections/{id}/token?force=true");
        let token = token.clone();
        async move { client().post(url).bearer_auth(token).send().await }
    });
    let started = Instant::now();
    while slow.held.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no refresh reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(
        pending.await.unwrap().is_err(),
        "the caller saw the process die"
    );
    slow.hold.store(false, Ordering::SeqCst);

    // Started again: the connection refreshes at the provider, once, with no invalid_grant.
    let (mut child, base) = start_binary(&app.database_url, app.data_dir.path()).await;
    let token = session(&base).await;
    let answer = client()
        .post(format!("{base}/api/v0/connections/{id}/token?force=true"))
        .bearer_auth(&token)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body["access_token"], first["access_token"]);
    assert_one_refresh_and_no_invalid_grant(&idp.issuer).await;
    // The old refresh token was rotated out at the provider by that one refresh.
    let replay = refresh_at_provider(&idp.issuer, &old_refresh).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
