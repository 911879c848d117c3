//! Connections: definitions, their current grant, and the authorization requests in flight.
//! Secret columns hold sealed values; this layer never sees plain secrets.

use sqlx::FromRow;

use super::{Db, DbError};
use crate::server::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ConnectionRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub provider: String,
    pub provider_type: String,
    pub grant_type: String,
    pub registration: String,
    pub client_id: Option<String>,
    /// Sealed.
    pub client_secret: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: String,
    pub scopes: String,
    pub revocation_url: Option<String>,
    pub introspection_url: Option<String>,
    pub provider_domain_url: Option<String>,
    pub token_auth_method: String,
    pub pkce: String,
    pub extra_auth_params: String,
    pub resource: Option<String>,
    pub instance_fields: String,
    pub registration_client_uri: Option<String>,
    /// Sealed.
    pub registration_access_token: Option<String>,
    pub registered_at: Option<i64>,
    #[sqlx(try_from = "String")]
    pub status: ConnectionState,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub failures: i64,
    pub retry_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// 1: a template whose grants are each person's own (`connection_grants`); 0: shared.
    pub per_person: i64,
}

impl ConnectionRow {
    pub fn is_per_person(&self) -> bool {
        self.per_person != 0
    }
}

/// Whose grant of a connection: the shared one, or a person's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantKey<'a> {
    pub connection: &'a str,
    pub person: Option<&'a str>,
}

impl<'a> GrantKey<'a> {
    pub fn shared(connection: &'a str) -> Self {
        GrantKey {
            connection,
            person: None,
        }
    }

    pub fn person(connection: &'a str, person: &'a str) -> Self {
        GrantKey {
            connection,
            person: Some(person),
        }
    }
}

/// A person's grant with its health, for the lists.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PersonGrantRow {
    pub person: String,
    #[sqlx(flatten)]
    pub tokens: TokenRow,
    #[sqlx(try_from = "String")]
    pub status: ConnectionState,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub failures: i64,
    pub retry_at: Option<i64>,
}

/// Besides `TOKEN_COLUMNS`.
const PERSON_GRANT_COLUMNS: &str = "person, status, last_error, last_error_at, failures, retry_at";

/// A connection's `status` column, typed; the strings exist only here, at the storage edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Created, or reset by the operator: no failure on record.
    New,
    Connected,
    /// Token calls fail transiently: retried after `retry_at`.
    Failing,
    /// The grant is dead: only a new authorization helps.
    NeedsReauth,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::New => "new",
            ConnectionState::Connected => "connected",
            ConnectionState::Failing => "failing",
            ConnectionState::NeedsReauth => "needs_reauth",
        }
    }
}

impl TryFrom<String> for ConnectionState {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "new" => Ok(ConnectionState::New),
            "connected" => Ok(ConnectionState::Connected),
            "failing" => Ok(ConnectionState::Failing),
            "needs_reauth" => Ok(ConnectionState::NeedsReauth),
            other => Err(format!("unknown connection status {other:?}")),
        }
    }
}

const CONNECTION_COLUMNS: &str = "id, name, description, provider, provider_type, grant_type, \
     registration, client_id, client_secret, authorization_url, token_url, scopes, revocation_url, \
     introspection_url, provider_domain_url, token_auth_method, pkce, extra_auth_params, resource, \
     instance_fields, registration_client_uri, registration_access_token, registered_at, status, last_error, \
     last_error_at, failures, retry_at, lease_owner, lease_until, created_by, created_at, updated_at, \
     per_person";

/// The connection's columns with a person's health in place of the shared one's: what the
/// broker reads for that person's grant ($1 the connection, $2 the person).
const CONNECTION_FOR_PERSON: &str = "SELECT c.id, c.name, c.description, c.provider, \
     c.provider_type, c.grant_type, c.registration, c.client_id, c.client_secret, \
     c.authorization_url, c.token_url, c.scopes, c.revocation_url, c.introspection_url, \
     c.provider_domain_url, c.token_auth_method, c.pkce, c.extra_auth_params, c.resource, \
     c.instance_fields, c.registration_client_uri, c.registration_access_token, c.registered_at, \
     COALESCE(g.status, 'new') AS status, g.last_error, g.last_error_at, \
     COALESCE(g.failures, 0) AS failures, g.retry_at, g.lease_owner, g.lease_until, c.created_by, \
     c.created_at, c.updated_at, c.per_person FROM connections c LEFT JOIN connection_grants g \
     ON g.connection_id = c.id AND g.person = $2 WHERE c.id = $1";

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TokenRow {
    pub connection_id: String,
    /// Sealed.
    pub access_token: String,
    /// Sealed.
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub scope: Option<String>,
    pub expires_at: Option<i64>,
    pub obtained_at: i64,
    pub refreshed_at: Option<i64>,
    pub version: i64,
}

