//! The authorization server for MCP clients, end to end over HTTP: discovery, registration,
//! authorization with login and consent, tokens, refresh rotation, revocation, and every
//! refusal the issue names.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::server::config::RawSettings;
use gatehouse::server::oauth_as::access_token::AccessTokenKeys;
use gatehouse::server::secrets::MasterKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const REDIRECT: &str = "http://127.0.0.1:33418/callback";

pub(crate) fn oauth_settings() -> RawSettings {
    RawSettings {
        mcp_oauth_enabled: Some("true".into()),
        ..basic_settings()
    }
}

/// An app with the authorization server, protection on, and a signed-in browser.
async fn setup() -> (TestApp, Browser) {
    let app = spawn_app(oauth_settings()).await;
    let browser = protected_and_signed_in(&app).await;
    (app, browser)
}

/// Turns protection on and signs a browser in.
pub(crate) async fn protected_and_signed_in(app: &TestApp) -> Browser {
    let session = app.token().await;
    app.client
        .put(app.url("/api/v0/settings/mcp"))
        .bearer_auth(&session)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    let mut browser = Browser::default();
    browser.cookies.insert("gatehouse_session".into(), session);
    browser
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

fn rand_bytes() -> [u8; 32] {
    gatehouse::server::secrets::random_bytes::<32>()
}

async fn register(app: &TestApp, metadata: Value) -> reqwest::Response {
    app.client
        .post(app.url("/mcp/oauth/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn register_public(app: &TestApp) -> String {
    let response = register(
        app,
        json!({"client_name": "Test Client", "redirect_uris": [REDIRECT], "application_type": "native",
               "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn authorize_url(
    app: &TestApp,
    client_id: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&app.url("/mcp/oauth/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "xyz")
            .append_pair("scope", "mcp")
            .append_pair("resource", &app.url("/mcp"));
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\"").expect("a csrf field");
    let tag_start = html[..start].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let value = tag.split("value=\"").nth(1).unwrap();
    value[..value.find('"').unwrap()].to_string()
}

/// Follows the authorization request in the browser, answering the consent page with
/// `decision` when it comes; returns where the browser is sent back to.
async fn authorize(app: &TestApp, browser: &mut Browser, url: &str, decision: &str) -> String {
    let response = browser.get(url).await;
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "authorize: {}",
        response.text().await.unwrap()
    );
    let location = location(&response);
    if !location.starts_with("/mcp/oauth/consent") {
        return location;
    }
    let page = browser.get(&app.url(&location)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let request = location.split("request=").nth(1).unwrap().to_string();
    let decided = browser
        .post_form(
            &app.url("/mcp/oauth/consent"),
            format!(
                "request={request}&csrf={}&decision={decision}",
                enc(&csrf_of(&html))
            ),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::FOUND);
    location_of(&decided)
}

fn location_of(response: &reqwest::Response) -> String {
    location(response)
}

async fn token_request(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/mcp/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Authorizes (consenting) and exchanges the code; returns the token response.
pub(crate) async fn sign_in(app: &TestApp, browser: &mut Browser, client_id: &str) -> Value {
    let p = pkce();
    let back = authorize(
        app,
        browser,
        &authorize_url(app, client_id, &p.challenge, &[]),
        "allow",
    )
    .await;
    let q = query_of(&back);
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], app.address, "RFC 9207 iss is the issuer");
    let response = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", &p.verifier),
            ("resource", &app.url("/mcp")),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn whoami_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}))
        .send()
        .await
        .unwrap()
}

fn oauth_error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn discovery_metadata() {
    let app = spawn_app(oauth_settings()).await;
    let asm: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(asm["issuer"], app.address);
    assert_eq!(
        asm["authorization_endpoint"],
        app.url("/mcp/oauth/authorize")
    );
    assert_eq!(asm["token_endpoint"], app.url("/mcp/oauth/token"));
    assert_eq!(asm["registration_endpoint"], app.url("/mcp/oauth/register"));
    assert_eq!(asm["revocation_endpoint"], app.url("/mcp/oauth/revoke"));
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(asm["response_types_supported"], json!(["code"]));
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    assert_eq!(asm["authorization_response_iss_parameter_supported"], true);
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let prm: Value = app.get(path).await.json().await.unwrap();
        assert_eq!(prm["resource"], app.url("/mcp"));
        assert_eq!(prm["authorization_servers"], json!([app.address]));
        assert_eq!(prm["scopes_supported"], json!(["mcp"]));
    }
    // The issuer comes from PUBLIC_URL, not from the request; a Host that is not ours is
    // refused outright (DNS rebinding).
    let spoofed: Value = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .header(
            "host",
            format!("localhost:{}", app.address.rsplit(':').next().unwrap()),
        )
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spoofed["issuer"], app.address);
    let rebound = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);

    let off = spawn_app(RawSettings::default()).await;
    assert_eq!(
        off.get("/.well-known/oauth-authorization-server")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unauthorized_mcp_points_at_the_metadata() {
    let (app, _) = setup().await;
    let response = app
        .client
        .post(app.url("/mcp"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}\"",
            app.url("/.well-known/oauth-protected-resource/mcp")
        )),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp\""), "{challenge}");
    // Every OAuth client starts with this 401 and then reuses the connection: the body was
    // read, so the connection stays open.
    assert!(response.headers().get("connection").is_none());

    // A refusal that does not read the body says the connection closes, so that no client
    // reuses a connection hyper is about to close.
    let refused = app
        .client
        .post(app.url("/api/v0/settings/mcp/tokens"))
        .json(&json!({"name": "x", "scopes": ["mcp"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["connection"], "close");
}

#[tokio::test]
async fn registration_rules() {
    let app = spawn_app(oauth_settings()).await;
    // Public native client.
    let response = register(
        &app,
        json!({"redirect_uris": [REDIRECT], "application_type": "native", "client_name": "cli"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["token_endpoint_auth_method"], "none");
    assert!(first.get("client_secret").is_none());
    // The same metadata from the same place: the same registration.
    let again: Value = register(
        &app,
        json!({"redirect_uris": [REDIRECT], "application_type": "native", "client_name": "cli"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["client_id"], first["client_id"]);
    // A web client gets a secret.
    let web: Value = register(
        &app,
        json!({"redirect_uris": ["https://app.example.com/cb"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(web["token_endpoint_auth_method"], "client_secret_basic");
    assert!(web["client_secret"].as_str().unwrap().len() >= 43);

    for (metadata, error) in [
        (
            json!({"redirect_uris": ["javascript:alert(document.cookie)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["data:text/html,hi"], "application_type": "native"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://attacker.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example.com/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "client_id": "chosen"}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let response = register(&app, metadata.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{metadata}");
        assert_eq!(
            oauth_error(&response.json().await.unwrap()),
            error,
            "{metadata}"
        );
    }
    let huge = register(
        &app,
        json!({"redirect_uris": [REDIRECT], "client_name": "x".repeat(70_000)}),
    )
    .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let form = app
        .client
        .post(app.url("/mcp/oauth/register"))
        .form(&[("redirect_uris", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::BAD_REQUEST);

    // Flooding is refused.
    let mut last = StatusCode::CREATED;
    for i in 0..25 {
        last = register(&app, json!({"redirect_uris": [format!("http://127.0.0.1/cb{i}")], "application_type": "native"})).await.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_whole_flow_and_refresh_rotation() {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;

    // Not signed in: through the login page and back.
    let p = pkce();
    let url = authorize_url(&app, &client_id, &p.challenge, &[]);
    let mut anonymous = Browser::default();
    let to_login = anonymous.get(&url).await;
    let login = location(&to_login);
    assert!(
        login.starts_with("/login?next=%2Fmcp%2Foauth%2Fauthorize%3F"),
        "{login}"
    );

    let tokens = sign_in(&app, &mut browser, &client_id).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "mcp");
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // The access token is a JWT for /mcp, about the user, from this client.
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], app.url("/mcp"));
    assert_eq!(claims["sub"], USERNAME);
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["scope"], "mcp");
    assert!(claims["jti"].is_string());

    let me: Value = whoami_with(&app, access).await.json().await.unwrap();
    let me = &me["result"]["structuredContent"];
    assert_eq!(me["authenticated_by"], "oauth");
    assert_eq!(me["identity"], USERNAME);
    assert_eq!(me["client"]["name"], "Test Client");

    // Consent is remembered: the second authorization skips the page.
    let p2 = pkce();
    let back = authorize(
        &app,
        &mut browser,
        &authorize_url(&app, &client_id, &p2.challenge, &[]),
        "never asked",
    )
    .await;
    assert!(query_of(&back).contains_key("code"), "{back}");

    // Refresh rotates.
    let rotate = |token: String| {
        let app = &app;
        let client_id = client_id.clone();
        async move {
            token_request(
                app,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                ],
            )
            .await
        }
    };
    let second = rotate(refresh.to_string()).await;
    assert_eq!(second.status(), StatusCode::OK);
    let second: Value = second.json().await.unwrap();
    let refresh2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh);
    assert_eq!(
        whoami_with(&app, second["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    // A concurrent retry with the old token, seconds later, is answered.
    app.clock.advance(5);
    assert_eq!(rotate(refresh.to_string()).await.status(), StatusCode::OK);

    // The same old token a minute later is a replay: the whole family is revoked.
    app.clock.advance(60);
    let replay = rotate(refresh.to_string()).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&replay.json().await.unwrap()), "invalid_grant");
    let after = rotate(refresh2).await;
    assert_eq!(oauth_error(&after.json().await.unwrap()), "invalid_grant");
    let refused = whoami_with(&app, second["access_token"].as_str().unwrap()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

/// Refreshes with `token`; the status and, when it worked, the new refresh token.
pub(crate) async fn refresh_with(
    app: &TestApp,
    client_id: &str,
    token: &str,
) -> (StatusCode, String) {
    let response = token_request(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ],
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let next = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, next)
}

pub(crate) async fn live_refresh_tokens(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM oauth_refresh_tokens WHERE rotated_at IS NULL")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap()
}

/// A signed-in public client: the app, its id and its first refresh token.
async fn signed_in_with_refresh_token() -> (TestApp, String, String) {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;
    let tokens = sign_in(&app, &mut browser, &client_id).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    (app, client_id, refresh)
}

#[tokio::test]
async fn a_retry_inside_the_grace_window_never_forks_the_session() {
    let (app, client_id, rt1) = signed_in_with_refresh_token().await;

    let (status, rt2) = refresh_with(&app, &client_id, &rt1).await;
    assert_eq!(status, StatusCode::OK);
    // rt1 again 5 s later (a retry after a lost answer, or a thief): answered with the
    // successor already issued, so the family still has one live refresh token.
    app.clock.advance(5);
    let (status, again) = refresh_with(&app, &client_id, &rt1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, rt2, "the retry gets the same successor");
    assert_eq!(live_refresh_tokens(&app).await, 1);

    // Once rt2 is used, rt1 can only be a copy: the whole session ends.
    let (status, rt3) = refresh_with(&app, &client_id, &rt2).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refresh_with(&app, &client_id, &rt1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = refresh_with(&app, &client_id, &rt3).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the session is revoked");
    assert_eq!(live_refresh_tokens(&app).await, 0);
}

#[tokio::test]
async fn racing_refreshes_with_one_token_all_get_its_one_successor() {
    let (app, client_id, rt1) = signed_in_with_refresh_token().await;
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (http, url) = (app.client.clone(), app.url("/mcp/oauth/token"));
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt1.clone()),
            ("client_id", client_id.clone()),
        ];
        racing.spawn(async move {
            let response = http.post(url).form(&form).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["refresh_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        });
    }
    let answers = racing.join_all().await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{answers:?}"
    );
    let successor = &answers[0].1;
    assert!(answers.iter().all(|(_, t)| t == successor), "{answers:?}");
    assert_eq!(live_refresh_tokens(&app).await, 1);
    let (status, _) = refresh_with(&app, &client_id, successor).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_retry_after_the_successor_was_used_is_a_replay() {
    let (app, client_id, rt1) = signed_in_with_refresh_token().await;
    let (_, rt2) = refresh_with(&app, &client_id, &rt1).await;
    let (status, rt3) = refresh_with(&app, &client_id, &rt2).await;
    assert_eq!(status, StatusCode::OK);
    // The client has moved on to rt3: rt1, even inside the window, can only be a copy.
    app.clock.advance(2);
    let (status, _) = refresh_with(&app, &client_id, &rt1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = refresh_with(&app, &client_id, &rt3).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the session is revoked");
}

#[tokio::test]
async fn cancel_and_redirect_rules() {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;
    let p = pkce();

    // Cancel goes back with access_denied, state and iss.
    let back = authorize(
        &app,
        &mut browser,
        &authorize_url(&app, &client_id, &p.challenge, &[]),
        "deny",
    )
    .await;
    let q = query_of(&back);
    assert!(back.starts_with(REDIRECT));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], app.address);

    // An unregistered redirect is a page, never a redirect.
    let mut url = url::Url::parse(&authorize_url(&app, &client_id, &p.challenge, &[])).unwrap();
    let tampered: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            if k == "redirect_uri" {
                (k.into_owned(), "https://attacker.example/steal".into())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(tampered);
    let response = browser.get(url.as_str()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Redirect address not registered")
    );

    // Loopback on another port is the same redirect (RFC 8252).
    let other_port = authorize_url(&app, &client_id, &p.challenge, &[]).replace("33418", "50000");
    let back = authorize(&app, &mut browser, &other_port, "allow").await;
    assert!(
        back.starts_with("http://127.0.0.1:50000/callback?code="),
        "{back}"
    );

    // Unknown client: a page that explains, not a redirect.
    let unknown = browser
        .get(&authorize_url(&app, "no-such-client", &p.challenge, &[]))
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(unknown.headers().get("location").is_none());
    let text = unknown.text().await.unwrap();
    assert!(
        text.contains("Unknown MCP client") && text.contains("mcp-remote"),
        "{text}"
    );
}

#[tokio::test]
async fn pkce_resource_and_request_errors_go_back_to_the_client() {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;
    let p = pkce();
    let without = authorize_url(&app, &client_id, &p.challenge, &[]);
    let strip = |url: &str, name: &str| {
        let mut u = url::Url::parse(url).unwrap();
        let kept: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| k != name)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        u.query_pairs_mut().clear().extend_pairs(kept);
        u.to_string()
    };
    let plain = strip(&strip(&without, "code_challenge_method"), "code_challenge")
        + "&code_challenge=abc&code_challenge_method=plain";
    for (url, error) in [
        (strip(&without, "code_challenge"), "invalid_request"),
        (plain, "invalid_request"),
        (
            strip(&without, "response_type") + "&response_type=token",
            "unsupported_response_type",
        ),
        (
            strip(&without, "resource") + "&resource=https%3A%2F%2Fother.example%2Fmcp",
            "invalid_target",
        ),
        (strip(&without, "scope") + "&scope=admin", "invalid_scope"),
    ] {
        let response = browser.get(&url).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{url}");
        let q = query_of(&location(&response));
        assert_eq!(q["error"], error, "{url}");
        assert_eq!(q["state"], "xyz");
    }
    // A parameter twice.
    let twice = browser.get(&format!("{without}&state=again")).await;
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);

    // Wrong verifier.
    let back = authorize(&app, &mut browser, &without, "allow").await;
    let code = query_of(&back)["code"].clone();
    let wrong = pkce();
    let response = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &wrong.verifier),
        ],
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(oauth_error(&body), "invalid_grant");
    assert!(body["error_description"].as_str().unwrap().contains("PKCE"));
}

#[tokio::test]
async fn codes_are_single_use_and_short_lived() {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;
    let p = pkce();
    let back = authorize(
        &app,
        &mut browser,
        &authorize_url(&app, &client_id, &p.challenge, &[]),
        "allow",
    )
    .await;
    let code = query_of(&back)["code"].clone();
    let exchange = |code: String, verifier: String| {
        let (app, client_id) = (&app, client_id.clone());
        async move {
            token_request(
                app,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("client_id", &client_id),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let first: Value = exchange(code.clone(), p.verifier.clone())
        .await
        .json()
        .await
        .unwrap();
    let access = first["access_token"].as_str().unwrap().to_string();
    assert_eq!(whoami_with(&app, &access).await.status(), StatusCode::OK);

    // Replay: refused, and what the first exchange issued is revoked.
    let replay: Value = exchange(code, p.verifier).await.json().await.unwrap();
    assert_eq!(oauth_error(&replay), "invalid_grant");
    assert_eq!(
        whoami_with(&app, &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refresh: Value = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(oauth_error(&refresh), "invalid_grant");

    // Expired: codes live 60 seconds.
    let p = pkce();
    let back = authorize(
        &app,
        &mut browser,
        &authorize_url(&app, &client_id, &p.challenge, &[]),
        "allow",
    )
    .await;
    app.clock.advance(61);
    let late: Value = exchange(query_of(&back)["code"].clone(), p.verifier)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(oauth_error(&late), "invalid_grant");
    assert!(
        late["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn access_tokens_are_checked_for_audience_expiry_and_client() {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;
    let tokens = sign_in(&app, &mut browser, &client_id).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let master = MasterKey::from_bytes(TEST_KEY.as_bytes().to_vec());
    let family = {
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(access.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        claims["fam"].as_str().unwrap().to_string()
    };
    use gatehouse::server::clock::Clock;

    // Signed with the right key, for another audience.
    let other = AccessTokenKeys::new(&master, &app.address, "https://elsewhere.example/mcp");
    let (wrong_aud, _) = other.issue(USERNAME, &client_id, "mcp", &family, app.clock.now());
    assert_eq!(
        whoami_with(&app, &wrong_aud).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A session JWT of the app is not an access token.
    assert_eq!(
        whoami_with(&app, &app.token().await).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A token without the mcp scope.
    let ours = AccessTokenKeys::new(&master, &app.address, &app.url("/mcp"));
    let (no_scope, _) = ours.issue(USERNAME, &client_id, "other", &family, app.clock.now());
    let response = whoami_with(&app, &no_scope).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    // Expired after an hour.
    app.clock.advance(3600);
    let expired = whoami_with(&app, &access).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(
        expired.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("expired")
    );

    // A deleted client: its tokens stop, and the token endpoint says invalid_client.
    let fresh: Value = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let fresh_access = fresh["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        whoami_with(&app, &fresh_access).await.status(),
        StatusCode::OK
    );
    let session = app.token().await;
    let deleted = app
        .client
        .delete(app.url(&format!("/api/v0/oauth/clients/{client_id}")))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        whoami_with(&app, &fresh_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let gone = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(oauth_error(&gone.json().await.unwrap()), "invalid_client");
}

#[tokio::test]
async fn token_endpoint_refusals_are_oauth_errors() {
    let (app, _) = setup().await;
    let client_id = register_public(&app).await;
    let json_body = app
        .client
        .post(app.url("/mcp/oauth/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body.headers()["cache-control"], "no-store");
    assert_eq!(
        oauth_error(&json_body.json().await.unwrap()),
        "invalid_request"
    );
    for (form, status, error) in [
        (
            vec![("grant_type", "authorization_code")],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", client_id.as_str()),
            ],
            400,
            "unsupported_grant_type",
        ),
        (
            vec![("client_id", client_id.as_str())],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", client_id.as_str()),
                ("code_verifier", "x"),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", client_id.as_str()),
                ("code", "nope"),
                ("code_verifier", "x"),
                ("redirect_uri", REDIRECT),
            ],
            400,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("refresh_token", "gatehouse_rt_forged"),
            ],
            400,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", "unknown-client"),
                ("refresh_token", "x"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("client_secret", "made-up"),
                ("refresh_token", "x"),
            ],
            401,
            "invalid_client",
        ),
    ] {
        let response = token_request(&app, &form).await;
        assert_eq!(response.status().as_u16(), status, "{form:?}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(
            oauth_error(&response.json().await.unwrap()),
            error,
            "{form:?}"
        );
    }
    let garbage = app
        .client
        .post(app.url("/mcp/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'&', b'=', b'%'])
        .send()
        .await
        .unwrap();
    assert!(garbage.status().is_client_error());
}

#[tokio::test]
async fn confidential_clients_authenticate() {
    let (app, mut browser) = setup().await;
    let registered: Value = register(
        &app,
        json!({"redirect_uris": [REDIRECT], "client_name": "Web app"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_string();
    let secret = registered["client_secret"].as_str().unwrap().to_string();
    let p = pkce();
    let back = authorize(
        &app,
        &mut browser,
        &authorize_url(&app, &client_id, &p.challenge, &[]),
        "allow",
    )
    .await;
    let code = query_of(&back)["code"].clone();
    // Without the secret: invalid_client.
    let no_secret = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    assert_eq!(no_secret.status(), StatusCode::UNAUTHORIZED);
    // With it (Basic): but that code is spent now; a new one.
    let p = pkce();
    let back = authorize(
        &app,
        &mut browser,
        &authorize_url(&app, &client_id, &p.challenge, &[]),
        "allow",
    )
    .await;
    let response = app
        .client
        .post(app.url("/mcp/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &query_of(&back)["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &p.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let wrong = app
        .client
        .post(app.url("/mcp/oauth/token"))
        .basic_auth(&client_id, Some("wrong"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
}

#[tokio::test]
async fn revocation() {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;
    let tokens = sign_in(&app, &mut browser, &client_id).await;
    let revoke = |token: String, client: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/mcp/oauth/revoke"))
                .form(&[("token", token.as_str()), ("client_id", client.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    // Unknown tokens: 200, nothing learned.
    assert_eq!(
        revoke("gatehouse_rt_nothing".into(), client_id.clone())
            .await
            .status(),
        StatusCode::OK
    );
    // Another client cannot revoke this client's tokens.
    let other = register(&app, json!({"redirect_uris": ["http://127.0.0.1:1/x"], "application_type": "native", "client_name": "other"})).await.json::<Value>().await.unwrap();
    revoke(
        tokens["refresh_token"].as_str().unwrap().into(),
        other["client_id"].as_str().unwrap().into(),
    )
    .await;
    assert_eq!(
        whoami_with(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // The refresh token: the session ends, its access token with it.
    assert_eq!(
        revoke(
            tokens["refresh_token"].as_str().unwrap().into(),
            client_id.clone()
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        whoami_with(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // An access token alone.
    let again = sign_in(&app, &mut browser, &client_id).await;
    revoke(
        again["access_token"].as_str().unwrap().into(),
        client_id.clone(),
    )
    .await;
    assert_eq!(
        whoami_with(&app, again["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let refreshed = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", again["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(
        refreshed.status(),
        StatusCode::OK,
        "revoking an access token leaves the session"
    );
}

#[tokio::test]
async fn sessions_and_consents_are_managed() {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;
    let tokens = sign_in(&app, &mut browser, &client_id).await;
    let session = app.token().await;
    let get = |path: &'static str| {
        let (app, session) = (&app, session.clone());
        async move {
            app.client
                .get(app.url(path))
                .bearer_auth(&session)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let sessions = get("/api/v0/oauth/sessions").await;
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["client_name"], "Test Client");
    assert_eq!(sessions[0]["user"], USERNAME);
    let clients = get("/api/v0/oauth/clients").await;
    assert_eq!(clients[0]["consents"], 1);
    assert_eq!(clients[0]["sessions"], 1);

    // Revoke consent: sessions end, the next authorization asks again.
    let revoked = app
        .client
        .post(app.url(&format!("/api/v0/oauth/clients/{client_id}/revoke-consent")))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let refresh: Value = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(oauth_error(&refresh), "invalid_grant");
    let p = pkce();
    let response = browser
        .get(&authorize_url(&app, &client_id, &p.challenge, &[]))
        .await;
    assert!(
        location(&response).starts_with("/mcp/oauth/consent"),
        "consent is asked again"
    );
    assert_eq!(get("/api/v0/oauth/sessions").await, json!([]));

    // Revoke one session.
    let tokens = sign_in(&app, &mut browser, &client_id).await;
    let id = get("/api/v0/oauth/sessions").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app
        .client
        .delete(app.url(&format!("/api/v0/oauth/sessions/{id}")))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        whoami_with(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn consent_needs_the_right_user_and_csrf() {
    let (app, mut browser) = setup().await;
    let client_id = register_public(&app).await;
    let p = pkce();
    let response = browser
        .get(&authorize_url(&app, &client_id, &p.challenge, &[]))
        .await;
    let consent = location(&response);
    let request = consent.split("request=").nth(1).unwrap().to_string();
    // A forged CSRF token.
    let forged = browser
        .post_form(
            &app.url("/mcp/oauth/consent"),
            format!("request={request}&csrf=forged&decision=allow"),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(forged.headers().get("location").is_none());
    // A cross-site post.
    let cross = app
        .client
        .post(app.url("/mcp/oauth/consent"))
        .header("cookie", browser.cookie_header())
        .header("origin", "https://evil.example")
        .form(&[
            ("request", request.as_str()),
            ("csrf", "x"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // The page says who the client is and warns about loopback and new clients.
    let html = browser.get(&app.url(&consent)).await.text().await.unwrap();
    assert!(html.contains("Test Client"));
    assert!(html.contains("127.0.0.1:33418"));
    assert!(html.contains("warn-loopback") && html.contains("warn-new"));
    // The page cannot be framed.
    let framed = browser.get(&app.url(&consent)).await;
    assert!(
        framed.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // Expired requests are refused.
    app.clock.advance(601);
    let csrf = csrf_of(&html);
    let late = browser
        .post_form(
            &app.url("/mcp/oauth/consent"),
            format!("request={request}&csrf={}&decision=allow", enc(&csrf)),
        )
        .await;
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
}

/// A client metadata document server (plain http on loopback) that counts its hits.
async fn document_server(
    doc: impl Fn(&str) -> Value + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/client.json");
    let (counter, served_url) = (hits.clone(), url.clone());
    let doc = std::sync::Arc::new(doc);
    let router = axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || {
            let (counter, doc, url) = (counter.clone(), doc.clone(), served_url.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                ([("cache-control", "max-age=600")], axum::Json(doc(&url)))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, hits)
}

#[tokio::test]
async fn client_metadata_documents_are_fetched_with_guards_and_cached() {
    let good = |url: &str| json!({"client_id": url, "client_name": "Doc client", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
    let (url, hits) = document_server(good).await;

    // Private addresses are refused unless allowed.
    let guarded = spawn_app(RawSettings {
        outbound_allow_http: Some("true".into()),
        ..oauth_settings()
    })
    .await;
    let mut browser = Browser::default();
    browser
        .cookies
        .insert("gatehouse_session".into(), guarded.token().await);
    let p = pkce();
    let refused = browser
        .get(&authorize_url(&guarded, &url, &p.challenge, &[]))
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("OUTBOUND_ALLOW_PRIVATE_NETWORKS")
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "not even fetched"
    );

    // Allowed: fetched once, then served from the cache for its max-age.
    let app = spawn_app(RawSettings {
        outbound_allow_http: Some("true".into()),
        outbound_allow_private_networks: Some("true".into()),
        ..oauth_settings()
    })
    .await;
    let mut browser = Browser::default();
    browser
        .cookies
        .insert("gatehouse_session".into(), app.token().await);
    for _ in 0..2 {
        let p = pkce();
        let back = authorize(
            &app,
            &mut browser,
            &authorize_url(&app, &url, &p.challenge, &[]),
            "allow",
        )
        .await;
        assert!(query_of(&back).contains_key("code"), "{back}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    app.clock.advance(601);
    let p = pkce();
    authorize(
        &app,
        &mut browser,
        &authorize_url(&app, &url, &p.challenge, &[]),
        "allow",
    )
    .await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "fetched again after max-age"
    );

    // A document that names another client_id, or asks for a secret, is refused.
    for bad in [
        (|_: &str| json!({"client_id": "https://elsewhere.example/client.json", "redirect_uris": [REDIRECT]}))
            as fn(&str) -> Value,
        |url: &str| json!({"client_id": url, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}),
        |url: &str| json!({"client_id": url, "redirect_uris": ["javascript:alert(1)"]}),
    ] {
        let (url, _) = document_server(bad).await;
        let p = pkce();
        let response = browser
            .get(&authorize_url(&app, &url, &p.challenge, &[]))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(response.headers().get("location").is_none());
    }
}

#[tokio::test]
async fn idle_and_never_used_clients_are_removed_with_their_consents() {
    use gatehouse::server::clock::Clock;
    use gatehouse::server::oauth_as::admin::remove_idle_clients;
    let (app, mut browser) = setup().await;
    let used = register_public(&app).await;
    // Other metadata: a registration of its own, never used.
    let unused = register(
        &app,
        json!({"client_name": "Never Used", "redirect_uris": [REDIRECT], "application_type": "native",
               "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}),
    )
    .await
    .json::<Value>()
    .await
    .unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    sign_in(&app, &mut browser, &used).await;
    // A session of the moment each time: the clock moves past a session's day.
    let clients = || async {
        let session = app.token().await;
        let listed: Value = app
            .client
            .get(app.url("/api/v0/oauth/clients"))
            .bearer_auth(&session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed
            .as_array()
            .unwrap_or_else(|| panic!("{listed}"))
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    // Within the day, nothing goes.
    app.clock.advance(3_600);
    assert_eq!(
        remove_idle_clients(&app.state, app.clock.now(), 30)
            .await
            .unwrap(),
        0
    );
    // After it, the registration nobody used goes; the used one stays.
    app.clock.advance(86_400);
    assert_eq!(
        remove_idle_clients(&app.state, app.clock.now(), 30)
            .await
            .unwrap(),
        1
    );
    assert_eq!(clients().await, std::slice::from_ref(&used));
    // Thirty days unused (its session long expired): it goes too, with its consent.
    app.clock.advance(31 * 86_400);
    assert_eq!(
        remove_idle_clients(&app.state, app.clock.now(), 30)
            .await
            .unwrap(),
        1
    );
    assert!(clients().await.is_empty());
    let consents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM oauth_consents")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(consents, 0);

    let trail: Value = app
        .client
        .get(app.url("/api/v0/audit?action=mcp_client.deleted"))
        .bearer_auth(app.token().await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = trail["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{trail}");
    assert_eq!(events[1]["target"], unused.as_str());
    assert_eq!(events[1]["actor_kind"], "system");
    assert_eq!(
        events[1]["detail"]["reason"],
        "never used within a day of registering"
    );
    assert_eq!(events[0]["detail"]["reason"], "unused for 30 days");
}
