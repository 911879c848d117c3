//! Each person's own upstream account: per-person connections against a real authorization
//! server. One oidc-provider (`--connections`) signs people in to Gatehouse and is the
//! provider the connection authorizes at; each person signs in there as themselves.

use gatehouse::server::auth::AuthMethod;
use gatehouse::server::clock::Clock;
use gatehouse::server::config::RawSettings;
use gatehouse::server::connections::GrantKey;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::connections::{custom, introspect_at_provider, reset_stats, stats};
use crate::gateway::{Upstream, sdk_client, text};
use crate::helpers::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub(crate) const ADA: &str = "ada@example.com";
pub(crate) const BOB: &str = "bob@example.com";
pub(crate) const CAROL: &str = "carol@example.com";

pub(crate) struct Team {
    pub(crate) app: TestApp,
    pub(crate) idp: OidcProvider,
}

/// A person's view of the team's Gatehouse: their session and what they can do with it.
pub(crate) struct Person<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) email: &'static str,
    pub(crate) session: String,
}

impl Team {
    /// `oauth2` mode at the provider, Ada an admin, Bob and Carol members.
    pub(crate) async fn start() -> Team {
        let idp = team_provider().await;
        let app = spawn_app(team_settings(&idp.issuer)).await;
        Team { app, idp }
    }

    pub(crate) fn person(&self, email: &'static str) -> Person<'_> {
        Person::of(&self.app, email)
    }
}

/// The provider people sign in at, and connect their accounts at.
pub(crate) async fn team_provider() -> OidcProvider {
    OidcProvider::start(&["--connections", "--access-token-format", "opaque"]).await
}

/// `oauth2` mode at `issuer`, Ada an admin.
pub(crate) fn team_settings(issuer: &str) -> RawSettings {
    RawSettings {
        auth_admin_users: Some(ADA.into()),
        outbound_allow_private_networks: Some("true".into()),
        connections_refresh_interval: Some("0".into()),
        outbound_timeout: Some("2".into()),
        ..oauth2_settings(issuer)
    }
}

impl<'a> Person<'a> {
    /// Signed in to `app` (a session made with its key, as the sign-in would).
    pub(crate) fn of(app: &'a TestApp, email: &'static str) -> Person<'a> {
        Person {
            app,
            email,
            session: app
                .state
                .sessions
                .issue(email, AuthMethod::Oauth2, vec![], app.clock.now())
                .token,
        }
    }
}

impl Team {
    /// A per-person connection at the team's provider, created by Ada.
    pub(crate) async fn per_person_connection(&self, name: &str) -> String {
        let mut body = custom(&self.idp.issuer, name);
        body["per_person"] = json!(true);
        body["scopes"] = json!(["openid", "offline_access", "read"]);
        let (status, created) = self
            .person(ADA)
            .send(Method::POST, "/api/v0/connections", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["per_person"], true);
        created["id"].as_str().unwrap().to_string()
    }
}

