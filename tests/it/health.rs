use gatehouse::server::config::RawSettings;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_checks_the_database() {
    let app = spawn_app(RawSettings::default()).await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let app = spawn_app(RawSettings::default()).await;
    let response = app.get("/login").await;
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["referrer-policy"], "same-origin");
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let app = spawn_app(RawSettings::default()).await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn a_bad_file_named_by_a_setting_stops_start_up_before_anything_is_written() {
    use gatehouse::server::clock::SystemClock;
    use gatehouse::server::config::Config;
    use gatehouse::server::startup::{Application, StartupError};

    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, r#"[{"id": "x"}]"#).unwrap();
    let data = dir.path().join("data");
    let config = Config::parse(&RawSettings {
        listen_addr: Some("127.0.0.1:0".into()),
        database_url: Some(format!("sqlite://{}/gatehouse.db", data.display())),
        mcp_catalog: Some(catalog.display().to_string()),
        ..RawSettings::default()
    })
    .expect("parsing reads no file");
    let Err(StartupError::Config(message)) =
        Application::build(config, std::sync::Arc::new(SystemClock)).await
    else {
        panic!("a bad MCP_CATALOG must stop start-up as a setting error");
    };
    assert!(
        message.starts_with("invalid setting MCP_CATALOG:"),
        "{message}"
    );
    assert!(
        !data.exists(),
        "no key and no database were created for a start-up that failed"
    );
}
