use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::server::auth::AuthMethod;
use gatehouse::server::auth::session::SessionKeys;
use gatehouse::server::config::RawSettings;
use gatehouse::server::secrets::MasterKey;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn pages_and_api_need_a_session() {
    let app = spawn_app(basic_settings()).await;

    let page = app.get("/?tab=1").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&page), "/login?next=%2F%3Ftab%3D1");

    for path in ["/api/v0/settings/mcp", "/api/get_session"] {
        let api = app.get(path).await;
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            api.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let body: serde_json::Value = api.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }

    // The login page itself, its data and its assets are public.
    assert_eq!(app.get("/login").await.status(), StatusCode::OK);
    let info: serde_json::Value = app.get("/auth/info").await.json().await.unwrap();
    assert_eq!(info["auth_type"], "basic");
    assert_eq!(info["authenticated"], false);
}

#[tokio::test]
async fn json_login_returns_a_bearer_token_that_opens_the_app() {
    let app = spawn_app(basic_settings()).await;
    let response = app.login_json(USERNAME, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    let token = body["token"].as_str().unwrap();

    let page = app.get_with_bearer("/", token).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(USERNAME));

    let info: serde_json::Value = app
        .get_with_bearer("/auth/info", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["authenticated"], true);
    assert_eq!(info["user"], USERNAME);
}

#[tokio::test]
async fn wrong_username_and_wrong_password_get_the_same_answer() {
    let app = spawn_app(basic_settings()).await;
    let wrong_password: serde_json::Value = {
        let r = app.login_json(USERNAME, "nope").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        r.json().await.unwrap()
    };
    let wrong_user: serde_json::Value = {
        let r = app.login_json("root", PASSWORD).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        r.json().await.unwrap()
    };
    assert_eq!(wrong_password, wrong_user);
    assert_eq!(wrong_password["message"], "Invalid username or password.");
}