impl Person<'_> {
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        send_json(self.app, &self.session, method, path, body).await
    }

    /// A request to a whole URL (a link, a callback) with their session, as their browser
    /// would send it.
    pub(crate) async fn open(&self, method: Method, url: &str) -> reqwest::Response {
        self.app
            .client
            .request(method, url)
            .bearer_auth(&self.session)
            .send()
            .await
            .unwrap()
    }

    /// Connects their own account: the popup flow, signing in at the provider as themselves.
    pub(crate) async fn connect(&self, id: &str) {
        let (status, page) =
            crate::connections::connect_in_popup(self.app, &self.session, id, Some(self.email))
                .await;
        assert_eq!(status, StatusCode::OK, "{page}");
    }

    /// Disconnects their own account.
    pub(crate) async fn disconnect(&self, id: &str) -> StatusCode {
        self.send(
            Method::POST,
            &format!("/api/v0/connections/{id}/disconnect"),
            None,
        )
        .await
        .0
    }

    /// The worker token API with their session.
    pub(crate) async fn token(&self, id: &str, query: &str) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            &format!("/api/v0/connections/{id}/token{query}"),
            None,
        )
        .await
    }

    pub(crate) async fn listed(&self, id: &str) -> Value {
        let (status, list) = self.send(Method::GET, "/api/v0/connections", None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// Whose account an access token is for, as the provider says.
async fn subject_of(issuer: &str, token: &Value) -> String {
    let answer = introspect_at_provider(issuer, token["access_token"].as_str().unwrap()).await;
    assert_eq!(answer["active"], true, "{answer}");
    answer["sub"].as_str().unwrap().to_string()
}

fn people_listed(view: &Value) -> Vec<String> {
    view["grants"]
        .as_array()
        .map(|g| {
            g.iter()
                .map(|g| g["person"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn each_person_connects_and_uses_their_own_account() {
    let team = Team::start().await;
    let (ada, bob, carol) = (team.person(ADA), team.person(BOB), team.person(CAROL));
    let id = team.per_person_connection("Tracker").await;

    // A member connects their own account; so does the admin.
    bob.connect(&id).await;
    ada.connect(&id).await;

    // Each gets a token of their own account.
    let (status, bobs) = bob.token(&id, "").await;
    assert_eq!(status, StatusCode::OK, "{bobs}");
    assert_eq!(subject_of(&team.idp.issuer, &bobs).await, BOB);
    let (status, adas) = ada.token(&id, "").await;
    assert_eq!(status, StatusCode::OK, "{adas}");
    assert_eq!(subject_of(&team.idp.issuer, &adas).await, ADA);
    assert_ne!(bobs["access_token"], adas["access_token"]);

    // Carol has not connected: told so, and handed nobody else's token.
    let (status, answer) = carol.token(&id, "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("not connected"),
        "{answer}"
    );

    // What each sees: their own status; the admin, everyone's grants; members nothing of
    // the client or the endpoints.
    let seen = bob.listed(&id).await;
    assert_eq!(seen["status"], "connected", "{seen}");
    assert_eq!(people_listed(&seen), vec![BOB.to_string()]);
    assert_eq!(seen["client_id"], Value::Null);
    assert_eq!(seen["token_url"], "");
    let seen = carol.listed(&id).await;
    assert_eq!(seen["status"], "not_connected", "{seen}");
    assert!(people_listed(&seen).is_empty());
    let seen = ada.listed(&id).await;
    assert_eq!(seen["status"], "connected");
    assert_eq!(people_listed(&seen), vec![ADA.to_string(), BOB.to_string()]);
    let (status, grants) = ada
        .send(
            Method::GET,
            &format!("/api/v0/connections/{id}/grants"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{grants}");
    assert_eq!(grants["grants"].as_array().unwrap().len(), 2);
    let text = grants.to_string();
    assert!(!text.contains(bobs["access_token"].as_str().unwrap()));

    // Nobody but an admin names another person, or revokes their grant.
    let (status, _) = bob.token(&id, &format!("?person={}", enc(ADA))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = bob
        .send(
            Method::DELETE,
            &format!("/api/v0/connections/{id}/grants/{}", enc(ADA)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = bob
        .send(
            Method::GET,
            &format!("/api/v0/connections/{id}/grants"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The admin may fetch a named person's token (the worker token API's `person`).
    let (status, named) = ada.token(&id, &format!("?person={}", enc(BOB))).await;
    assert_eq!(status, StatusCode::OK, "{named}");
    assert_eq!(subject_of(&team.idp.issuer, &named).await, BOB);

    // The admin revokes Bob's grant: revoked at the provider, gone here, Ada's untouched.
    let (status, answer) = ada
        .send(
            Method::DELETE,
            &format!("/api/v0/connections/{id}/grants/{}", enc(BOB)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["warning"], Value::Null, "{answer}");
    let revoked =
        introspect_at_provider(&team.idp.issuer, bobs["access_token"].as_str().unwrap()).await;
    assert_eq!(revoked["active"], false, "{revoked}");
    let (status, _) = bob.token(&id, "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, still) = ada.token(&id, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(subject_of(&team.idp.issuer, &still).await, ADA);

    // Bob connects again and disconnects himself.
    bob.connect(&id).await;
    assert_eq!(bob.disconnect(&id).await, StatusCode::OK);
    assert_eq!(bob.listed(&id).await["status"], "not_connected");
    assert_eq!(ada.listed(&id).await["status"], "connected");

    // Deleting the connection revokes every remaining grant at the provider.
    let (status, answer) = ada
        .send(Method::DELETE, &format!("/api/v0/connections/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let revoked =
        introspect_at_provider(&team.idp.issuer, still["access_token"].as_str().unwrap()).await;
    assert_eq!(revoked["active"], false, "{revoked}");
}

#[tokio::test]
async fn who_may_do_what_with_shared_and_per_person_connections() {
    let team = Team::start().await;
    let (ada, bob) = (team.person(ADA), team.person(BOB));
    let per_person = team.per_person_connection("Mine").await;
    let (status, created) = ada
        .send(
            Method::POST,
            "/api/v0/connections",
            Some(custom(&team.idp.issuer, "Shared")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let shared = created["id"].as_str().unwrap().to_string();

    // A member's list has the per-person connection only.
    let (_, list) = bob.send(Method::GET, "/api/v0/connections", None).await;
    let ids: Vec<&str> = list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![per_person.as_str()]);

    // A member may start connecting the per-person one, not the shared one, and may not
    // change the template while re-authorizing.
    let (status, _) = bob
        .send(
            Method::POST,
            &format!("/api/v0/connections/{per_person}/connect"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (path, body) in [
        (format!("/api/v0/connections/{shared}/connect"), None),
        (
            format!("/api/v0/connections/{per_person}/connect"),
            Some(json!({"scopes": ["openid", "write"]})),
        ),
        (format!("/api/v0/connections/{shared}/disconnect"), None),
    ] {
        let (status, answer) = bob.send(Method::POST, &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
    }
    let (status, _) = bob.token(&shared, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Naming a person on a shared connection, or none (as a worker's admin token with no
    // grant of its own would) on a per-person one, is answered plainly.
    let (status, answer) = ada.token(&shared, &format!("?person={}", enc(BOB))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // Client credentials cannot be per person.
    let mut body = custom(&team.idp.issuer, "Machine");
    body["grant_type"] = json!("client_credentials");
    body["per_person"] = json!(true);
    let (status, answer) = ada
        .send(Method::POST, "/api/v0/connections", Some(body))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer.to_string().contains("authorization code"),
        "{answer}"
    );

    // An edit keeps the choice made at creation.
    let mut edit = custom(&team.idp.issuer, "Mine, renamed");
    edit["per_person"] = json!(false);
    let (status, edited) = ada
        .send(
            Method::PUT,
            &format!("/api/v0/connections/{per_person}"),
            Some(edit),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["per_person"], true);

    // A member's API token with connections:token reaches their own grant only.
    bob.connect(&per_person).await;
    let (status, created) = bob
        .send(
            Method::POST,
            "/api/v0/settings/mcp/tokens",
            Some(json!({"name": "worker", "scopes": ["connections:token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let worker = created["token"].as_str().unwrap().to_string();
    let fetch = |id: String, query: &'static str| {
        let (app, worker) = (&team.app, worker.clone());
        async move {
            let response = app
                .client
                .post(app.url(&format!("/api/v0/connections/{id}/token{query}")))
                .bearer_auth(worker)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, token) = fetch(per_person.clone(), "").await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(subject_of(&team.idp.issuer, &token).await, BOB);
    let (status, _) = fetch(per_person.clone(), "?person=ada%40example.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = fetch(shared.clone(), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_persons_grant_refreshes_once_and_fails_alone() {
    let team = Team::start().await;
    let (ada, bob) = (team.person(ADA), team.person(BOB));
    let id = team.per_person_connection("Tracker").await;
    ada.connect(&id).await;
    bob.connect(&id).await;

    // Bob's access token expires; twenty callers at once: one refresh at the provider.
    let (_, before) = bob.token(&id, "").await;
    team.app.clock.advance(3600 + 5);
    reset_stats(&team.idp.issuer).await;
    let answers = futures::future::join_all((0..20).map(|_| bob.token(&id, ""))).await;
    let mut tokens: Vec<String> = answers
        .iter()
        .map(|(status, t)| {
            assert_eq!(*status, StatusCode::OK, "{t}");
            t["access_token"].as_str().unwrap().to_string()
        })
        .collect();
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every caller got the one new token");
    assert_ne!(tokens[0], before["access_token"].as_str().unwrap());
    let s = stats(&team.idp.issuer).await;
    assert_eq!(s["grants"]["refresh_token"], 1, "{s}");

    // Bob's grant dies at the provider (revoked there); only Bob's grant says so.
    let state = &team.app.state;
    let key = GrantKey::person(&id, BOB);
    let stored = state.db.find_connection_tokens(key).await.unwrap().unwrap();
    let refresh = state
        .connections
        .open_grant(
            key,
            "refresh_token",
            stored.refresh_token.as_deref().unwrap(),
        )
        .unwrap();
    let revoked = client()
        .post(format!("{}/token/revocation", team.idp.issuer))
        .form(&[
            ("token", refresh.expose()),
            ("client_id", crate::connections::CLIENT_ID),
            ("client_secret", crate::connections::CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    let (status, answer) = bob.token(&id, "?force=true").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let seen = bob.listed(&id).await;
    assert_eq!(seen["status"], "needs_reauth", "{seen}");
    assert_eq!(ada.listed(&id).await["status"], "connected");
    let (status, _) = ada.token(&id, "?force=true").await;
    assert_eq!(status, StatusCode::OK);
    let admin_view = ada.listed(&id).await;
    let bobs = admin_view["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["person"] == BOB)
        .unwrap();
    assert_eq!(bobs["status"], "needs_reauth", "{admin_view}");
    assert!(bobs["last_error"].as_str().is_some());

    // Connecting again heals it.
    bob.connect(&id).await;
    assert_eq!(bob.listed(&id).await["status"], "connected");

    // A grant sealed for one person does not open as another's.
    let stored = state.db.find_connection_tokens(key).await.unwrap().unwrap();
    assert!(
        state
            .connections
            .open_grant(
                GrantKey::person(&id, ADA),
                "access_token",
                &stored.access_token
            )
            .is_err()
    );
}

#[tokio::test]
async fn the_callback_stores_the_grant_for_whoever_started_it() {
    let team = Team::start().await;
    let (bob, carol) = (team.person(BOB), team.person(CAROL));
    let id = team.per_person_connection("Tracker").await;
    // Bob starts; the answer arrives in Carol's browser: nothing is stored for anyone.
    let (status, started) = bob
        .send(
            Method::POST,
            &format!("/api/v0/connections/{id}/connect"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut browser = Browser::default();
    let back = walk_provider(
        &mut browser,
        started["authorization_url"].as_str().unwrap(),
        &team.app.url("/connections/oauth/callback"),
        Some(BOB),
    )
    .await;
    let page = carol.open(Method::GET, &back).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let grants = team
        .app
        .state
        .db
        .list_person_grants(Some(&id), None)
        .await
        .unwrap();
    assert!(grants.is_empty());
}

/// An MCP token of the person's own, with protection on.
async fn mcp_token(person: &Person<'_>) -> String {
    let (status, created) = person
        .send(
            Method::POST,
            "/api/v0/settings/mcp/tokens",
            Some(json!({"name": "laptop", "scopes": ["mcp"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["token"].as_str().unwrap().to_string()
}

fn tool_names(out: &Value) -> Vec<String> {
    out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// What the upstream's `whoami` said, through the gateway.
fn upstream_subject(result: &Value) -> String {
    let who: Value = serde_json::from_str(&text(result)).unwrap_or_else(|_| panic!("{result}"));
    assert_eq!(who["authenticated"], true, "{who}");
    who["subject"].as_str().unwrap().to_string()
}

/// The issue's "done when": two people call the same upstream through one Gatehouse, each as
/// themselves, and a third who has not connected is told how, by the official TS SDK client.
#[tokio::test]
async fn each_caller_reaches_the_upstream_as_themselves() {
    let team = Team::start().await;
    let (ada, bob, carol) = (team.person(ADA), team.person(BOB), team.person(CAROL));
    let id = team.per_person_connection("Tracker").await;
    let resource = format!("{}/api", team.idp.issuer);
    let py = Upstream::resource_server(&team.idp.issuer, &resource).await;
    let (status, created) = ada
        .send(
            Method::POST,
            "/api/v0/mcp-servers",
            Some(json!({"name": "tracker", "url": py.url, "auth": "connection", "connection_id": id, "timeout_secs": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let server = created["id"].as_str().unwrap().to_string();
    let (status, _) = ada
        .send(
            Method::PUT,
            "/api/v0/settings/mcp",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    ada.connect(&id).await;
    bob.connect(&id).await;

    // Ada and Bob each reach the upstream as themselves.
    let calls = json!([["tracker__whoami", {}], ["whoami", {}]]);
    for person in [&ada, &bob] {
        let out = sdk_client(&team.app, &mcp_token(person).await, calls.clone()).await;
        let names = tool_names(&out);
        assert!(names.contains(&"tracker__echo".to_string()), "{names:?}");
        assert!(
            !names.contains(&"tracker__connect".to_string()),
            "{names:?}"
        );
        let results = out["results"].as_array().unwrap();
        assert_eq!(upstream_subject(&results[0]), person.email);
        assert_eq!(
            results[1]["structuredContent"]["person"], person.email,
            "{}",
            results[1]
        );
    }

    // Carol has not connected: one tool tells her how, and a call says the same.
    let carols = mcp_token(&carol).await;
    let out = sdk_client(
        &team.app,
        &carols,
        json!([["tracker__connect", {}], ["tracker__whoami", {}]]),
    )
    .await;
    let names = tool_names(&out);
    assert!(names.contains(&"tracker__connect".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n == "tracker__echo"), "{names:?}");
    let results = out["results"].as_array().unwrap();
    for result in results {
        assert_eq!(result["isError"], true, "{result}");
        let said = text(result);
        assert!(
            said.contains(&team.app.url("/connections/link/"))
                && said.contains("connect your own account of Tracker"),
            "{said}"
        );
    }
    let (_, seen) = carol
        .send(Method::GET, &format!("/api/v0/mcp-servers/{server}"), None)
        .await;
    assert_eq!(seen["personal"]["status"], "not_connected", "{seen}");
    assert_eq!(
        seen["connection_id"],
        Value::Null,
        "members see no connection"
    );
    // Her card shows her own tools (none yet), not those of whoever listed last.
    let card_tools = |seen: &Value| -> Vec<String> {
        seen["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!card_tools(&seen).contains(&"echo".to_string()), "{seen}");

    // She connects; her next session lists the upstream's tools and calls it as her.
    carol.connect(&id).await;
    let out = sdk_client(&team.app, &carols, json!([["tracker__whoami", {}]])).await;
    assert!(tool_names(&out).contains(&"tracker__echo".to_string()));
    assert_eq!(upstream_subject(&out["results"][0]), CAROL);
    let (_, seen) = carol
        .send(Method::GET, &format!("/api/v0/mcp-servers/{server}"), None)
        .await;
    assert_eq!(seen["personal"]["status"], "connected", "{seen}");
    assert!(card_tools(&seen).contains(&"echo".to_string()), "{seen}");

    // Bob's grant revoked by the admin: his list is the connect tool again, Ada's is whole.
    let (status, _) = ada
        .send(
            Method::DELETE,
            &format!("/api/v0/connections/{id}/grants/{}", enc(BOB)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let out = sdk_client(&team.app, &mcp_token(&bob).await, json!([])).await;
    assert!(tool_names(&out).contains(&"tracker__connect".to_string()));
    let out = sdk_client(
        &team.app,
        &mcp_token(&ada).await,
        json!([["tracker__whoami", {}]]),
    )
    .await;
    assert_eq!(upstream_subject(&out["results"][0]), ADA);

    // A person without a grant is not the server's failure: its breaker stays closed.
    let (_, servers) = ada.send(Method::GET, "/api/v0/mcp-servers", None).await;
    assert_eq!(servers["servers"][0]["status"], "healthy", "{servers}");
}

impl Person<'_> {
    /// Opens a "connect your account" link signed in as this person, presses its button, signs
    /// in at the provider as themselves, and lands on the callback: what a browser does.
    pub(crate) async fn complete_link(&self, link: &str) {
        self.complete_link_at(link, None).await
    }

    /// The same, every request to Gatehouse sent to `base` (one replica) instead of the
    /// public address.
    pub(crate) async fn complete_link_at(&self, link: &str, base: Option<&str>) {
        let at = |url: &str| match base {
            Some(base) => url.replacen(&self.app.address, base, 1),
            None => url.to_string(),
        };
        let page = self.open(Method::GET, &at(link)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("<form method=\"post\""), "{html}");
        let started = self.open(Method::POST, &at(link)).await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER);
        let mut browser = Browser::default();
        let back = walk_provider(
            &mut browser,
            &location(&started),
            &self.app.url("/connections/oauth/callback"),
            Some(self.email),
        )
        .await;
        let done = self.open(Method::GET, &at(&back)).await;
        assert_eq!(done.status(), StatusCode::OK);
    }
}

/// A team with a per-person connection and the Python upstream behind it as `tracker`, MCP
/// protection on.
async fn team_with_tracker() -> (Team, String, Upstream) {
    let team = Team::start().await;
    let id = team.per_person_connection("Tracker").await;
    let resource = format!("{}/api", team.idp.issuer);
    let py = Upstream::resource_server(&team.idp.issuer, &resource).await;
    let ada = team.person(ADA);
    let (status, created) = ada
        .send(
            Method::POST,
            "/api/v0/mcp-servers",
            Some(json!({"name": "tracker", "url": py.url, "auth": "connection", "connection_id": id, "timeout_secs": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _) = ada
        .send(
            Method::PUT,
            "/api/v0/settings/mcp",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    (team, id, py)
}

/// The link `tracker__connect` answers a client without URL elicitation with.
pub(crate) async fn connect_link(mcp: &RawMcp<'_>, id: i64) -> String {
    let answer = mcp
        .call(
            id,
            "tools/call",
            json!({"name": "tracker__connect", "arguments": {}}),
        )
        .await;
    link_in(answer["result"]["content"][0]["text"].as_str().unwrap())
}

/// The link in a tool error's text.
pub(crate) fn link_in(text: &str) -> String {
    let start = text
        .find("http")
        .unwrap_or_else(|| panic!("no link in {text}"));
    text[start..].split_whitespace().next().unwrap().to_string()
}

async fn states_in_flight(team: &Team) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM connection_states")
        .fetch_one(team.app.state.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_connect_link_is_for_its_person_alone() {
    let (team, id, _py) = team_with_tracker().await;
    let (bob, carol) = (team.person(BOB), team.person(CAROL));

    // A client without URL elicitation gets the link in the tool error.
    let token = mcp_token(&carol).await;
    let mut mcp = RawMcp::with_token(&team.app, &token);
    mcp.initialize(LATEST_SESSION_VERSION).await;
    let answer = mcp
        .call(
            1,
            "tools/call",
            json!({"name": "tracker__whoami", "arguments": {}}),
        )
        .await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let said = answer["result"]["content"][0]["text"].as_str().unwrap();
    let link = link_in(said);
    assert!(
        link.starts_with(&team.app.url("/connections/link/")),
        "{said}"
    );
    assert!(
        !link.contains(CAROL) && !link.contains("carol"),
        "no one is named in {link}"
    );

    // Someone else signed in: told so, nobody named, nothing started.
    for method in [Method::GET, Method::POST] {
        let response = bob.open(method.clone(), &link).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method}");
        let html = response.text().await.unwrap();
        assert!(html.contains("made for another Gatehouse user"), "{html}");
        assert!(html.contains(BOB) && !html.contains(CAROL), "{html}");
    }
    assert_eq!(states_in_flight(&team).await, 0);
    // Nobody signed in: the login page, to come back here.
    let response = team.app.client.get(&link).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&response).starts_with("/login?next="),
        "{}",
        location(&response)
    );
    // Altered: refused.
    let altered = format!("{}x", &link[..link.len() - 1]);
    let response = carol.open(Method::GET, &altered).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Carol herself connects through it, and the call works.
    carol.complete_link(&link).await;
    assert_eq!(carol.listed(&id).await["status"], "connected");
    let answer = mcp
        .call(
            2,
            "tools/call",
            json!({"name": "tracker__whoami", "arguments": {}}),
        )
        .await;
    assert_eq!(upstream_subject(&answer["result"]), CAROL);

    // A link lasts 15 minutes.
    assert_eq!(carol.disconnect(&id).await, StatusCode::OK);
    let link = connect_link(&mcp, 3).await;
    team.app.clock.advance(15 * 60 + 1);
    let response = carol.open(Method::GET, &link).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("expired"));
}

/// The next JSON line a client prints.
async fn next_json(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> Value {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the client answers")
            .unwrap()
            .expect("the client prints a result");
        if line.starts_with('{') {
            return serde_json::from_str(&line).unwrap();
        }
    }
}

/// The official SDK clients, declaring URL elicitation, in both eras: each is sent the link,
/// its person completes it, and the call it retries succeeds; the 2025-era session heard
/// `elicitation/complete` and `tools/list_changed`.
#[tokio::test]
async fn the_sdk_clients_are_sent_the_link_in_both_eras() {
    let (team, id, _py) = team_with_tracker().await;
    let python = format!("{ROOT}/.venv/bin/python");
    let py_client = format!("{ROOT}/tests/clients/py_connect_client.py");
    let ts_client = format!("{ROOT}/tests/clients/ts_connect_client.mjs");
    let runs: [(&str, &str, [&str; 4], bool); 4] = [
        (
            "python, legacy",
            CAROL,
            [&python, &py_client, "--mode", "legacy"],
            true,
        ),
        (
            "python, 2026",
            BOB,
            [&python, &py_client, "--mode", "2026-07-28"],
            false,
        ),
        (
            "typescript, legacy",
            CAROL,
            ["node", &ts_client, "--era", "legacy"],
            true,
        ),
        (
            "typescript, 2026",
            BOB,
            ["node", &ts_client, "--era", "modern"],
            false,
        ),
    ];
    for (label, who, [program, script, era_flag, era], legacy) in runs {
        let person = team.person(who);
        let token = mcp_token(&person).await;
        let mut child = tokio::process::Command::new(program)
            .arg(script)
            .args([&team.app.url("/mcp"), "--token", &token, era_flag, era])
            .args(["--tool", "tracker__whoami"])
            .current_dir(ROOT)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("scripts/setup.sh installs the SDKs");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let shown = next_json(&mut lines).await;
        let link = shown["link"].as_str().unwrap().to_string();
        assert!(
            link.starts_with(&team.app.url("/connections/link/")),
            "{label}: {shown}"
        );
        person.complete_link(&link).await;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"back\n").await.unwrap();
        let out = next_json(&mut lines).await;
        assert_eq!(out["isError"], false, "{label}: {out}");
        let who_said: Value = serde_json::from_str(out["texts"][0].as_str().unwrap()).unwrap();
        assert_eq!(who_said["subject"], who, "{label}: {out}");
        assert_eq!(out["links"][0]["mode"], "url", "{label}: {out}");
        if legacy {
            assert_eq!(out["protocolVersion"], LATEST_SESSION_VERSION, "{label}");
            let heard = out["notifications"].to_string();
            assert!(
                heard.contains("notifications/elicitation/complete")
                    && heard.contains("notifications/tools/list_changed"),
                "{label}: {out}"
            );
        } else {
            assert_eq!(out["protocolVersion"], "2026-07-28", "{label}");
        }
        assert!(child.wait().await.unwrap().success(), "{label}");
        // The next run starts without a grant again.
        assert_eq!(person.disconnect(&id).await, StatusCode::OK, "{label}");
    }
}