const TOKEN_COLUMNS: &str = "connection_id, access_token, refresh_token, token_type, scope, \
     expires_at, obtained_at, refreshed_at, version";

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StateRow {
    pub state_hash: String,
    pub connection_id: String,
    pub subject: String,
    /// Sealed.
    pub code_verifier: Option<String>,
    /// Sealed JSON of `ReauthorizeChanges`.
    pub pending_changes: Option<String>,
    pub redirect_uri: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Started from a link sent to an MCP client: the URL elicitation it completes.
    pub elicitation_id: Option<String>,
}

/// A grant to store: sealed values, as the token endpoint gave them.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub scope: Option<String>,
    pub expires_at: Option<i64>,
}

/// What a dynamic registration (RFC 7591) left behind: sealed secrets.
#[derive(Debug, Clone)]
pub struct Registration {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub token_auth_method: String,
    pub registration_client_uri: Option<String>,
    pub registration_access_token: Option<String>,
}

/// The table and row filter holding a grant's health and lease: the connection row for the
/// shared grant, the person's grant row otherwise ($1 the connection, $2 the person, bound
/// either way so that both texts take the same parameters).
fn grant_target(key: GrantKey<'_>) -> (&'static str, &'static str) {
    match key.person {
        None => ("connections", "id = $1 AND $2 = ''"),
        Some(_) => ("connection_grants", "connection_id = $1 AND person = $2"),
    }
}

/// The shared grant's health is on the connection row, whose `updated_at` follows it (the
/// time is parameter `$now`); a person's grant row has no such column.
fn touched(key: GrantKey<'_>, now: u8) -> String {
    match key.person {
        None => format!(", updated_at = ${now}"),
        Some(_) => String::new(),
    }
}

