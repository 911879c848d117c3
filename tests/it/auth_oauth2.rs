//! Login through a real OpenID Connect provider (oidc-provider), plus fault injection with a
//! small in-process fake for what a well-behaved provider never does.

use axum::Router;
use axum::routing::{get, post};
use gatehouse::server::config::RawSettings;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn login_through_the_identity_provider() {
    let idp = OidcProvider::start(&[]).await;
    let app = spawn_app(oauth2_settings(&idp.issuer)).await;

    // The login page names the provider.
    let login = app.get("/login").await.text().await.unwrap();
    assert!(login.contains("Sign in with 127.0.0.1"), "{login}");

    let mut browser = Browser::default();
    let callback_url = walk_to_callback(&app, &mut browser, Some("Alice@Example.com")).await;
    assert!(
        callback_url.contains("iss="),
        "RFC 9207 iss comes back from oidc-provider"
    );
    let response = browser.get(&callback_url).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert!(
        set_cookie(response.headers(), "gatehouse_login")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(browser.cookies.contains_key("gatehouse_session"));

    let page = browser.get(&app.url("/")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("alice@example.com"));
}

#[tokio::test]
async fn email_from_the_id_token_when_there_is_no_userinfo() {
    let idp = OidcProvider::start(&["--no-userinfo"]).await;
    let app = spawn_app(oauth2_settings(&idp.issuer)).await;
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("bob@example.com")).await;
    let response = browser.get(&url).await;
    assert_eq!(location(&response), "/");
    let info: serde_json::Value = {
        let r = browser.get(&app.url("/auth/info")).await;
        r.json().await.unwrap()
    };
    assert_eq!(info["user"], "bob@example.com");
}

#[tokio::test]
async fn a_disallowed_domain_is_refused_and_told_why() {
    let idp = OidcProvider::start(&[]).await;
    let app = spawn_app(RawSettings {
        auth_oauth2_allowed_domains: Some("example.com".into()),
        auth_oauth2_allowed_users: Some("partner@partner.test".into()),
        ..oauth2_settings(&idp.issuer)
    })
    .await;

    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("mallory@evil.test")).await;
    let response = browser.get(&url).await;
    assert_eq!(location(&response), "/login?error=email_not_allowed");
    assert!(
        !browser.cookies.contains_key("gatehouse_session"),
        "no session for a refused user"
    );
    let page = browser
        .get(&app.url("/login?error=email_not_allowed"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Access denied"));
    assert!(page.contains("not allowed to use this Gatehouse"));

    // Listed user from another domain, and anyone from the allowed domain, get in.
    for email in ["partner@partner.test", "carol@example.com"] {
        let mut browser = Browser::default();
        let url = walk_to_callback(&app, &mut browser, Some(email)).await;
        assert_eq!(location(&browser.get(&url).await), "/", "{email}");
    }
}

#[tokio::test]
async fn an_address_with_two_at_signs_is_refused() {
    let idp = OidcProvider::start(&[]).await;
    let app = spawn_app(RawSettings {
        auth_oauth2_allowed_domains: Some("allowed.example".into()),
        ..oauth2_settings(&idp.issuer)
    })
    .await;
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("a@evil.example@allowed.example")).await;
    assert_eq!(
        location(&browser.get(&url).await),
        "/login?error=email_invalid"
    );
    assert!(!browser.cookies.contains_key("gatehouse_session"));
    let page = browser
        .get(&app.url("/login?error=email_invalid"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("not a plain address"), "{page}");

    // One local part and one domain in the allowed domain still gets in.
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("a@allowed.example")).await;
    assert_eq!(location(&browser.get(&url).await), "/");
}

#[tokio::test]
async fn denial_at_the_provider_is_reported() {
    let idp = OidcProvider::start(&[]).await;
    let app = spawn_app(oauth2_settings(&idp.issuer)).await;
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, None).await;
    assert!(url.contains("error=access_denied"));
    let response = browser.get(&url).await;
    assert_eq!(location(&response), "/login?error=idp_denied");
}

fn replace_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            if k == name {
                (k.into_owned(), value.to_string())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[tokio::test]
async fn state_is_single_use_bound_to_the_browser_and_expires() {
    let idp = OidcProvider::start(&[]).await;
    let app = spawn_app(oauth2_settings(&idp.issuer)).await;

    // Tampered state.
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("a@example.com")).await;
    let tampered = replace_param(&url, "state", "forged-state");
    assert_eq!(
        location(&browser.get(&tampered).await),
        "/login?error=state_invalid"
    );
    // No state at all.
    assert_eq!(
        location(&browser.get(&app.url("/auth/callback?code=x")).await),
        "/login?error=state_invalid"
    );

    // Another browser (an attacker feeding their own callback URL to a victim).
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("a@example.com")).await;
    let mut victim = Browser::default();
    assert_eq!(
        location(&victim.get(&url).await),
        "/login?error=state_mismatch"
    );
    // ...which also used the state up: the legitimate browser cannot replay it.
    assert_eq!(
        location(&browser.get(&url).await),
        "/login?error=state_invalid"
    );

    // Replay after success.
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("a@example.com")).await;
    let login_cookie = browser.cookies.get("gatehouse_login").cloned().unwrap();
    assert_eq!(location(&browser.get(&url).await), "/");
    browser
        .cookies
        .insert("gatehouse_login".into(), login_cookie);
    assert_eq!(
        location(&browser.get(&url).await),
        "/login?error=state_invalid"
    );

    // Expired: ten minutes is the limit.
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("a@example.com")).await;
    app.clock.advance(10 * 60);
    assert_eq!(
        location(&browser.get(&url).await),
        "/login?error=state_expired"
    );
}

