//! The token endpoint's core: `grant` (authorization code with PKCE; rotating refresh tokens)
//! and `revoke` (RFC 7009), as functions of a typed `TokenRequest` and the time, free of HTTP
//! (the adapter is `http.rs`).
//!
//! A code is used once: consuming it and checking it are one statement, and presenting it
//! again revokes everything issued from it. A refresh token is used once too, except that a
//! second use within a few seconds (a client retrying concurrently) is answered; later, a
//! second use means the token leaked, and the whole family is revoked.

use crate::server::audit::{self, Actor, Event};
use serde_json::json;
use std::collections::HashMap;

use super::access_token::{ACCESS_TOKEN_TTL_SECS, AccessTokenError};
use super::clients::redirect_uris;
use super::error::{OAuthCode, OAuthError};
use super::{
    OAuthServer, REFRESH_REUSE_GRACE_SECS, REFRESH_TOKEN_PREFIX, REFRESH_TOKEN_TTL_SECS,
    pkce_matches, scope_covers,
};
use crate::server::clock::UnixTime;
use crate::server::db::Db;
use crate::server::db::oauth::{CodeRow, CodeUse, FamilyRow, OAuthClientRow, Rotation};
use crate::server::secrets::{constant_time_eq, random_token, sha256_hex};

/// A token or revocation request as it arrived: its form parameters (each at most once) and
/// the client credentials of an `Authorization: Basic` header, form-decoded.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub params: HashMap<String, String>,
    pub basic: Option<(String, String)>,
}

impl TokenRequest {
    fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Tokens issued by the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub scope: String,
    pub expires_in: i64,
}

/// Who is calling the token or revocation endpoint.
async fn authenticate_client(
    oauth: &OAuthServer,
    db: &Db,
    request: &TokenRequest,
    now: UnixTime,
) -> Result<OAuthClientRow, OAuthError> {
    let basic = &request.basic;
    let body_id = request.params.get("client_id").filter(|v| !v.is_empty());
    let body_secret = request
        .params
        .get("client_secret")
        .filter(|v| !v.is_empty());
    let with_challenge = |mut e: OAuthError| {
        e.basic_challenge = basic.is_some();
        e
    };
    let (client_id, secret) = match (&basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method, not Basic and client_secret both.",
            ));
        }
        (Some((id, _)), Some(body), _) if body != id => {
            return Err(OAuthError::invalid_request(
                "The client_id differs from the one in the Basic credentials.",
            ));
        }
        (Some((id, secret)), _, _) => (id.clone(), Some(secret.clone())),
        (None, Some(id), secret) => (id.clone(), secret.cloned()),
        (None, None, _) => {
            return Err(OAuthError::invalid_client(
                "Client authentication is required: send client_id.",
            ));
        }
    };
    let Some(client) = oauth.clients.find(db, &client_id, now).await? else {
        // invalid_client (not invalid_grant): clients take it as "register again".
        return Err(with_challenge(OAuthError::invalid_client(
            "Unknown client: it is not registered here (or was deleted). Register again.",
        )));
    };
    match (
        client.token_endpoint_auth_method.as_str(),
        secret,
        &client.client_secret_hash,
    ) {
        ("none", None, _) => Ok(client),
        ("none", Some(_), _) => Err(with_challenge(OAuthError::invalid_client(
            "This client is public and has no secret.",
        ))),
        (_, Some(secret), Some(hash)) if constant_time_eq(sha256_hex(&secret), hash) => Ok(client),
        (_, Some(_), _) => Err(with_challenge(OAuthError::invalid_client(
            "The client secret is wrong.",
        ))),
        (_, None, _) => Err(with_challenge(OAuthError::invalid_client(
            "This client must authenticate with its client secret.",
        ))),
    }
}

fn new_refresh_token() -> String {
    format!("{REFRESH_TOKEN_PREFIX}{}", random_token())
}

