//! Fresh access tokens, centrally. A token is refreshed when it is within the refresh skew
//! of its expiry; however many callers ask at once, one refresh runs per connection: in
//! this process they queue on a lock, across replicas on a lease in the database, and every
//! waiter re-reads the stored grant before refreshing, so a refresh someone else just
//! finished is reused. The rotated refresh token is stored in the same transaction as the
//! new access token before anyone is handed the access token.

use crate::server::audit::{self, Actor, Event};
use std::time::Duration;

use futures::StreamExt;
use url::Url;

use super::provider::GRANT_CLIENT_CREDENTIALS;
use super::provider_client::{ClientAuth, ProviderError, TokenResponse};
use crate::server::clock::UnixTime;
use crate::server::db::connections::{
    ConnectionRow, ConnectionState, GrantKey, NewGrant, TokenRow,
};
use crate::server::error::AppError;
use crate::server::secrets::{SecretString, random_id};
use crate::server::state::AppState;

/// An access token handed to a caller.
#[derive(Debug, Clone)]
pub struct FreshToken {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_at: Option<UnixTime>,
    pub scope: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("No connection with this id.")]
    NotFound,
    /// A per-person connection asked for without a person, or a shared one with a person.
    #[error("{0}")]
    WrongKind(String),
    #[error("The connection {0:?} is not connected yet: connect it first.")]
    NotConnected(String),
    #[error("The connection {name:?} needs re-authorization: {reason}")]
    NeedsReauth { name: String, reason: String },
    #[error("The connection {name:?} cannot be refreshed right now: {reason}")]
    Failing { name: String, reason: String },
    #[error(transparent)]
    Internal(#[from] AppError),
}

impl BrokerError {
    /// A connection already marked `needs_reauth`, with the reason recorded then.
    fn dead_grant(row: &ConnectionRow) -> Self {
        BrokerError::NeedsReauth {
            name: row.name.clone(),
            reason: row
                .last_error
                .clone()
                .unwrap_or_else(|| "the grant is no longer valid".into()),
        }
    }
}

impl From<crate::server::db::DbError> for BrokerError {
    fn from(e: crate::server::db::DbError) -> Self {
        BrokerError::Internal(e.into())
    }
}

impl From<BrokerError> for AppError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::NotFound => AppError::NotFound(e.to_string()),
            BrokerError::WrongKind(_) => AppError::BadRequest(e.to_string()),
            BrokerError::NotConnected(_) | BrokerError::NeedsReauth { .. } => {
                AppError::Conflict(e.to_string())
            }
            BrokerError::Failing { .. } => AppError::BadGateway(e.to_string()),
            BrokerError::Internal(e) => e,
        }
    }
}

/// What waiting for a grant's refresh lease came to.
enum Lease {
    /// Taken, under this owner name.
    Held(String),
    /// Someone else stored a newer grant meanwhile.
    Refreshed(TokenRow),
}

/// How many grants the background pass renews at once.
const RENEWALS_AT_ONCE: usize = 8;

/// Transient failures back off: 5 s, 10 s, 20 s … up to 10 minutes.
pub fn backoff(failures: i64) -> i64 {
    (5i64 << failures.clamp(0, 10)).min(600)
}

/// How long a refresh lease lasts: longer than one provider call can take.
fn lease_seconds(call_timeout: Duration) -> i64 {
    call_timeout.as_secs() as i64 * 2 + 5
}

/// Whether the stored token can be handed out as is: no expiry, or valid for longer than
/// `min_validity` seconds.
fn usable(tokens: &TokenRow, now: UnixTime, min_validity: i64) -> bool {
    tokens.expires_at.is_none_or(|at| at > now + min_validity)
}

fn not_expired(tokens: &TokenRow, now: UnixTime) -> bool {
    tokens.expires_at.is_none_or(|at| at > now)
}