#[tokio::test]
async fn a_mixed_up_issuer_is_refused() {
    let idp = OidcProvider::start(&[]).await;
    let app = spawn_app(oauth2_settings(&idp.issuer)).await;
    let mut browser = Browser::default();
    let url = walk_to_callback(&app, &mut browser, Some("a@example.com")).await;
    let mixed = replace_param(&url, "iss", "https://attacker.example");
    assert_eq!(
        location(&browser.get(&mixed).await),
        "/login?error=idp_error"
    );
}

/// A provider that misbehaves in a chosen way.
async fn fake_provider(token: (u16, &'static str), userinfo: (u16, &'static str)) -> String {
    let app = Router::new()
        .route("/authorize", get(|| async { "unused" }))
        .route(
            "/token",
            post(move || async move {
                (
                    StatusCode::from_u16(token.0).unwrap(),
                    [("content-type", "application/json")],
                    token.1,
                )
            }),
        )
        .route(
            "/userinfo",
            get(move || async move {
                (
                    StatusCode::from_u16(userinfo.0).unwrap(),
                    [("content-type", "application/json")],
                    userinfo.1,
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// Where the callback sends the browser, and whether it got a session.
async fn login_against(provider: &str) -> (String, bool) {
    let app = spawn_app(RawSettings {
        auth_oauth2_issuer_url: None,
        auth_oauth2_authorization_url: Some(format!("{provider}/authorize")),
        auth_oauth2_token_url: Some(format!("{provider}/token")),
        auth_oauth2_user_info_url: Some(format!("{provider}/userinfo")),
        ..oauth2_settings("unused")
    })
    .await;
    let mut browser = Browser::default();
    let start = browser.get(&app.url("/auth/oauth2/start")).await;
    let authorize = url::Url::parse(&location(&start)).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    for param in ["code_challenge", "redirect_uri", "client_id"] {
        assert!(
            authorize.query_pairs().any(|(k, _)| k == param),
            "authorize URL lacks {param}"
        );
    }
    assert!(
        authorize
            .query_pairs()
            .any(|(k, v)| k == "code_challenge_method" && v == "S256")
    );
    let response = browser
        .get(&app.url(&format!("/auth/callback?code=abc&state={}", enc(&state))))
        .await;
    (
        location(&response),
        browser.cookies.contains_key("gatehouse_session"),
    )
}

#[tokio::test]
async fn provider_faults_become_clear_errors() {
    let ok_token = r#"{"access_token":"at","token_type":"Bearer","expires_in":300}"#;
    let ok_user = r#"{"sub":"1","email":"ok@example.com","email_verified":true}"#;

    let cases = [
        (
            (500, "oops"),
            (200, ok_user),
            "/login?error=token_exchange_failed",
        ),
        (
            (200, r#"{"error":"invalid_grant"}"#),
            (200, ok_user),
            "/login?error=token_exchange_failed",
        ),
        (
            (
                400,
                r#"{"error":"invalid_grant","error_description":"bad code"}"#,
            ),
            (200, ok_user),
            "/login?error=token_exchange_failed",
        ),
        (
            (200, "not json"),
            (200, ok_user),
            "/login?error=token_exchange_failed",
        ),
        ((200, ok_token), (500, "{}"), "/login?error=userinfo_failed"),
        (
            (200, ok_token),
            (200, "[1,2"),
            "/login?error=userinfo_failed",
        ),
        (
            (200, ok_token),
            (200, r#"{"sub":"1"}"#),
            "/login?error=email_missing",
        ),
        (
            (200, ok_token),
            (
                200,
                r#"{"sub":"1","email":"x@example.com","email_verified":false}"#,
            ),
            "/login?error=email_unverified",
        ),
        ((200, ok_token), (200, ok_user), "/"),
    ];
    for (token, userinfo, expected) in cases {
        let provider = fake_provider(token, userinfo).await;
        let (went_to, signed_in) = login_against(&provider).await;
        assert_eq!(went_to, expected, "token {token:?} userinfo {userinfo:?}");
        // Nothing half-done: a session exists only when the whole login succeeded.
        assert_eq!(
            signed_in,
            expected == "/",
            "token {token:?} userinfo {userinfo:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_provider_does_not_stop_start_up() {
    // Discovery runs at the first login, so Gatehouse starts while the provider is down.
    let app = spawn_app(oauth2_settings("http://127.0.0.1:9")).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let start = app.get("/auth/oauth2/start").await;
    assert_eq!(location(&start), "/login?error=idp_unavailable");
}
