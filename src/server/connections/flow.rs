//! The popup authorization flow. Connect (an authenticated POST from the UI) registers the
//! client first when it is dynamic, stores a single-use `state` bound to the user with the
//! PKCE verifier, and gives the popup the provider's authorization URL. The provider sends
//! the browser to `/connections/oauth/callback`, which exchanges the code, stores the grant
//! and tells the opener (postMessage to Gatehouse's own origin only), then closes.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::STATE_TTL;
use super::builtin::BuiltinProvider;
use super::provider::{AUTH_BASIC, AUTH_NONE, AUTH_POST};
use super::provider_client::ProviderError;
use crate::server::audit::{self, Event};
use crate::server::auth::Identity;
use crate::server::db::connections::{ConnectionRow, GrantKey, Registration, StateRow};
use crate::server::error::AppError;
use crate::server::html::{Part, page, script_json};
use crate::server::secrets::{random_token, sha256_hex};
use crate::server::state::AppState;

/// Builds the provider's authorization URL for a new request by `subject`. `elicitation`:
/// the URL elicitation of an MCP client's "connect your account" link this completes.
pub async fn authorization_url(
    state: &AppState,
    row: &ConnectionRow,
    subject: &str,
    pending_changes: Option<String>,
    elicitation: Option<&str>,
) -> Result<String, AppError> {
    let engine = &state.connections;
    let row = &super::discovery::follow_moved_issuer(state, row).await?;
    let row = if row.registration == "dynamic" && row.client_id.is_none() {
        // People connecting a per-person connection for the first time at once register one
        // client between them: the first registers, the others find its client.
        let lock = engine.lock_for(GrantKey::shared(&row.id));
        let _guard = lock.lock().await;
        match state
            .db
            .find_connection(&row.id)
            .await?
            .filter(|stored| stored.client_id.is_some())
        {
            Some(stored) => ConnectionRow {
                scopes: row.scopes.clone(),
                ..stored
            },
            None => register_client(state, row).await?,
        }
    } else {
        row.clone()
    };
    let client_id = row
        .client_id
        .clone()
        .ok_or_else(|| AppError::BadRequest("The connection has no client ID.".into()))?;
    let mut url =
        Url::parse(row.authorization_url.as_deref().ok_or_else(|| {
            AppError::BadRequest("The connection has no authorization URL.".into())
        })?)
        .map_err(|e| AppError::BadRequest(format!("The authorization URL is not valid: {e}")))?;

    let state_value = random_token();
    let verifier = (row.pkce == "s256").then(random_token);
    let now = state.now();
    state
        .db
        .insert_connection_state(&StateRow {
            state_hash: sha256_hex(&state_value),
            connection_id: row.id.clone(),
            subject: subject.to_string(),
            code_verifier: verifier
                .as_ref()
                .map(|v| engine.seal(&row.id, "code_verifier", v)),
            pending_changes,
            redirect_uri: engine.callback_url.clone(),
            created_at: now,
            expires_at: now + STATE_TTL,
            elicitation_id: elicitation.map(str::to_string),
        })
        .await?;

    authorization_request(
        &mut url,
        &row,
        engine.providers.find(&row.provider),
        &client_id,
        &engine.callback_url,
        &state_value,
        verifier.as_deref(),
    );
    Ok(url.to_string())
}

