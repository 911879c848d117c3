use gatehouse::server::config::RawSettings;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn everything_is_open_and_the_login_page_says_continue() {
    let app = spawn_app(RawSettings::default()).await;

    let login = app.get("/login").await;
    assert_eq!(login.status(), StatusCode::OK);
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("Continue to dashboard")
    );

    let dashboard = app.get("/").await;
    assert_eq!(dashboard.status(), StatusCode::OK);
    let html = dashboard.text().await.unwrap();
    // Rendered on the server, data included: readable without JavaScript.
    assert!(html.contains("Dashboard"));
    assert!(html.contains(app.state.config.database.backend_name()));
    assert!(
        html.contains(&app.address),
        "the public URL is derived from the bound address"
    );

    let info: serde_json::Value = app.get("/auth/info").await.json().await.unwrap();
    assert_eq!(info["auth_type"], "none");
    assert_eq!(info["authenticated"], true);
}

#[tokio::test]
async fn json_login_is_refused_with_an_explanation() {
    let app = spawn_app(RawSettings::default()).await;
    let response = app.login_json("a", "b").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("AUTH_TYPE is none")
    );
}

#[tokio::test]
async fn a_missing_key_is_generated_once_with_mode_0600() {
    let app = spawn_app(RawSettings::default()).await;
    let key_file = app.data_dir.path().join("secret_key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
