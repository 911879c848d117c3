//! What the consent page shows about a pending authorization.

use url::Url;

use super::clients::{ClientKind, redirect_uris};
use super::{NEW_CLIENT_SECS, SCOPE_MCP};
use crate::model::oauth::ConsentView;
use crate::server::auth::Identity;
use crate::server::error::AppError;
use crate::server::net::is_loopback_host;
use crate::server::state::AppState;

fn describe_scope(scope: &str) -> String {
    match scope {
        SCOPE_MCP => "Use this Gatehouse's MCP endpoint: list and call its tools (and those of the MCP servers behind it) as you.".into(),
        other => other.to_string(),
    }
}

fn is_loopback(uri: &str) -> bool {
    Url::parse(uri).is_ok_and(|u| u.scheme() == "http" && is_loopback_host(&u))
}

pub async fn consent_view(
    state: &AppState,
    identity: &Identity,
    request: &str,
) -> Result<ConsentView, AppError> {
    let expired = || {
        AppError::NotFound(
            "This authorization request has expired, was already answered, or belongs to someone else. Return to your MCP client and connect again.".into(),
        )
    };
    let Some(oauth) = state.oauth_as.as_ref() else {
        return Err(AppError::NotFound(
            "The authorization server is not enabled (MCP_OAUTH_ENABLED).".into(),
        ));
    };
    let now = state.now();
    let pending = state.db.find_pending(request).await?.ok_or_else(expired)?;
    if pending.subject != identity.subject || pending.expires_at <= now {
        return Err(expired());
    }
    let client = state
        .db
        .find_oauth_client(&pending.client_id)
        .await?
        .ok_or_else(expired)?;
    let redirect_to = Url::parse(&pending.redirect_uri)
        .map(|u| match u.host_str() {
            Some(host) => match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            },
            None => format!("{}:", u.scheme()),
        })
        .unwrap_or_default();
    Ok(ConsentView {
        csrf: oauth.consent_csrf(&pending.id, &identity.subject),
        request: pending.id.clone(),
        client_name: client
            .client_name
            .clone()
            .unwrap_or_else(|| client.id.clone()),
        metadata_document: client.kind == ClientKind::Cimd.as_str(),
        loopback_only: redirect_uris(&client).iter().all(|u| is_loopback(u)),
        newly_registered: now - client.created_at < NEW_CLIENT_SECS,
        registered_at: client.created_at,
        client_id: client.id,
        redirect_to,
        scopes: pending
            .scope
            .split_whitespace()
            .map(|s| (s.to_string(), describe_scope(s)))
            .collect(),
        user: identity.subject.clone(),
    })
}
