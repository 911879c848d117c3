//! Connections against a real authorization server: oidc-provider in `--connections` mode
//! (auth code + PKCE, rotating refresh tokens with reuse detection, client credentials, DCR
//! with RFC 7592 management, revocation, introspection, resource indicators). In-process
//! fakes only for faults.

use std::sync::{Arc, Mutex};

use gatehouse::server::connections::GrantKey;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) const CLIENT_ID: &str = "gatehouse-connections";
pub(crate) const CLIENT_SECRET: &str = "gatehouse-connections-secret";

pub(crate) async fn provider(format: &str) -> OidcProvider {
    OidcProvider::start(&["--connections", "--access-token-format", format]).await
}

pub(crate) fn settings() -> gatehouse::server::config::RawSettings {
    gatehouse::server::config::RawSettings {
        outbound_allow_private_networks: Some("true".into()),
        connections_refresh_interval: Some("0".into()),
        outbound_timeout: Some("2".into()),
        ..basic_settings()
    }
}

pub(crate) struct Ctx {
    pub(crate) app: TestApp,
    pub(crate) session: String,
}

impl Ctx {
    pub(crate) async fn new() -> Ctx {
        Ctx::with(settings()).await
    }

    pub(crate) async fn with(settings: gatehouse::server::config::RawSettings) -> Ctx {
        Ctx::over(spawn_app(settings).await).await
    }

    /// A signed-in context over an app already running (replicas: the proxy's view).
    pub(crate) async fn over(app: TestApp) -> Ctx {
        let session = app.token().await;
        Ctx { app, session }
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        send_json(&self.app, &self.session, method, path, body).await
    }

