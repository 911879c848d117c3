//! The authorization endpoint and the consent decision, as functions of typed requests
//! returning a typed `AuthorizeOutcome` (the adapter in `http.rs` renders it).
//!
//! `GET /mcp/oauth/authorize` checks the client and its redirect URI first: until both are
//! trusted, problems are shown as a page, never sent to the redirect URI. Then PKCE, the
//! resource and the scope (errors now go back to the client, with `state` and `iss`); then
//! the user, through Gatehouse's own login; then consent, asked on the consent page the first
//! time (or when more scope is wanted) and remembered.

use crate::server::audit::{self, Event};
use std::collections::HashMap;

use url::Url;

use super::clients::{ClientLookup, grant_types, redirect_matches, redirect_uris, resolve_client};
use super::error::{OAuthCode, OAuthError};
use super::{
    CODE_TTL_SECS, OAuthServer, PENDING_TTL_SECS, grant_scope, is_valid_challenge, scope_covers,
};
use crate::server::auth::Identity;
use crate::server::clock::UnixTime;
use crate::server::db::oauth::{CodeRow, PendingRow};
use crate::server::db::{Db, DbError};
use crate::server::secrets::{random_id, random_token, sha256_hex};

/// An authorization request as it arrived.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest<'a> {
    /// The raw query string (each parameter at most once).
    pub query: Option<&'a str>,
    /// The caller prefers JSON to a page: a client probing before it opens a browser.
    pub wants_json: bool,
    /// Who is signed in to Gatehouse in this browser.
    pub user: UserCheck,
}

/// The browser's Gatehouse session, as the adapter found it.
#[derive(Debug, Clone)]
pub enum UserCheck {
    SignedIn(Identity),
    SignedOut,
    /// The session could not be checked (the database did not answer).
    Unknown,
}

/// What the authorization endpoint (or the consent decision) answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// The request cannot be trusted to send the browser back: a page that explains.
    Page(ErrorPage),
    /// For a client's JSON probe.
    ClientError(OAuthError),
    /// Back to the client with a code or an error (`state` and `iss` added).
    ToClient(ClientRedirect),
    /// Sign in to Gatehouse first, then come back to `next`.
    SignIn { next: String },
    /// Ask the user on the consent page.
    Consent { request: String },
}

/// The error pages of the authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPage {
    BadRequest(String),
    UnknownClient(String),
    BadClientDocument {
        client_id: String,
        why: String,
    },
    RedirectMismatch {
        client_name: String,
        presented: String,
        registered: Vec<String>,
    },
    /// A consent decision for a request that is gone, answered, or someone else's.
    Expired,
}

/// The browser goes back to the client: `redirect_uri` with `params`, the client's `state`,
/// and `iss` (RFC 9207) so the client knows which server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRedirect {
    pub redirect_uri: String,
    pub params: Vec<(String, String)>,
    pub state: Option<String>,
}

impl ClientRedirect {
    fn code(redirect_uri: &str, code: &str, state: Option<&str>) -> Self {
        ClientRedirect {
            redirect_uri: redirect_uri.to_string(),
            params: vec![("code".into(), code.to_string())],
            state: state.map(str::to_string),
        }
    }

    fn error(redirect_uri: &str, code: OAuthCode, description: &str, state: Option<&str>) -> Self {
        ClientRedirect {
            redirect_uri: redirect_uri.to_string(),
            params: vec![
                ("error".into(), code.as_str().to_string()),
                ("error_description".into(), description.to_string()),
            ],
            state: state.map(str::to_string),
        }
    }

    /// The URL to send the browser to; `None` when the redirect URI is no URL.
    pub fn location(&self, issuer: &str) -> Option<String> {
        let mut url = Url::parse(&self.redirect_uri).ok()?;
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in &self.params {
                query.append_pair(k, v);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        Some(url.into())
    }
}

/// What an approved authorization becomes: a single-use code, valid 60 seconds.
pub struct Approved<'a> {
    pub client_id: &'a str,
    pub subject: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub resource: &'a str,
    pub code_challenge: &'a str,
}

pub async fn issue_code(
    db: &Db,
    approved: &Approved<'_>,
    now: UnixTime,
) -> Result<String, DbError> {
    let code = random_token();
    db.insert_code(&CodeRow {
        id: sha256_hex(&code),
        family_id: random_id(),
        client_id: approved.client_id.to_string(),
        subject: approved.subject.to_string(),
        redirect_uri: approved.redirect_uri.to_string(),
        scope: approved.scope.to_string(),
        resource: approved.resource.to_string(),
        code_challenge: approved.code_challenge.to_string(),
        created_at: now,
        expires_at: now + CODE_TTL_SECS,
        used_at: None,
    })
    .await?;
    Ok(code)
}

