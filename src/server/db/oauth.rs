//! The authorization server's tables: clients, consents, pending authorizations, codes,
//! families ("sessions") and refresh tokens.

use sqlx::FromRow;

use super::group::GroupedWrite;
use super::{Db, DbError};
use crate::server::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OAuthClientRow {
    pub id: String,
    pub kind: String,
    pub client_name: Option<String>,
    pub redirect_uris: String,
    pub grant_types: String,
    pub response_types: String,
    pub token_endpoint_auth_method: String,
    pub client_secret_hash: Option<String>,
    pub application_type: String,
    pub scope: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub metadata: String,
    pub fingerprint: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub metadata_expires_at: Option<i64>,
}

const CLIENT_COLUMNS: &str = "id, kind, client_name, redirect_uris, grant_types, response_types, \
     token_endpoint_auth_method, client_secret_hash, application_type, scope, client_uri, logo_uri, \
     software_id, software_version, metadata, fingerprint, created_at, last_used_at, metadata_expires_at";

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PendingRow {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    pub redirect_uri: String,
    pub scope: String,
    pub resource: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CodeRow {
    pub id: String,
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub redirect_uri: String,
    pub scope: String,
    pub resource: String,
    pub code_challenge: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FamilyRow {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A refresh token with the family it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RefreshRow {
    pub id: String,
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    pub resource: String,
    pub family_revoked_at: Option<i64>,
}

/// What `/mcp` needs to know about the family behind an access token.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FamilyLiveness {
    pub revoked_at: Option<i64>,
    pub client_name: Option<String>,
    pub jti_revoked: i64,
}

/// A live session for the Sessions page.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SessionRow {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub subject: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

/// A client for the OAuth Clients page, with who has consented to it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ClientListRow {
    pub id: String,
    pub kind: String,
    pub client_name: Option<String>,
    pub redirect_uris: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub consents: i64,
    pub sessions: i64,
}

impl Db {
    // Clients.

    pub async fn insert_oauth_client(&self, row: &OAuthClientRow) -> Result<(), DbError> {
        sqlx::query(&format!(
            "INSERT INTO oauth_clients ({CLIENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(&row.id)
        .bind(&row.kind)
        .bind(&row.client_name)
        .bind(&row.redirect_uris)
        .bind(&row.grant_types)
        .bind(&row.response_types)
        .bind(&row.token_endpoint_auth_method)
        .bind(&row.client_secret_hash)
        .bind(&row.application_type)
        .bind(&row.scope)
        .bind(&row.client_uri)
        .bind(&row.logo_uri)
        .bind(&row.software_id)
        .bind(&row.software_version)
        .bind(&row.metadata)
        .bind(&row.fingerprint)
        .bind(row.created_at)
        .bind(row.last_used_at)
        .bind(row.metadata_expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A client-ID-metadata-document client, fetched again: its metadata replaced, its
    /// consents and sessions kept.
    pub async fn update_cimd_client(&self, row: &OAuthClientRow) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE oauth_clients SET client_name = $2, redirect_uris = $3, grant_types = $4, \
             response_types = $5, token_endpoint_auth_method = $6, application_type = $7, scope = $8, \
             client_uri = $9, logo_uri = $10, software_id = $11, software_version = $12, metadata = $13, \
             metadata_expires_at = $14 WHERE id = $1",
        )
        .bind(&row.id)
        .bind(&row.client_name)
        .bind(&row.redirect_uris)
        .bind(&row.grant_types)
        .bind(&row.response_types)
        .bind(&row.token_endpoint_auth_method)
        .bind(&row.application_type)
        .bind(&row.scope)
        .bind(&row.client_uri)
        .bind(&row.logo_uri)
        .bind(&row.software_id)
        .bind(&row.software_version)
        .bind(&row.metadata)
        .bind(row.metadata_expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn find_oauth_client(&self, id: &str) -> Result<Option<OAuthClientRow>, DbError> {
        Ok(sqlx::query_as::<_, OAuthClientRow>(&format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn find_oauth_client_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<OAuthClientRow>, DbError> {
        Ok(sqlx::query_as::<_, OAuthClientRow>(&format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE fingerprint = $1 ORDER BY created_at LIMIT 1"
        ))
        .bind(fingerprint)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn touch_oauth_client(&self, id: &str, now: UnixTime) -> Result<(), DbError> {
        sqlx::query("UPDATE oauth_clients SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Deletes a client with everything issued to it (consents, codes, sessions, refresh
    /// tokens go with it through the foreign keys).
    pub async fn delete_oauth_client(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM oauth_clients WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Clients to clean up: never used and registered before `never_used_before`, or last
    /// used before `idle_before`; never one with a live session. (id, name, last used).
    pub async fn idle_oauth_clients(
        &self,
        now: UnixTime,
        never_used_before: UnixTime,
        idle_before: UnixTime,
    ) -> Result<Vec<(String, Option<String>, Option<i64>)>, DbError> {
        Ok(sqlx::query_as::<_, (String, Option<String>, Option<i64>)>(
            "SELECT c.id, c.client_name, c.last_used_at FROM oauth_clients c \
             WHERE ((c.last_used_at IS NULL AND c.created_at < $2) OR c.last_used_at < $3) \
             AND NOT EXISTS (SELECT 1 FROM oauth_families f WHERE f.client_id = c.id \
                 AND f.revoked_at IS NULL AND f.expires_at > $1) \
             ORDER BY c.created_at LIMIT 1000",
        )
        .bind(now)
        .bind(never_used_before)
        .bind(idle_before)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes a client found by `idle_oauth_clients`, only if it still is idle (one used
    /// meanwhile stays, with the session it just got).
    pub async fn delete_idle_oauth_client(
        &self,
        id: &str,
        now: UnixTime,
        never_used_before: UnixTime,
        idle_before: UnixTime,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "DELETE FROM oauth_clients WHERE id = $4 \
             AND ((last_used_at IS NULL AND created_at < $2) OR last_used_at < $3) \
             AND NOT EXISTS (SELECT 1 FROM oauth_families f WHERE f.client_id = oauth_clients.id \
                 AND f.revoked_at IS NULL AND f.expires_at > $1)",
        )
        .bind(now)
        .bind(never_used_before)
        .bind(idle_before)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn list_oauth_clients(&self, now: UnixTime) -> Result<Vec<ClientListRow>, DbError> {
        Ok(sqlx::query_as::<_, ClientListRow>(
            "SELECT c.id, c.kind, c.client_name, c.redirect_uris, c.created_at, c.last_used_at, \
             (SELECT COUNT(*) FROM oauth_consents k WHERE k.client_id = c.id) AS consents, \
             (SELECT COUNT(*) FROM oauth_families f WHERE f.client_id = c.id AND f.revoked_at IS NULL AND f.expires_at > $1) AS sessions \
             FROM oauth_clients c ORDER BY c.created_at DESC, c.id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn count_oauth_clients(&self) -> Result<i64, DbError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM oauth_clients")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    // Consents.

    pub async fn find_consent(
        &self,
        client_id: &str,
        subject: &str,
    ) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT scope FROM oauth_consents WHERE client_id = $1 AND subject = $2",
        )
        .bind(client_id)
        .bind(subject)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(s,)| s))
    }

    pub async fn put_consent(
        &self,
        client_id: &str,
        subject: &str,
        scope: &str,
        now: UnixTime,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO oauth_consents (client_id, subject, scope, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (client_id, subject) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
        )
        .bind(client_id)
        .bind(subject)
        .bind(scope)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Drops every consent to a client and ends its sessions: the client's next token request
    /// gets `invalid_grant`, and its next authorization asks again.
    pub async fn revoke_client_consents(
        &self,
        client_id: &str,
        now: UnixTime,
    ) -> Result<u64, DbError> {
        let mut tx = self.writer().begin().await?;
        let consents = sqlx::query("DELETE FROM oauth_consents WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE oauth_families SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM oauth_refresh_tokens WHERE family_id IN (SELECT id FROM oauth_families WHERE client_id = $1)")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(consents)
    }

    // Pending authorizations.

    pub async fn insert_pending(&self, row: &PendingRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO oauth_pending (id, client_id, subject, redirect_uri, scope, resource, state, code_challenge, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&row.id)
        .bind(&row.client_id)
        .bind(&row.subject)
        .bind(&row.redirect_uri)
        .bind(&row.scope)
        .bind(&row.resource)
        .bind(&row.state)
        .bind(&row.code_challenge)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn find_pending(&self, id: &str) -> Result<Option<PendingRow>, DbError> {
        Ok(sqlx::query_as::<_, PendingRow>(
            "SELECT id, client_id, subject, redirect_uri, scope, resource, state, code_challenge, created_at, expires_at \
             FROM oauth_pending WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Removes and returns a pending authorization: a decision is taken once.
    pub async fn take_pending(&self, id: &str) -> Result<Option<PendingRow>, DbError> {
        Ok(sqlx::query_as::<_, PendingRow>(
            "DELETE FROM oauth_pending WHERE id = $1 \
             RETURNING id, client_id, subject, redirect_uri, scope, resource, state, code_challenge, created_at, expires_at",
        )
        .bind(id)
        .fetch_optional(self.writer())
        .await?)
    }

    // Codes.

    pub async fn insert_code(&self, row: &CodeRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO oauth_codes (id, family_id, client_id, subject, redirect_uri, scope, resource, code_challenge, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&row.id)
        .bind(&row.family_id)
        .bind(&row.client_id)
        .bind(&row.subject)
        .bind(&row.redirect_uri)
        .bind(&row.scope)
        .bind(&row.resource)
        .bind(&row.code_challenge)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.used_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Marks a code used and returns it, in one statement: of two exchanges racing with the
    /// same code, one gets `Consumed`, the other `Replayed` (with the code, to revoke what was
    /// issued from it).
    pub async fn consume_code(&self, id: &str, now: UnixTime) -> Result<CodeUse, DbError> {
        let consumed = sqlx::query_as::<_, CodeRow>(
            "UPDATE oauth_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL \
             RETURNING id, family_id, client_id, subject, redirect_uri, scope, resource, code_challenge, created_at, expires_at, used_at",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(self.writer())
        .await?;
        if let Some(code) = consumed {
            return Ok(CodeUse::Consumed(code));
        }
        let earlier = sqlx::query_as::<_, CodeRow>(
            "SELECT id, family_id, client_id, subject, redirect_uri, scope, resource, code_challenge, created_at, expires_at, used_at \
             FROM oauth_codes WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match earlier {
            Some(code) => CodeUse::Replayed(code),
            None => CodeUse::Unknown,
        })
    }

    /// Spends code `id` and starts `family` with its first refresh token, in one round trip:
    /// false (and nothing written) when the code was already spent.
    pub async fn redeem_code(
        &self,
        id: &str,
        now: UnixTime,
        family: &FamilyRow,
        refresh_id: &str,
    ) -> Result<bool, DbError> {
        if !self.is_postgres() {
            let params = vec![
                id.into(),
                now.into(),
                family.id.as_str().into(),
                family.client_id.as_str().into(),
                family.subject.as_str().into(),
                family.scope.as_str().into(),
                family.resource.as_str().into(),
                family.created_at.into(),
                family.expires_at.into(),
                family.last_used_at.into(),
                refresh_id.into(),
            ];
            // The outcome reads the new token back: one row when it was written.
            return Ok(!self.grouped(&REDEEM_SQLITE, params).await?.is_empty());
        }
        let written = sqlx::query(REDEEM_POSTGRES)
            .bind(id)
            .bind(now)
            .bind(&family.id)
            .bind(&family.client_id)
            .bind(&family.subject)
            .bind(&family.scope)
            .bind(&family.resource)
            .bind(family.created_at)
            .bind(family.expires_at)
            .bind(family.last_used_at)
            .bind(refresh_id)
            .execute(self.writer())
            .await?;
        Ok(written.rows_affected() > 0)
    }

    pub async fn find_code(&self, id: &str) -> Result<Option<CodeRow>, DbError> {
        Ok(sqlx::query_as::<_, CodeRow>(
            "SELECT id, family_id, client_id, subject, redirect_uri, scope, resource, code_challenge, created_at, expires_at, used_at \
             FROM oauth_codes WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    // Families and refresh tokens.

    pub async fn find_refresh(&self, id: &str) -> Result<Option<RefreshRow>, DbError> {
        Ok(sqlx::query_as::<_, RefreshRow>(
            "SELECT r.id, r.family_id, r.created_at, r.expires_at, r.rotated_at, \
             f.client_id, f.subject, f.scope, f.resource, f.revoked_at AS family_revoked_at \
             FROM oauth_refresh_tokens r JOIN oauth_families f ON f.id = r.family_id WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The common case of a rotation in one round trip: `presented` is a live, unexpired,
    /// never-used refresh token of a live family of `client_id`. It is rotated to `new_id`
    /// (whose value, sealed, is `new_sealed`; see `rotate_refresh` for the rules), and the
    /// family returned. `None`, with nothing written, for anything else: the caller then takes
    /// the careful path, which names what is wrong.
    #[allow(clippy::too_many_arguments)]
    pub async fn rotate_live_refresh(
        &self,
        client_id: &str,
        presented: &str,
        new_id: &str,
        new_sealed: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<Option<RotatedFamily>, DbError> {
        if !self.is_postgres() {
            let params = vec![
                client_id.into(),
                presented.into(),
                now.into(),
                new_sealed.into(),
                new_id.into(),
                expires_at.into(),
            ];
            let rows = self.grouped(&ROTATE_LIVE_SQLITE, params).await?;
            return Ok(match rows.first() {
                Some(row) => Some(RotatedFamily::from_row(row)?),
                None => None,
            });
        }
        let row = sqlx::query(ROTATE_LIVE_POSTGRES)
            .bind(client_id)
            .bind(presented)
            .bind(now)
            .bind(new_sealed)
            .bind(new_id)
            .bind(expires_at)
            .fetch_optional(self.writer())
            .await?;
        Ok(match row {
            Some(row) => Some(RotatedFamily::from_row(&row)?),
            None => None,
        })
    }

    /// Exchanges refresh token `presented` of `family_id` for `new_id` (whose value, sealed,
    /// is `new_sealed`), keeping exactly one live (unrotated) token in the family:
    /// - a token used for the first time is rotated, and `new_id` becomes the live one;
    /// - a token presented again within `grace_secs` of its first use, while the token it was
    ///   exchanged for is still unused, is a client retrying after a lost answer: it gets that
    ///   same successor back (`Retry`), and nothing new is issued;
    /// - anything else is reuse: the family is revoked, in the same transaction.
    ///
    /// The transaction takes the family's row first, so racing requests (or replicas) follow
    /// each other and each sees what the one before it wrote.
    #[allow(clippy::too_many_arguments)]
    pub async fn rotate_refresh(
        &self,
        family_id: &str,
        presented: &str,
        new_id: &str,
        new_sealed: &str,
        now: UnixTime,
        expires_at: UnixTime,
        grace_secs: i64,
    ) -> Result<Rotation, DbError> {
        let mut tx = self.writer().begin().await?;
        // The family's row first (its lock orders racing rotations), and in the same
        // statement the presented token's state: one round trip.
        let row = sqlx::query_as::<_, (i64, Option<i64>, Option<String>)>(
            "UPDATE oauth_families SET expires_at = $3, last_used_at = $4 \
             WHERE id = $1 AND revoked_at IS NULL \
             RETURNING (SELECT COUNT(*) FROM oauth_refresh_tokens WHERE id = $2 AND family_id = $1), \
             (SELECT rotated_at FROM oauth_refresh_tokens WHERE id = $2 AND family_id = $1), \
             (SELECT successor_sealed FROM oauth_refresh_tokens WHERE id = $2 AND family_id = $1)",
        )
        .bind(family_id)
        .bind(presented)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match row {
            // The family has ended, or the token is not (or no longer) one of its own.
            None | Some((0, _, _)) => {
                tx.rollback().await?;
                return Ok(Rotation::FamilyEnded);
            }
            Some((_, None, _)) => {
                // The presented token is rotated (and keeps its successor for the grace
                // window); its parent may no longer hand out the presented one again: it is
                // being used. One statement for both.
                sqlx::query(
                    "UPDATE oauth_refresh_tokens SET \
                     rotated_at = CASE WHEN id = $2 THEN $3 ELSE rotated_at END, \
                     successor_sealed = CASE WHEN id = $2 THEN $4 ELSE NULL END \
                     WHERE family_id = $1 AND (id = $2 OR successor_sealed IS NOT NULL)",
                )
                .bind(family_id)
                .bind(presented)
                .bind(now)
                .bind(new_sealed)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO oauth_refresh_tokens (id, family_id, created_at, expires_at, rotated_at) \
                     VALUES ($1, $2, $3, $4, NULL)",
                )
                .bind(new_id)
                .bind(family_id)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                Rotation::Rotated
            }
            Some((_, Some(used_at), Some(successor))) if now - used_at <= grace_secs => {
                Rotation::Retry {
                    successor_sealed: successor,
                }
            }
            Some((_, Some(_), _)) => {
                revoke_family_in(&mut tx, family_id, now).await?;
                Rotation::Reused
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Ends a family: its refresh tokens are deleted and its access tokens refused.
    pub async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<bool, DbError> {
        let mut tx = self.writer().begin().await?;
        let revoked = revoke_family_in(&mut tx, family_id, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    pub async fn find_family(&self, id: &str) -> Result<Option<FamilyRow>, DbError> {
        Ok(sqlx::query_as::<_, FamilyRow>(
            "SELECT id, client_id, subject, scope, resource, created_at, expires_at, last_used_at, revoked_at FROM oauth_families WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// `None` when the family (or its client) no longer exists.
    pub async fn family_liveness(
        &self,
        family_id: &str,
        jti: &str,
    ) -> Result<Option<FamilyLiveness>, DbError> {
        Ok(sqlx::query_as::<_, FamilyLiveness>(
            "SELECT f.revoked_at, c.client_name, \
             (SELECT COUNT(*) FROM revoked_sessions r WHERE r.jti = $2) AS jti_revoked \
             FROM oauth_families f JOIN oauth_clients c ON c.id = f.client_id WHERE f.id = $1",
        )
        .bind(family_id)
        .bind(jti)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Every live session, or (`subject`) one person's.
    pub async fn list_live_sessions(
        &self,
        now: UnixTime,
        subject: Option<&str>,
    ) -> Result<Vec<SessionRow>, DbError> {
        Ok(sqlx::query_as::<_, SessionRow>(
            "SELECT f.id, f.client_id, c.client_name, f.subject, f.scope, f.created_at, f.expires_at, f.last_used_at \
             FROM oauth_families f JOIN oauth_clients c ON c.id = f.client_id \
             WHERE f.revoked_at IS NULL AND f.expires_at > $1 AND ($2 IS NULL OR f.subject = $2) \
             ORDER BY f.created_at DESC, f.id",
        )
        .bind(now)
        .bind(subject)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes what can no longer be used: expired pending requests and codes, and families
    /// (with their refresh tokens) that ended more than a day ago.
    pub async fn purge_expired_oauth(&self, now: UnixTime) -> Result<(), DbError> {
        sqlx::query("DELETE FROM oauth_pending WHERE expires_at <= $1")
            .bind(now)
            .execute(self.writer())
            .await?;
        // Used codes are kept until they expire, to recognise a replay.
        sqlx::query("DELETE FROM oauth_codes WHERE expires_at <= $1")
            .bind(now - 3600)
            .execute(self.writer())
            .await?;
        sqlx::query("DELETE FROM oauth_families WHERE expires_at <= $1 OR revoked_at <= $1")
            .bind(now - 86_400)
            .execute(self.writer())
            .await?;
        // A successor is handed out again only within the grace window: no longer kept.
        sqlx::query(
            "UPDATE oauth_refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL AND rotated_at <= $1",
        )
        .bind(now - 3600)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}

// The one-round-trip writes. A rotation's parameters: $1 client, $2 presented token, $3 now,
// $4 sealed successor, $5 new token, $6 new expiry. On SQLite, each statement after the first
// acts only when the one before it did (`changes()`, or the new row's presence), and the last
// reads the family back through the new token: no row, nothing done. On PostgreSQL,
// data-modifying CTEs chain on each other's rows, the family's row first (its lock orders
// racing rotations, as in `rotate_refresh`).
/// One rotation of `rotate_live_refresh` on SQLite, in a group commit (`db::group`).
static ROTATE_LIVE_SQLITE: GroupedWrite = GroupedWrite {
    body: "UPDATE oauth_refresh_tokens SET rotated_at = $3, successor_sealed = $4 \
        WHERE id = $2 AND rotated_at IS NULL AND expires_at > $3 \
        AND family_id IN (SELECT id FROM oauth_families WHERE client_id = $1 AND revoked_at IS NULL); \
        INSERT INTO oauth_refresh_tokens (id, family_id, created_at, expires_at, rotated_at) \
        SELECT $5, family_id, $3, $6, NULL FROM oauth_refresh_tokens WHERE id = $2 AND changes() = 1; \
        UPDATE oauth_refresh_tokens SET successor_sealed = NULL \
        WHERE family_id = (SELECT family_id FROM oauth_refresh_tokens WHERE id = $5) \
        AND id <> $2 AND successor_sealed IS NOT NULL; \
        UPDATE oauth_families SET expires_at = $6, last_used_at = $3 \
        WHERE id = (SELECT family_id FROM oauth_refresh_tokens WHERE id = $5);",
    // The family, when `$5` was written.
    outcome: "SELECT $0 AS k, f.id, f.subject, f.scope FROM oauth_refresh_tokens r \
        JOIN oauth_families f ON f.id = r.family_id WHERE r.id = $5;",
};

const ROTATE_LIVE_POSTGRES: &str = "WITH family AS ( \
    UPDATE oauth_families f SET expires_at = $6, last_used_at = $3 \
    FROM oauth_refresh_tokens r \
    WHERE r.id = $2 AND f.id = r.family_id AND f.client_id = $1 AND f.revoked_at IS NULL \
    AND r.rotated_at IS NULL AND r.expires_at > $3 \
    RETURNING f.id, f.subject, f.scope), \
    rotated AS ( \
    UPDATE oauth_refresh_tokens SET rotated_at = $3, successor_sealed = $4 \
    WHERE id = $2 AND rotated_at IS NULL AND expires_at > $3 \
    AND family_id IN (SELECT id FROM family) RETURNING family_id), \
    parent AS ( \
    UPDATE oauth_refresh_tokens SET successor_sealed = NULL \
    WHERE family_id IN (SELECT family_id FROM rotated) AND id <> $2 \
    AND successor_sealed IS NOT NULL), \
    inserted AS ( \
    INSERT INTO oauth_refresh_tokens (id, family_id, created_at, expires_at, rotated_at) \
    SELECT $5, family_id, $3, $6, NULL FROM rotated RETURNING family_id) \
    SELECT f.id, f.subject, f.scope FROM family f JOIN inserted i ON i.family_id = f.id";

// $1 code, $2 now, $3..$10 the family's columns (id, client, subject, scope, resource,
// created, expires, last used), $11 its first refresh token.
/// `redeem_code` on SQLite, in a group commit (`db::group`).
static REDEEM_SQLITE: GroupedWrite = GroupedWrite {
    body: "UPDATE oauth_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL; \
        INSERT INTO oauth_families (id, client_id, subject, scope, resource, created_at, expires_at, last_used_at, revoked_at) \
        SELECT $3, $4, $5, $6, $7, $8, $9, $10, NULL WHERE changes() = 1; \
        INSERT INTO oauth_refresh_tokens (id, family_id, created_at, expires_at, rotated_at) \
        SELECT $11, $3, $8, $9, NULL WHERE changes() = 1;",
    // One row when the first refresh token was written.
    outcome: "SELECT $0 AS k, id FROM oauth_refresh_tokens WHERE id = $11;",
};

const REDEEM_POSTGRES: &str = "WITH spent AS ( \
    UPDATE oauth_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL RETURNING id), \
    family AS ( \
    INSERT INTO oauth_families (id, client_id, subject, scope, resource, created_at, expires_at, last_used_at, revoked_at) \
    SELECT $3, $4, $5, $6, $7, $8, $9, $10, NULL FROM spent RETURNING id) \
    INSERT INTO oauth_refresh_tokens (id, family_id, created_at, expires_at, rotated_at) \
    SELECT $11, id, $8, $9, NULL FROM family";

async fn revoke_family_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    family_id: &str,
    now: UnixTime,
) -> Result<bool, DbError> {
    let revoked = sqlx::query(
        "UPDATE oauth_families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM oauth_refresh_tokens WHERE family_id = $1")
        .bind(family_id)
        .execute(&mut **tx)
        .await?;
    Ok(revoked > 0)
}

/// The outcome of exchanging a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The new token is the family's only live one.
    Rotated,
    /// A retry inside the grace window: answer with the successor already issued.
    Retry { successor_sealed: String },
    /// Presented again outside the grace window, or after its successor was used: the
    /// family has been revoked.
    Reused,
    /// The family (or the token) was revoked or removed meanwhile.
    FamilyEnded,
}

/// The family a rotation continued: what the new access token is issued for.
#[derive(Debug, Clone, FromRow)]
pub struct RotatedFamily {
    pub id: String,
    pub subject: String,
    pub scope: String,
}

/// The outcome of presenting a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    Consumed(CodeRow),
    /// Used before: everything issued from it must be revoked.
    Replayed(CodeRow),
    Unknown,
}