/// The authorization request's parameters. Built-in providers say which parameter carries
/// the scopes and how they are joined (Slack's `user_scope`, comma lists), or that none is
/// sent at all.
pub fn authorization_request(
    url: &mut Url,
    row: &ConnectionRow,
    provider: Option<&BuiltinProvider>,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    verifier: Option<&str>,
) {
    let scopes: Vec<String> = serde_json::from_str(&row.scopes).unwrap_or_default();
    let extra: Vec<(String, String)> =
        serde_json::from_str(&row.extra_auth_params).unwrap_or_default();
    let (scope_param, separator) = match provider {
        Some(p) => (p.scope_param.as_deref(), p.scope_separator.as_str()),
        None => (Some("scope"), " "),
    };
    let mut q = url.query_pairs_mut();
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state);
    if let Some(param) = scope_param
        && !scopes.is_empty()
    {
        q.append_pair(param, &scopes.join(separator));
    }
    if let Some(v) = verifier {
        q.append_pair(
            "code_challenge",
            &URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())),
        )
        .append_pair("code_challenge_method", "S256");
    }
    if let Some(resource) = &row.resource {
        q.append_pair("resource", resource);
    }
    for (k, v) in &extra {
        q.append_pair(k, v);
    }
}

/// The authorization code exchange's form (RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 8707), plus
/// the provider's own parameters (Shopify's `expiring=1`).
pub fn code_exchange_form<'a>(
    code: String,
    redirect_uri: &str,
    verifier: Option<&str>,
    resource: Option<&str>,
    extra: &'a [(String, String)],
) -> Vec<(&'a str, String)> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code),
        ("redirect_uri", redirect_uri.to_string()),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier.to_string()));
    }
    if let Some(resource) = resource {
        form.push(("resource", resource.to_string()));
    }
    form.extend(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
    form
}

/// RFC 7591 registration at the provider, on first connect. Discovery (RFC 8414) starts
/// from the provider domain URL, or else the token URL.
pub async fn register_client(
    state: &AppState,
    row: &ConnectionRow,
) -> Result<ConnectionRow, AppError> {
    let engine = &state.connections;
    let client = engine.provider_client();
    let base = row.provider_domain_url.as_deref().unwrap_or(&row.token_url);
    let base = Url::parse(base).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let fail = |what: &str, e: ProviderError| {
        AppError::BadGateway(format!("Dynamic client registration failed: {what}: {e}"))
    };
    let metadata = client
        .discover(&base)
        .await
        .map_err(|e| fail("no authorization server metadata was found", e))?;
    let endpoint = metadata
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            AppError::BadGateway(format!(
                "Dynamic client registration failed: the provider's metadata (found from {base}) has no registration_endpoint, so it does not support RFC 7591; enter a client ID and secret instead."
            ))
        })?;
    let endpoint = Url::parse(endpoint).map_err(|e| {
        AppError::BadGateway(format!("the registration_endpoint is not a URL: {e}"))
    })?;
    let methods: Vec<&str> = metadata
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec![AUTH_BASIC]);
    let method = [AUTH_BASIC, AUTH_POST, AUTH_NONE]
        .into_iter()
        .find(|m| methods.contains(m))
        .unwrap_or(AUTH_BASIC);
    let answer = client
        .register(&endpoint, &registration_metadata(state, row, method, None))
        .await
        .map_err(|e| fail("the registration endpoint refused", e))?;
    let now = state.now();
    let text = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_string);
    let client_id = text("client_id").unwrap_or_default();
    let registration = Registration {
        client_secret: text("client_secret").map(|s| engine.seal(&row.id, "client_secret", &s)),
        token_auth_method: text("token_endpoint_auth_method").unwrap_or_else(|| method.to_string()),
        registration_client_uri: text("registration_client_uri"),
        registration_access_token: text("registration_access_token")
            .map(|t| engine.seal(&row.id, "registration_access_token", &t)),
        client_id,
    };
    state
        .db
        .set_connection_registration(&row.id, &registration, now)
        .await?;
    tracing::info!(connection = %row.id, client_id = %registration.client_id, "registered a client at the provider");
    state
        .db
        .find_connection(&row.id)
        .await?
        .ok_or_else(|| AppError::NotFound("The connection was deleted.".into()))
}

