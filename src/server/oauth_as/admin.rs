//! Managing what the authorization server has issued: Settings › OAuth Clients and Settings ›
//! Sessions, and the same operations in the REST API.

use crate::model::oauth::{OAuthClientView, OAuthOverview, OAuthSessionView};
use crate::server::audit::{self, Actor, Event};
use crate::server::auth::Identity;
use crate::server::error::AppError;
use crate::server::state::AppState;

pub async fn list_clients(
    state: &AppState,
    caller: &Identity,
) -> Result<OAuthOverview<OAuthClientView>, AppError> {
    caller.require_admin()?;
    let now = state.now();
    let rows = state.db.list_oauth_clients(now).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let uris: Vec<String> = serde_json::from_str(&row.redirect_uris).unwrap_or_default();
        items.push(OAuthClientView {
            name: row.client_name.clone().unwrap_or_else(|| row.id.clone()),
            id: row.id,
            kind: row.kind,
            redirect_uris: uris,
            registered_at: row.created_at,
            last_used_at: row.last_used_at,
            consents: row.consents,
            sessions: row.sessions,
        });
    }
    Ok(OAuthOverview {
        enabled: state.oauth_as.is_some(),
        items,
        now,
    })
}

/// Drops every consent to the client and ends its sessions; the registration stays. The
/// client's next refresh gets `invalid_grant`, its next authorization asks again.
pub async fn revoke_consent(
    state: &AppState,
    client_id: &str,
    by: &Identity,
) -> Result<(), AppError> {
    by.require_admin()?;
    let by = by.subject.as_str();
    if state.db.find_oauth_client(client_id).await?.is_none() {
        return Err(AppError::NotFound(format!(
            "There is no OAuth client {client_id:?}."
        )));
    }
    state
        .db
        .revoke_client_consents(client_id, state.now())
        .await?;
    if let Some(oauth) = &state.oauth_as {
        oauth.revoked(&state.db).await;
    }
    tracing::info!(client_id = %client_id, by = %by, "OAuth consent revoked");
    let event =
        Event::new("consent.revoked", Actor::Person(by.to_string())).on("client", client_id);
    audit::record(&state.db, state.now(), event).await;
    Ok(())
}

/// Removes the registration with everything issued to it. A client that kept its
/// credentials gets `invalid_client` and registers again.
pub async fn delete_client(
    state: &AppState,
    client_id: &str,
    by: &Identity,
) -> Result<(), AppError> {
    by.require_admin()?;
    let by = by.subject.as_str();
    if !state.db.delete_oauth_client(client_id).await? {
        return Err(AppError::NotFound(format!(
            "There is no OAuth client {client_id:?}."
        )));
    }
    if let Some(oauth) = &state.oauth_as {
        oauth.revoked(&state.db).await;
    }
    tracing::info!(client_id = %client_id, by = %by, "OAuth client deleted");
    let event =
        Event::new("mcp_client.deleted", Actor::Person(by.to_string())).on("client", client_id);
    audit::record(&state.db, state.now(), event).await;
    Ok(())
}

/// Every live session for an admin; a member's own for a member.
pub async fn list_sessions(
    state: &AppState,
    caller: &Identity,
) -> Result<OAuthOverview<OAuthSessionView>, AppError> {
    let now = state.now();
    let only = (!caller.is_admin()).then_some(caller.subject.as_str());
    let items = state
        .db
        .list_live_sessions(now, only)
        .await?
        .into_iter()
        .map(|row| OAuthSessionView {
            client_name: row.client_name.unwrap_or_else(|| row.client_id.clone()),
            id: row.id,
            client_id: row.client_id,
            user: row.subject,
            scope: row.scope,
            started_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        })
        .collect();
    Ok(OAuthOverview {
        enabled: state.oauth_as.is_some(),
        items,
        now,
    })
}

/// Ends one session: its refresh tokens are gone and its access tokens refused at once.
/// A member may end their own sessions only; another's is not there for them.
pub async fn revoke_session(
    state: &AppState,
    session_id: &str,
    by: &Identity,
) -> Result<(), AppError> {
    let missing = || AppError::NotFound(format!("There is no live session {session_id:?}."));
    if !by.is_admin() {
        let family = state.db.find_family(session_id).await?;
        if !by.may_act_on(family.as_ref().map(|f| f.subject.as_str())) {
            return Err(missing());
        }
    }
    let by = by.subject.as_str();
    if !state.db.revoke_family(session_id, state.now()).await? {
        return Err(missing());
    }
    if let Some(oauth) = &state.oauth_as {
        oauth.revoked(&state.db).await;
    }
    tracing::info!(session = %session_id, by = %by, "OAuth session revoked");
    let event = Event::new("oauth_session.revoked", Actor::Person(by.to_string()))
        .on("session", session_id);
    audit::record(&state.db, state.now(), event).await;
    Ok(())
}

/// A registration never used is removed after this long.
pub const NEVER_USED_SECS: i64 = 24 * 60 * 60;

/// The clean-up of registrations: clients never used within a day of registering, and
/// clients unused for `idle_days` (`MCP_OAUTH_CLIENT_IDLE_DAYS`), go with their consents; a
/// client with a live session stays. Metadata-document clients are cached rows, fetched again
/// when next used. How many went.
pub async fn remove_idle_clients(
    state: &AppState,
    now: i64,
    idle_days: u32,
) -> Result<usize, AppError> {
    let (never_used_before, idle_before) =
        (now - NEVER_USED_SECS, now - i64::from(idle_days) * 86_400);
    let idle = state
        .db
        .idle_oauth_clients(now, never_used_before, idle_before)
        .await?;
    let mut removed = 0;
    for (client_id, name, last_used_at) in idle {
        let still_idle = state
            .db
            .delete_idle_oauth_client(&client_id, now, never_used_before, idle_before)
            .await?;
        if !still_idle {
            continue;
        }
        removed += 1;
        let reason = match last_used_at {
            None => "never used within a day of registering".to_string(),
            Some(_) => format!("unused for {idle_days} days"),
        };
        tracing::info!(client_id = %client_id, reason = %reason, "idle OAuth client removed");
        let event = Event::new("mcp_client.deleted", Actor::System)
            .on("client", &client_id)
            .detail(
                serde_json::json!({"name": name, "reason": reason, "last_used_at": last_used_at}),
            );
        audit::record(&state.db, now, event).await;
    }
    if removed > 0
        && let Some(oauth) = &state.oauth_as
    {
        oauth.revoked(&state.db).await;
    }
    Ok(removed)
}
