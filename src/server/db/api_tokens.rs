//! `api_tokens`: static API tokens, stored as SHA-256 digests.

use sqlx::FromRow;

use super::{Db, DbError};
use crate::server::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ApiTokenRow {
    pub id: String,
    pub name: String,
    pub token_hash: String,
    pub hint: String,
    pub scopes: String,
    pub created_by: String,
    /// The admin groups the creator's latest sign-in reported, comma-separated
    /// (`auth::roles`).
    pub creator_admin_groups: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
}

const COLUMNS: &str = "id, name, token_hash, hint, scopes, created_by, creator_admin_groups, created_at, last_used_at, expires_at";

impl Db {
    pub async fn insert_api_token(&self, row: &ApiTokenRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, hint, scopes, created_by, creator_admin_groups, created_at, last_used_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.token_hash)
        .bind(&row.hint)
        .bind(&row.scopes)
        .bind(&row.created_by)
        .bind(&row.creator_admin_groups)
        .bind(row.created_at)
        .bind(row.last_used_at)
        .bind(row.expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Every token, or (`created_by`) one person's.
    pub async fn list_api_tokens(
        &self,
        created_by: Option<&str>,
    ) -> Result<Vec<ApiTokenRow>, DbError> {
        let rows = sqlx::query_as::<_, ApiTokenRow>(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE $1 IS NULL OR created_by = $1 \
             ORDER BY created_at DESC, id"
        ))
        .bind(created_by)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// A sign-in reported `groups` for `created_by`: their tokens act with those from now on.
    pub async fn set_creator_admin_groups(
        &self,
        created_by: &str,
        groups: &str,
    ) -> Result<(), DbError> {
        // Most sign-ins change nothing: no write then.
        sqlx::query(
            "UPDATE api_tokens SET creator_admin_groups = $2 \
             WHERE created_by = $1 AND creator_admin_groups <> $2",
        )
        .bind(created_by)
        .bind(groups)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn find_api_token(&self, id: &str) -> Result<Option<ApiTokenRow>, DbError> {
        let row = sqlx::query_as::<_, ApiTokenRow>(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    pub async fn find_api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiTokenRow>, DbError> {
        let row = sqlx::query_as::<_, ApiTokenRow>(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    /// True when a token was deleted.
    pub async fn delete_api_token(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn count_api_tokens(&self) -> Result<i64, DbError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Writes a batch of last-used times in one transaction. A time never moves backwards,
    /// so replicas flushing in any order converge on the latest use.
    pub async fn record_api_token_use(&self, uses: &[(String, UnixTime)]) -> Result<(), DbError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer().begin().await?;
        for (id, at) in uses {
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(*at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::testing::temp_db;

    fn row(id: &str, hash: &str) -> ApiTokenRow {
        ApiTokenRow {
            id: id.into(),
            name: format!("token {id}"),
            token_hash: hash.into(),
            hint: "gh…abcd".into(),
            scopes: "mcp".into(),
            created_by: "admin".into(),
            creator_admin_groups: String::new(),
            created_at: 100,
            last_used_at: None,
            expires_at: Some(1000),
        }
    }

    #[tokio::test]
    async fn crud_and_last_used() {
        let (db, _dir) = temp_db().await;
        db.insert_api_token(&row("a", "h1")).await.unwrap();
        db.insert_api_token(&row("b", "h2")).await.unwrap();
        assert!(
            db.insert_api_token(&row("c", "h1")).await.is_err(),
            "hashes are unique"
        );
        assert_eq!(db.count_api_tokens().await.unwrap(), 2);
        assert_eq!(
            db.find_api_token_by_hash("h2").await.unwrap().unwrap().id,
            "b"
        );

        db.record_api_token_use(&[("a".into(), 500), ("b".into(), 600)])
            .await
            .unwrap();
        db.record_api_token_use(&[("a".into(), 400)]).await.unwrap();
        let a = db.find_api_token_by_hash("h1").await.unwrap().unwrap();
        assert_eq!(a.last_used_at, Some(500), "never moves backwards");

        assert!(db.delete_api_token("a").await.unwrap());
        assert!(!db.delete_api_token("a").await.unwrap());
        assert_eq!(db.list_api_tokens(None).await.unwrap().len(), 1);
        assert_eq!(db.list_api_tokens(Some("admin")).await.unwrap().len(), 1);
        assert!(db.list_api_tokens(Some("bob")).await.unwrap().is_empty());
        assert_eq!(
            db.find_api_token("b").await.unwrap().unwrap().name,
            "token b"
        );
    }
}
