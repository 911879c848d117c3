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
