//! The two stores: the same schema on both, and start-up that names a store it cannot use.

use std::collections::BTreeMap;

use gatehouse::server::clock::SystemClock;
use gatehouse::server::config::{Config, RawSettings};
use gatehouse::server::db::{DatabaseConfig, Db};
use gatehouse::server::startup::Application;
use sqlx::Row;

use crate::helpers::{TEST_KEY, fresh_database, mcp_initialize, postgres_admin_url, spawn_app};

/// table → sorted "column type nullability" lines, plus index names.
type Schema = BTreeMap<String, Vec<String>>;

async fn sqlite_schema(db: &Db) -> Schema {
    let mut schema = Schema::new();
    let tables = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    for t in tables {
        let table: String = t.get(0);
        let mut lines = Vec::new();
        for c in sqlx::query(&format!(
            "SELECT name, upper(type), \"notnull\" FROM pragma_table_info('{table}')"
        ))
        .fetch_all(db.pool())
        .await
        .unwrap()
        {
            let not_null: i64 = c.get(2);
            lines.push(format!(
                "{} {} {}",
                c.get::<String, _>(0),
                c.get::<String, _>(1),
                if not_null == 1 { "NOT NULL" } else { "NULL" }
            ));
        }
        for i in sqlx::query(&format!(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' \
             AND name NOT LIKE 'sqlite_autoindex%'"
        ))
        .fetch_all(db.pool())
        .await
        .unwrap()
        {
            lines.push(format!("index {}", i.get::<String, _>(0)));
        }
        lines.sort();
        schema.insert(table, lines);
    }
    schema
}

async fn postgres_schema(db: &Db) -> Schema {
    let mut schema = Schema::new();
    for c in sqlx::query(
        "SELECT table_name::text, column_name::text, upper(data_type::text), is_nullable::text \
         FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    {
        let not_null = c.get::<String, _>(3) == "NO";
        schema
            .entry(c.get::<String, _>(0))
            .or_default()
            .push(format!(
                "{} {} {}",
                c.get::<String, _>(1),
                c.get::<String, _>(2),
                if not_null { "NOT NULL" } else { "NULL" }
            ));
    }
    for i in sqlx::query(
        "SELECT tablename::text, indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key' \
         AND tablename <> '_sqlx_migrations'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    {
        schema
            .entry(i.get::<String, _>(0))
            .or_default()
            .push(format!("index {}", i.get::<String, _>(1)));
    }
    for lines in schema.values_mut() {
        lines.sort();
    }
    schema
}

