//! Admins and members: who is which, and every admin operation refused to a member, through
//! the REST API and through the server functions the pages call.

use gatehouse::api::connections::*;
use gatehouse::api::mcp_servers::*;
use gatehouse::api::mcp_settings::*;
use gatehouse::api::oauth::*;
use gatehouse::server::auth::AuthMethod;
use gatehouse::server::clock::Clock;
use gatehouse::server::config::RawSettings;
use gatehouse::server::db::oauth::{CodeRow, FamilyRow};
use leptos::server_fn::ServerFn;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const ADMIN: &str = "ada@example.com";
const MEMBER: &str = "bob@example.com";

struct People {
    app: TestApp,
    admin: String,
    member: String,
    idp: OidcProvider,
}

/// `oauth2` mode with Ada named an admin: everyone else the provider lets in is a member.
async fn people() -> People {
    let idp = OidcProvider::start(&[]).await;
    let app = spawn_app(RawSettings {
        auth_admin_users: Some(ADMIN.into()),
        mcp_oauth_enabled: Some("true".into()),
        ..oauth2_settings(&idp.issuer)
    })
    .await;
    let session = |who: &str| {
        app.state
            .sessions
            .issue(who, AuthMethod::Oauth2, vec![], app.clock.now())
            .token
    };
    People {
        admin: session(ADMIN),
        member: session(MEMBER),
        app,
        idp,
    }
}

