//! Key rotation end to end: an instance on key A with sealed data, sessions and tokens;
//! restarted on key B with `SECRET_KEY_PREVIOUS=A`, where everything still works;
//! `gatehouse rotate-secret-key`; restarted on B alone, where everything sealed still opens.

use gatehouse::server::config::RawSettings;
use gatehouse::server::secrets::{MasterKey, Sealer};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::connections::{Ctx, custom, provider};
use crate::helpers::*;

const KEY_A: &str = "rotation-test-key-A-0123456789abcdef0123456789";
const KEY_B: &str = "rotation-test-key-B-fedcba9876543210fedcba9876";

/// The instance on `database_url` (a store of its own when `None`) with these keys, at
/// `address` each time (sessions name the instance's URL as their issuer).
async fn start(
    address: &str,
    database_url: Option<String>,
    key: &str,
    previous: Option<&str>,
) -> Ctx {
    Ctx::with(RawSettings {
        listen_addr: Some(address.into()),
        database_url,
        secret_key: Some(key.into()),
        secret_key_previous: previous.map(Into::into),
        ..crate::connections::settings()
    })
    .await
}

/// Every sealed value in the store, by `table.column`.
async fn sealed_values(app: &TestApp) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (table, column) in [
        ("connections", "client_secret"),
        ("connection_tokens", "access_token"),
        ("connection_tokens", "refresh_token"),
        ("vault_secrets", "value"),
        ("mcp_servers", "headers"),
    ] {
        let values: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
        ))
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
        out.extend(values.into_iter().map(|v| (format!("{table}.{column}"), v)));
    }
    out
}

#[tokio::test]
async fn a_key_rotated_loses_nothing_sealed() {
    let idp = provider("opaque").await;
    let key_id = |k: &str| {
        Sealer::new(&MasterKey::from_bytes(k.as_bytes().to_vec()), &[])
            .key_id()
            .to_string()
    };
    let (id_a, id_b) = (key_id(KEY_A), key_id(KEY_B));

    // On key A: a vault secret, an MCP server with a header, a connected connection.
    let address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let mut ctx = start(&address, None, KEY_A, None).await;
    let database_url = ctx.app.database_url.clone();
    let (status, _) = ctx
        .send(
            Method::PUT,
            "/api/v0/secrets/ROTATED",
            Some(json!({"value": "vault-value-under-key-a"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, server) = ctx
        .post(
            "/api/v0/mcp-servers",
            Some(
                json!({"name": "keyed", "url": "http://127.0.0.1:1/mcp", "auth": "headers",
                "headers": [["X-Api-Key", "key-${ROTATED}"]]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{server}");
    let id = ctx.create(custom(&idp.issuer, "Rotated")).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let old_session = ctx.session.clone();
    let sealed = sealed_values(&ctx.app).await;
    assert!(sealed.len() >= 5, "{sealed:?}");
    assert!(
        sealed
            .iter()
            .all(|(_, v)| v.starts_with(&format!("gh1.{id_a}.")))
    );
    ctx.app.stop().await;

    // On key B with A as previous: the session signed under A, the sealed grant and client
    // secret (a forced refresh opens both) all work.
    let mut ctx = start(&address, Some(database_url.clone()), KEY_B, Some(KEY_A)).await;
    let (status, _) = send_json(
        &ctx.app,
        &old_session,
        Method::GET,
        "/api/v0/connections",
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a session signed under A is still valid"
    );
    let (status, token) = ctx.token(&id, true).await;
    assert_eq!(status, StatusCode::OK, "{token}");

    // Rotate: what the refresh did not already re-seal, the command does.
    let rotate = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .arg("rotate-secret-key")
            .env("DATABASE_URL", &database_url)
            .env("SECRET_KEY", KEY_B)
            .env("SECRET_KEY_PREVIOUS", KEY_A)
            .env("RUST_LOG", "warn")
            .output()
    };
    let rotated = rotate().await.unwrap();
    let out = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        rotated.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let row = |column: &str| -> Vec<u64> {
        out.lines()
            .find(|l| l.starts_with(column))
            .unwrap_or_else(|| panic!("no {column} in {out}"))
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect()
    };
    // Re-sealed by the first pass, found current by the second.
    assert_eq!(row("vault_secrets.value"), [1, 1, 0, 0], "{out}");
    assert_eq!(row("mcp_servers.headers"), [1, 1, 0, 0], "{out}");
    assert_eq!(row("connections.client_secret")[0], 1, "{out}");
    assert!(out.contains("Re-sealed"), "{out}");
    assert!(!out.contains("vault-value-under-key-a"));
    let sealed = sealed_values(&ctx.app).await;
    assert!(
        sealed
            .iter()
            .all(|(_, v)| v.starts_with(&format!("gh1.{id_b}."))),
        "{sealed:?}"
    );
    // Nothing left to do the second time.
    let again = rotate().await.unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("Re-sealed 0 values under SECRET_KEY in 1 passes")
    );
    ctx.app.stop().await;

    // On B alone: what is sealed opens (the grant refreshes with the client secret); what A
    // signed has ended with A.
    let ctx = start(&address, Some(database_url.clone()), KEY_B, None).await;
    let (status, _) = send_json(
        &ctx.app,
        &old_session,
        Method::GET,
        "/api/v0/connections",
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "A's signature ends with A"
    );
    let (status, token) = ctx.token(&id, true).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let (status, secrets) = ctx.get("/api/v0/secrets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(secrets["secrets"][0]["name"], "ROTATED", "{secrets}");
    let opened = gatehouse::server::secrets::vault::open(&ctx.app.state, "ROTATED")
        .await
        .unwrap();
    assert_eq!(opened.expose(), "vault-value-under-key-a");
}