/// `POST /mcp/oauth/token`: the authorization code and refresh token grants.
pub async fn grant(
    oauth: &OAuthServer,
    db: &Db,
    request: &TokenRequest,
    now: UnixTime,
) -> Result<Issued, OAuthError> {
    let client = authenticate_client(oauth, db, request, now).await?;
    let issued = match request.get("grant_type") {
        Some("authorization_code") => exchange_code(oauth, db, &client, request, now).await?,
        Some("refresh_token") => refresh(oauth, db, &client, request, now).await?,
        Some(other) => {
            return Err(OAuthError::new(
                OAuthCode::UnsupportedGrantType,
                format!(
                    "grant_type {other:?} is not supported; use authorization_code or refresh_token."
                ),
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is missing.")),
    };
    // "Last used" is shown by the minute: no write per token request.
    if client.last_used_at.is_none_or(|at| now - at >= 60) {
        db.touch_oauth_client(&client.id, now).await?;
        oauth.clients.touched(&client.id, now);
    }
    Ok(issued)
}

fn check_resource(
    oauth: &OAuthServer,
    request: &TokenRequest,
    granted: &str,
) -> Result<(), OAuthError> {
    match request.get("resource") {
        Some(r) if !(oauth.is_our_resource(r) && oauth.is_our_resource(granted)) => {
            Err(OAuthError::new(
                OAuthCode::InvalidTarget,
                format!("Tokens are issued only for {}.", oauth.resource),
            ))
        }
        _ => Ok(()),
    }
}

async fn exchange_code(
    oauth: &OAuthServer,
    db: &Db,
    client: &OAuthClientRow,
    request: &TokenRequest,
    now: UnixTime,
) -> Result<Issued, OAuthError> {
    let code = request
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("code is missing."))?;
    let verifier = request.get("code_verifier").ok_or_else(|| {
        OAuthError::invalid_request("code_verifier is missing: PKCE is required.")
    })?;
    let id = sha256_hex(code);
    let Some(code) = db.find_code(&id).await? else {
        return Err(OAuthError::invalid_grant(
            "The authorization code is not valid.",
        ));
    };
    if code.used_at.is_some() {
        return Err(replayed(oauth, db, &code, now).await?);
    }
    // A code is spent by its first presentation, whatever follows: one that fails a check is
    // spent here, one that passes them all is spent below, with the session it starts.
    if let Err(refused) = check_code(oauth, client, request, &code, verifier, now) {
        if let CodeUse::Replayed(code) = db.consume_code(&id, now).await? {
            return Err(replayed(oauth, db, &code, now).await?);
        }
        return Err(refused);
    }

    let refresh = new_refresh_token();
    let family = FamilyRow {
        id: code.family_id.clone(),
        client_id: client.id.clone(),
        subject: code.subject.clone(),
        scope: code.scope.clone(),
        resource: code.resource.clone(),
        created_at: now,
        expires_at: now + REFRESH_TOKEN_TTL_SECS,
        last_used_at: Some(now),
        revoked_at: None,
    };
    if !db
        .redeem_code(&id, now, &family, &sha256_hex(&refresh))
        .await?
    {
        // Another exchange of the same code got there first.
        return Err(replayed(oauth, db, &code, now).await?);
    }
    let (access, _) =
        oauth
            .access_tokens
            .issue(&family.subject, &client.id, &family.scope, &family.id, now);
    tracing::info!(client_id = %client.id, user = %family.subject, "tokens issued for an authorization code");
    crate::server::metrics::grant_issued("authorization_code");
    let event = Event::new("oauth_token.issued", Actor::Client(client.id.clone()))
        .on("session", &family.id)
        .detail(json!({"grant_type": "authorization_code", "user": family.subject, "scope": family.scope}));
    audit::record(db, now, event).await;
    Ok(Issued {
        access_token: access,
        refresh_token: refresh,
        scope: family.scope,
        expires_in: ACCESS_TOKEN_TTL_SECS,
    })
}

/// A code presented again: what was issued from it is revoked (RFC 6749 §4.1.2).
async fn replayed(
    oauth: &OAuthServer,
    db: &Db,
    code: &CodeRow,
    now: UnixTime,
) -> Result<OAuthError, OAuthError> {
    db.revoke_family(&code.family_id, now).await?;
    oauth.revoked(db).await;
    tracing::warn!(client_id = %code.client_id, user = %code.subject, "authorization code replayed: tokens issued from it revoked");
    let event = Event::new(
        "oauth_session.revoked",
        Actor::Client(code.client_id.clone()),
    )
    .on("session", &code.family_id)
    .refused()
    .detail(json!({"reason": "authorization code replayed", "user": code.subject}));
    audit::record(db, now, event).await;
    Ok(OAuthError::invalid_grant(
        "The authorization code was already used; the tokens issued from it have been revoked.",
    ))
}

/// Everything a code exchange must match: the client, the lifetime, the redirect URI, PKCE
/// and the resource.
fn check_code(
    oauth: &OAuthServer,
    client: &OAuthClientRow,
    request: &TokenRequest,
    code: &CodeRow,
    verifier: &str,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "The authorization code was issued to another client.",
        ));
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "The authorization code has expired (codes are valid for 60 seconds).",
        ));
    }
    match request.get("redirect_uri") {
        Some(uri) if uri != code.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request.",
            ));
        }
        None if redirect_uris(client).len() != 1 => {
            return Err(OAuthError::invalid_request("redirect_uri is missing."));
        }
        _ => {}
    }
    if !pkce_matches(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "PKCE verification failed: the code_verifier does not match the code_challenge.",
        ));
    }
    check_resource(oauth, request, &code.resource)
}