#[tokio::test]
async fn bad_login_requests_are_400() {
    let app = spawn_app(basic_settings()).await;
    let not_json = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let text = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "text/plain")
        .body("admin:pw")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::BAD_REQUEST);
    let huge = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"username\":\"{}\",\"password\":\"x\"}}",
            "a".repeat(100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn form_login_sets_the_cookie_and_returns_to_next() {
    let app = spawn_app(basic_settings()).await;
    let response = app.login_form(USERNAME, PASSWORD, "/?x=1").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/?x=1");
    let cookie = set_cookie(response.headers(), "gatehouse_session").expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(
        !cookie.contains("Secure"),
        "http PUBLIC_URL: no Secure flag"
    );

    let page = app.get_with_cookie("/", &cookie_pair(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn form_login_failure_goes_back_to_the_form_with_next() {
    let app = spawn_app(basic_settings()).await;
    let response = app.login_form(USERNAME, "wrong", "/x").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/login?error=invalid_credentials&next=%2Fx"
    );
    assert!(set_cookie(response.headers(), "gatehouse_session").is_none());
    let page = app.get(&location(&response)).await.text().await.unwrap();
    assert!(page.contains("Invalid username or password."));
}

#[tokio::test]
async fn next_never_leaves_the_site() {
    let app = spawn_app(basic_settings()).await;
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let response = app.login_form(USERNAME, PASSWORD, evil).await;
        assert_eq!(location(&response), "/", "{evil}");
    }
}

#[tokio::test]
async fn repeated_failures_are_slowed_down() {
    let app = spawn_app(basic_settings()).await;
    for _ in 0..5 {
        assert_eq!(
            app.login_json(USERNAME, "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let throttled = app.login_json(USERNAME, PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "1");
    let form = app.login_form(USERNAME, PASSWORD, "/").await;
    assert_eq!(location(&form), "/login?error=rate_limited");

    app.clock.advance(1);
    assert_eq!(
        app.login_json(USERNAME, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_is_throttled_like_a_sequence() {
    let app = spawn_app(basic_settings()).await;
    // 50 wrong passwords at once from one address: each attempt is counted when it starts,
    // so only the free five reach the (slow) password check.
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (client, url) = (app.client.clone(), app.url("/auth/login"));
        attempts.spawn(async move {
            client
                .post(url)
                .json(&serde_json::json!({"username": USERNAME, "password": format!("guess {i}")}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses = attempts.join_all().await;
    let count = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(count(StatusCode::UNAUTHORIZED), 5, "{statuses:?}");
    assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 45, "{statuses:?}");
    // Even the right password waits its turn.
    assert_eq!(
        app.login_json(USERNAME, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn expired_sessions_go_back_to_login_and_return() {
    let app = spawn_app(basic_settings()).await;
    let token = app.token().await;
    let cookie = format!("gatehouse_session={token}");
    assert_eq!(
        app.get_with_cookie("/", &cookie).await.status(),
        StatusCode::OK
    );

    app.clock.advance(24 * 3600);
    let page = app.get_with_cookie("/settings?a=b", &cookie).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&page),
        "/login?error=session_expired&next=%2Fsettings%3Fa%3Db"
    );
    let cleared =
        set_cookie(page.headers(), "gatehouse_session").expect("the dead cookie is cleared");
    assert!(cleared.contains("Max-Age=0"));

    let api = app.get_with_bearer("/api/anything", &token).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = api.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn tampered_and_foreign_tokens_are_refused() {
    let app = spawn_app(basic_settings()).await;
    let token = app.token().await;

    // Payload changed to another user, signature kept.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = "mallory".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = parts.join(".");

    // Well-formed, but signed with another key.
    let other = SessionKeys::new(&MasterKey::from_bytes(vec![9u8; 32]), &app.address)
        .issue(USERNAME, AuthMethod::Basic, vec![], app.clock.now())
        .token;
    // Signed with the right key, for another issuer.
    let elsewhere = SessionKeys::new(
        &MasterKey::from_bytes(TEST_KEY.as_bytes().to_vec()),
        "http://elsewhere",
    )
    .issue(USERNAME, AuthMethod::Basic, vec![], app.clock.now())
    .token;

    for bad in [
        tampered.as_str(),
        other.as_str(),
        elsewhere.as_str(),
        "not-a-jwt",
    ] {
        assert_eq!(
            app.get_with_bearer("/api/x", bad).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let page = app
            .get_with_cookie("/", &format!("gatehouse_session={bad}"))
            .await;
        assert_eq!(location(&page), "/login");
    }
    // A malformed Authorization header is refused, not ignored in favour of the cookie.
    let response = app
        .client
        .get(app.url("/api/x"))
        .header("authorization", "Basic YWRtaW46cGFzcw==")
        .header("cookie", format!("gatehouse_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

use gatehouse::server::clock::Clock;

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app(basic_settings()).await;
    let token = app.token().await;
    let logout = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert!(
        set_cookie(logout.headers(), "gatehouse_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    // The same token, kept by someone, no longer works.
    assert_eq!(
        app.get_with_bearer("/api/x", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // From the browser form: back to the login page.
    let token = app.token().await;
    let logout = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", format!("gatehouse_session={token}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&logout), "/login?signed_out=1");
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let app = spawn_app(basic_settings()).await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={USERNAME}&password={}", enc(PASSWORD)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Same origin is fine.
    let ok = app
        .client
        .post(app.url("/auth/login"))
        .header("origin", app.address.clone())
        .json(&serde_json::json!({"username": USERNAME, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn https_public_url_makes_the_cookie_secure() {
    let app = spawn_app(RawSettings {
        public_url: Some("https://gatehouse.example.com".into()),
        auth_oauth2_session_cookie_name: Some("gh_sess".into()),
        ..basic_settings()
    })
    .await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={USERNAME}&password={}", enc(PASSWORD)))
        .send()
        .await
        .unwrap();
    let cookie = set_cookie(response.headers(), "gh_sess")
        .expect("named by AUTH_OAUTH2_SESSION_COOKIE_NAME");
    assert!(cookie.contains("Secure"));
}

#[tokio::test]
async fn argon2_hashes_work() {
    let hash = gatehouse::server::auth::password::hash_password("pa55word");
    let app = spawn_app(RawSettings {
        auth_basic_password: None,
        auth_basic_password_hash: Some(hash),
        ..basic_settings()
    })
    .await;
    assert_eq!(
        app.login_json(USERNAME, "pa55word").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login_json(USERNAME, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