    pub(crate) async fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn create(&self, body: Value) -> String {
        let (status, created) = self.post("/api/v0/connections", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["id"].as_str().unwrap().to_string()
    }

    /// Connect through the popup flow as a browser would, returning the callback page.
    pub(crate) async fn connect(&self, id: &str, email: Option<&str>) -> (StatusCode, String) {
        connect_in_popup(&self.app, &self.session, id, email).await
    }

    pub(crate) async fn token(&self, id: &str, force: bool) -> (StatusCode, Value) {
        let q = if force { "?force=true" } else { "" };
        self.post(&format!("/api/v0/connections/{id}/token{q}"), None)
            .await
    }

    pub(crate) async fn view(&self, id: &str) -> Value {
        let (status, v) = self.get(&format!("/api/v0/connections/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// The stored refresh token, opened (tests only: nothing serves it).
    pub(crate) async fn stored_refresh_token(&self, id: &str) -> String {
        let tokens = self
            .app
            .state
            .db
            .find_connection_tokens(GrantKey::shared(id))
            .await
            .unwrap()
            .unwrap();
        self.app
            .state
            .connections
            .open(
                id,
                "refresh_token",
                tokens.refresh_token.as_deref().unwrap(),
            )
            .unwrap()
            .expose()
            .to_string()
    }
}

/// Connect started with `session` and walked through the provider as a browser would,
/// signing in as `email` (or denying): the callback page.
pub(crate) async fn connect_in_popup(
    app: &TestApp,
    session: &str,
    id: &str,
    email: Option<&str>,
) -> (StatusCode, String) {
    let (status, started) = send_json(
        app,
        session,
        reqwest::Method::POST,
        &format!("/api/v0/connections/{id}/connect"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let url = started["authorization_url"].as_str().unwrap();
    let mut browser = Browser::default();
    let back = walk_provider(
        &mut browser,
        url,
        &app.url("/connections/oauth/callback"),
        email,
    )
    .await;
    let page = app
        .client
        .get(back)
        .bearer_auth(session)
        .send()
        .await
        .unwrap();
    (page.status(), page.text().await.unwrap())
}

pub(crate) fn custom(issuer: &str, name: &str) -> Value {
    json!({
        "name": name,
        "description": "Test provider",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorization_url": format!("{issuer}/auth"),
        "token_url": format!("{issuer}/token"),
        "revocation_url": format!("{issuer}/token/revocation"),
        "introspection_url": format!("{issuer}/token/introspection"),
        "scopes": ["openid", "read", "write"],
        "pkce": true,
        "resource": format!("{issuer}/api"),
    })
}

pub(crate) async fn stats(issuer: &str) -> Value {
    client()
        .get(format!("{issuer}/__stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn reset_stats(issuer: &str) {
    client()
        .post(format!("{issuer}/__stats/reset"))
        .send()
        .await
        .unwrap();
}

/// The provider counted exactly one refresh since its stats were reset, and no
/// `invalid_grant`: nobody presented a refresh token twice.
pub(crate) async fn assert_one_refresh_and_no_invalid_grant(issuer: &str) {
    let s = stats(issuer).await;
    assert_eq!(s["grants"]["refresh_token"], 1, "{s}");
    assert_eq!(
        s["grant_errors"]
            .get("invalid_grant")
            .cloned()
            .unwrap_or(json!(0)),
        0,
        "{s}"
    );
}

/// Presents a refresh token at the provider directly, as the connection's client.
pub(crate) async fn refresh_at_provider(issuer: &str, refresh_token: &str) -> reqwest::Response {
    client()
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn introspect_at_provider(issuer: &str, token: &str) -> Value {
    client()
        .post(format!("{issuer}/token/introspection"))
        .form(&[
            ("token", token),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn connect_refresh_rotate_introspect_and_disconnect() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let mut body = custom(&idp.issuer, "Acme");
    // A pasted URL with a query string is cleaned, and the user is told.
    body["token_url"] = json!(format!(
        "{}/token?grant_type=authorization_code",
        idp.issuer
    ));
    let (status, created) = ctx.post("/api/v0/connections", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        created["notices"][0]
            .as_str()
            .unwrap()
            .contains("grant_type=authorization_code")
    );
    assert_eq!(created["token_url"], format!("{}/token", idp.issuer));
    assert_eq!(created["status"], "not_connected");
    assert!(created.get("client_secret").is_none() && !created.to_string().contains(CLIENT_SECRET));
    let id = created["id"].as_str().unwrap().to_string();

    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Acme is connected"), "{page}");
    assert!(page.contains("postMessage"), "{page}");
    assert!(
        page.contains(&format!("\"{}\"", ctx.app.address)),
        "targets Gatehouse's own origin only"
    );
    let view = ctx.view(&id).await;
    assert_eq!(view["status"], "connected", "{view}");
    assert_eq!(view["grant"]["has_refresh_token"], true);

    let (status, first) = ctx.token(&id, false).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(first.get("refresh_token").is_none());
    assert_eq!(first["token_type"], "Bearer");
    assert!(first["expires_in"].as_i64().unwrap() > 3000);
    let first_token = first["access_token"].as_str().unwrap().to_string();
    let (_, again) = ctx.token(&id, false).await;
    assert_eq!(
        again["access_token"],
        first_token.as_str(),
        "a fresh token is reused"
    );

    let (status, intro) = ctx
        .post(&format!("/api/v0/connections/{id}/introspect"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{intro}");
    assert_eq!(intro["active"], true, "{intro}");

    // Near expiry the token is refreshed, and the rotated refresh token is stored.
    let old_refresh = ctx.stored_refresh_token(&id).await;
    reset_stats(&idp.issuer).await;
    ctx.app.clock.advance(3600 - 30);
    let (status, second) = ctx.token(&id, false).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["access_token"], first_token.as_str());
    assert_eq!(stats(&idp.issuer).await["grants"]["refresh_token"], 1);
    let new_refresh = ctx.stored_refresh_token(&id).await;
    assert_ne!(new_refresh, old_refresh, "rotation persisted");

    // Force: a caller that got a 401 asks for a new token.
    let (status, third) = ctx.token(&id, true).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_ne!(third["access_token"], second["access_token"]);
    assert_eq!(stats(&idp.issuer).await["grants"]["refresh_token"], 2);
    let third_token = third["access_token"].as_str().unwrap().to_string();

    // Disconnect revokes at the provider: introspection then says inactive.
    assert_eq!(
        introspect_at_provider(&idp.issuer, &third_token).await["active"],
        true
    );
    let (status, done) = ctx
        .post(&format!("/api/v0/connections/{id}/disconnect"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["warning"], Value::Null, "{done}");
    assert_eq!(
        introspect_at_provider(&idp.issuer, &third_token).await["active"],
        false
    );
    let view = ctx.view(&id).await;
    assert_eq!(view["status"], "not_connected");
    assert_eq!(view["grant"], Value::Null);
    let (status, err) = ctx.token(&id, false).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("not connected"),
        "{err}"
    );
}

#[tokio::test]
async fn a_hundred_concurrent_callers_cause_one_refresh() {
    let idp = provider("jwt").await;
    let ctx = Arc::new(Ctx::new().await);
    let id = ctx.create(custom(&idp.issuer, "Busy")).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, first) = ctx.token(&id, false).await;
    let old_refresh = ctx.stored_refresh_token(&id).await;

    ctx.app.clock.advance(3600 + 5);
    reset_stats(&idp.issuer).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let ctx = ctx.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move { ctx.token(&id, false).await }));
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

    // The access token is a JWT for the resource that was asked for.
    let token = tokens.into_iter().next().unwrap();
    let payload = token.split('.').nth(1).expect("a JWT");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], format!("{}/api", idp.issuer), "{claims}");

    // The rotated-out refresh token is refused by the provider (reuse detection); Gatehouse
    // never sends it (the provider counted no invalid_grant above).
    let replay = refresh_at_provider(&idp.issuer, &old_refresh).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );

    // Reuse detection revoked the grant: Gatehouse's next refresh gets invalid_grant, marks
    // the connection for re-authorization, and stops calling the provider.
    ctx.app.clock.advance(3600 + 5);
    let (status, err) = ctx.token(&id, false).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("needs re-authorization"),
        "{err}"
    );
    assert_eq!(ctx.view(&id).await["status"], "needs_reauth");
    reset_stats(&idp.issuer).await;
    let (status, _) = ctx.token(&id, false).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let s = stats(&idp.issuer).await;
    assert_eq!(
        s["grants"]["refresh_token"], 0,
        "no retry after invalid_grant: {s}"
    );

    // Connecting again heals it.
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ctx.view(&id).await["status"], "connected");
}

#[tokio::test]
async fn client_credentials_are_fetched_and_renewed_in_the_background() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let id = ctx
        .create(json!({
            "name": "Machine",
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_url": format!("{}/token", idp.issuer),
            "token_auth_method": "client_secret_post",
            "scopes": ["read"],
            "resource": format!("{}/api", idp.issuer),
        }))
        .await;
    let (status, started) = ctx
        .post(&format!("/api/v0/connections/{id}/connect"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["status"], "connected");
    let (_, first) = ctx.token(&id, false).await;
    assert_eq!(ctx.view(&id).await["status"], "connected");

    reset_stats(&idp.issuer).await;
    ctx.app.clock.advance(3600 - 60);
    let renewed = ctx.app.state.connections_maintenance(60).await.unwrap();
    assert_eq!(renewed, 1);
    assert_eq!(stats(&idp.issuer).await["grants"]["client_credentials"], 1);
    let (_, second) = ctx.token(&id, false).await;
    assert_ne!(second["access_token"], first["access_token"]);
    // Nothing due: the next pass does nothing.
    assert_eq!(ctx.app.state.connections_maintenance(60).await.unwrap(), 0);
}

#[tokio::test]
async fn dynamic_registration_sync_push_and_deregistration() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let id = ctx
        .create(json!({
            "name": "Registered",
            "dynamic_registration": true,
            "provider_domain_url": idp.issuer,
            "authorization_url": format!("{}/auth", idp.issuer),
            "token_url": format!("{}/token", idp.issuer),
            "scopes": ["openid", "read"],
            "resource": format!("{}/api", idp.issuer),
        }))
        .await;
    // Before the first connect there is nothing to sync.
    let (status, err) = ctx
        .post(&format!("/api/v0/connections/{id}/registration/sync"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("No registration_client_uri or registration_access_token found")
    );

    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let view = ctx.view(&id).await;
    assert_eq!(view["status"], "connected", "{view}");
    assert_eq!(view["registered"], true);
    assert_eq!(
        view["pkce"], true,
        "PKCE is forced on for dynamic registration"
    );
    let client_id = view["client_id"].as_str().unwrap().to_string();

    let (status, synced) = ctx
        .post(&format!("/api/v0/connections/{id}/registration/sync"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{synced}");
    assert_eq!(synced["provider"]["client_id"], client_id.as_str());
    assert_eq!(synced["provider"]["client_name"], "Gatehouse (Registered)");
    assert!(
        !synced
            .to_string()
            .contains("registration_access_token\":\"ey")
    );

    // Push: the local name goes to the provider.
    let mut edit = view.clone();
    edit["name"] = json!("Renamed");
    let input = json!({
        "name": "Renamed",
        "dynamic_registration": true,
        "provider_domain_url": idp.issuer,
        "authorization_url": edit["authorization_url"],
        "token_url": edit["token_url"],
        "scopes": ["openid", "read"],
        "resource": format!("{}/api", idp.issuer),
    });
    let (status, updated) = ctx
        .send(
            reqwest::Method::PUT,
            &format!("/api/v0/connections/{id}"),
            Some(input),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["client_id"],
        client_id.as_str(),
        "an edit keeps the registration"
    );
    let (status, pushed) = ctx
        .post(&format!("/api/v0/connections/{id}/registration/push"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{pushed}");
    let (_, synced) = ctx
        .post(&format!("/api/v0/connections/{id}/registration/sync"), None)
        .await;
    assert_eq!(
        synced["provider"]["client_name"], "Gatehouse (Renamed)",
        "{synced}"
    );

    // Delete deregisters the client: its registration is gone at the provider.
    let row = ctx
        .app
        .state
        .db
        .find_connection(&id)
        .await
        .unwrap()
        .unwrap();
    let rat = ctx
        .app
        .state
        .connections
        .open(
            &id,
            "registration_access_token",
            row.registration_access_token.as_deref().unwrap(),
        )
        .unwrap();
    let uri = row.registration_client_uri.unwrap();
    assert_eq!(
        client()
            .get(&uri)
            .bearer_auth(rat.expose())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, deleted) = ctx
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v0/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["warning"], Value::Null, "{deleted}");
    assert_ne!(
        client()
            .get(&uri)
            .bearer_auth(rat.expose())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        ctx.get(&format!("/api/v0/connections/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn popup_errors_are_shown_and_nothing_is_half_saved() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let id = ctx.create(custom(&idp.issuer, "Refused")).await;

    // The user presses Deny at the provider.
    let (status, page) = ctx.connect(&id, None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{page}");
    assert!(page.contains("Access was denied at the provider"), "{page}");
    assert!(page.contains("\"ok\":false"), "{page}");
    let view = ctx.view(&id).await;
    assert_eq!(view["status"], "not_connected");
    assert!(
        view["last_error"]
            .as_str()
            .unwrap()
            .contains("Access was denied")
    );
    assert!(
        ctx.app
            .state
            .db
            .find_connection_tokens(GrantKey::shared(&id))
            .await
            .unwrap()
            .is_none()
    );

    // A state that was never issued, and one used twice.
    let bogus = ctx
        .app
        .client
        .get(
            ctx.app
                .url("/connections/oauth/callback?code=x&state=made-up"),
        )
        .bearer_auth(&ctx.session)
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);
    assert!(
        bogus
            .text()
            .await
            .unwrap()
            .contains("does not match a request in progress")
    );

    let (_, started) = ctx
        .post(&format!("/api/v0/connections/{id}/connect"), None)
        .await;
    let mut browser = Browser::default();
    let back = walk_provider(
        &mut browser,
        started["authorization_url"].as_str().unwrap(),
        &ctx.app.url("/connections/oauth/callback"),
        Some("ops@example.com"),
    )
    .await;
    let first = ctx
        .app
        .client
        .get(&back)
        .bearer_auth(&ctx.session)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let replay = ctx
        .app
        .client
        .get(&back)
        .bearer_auth(&ctx.session)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

    // A state is good for 10 minutes only.
    let (_, started) = ctx
        .post(&format!("/api/v0/connections/{id}/connect"), None)
        .await;
    let back = walk_provider(
        &mut browser,
        started["authorization_url"].as_str().unwrap(),
        &ctx.app.url("/connections/oauth/callback"),
        Some("ops@example.com"),
    )
    .await;
    ctx.app.clock.advance(601);
    let late = ctx
        .app
        .client
        .get(&back)
        .bearer_auth(&ctx.session)
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    assert!(late.text().await.unwrap().contains("expired"));
    assert_eq!(
        ctx.view(&id).await["status"],
        "connected",
        "the working grant stays"
    );
}

/// A token endpoint that misbehaves on demand.
async fn faulty_provider(mode: Arc<Mutex<&'static str>>) -> String {
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move || {
            let mode = *mode.lock().unwrap();
            async move {
                match mode {
                    "ok" => axum::Json(json!({"access_token": format!("tok-{}", gatehouse::server::secrets::random_id()), "token_type": "bearer", "expires_in": 600})).into_response(),
                    "slow" => {
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                        axum::Json(json!({"access_token": "late"})).into_response()
                    }
                    "500" => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
                    "html" => ([(http::header::CONTENT_TYPE, "text/html")], "<html>maintenance</html>").into_response(),
                    "error200" => axum::Json(json!({"ok": false, "error": "invalid_client", "error_description": "bad client"})).into_response(),
                    _ => unreachable!(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn token_endpoint_faults_lose_nothing_and_show_the_status() {
    let mode = Arc::new(Mutex::new("ok"));
    let base = faulty_provider(mode.clone()).await;
    let ctx = Ctx::new().await;
    let id = ctx
        .create(json!({
            "name": "Flaky",
            "grant_type": "client_credentials",
            "client_id": "c",
            "client_secret": "s",
            "token_url": format!("{base}/token"),
        }))
        .await;
    let (status, _) = ctx
        .post(&format!("/api/v0/connections/{id}/connect"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, good) = ctx.token(&id, false).await;
    let mut good_token = good["access_token"].as_str().unwrap().to_string();

    for (fault, expected) in [
        ("slow", "did not answer in time"),
        ("500", "HTTP 500"),
        ("html", "text/html, not JSON"),
    ] {
        *mode.lock().unwrap() = fault;
        // Within the refresh window but not expired: the caller still gets the old token,
        // and the list shows the failure.
        let expires_at = ctx.view(&id).await["grant"]["expires_at"].as_i64().unwrap();
        ctx.app.clock.advance(expires_at - ctx.app.state.now() - 30);
        let (status, body) = ctx.token(&id, false).await;
        assert_eq!(status, StatusCode::OK, "{fault}: {body}");
        assert_eq!(
            body["access_token"],
            good_token.as_str(),
            "{fault}: the old token is kept"
        );
        let view = ctx.view(&id).await;
        assert_eq!(view["status"], "failing", "{fault}: {view}");
        assert!(
            view["last_error"].as_str().unwrap().contains(expected),
            "{fault}: {view}"
        );
        // Health at a glance: the failures in a row, and the retry as the next refresh.
        assert!(view["failures"].as_i64().unwrap() >= 1, "{fault}: {view}");
        assert!(
            view["next_refresh_at"].as_i64().unwrap() > ctx.app.state.now(),
            "{fault}: {view}"
        );
        // While backing off, the provider is not called again; the old token still serves.
        let (status, _) = ctx.token(&id, false).await;
        assert_eq!(status, StatusCode::OK);
        // Forced, the caller is told why.
        let (status, body) = ctx.token(&id, true).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{fault}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(expected),
            "{fault}: {body}"
        );
        assert!(
            ctx.app
                .state
                .db
                .find_connection_tokens(GrantKey::shared(&id))
                .await
                .unwrap()
                .is_some(),
            "nothing lost"
        );

        // The provider recovers.
        *mode.lock().unwrap() = "ok";
        let (status, body) = ctx.token(&id, true).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        good_token = body["access_token"].as_str().unwrap().to_string();
        assert_eq!(ctx.view(&id).await["status"], "connected");
    }

    // An OAuth error inside an HTTP 200 is an error, and a dead client stops the retries.
    *mode.lock().unwrap() = "error200";
    let (status, body) = ctx.token(&id, true).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("invalid_client"),
        "{body}"
    );
    assert_eq!(ctx.view(&id).await["status"], "needs_reauth");

    // Healing: a working endpoint and a new connect.
    *mode.lock().unwrap() = "ok";
    let (status, body) = ctx
        .post(&format!("/api/v0/connections/{id}/connect"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ctx.view(&id).await["status"], "connected");
}

#[tokio::test]
async fn the_token_api_needs_the_right_credential() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let id = ctx.create(custom(&idp.issuer, "Guarded")).await;
    ctx.connect(&id, Some("ops@example.com")).await;
    let url = ctx.app.url(&format!("/api/v0/connections/{id}/token"));

    let anonymous = ctx.app.client.post(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let create = |scopes: Value| {
        let ctx = &ctx;
        async move {
            let r = ctx
                .post(
                    "/api/v0/settings/mcp/tokens",
                    Some(json!({"name": format!("w{}", scopes), "scopes": scopes})),
                )
                .await;
            assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
            r.1["token"].as_str().unwrap().to_string()
        }
    };
    let mcp_only = create(json!(["mcp"])).await;
    let worker = create(json!(["connections:token"])).await;
    let r = ctx
        .app
        .client
        .post(&url)
        .bearer_auth(&mcp_only)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("connections:token"));
    let r = ctx
        .app
        .client
        .post(&url)
        .bearer_auth(&worker)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert!(body["access_token"].is_string() && body.get("refresh_token").is_none());
    // The worker token is not a session: the rest of the API stays closed to it.
    let r = ctx
        .app
        .client
        .get(ctx.app.url("/api/v0/connections"))
        .bearer_auth(&worker)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = ctx
        .app
        .client
        .post(ctx.app.url("/api/v0/connections/nope/token"))
        .bearer_auth(&worker)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_database_file_holds_no_secret_in_plain_text() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let id = ctx.create(custom(&idp.issuer, "Sealed")).await;
    ctx.connect(&id, Some("ops@example.com")).await;
    let (_, token) = ctx.token(&id, false).await;
    let access = token["access_token"].as_str().unwrap().to_string();
    let refresh = ctx.stored_refresh_token(&id).await;
    let haystack = ctx.app.stored_text().await;
    assert!(haystack.contains("Sealed"), "{haystack}");
    for secret in [CLIENT_SECRET, access.as_str(), refresh.as_str()] {
        assert!(
            !haystack.contains(secret),
            "{secret} is in the database file"
        );
    }
    assert!(haystack.contains("gh1."), "sealed values are there");
}

#[tokio::test]
async fn moving_a_connection_to_another_host_needs_the_secret_again() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let id = ctx.create(custom(&idp.issuer, "Movable")).await;
    ctx.connect(&id, Some("ops@example.com")).await;
    let path = format!("/api/v0/connections/{id}");

    // Another host, secret left empty ("keep"): refused, nothing changed.
    let mut moved = custom("https://elsewhere.example", "Movable");
    moved["client_secret"] = json!("");
    let (status, err) = ctx
        .send(reqwest::Method::PUT, &path, Some(moved.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("enter the client secret again")
    );
    assert_eq!(ctx.view(&id).await["status"], "connected");

    // The same host with a kept secret is a plain edit: the grant stays.
    let mut same = custom(&idp.issuer, "Movable renamed");
    same["client_secret"] = json!("");
    let (status, view) = ctx.send(reqwest::Method::PUT, &path, Some(same)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "connected");

    // With the secret given again it moves, and the old host's tokens are dropped.
    moved["client_secret"] = json!("another-secret");
    let (status, view) = ctx.send(reqwest::Method::PUT, &path, Some(moved)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "not_connected");
    assert_eq!(view["grant"], Value::Null);
}

#[tokio::test]
async fn reauthorize_changes_apply_only_when_the_new_grant_arrives() {
    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let id = ctx.create(custom(&idp.issuer, "Reauth")).await;
    ctx.connect(&id, Some("ops@example.com")).await;
    let (_, before) = ctx.token(&id, false).await;
    let callback = ctx.app.url("/connections/oauth/callback");

    let reauthorize = |changes: Value| {
        let ctx = &ctx;
        let callback = callback.clone();
        let id = id.clone();
        async move {
            let (status, started) = ctx
                .post(&format!("/api/v0/connections/{id}/connect"), Some(changes))
                .await;
            assert_eq!(status, StatusCode::OK, "{started}");
            let url = started["authorization_url"].as_str().unwrap().to_string();
            let mut browser = Browser::default();
            let back = walk_provider(&mut browser, &url, &callback, Some("ops@example.com")).await;
            let page = ctx
                .app
                .client
                .get(back)
                .bearer_auth(&ctx.session)
                .send()
                .await
                .unwrap();
            (url, page.status())
        }
    };

    // A wrong new secret: the exchange fails, and nothing changes (old client, old grant).
    let (_, status) = reauthorize(json!({"client_secret": "wrong", "scopes": ["read"]})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let view = ctx.view(&id).await;
    assert_eq!(view["scopes"], json!(["openid", "read", "write"]), "{view}");
    assert_eq!(view["status"], "connected");
    let (status, still) = ctx.token(&id, true).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the old client and grant still work: {still}"
    );
    assert_ne!(still["access_token"], before["access_token"]);

    // Narrower scopes, approved: the change and the new grant arrive together.
    let (url, status) = reauthorize(json!({"scopes": ["read"]})).await;
    assert!(
        url.contains("scope=read&") || url.ends_with("scope=read"),
        "{url}"
    );
    assert_eq!(status, StatusCode::OK);
    let view = ctx.view(&id).await;
    assert_eq!(view["scopes"], json!(["read"]), "{view}");
    assert_eq!(view["grant"]["refreshed_at"], Value::Null, "a new grant");
}

/// A disconnect waits for a refresh that another replica is running (it holds the lease), so
/// the tokens it revokes at the provider are the ones that refresh stored, not the ones it
/// replaced.
#[tokio::test]
async fn a_disconnect_revokes_what_a_refresh_elsewhere_just_stored() {
    use gatehouse::server::connections::provider_client::TokenResponse;
    use gatehouse::server::secrets::SecretString;

    let idp = provider("opaque").await;
    let ctx = Ctx::new().await;
    let id = ctx.create(custom(&idp.issuer, "Acme")).await;
    let (status, page) = ctx.connect(&id, Some("ops@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let state = &ctx.app.state;
    let key = GrantKey::shared(&id);
    let now = state.now();
    // "Another replica" takes the lease and refreshes at the provider.
    assert!(
        state
            .db
            .try_connection_lease(key, "replica-b", now, now + 60)
            .await
            .unwrap()
    );
    let refreshed: Value = refresh_at_provider(&idp.issuer, &ctx.stored_refresh_token(&id).await)
        .await
        .json()
        .await
        .unwrap();
    let new_access = refreshed["access_token"].as_str().unwrap().to_string();
    // The disconnect starts meanwhile, and waits for the lease.
    let disconnect = tokio::spawn(
        ctx.app
            .client
            .post(ctx.app.url(&format!("/api/v0/connections/{id}/disconnect")))
            .bearer_auth(&ctx.session)
            .send(),
    );
    // Time for it to reach the lease (no expiry is waited for: nothing here expires).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !disconnect.is_finished(),
        "it waits while replica B refreshes"
    );
    {
        let version = state
            .db
            .find_connection_tokens(key)
            .await
            .unwrap()
            .unwrap()
            .version;
        let grant = state.sealed_grant(
            key,
            TokenResponse {
                access_token: SecretString::new(&new_access),
                refresh_token: refreshed["refresh_token"].as_str().map(SecretString::new),
                token_type: "Bearer".into(),
                scope: None,
                expires_in: Some(3600),
            },
            None,
            now,
        );
        // Stored over the version it refreshed, releasing "replica B"'s lease.
        assert!(
            state
                .db
                .store_connection_grant(key, &grant, Some(version), Some("replica-b"), now)
                .await
                .unwrap()
        );
    }
    assert_eq!(disconnect.await.unwrap().unwrap().status(), StatusCode::OK);
    // The tokens that refresh stored were revoked at the provider, and are gone here.
    let answer = introspect_at_provider(&idp.issuer, &new_access).await;
    assert_eq!(answer["active"], false, "{answer}");
    assert!(
        state
            .db
            .find_connection_tokens(key)
            .await
            .unwrap()
            .is_none()
    );
}