/// The query of the authorization request. Each parameter at most once (RFC 6749 §3.1).
fn parse_query(raw: Option<&str>) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("The parameter {k:?} appears more than once."));
        }
    }
    Ok(params)
}

/// `GET /mcp/oauth/authorize`. The client and its redirect URI are checked first: until both
/// are trusted, problems are a page, never a redirect.
pub async fn authorize(
    oauth: &OAuthServer,
    db: &Db,
    request: AuthorizeRequest<'_>,
    now: UnixTime,
) -> Result<AuthorizeOutcome, DbError> {
    use AuthorizeOutcome::{Page, ToClient};
    let params = match parse_query(request.query) {
        Ok(p) => p,
        Err(why) => return Ok(Page(ErrorPage::BadRequest(why))),
    };
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // 1. The client and where to send the browser back. Until both check out, errors are a
    //    page here: the redirect URI cannot be trusted yet.
    let Some(client_id) = get("client_id") else {
        return Ok(Page(ErrorPage::BadRequest(
            "The request does not say which client it is from (client_id is missing).".into(),
        )));
    };
    let client = match resolve_client(oauth, db, client_id, now).await {
        Ok(client) => client,
        // Clients probing before they open a browser (mcp-remote) ask for JSON: the error
        // code tells them to register again rather than show a dead link.
        Err(ClientLookup::Unknown) if request.wants_json => {
            return Ok(AuthorizeOutcome::ClientError(OAuthError::invalid_client(
                "Unknown client: it is not registered here (or was deleted). Register again.",
            )));
        }
        Err(ClientLookup::Unknown) => {
            return Ok(Page(ErrorPage::UnknownClient(client_id.to_string())));
        }
        Err(ClientLookup::BadDocument(why)) => {
            return Ok(Page(ErrorPage::BadClientDocument {
                client_id: client_id.to_string(),
                why,
            }));
        }
    };
    let registered = redirect_uris(&client);
    let client_name = client
        .client_name
        .clone()
        .unwrap_or_else(|| client.id.clone());
    let redirect_uri = match get("redirect_uri") {
        Some(uri) => uri.to_string(),
        // OAuth 2.1 lets a client with a single registered URI leave it out.
        None if registered.len() == 1 => registered[0].clone(),
        None => {
            return Ok(Page(ErrorPage::BadRequest(
                "The request does not say where to send the result (redirect_uri is missing)."
                    .into(),
            )));
        }
    };
    if !redirect_matches(&registered, &redirect_uri) {
        return Ok(Page(ErrorPage::RedirectMismatch {
            client_name,
            presented: redirect_uri,
            registered,
        }));
    }

    // 2. The rest of the request; errors go back to the client.
    let client_state = get("state");
    let fail = |code: OAuthCode, why: &str| {
        Ok(ToClient(ClientRedirect::error(
            &redirect_uri,
            code,
            why,
            client_state,
        )))
    };
    if get("response_type") != Some("code") {
        return fail(
            OAuthCode::UnsupportedResponseType,
            "Only response_type=code is supported.",
        );
    }
    let Some(challenge) = get("code_challenge") else {
        return fail(
            OAuthCode::InvalidRequest,
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return fail(
            OAuthCode::InvalidRequest,
            "Only the S256 code_challenge_method is supported (plain is not).",
        );
    }
    if !is_valid_challenge(challenge) {
        return fail(
            OAuthCode::InvalidRequest,
            "code_challenge is not a base64url SHA-256 value (43 characters).",
        );
    }
    let resource = match get("resource") {
        Some(r) if oauth.is_our_resource(r) => oauth.resource.clone(),
        Some(_) => {
            return fail(
                OAuthCode::InvalidTarget,
                &format!("This server issues tokens only for {}.", oauth.resource),
            );
        }
        None => oauth.resource.clone(),
    };
    let scope = match grant_scope(get("scope")) {
        Ok(scope) => scope,
        Err(why) => return fail(OAuthCode::InvalidScope, &why),
    };
    if !grant_types(&client)
        .iter()
        .any(|g| g == "authorization_code")
    {
        return fail(
            OAuthCode::UnauthorizedClient,
            "This client is not registered for the authorization code grant.",
        );
    }

    // 3. The user: through Gatehouse's login, then back here.
    let identity: Identity = match request.user {
        UserCheck::Unknown => {
            return fail(
                OAuthCode::TemporarilyUnavailable,
                "The server could not check your session; try again.",
            );
        }
        UserCheck::SignedIn(identity) => identity,
        UserCheck::SignedOut => {
            return Ok(AuthorizeOutcome::SignIn {
                next: format!("/mcp/oauth/authorize?{}", request.query.unwrap_or_default()),
            });
        }
    };
    if client.last_used_at.is_none_or(|at| now - at >= 60) {
        db.touch_oauth_client(&client.id, now).await?;
    }

    // 4. Consent, unless given before for at least this scope.
    let approved = Approved {
        client_id: &client.id,
        subject: &identity.subject,
        redirect_uri: &redirect_uri,
        scope: &scope,
        resource: &resource,
        code_challenge: challenge,
    };
    let consented = db.find_consent(&client.id, &identity.subject).await?;
    if consented
        .as_deref()
        .is_some_and(|granted| scope_covers(granted, &scope))
    {
        let code = issue_code(db, &approved, now).await?;
        return Ok(ToClient(ClientRedirect::code(
            &redirect_uri,
            &code,
            client_state,
        )));
    }
    let pending = PendingRow {
        id: random_id(),
        client_id: client.id.clone(),
        subject: identity.subject.clone(),
        redirect_uri: redirect_uri.clone(),
        scope,
        resource,
        state: client_state.map(str::to_string),
        code_challenge: challenge.to_string(),
        created_at: now,
        expires_at: now + PENDING_TTL_SECS,
    };
    db.insert_pending(&pending).await?;
    Ok(AuthorizeOutcome::Consent {
        request: pending.id,
    })
}

/// The consent page's form: which request, its CSRF token, and the answer.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ConsentForm {
    pub request: String,
    pub csrf: String,
    pub decision: String,
}