async fn refresh(
    oauth: &OAuthServer,
    db: &Db,
    client: &OAuthClientRow,
    request: &TokenRequest,
    now: UnixTime,
) -> Result<Issued, OAuthError> {
    let presented = request
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing."))?;
    let id = sha256_hex(presented);
    let fresh = new_refresh_token();
    // Sealed for the grace window, bound to the token it replaces.
    let context = format!("oauth_refresh_tokens/{id}/successor");
    let sealed = oauth.successors.seal(&fresh, &context);

    // The common case in one round trip: a live token of this client, used for the first
    // time, asking for nothing narrower. Anything else takes the path below, which says why.
    if request.get("scope").is_none() && request.get("resource").is_none() {
        let rotated = db
            .rotate_live_refresh(
                &client.id,
                &id,
                &sha256_hex(&fresh),
                &sealed,
                now,
                now + REFRESH_TOKEN_TTL_SECS,
            )
            .await?;
        if let Some(family) = rotated {
            refreshed(db, now, &client.id, &family.id, &family.subject).await;
            let (access, _) = oauth.access_tokens.issue(
                &family.subject,
                &client.id,
                &family.scope,
                &family.id,
                now,
            );
            return Ok(Issued {
                access_token: access,
                refresh_token: fresh,
                scope: family.scope,
                expires_in: ACCESS_TOKEN_TTL_SECS,
            });
        }
    }

    let Some(token) = db.find_refresh(&id).await? else {
        return Err(OAuthError::invalid_grant(
            "The refresh token is not valid (revoked, expired or unknown).",
        ));
    };
    if token.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "The refresh token was issued to another client.",
        ));
    }
    if token.family_revoked_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "The session this refresh token belongs to has been revoked.",
        ));
    }
    if token.expires_at <= now {
        return Err(OAuthError::invalid_grant("The refresh token has expired."));
    }
    if let Some(scope) = request.get("scope")
        && !scope_covers(&token.scope, scope)
    {
        return Err(OAuthError::new(
            OAuthCode::InvalidScope,
            "A refresh cannot widen the scope that was granted.",
        ));
    }
    check_resource(oauth, request, &token.resource)?;

    let rotation = db
        .rotate_refresh(
            &token.family_id,
            &id,
            &sha256_hex(&fresh),
            &sealed,
            now,
            now + REFRESH_TOKEN_TTL_SECS,
            REFRESH_REUSE_GRACE_SECS,
        )
        .await?;
    let refresh = match rotation {
        Rotation::Rotated => fresh,
        Rotation::Retry { successor_sealed } => oauth
            .successors
            .open(&successor_sealed, &context)
            .map_err(|e| {
                tracing::error!(error = %e, "cannot open a refresh token's successor");
                OAuthError::invalid_grant(
                    "The refresh token can no longer be exchanged. Sign in again.",
                )
            })?
            .expose()
            .to_string(),
        Rotation::Reused => {
            oauth.revoked(db).await;
            tracing::warn!(client_id = %client.id, user = %token.subject, "refresh token reused: session revoked");
            let event = Event::new("oauth_session.revoked", Actor::Client(client.id.clone()))
                .on("session", &token.family_id)
                .refused()
                .detail(json!({"reason": "refresh token reused", "user": token.subject}));
            audit::record(db, now, event).await;
            return Err(OAuthError::invalid_grant(
                "The refresh token was already used; the session has been revoked for safety. Sign in again.",
            ));
        }
        Rotation::FamilyEnded => {
            return Err(OAuthError::invalid_grant(
                "The session this refresh token belongs to has been revoked.",
            ));
        }
    };
    refreshed(db, now, &client.id, &token.family_id, &token.subject).await;
    let (access, _) = oauth.access_tokens.issue(
        &token.subject,
        &client.id,
        &token.scope,
        &token.family_id,
        now,
    );
    Ok(Issued {
        access_token: access,
        refresh_token: refresh,
        scope: token.scope,
        expires_in: ACCESS_TOKEN_TTL_SECS,
    })
}

