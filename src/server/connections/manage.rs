//! What the Connections page and the REST API do with connections.

use serde_json::{Value, json};
use url::Url;

use super::provider::{Definition, GRANT_CLIENT_CREDENTIALS, validate};
use super::provider_client::masked;
use crate::model::connections::{
    ConnectStart, ConnectionInput, ConnectionStatus, ConnectionView, ConnectionsOverview,
    GrantView, PersonGrantView, ProviderAnswerView, ReauthorizeChanges,
};
use crate::server::audit::{self, Event};
use crate::server::auth::{AuthMethod, Identity};
use crate::server::db::connections::{
    ConnectionRow, ConnectionState, GrantKey, PersonGrantRow, TokenRow,
};
use crate::server::error::AppError;
use crate::server::secrets::random_id;
use crate::server::state::AppState;

/// A token that cannot be refreshed shows as expiring this long before it expires.
const EXPIRING_WINDOW: i64 = 15 * 60;

/// The message of the reference product, so users searching for it find the cause.
const NO_REGISTRATION: &str = "No registration_client_uri or registration_access_token found: Sync AS and Push AS need a dynamically registered client, which is registered on the first Connect.";

/// Where a grant stands, from its recorded health and its tokens.
pub(super) fn status_of(
    health: ConnectionState,
    grant_type: &str,
    tokens: Option<&TokenRow>,
    now: i64,
) -> ConnectionStatus {
    let refreshable =
        tokens.is_some_and(|t| t.refresh_token.is_some()) || grant_type == GRANT_CLIENT_CREDENTIALS;
    match (health, tokens) {
        (ConnectionState::NeedsReauth, _) => ConnectionStatus::NeedsReauth,
        (ConnectionState::Failing, _) => ConnectionStatus::Failing,
        (_, None) => ConnectionStatus::NotConnected,
        (_, Some(t)) if t.expires_at.is_some_and(|at| at <= now) && !refreshable => {
            ConnectionStatus::NeedsReauth
        }
        (_, Some(t))
            if t.expires_at.is_some_and(|at| at <= now + EXPIRING_WINDOW) && !refreshable =>
        {
            ConnectionStatus::Expiring
        }
        _ => ConnectionStatus::Connected,
    }
}

/// When the background pass renews a grant next: the retry after a failure, else the first
/// pass once the token has less than `lead` seconds left; None when it never will.
fn next_refresh(
    health: ConnectionState,
    grant_type: &str,
    tokens: Option<&TokenRow>,
    retry_at: Option<i64>,
    lead: i64,
) -> Option<i64> {
    let tokens = tokens?;
    let refreshable = tokens.refresh_token.is_some() || grant_type == GRANT_CLIENT_CREDENTIALS;
    match health {
        ConnectionState::NeedsReauth => None,
        ConnectionState::Failing => retry_at,
        _ if !refreshable => None,
        _ => tokens.expires_at.map(|at| at - lead),
    }
}

/// How long before expiry the background pass renews a grant (see `run_maintenance`); only
/// the skew, at the next use, when the pass is off.
pub(crate) fn refresh_lead(state: &AppState) -> i64 {
    state.connections.refresh_skew + 2 * state.config.connections_refresh_interval as i64
}

fn person_grant_view(grant: &PersonGrantRow, now: i64, lead: i64) -> PersonGrantView {
    PersonGrantView {
        failures: grant.failures,
        next_refresh_at: next_refresh(grant.status, "", Some(&grant.tokens), grant.retry_at, lead),
        person: grant.person.clone(),
        status: status_of(grant.status, "", Some(&grant.tokens), now),
        scope: grant.tokens.scope.clone(),
        expires_at: grant.tokens.expires_at,
        obtained_at: grant.tokens.obtained_at,
        refreshed_at: grant.tokens.refreshed_at,
        last_error: grant.last_error.clone(),
        last_error_at: grant.last_error_at,
    }
}

/// A per-person connection seen by one person: the template with that person's grant and
/// health in place of the shared ones.
fn as_seen_by(
    row: &ConnectionRow,
    own: Option<&PersonGrantRow>,
) -> (ConnectionRow, Option<TokenRow>) {
    let mut seen = row.clone();
    seen.status = own.map_or(ConnectionState::New, |g| g.status);
    seen.last_error = own.and_then(|g| g.last_error.clone());
    seen.last_error_at = own.and_then(|g| g.last_error_at);
    seen.failures = own.map_or(0, |g| g.failures);
    seen.retry_at = own.and_then(|g| g.retry_at);
    (seen, own.map(|g| g.tokens.clone()))
}

