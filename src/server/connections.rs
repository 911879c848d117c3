//! Connections: Gatehouse as an OAuth client of third-party providers. The engine holds the
//! keys and policies; `broker` hands out fresh access tokens (one refresh per connection at a
//! time, across replicas); `flow` runs the popup authorization; `manage` is what the UI and
//! the REST API call.

pub mod broker;
pub mod builtin;
pub mod discovery;
pub mod flow;
pub mod link;
pub mod manage;
pub mod provider;
pub mod provider_client;

pub use broker::{BrokerError, FreshToken};
pub use builtin::{BuiltinProvider, Providers};
pub use discovery::{CLIENT_METADATA_PATH, SignInRequest};
pub use link::LINK_PATH;
pub use manage::{fresh_token, overview};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::server::db::connections::GrantKey;
use crate::server::http::Outbound;
use crate::server::secrets::{Sealer, SecretString, random_id};

/// Change topic: a connection's grant or definition changed (key: its id): connected again,
/// edited, disconnected or deleted. Who holds sessions opened with its tokens starts anew.
pub const CONNECTION_CHANGED: &str = "connection_changed";

/// Change topic: one person's grant of a per-person connection arrived, was replaced or was
/// revoked (key: `grant_change_key`). Only that person's upstream sessions start anew.
pub const CONNECTION_GRANT_CHANGED: &str = "connection_grant_changed";

/// The key of a `CONNECTION_GRANT_CHANGED` change: the connection, the person, and the URL
/// elicitation the grant completes, if any.
pub fn grant_change_key(connection: &str, person: &str, elicitation: Option<&str>) -> String {
    match elicitation {
        Some(id) => format!("{connection}\n{person}\n{id}"),
        None => format!("{connection}\n{person}"),
    }
}

/// What a `CONNECTION_GRANT_CHANGED` key names (`grant_change_key`).
pub fn parse_grant_change_key(key: &str) -> Option<(&str, &str, Option<&str>)> {
    let mut parts = key.splitn(3, '\n');
    Some((parts.next()?, parts.next()?, parts.next()))
}

/// Where providers send the browser back to.
pub const CALLBACK_PATH: &str = "/connections/oauth/callback";

/// How long an authorization request may take at the provider (`state` lifetime).
pub const STATE_TTL: i64 = 600;

/// The associated data of a grant's sealed column. People are named by a hash: the context
/// is not stored, but it need not spell out an email either.
fn grant_context(key: GrantKey<'_>, column: &str) -> String {
    match key.person {
        None => format!("connection/{}/{column}", key.connection),
        Some(person) => format!(
            "connection/{}/person/{}/{column}",
            key.connection,
            crate::server::secrets::sha256_hex(person)
        ),
    }
}

#[derive(Clone)]
pub struct ConnectionsEngine {
    pub sealer: Sealer,
    pub outbound: Outbound,
    /// `PUBLIC_URL` + `CALLBACK_PATH`.
    pub callback_url: String,
    pub public_origin: String,
    /// Refresh a token this many seconds before it expires (`CONNECTIONS_REFRESH_SKEW`).
    pub refresh_skew: i64,
    /// Deadline for each call to a provider (`OUTBOUND_TIMEOUT`).
    pub call_timeout: Duration,
    /// The built-in providers, with `PROVIDER_OVERRIDES` applied.
    pub providers: builtin::Providers,
    /// Names this process as the holder of refresh leases.
    instance: String,
    /// One lock per connection: callers in this process queue behind the refresh that is
    /// running instead of starting their own.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl ConnectionsEngine {
    pub fn new(
        sealer: Sealer,
        outbound: Outbound,
        public_origin: &str,
        refresh_skew: i64,
        call_timeout: Duration,
        providers: builtin::Providers,
    ) -> Self {
        ConnectionsEngine {
            sealer,
            outbound,
            callback_url: format!("{public_origin}{CALLBACK_PATH}"),
            public_origin: public_origin.to_string(),
            refresh_skew,
            call_timeout,
            providers,
            instance: random_id(),
            locks: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The grant's in-process lock: refreshes, and writes that replace the grant
    /// (callback, disconnect), take it.
    pub(crate) fn lock_for(&self, key: GrantKey<'_>) -> Arc<tokio::sync::Mutex<()>> {
        let id = match key.person {
            None => key.connection.to_string(),
            Some(person) => format!("{}\n{person}", key.connection),
        };
        let mut locks = self.locks.lock().expect("the lock table is never poisoned");
        // Forget locks nobody holds or waits for, so the table does not grow forever.
        if locks.len() > 256 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(id).or_default().clone()
    }

    pub fn provider_client(&self) -> provider_client::ProviderClient<'_> {
        provider_client::ProviderClient {
            outbound: &self.outbound,
            timeout: self.call_timeout,
        }
    }

    /// Seals a secret for one column of one connection: a sealed value moved elsewhere does
    /// not open.
    pub fn seal(&self, connection_id: &str, column: &str, value: &str) -> String {
        self.sealer
            .seal(value, &format!("connection/{connection_id}/{column}"))
    }

    /// Seals a grant's secret: a person's is bound to the person too, so a value copied to
    /// another person's row does not open. The shared grant's binding is the connection's.
    pub fn seal_grant(&self, key: GrantKey<'_>, column: &str, value: &str) -> String {
        self.sealer.seal(value, &grant_context(key, column))
    }

    pub fn open_grant(
        &self,
        key: GrantKey<'_>,
        column: &str,
        sealed: &str,
    ) -> Result<SecretString, crate::server::error::AppError> {
        self.sealer
            .open(sealed, &grant_context(key, column))
            .map_err(|e| {
                crate::server::error::AppError::internal(format!(
                    "cannot open {column} of a grant of connection {}: {e}",
                    key.connection
                ))
            })
    }

    pub fn open(
        &self,
        connection_id: &str,
        column: &str,
        sealed: &str,
    ) -> Result<SecretString, crate::server::error::AppError> {
        self.sealer
            .open(sealed, &format!("connection/{connection_id}/{column}"))
            .map_err(|e| {
                crate::server::error::AppError::internal(format!(
                    "cannot open {column} of connection {connection_id}: {e}"
                ))
            })
    }
}