/// A refresh token exchanged for new tokens.
async fn refreshed(db: &Db, now: UnixTime, client: &str, family: &str, user: &str) {
    crate::server::metrics::grant_issued("refresh_token");
    let event = Event::new("oauth_token.refreshed", Actor::Client(client.to_string()))
        .on("session", family)
        .detail(json!({"grant_type": "refresh_token", "user": user}));
    audit::record(db, now, event).await;
}

/// `POST /mcp/oauth/revoke` (RFC 7009). Revoking a refresh token ends its session (its
/// access tokens stop working too); revoking an access token ends that token. Unknown tokens
/// and tokens of other clients are answered like any other: the caller learns nothing.
pub async fn revoke(
    oauth: &OAuthServer,
    db: &Db,
    request: &TokenRequest,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let client = authenticate_client(oauth, db, request, now).await?;
    let token = request
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is missing."))?;
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        if let Some(row) = db.find_refresh(&sha256_hex(token)).await?
            && row.client_id == client.id
        {
            db.revoke_family(&row.family_id, now).await?;
            tracing::info!(client_id = %client.id, "session revoked by the client");
            let event = Event::new("oauth_session.revoked", Actor::Client(client.id.clone()))
                .on("session", &row.family_id)
                .detail(json!({"reason": "revoked by the client", "user": row.subject}));
            audit::record(db, now, event).await;
        }
    } else {
        match oauth.access_tokens.verify_ignoring_expiry(token) {
            Ok(claims) if claims.client_id == client.id => {
                db.revoke_session(&claims.jti, claims.exp).await?;
            }
            Ok(_)
            | Err(
                AccessTokenError::Invalid | AccessTokenError::Expired | AccessTokenError::Revoked,
            ) => {}
        }
    }
    oauth.revoked(db).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::authorize::{Approved, issue_code};
    use super::super::testing::*;
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> TokenRequest {
        TokenRequest {
            params: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            basic: None,
        }
    }

    /// A code for `client`, and its PKCE verifier.
    async fn code(db: &Db, client: &str, now: UnixTime) -> (String, String) {
        let (verifier, challenge) = pkce();
        let resource = format!("{ISSUER}/mcp");
        let approved = Approved {
            client_id: client,
            subject: "alice",
            redirect_uri: REDIRECT,
            scope: "mcp",
            resource: &resource,
            code_challenge: &challenge,
        };
        (issue_code(db, &approved, now).await.unwrap(), verifier)
    }

    fn exchange<'a>(client: &'a str, code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", REDIRECT),
        ]
    }

    fn refused(result: Result<Issued, OAuthError>, code: OAuthCode, words: &str) {
        let e = result.expect_err("refused");
        assert_eq!(e.code, code, "{}", e.description);
        assert!(e.description.contains(words), "{}", e.description);
    }

    #[tokio::test]
    async fn code_exchange_refusals() {
        let (oauth, db, _dir) = setup().await;
        let client = public_client(&db).await;
        let other = public_client_named(&db, "Other").await;

        // No verifier: PKCE is required.
        let (c, _) = code(&db, &client, T0).await;
        let mut pairs = exchange(&client, &c, "");
        pairs.retain(|(k, _)| *k != "code_verifier");
        refused(
            grant(&oauth, &db, &request(&pairs), T0).await,
            OAuthCode::InvalidRequest,
            "PKCE",
        );
        // A wrong verifier.
        let (c, _) = code(&db, &client, T0).await;
        let (wrong, _) = pkce();
        refused(
            grant(&oauth, &db, &request(&exchange(&client, &c, &wrong)), T0).await,
            OAuthCode::InvalidGrant,
            "PKCE verification failed",
        );
        // Another client's code.
        let (c, v) = code(&db, &client, T0).await;
        refused(
            grant(&oauth, &db, &request(&exchange(&other, &c, &v)), T0).await,
            OAuthCode::InvalidGrant,
            "another client",
        );
        // Expired (codes live 60 s).
        let (c, v) = code(&db, &client, T0).await;
        refused(
            grant(&oauth, &db, &request(&exchange(&client, &c, &v)), T0 + 61).await,
            OAuthCode::InvalidGrant,
            "expired",
        );
        // Another redirect URI than the authorization request's.
        let (c, v) = code(&db, &client, T0).await;
        let mut pairs = exchange(&client, &c, &v);
        pairs.retain(|(k, _)| *k != "redirect_uri");
        pairs.push(("redirect_uri", "http://127.0.0.1:1/elsewhere"));
        refused(
            grant(&oauth, &db, &request(&pairs), T0).await,
            OAuthCode::InvalidGrant,
            "redirect_uri",
        );
        // Another resource.
        let (c, v) = code(&db, &client, T0).await;
        let mut pairs = exchange(&client, &c, &v);
        pairs.push(("resource", "https://elsewhere.example/mcp"));
        refused(
            grant(&oauth, &db, &request(&pairs), T0).await,
            OAuthCode::InvalidTarget,
            "only for",
        );
        // An unknown code.
        refused(
            grant(&oauth, &db, &request(&exchange(&client, "nope", "x")), T0).await,
            OAuthCode::InvalidGrant,
            "not valid",
        );

        // A code used twice: the second use revokes what the first issued.
        let (c, v) = code(&db, &client, T0).await;
        let issued = grant(&oauth, &db, &request(&exchange(&client, &c, &v)), T0)
            .await
            .unwrap();
        assert_eq!(issued.scope, "mcp");
        refused(
            grant(&oauth, &db, &request(&exchange(&client, &c, &v)), T0 + 1).await,
            OAuthCode::InvalidGrant,
            "already used",
        );
        let again = request(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &issued.refresh_token),
        ]);
        refused(
            grant(&oauth, &db, &again, T0 + 2).await,
            OAuthCode::InvalidGrant,
            "revoked",
        );
    }

    #[tokio::test]
    async fn client_and_grant_type_refusals() {
        let (oauth, db, _dir) = setup().await;
        let public = public_client(&db).await;
        let (confidential, secret) = register(
            &db,
            serde_json::json!({"redirect_uris": ["https://app.example/cb"]}),
        )
        .await;
        let secret = secret.expect("a web client gets a secret");
        let grant_type =
            |client: &str| request(&[("grant_type", "client_credentials"), ("client_id", client)]);
        refused(
            grant(&oauth, &db, &grant_type(&public), T0).await,
            OAuthCode::UnsupportedGrantType,
            "client_credentials",
        );
        refused(
            grant(&oauth, &db, &request(&[("client_id", &public)]), T0).await,
            OAuthCode::InvalidRequest,
            "grant_type is missing",
        );
        refused(
            grant(&oauth, &db, &grant_type("unknown"), T0).await,
            OAuthCode::InvalidClient,
            "Unknown client",
        );
        refused(
            grant(&oauth, &db, &request(&[("grant_type", "x")]), T0).await,
            OAuthCode::InvalidClient,
            "send client_id",
        );
        // A confidential client without, or with a wrong, secret; a public one with a secret.
        refused(
            grant(&oauth, &db, &grant_type(&confidential), T0).await,
            OAuthCode::InvalidClient,
            "must authenticate",
        );
        let mut wrong = grant_type(&confidential);
        wrong.basic = Some((confidential.clone(), "wrong".into()));
        wrong.params.remove("client_id");
        let e = grant(&oauth, &db, &wrong, T0).await.unwrap_err();
        assert_eq!(e.code, OAuthCode::InvalidClient);
        assert!(e.basic_challenge, "Basic gets a Basic challenge back");
        let mut public_secret = grant_type(&public);
        public_secret
            .params
            .insert("client_secret".into(), "x".into());
        refused(
            grant(&oauth, &db, &public_secret, T0).await,
            OAuthCode::InvalidClient,
            "public",
        );
        // Basic and a body secret at once, or two different client ids.
        let mut both = grant_type(&confidential);
        both.basic = Some((confidential.clone(), secret.clone()));
        both.params.insert("client_secret".into(), secret.clone());
        refused(
            grant(&oauth, &db, &both, T0).await,
            OAuthCode::InvalidRequest,
            "one client authentication",
        );
        let mut differ = grant_type(&public);
        differ.basic = Some((confidential.clone(), secret.clone()));
        refused(
            grant(&oauth, &db, &differ, T0).await,
            OAuthCode::InvalidRequest,
            "differs",
        );
        // The right secret passes authentication (and meets the grant type check).
        let mut right = grant_type(&confidential);
        right.basic = Some((confidential.clone(), secret));
        right.params.remove("client_id");
        refused(
            grant(&oauth, &db, &right, T0).await,
            OAuthCode::UnsupportedGrantType,
            "not supported",
        );
    }

    /// Rotations that reach the SQLite writer together share one transaction: each keeps its
    /// own outcome, and two presentations of one token still get one successor between them.
    #[tokio::test]
    async fn rotations_committed_together_keep_their_own_outcomes() {
        let (oauth, db, _dir) = setup().await;
        let oauth = std::sync::Arc::new(oauth);
        let client = public_client(&db).await;
        let mut tokens = Vec::new();
        for _ in 0..12 {
            let (c, v) = code(&db, &client, T0).await;
            let issued = grant(&oauth, &db, &request(&exchange(&client, &c, &v)), T0).await;
            tokens.push(issued.unwrap().refresh_token);
        }
        for round in 1..=3 {
            let mut presented = tokens.clone();
            presented.push(tokens[0].clone());
            let mut racing = tokio::task::JoinSet::new();
            for (i, token) in presented.into_iter().enumerate() {
                let (oauth, db, client) = (oauth.clone(), db.clone(), client.clone());
                racing.spawn(async move {
                    let pairs = [
                        ("grant_type", "refresh_token"),
                        ("client_id", client.as_str()),
                        ("refresh_token", token.as_str()),
                    ];
                    let issued = grant(&oauth, &db, &request(&pairs), T0 + round).await;
                    (i % 12, issued.expect("rotated").refresh_token)
                });
            }
            let mut next = vec![Vec::new(); 12];
            for (chain, token) in racing.join_all().await {
                next[chain].push(token);
            }
            for (chain, successors) in next.iter_mut().enumerate() {
                successors.dedup();
                assert_eq!(successors.len(), 1, "chain {chain}: one successor");
                assert_ne!(successors[0], tokens[chain]);
            }
            tokens = next.into_iter().map(|mut s| s.remove(0)).collect();
        }
    }

    #[tokio::test]
    async fn refresh_refusals() {
        let (oauth, db, _dir) = setup().await;
        let client = public_client(&db).await;
        let other = public_client_named(&db, "Other").await;
        let signed_in = async |now| {
            let (c, v) = code(&db, &client, now).await;
            grant(&oauth, &db, &request(&exchange(&client, &c, &v)), now)
                .await
                .unwrap()
                .refresh_token
        };
        let refresh = |client: &str, token: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("grant_type", "refresh_token"),
                ("client_id", client),
                ("refresh_token", token),
            ];
            pairs.extend_from_slice(extra);
            request(&pairs)
        };

        let rt1 = signed_in(T0).await;
        // Another client's refresh token.
        refused(
            grant(&oauth, &db, &refresh(&other, &rt1, &[]), T0).await,
            OAuthCode::InvalidGrant,
            "another client",
        );
        // Widening the scope, or another resource.
        refused(
            grant(
                &oauth,
                &db,
                &refresh(&client, &rt1, &[("scope", "mcp admin")]),
                T0,
            )
            .await,
            OAuthCode::InvalidScope,
            "widen",
        );
        refused(
            grant(
                &oauth,
                &db,
                &refresh(&client, &rt1, &[("resource", "https://x.example/mcp")]),
                T0,
            )
            .await,
            OAuthCode::InvalidTarget,
            "only for",
        );
        refused(
            grant(&oauth, &db, &refresh(&client, "", &[]), T0).await,
            OAuthCode::InvalidRequest,
            "missing",
        );
        // Rotated, then presented again after the grace window: the family is revoked.
        let rt2 = grant(&oauth, &db, &refresh(&client, &rt1, &[]), T0)
            .await
            .unwrap()
            .refresh_token;
        refused(
            grant(
                &oauth,
                &db,
                &refresh(&client, &rt1, &[]),
                T0 + REFRESH_REUSE_GRACE_SECS + 1,
            )
            .await,
            OAuthCode::InvalidGrant,
            "already used",
        );
        refused(
            grant(&oauth, &db, &refresh(&client, &rt2, &[]), T0 + 20).await,
            OAuthCode::InvalidGrant,
            "revoked",
        );
        // Expired.
        let old = signed_in(T0).await;
        refused(
            grant(
                &oauth,
                &db,
                &refresh(&client, &old, &[]),
                T0 + REFRESH_TOKEN_TTL_SECS,
            )
            .await,
            OAuthCode::InvalidGrant,
            "expired",
        );
    }

    #[tokio::test]
    async fn revocation_of_each_token_type() {
        let (oauth, db, _dir) = setup().await;
        let client = public_client(&db).await;
        let other = public_client_named(&db, "Other").await;
        let (c, v) = code(&db, &client, T0).await;
        let issued = grant(&oauth, &db, &request(&exchange(&client, &c, &v)), T0)
            .await
            .unwrap();
        let revoke_as =
            |client: &str, token: &str| request(&[("client_id", client), ("token", token)]);
        let alive = async |access: &str| {
            let claims = oauth.access_tokens.verify(access, T0 + 1).unwrap();
            oauth.liveness.forget_all();
            oauth
                .liveness
                .check(&db, &claims, T0 + 1)
                .await
                .unwrap()
                .is_ok()
        };

        // Another client's tokens, an unknown token: answered, and nothing happens.
        revoke(&oauth, &db, &revoke_as(&other, &issued.access_token), T0)
            .await
            .unwrap();
        revoke(&oauth, &db, &revoke_as(&other, &issued.refresh_token), T0)
            .await
            .unwrap();
        revoke(&oauth, &db, &revoke_as(&client, "gatehouse_rt_unknown"), T0)
            .await
            .unwrap();
        assert!(alive(&issued.access_token).await);
        let e = revoke(&oauth, &db, &request(&[("client_id", &client)]), T0)
            .await
            .unwrap_err();
        assert_eq!(e.code, OAuthCode::InvalidRequest);

        // An access token: that token ends, the session does not.
        revoke(&oauth, &db, &revoke_as(&client, &issued.access_token), T0)
            .await
            .unwrap();
        assert!(!alive(&issued.access_token).await);
        let next = grant(
            &oauth,
            &db,
            &request(&[
                ("grant_type", "refresh_token"),
                ("client_id", &client),
                ("refresh_token", &issued.refresh_token),
            ]),
            T0 + 1,
        )
        .await
        .unwrap();
        assert!(alive(&next.access_token).await);

        // A refresh token: the whole session ends, its access tokens with it.
        revoke(
            &oauth,
            &db,
            &revoke_as(&client, &next.refresh_token),
            T0 + 2,
        )
        .await
        .unwrap();
        assert!(!alive(&next.access_token).await);
    }
}