/// A new migration must go into both folders, with the same tables, columns and indexes.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn both_stores_have_the_same_schema() {
    assert!(
        postgres_admin_url().is_some(),
        "set GATEHOUSE_TEST_POSTGRES"
    );
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::connect(&DatabaseConfig::sqlite_file(dir.path().join("s.db")))
        .await
        .unwrap();
    let postgres =
        Db::connect(&DatabaseConfig::from_url(&fresh_database(dir.path()).await, Some(2)).unwrap())
            .await
            .unwrap();
    let on_sqlite = sqlite_schema(&sqlite).await;
    // SQLite's PRIMARY KEY TEXT columns allow NULL; PostgreSQL's do not. Compare names and
    // types, and nullability where the schema states it.
    let mut on_postgres = postgres_schema(&postgres).await;
    for (table, lines) in on_postgres.iter_mut() {
        let sqlite_lines = on_sqlite.get(table).cloned().unwrap_or_default();
        for line in lines.iter_mut() {
            if line.ends_with("NOT NULL") {
                let relaxed = line.replace("NOT NULL", "NULL");
                if sqlite_lines.contains(&relaxed) {
                    *line = relaxed;
                }
            }
        }
        lines.sort();
    }
    let normalise = |schema: Schema| -> Schema {
        schema
            .into_iter()
            .map(|(t, lines)| {
                (
                    t,
                    lines
                        .into_iter()
                        .map(|l| l.replace("CHARACTER VARYING", "TEXT"))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(normalise(on_sqlite), normalise(on_postgres));
}

/// A PostgreSQL server that is not there stops start-up with one line naming it, and never
/// the password.
#[tokio::test]
async fn a_store_that_cannot_be_reached_is_named_and_its_password_is_not() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one and let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::parse(&RawSettings {
        listen_addr: Some("127.0.0.1:0".into()),
        database_url: Some(format!(
            "postgres://gatehouse:hunter2@127.0.0.1:{port}/gatehouse?connect_timeout=2"
        )),
        data_dir: Some(dir.path().display().to_string()),
        ..RawSettings::default()
    })
    .unwrap();
    let Err(error) = Application::build(config, std::sync::Arc::new(SystemClock)).await else {
        panic!("start-up must fail");
    };
    let line = error.to_string();
    assert!(
        line.starts_with(&format!(
            "cannot open the PostgreSQL database at 127.0.0.1:{port}/gatehouse:"
        )),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

/// A store whose migrations do not match (here: one this build does not know) stops start-up
/// with a line naming the store.
#[tokio::test]
async fn a_store_that_cannot_be_migrated_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    {
        let db = Db::connect(&DatabaseConfig::from_url(&url, Some(1)).unwrap())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (29991231000001, 'from a newer Gatehouse', TRUE, X'00', 0)",
        )
        .execute(db.pool())
        .await
        .ok();
        // PostgreSQL spells a bytea literal differently.
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (29991231000001, 'from a newer Gatehouse', TRUE, '\\x00'::bytea, 0) \
             ON CONFLICT DO NOTHING",
        )
        .execute(db.pool())
        .await
        .ok();
        db.close().await;
    }
    let config = Config::parse(&RawSettings {
        listen_addr: Some("127.0.0.1:0".into()),
        database_url: Some(url.clone()),
        data_dir: Some(dir.path().display().to_string()),
        ..RawSettings::default()
    })
    .unwrap();
    let Err(error) = Application::build(config.clone(), std::sync::Arc::new(SystemClock)).await
    else {
        panic!("start-up must fail");
    };
    let line = error.to_string();
    assert!(
        line.starts_with(&format!(
            "cannot migrate the {} database at {}:",
            config.database.backend_name(),
            config.database.location()
        )),
        "{line}"
    );
}

/// `gatehouse copy-data`: an SQLite instance with an API token, a connected connection, a
/// vault secret, an MCP client signed in, copied into an empty PostgreSQL database, serves the
/// same tokens afterwards; a second copy is refused.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh starts one"]
async fn copy_data_moves_an_sqlite_instance_to_postgres() {
    use crate::connections::{Ctx, custom, provider};
    use crate::oauth_as::{protected_and_signed_in, refresh_with, register_public, sign_in};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}/source.db", dir.path().display());
    let idp = provider("opaque").await;
    let ctx = Ctx::with(RawSettings {
        database_url: Some(sqlite_url.clone()),
        mcp_oauth_enabled: Some("true".into()),
        ..crate::connections::settings()
    })
    .await;
    let id = ctx.create(custom(&idp.issuer, "Moved")).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{page}");
    let (_, before) = ctx.token(&id, false).await;
    let (status, _) = ctx
        .send(
            reqwest::Method::PUT,
            "/api/v0/secrets/API_KEY",
            Some(json!({"value": "vault-value-123"})),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let api_token =
        crate::helpers::create_token_with(&ctx.app, &ctx.session, json!({"name": "moved"})).await;
    let mut browser = protected_and_signed_in(&ctx.app).await;
    let client_id = register_public(&ctx.app).await;
    let signed_in = sign_in(&ctx.app, &mut browser, &client_id).await;
    let refresh = signed_in["refresh_token"].as_str().unwrap().to_string();
    let Ctx { mut app, .. } = ctx;
    app.stop().await;

    let target = fresh_database(dir.path()).await;
    let copy = |to: String| {
        let sqlite_url = sqlite_url.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
                .args(["copy-data", "--to", &to])
                .env("DATABASE_URL", sqlite_url)
                .env("SECRET_KEY", TEST_KEY)
                .env("RUST_LOG", "warn")
                .output()
                .await
                .unwrap()
        }
    };
    let done = copy(target.clone()).await;
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(stdout.contains("connection_tokens"), "{stdout}");
    assert!(stdout.contains("oauth_refresh_tokens"), "{stdout}");
    let again = copy(target.clone()).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The copy, served: same connection token, the API token and the MCP client's refresh
    // token still work, the vault secret is there (sealed: the same key opens it).
    let moved = spawn_app(RawSettings {
        database_url: Some(target),
        mcp_oauth_enabled: Some("true".into()),
        ..crate::connections::settings()
    })
    .await;
    let ctx = Ctx::over(moved).await;
    let (status, after) = ctx.token(&id, false).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{after}");
    assert_eq!(after["access_token"], before["access_token"]);
    let (_, secrets) = ctx.get("/api/v0/secrets").await;
    assert!(secrets.to_string().contains("API_KEY"), "{secrets}");
    let mcp = mcp_initialize(&ctx.app.address, Some(&api_token)).await;
    assert_eq!(mcp.status(), reqwest::StatusCode::OK);
    let (status, _) = refresh_with(&ctx.app, &client_id, &refresh).await;
    assert_eq!(status, reqwest::StatusCode::OK);
}