impl Db {
    pub async fn insert_connection(&self, row: &ConnectionRow) -> Result<(), DbError> {
        sqlx::query(&format!(
            "INSERT INTO connections ({CONNECTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, \
             $26, $27, $28, $29, $30, $31, $32, $33, $34)"
        ))
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.description)
        .bind(&row.provider)
        .bind(&row.provider_type)
        .bind(&row.grant_type)
        .bind(&row.registration)
        .bind(&row.client_id)
        .bind(&row.client_secret)
        .bind(&row.authorization_url)
        .bind(&row.token_url)
        .bind(&row.scopes)
        .bind(&row.revocation_url)
        .bind(&row.introspection_url)
        .bind(&row.provider_domain_url)
        .bind(&row.token_auth_method)
        .bind(&row.pkce)
        .bind(&row.extra_auth_params)
        .bind(&row.resource)
        .bind(&row.instance_fields)
        .bind(&row.registration_client_uri)
        .bind(&row.registration_access_token)
        .bind(row.registered_at)
        .bind(row.status.as_str())
        .bind(&row.last_error)
        .bind(row.last_error_at)
        .bind(row.failures)
        .bind(row.retry_at)
        .bind(&row.lease_owner)
        .bind(row.lease_until)
        .bind(&row.created_by)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.per_person)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Writes the operator-editable part of a connection (its definition and client
    /// credentials). A changed client drops the dynamic registration that belonged to the
    /// old one.
    pub async fn update_connection_definition(&self, row: &ConnectionRow) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE connections SET name = $2, description = $3, provider_type = $4, grant_type = $5, \
             registration = $6, client_id = $7, client_secret = $8, authorization_url = $9, \
             token_url = $10, scopes = $11, revocation_url = $12, introspection_url = $13, \
             provider_domain_url = $14, token_auth_method = $15, pkce = $16, extra_auth_params = $17, \
             resource = $18, registration_client_uri = $19, registration_access_token = $20, \
             registered_at = $21, updated_at = $22, instance_fields = $23 WHERE id = $1",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.description)
        .bind(&row.provider_type)
        .bind(&row.grant_type)
        .bind(&row.registration)
        .bind(&row.client_id)
        .bind(&row.client_secret)
        .bind(&row.authorization_url)
        .bind(&row.token_url)
        .bind(&row.scopes)
        .bind(&row.revocation_url)
        .bind(&row.introspection_url)
        .bind(&row.provider_domain_url)
        .bind(&row.token_auth_method)
        .bind(&row.pkce)
        .bind(&row.extra_auth_params)
        .bind(&row.resource)
        .bind(&row.registration_client_uri)
        .bind(&row.registration_access_token)
        .bind(row.registered_at)
        .bind(row.updated_at)
        .bind(&row.instance_fields)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// By name (names are unique).
    pub async fn find_connection_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ConnectionRow>, DbError> {
        Ok(sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn find_connection(&self, id: &str) -> Result<Option<ConnectionRow>, DbError> {
        Ok(sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn per_person_connection_ids(
        &self,
    ) -> Result<std::collections::HashSet<String>, DbError> {
        let ids: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM connections WHERE per_person <> 0")
                .fetch_all(self.pool())
                .await?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    pub async fn connection_name_taken(
        &self,
        name: &str,
        except_id: &str,
    ) -> Result<bool, DbError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT id FROM connections WHERE name = $1 AND id <> $2")
                .bind(name)
                .bind(except_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.is_some())
    }

    /// Every connection with its grant, newest first.
    pub async fn list_connections(
        &self,
    ) -> Result<Vec<(ConnectionRow, Option<TokenRow>)>, DbError> {
        let connections = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections ORDER BY created_at DESC, id"
        ))
        .fetch_all(self.pool())
        .await?;
        let tokens = sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM connection_tokens"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut by_id: std::collections::HashMap<String, TokenRow> = tokens
            .into_iter()
            .map(|t| (t.connection_id.clone(), t))
            .collect();
        Ok(connections
            .into_iter()
            .map(|c| {
                let t = by_id.remove(&c.id);
                (c, t)
            })
            .collect())
    }

    pub async fn delete_connection(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM connections WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The connection as the broker sees it for one grant: a person's grant brings its own
    /// health and lease (`new` when the person has none yet).
    pub async fn find_connection_for(
        &self,
        key: GrantKey<'_>,
    ) -> Result<Option<ConnectionRow>, DbError> {
        let Some(person) = key.person else {
            return self.find_connection(key.connection).await;
        };
        Ok(sqlx::query_as::<_, ConnectionRow>(CONNECTION_FOR_PERSON)
            .bind(key.connection)
            .bind(person)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn find_connection_tokens(
        &self,
        key: GrantKey<'_>,
    ) -> Result<Option<TokenRow>, DbError> {
        let (table, filter) = match key.person {
            None => ("connection_tokens", "$2 = ''"),
            Some(_) => ("connection_grants", "person = $2"),
        };
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM {table} WHERE connection_id = $1 AND {filter}"
        ))
        .bind(key.connection)
        .bind(key.person.unwrap_or(""))
        .fetch_optional(self.pool())
        .await?)
    }

    /// People's grants: of one connection, or of one person, or all.
    pub async fn list_person_grants(
        &self,
        connection: Option<&str>,
        person: Option<&str>,
    ) -> Result<Vec<PersonGrantRow>, DbError> {
        Ok(sqlx::query_as::<_, PersonGrantRow>(&format!(
            "SELECT {PERSON_GRANT_COLUMNS}, {TOKEN_COLUMNS} FROM connection_grants \
             WHERE ($1 IS NULL OR connection_id = $1) AND ($2 IS NULL OR person = $2) \
             ORDER BY connection_id, person"
        ))
        .bind(connection)
        .bind(person)
        .fetch_all(self.pool())
        .await?)
    }

    /// Stores a grant and marks it healthy, in one transaction: nobody reads a new access
    /// token whose rotated refresh token is not stored yet. Releases `owner`'s refresh lease.
    ///
    /// `replaces`: for a refresh, the version of the grant that was refreshed. When the
    /// stored grant is no longer that one (disconnected, or replaced by a new authorization
    /// meanwhile), nothing is written and `false` comes back. `None` stores a new grant
    /// (an authorization), replacing whatever was there.
    pub async fn store_connection_grant(
        &self,
        key: GrantKey<'_>,
        grant: &NewGrant,
        replaces: Option<i64>,
        owner: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, DbError> {
        if let Some(person) = key.person {
            return self
                .store_person_grant(key.connection, person, grant, replaces, owner, now)
                .await;
        }
        let id = key.connection;
        let mut tx = self.writer().begin().await?;
        let stored = match replaces {
            Some(version) => {
                sqlx::query(
                    "UPDATE connection_tokens SET access_token = $3, refresh_token = $4, token_type = $5, \
                     scope = $6, expires_at = $7, refreshed_at = $8, version = version + 1 \
                     WHERE connection_id = $1 AND version = $2",
                )
                .bind(id)
                .bind(version)
                .bind(&grant.access_token)
                .bind(&grant.refresh_token)
                .bind(&grant.token_type)
                .bind(&grant.scope)
                .bind(grant.expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1
            }
            None => {
                let previous: Option<(i64,)> =
                    sqlx::query_as("SELECT version FROM connection_tokens WHERE connection_id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                sqlx::query("DELETE FROM connection_tokens WHERE connection_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!(
                    "INSERT INTO connection_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)"
                ))
                .bind(id)
                .bind(&grant.access_token)
                .bind(&grant.refresh_token)
                .bind(&grant.token_type)
                .bind(&grant.scope)
                .bind(grant.expires_at)
                .bind(now)
                .bind(previous.map_or(1, |(v,)| v + 1))
                .execute(&mut *tx)
                .await?;
                true
            }
        };
        if !stored {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE connections SET status = 'connected', last_error = NULL, last_error_at = NULL, \
             failures = 0, retry_at = NULL, updated_at = $2, \
             lease_owner = CASE WHEN lease_owner = $3 THEN NULL ELSE lease_owner END, \
             lease_until = CASE WHEN lease_owner = $3 THEN NULL ELSE lease_until END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(owner.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A person's grant and its health are one row: one statement stores both.
    async fn store_person_grant(
        &self,
        id: &str,
        person: &str,
        grant: &NewGrant,
        replaces: Option<i64>,
        owner: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, DbError> {
        let done = match replaces {
            Some(version) => sqlx::query(
                "UPDATE connection_grants SET access_token = $4, refresh_token = $5, token_type = $6, \
                 scope = $7, expires_at = $8, refreshed_at = $9, version = version + 1, \
                 status = 'connected', last_error = NULL, last_error_at = NULL, failures = 0, \
                 retry_at = NULL, \
                 lease_owner = CASE WHEN lease_owner = $10 THEN NULL ELSE lease_owner END, \
                 lease_until = CASE WHEN lease_owner = $10 THEN NULL ELSE lease_until END \
                 WHERE connection_id = $1 AND person = $2 AND version = $3",
            )
            .bind(id)
            .bind(person)
            .bind(version)
            .bind(&grant.access_token)
            .bind(&grant.refresh_token)
            .bind(&grant.token_type)
            .bind(&grant.scope)
            .bind(grant.expires_at)
            .bind(now)
            .bind(owner.unwrap_or("")),
            // A new authorization replaces whatever the person had, lease included: a refresh
            // of the old grant then finds another version and stores nothing.
            None => sqlx::query(
                "INSERT INTO connection_grants (connection_id, person, access_token, refresh_token, \
                 token_type, scope, expires_at, obtained_at, refreshed_at, version, status, failures) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 1, 'connected', 0) \
                 ON CONFLICT (connection_id, person) DO UPDATE SET access_token = excluded.access_token, \
                 refresh_token = excluded.refresh_token, token_type = excluded.token_type, \
                 scope = excluded.scope, expires_at = excluded.expires_at, \
                 obtained_at = excluded.obtained_at, refreshed_at = NULL, \
                 version = connection_grants.version + 1, status = 'connected', last_error = NULL, \
                 last_error_at = NULL, failures = 0, retry_at = NULL, lease_owner = NULL, \
                 lease_until = NULL",
            )
            .bind(id)
            .bind(person)
            .bind(&grant.access_token)
            .bind(&grant.refresh_token)
            .bind(&grant.token_type)
            .bind(&grant.scope)
            .bind(grant.expires_at)
            .bind(now),
        }
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets the grant (after revocation at the provider, or to start over).
    pub async fn delete_connection_tokens(
        &self,
        key: GrantKey<'_>,
        now: UnixTime,
    ) -> Result<(), DbError> {
        if let Some(person) = key.person {
            sqlx::query("DELETE FROM connection_grants WHERE connection_id = $1 AND person = $2")
                .bind(key.connection)
                .bind(person)
                .execute(self.writer())
                .await?;
            return Ok(());
        }
        let id = key.connection;
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM connection_tokens WHERE connection_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE connections SET status = 'new', last_error = NULL, last_error_at = NULL, \
             failures = 0, retry_at = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets every person's grant of a connection (its endpoints moved elsewhere).
    pub async fn delete_person_grants(&self, id: &str) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM connection_grants WHERE connection_id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// Takes the grant's refresh lease unless another owner holds a live one. A person
    /// without a grant has nothing to lease: `false`.
    pub async fn try_connection_lease(
        &self,
        key: GrantKey<'_>,
        owner: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool, DbError> {
        let (table, filter) = grant_target(key);
        let done = sqlx::query(&format!(
            "UPDATE {table} SET lease_owner = $3, lease_until = $5 WHERE {filter} \
             AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until <= $4 OR lease_owner = $3)"
        ))
        .bind(key.connection)
        .bind(key.person.unwrap_or(""))
        .bind(owner)
        .bind(now)
        .bind(until)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Drops every refresh lease: at start-up on SQLite, where no other process can hold one
    /// (a process killed during a refresh leaves its lease behind).
    pub async fn clear_connection_leases(&self) -> Result<u64, DbError> {
        let mut cleared = 0;
        for table in ["connections", "connection_grants"] {
            cleared += sqlx::query(&format!(
                "UPDATE {table} SET lease_owner = NULL, lease_until = NULL \
                 WHERE lease_owner IS NOT NULL"
            ))
            .execute(self.writer())
            .await?
            .rows_affected();
        }
        Ok(cleared)
    }

    pub async fn release_connection_lease(
        &self,
        key: GrantKey<'_>,
        owner: &str,
    ) -> Result<(), DbError> {
        let (table, filter) = grant_target(key);
        sqlx::query(&format!(
            "UPDATE {table} SET lease_owner = NULL, lease_until = NULL WHERE {filter} AND lease_owner = $3"
        ))
        .bind(key.connection)
        .bind(key.person.unwrap_or(""))
        .bind(owner)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Records a failed token call: `Failing` (transient: retried after `retry_at`) or
    /// `NeedsReauth` (the grant is dead: no more retries).
    pub async fn record_connection_failure(
        &self,
        key: GrantKey<'_>,
        status: ConnectionState,
        message: &str,
        retry_at: Option<UnixTime>,
        owner: Option<&str>,
        now: UnixTime,
    ) -> Result<(), DbError> {
        let (table, filter) = grant_target(key);
        let touched = touched(key, 7);
        sqlx::query(&format!(
            "UPDATE {table} SET status = $3, last_error = $4, last_error_at = $7, \
             failures = failures + 1, retry_at = $5{touched}, \
             lease_owner = CASE WHEN lease_owner = $6 THEN NULL ELSE lease_owner END, \
             lease_until = CASE WHEN lease_owner = $6 THEN NULL ELSE lease_until END \
             WHERE {filter}"
        ))
        .bind(key.connection)
        .bind(key.person.unwrap_or(""))
        .bind(status.as_str())
        .bind(message)
        .bind(retry_at)
        .bind(owner.unwrap_or(""))
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Forgets past failures before an attempt the operator asked for.
    pub async fn clear_connection_failure(
        &self,
        key: GrantKey<'_>,
        now: UnixTime,
    ) -> Result<(), DbError> {
        let (table, filter) = grant_target(key);
        let touched = touched(key, 3);
        // `$3 = $3`: the time is bound for both kinds of grant, so the text must use it for both.
        sqlx::query(&format!(
            "UPDATE {table} SET status = CASE WHEN status IN ('failing', 'needs_reauth') THEN 'new' ELSE status END, \
             failures = 0, retry_at = NULL{touched} WHERE {filter} AND $3 = $3"
        ))
        .bind(key.connection)
        .bind(key.person.unwrap_or(""))
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Notes an error from an interactive step (the popup flow) without touching a working
    /// grant: the list shows it, the tokens stay. A person with no grant yet has no row to
    /// note it on; the page that started the step shows the error.
    pub async fn note_connection_error(
        &self,
        key: GrantKey<'_>,
        message: &str,
        now: UnixTime,
    ) -> Result<(), DbError> {
        let (table, filter) = grant_target(key);
        let touched = touched(key, 4);
        sqlx::query(&format!(
            "UPDATE {table} SET last_error = $3, last_error_at = $4{touched} WHERE {filter}"
        ))
        .bind(key.connection)
        .bind(key.person.unwrap_or(""))
        .bind(message)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The issuer a connection's authorization answers must name (RFC 9207), and whether
    /// they must name one at all.
    pub async fn set_connection_issuer(
        &self,
        id: &str,
        issuer: &str,
        iss_required: bool,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE connections SET issuer = $2, iss_required = $3 WHERE id = $1")
            .bind(id)
            .bind(issuer)
            .bind(i64::from(iss_required))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn connection_issuer(&self, id: &str) -> Result<Option<(String, bool)>, DbError> {
        let row: Option<(Option<String>, i64)> =
            sqlx::query_as("SELECT issuer, iss_required FROM connections WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(issuer, required)| issuer.map(|i| (i, required != 0))))
    }

    pub async fn set_connection_registration(
        &self,
        id: &str,
        registration: &Registration,
        now: UnixTime,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE connections SET client_id = $2, client_secret = $3, token_auth_method = $4, \
             registration_client_uri = $5, registration_access_token = $6, registered_at = $7, \
             updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(&registration.client_id)
        .bind(&registration.client_secret)
        .bind(&registration.token_auth_method)
        .bind(&registration.registration_client_uri)
        .bind(&registration.registration_access_token)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Grants that should be renewed now: tokens expiring before `horizon`, and
    /// client-credentials connections without a token; not those waiting for a retry or
    /// for the user. Shared connections' keys have no person.
    pub async fn connections_due(
        &self,
        now: UnixTime,
        horizon: UnixTime,
    ) -> Result<Vec<(String, Option<String>)>, DbError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT c.id, NULL FROM connections c LEFT JOIN connection_tokens t ON t.connection_id = c.id \
             WHERE c.per_person = 0 AND c.status <> 'needs_reauth' AND (c.retry_at IS NULL OR c.retry_at <= $1) \
             AND ((t.connection_id IS NOT NULL AND t.expires_at IS NOT NULL AND t.expires_at <= $2 \
                   AND (t.refresh_token IS NOT NULL OR c.grant_type = 'client_credentials')) \
               OR (t.connection_id IS NULL AND c.grant_type = 'client_credentials' AND c.client_id IS NOT NULL)) \
             UNION ALL \
             SELECT g.connection_id, g.person FROM connection_grants g \
             WHERE g.status <> 'needs_reauth' AND (g.retry_at IS NULL OR g.retry_at <= $1) \
             AND g.expires_at IS NOT NULL AND g.expires_at <= $2 AND g.refresh_token IS NOT NULL \
             ORDER BY 1, 2",
        )
        .bind(now)
        .bind(horizon)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    // Authorization requests in flight.

    pub async fn insert_connection_state(&self, row: &StateRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO connection_states (state_hash, connection_id, subject, code_verifier, \
             pending_changes, redirect_uri, created_at, expires_at, elicitation_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&row.state_hash)
        .bind(&row.connection_id)
        .bind(&row.subject)
        .bind(&row.code_verifier)
        .bind(&row.pending_changes)
        .bind(&row.redirect_uri)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(&row.elicitation_id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Consumes a state: whoever deletes the row owns it, so it is used at most once.
    pub async fn take_connection_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<StateRow>, DbError> {
        let mut tx = self.writer().begin().await?;
        let row = sqlx::query_as::<_, StateRow>(
            "SELECT state_hash, connection_id, subject, code_verifier, pending_changes, redirect_uri, \
             created_at, expires_at, elicitation_id FROM connection_states WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let done = sqlx::query("DELETE FROM connection_states WHERE state_hash = $1")
            .bind(state_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((done.rows_affected() == 1).then_some(row))
    }

    pub async fn purge_connection_states(&self, now: UnixTime) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM connection_states WHERE expires_at <= $1")
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}