pub fn view(row: &ConnectionRow, tokens: Option<&TokenRow>, now: i64, lead: i64) -> ConnectionView {
    let status = status_of(row.status, &row.grant_type, tokens, now);
    ConnectionView {
        failures: row.failures,
        next_refresh_at: next_refresh(row.status, &row.grant_type, tokens, row.retry_at, lead),
        id: row.id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        provider: row.provider.clone(),
        provider_type: row.provider_type.clone(),
        grant_type: row.grant_type.clone(),
        dynamic_registration: row.registration == "dynamic",
        client_id: row.client_id.clone(),
        has_client_secret: row.client_secret.is_some(),
        authorization_url: row.authorization_url.clone(),
        token_url: row.token_url.clone(),
        scopes: serde_json::from_str(&row.scopes).unwrap_or_default(),
        revocation_url: row.revocation_url.clone(),
        introspection_url: row.introspection_url.clone(),
        provider_domain_url: row.provider_domain_url.clone(),
        token_auth_method: row.token_auth_method.clone(),
        pkce: row.pkce == "s256",
        extra_auth_params: serde_json::from_str(&row.extra_auth_params).unwrap_or_default(),
        resource: row.resource.clone(),
        instance_fields: serde_json::from_str(&row.instance_fields).unwrap_or_default(),
        registered: row.registration_client_uri.is_some()
            && row.registration_access_token.is_some(),
        per_person: row.is_per_person(),
        grants: Vec::new(),
        status,
        last_error: row.last_error.clone(),
        last_error_at: row.last_error_at,
        grant: tokens.map(|t| GrantView {
            token_type: t.token_type.clone(),
            scope: t.scope.clone(),
            expires_at: t.expires_at,
            has_refresh_token: t.refresh_token.is_some(),
            obtained_at: t.obtained_at,
            refreshed_at: t.refreshed_at,
        }),
        created_at: row.created_at,
        updated_at: row.updated_at,
        notices: Vec::new(),
    }
}

/// Every connection for an admin, each per-person one with everyone's grants. A member's
/// list is "my connections": the per-person connections, each with their own grant and
/// nothing of the client or the endpoints; shared connections are for admins.
pub async fn overview(
    state: &AppState,
    caller: &Identity,
) -> Result<ConnectionsOverview, AppError> {
    let now = state.now();
    let lead = refresh_lead(state);
    let admin = caller.is_admin();
    let grants = state
        .db
        .list_person_grants(None, (!admin).then_some(caller.subject.as_str()))
        .await?;
    let mut items = Vec::new();
    for (row, tokens) in state.db.list_connections().await? {
        if row.is_per_person() {
            let mine: Vec<&PersonGrantRow> = grants
                .iter()
                .filter(|g| g.tokens.connection_id == row.id)
                .collect();
            items.push(per_person_view(&row, &mine, caller, now, lead));
        } else if admin {
            items.push(view(&row, tokens.as_ref(), now, lead));
        }
    }
    Ok(ConnectionsOverview {
        can_manage: admin,
        items,
        redirect_uri: state.connections.callback_url.clone(),
        now,
    })
}

/// A per-person connection for `caller`: their own grant's status, and the grants they may
/// see (`grants`: everyone's for an admin, their own for a member, who sees no client and
/// no endpoint either).
fn per_person_view(
    row: &ConnectionRow,
    grants: &[&PersonGrantRow],
    caller: &Identity,
    now: i64,
    lead: i64,
) -> ConnectionView {
    let own = grants.iter().copied().find(|g| g.person == caller.subject);
    let (seen, tokens) = as_seen_by(row, own);
    let mut v = view(&seen, tokens.as_ref(), now, lead);
    v.grants = grants
        .iter()
        .filter(|g| caller.is_admin() || g.person == caller.subject)
        .map(|g| person_grant_view(g, now, lead))
        .collect();
    if !caller.is_admin() {
        v.client_id = None;
        v.has_client_secret = false;
        v.authorization_url = None;
        v.token_url = String::new();
        v.revocation_url = None;
        v.introspection_url = None;
        v.provider_domain_url = None;
        v.token_auth_method = String::new();
        v.extra_auth_params = Vec::new();
        v.resource = None;
        v.instance_fields = Vec::new();
        v.registered = false;
    }
    v
}