/// `POST /mcp/oauth/consent`: the signed-in user's answer. The CSRF token binds it to this
/// request and this user.
pub async fn decide(
    oauth: &OAuthServer,
    db: &Db,
    identity: &Identity,
    form: &ConsentForm,
    now: UnixTime,
) -> Result<AuthorizeOutcome, DbError> {
    let expired = Ok(AuthorizeOutcome::Page(ErrorPage::Expired));
    let valid = match db.find_pending(&form.request).await? {
        Some(p) => {
            p.subject == identity.subject
                && p.expires_at > now
                && oauth.check_consent_csrf(&p.id, &identity.subject, &form.csrf)
        }
        None => false,
    };
    if !valid {
        return expired;
    }
    let Some(pending) = db.take_pending(&form.request).await? else {
        return expired;
    };
    let client_state = pending.state.as_deref();
    if form.decision != "allow" {
        tracing::info!(client_id = %pending.client_id, user = %identity.subject, "consent refused");
        let event =
            Event::new("consent.refused", identity.actor()).on("client", &pending.client_id);
        audit::record(db, now, event).await;
        return Ok(AuthorizeOutcome::ToClient(ClientRedirect::error(
            &pending.redirect_uri,
            OAuthCode::AccessDenied,
            "The user declined to authorize the client.",
            client_state,
        )));
    }
    // The consent covers what was granted before and what is granted now.
    let previous = db
        .find_consent(&pending.client_id, &identity.subject)
        .await?
        .unwrap_or_default();
    let mut scopes: Vec<&str> = previous
        .split_whitespace()
        .chain(pending.scope.split_whitespace())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    db.put_consent(
        &pending.client_id,
        &identity.subject,
        &scopes.join(" "),
        now,
    )
    .await?;
    tracing::info!(client_id = %pending.client_id, user = %identity.subject, "consent given");
    let event = Event::new("consent.given", identity.actor())
        .on("client", &pending.client_id)
        .detail(serde_json::json!({"scope": scopes.join(" ")}));
    audit::record(db, now, event).await;
    let code = issue_code(
        db,
        &Approved {
            client_id: &pending.client_id,
            subject: &identity.subject,
            redirect_uri: &pending.redirect_uri,
            scope: &pending.scope,
            resource: &pending.resource,
            code_challenge: &pending.code_challenge,
        },
        now,
    )
    .await?;
    Ok(AuthorizeOutcome::ToClient(ClientRedirect::code(
        &pending.redirect_uri,
        &code,
        client_state,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_parameters_are_refused() {
        assert!(parse_query(Some("a=1&b=2")).is_ok());
        assert!(parse_query(Some("a=1&a=2")).is_err());
        assert!(parse_query(None).unwrap().is_empty());
    }

    #[test]
    fn redirects_keep_the_client_query_and_add_iss() {
        let r = ClientRedirect::code("http://127.0.0.1:5/cb?x=1", "abc", Some("s t"));
        assert_eq!(
            r.location("https://gh.example.com").unwrap(),
            "http://127.0.0.1:5/cb?x=1&code=abc&state=s+t&iss=https%3A%2F%2Fgh.example.com"
        );
        assert_eq!(
            ClientRedirect::code("not a url", "c", None).location("x"),
            None
        );
    }

    use super::super::testing::*;
    use crate::server::auth::AuthMethod;

    fn alice() -> Identity {
        Identity {
            subject: "alice".into(),
            method: AuthMethod::Basic,
            session_id: None,
            expires_at: None,
            role: crate::model::session::Role::Admin,
            admin_groups: Vec::new(),
        }
    }

    fn query(client: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", client)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "xyz");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        q.finish()
    }

    async fn ask(
        oauth: &OAuthServer,
        db: &Db,
        query: &str,
        user: UserCheck,
        wants_json: bool,
    ) -> AuthorizeOutcome {
        let request = AuthorizeRequest {
            query: Some(query),
            wants_json,
            user,
        };
        authorize(oauth, db, request, T0).await.unwrap()
    }

    /// The error code the outcome sends back to the client.
    fn client_error(outcome: &AuthorizeOutcome) -> String {
        match outcome {
            AuthorizeOutcome::ToClient(back) => {
                assert_eq!(back.state.as_deref(), Some("xyz"), "state is echoed");
                back.params
                    .iter()
                    .find(|(k, _)| k == "error")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            }
            other => panic!("expected a redirect to the client, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn requests_that_cannot_go_back_to_the_client_get_a_page() {
        let (oauth, db, _dir) = setup().await;
        let client = public_client(&db).await;
        let (_, challenge) = pkce();
        let signed_in = || UserCheck::SignedIn(alice());

        let unknown = ask(
            &oauth,
            &db,
            &query("nope", &challenge, &[]),
            signed_in(),
            false,
        )
        .await;
        assert_eq!(
            unknown,
            AuthorizeOutcome::Page(ErrorPage::UnknownClient("nope".into()))
        );
        // A client's JSON probe learns to register again.
        let probe = ask(
            &oauth,
            &db,
            &query("nope", &challenge, &[]),
            signed_in(),
            true,
        )
        .await;
        assert!(
            matches!(probe, AuthorizeOutcome::ClientError(e) if e.code == OAuthCode::InvalidClient)
        );

        let mismatch = query(&client, &challenge, &[]).replace(
            &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
            "https%3A%2F%2Fevil.example%2Fcb",
        );
        assert!(matches!(
            ask(&oauth, &db, &mismatch, signed_in(), false).await,
            AuthorizeOutcome::Page(ErrorPage::RedirectMismatch { presented, .. }) if presented == "https://evil.example/cb"
        ));
        for bad in ["response_type=code", "client_id=a&client_id=b"] {
            assert!(
                matches!(
                    ask(&oauth, &db, bad, signed_in(), false).await,
                    AuthorizeOutcome::Page(ErrorPage::BadRequest(_))
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn bad_parameters_go_back_to_the_client_with_the_rfc_code() {
        let (oauth, db, _dir) = setup().await;
        let client = public_client(&db).await;
        let (_, challenge) = pkce();
        let cases: Vec<(String, &str)> = vec![
            (
                query(&client, &challenge, &[])
                    .replace("response_type=code", "response_type=token"),
                "unsupported_response_type",
            ),
            // PKCE missing, plain, or not a SHA-256 value.
            (
                query(&client, &challenge, &[]).replace(&format!("code_challenge={challenge}"), ""),
                "invalid_request",
            ),
            (
                query(&client, &challenge, &[])
                    .replace("code_challenge_method=S256", "code_challenge_method=plain"),
                "invalid_request",
            ),
            (query(&client, "too-short", &[]), "invalid_request"),
            (
                query(
                    &client,
                    &challenge,
                    &[("resource", "https://elsewhere.example/mcp")],
                ),
                "invalid_target",
            ),
            (
                query(&client, &challenge, &[("scope", "mcp admin")]),
                "invalid_scope",
            ),
        ];
        for (q, code) in cases {
            let outcome = ask(&oauth, &db, &q, UserCheck::SignedIn(alice()), false).await;
            assert_eq!(client_error(&outcome), code, "{q}");
        }
        // The session could not be checked: the client hears it is temporary.
        let outcome = ask(
            &oauth,
            &db,
            &query(&client, &challenge, &[]),
            UserCheck::Unknown,
            false,
        )
        .await;
        assert_eq!(client_error(&outcome), "temporarily_unavailable");
        // A client registered without the code grant.
        let (no_code, _) = register(
            &db,
            serde_json::json!({"redirect_uris": [REDIRECT], "application_type": "native", "grant_types": ["authorization_code"]}),
        )
        .await;
        db.insert_oauth_client(&{
            let mut row = db.find_oauth_client(&no_code).await.unwrap().unwrap();
            row.id = "refresh-only".into();
            row.grant_types = r#"["refresh_token"]"#.into();
            row.fingerprint = None;
            row
        })
        .await
        .unwrap();
        let outcome = ask(
            &oauth,
            &db,
            &query("refresh-only", &challenge, &[]),
            UserCheck::SignedIn(alice()),
            false,
        )
        .await;
        assert_eq!(client_error(&outcome), "unauthorized_client");
    }

    #[tokio::test]
    async fn sign_in_then_consent_then_a_code() {
        let (oauth, db, _dir) = setup().await;
        let client = public_client(&db).await;
        let (_, challenge) = pkce();
        let q = query(&client, &challenge, &[]);

        let outcome = ask(&oauth, &db, &q, UserCheck::SignedOut, false).await;
        assert_eq!(
            outcome,
            AuthorizeOutcome::SignIn {
                next: format!("/mcp/oauth/authorize?{q}")
            }
        );
        let AuthorizeOutcome::Consent { request } =
            ask(&oauth, &db, &q, UserCheck::SignedIn(alice()), false).await
        else {
            panic!("consent is asked the first time");
        };
        let form = |csrf: String, decision: &str| ConsentForm {
            request: request.clone(),
            csrf,
            decision: decision.into(),
        };
        // A forged CSRF token, or someone else deciding: the request is as good as gone.
        let forged = decide(&oauth, &db, &alice(), &form("forged".into(), "allow"), T0)
            .await
            .unwrap();
        assert_eq!(forged, AuthorizeOutcome::Page(ErrorPage::Expired));
        let mut bob = alice();
        bob.subject = "bob".into();
        let csrf = oauth.consent_csrf(&request, "bob");
        let theirs = decide(&oauth, &db, &bob, &form(csrf, "allow"), T0)
            .await
            .unwrap();
        assert_eq!(theirs, AuthorizeOutcome::Page(ErrorPage::Expired));

        let csrf = oauth.consent_csrf(&request, "alice");
        let allowed = decide(&oauth, &db, &alice(), &form(csrf.clone(), "allow"), T0)
            .await
            .unwrap();
        let AuthorizeOutcome::ToClient(back) = allowed else {
            panic!("a code goes back");
        };
        assert_eq!(back.params[0].0, "code");
        assert!(
            back.location(&oauth.issuer)
                .unwrap()
                .contains("iss=https%3A%2F%2Fgh.example.com")
        );
        // Answered once: a second decision finds nothing.
        let again = decide(&oauth, &db, &alice(), &form(csrf, "allow"), T0)
            .await
            .unwrap();
        assert_eq!(again, AuthorizeOutcome::Page(ErrorPage::Expired));
        // Remembered: the next authorization skips the page.
        let next = ask(&oauth, &db, &q, UserCheck::SignedIn(alice()), false).await;
        assert!(matches!(next, AuthorizeOutcome::ToClient(b) if b.params[0].0 == "code"));

        // Declined: access_denied goes back.
        let other = public_client_named(&db, "Other").await;
        let AuthorizeOutcome::Consent { request } = ask(
            &oauth,
            &db,
            &query(&other, &challenge, &[]),
            UserCheck::SignedIn(alice()),
            false,
        )
        .await
        else {
            panic!("consent is asked");
        };
        let csrf = oauth.consent_csrf(&request, "alice");
        let declined = decide(
            &oauth,
            &db,
            &alice(),
            &ConsentForm {
                request,
                csrf,
                decision: "cancel".into(),
            },
            T0,
        )
        .await
        .unwrap();
        assert_eq!(client_error(&declined), "access_denied");
    }
}