impl AppState {
    fn fresh(&self, key: GrantKey<'_>, tokens: &TokenRow) -> Result<FreshToken, BrokerError> {
        Ok(FreshToken {
            access_token: self
                .connections
                .open_grant(key, "access_token", &tokens.access_token)?,
            token_type: tokens.token_type.clone(),
            expires_at: tokens.expires_at,
            scope: tokens.scope.clone(),
        })
    }

    pub(crate) fn client_auth(&self, row: &ConnectionRow) -> Result<ClientAuth, BrokerError> {
        let client_id = row
            .client_id
            .clone()
            .ok_or_else(|| BrokerError::NotConnected(row.name.clone()))?;
        let client_secret = match &row.client_secret {
            Some(sealed) => Some(self.connections.open(&row.id, "client_secret", sealed)?),
            None => None,
        };
        Ok(ClientAuth {
            client_id,
            client_secret,
            method: row.token_auth_method.clone(),
        })
    }

    /// A built-in provider's display name (with `PROVIDER_OVERRIDES` applied).
    pub fn provider_name(&self, slug: &str) -> Option<String> {
        self.connections
            .providers
            .find(slug)
            .map(|p| p.name.clone())
    }

    /// Where a grant stands (a person's, for the pages that offer them Connect).
    pub async fn grant_status(
        &self,
        key: GrantKey<'_>,
    ) -> Result<crate::model::connections::ConnectionStatus, AppError> {
        let row = self
            .db
            .find_connection_for(key)
            .await?
            .ok_or_else(|| AppError::NotFound("No connection with this id.".into()))?;
        let tokens = self.db.find_connection_tokens(key).await?;
        Ok(super::manage::status_of(
            row.status,
            &row.grant_type,
            tokens.as_ref(),
            self.now(),
        ))
    }

    /// The ids of the per-person connections (fixed at creation).
    pub async fn per_person_connections(
        &self,
    ) -> Result<std::collections::HashSet<String>, AppError> {
        Ok(self.db.per_person_connection_ids().await?)
    }

    /// A connection's name, for messages about it (its id when there is no such connection).
    pub async fn connection_name(&self, id: &str) -> Result<Option<String>, AppError> {
        Ok(self.db.find_connection(id).await?.map(|c| c.name))
    }

    /// Someone the connection's token is for (an upstream MCP server) refused a token this
    /// Gatehouse had just refreshed: the grant is of no use there, and only a new authorization
    /// helps. The connection says so from now on (`needs_reauth`).
    pub async fn report_refused_token(
        &self,
        key: GrantKey<'_>,
        reason: &str,
    ) -> Result<(), AppError> {
        self.db
            .record_connection_failure(
                key,
                ConnectionState::NeedsReauth,
                reason,
                None,
                None,
                self.now(),
            )
            .await?;
        self.audit_grant("connection.needs_reauth", key, self.now(), Some(reason))
            .await;
        Ok(())
    }

    /// What happened to a grant, in the audit trail: Gatehouse itself acted (a refresh), or
    /// learnt that the grant needs its person again. `problem`: what went wrong.
    async fn audit_grant(
        &self,
        action: &'static str,
        key: GrantKey<'_>,
        now: UnixTime,
        problem: Option<&str>,
    ) {
        let mut event = Event::new(action, Actor::System)
            .on("connection", key.connection)
            .detail(serde_json::json!({
                "person": key.person,
                "reason": problem.map(|p| p.chars().take(300).collect::<String>()),
            }));
        if problem.is_some() {
            event = event.failed();
        }
        audit::record(&self.db, now, event).await;
    }