/// One connection as `caller` sees it (an admin; see `overview`).
pub async fn get(
    state: &AppState,
    caller: &Identity,
    id: &str,
) -> Result<ConnectionView, AppError> {
    let row = find(state, id).await?;
    let now = state.now();
    if row.is_per_person() {
        let grants = state.db.list_person_grants(Some(id), None).await?;
        let grants: Vec<&PersonGrantRow> = grants.iter().collect();
        return Ok(per_person_view(
            &row,
            &grants,
            caller,
            now,
            refresh_lead(state),
        ));
    }
    let tokens = state
        .db
        .find_connection_tokens(GrantKey::shared(id))
        .await?;
    Ok(view(&row, tokens.as_ref(), now, refresh_lead(state)))
}

/// The grant a caller means: the shared one, or on a per-person connection, `person`'s
/// (only an admin may name someone else) or else the caller's own.
pub fn grant_key<'a>(
    row: &'a ConnectionRow,
    caller: &'a Identity,
    person: Option<&'a str>,
) -> Result<GrantKey<'a>, AppError> {
    if !row.is_per_person() {
        if person.is_some() {
            return Err(AppError::BadRequest(format!(
                "The connection {:?} is shared: it has one grant, not one per person, so do not name a person.",
                row.name
            )));
        }
        caller.require_admin()?;
        return Ok(GrantKey::shared(&row.id));
    }
    match person {
        Some(p) if p != caller.subject => {
            caller.require_admin()?;
            Ok(GrantKey::person(&row.id, p))
        }
        _ => Ok(GrantKey::person(&row.id, &caller.subject)),
    }
}

/// A fresh access token of the connection with this id or name (the id first), for `caller`:
/// a person's own grant of a per-person connection unless `person` names another's, which
/// only an admin may have. Recorded in the audit trail (never the token).
pub async fn fresh_token(
    state: &AppState,
    caller: &Identity,
    connection: &str,
    person: Option<&str>,
    force: bool,
) -> Result<super::broker::FreshToken, AppError> {
    let row = match state.db.find_connection(connection).await? {
        Some(row) => row,
        None => state
            .db
            .find_connection_by_name(connection)
            .await?
            .ok_or_else(|| {
                AppError::NotFound(format!("There is no connection named {connection:?}."))
            })?,
    };
    if row.is_per_person() && person.is_none() && caller.method == AuthMethod::CommandLine {
        return Err(AppError::BadRequest(format!(
            "The connection {:?} is per person: name the person whose grant you want.",
            row.name
        )));
    }
    let key = grant_key(&row, caller, person)?;
    let fresh = state.connection_token(key, force).await?;
    let mut event =
        Event::new("connection.token_fetched", caller.actor()).on("connection", &row.id);
    if let Some(person) = key.person {
        event = event.detail(json!({"person": person, "forced": force}));
    } else {
        event = event.detail(json!({"forced": force}));
    }
    audit::record(&state.db, state.now(), event).await;
    Ok(fresh)
}

async fn find(state: &AppState, id: &str) -> Result<ConnectionRow, AppError> {
    state
        .db
        .find_connection(id)
        .await?
        .ok_or_else(|| AppError::NotFound("No connection with this id.".into()))
}

fn checked(
    state: &AppState,
    input: ConnectionInput,
    has_secret: bool,
) -> Result<Definition, AppError> {
    validate(
        input,
        state.connections.outbound.policy,
        has_secret,
        &state.connections.providers,
    )
    .map_err(AppError::BadRequest)
}

/// Drops an RFC 7591 registration's management handle.
fn forget_registration(row: &mut ConnectionRow) {
    row.registration_client_uri = None;
    row.registration_access_token = None;
    row.registered_at = None;
}