/// The client metadata Gatehouse registers (and pushes with RFC 7592).
pub fn registration_metadata(
    state: &AppState,
    row: &ConnectionRow,
    method: &str,
    client_id: Option<&str>,
) -> Value {
    let scopes: Vec<String> = serde_json::from_str(&row.scopes).unwrap_or_default();
    let mut m = json!({
        "client_name": format!("Gatehouse ({})", row.name),
        "redirect_uris": [state.connections.callback_url],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": "web",
    });
    if !scopes.is_empty() {
        m["scope"] = Value::String(scopes.join(" "));
    }
    if let Some(id) = client_id {
        m["client_id"] = Value::String(id.to_string());
    }
    m
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// RFC 9207: the authorization server that answered.
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /connections/oauth/callback`.
pub async fn callback(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    match finish(&state, &identity, query).await {
        Ok(row) => popup_page(
            &state,
            StatusCode::OK,
            &format!("{} is connected", row.name),
            &row.id,
            None,
        ),
        Err((id, status, message)) => {
            popup_page(&state, status, "The connection failed", &id, Some(&message))
        }
    }
}

type Failure = (String, StatusCode, String);

async fn finish(
    state: &AppState,
    identity: &Identity,
    query: CallbackQuery,
) -> Result<ConnectionRow, Failure> {
    let internal = |e: AppError| {
        let api = e.into_api_error();
        (
            String::new(),
            StatusCode::INTERNAL_SERVER_ERROR,
            api.message().to_string(),
        )
    };
    let Some(state_value) = query.state.filter(|s| !s.is_empty() && s.len() <= 512) else {
        return Err((
            String::new(),
            StatusCode::BAD_REQUEST,
            "The provider sent the browser back without a state parameter, so this answer cannot be matched to a request. Start again from the Connections page.".into(),
        ));
    };
    let pending = state
        .db
        .take_connection_state(&sha256_hex(&state_value))
        .await
        .map_err(|e| internal(e.into()))?
        .ok_or_else(|| {
            (
                String::new(),
                StatusCode::BAD_REQUEST,
                "This authorization answer does not match a request in progress: it was already used, or it is not from this Gatehouse. Start again from the Connections page.".to_string(),
            )
        })?;
    let id = pending.connection_id.clone();
    let now = state.now();
    let fail = |status: StatusCode, message: String| (id.clone(), status, message);
    if pending.expires_at <= now {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "The authorization took longer than 10 minutes and expired. Start again.".into(),
        ));
    }
    if pending.subject != identity.subject {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "This authorization was started by another user of Gatehouse.".into(),
        ));
    }
    let row = state
        .db
        .find_connection(&id)
        .await
        .map_err(|e| internal(e.into()))?
        .ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                "The connection was deleted meanwhile.".into(),
            )
        })?;

    // A shared grant, and changes to the template, are an admin's: someone who stopped being
    // one while at the provider stores nothing.
    if (!row.is_per_person() || pending.pending_changes.is_some()) && !identity.is_admin() {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "Only an admin can connect this connection, and you are no longer one.".into(),
        ));
    }
    // RFC 9207: an answer naming another issuer (or none, when the server promised to name
    // itself) may come from a mix-up attack; its code is not redeemed.
    if let Some((issuer, required)) = state
        .db
        .connection_issuer(&id)
        .await
        .map_err(|e| internal(e.into()))?
    {
        match query.iss.as_deref() {
            Some(iss) if iss != issuer => {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "The answer names the issuer {iss:?}, but this connection's authorization server is {issuer:?}: it may be a mix-up attack (RFC 9207), so its code was not used. Start again."
                    ),
                ));
            }
            None if required => {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "The authorization server {issuer:?} promises to name itself (iss) in its answers, and this answer does not: it may be a mix-up attack (RFC 9207), so its code was not used. Start again."
                    ),
                ));
            }
            _ => {}
        }
    }
    let key = if row.is_per_person() {
        GrantKey::person(&id, &pending.subject)
    } else {
        GrantKey::shared(&id)
    };
    // A re-authorization with a new client or scopes runs with them; they are saved with the
    // new grant, and only if it is obtained.
    let row = match &pending.pending_changes {
        Some(sealed) => {
            super::manage::PendingChanges::apply(state, &row, sealed).map_err(internal)?
        }
        None => row,
    };
    let outcome = exchange(
        state,
        &row,
        key,
        &pending,
        query.code,
        query.error,
        query.error_description,
    )
    .await;
    let event = Event::new("connection.connected", identity.actor())
        .on("connection", &id)
        .detail(json!({"person": key.person, "error": outcome.as_ref().err()}));
    let event = if outcome.is_ok() {
        event
    } else {
        event.failed()
    };
    audit::record(&state.db, state.now(), event).await;
    match outcome {
        Ok(()) => Ok(row),
        Err(message) => {
            // Shown in the list too; a grant that worked before stays as it was.
            if let Err(e) = state
                .db
                .note_connection_error(key, &message, state.now())
                .await
            {
                tracing::warn!(error = %e, "cannot record a connection error");
            }
            Err(fail(StatusCode::BAD_GATEWAY, message))
        }
    }
}

async fn exchange(
    state: &AppState,
    row: &ConnectionRow,
    key: GrantKey<'_>,
    pending: &StateRow,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
) -> Result<(), String> {
    if let Some(error) = error {
        let error: String = error.chars().take(100).collect();
        let detail = error_description
            .map(|d| format!(" ({})", d.chars().take(300).collect::<String>()))
            .unwrap_or_default();
        return Err(if error == "access_denied" {
            format!("Access was denied at the provider{detail}.")
        } else {
            format!("The provider refused the authorization: {error}{detail}.")
        });
    }
    let code = code
        .filter(|c| !c.is_empty())
        .ok_or("The provider sent the browser back without a code.")?;
    let engine = &state.connections;
    let auth = state.client_auth(row).map_err(|e| e.to_string())?;
    let verifier = match &pending.code_verifier {
        Some(sealed) => Some(
            engine
                .open(&row.id, "code_verifier", sealed)
                .map_err(|e| e.into_api_error().message().to_string())?,
        ),
        None => None,
    };
    let form = code_exchange_form(
        code,
        &pending.redirect_uri,
        verifier.as_ref().map(|v| v.expose()),
        row.resource.as_deref(),
        engine.providers.code_exchange_params(&row.provider),
    );
    let token_url = Url::parse(&row.token_url).map_err(|e| e.to_string())?;
    let answer = engine
        .provider_client()
        .token(
            &token_url,
            &auth,
            form,
            engine.providers.token_shape(&row.provider),
        )
        .await
        .map_err(|e| format!("The token exchange failed: {e}."))?;
    // A refresh of the old grant running now must not overwrite the new one (it stores
    // only over the version it refreshed; the lock keeps this process's in order).
    let lock = engine.lock_for(key);
    let _guard = lock.lock().await;
    if pending.pending_changes.is_some() {
        let mut changed = row.clone();
        changed.updated_at = state.now();
        state
            .db
            .update_connection_definition(&changed)
            .await
            .map_err(|e| AppError::from(e).into_api_error().message().to_string())?;
    }
    let now = state.now();
    let grant = state.sealed_grant(key, answer, None, now);
    state
        .db
        .store_connection_grant(key, &grant, None, None, now)
        .await
        .map_err(|e| AppError::from(e).into_api_error().message().to_string())?;
    super::manage::announce_grant(state, key, pending.elicitation_id.as_deref()).await;
    if pending.pending_changes.is_some() && key.person.is_some() {
        // The template's client or scopes changed: everyone's sessions start anew with it.
        state
            .db
            .announce(super::CONNECTION_CHANGED, Some(&row.id))
            .await;
    }
    tracing::info!(connection = %row.id, per_person = key.person.is_some(), "connection authorized");
    Ok(())
}

/// The page the popup ends on: tells the opener (same origin only) and closes itself; the
/// text stays readable when there is no opener.
fn popup_page(
    state: &AppState,
    status: StatusCode,
    title: &str,
    id: &str,
    error: Option<&str>,
) -> Response {
    let message = json!({
        "type": "gatehouse:connection",
        "id": id,
        "ok": error.is_none(),
        "error": error,
    });
    let script = format!(
        "(function(){{var m={};var o=window.opener;if(o&&!o.closed){{o.postMessage(m,{});{}}}}})();",
        script_json(&message),
        script_json(&Value::String(state.public_origin.clone())),
        if error.is_none() {
            "setTimeout(function(){window.close();},300);"
        } else {
            ""
        }
    );
    let parts: Vec<Part<'_>> = match error {
        Some(e) => vec![
            Part::Text(e),
            Part::Text("You can close this window and try again from the Connections page."),
        ],
        None => vec![Part::Text(
            "You can close this window. If your MCP client sent you here, go back to it: the call it was making works now.",
        )],
    };
    page(status, title, &parts, Some(&script))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::server::db::connections::ConnectionState;

    use super::*;
    use crate::model::connections::ConnectionInput;
    use crate::server::connections::builtin::{Providers, builtin_providers};
    use crate::server::connections::provider::validate;
    use crate::server::http::OutboundPolicy;

    const REDIRECT: &str = "https://gatehouse.example/connections/oauth/callback";

    /// The authorization request a built-in provider's connection sends, as query pairs.
    fn request_for(
        slug: &str,
        fields: &[(&str, &str)],
        scopes: &[&str],
    ) -> (Url, HashMap<String, String>) {
        let input = ConnectionInput {
            provider: slug.into(),
            instance_fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            client_id: "client-1".into(),
            client_secret: Some("secret-1".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..ConnectionInput::default()
        };
        let policy = OutboundPolicy {
            allow_http: false,
            allow_private: false,
        };
        let providers = Providers::builtin();
        let d =
            validate(input, policy, false, &providers).unwrap_or_else(|e| panic!("{slug}: {e}"));
        let row = ConnectionRow {
            id: "c1".into(),
            name: d.name,
            description: d.description,
            provider: d.provider,
            provider_type: d.provider_type,
            grant_type: d.grant_type,
            registration: "manual".into(),
            client_id: d.client_id,
            client_secret: None,
            authorization_url: d.authorization_url,
            token_url: d.token_url,
            scopes: serde_json::to_string(&d.scopes).unwrap(),
            revocation_url: d.revocation_url,
            introspection_url: d.introspection_url,
            provider_domain_url: d.provider_domain_url,
            token_auth_method: d.token_auth_method,
            pkce: if d.pkce { "s256" } else { "off" }.into(),
            extra_auth_params: serde_json::to_string(&d.extra_auth_params).unwrap(),
            resource: d.resource,
            instance_fields: serde_json::to_string(&d.instance_fields).unwrap(),
            registration_client_uri: None,
            registration_access_token: None,
            registered_at: None,
            status: ConnectionState::New,
            last_error: None,
            last_error_at: None,
            failures: 0,
            retry_at: None,
            lease_owner: None,
            lease_until: None,
            created_by: "t".into(),
            created_at: 0,
            updated_at: 0,
            per_person: 0,
        };
        let mut url = Url::parse(row.authorization_url.as_deref().unwrap()).unwrap();
        let verifier = (row.pkce == "s256").then_some("verifier-verifier-verifier-verifier-0123");
        authorization_request(
            &mut url,
            &row,
            providers.find(slug),
            "client-1",
            REDIRECT,
            "st",
            verifier,
        );
        let pairs = url.query_pairs().into_owned().collect();
        (url, pairs)
    }

    /// Each provider's fixture (`providers/fixtures/<slug>.json`, written from its public
    /// docs): the exact authorization URL, a first token answer, a refresh answer (none for
    /// providers that never refresh) and its error shapes.
    #[test]
    fn every_provider_matches_its_fixture() {
        use crate::server::connections::provider_client::{oauth_error, parse_token_response};
        let providers = Providers::builtin();
        for p in builtin_providers() {
            let slug = p.slug.as_str();
            let path = format!(
                "{}/providers/fixtures/{slug}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{slug}: every provider needs a fixture: {path}: {e}"));
            let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
            let fields: Vec<(String, String)> = fixture["instance_fields"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let (url, _) = request_for(slug, &fields, &[]);
            assert_eq!(
                url.as_str(),
                fixture["authorization_url"].as_str().unwrap(),
                "{slug}: the authorization URL"
            );

            let parse = |case: &serde_json::Value, what: &str| {
                let body = case["answer"].as_object().unwrap();
                assert!(oauth_error(body).is_none(), "{slug} {what}");
                let t = parse_token_response(body, providers.token_shape(slug))
                    .unwrap_or_else(|e| panic!("{slug} {what}: {e}"));
                assert_eq!(
                    t.access_token.expose(),
                    case["access_token"].as_str().unwrap(),
                    "{slug} {what}"
                );
                assert_eq!(
                    t.refresh_token.as_ref().map(|r| r.expose()),
                    case["refresh_token"].as_str(),
                    "{slug} {what}"
                );
                assert_eq!(t.expires_in, case["expires_in"].as_i64(), "{slug} {what}");
            };
            parse(&fixture["token"], "token answer");
            match &fixture["refresh"] {
                serde_json::Value::Null => {
                    assert!(
                        !providers.refreshes(slug),
                        "{slug}: a refresh answer is missing"
                    )
                }
                refresh => {
                    assert!(providers.refreshes(slug), "{slug}");
                    parse(refresh, "refresh answer");
                }
            }
            let errors = fixture["errors"].as_array().unwrap();
            assert!(!errors.is_empty(), "{slug}: error shapes");
            for case in errors {
                let err = oauth_error(case["answer"].as_object().unwrap())
                    .unwrap_or_else(|| panic!("{slug}: {} is an error", case["answer"]));
                let code = case["error"].as_str().unwrap();
                assert!(err.to_string().contains(code), "{slug}: {err}");
                assert_eq!(
                    err.is_dead_grant(providers.dead_grant_errors(slug)),
                    case["needs_reauth"].as_bool().unwrap(),
                    "{slug}: does {code} need a new authorization?"
                );
            }
        }
    }

    #[test]
    fn the_code_exchange_carries_the_providers_own_parameters() {
        let providers = Providers::builtin();
        let form = code_exchange_form(
            "c0de".into(),
            REDIRECT,
            Some("v"),
            None,
            providers.code_exchange_params("shopify"),
        );
        assert_eq!(
            form,
            vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", "c0de".into()),
                ("redirect_uri", REDIRECT.into()),
                ("code_verifier", "v".into()),
                ("expiring", "1".into()),
            ]
        );
        let form = code_exchange_form(
            "c".into(),
            REDIRECT,
            None,
            Some("https://mcp.asana.com/v2"),
            providers.code_exchange_params("asana_mcp"),
        );
        assert_eq!(form.len(), 4);
        assert_eq!(form[3], ("resource", "https://mcp.asana.com/v2".into()));
    }

    #[test]
    fn every_builtin_provider_builds_its_authorization_request() {
        for p in builtin_providers() {
            let fields: Vec<(&str, &str)> = p
                .instance_fields
                .iter()
                .map(|f| {
                    (
                        f.name.as_str(),
                        if f.name == "shop" {
                            "my-store"
                        } else {
                            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
                        },
                    )
                })
                .collect();
            let (url, q) = request_for(&p.slug, &fields, &[]);
            assert_eq!(q["response_type"], "code", "{}", p.slug);
            assert_eq!(q["client_id"], "client-1");
            assert_eq!(q["redirect_uri"], REDIRECT);
            assert_eq!(q["state"], "st");
            assert_eq!(
                q.contains_key("code_challenge"),
                p.pkce == "s256",
                "{}",
                p.slug
            );
            match &p.scope_param {
                Some(param) => {
                    let defaults = p.default_scopes().join(&p.scope_separator);
                    assert_eq!(q[param.as_str()], defaults, "{}: default scopes", p.slug);
                }
                None => assert!(
                    !q.contains_key("scope") && !q.contains_key("user_scope"),
                    "{}: no scope parameter",
                    p.slug
                ),
            }
            for (k, v) in &p.extra_auth_params {
                assert_eq!(&q[k.as_str()], v, "{}", p.slug);
            }
            assert_eq!(q.get("resource"), p.resource.as_ref(), "{}", p.slug);
            assert_eq!(url.scheme(), "https");
        }
    }

    #[test]
    fn provider_quirks_in_the_authorization_request() {
        let (_, google) = request_for("google", &[], &["openid", "email"]);
        assert_eq!(google["scope"], "openid email");
        assert_eq!(google["access_type"], "offline");
        assert_eq!(google["prompt"], "consent");

        let (_, slack) = request_for("slack", &[], &["search:read", "users:read"]);
        assert_eq!(slack["user_scope"], "search:read,users:read");
        assert!(
            !slack.contains_key("scope"),
            "Slack user tokens: user_scope only"
        );

        let (_, asana_mcp) = request_for("asana_mcp", &[], &["default"]);
        assert!(
            !asana_mcp.contains_key("scope"),
            "Asana MCP refuses any scope parameter"
        );
        assert_eq!(asana_mcp["resource"], "https://mcp.asana.com/v2");

        let (_, atlassian) = request_for(
            "atlassian",
            &[("cloud_id", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")],
            &["read:jira-work"],
        );
        assert_eq!(atlassian["audience"], "api.atlassian.com");
        assert_eq!(atlassian["prompt"], "consent");

        let (_, linear) = request_for("linear", &[], &["read"]);
        assert_eq!(linear["actor"], "user");

        let (url, shopify) = request_for("shopify", &[("shop", "my-store")], &["read_products"]);
        assert_eq!(url.host_str(), Some("my-store.myshopify.com"));
        assert!(shopify.contains_key("code_challenge"));

        for (slug, pkce) in [
            ("github", false),
            ("github_mcp", true),
            ("sentry", true),
            ("slack_mcp", true),
        ] {
            let (_, q) = request_for(slug, &[], &[]);
            assert_eq!(q.contains_key("code_challenge"), pkce, "{slug}");
        }
    }

    #[test]
    fn injected_instance_fields_are_refused_before_any_url() {
        let input = |slug: &str, k: &str, v: &str| ConnectionInput {
            provider: slug.into(),
            instance_fields: vec![(k.into(), v.into())],
            client_id: "c".into(),
            client_secret: Some("s".into()),
            ..ConnectionInput::default()
        };
        let policy = OutboundPolicy {
            allow_http: false,
            allow_private: false,
        };
        for shop in [
            "evil.com/",
            "evil.com#",
            "Shop",
            "my.store",
            "a?b=c",
            "@evil.com",
            "",
        ] {
            assert!(
                validate(
                    input("shopify", "shop", shop),
                    policy,
                    false,
                    &Providers::builtin()
                )
                .is_err(),
                "{shop:?}"
            );
        }
        for id in [
            "not-a-uuid",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/../x",
            "",
        ] {
            assert!(
                validate(
                    input("atlassian", "cloud_id", id),
                    policy,
                    false,
                    &Providers::builtin()
                )
                .is_err(),
                "{id:?}"
            );
        }
        let providers = Providers::builtin();
        assert!(
            validate(input("shopify", "host", "x"), policy, false, &providers).is_err(),
            "unknown field"
        );
        assert!(
            validate(input("nope", "x", "y"), policy, false, &providers)
                .unwrap_err()
                .contains("Unknown provider")
        );
    }
}