    /// Step-up (an upstream's 403 `insufficient_scope`): the connection asks for `required`
    /// too from now on, and the grant must be authorized again. The scopes it will ask for.
    pub async fn widen_scopes(
        &self,
        key: GrantKey<'_>,
        required: &str,
    ) -> Result<Vec<String>, AppError> {
        let mut row = self
            .db
            .find_connection(key.connection)
            .await?
            .ok_or_else(|| AppError::NotFound("No connection with this id.".into()))?;
        let mut scopes: Vec<String> = serde_json::from_str(&row.scopes).unwrap_or_default();
        let before = scopes.len();
        for scope in required.split_whitespace() {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_string());
            }
        }
        if scopes.len() != before {
            row.scopes = serde_json::to_string(&scopes).expect("scopes serialize");
            // A registered client may be limited to the scopes it registered with: the next
            // Connect registers anew, with these.
            if row.registration == "dynamic" {
                super::manage::retire_client(self, &mut row).await;
            }
            row.updated_at = self.now();
            self.db.update_connection_definition(&row).await?;
        }
        let reason = format!(
            "the resource asked for more access (insufficient_scope): authorize again with {}",
            scopes.join(" ")
        );
        self.report_refused_token(key, &reason).await?;
        Ok(scopes)
    }

    /// A usable access token of a grant (the shared one, or a person's own), refreshed first
    /// when it expires within the refresh skew. `force`: refresh even so (the caller just got
    /// a 401 with this token), unless someone refreshed since the caller last looked.
    pub async fn connection_token(
        &self,
        key: GrantKey<'_>,
        force: bool,
    ) -> Result<FreshToken, BrokerError> {
        self.ensure_fresh(key, self.connections.refresh_skew, force)
            .await
    }

    pub(crate) async fn ensure_fresh(
        &self,
        key: GrantKey<'_>,
        min_validity: i64,
        force: bool,
    ) -> Result<FreshToken, BrokerError> {
        let seen = self.db.find_connection_tokens(key).await?;
        if let Some(tokens) = &seen
            && !force
            && usable(tokens, self.now(), min_validity)
        {
            return self.fresh(key, tokens);
        }
        let seen_version = seen.as_ref().map(|t| t.version);

        let lock = self.connections.lock_for(key);
        let _guard = lock.lock().await;
        // Someone may have refreshed while we queued.
        let row = self
            .db
            .find_connection_for(key)
            .await?
            .ok_or(BrokerError::NotFound)?;
        match (row.is_per_person(), key.person) {
            (true, None) => {
                return Err(BrokerError::WrongKind(format!(
                    "The connection {:?} is per person: each person has their own grant, so say whose token you want.",
                    row.name
                )));
            }
            (false, Some(_)) => {
                return Err(BrokerError::WrongKind(format!(
                    "The connection {:?} is shared: it has one grant, not one per person.",
                    row.name
                )));
            }
            _ => {}
        }
        let tokens = self.db.find_connection_tokens(key).await?;
        let now = self.now();
        if let Some(t) = &tokens {
            let refreshed_meanwhile = seen_version.is_some_and(|v| v != t.version);
            if refreshed_meanwhile || (!force && usable(t, now, min_validity)) {
                return self.fresh(key, t);
            }
        }
        if row.status == ConnectionState::NeedsReauth {
            return Err(BrokerError::dead_grant(&row));
        }
        let client_credentials = row.grant_type == GRANT_CLIENT_CREDENTIALS;
        match tokens {
            Some(t) if (t.refresh_token.is_some() && self.connections.providers.refreshes(&row.provider)) || client_credentials => {
                self.renew_detached(key, &row, Some(t), now, force).await
            }
            // Nothing to refresh with: hand out what there is while it lasts.
            Some(t) if not_expired(&t, now) && !force => self.fresh(key, &t),
            Some(t) if not_expired(&t, now) => Err(BrokerError::NeedsReauth {
                name: row.name.clone(),
                reason: "the provider gave no refresh token, so the access token cannot be renewed; connect again for a new one".into(),
            }),
            Some(_) => {
                let reason = "the access token expired and the provider gave no refresh token";
                self.db
                    .record_connection_failure(key, ConnectionState::NeedsReauth, reason, None, None, now)
                    .await?;
                self.audit_grant("connection.needs_reauth", key, now, Some(reason)).await;
                Err(BrokerError::NeedsReauth {
                    name: row.name.clone(),
                    reason: reason.into(),
                })
            }
            None if client_credentials => {
                self.renew_detached(key, &row, None, now, force).await
            }
            None => Err(BrokerError::NotConnected(row.name.clone())),
        }
    }

    /// Takes a grant's refresh lease for something that must not run beside a refresh (a
    /// disconnect), waiting for a refresh in flight on another replica to finish. Returns the
    /// owner name to release it with.
    pub(crate) async fn hold_refresh_lease(
        &self,
        key: GrantKey<'_>,
    ) -> Result<String, BrokerError> {
        match self.take_lease(key, key.connection, None).await? {
            Lease::Held(owner) => Ok(owner),
            Lease::Refreshed(_) => unreachable!("nothing was watched"),
        }
    }

    /// Takes a grant's refresh lease, waiting while another owner holds a live one. `watch`:
    /// the grant version the caller saw; a grant stored since then ends the wait
    /// (`Refreshed`), its refresh being the one the caller wanted.
    async fn take_lease(
        &self,
        key: GrantKey<'_>,
        name: &str,
        watch: Option<Option<i64>>,
    ) -> Result<Lease, BrokerError> {
        let owner = format!("{}:{}", self.connections.instance, random_id());
        let lease = lease_seconds(self.connections.call_timeout);
        let deadline = std::time::Instant::now() + Duration::from_secs(lease as u64);
        while !self
            .db
            .try_connection_lease(key, &owner, self.now(), self.now() + lease)
            .await?
        {
            if std::time::Instant::now() > deadline {
                return Err(BrokerError::Failing {
                    name: name.to_string(),
                    reason: "another Gatehouse replica is refreshing it and has not finished"
                        .into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            match (self.db.find_connection_tokens(key).await?, watch) {
                (Some(t), Some(seen)) if Some(t.version) != seen => {
                    return Ok(Lease::Refreshed(t));
                }
                // A person's lease lives on their grant: revoked meanwhile, nothing to lease.
                (None, _) if key.person.is_some() => {
                    return Err(BrokerError::NotConnected(name.to_string()));
                }
                _ => {}
            }
        }
        Ok(Lease::Held(owner))
    }

    /// `renew` in a task of its own: a caller that gives up (a tool call cancelled, an
    /// upstream's timeout) must not cancel a refresh between the provider's answer and
    /// storing it, which would lose a rotated refresh token. The refresh finishes and is
    /// stored; the caller just stops waiting.
    async fn renew_detached(
        &self,
        key: GrantKey<'_>,
        row: &ConnectionRow,
        tokens: Option<TokenRow>,
        now: UnixTime,
        force: bool,
    ) -> Result<FreshToken, BrokerError> {
        let (state, row) = (self.clone(), row.clone());
        let (connection, person) = (key.connection.to_string(), key.person.map(str::to_string));
        tokio::spawn(async move {
            let key = GrantKey {
                connection: &connection,
                person: person.as_deref(),
            };
            state.renew(key, &row, tokens, now, force).await
        })
        .await
        .map_err(|e| BrokerError::Internal(AppError::internal(e)))?
    }

    /// Runs the refresh (or client-credentials fetch) under the cross-replica lease.
    async fn renew(
        &self,
        key: GrantKey<'_>,
        row: &ConnectionRow,
        tokens: Option<TokenRow>,
        now: UnixTime,
        force: bool,
    ) -> Result<FreshToken, BrokerError> {
        if let (Some(retry_at), false) = (row.retry_at, force)
            && retry_at > now
        {
            return match tokens.filter(|t| not_expired(t, now)) {
                Some(t) => self.fresh(key, &t),
                None => Err(BrokerError::Failing {
                    name: row.name.clone(),
                    reason: format!(
                        "{} (next attempt in {} s)",
                        row.last_error
                            .as_deref()
                            .unwrap_or("the last attempt failed"),
                        retry_at - now
                    ),
                }),
            };
        }
        let seen_version = tokens.as_ref().map(|t| t.version);
        // Another replica may hold the lease: wait for its result rather than racing it.
        let owner = match self.take_lease(key, &row.name, Some(seen_version)).await? {
            Lease::Held(owner) => owner,
            Lease::Refreshed(t) => return self.fresh(key, &t),
        };
        // Between our read and the lease, another replica may have finished.
        let current = self.db.find_connection_tokens(key).await?;
        if let Some(t) = &current
            && Some(t.version) != seen_version
        {
            self.db.release_connection_lease(key, &owner).await?;
            return self.fresh(key, t);
        }
        // What another replica recorded while we waited (a dead grant, a back-off) holds.
        let row = &self
            .db
            .find_connection_for(key)
            .await?
            .ok_or(BrokerError::NotFound)?;
        let now = self.now();
        let blocked = if row.status == ConnectionState::NeedsReauth {
            Some(BrokerError::dead_grant(row))
        } else if current.is_none() && row.grant_type != GRANT_CLIENT_CREDENTIALS {
            // Disconnected meanwhile: there is nothing to refresh.
            Some(BrokerError::NotConnected(row.name.clone()))
        } else if row.retry_at.is_some_and(|at| at > now) && row.failures > 0 && !force {
            Some(BrokerError::Failing {
                name: row.name.clone(),
                reason: row
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the last attempt failed".into()),
            })
        } else {
            None
        };
        if let Some(e) = blocked {
            self.db.release_connection_lease(key, &owner).await?;
            return match current
                .filter(|t| not_expired(t, now) && !matches!(e, BrokerError::NeedsReauth { .. }))
            {
                Some(t) => self.fresh(key, &t),
                None => Err(e),
            };
        }

        let result = self.call_token_endpoint(key, row, current.as_ref()).await;
        let now = self.now();
        match result {
            Ok(answer) => {
                let old_refresh = current.as_ref().and_then(|t| t.refresh_token.clone());
                let grant = self.sealed_grant(key, answer, old_refresh, now);
                let replaces = current.as_ref().map(|t| t.version);
                let stored = self
                    .db
                    .store_connection_grant(key, &grant, replaces, Some(&owner), now)
                    .await?;
                if !stored {
                    // Disconnected or re-authorized while we refreshed: the newer state wins.
                    self.db.release_connection_lease(key, &owner).await?;
                    return match self.db.find_connection_tokens(key).await? {
                        Some(t) => self.fresh(key, &t),
                        None => Err(BrokerError::NotConnected(row.name.clone())),
                    };
                }
                tracing::info!(connection = %row.id, per_person = key.person.is_some(), "connection token renewed");
                crate::server::metrics::connection_refresh(key.connection, "ok", now);
                self.audit_grant("connection.refreshed", key, now, None)
                    .await;
                let stored = self
                    .db
                    .find_connection_tokens(key)
                    .await?
                    .ok_or_else(|| AppError::internal("the grant just stored is gone"))?;
                self.fresh(key, &stored)
            }
            Err(e)
                if e.is_dead_grant(self.connections.providers.dead_grant_errors(&row.provider)) =>
            {
                let reason = e.to_string();
                tracing::warn!(connection = %row.id, per_person = key.person.is_some(), error = %reason, "connection grant refused by the provider");
                crate::server::metrics::connection_refresh(key.connection, "needs_reauth", now);
                self.audit_grant("connection.needs_reauth", key, now, Some(&reason))
                    .await;
                self.db
                    .record_connection_failure(
                        key,
                        ConnectionState::NeedsReauth,
                        &reason,
                        None,
                        Some(&owner),
                        now,
                    )
                    .await?;
                Err(BrokerError::NeedsReauth {
                    name: row.name.clone(),
                    reason,
                })
            }
            Err(e) => {
                let reason = e.to_string();
                let retry_at = now + backoff(row.failures);
                tracing::warn!(connection = %row.id, per_person = key.person.is_some(), error = %reason, retry_at, "connection refresh failed");
                crate::server::metrics::connection_refresh(key.connection, "failing", now);
                self.audit_grant("connection.failing", key, now, Some(&reason))
                    .await;
                self.db
                    .record_connection_failure(
                        key,
                        ConnectionState::Failing,
                        &reason,
                        Some(retry_at),
                        Some(&owner),
                        now,
                    )
                    .await?;
                match current.filter(|t| not_expired(t, now) && !force) {
                    Some(t) => self.fresh(key, &t),
                    None => Err(BrokerError::Failing {
                        name: row.name.clone(),
                        reason,
                    }),
                }
            }
        }
    }

    async fn call_token_endpoint(
        &self,
        key: GrantKey<'_>,
        row: &ConnectionRow,
        current: Option<&TokenRow>,
    ) -> Result<TokenResponse, ProviderError> {
        let token_url =
            Url::parse(&row.token_url).map_err(|e| ProviderError::Refused(e.to_string()))?;
        let auth = self
            .client_auth(row)
            .map_err(|e| ProviderError::Refused(e.to_string()))?;
        let mut form: Vec<(&'static str, String)> = Vec::new();
        match current.and_then(|t| t.refresh_token.as_ref()) {
            Some(sealed) => {
                let refresh = self
                    .connections
                    .open_grant(key, "refresh_token", sealed)
                    .map_err(|e| ProviderError::Refused(e.to_string()))?;
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", refresh.expose().to_string()));
            }
            None => {
                form.push(("grant_type", "client_credentials".into()));
                let scopes: Vec<String> = serde_json::from_str(&row.scopes).unwrap_or_default();
                if !scopes.is_empty() {
                    form.push(("scope", scopes.join(" ")));
                }
            }
        }
        if let Some(resource) = &row.resource {
            form.push(("resource", resource.clone()));
        }
        self.connections
            .provider_client()
            .token(
                &token_url,
                &auth,
                form,
                self.connections.providers.token_shape(&row.provider),
            )
            .await
    }

    /// Seals a token answer for storage. A provider that omits the refresh token on a
    /// refresh keeps the old one valid: keep it.
    pub fn sealed_grant(
        &self,
        key: GrantKey<'_>,
        answer: TokenResponse,
        old_refresh_sealed: Option<String>,
        now: UnixTime,
    ) -> NewGrant {
        let engine = &self.connections;
        NewGrant {
            access_token: engine.seal_grant(key, "access_token", answer.access_token.expose()),
            refresh_token: answer
                .refresh_token
                .map(|r| engine.seal_grant(key, "refresh_token", r.expose()))
                .or(old_refresh_sealed),
            token_type: answer.token_type,
            scope: answer.scope,
            expires_at: answer.expires_in.map(|s| now + s),
        }
    }

    /// One pass of background upkeep: renew grants that expire within the next window (so an
    /// idle connection stays usable and client-credentials tokens are replaced before they
    /// lapse) and drop expired authorization states. Returns how many were renewed.
    pub async fn connections_maintenance(&self, window: i64) -> Result<usize, AppError> {
        let now = self.now();
        self.db.purge_connection_states(now).await?;
        let min_validity = self.connections.refresh_skew + window;
        let due = self.db.connections_due(now, now + min_validity).await?;
        // People's grants multiply the calls to one provider: a few at a time, not all.
        let renewed = futures::stream::iter(due)
            .map(|(id, person)| async move {
                let key = GrantKey {
                    connection: &id,
                    person: person.as_deref(),
                };
                match self.ensure_fresh(key, min_validity, false).await {
                    Ok(_) => 1,
                    Err(e) => {
                        tracing::debug!(connection = %id, error = %e, "background renewal skipped");
                        0
                    }
                }
            })
            .buffer_unordered(RENEWALS_AT_ONCE)
            .fold(0, |sum, n| async move { sum + n })
            .await;
        Ok(renewed)
    }
}

/// Runs `connections_maintenance` every `interval` (aborted at shutdown).
pub async fn run_maintenance(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if !state
            .db
            .take_turn("connections_renewal", state.now(), interval)
            .await
        {
            continue;
        }
        // Twice the interval: a token must not expire between two passes.
        if let Err(e) = state
            .connections_maintenance(interval.as_secs() as i64 * 2)
            .await
        {
            tracing::warn!(error = %e, "connection maintenance failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), 5);
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(3), 40);
        assert_eq!(backoff(50), 600);
    }
}
