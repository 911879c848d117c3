//! `login_states`: app logins in flight through the identity provider.

use sqlx::FromRow;

use super::{Db, DbError};
use crate::server::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LoginStateRow {
    pub id: String,
    pub browser_binding: String,
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_to: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Db {
    pub async fn insert_login_state(&self, row: &LoginStateRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO login_states (id, browser_binding, pkce_verifier, nonce, return_to, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.browser_binding)
        .bind(&row.pkce_verifier)
        .bind(&row.nonce)
        .bind(&row.return_to)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Removes and returns the login state with this id, in one statement: of two callbacks
    /// racing with the same `state`, exactly one gets the row.
    pub async fn take_login_state(&self, id: &str) -> Result<Option<LoginStateRow>, DbError> {
        let row = sqlx::query_as::<_, LoginStateRow>(
            "DELETE FROM login_states WHERE id = $1 \
             RETURNING id, browser_binding, pkce_verifier, nonce, return_to, created_at, expires_at",
        )
        .bind(id)
        .fetch_optional(self.writer())
        .await?;
        Ok(row)
    }

    pub async fn purge_expired_login_states(&self, now: UnixTime) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM login_states WHERE expires_at <= $1")
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::testing::temp_db;

    fn row(id: &str, expires_at: i64) -> LoginStateRow {
        LoginStateRow {
            id: id.into(),
            browser_binding: "b".into(),
            pkce_verifier: "v".into(),
            nonce: "n".into(),
            return_to: "/".into(),
            created_at: 100,
            expires_at,
        }
    }

    #[tokio::test]
    async fn take_is_single_use() {
        let (db, _dir) = temp_db().await;
        db.insert_login_state(&row("a", 700)).await.unwrap();
        assert_eq!(db.take_login_state("a").await.unwrap(), Some(row("a", 700)));
        assert_eq!(db.take_login_state("a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn purge_removes_only_expired() {
        let (db, _dir) = temp_db().await;
        db.insert_login_state(&row("old", 500)).await.unwrap();
        db.insert_login_state(&row("new", 900)).await.unwrap();
        assert_eq!(db.purge_expired_login_states(600).await.unwrap(), 1);
        assert!(db.take_login_state("new").await.unwrap().is_some());
    }
}