/// RFC 7592 DELETE of the row's client registration, when it has one it can manage.
async fn delete_registration(state: &AppState, row: &ConnectionRow) -> Result<(), String> {
    let (Some(uri), Some(sealed)) = (&row.registration_client_uri, &row.registration_access_token)
    else {
        return Ok(());
    };
    let token = state
        .connections
        .open(&row.id, "registration_access_token", sealed)
        .map_err(|e| e.to_string())?;
    let uri = Url::parse(uri).map_err(|e| e.to_string())?;
    state
        .connections
        .provider_client()
        .manage_registration(reqwest::Method::DELETE, &uri, &token, None)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A dynamically registered client replaced by a new registration (wider scopes, another
/// authorization server): its registration is deleted at the provider (RFC 7592) so that
/// clients do not pile up there, and the next Connect registers anew. A registration that
/// cannot be deleted is logged and left to the provider's own clean-up.
pub(super) async fn retire_client(state: &AppState, row: &mut ConnectionRow) {
    if let Err(e) = delete_registration(state, row).await {
        tracing::warn!(connection = %row.id, error = %e, "the replaced client registration could not be deleted");
    }
    forget_client(row);
}

/// Drops a dynamically registered client altogether: the next Connect registers anew.
pub(super) fn forget_client(row: &mut ConnectionRow) {
    row.client_id = None;
    row.client_secret = None;
    forget_registration(row);
}

/// Writes a validated definition into a row (sealing a new client secret).
fn apply(state: &AppState, row: &mut ConnectionRow, d: Definition) {
    let engine = &state.connections;
    let was_dynamic = row.registration == "dynamic";
    row.name = d.name;
    row.description = d.description;
    row.provider_type = d.provider_type;
    row.grant_type = d.grant_type;
    row.registration = if d.dynamic_registration {
        "dynamic"
    } else {
        "manual"
    }
    .into();
    if d.dynamic_registration {
        if !was_dynamic {
            // Registered on the next Connect.
            forget_client(row);
        }
    } else {
        if row.client_id.as_deref() != d.client_id.as_deref() || was_dynamic {
            // Another client: a registration made for the old one does not apply.
            forget_registration(row);
            if was_dynamic {
                row.client_secret = None;
            }
        }
        row.client_id = d.client_id;
        if let Some(secret) = d.client_secret {
            row.client_secret = Some(engine.seal(&row.id, "client_secret", &secret));
        }
        row.token_auth_method = d.token_auth_method;
    }
    row.authorization_url = d.authorization_url;
    row.token_url = d.token_url;
    row.scopes = serde_json::to_string(&d.scopes).expect("strings serialize");
    row.revocation_url = d.revocation_url;
    row.introspection_url = d.introspection_url;
    row.provider_domain_url = d.provider_domain_url;
    row.pkce = if d.pkce { "s256" } else { "off" }.into();
    row.extra_auth_params = serde_json::to_string(&d.extra_auth_params).expect("strings serialize");
    row.resource = d.resource;
    row.instance_fields = serde_json::to_string(&d.instance_fields).expect("strings serialize");
}

pub async fn create(
    state: &AppState,
    identity: &Identity,
    input: ConnectionInput,
) -> Result<ConnectionView, AppError> {
    let per_person = input.per_person;
    let d = checked(state, input, false)?;
    if per_person && d.grant_type == GRANT_CLIENT_CREDENTIALS {
        return Err(AppError::BadRequest(
            "A per-person connection needs the authorization code grant: each person signs in to their own account. Client credentials give one grant for the whole Gatehouse, so make it shared.".into(),
        ));
    }
    if state.db.connection_name_taken(&d.name, "").await? {
        return Err(AppError::Conflict(format!(
            "A connection named {:?} already exists.",
            d.name
        )));
    }
    if !d.notices.is_empty() {
        // The removed text itself is not logged: a pasted URL may carry a secret.
        tracing::info!("query strings removed from pasted connection URLs");
    }
    let now = state.now();
    let mut row = ConnectionRow {
        id: random_id(),
        name: String::new(),
        description: String::new(),
        provider: d.provider.clone(),
        provider_type: String::new(),
        grant_type: String::new(),
        registration: "manual".into(),
        client_id: None,
        client_secret: None,
        authorization_url: None,
        token_url: String::new(),
        scopes: "[]".into(),
        revocation_url: None,
        introspection_url: None,
        provider_domain_url: None,
        token_auth_method: d.token_auth_method.clone(),
        pkce: "off".into(),
        extra_auth_params: "[]".into(),
        resource: None,
        instance_fields: "[]".into(),
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
        created_by: identity.subject.clone(),
        created_at: now,
        updated_at: now,
        per_person: i64::from(per_person),
    };
    let notices = d.notices.clone();
    apply(state, &mut row, d);
    state.db.insert_connection(&row).await?;
    tracing::info!(connection = %row.id, name = %row.name, "connection created");
    let event = Event::new("connection.created", identity.actor())
        .on("connection", &row.id)
        .detail(connection_detail(&row));
    audit::record(&state.db, now, event).await;
    if row.grant_type == GRANT_CLIENT_CREDENTIALS {
        // No popup: the first token is fetched in the background.
        let state = state.clone();
        let id = row.id.clone();
        tokio::spawn(async move {
            if let Err(e) = state.connection_token(GrantKey::shared(&id), false).await {
                tracing::warn!(connection = %id, error = %e, "first client credentials token failed");
            }
        });
    }
    let mut view = if row.is_per_person() {
        per_person_view(&row, &[], identity, now, refresh_lead(state))
    } else {
        view(&row, None, now, refresh_lead(state))
    };
    view.notices = notices;
    Ok(view)
}

pub async fn update(
    state: &AppState,
    caller: &Identity,
    id: &str,
    input: ConnectionInput,
) -> Result<ConnectionView, AppError> {
    let mut row = find(state, id).await?;
    // A secret issued by a dynamic registration does not carry over to a manual client.
    let has_secret = row.client_secret.is_some() && row.registration == "manual";
    let d = checked(state, input, has_secret)?;
    let moved = endpoints_moved(&row, &d);
    if moved && !d.dynamic_registration && d.client_secret.is_none() {
        // The stored secret and tokens were given for the old host; they are not sent to a
        // new one on the strength of an edit.
        return Err(AppError::BadRequest(
            "The provider's endpoints now point at another host: enter the client secret again."
                .into(),
        ));
    }
    if state.db.connection_name_taken(&d.name, id).await? {
        return Err(AppError::Conflict(format!(
            "A connection named {:?} already exists.",
            d.name
        )));
    }
    if row.is_per_person() && d.grant_type == GRANT_CLIENT_CREDENTIALS {
        return Err(AppError::BadRequest(
            "This connection is per person: it needs the authorization code grant, each person signing in to their own account.".into(),
        ));
    }
    let notices = d.notices.clone();
    let dynamic = d.dynamic_registration;
    apply(state, &mut row, d);
    if moved && dynamic {
        // Registered at the old host: register anew at the next Connect.
        forget_client(&mut row);
    }
    row.updated_at = state.now();
    state.db.update_connection_definition(&row).await?;
    let event = Event::new("connection.edited", caller.actor())
        .on("connection", &row.id)
        .detail(connection_detail(&row));
    audit::record(&state.db, row.updated_at, event).await;
    state
        .db
        .announce(super::CONNECTION_CHANGED, Some(&row.id))
        .await;
    if moved {
        // Tokens of the old host are of no use at the new one.
        state
            .db
            .delete_connection_tokens(GrantKey::shared(id), state.now())
            .await?;
        state.db.delete_person_grants(id).await?;
    }
    let mut view = get(state, caller, id).await?;
    view.notices = notices;
    Ok(view)
}

/// Whether an edit sends the connection to another host (scheme, host or port of any
/// endpoint that receives secrets).
fn endpoints_moved(row: &ConnectionRow, d: &Definition) -> bool {
    let origin = |u: Option<&str>| u.and_then(|u| Url::parse(u).ok()).map(|u| u.origin());
    [
        (Some(row.token_url.as_str()), Some(d.token_url.as_str())),
        (row.revocation_url.as_deref(), d.revocation_url.as_deref()),
        (
            row.introspection_url.as_deref(),
            d.introspection_url.as_deref(),
        ),
        (
            row.provider_domain_url.as_deref(),
            d.provider_domain_url.as_deref(),
        ),
    ]
    .into_iter()
    .any(|(old, new)| new.is_some() && origin(old) != origin(new) && old.is_some())
}

/// Connect or re-authorize: the popup URL, or (client credentials) a token fetched now.
/// A shared connection is an admin's to connect; a per-person one, everyone's for their own
/// account. Changes to the client or the scopes are an admin's either way.
pub async fn connect(
    state: &AppState,
    identity: &Identity,
    id: &str,
    changes: Option<ReauthorizeChanges>,
) -> Result<ConnectStart, AppError> {
    let row = find(state, id).await?;
    if !row.is_per_person() || changes.is_some() {
        identity.require_admin()?;
    }
    let (effective, pending) = match changes {
        None => (row.clone(), None),
        Some(changes) => {
            let effective = with_changes(state, &row, changes)?;
            let pending = PendingChanges::of(&effective);
            (effective, Some(pending))
        }
    };
    if row.grant_type == GRANT_CLIENT_CREDENTIALS {
        // No user step to wait for: the changes apply now, and a token is fetched with them.
        if pending.is_some() {
            state.db.update_connection_definition(&effective).await?;
        }
        // The operator asks for a new attempt: past failures no longer hold it back.
        let key = GrantKey::shared(id);
        state.db.clear_connection_failure(key, state.now()).await?;
        state.connection_token(key, true).await?;
        let event = Event::new("connection.connected", identity.actor())
            .on("connection", id)
            .detail(json!({"grant_type": "client_credentials"}));
        audit::record(&state.db, state.now(), event).await;
        return Ok(ConnectStart::Connected);
    }
    let pending = pending.map(|p| p.seal(state, id));
    let url =
        super::flow::authorization_url(state, &effective, &identity.subject, pending, None).await?;
    Ok(ConnectStart::Popup { url })
}

/// The connection as it would be with a re-authorization's changes (validated like an edit).
fn with_changes(
    state: &AppState,
    row: &ConnectionRow,
    changes: ReauthorizeChanges,
) -> Result<ConnectionRow, AppError> {
    let mut input = ConnectionInput::from(&view(row, None, 0, 0));
    if let Some(client_id) = changes.client_id.filter(|c| !c.trim().is_empty()) {
        input.client_id = client_id;
    }
    input.client_secret = changes.client_secret.filter(|s| !s.is_empty());
    if let Some(scopes) = changes.scopes {
        input.scopes = scopes;
    }
    let has_secret = row.client_secret.is_some() && row.registration == "manual";
    let d = checked(state, input, has_secret)?;
    let mut effective = row.clone();
    apply(state, &mut effective, d);
    Ok(effective)
}

/// What a re-authorization changes, kept (sealed) with the authorization request until the
/// provider's answer: the client and the scopes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingChanges {
    client_id: Option<String>,
    /// Already sealed for the connection's `client_secret` column.
    client_secret: Option<String>,
    scopes: String,
    registration_client_uri: Option<String>,
    registration_access_token: Option<String>,
    registered_at: Option<i64>,
}

impl PendingChanges {
    fn of(row: &ConnectionRow) -> Self {
        PendingChanges {
            client_id: row.client_id.clone(),
            client_secret: row.client_secret.clone(),
            scopes: row.scopes.clone(),
            registration_client_uri: row.registration_client_uri.clone(),
            registration_access_token: row.registration_access_token.clone(),
            registered_at: row.registered_at,
        }
    }

    fn seal(&self, state: &AppState, id: &str) -> String {
        let json = serde_json::to_string(self).expect("the changes serialize");
        state.connections.seal(id, "pending_changes", &json)
    }

    /// The connection with the sealed changes applied (for the token exchange, and to be
    /// saved when it succeeds).
    pub fn apply(
        state: &AppState,
        row: &ConnectionRow,
        sealed: &str,
    ) -> Result<ConnectionRow, AppError> {
        let json = state.connections.open(&row.id, "pending_changes", sealed)?;
        let changes: PendingChanges =
            serde_json::from_str(json.expose()).map_err(AppError::internal)?;
        let mut row = row.clone();
        row.client_id = changes.client_id;
        row.client_secret = changes.client_secret;
        row.scopes = changes.scopes;
        row.registration_client_uri = changes.registration_client_uri;
        row.registration_access_token = changes.registration_access_token;
        row.registered_at = changes.registered_at;
        Ok(row)
    }
}

/// Revokes a grant at the provider (RFC 7009) when it has a revocation URL, then forgets it
/// here. Returns a warning when the provider could not be told. The shared grant is an
/// admin's to disconnect; a person's grant, that person's or an admin's (`person`).
pub async fn disconnect(
    state: &AppState,
    caller: &Identity,
    id: &str,
    person: Option<&str>,
) -> Result<Option<String>, AppError> {
    let row = find(state, id).await?;
    let key = grant_key(&row, caller, person)?;
    if key.person.is_some() && state.db.find_connection_tokens(key).await?.is_none() {
        return Err(AppError::NotFound(match key.person {
            Some(p) if p != caller.subject => format!("{p} has no grant of {:?}.", row.name),
            _ => format!("You have not connected {:?}.", row.name),
        }));
    }
    // Not in the middle of a refresh, here or on another replica: it would store tokens that
    // were never revoked.
    let lock = state.connections.lock_for(key);
    let _guard = lock.lock().await;
    let owner = state.hold_refresh_lease(key).await?;
    let revoked = revoke_at_provider(state, &row, key).await;
    let deleted = match &revoked {
        Ok(_) => state.db.delete_connection_tokens(key, state.now()).await,
        Err(_) => Ok(()),
    };
    // A person's lease went with their grant's row; the shared one is on the connection.
    state.db.release_connection_lease(key, &owner).await?;
    let warning = revoked?;
    deleted?;
    announce_grant(state, key, None).await;
    tracing::info!(connection = %id, per_person = key.person.is_some(), by = %caller.subject, "connection disconnected");
    // An admin ending someone else's grant is a revocation of it.
    let action = match key.person {
        Some(person) if person != caller.subject => "connection.grant_revoked",
        _ => "connection.disconnected",
    };
    let event = Event::new(action, caller.actor())
        .on("connection", id)
        .detail(json!({"person": key.person, "provider_warning": warning}));
    audit::record(&state.db, state.now(), event).await;
    Ok(warning)
}

/// What the trail says of a connection: its name and how it signs in, never a secret.
fn connection_detail(row: &ConnectionRow) -> Value {
    json!({
        "name": row.name,
        "provider": row.provider_type,
        "grant_type": row.grant_type,
        "per_person": row.per_person != 0,
        "scopes": row.scopes,
        "client_id": row.client_id,
    })
}

/// Tells this process and the other replicas that a grant changed: a person's grant ends
/// only that person's upstream sessions (and completes the URL elicitation it came from).
pub async fn announce_grant(state: &AppState, key: GrantKey<'_>, elicitation: Option<&str>) {
    match key.person {
        None => {
            state
                .db
                .announce(super::CONNECTION_CHANGED, Some(key.connection))
                .await
        }
        Some(person) => {
            state
                .db
                .announce(
                    super::CONNECTION_GRANT_CHANGED,
                    Some(&super::grant_change_key(
                        key.connection,
                        person,
                        elicitation,
                    )),
                )
                .await
        }
    }
}

async fn revoke_at_provider(
    state: &AppState,
    row: &ConnectionRow,
    key: GrantKey<'_>,
) -> Result<Option<String>, AppError> {
    let (Some(url), Some(tokens)) = (
        &row.revocation_url,
        state.db.find_connection_tokens(key).await?,
    ) else {
        return Ok(None);
    };
    let url = Url::parse(url).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let auth = state.client_auth(row)?;
    let engine = &state.connections;
    let client = engine.provider_client();
    // The refresh token first: revoking it ends the whole grant at most providers.
    let mut failures = Vec::new();
    if let Some(sealed) = &tokens.refresh_token {
        let token = engine.open_grant(key, "refresh_token", sealed)?;
        if let Err(e) = client.revoke(&url, &auth, &token, "refresh_token").await {
            failures.push(format!("refresh token: {e}"));
        }
    }
    let token = engine.open_grant(key, "access_token", &tokens.access_token)?;
    if let Err(e) = client.revoke(&url, &auth, &token, "access_token").await {
        failures.push(format!("access token: {e}"));
    }
    Ok((!failures.is_empty()).then(|| {
        let w = format!(
            "The tokens were deleted here, but the provider did not confirm the revocation ({}).",
            failures.join("; ")
        );
        tracing::warn!(connection = %row.id, warning = %w, "revocation at the provider failed");
        w
    }))
}

/// Deletes a connection: revokes its grant and deregisters a dynamically registered client
/// (RFC 7592) first, as far as the provider lets it.
pub async fn delete(
    state: &AppState,
    caller: &Identity,
    id: &str,
) -> Result<Option<String>, AppError> {
    let row = find(state, id).await?;
    let users = state.db.mcp_servers_using_connection(id).await?;
    if !users.is_empty() {
        return Err(AppError::Conflict(format!(
            "The connection {:?} is used by the MCP server{} {}: change or delete {} first.",
            row.name,
            if users.len() == 1 { "" } else { "s" },
            users.join(", "),
            if users.len() == 1 { "it" } else { "them" }
        )));
    }
    let mut warnings = Vec::new();
    if let Some(w) = revoke_at_provider(state, &row, GrantKey::shared(id)).await? {
        warnings.push(w);
    }
    // Every person's grant ends with the template; the provider hears of each.
    let grants = state.db.list_person_grants(Some(id), None).await?;
    let mut unconfirmed = 0;
    for grant in &grants {
        // One person's grant that cannot be revoked must not keep the others' from it.
        match revoke_at_provider(state, &row, GrantKey::person(id, &grant.person)).await {
            Ok(None) => {}
            Ok(Some(_)) => unconfirmed += 1,
            Err(e) => {
                tracing::warn!(connection = %id, error = %e, "a person's grant could not be revoked");
                unconfirmed += 1;
            }
        }
    }
    if unconfirmed > 0 {
        warnings.push(format!(
            "The provider did not confirm the revocation of {unconfirmed} of {} people's grants.",
            grants.len()
        ));
    }
    if let Err(e) = delete_registration(state, &row).await {
        warnings.push(format!(
            "The client registration at the provider could not be deleted: {e}"
        ));
    }
    state.db.delete_connection(id).await?;
    let event = Event::new("connection.deleted", caller.actor())
        .on("connection", id)
        .detail(json!({"name": row.name, "warnings": warnings}));
    audit::record(&state.db, state.now(), event).await;
    state.db.announce(super::CONNECTION_CHANGED, Some(id)).await;
    tracing::info!(connection = %id, "connection deleted");
    Ok((!warnings.is_empty()).then(|| warnings.join(" ")))
}

/// RFC 7662 introspection of the current access token (of a per-person connection: the
/// caller's own).
pub async fn introspect(
    state: &AppState,
    caller: &Identity,
    id: &str,
) -> Result<ProviderAnswerView, AppError> {
    let row = find(state, id).await?;
    let key = grant_key(&row, caller, None)?;
    let url = row.introspection_url.as_deref().ok_or_else(|| {
        AppError::BadRequest(
            "This connection has no introspection URL; add one under Advanced.".into(),
        )
    })?;
    let url = Url::parse(url).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let tokens = state.db.find_connection_tokens(key).await?.ok_or_else(|| {
        AppError::Conflict("The connection has no token to introspect: connect it first.".into())
    })?;
    let token = state
        .connections
        .open_grant(key, "access_token", &tokens.access_token)?;
    let auth = state.client_auth(&row)?;
    let body = state
        .connections
        .provider_client()
        .introspect(&url, &auth, &token)
        .await
        .map_err(|e| AppError::BadGateway(format!("Introspection failed: {e}")))?;
    let active = body.get("active").and_then(Value::as_bool);
    Ok(ProviderAnswerView {
        title: format!(
            "Token introspection: {}",
            if active == Some(true) {
                "active"
            } else {
                "inactive"
            }
        ),
        active,
        json: serde_json::to_string_pretty(&masked(body)).expect("JSON serializes"),
    })
}

fn registration_handle(
    state: &AppState,
    row: &ConnectionRow,
) -> Result<(Url, crate::server::secrets::SecretString), AppError> {
    let (Some(uri), Some(sealed)) = (&row.registration_client_uri, &row.registration_access_token)
    else {
        return Err(AppError::Conflict(NO_REGISTRATION.into()));
    };
    let uri = Url::parse(uri).map_err(|e| {
        AppError::BadGateway(format!("the registration_client_uri is not a URL: {e}"))
    })?;
    Ok((
        uri,
        state
            .connections
            .open(&row.id, "registration_access_token", sealed)?,
    ))
}

/// Keeps what RFC 7592 says may change in an answer: a rotated registration access token
/// and client secret.
async fn keep_rotations(
    state: &AppState,
    row: &ConnectionRow,
    body: &serde_json::Map<String, Value>,
) -> Result<(), AppError> {
    let engine = &state.connections;
    let rat = body
        .get("registration_access_token")
        .and_then(Value::as_str);
    let secret = body.get("client_secret").and_then(Value::as_str);
    if rat.is_none() && secret.is_none() {
        return Ok(());
    }
    let mut updated = row.clone();
    if let Some(rat) = rat {
        updated.registration_access_token =
            Some(engine.seal(&row.id, "registration_access_token", rat));
    }
    if let Some(secret) = secret {
        updated.client_secret = Some(engine.seal(&row.id, "client_secret", secret));
    }
    updated.updated_at = state.now();
    state.db.update_connection_definition(&updated).await?;
    Ok(())
}

/// Sync AS: reads the registration from the provider (RFC 7592 §2.1).
pub async fn sync_registration(state: &AppState, id: &str) -> Result<ProviderAnswerView, AppError> {
    let row = find(state, id).await?;
    let (uri, token) = registration_handle(state, &row)?;
    let body = state
        .connections
        .provider_client()
        .manage_registration(reqwest::Method::GET, &uri, &token, None)
        .await
        .map_err(|e| AppError::BadGateway(format!("Reading the registration failed: {e}")))?;
    keep_rotations(state, &row, &body).await?;
    Ok(ProviderAnswerView {
        title: "Client registration at the provider".into(),
        active: None,
        json: serde_json::to_string_pretty(&masked(body)).expect("JSON serializes"),
    })
}

/// Push AS: sends the local configuration (name, redirect URI, scopes) to the provider
/// (RFC 7592 §2.2).
pub async fn push_registration(state: &AppState, id: &str) -> Result<ProviderAnswerView, AppError> {
    let row = find(state, id).await?;
    let (uri, token) = registration_handle(state, &row)?;
    let metadata = super::flow::registration_metadata(
        state,
        &row,
        &row.token_auth_method,
        row.client_id.as_deref(),
    );
    let body = state
        .connections
        .provider_client()
        .manage_registration(reqwest::Method::PUT, &uri, &token, Some(&metadata))
        .await
        .map_err(|e| AppError::BadGateway(format!("Updating the registration failed: {e}")))?;
    keep_rotations(state, &row, &body).await?;
    Ok(ProviderAnswerView {
        title: "Client registration updated at the provider".into(),
        active: None,
        json: serde_json::to_string_pretty(&masked(body)).expect("JSON serializes"),
    })
}
