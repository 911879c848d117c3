//! Load benchmark for the token endpoint: authorization-code exchanges and refresh-token
//! rotations per second, against the real server on SQLite. Run with
//!
//!     cargo bench --bench oauth --features ssr
//!
//! Codes are issued straight into the database (the benchmark is about the token endpoint);
//! everything else goes over HTTP. Server and load share the machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::server::clock::{Clock, SystemClock};
use gatehouse::server::config::RawSettings;
use gatehouse::server::oauth_as::authorize::{Approved, issue_code};
use gatehouse::server::secrets::random_bytes;
use serde_json::{Value, json};

#[path = "support.rs"]
mod support;
use sha2::{Digest, Sha256};
use support::report;

const CONCURRENCY: usize = 16;
const CODES: usize = 4_000;
const RUN_FOR: Duration = Duration::from_secs(5);
const REDIRECT: &str = "http://127.0.0.1:33418/callback";

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (base, state) = support::start(
        dir.path(),
        RawSettings {
            mcp_oauth_enabled: Some("true".into()),
            ..RawSettings::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let registered: Value = http
        .post(format!("{base}/mcp/oauth/register"))
        .json(&json!({"client_name": "bench", "redirect_uris": [REDIRECT], "application_type": "native"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_string();
    let resource = format!("{base}/mcp");

    // Codes with their verifiers, issued the way the authorization endpoint does.
    let mut codes = Vec::with_capacity(CODES);
    for _ in 0..CODES {
        let verifier = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let approved = Approved {
            client_id: &client_id,
            subject: "bench",
            redirect_uri: REDIRECT,
            scope: "mcp",
            resource: &resource,
            code_challenge: &challenge,
        };
        codes.push((
            issue_code(&state.db, &approved, SystemClock.now())
                .await
                .unwrap(),
            verifier,
        ));
    }

    let codes = Arc::new(std::sync::Mutex::new(codes));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (codes, http, base, client_id) =
            (codes.clone(), http.clone(), base.clone(), client_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut refresh_tokens = Vec::new();
            loop {
                let Some((code, verifier)) = codes.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                let response = http
                    .post(format!("{base}/mcp/oauth/token"))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("client_id", &client_id),
                        ("code_verifier", &verifier),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                latencies.push(t.elapsed());
                if refresh_tokens.is_empty() {
                    refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_string());
                }
            }
            (latencies, refresh_tokens)
        }));
    }
    let mut latencies = Vec::new();
    let mut refresh_tokens = Vec::new();
    for t in tasks {
        let (l, r) = t.await.unwrap();
        latencies.extend(l);
        refresh_tokens.extend(r);
    }
    report(
        "authorization_code exchanges (PKCE, code consumed, session created)",
        CONCURRENCY,
        CODES,
        started.elapsed(),
        latencies,
    );

    // Each client rotates its own refresh token as fast as it can.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for token in refresh_tokens {
        let (http, base, client_id) = (http.clone(), base.clone(), client_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut token = token;
            while started.elapsed() < RUN_FOR {
                let t = Instant::now();
                let response = http
                    .post(format!("{base}/mcp/oauth/token"))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &token),
                        ("client_id", &client_id),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                token = body["refresh_token"].as_str().unwrap().to_string();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let count = latencies.len();
    report(
        "refresh_token rotations",
        CONCURRENCY,
        count,
        started.elapsed(),
        latencies,
    );
}