async fn call(
    app: &TestApp,
    session: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(session);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// A server function called the way its page calls it: a form, or JSON for those that take it.
async fn server_fn(
    app: &TestApp,
    session: &str,
    path: &str,
    body: ServerFnBody,
) -> (StatusCode, String) {
    let request = app.client.post(app.url(path)).bearer_auth(session);
    let request = match body {
        ServerFnBody::Form(pairs) => request.form(&pairs),
        ServerFnBody::Json(value) => request.json(&value),
    };
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

enum ServerFnBody {
    Form(Vec<(&'static str, &'static str)>),
    Json(Value),
}

use ServerFnBody::{Form, Json};

#[tokio::test]
async fn the_session_says_who_is_an_admin() {
    let p = people().await;
    for (session, role) in [(&p.admin, "admin"), (&p.member, "member")] {
        let info: Value = p
            .app
            .get_with_bearer("/auth/info", session)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(info["role"], role);
    }
    // The member's pages render (no admin-only call fails them), and say "member".
    for page in [
        "/",
        "/mcp-servers",
        "/settings/authentication",
        "/settings/sessions",
    ] {
        let response = p.app.get_with_bearer(page, &p.member).await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        let html = response.text().await.unwrap();
        assert!(html.contains("data-testid=\"role\""), "{page}");
        assert!(
            !html.contains("data-testid=\"add-server\""),
            "{page}: no admin actions"
        );
        assert!(
            !html.contains("protection-toggle"),
            "{page}: no admin actions"
        );
    }
    let html = p
        .app
        .get_with_bearer("/mcp-servers", &p.admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-testid=\"add-server\""));
}

#[tokio::test]
async fn a_member_gets_403_from_every_admin_route() {
    let p = people().await;
    let x = "/api/v0/connections/x";
    let admin_routes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PUT,
            "/api/v0/settings/mcp".into(),
            Some(json!({"enabled": true})),
        ),
        (Method::GET, "/api/v0/oauth/clients".into(), None),
        (Method::GET, "/api/v0/audit".into(), None),
        (Method::GET, "/api/v0/audit/export".into(), None),
        (Method::DELETE, "/api/v0/oauth/clients/x".into(), None),
        (
            Method::POST,
            "/api/v0/oauth/clients/x/revoke-consent".into(),
            None,
        ),
        (Method::POST, "/api/v0/connections".into(), Some(json!({}))),
        (Method::GET, x.into(), None),
        (Method::PUT, x.into(), Some(json!({}))),
        (Method::DELETE, x.into(), None),
        (Method::POST, format!("{x}/introspect"), None),
        (Method::POST, format!("{x}/registration/sync"), None),
        (Method::POST, format!("{x}/registration/push"), None),
        (Method::GET, format!("{x}/grants"), None),
        (Method::POST, "/api/v0/mcp-servers".into(), Some(json!({}))),
        (Method::PUT, "/api/v0/mcp-servers/x".into(), Some(json!({}))),
        (Method::DELETE, "/api/v0/mcp-servers/x".into(), None),
        (Method::POST, "/api/v0/mcp-servers/x/test".into(), None),
        (Method::GET, "/api/v0/mcp-catalog".into(), None),
        (Method::GET, "/api/v0/secrets".into(), None),
        (
            Method::PUT,
            "/api/v0/secrets/X".into(),
            Some(json!({"value": "v"})),
        ),
        (Method::DELETE, "/api/v0/secrets/X".into(), None),
    ];
    for (method, path, body) in &admin_routes {
        let (status, text) = call(&p.app, &p.member, method.clone(), path, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {text}");
        assert!(text.contains("Only an admin"), "{method} {path}: {text}");
        // The admin gets past the role check (to a 404, 400 or the answer itself).
        let (status, text) = call(&p.app, &p.admin, method.clone(), path, body.clone()).await;
        assert_ne!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {path} as admin: {text}"
        );
    }

    // What a member may read: the servers, their own tokens and sessions, "my connections".
    for path in [
        "/api/v0/mcp-servers",
        "/api/v0/settings/mcp",
        "/api/v0/settings/mcp/tokens",
        "/api/v0/oauth/sessions",
        "/api/v0/connections",
    ] {
        let (status, text) = call(&p.app, &p.member, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
    }
    // What a member may do to their own grant of a per-person connection (the shared ones
    // refused: tests/it/people.rs): past the role check to the unknown connection.
    for (method, path) in [
        (Method::POST, format!("{x}/connect")),
        (Method::POST, format!("{x}/disconnect")),
        (Method::POST, format!("{x}/token")),
        (Method::DELETE, format!("{x}/grants/{}", enc(MEMBER))),
    ] {
        let (status, text) = call(&p.app, &p.member, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {text}");
    }

    let admin_fns: Vec<(&str, ServerFnBody)> = vec![
        (SetMcpProtection::PATH, Form(vec![("require_auth", "true")])),
        (ListOauthClients::PATH, Form(vec![])),
        (RevokeOauthConsent::PATH, Form(vec![("client_id", "x")])),
        (DeleteOauthClient::PATH, Form(vec![("client_id", "x")])),
        (
            CreateConnection::PATH,
            Json(json!(CreateConnection {
                input: Default::default()
            })),
        ),
        (
            UpdateConnection::PATH,
            Json(json!(UpdateConnection {
                id: "x".into(),
                input: Default::default()
            })),
        ),
        (DeleteConnection::PATH, Form(vec![("id", "x")])),
        (
            ReauthorizeConnection::PATH,
            Json(json!(ReauthorizeConnection {
                id: "x".into(),
                changes: Default::default()
            })),
        ),
        (IntrospectConnection::PATH, Form(vec![("id", "x")])),
        (SyncConnectionRegistration::PATH, Form(vec![("id", "x")])),
        (PushConnectionRegistration::PATH, Form(vec![("id", "x")])),
        (
            CreateMcpServer::PATH,
            Json(json!(CreateMcpServer {
                input: Default::default()
            })),
        ),
        (
            UpdateMcpServer::PATH,
            Json(json!(UpdateMcpServer {
                id: "x".into(),
                input: Default::default()
            })),
        ),
        (DeleteMcpServer::PATH, Form(vec![("id", "x")])),
        (TestMcpServer::PATH, Form(vec![("id", "x")])),
        (PutSecret::PATH, Json(json!({"name": "X", "value": "v"}))),
        (DeleteSecret::PATH, Form(vec![("name", "X")])),
        (
            gatehouse::api::audit::ListAuditEvents::PATH,
            Json(json!({"filter": {}})),
        ),
    ];
    let member_fns = [
        GetMcpSettings::PATH,
        CreateApiToken::PATH,
        DeleteApiToken::PATH,
        GetConsentRequest::PATH,
        ListOauthSessions::PATH,
        RevokeOauthSession::PATH,
        ListConnections::PATH,
        ListBuiltinProviders::PATH,
        // Their own grant of a per-person connection (tests/it/people.rs).
        ConnectConnection::PATH,
        DisconnectConnection::PATH,
        ListMcpServers::PATH,
        gatehouse::api::instance::GetInstanceInfo::PATH,
        gatehouse::api::session::GetSession::PATH,
        gatehouse::api::session::GetLoginOptions::PATH,
    ];
    // Every server function is in one list or the other: a new one fails here until it is.
    for (path, _) in leptos::server_fn::axum::server_fn_paths() {
        assert!(
            admin_fns.iter().any(|(p, _)| *p == path) || member_fns.contains(&path),
            "{path} is neither an admin nor a member server function in this test"
        );
    }
    for (path, body) in admin_fns {
        let body_again = match &body {
            Form(pairs) => Form(pairs.clone()),
            Json(value) => Json(value.clone()),
        };
        let (status, text) = server_fn(&p.app, &p.member, path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
        assert!(text.contains("Only an admin"), "{path}: {text}");
        let (status, text) = server_fn(&p.app, &p.admin, path, body_again).await;
        assert_ne!(status, StatusCode::FORBIDDEN, "{path} as admin: {text}");
    }
}

#[tokio::test]
async fn members_have_their_own_api_tokens_only() {
    let p = people().await;
    let create = |session: &str, scopes: Value| {
        let app = &p.app;
        let session = session.to_string();
        async move {
            call(
                app,
                &session,
                Method::POST,
                "/api/v0/settings/mcp/tokens",
                Some(json!({"name": "laptop", "scopes": scopes})),
            )
            .await
        }
    };
    // connections:token reaches a member's own per-person grants only (tests/it/people.rs).
    let (status, text) = create(&p.member, json!(["mcp", "connections:token"])).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let bobs: Value = serde_json::from_str(&text).unwrap();
    let (status, text) = create(&p.admin, json!(["connections:token"])).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let adas: Value = serde_json::from_str(&text).unwrap();

    // Each sees what they may: Bob his own, Ada everyone's.
    let list = |session: &str| {
        let app = &p.app;
        let session = session.to_string();
        async move {
            let (_, text) = call(
                app,
                &session,
                Method::GET,
                "/api/v0/settings/mcp/tokens",
                None,
            )
            .await;
            let tokens: Vec<Value> = serde_json::from_str(&text).unwrap();
            tokens
                .into_iter()
                .map(|t| t["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(&p.member).await, [bobs["id"].as_str().unwrap()]);
    assert_eq!(list(&p.admin).await.len(), 2);

    // Bob cannot delete Ada's token (it is not there for him); Ada can delete Bob's.
    let ada_token = format!(
        "/api/v0/settings/mcp/tokens/{}",
        adas["id"].as_str().unwrap()
    );
    let (status, _) = call(&p.app, &p.member, Method::DELETE, &ada_token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bob_token = format!(
        "/api/v0/settings/mcp/tokens/{}",
        bobs["id"].as_str().unwrap()
    );
    let (status, _) = call(&p.app, &p.admin, Method::DELETE, &bob_token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Ada's token fetches connection tokens as her, an admin: past the role check to the
    // unknown connection.
    let (status, text) = call(
        &p.app,
        adas["token"].as_str().unwrap(),
        Method::POST,
        "/api/v0/connections/x/token",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
}

/// Admin groups read from the provider's claim at sign-in, from userinfo and (without it)
/// from the id_token.
#[tokio::test]
async fn an_admin_group_at_the_provider_makes_an_admin() {
    for args in [&[][..], &["--no-userinfo"][..]] {
        let idp = OidcProvider::start(args).await;
        let app = spawn_app(RawSettings {
            auth_oauth2_admin_groups: Some("ops".into()),
            ..oauth2_settings(&idp.issuer)
        })
        .await;
        for (email, role) in [
            ("carol+ops@example.com", "admin"),
            ("dave+dev@example.com", "member"),
            ("erin@example.com", "member"),
        ] {
            let mut browser = Browser::default();
            let callback = walk_to_callback(&app, &mut browser, Some(email)).await;
            let response = browser.get(&callback).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email}");
            let info: Value = browser
                .get(&app.url("/auth/info"))
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(info["user"], email, "{args:?}");
            assert_eq!(info["role"], role, "{email} {args:?}");
        }
    }
}

#[tokio::test]
async fn members_see_and_end_only_their_own_mcp_sessions() {
    let p = people().await;
    let client = crate::oauth_as::register_public(&p.app).await;
    let db = &p.app.state.db;
    let now = p.app.clock.now();
    for (i, who) in [ADMIN, MEMBER, MEMBER].iter().enumerate() {
        let family = FamilyRow {
            id: format!("family-{i}"),
            client_id: client.clone(),
            subject: who.to_string(),
            scope: "mcp".into(),
            resource: p.app.url("/mcp"),
            created_at: now,
            expires_at: now + 3600,
            last_used_at: None,
            revoked_at: None,
        };
        let code = CodeRow {
            id: format!("code-{i}"),
            family_id: family.id.clone(),
            client_id: client.clone(),
            subject: who.to_string(),
            redirect_uri: "http://127.0.0.1/callback".into(),
            scope: "mcp".into(),
            resource: family.resource.clone(),
            code_challenge: "unused".into(),
            created_at: now,
            expires_at: now + 60,
            used_at: None,
        };
        db.insert_code(&code).await.unwrap();
        assert!(
            db.redeem_code(&code.id, now, &family, &format!("refresh-{i}"))
                .await
                .unwrap()
        );
    }
    let users = |text: String| {
        let sessions: Vec<Value> = serde_json::from_str(&text).unwrap();
        sessions
            .iter()
            .map(|s| s["user"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (_, text) = call(
        &p.app,
        &p.member,
        Method::GET,
        "/api/v0/oauth/sessions",
        None,
    )
    .await;
    assert_eq!(users(text), [MEMBER, MEMBER]);
    let (_, text) = call(
        &p.app,
        &p.admin,
        Method::GET,
        "/api/v0/oauth/sessions",
        None,
    )
    .await;
    assert_eq!(users(text).len(), 3);

    // Another's session is not there for a member; their own they may end.
    for (session, family, expected) in [
        (&p.member, "family-0", StatusCode::NOT_FOUND),
        (&p.member, "family-1", StatusCode::NO_CONTENT),
        (&p.admin, "family-2", StatusCode::NO_CONTENT),
    ] {
        let path = format!("/api/v0/oauth/sessions/{family}");
        let (status, _) = call(&p.app, session, Method::DELETE, &path, None).await;
        assert_eq!(status, expected, "{family}");
    }
}

/// A session from before the instance changed its login mode, or of someone since taken off
/// the allowed users, is no session; their API tokens stop too.
#[tokio::test]
async fn sessions_and_tokens_end_with_the_mode_or_the_permission() {
    let app = spawn_app(basic_settings()).await;
    let now = app.clock.now();
    let foreign = app
        .state
        .sessions
        .issue("ada@example.com", AuthMethod::Oauth2, vec![], now)
        .token;
    assert_eq!(
        app.get_with_bearer("/api/v0/settings/mcp", &foreign)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let mut p = people().await;
    let token = create_token_with(
        &p.app,
        &p.member,
        json!({"name": "laptop", "scopes": ["mcp"]}),
    )
    .await;
    assert_eq!(
        mcp_initialize(&p.app.address, Some(&token)).await.status(),
        StatusCode::OK
    );
    // MCP clients signed in through the authorization server, by each of them.
    let mut access = Vec::new();
    for session in [&p.member, &p.admin] {
        let mut browser = Browser::default();
        browser
            .cookies
            .insert("gatehouse_session".into(), session.clone());
        let client = crate::oauth_as::register_public(&p.app).await;
        let tokens = crate::oauth_as::sign_in(&p.app, &mut browser, &client).await;
        access.push(tokens["access_token"].as_str().unwrap().to_string());
    }
    let database_url = p.app.database_url.clone();
    let public_url = p.app.address.clone();
    p.app.stop().await;
    let narrowed = spawn_app(RawSettings {
        database_url: Some(database_url),
        public_url: Some(public_url),
        auth_oauth2_allowed_users: Some(ADMIN.into()),
        mcp_oauth_enabled: Some("true".into()),
        ..oauth2_settings(&p.idp.issuer)
    })
    .await;
    // The member's MCP client is refused at once; the admin's goes on.
    for (token, expected) in access
        .iter()
        .zip([StatusCode::UNAUTHORIZED, StatusCode::OK])
    {
        assert_eq!(
            mcp_initialize(&narrowed.address, Some(token))
                .await
                .status(),
            expected
        );
    }
    let session = narrowed
        .state
        .sessions
        .issue(MEMBER, AuthMethod::Oauth2, vec![], narrowed.clock.now())
        .token;
    assert_eq!(
        narrowed
            .get_with_bearer("/api/v0/settings/mcp", &session)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mcp_initialize(&narrowed.address, Some(&token))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

/// With no admin list in `oauth2` mode everyone allowed in is an admin, and Settings says so.
#[tokio::test]
async fn everyone_an_admin_is_a_warning() {
    let idp = OidcProvider::start(&[]).await;
    let app = spawn_app(oauth2_settings(&idp.issuer)).await;
    let session = app
        .state
        .sessions
        .issue(
            "anyone@example.com",
            AuthMethod::Oauth2,
            vec![],
            app.clock.now(),
        )
        .token;
    let info: Value = app
        .get_with_bearer("/auth/info", &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["role"], "admin");
    let page = app
        .get_with_bearer("/settings/authentication", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("everyone-admin-warning"), "{page}");
}
