//! `mcp_sessions`: 2025-era MCP sessions, shared by every replica. Rows are keyed by the
//! SHA-256 of the session id.

use super::{Db, DbError};
use crate::server::clock::UnixTime;

/// What the endpoint needs to know about a session on each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSessionRow {
    pub owner: Option<String>,
    pub last_used_at: i64,
}

impl Db {
    pub async fn insert_mcp_session(
        &self,
        id_hash: &str,
        init_params: &str,
        now: UnixTime,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO mcp_sessions (id, owner, init_params, created_at, last_used_at) \
             VALUES ($1, NULL, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET init_params = excluded.init_params",
        )
        .bind(id_hash)
        .bind(init_params)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Sets the owner of a session just opened.
    pub async fn claim_mcp_session(
        &self,
        id_hash: &str,
        owner: &str,
        now: UnixTime,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE mcp_sessions SET owner = $2, last_used_at = $3 WHERE id = $1 AND owner IS NULL",
        )
        .bind(id_hash)
        .bind(owner)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn find_mcp_session(&self, id_hash: &str) -> Result<Option<McpSessionRow>, DbError> {
        let row: Option<(Option<String>, i64)> =
            sqlx::query_as("SELECT owner, last_used_at FROM mcp_sessions WHERE id = $1")
                .bind(id_hash)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(owner, last_used_at)| McpSessionRow {
            owner,
            last_used_at,
        }))
    }

    /// The initialize parameters of a live session (owned, used since `idle_since`).
    pub async fn mcp_session_params(
        &self,
        id_hash: &str,
        idle_since: UnixTime,
    ) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT init_params FROM mcp_sessions \
             WHERE id = $1 AND owner IS NOT NULL AND last_used_at >= $2",
        )
        .bind(id_hash)
        .bind(idle_since)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(p,)| p))
    }

    pub async fn touch_mcp_session(&self, id_hash: &str, now: UnixTime) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE mcp_sessions SET last_used_at = $2 WHERE id = $1 AND last_used_at < $2",
        )
        .bind(id_hash)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn delete_mcp_session(&self, id_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM mcp_sessions WHERE id = $1")
            .bind(id_hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Ends every session of one caller (its token was deleted); how many.
    pub async fn delete_mcp_sessions_of(&self, owner: &str) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM mcp_sessions WHERE owner = $1")
            .bind(owner)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// Keeps a caller's `keep` most recently used sessions and ends the others; how many.
    /// Counting reads the owner index; only sessions over the cap are deleted, so opening a
    /// session costs no write beyond its own while the caller is under the cap.
    pub async fn cap_mcp_sessions(&self, owner: &str, keep: u32) -> Result<u64, DbError> {
        let (open,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mcp_sessions WHERE owner = $1")
            .bind(owner)
            .fetch_one(self.pool())
            .await?;
        let excess = open - i64::from(keep);
        if excess <= 0 {
            return Ok(0);
        }
        let done = sqlx::query(
            "DELETE FROM mcp_sessions WHERE id IN ( \
                 SELECT id FROM mcp_sessions WHERE owner = $1 \
                 ORDER BY last_used_at, created_at, id LIMIT $2)",
        )
        .bind(owner)
        .bind(excess)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Sessions used since `idle_since`.
    pub async fn count_mcp_sessions(&self, idle_since: UnixTime) -> Result<i64, DbError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM mcp_sessions WHERE owner IS NOT NULL AND last_used_at >= $1",
        )
        .bind(idle_since)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    /// Deletes sessions idle since before `idle_since`, and unclaimed ones (an initialize whose
    /// answer never went out) older than `unclaimed_before`.
    pub async fn purge_mcp_sessions(
        &self,
        idle_since: UnixTime,
        unclaimed_before: UnixTime,
    ) -> Result<u64, DbError> {
        let done = sqlx::query(
            "DELETE FROM mcp_sessions WHERE last_used_at < $1 \
             OR (owner IS NULL AND created_at < $2)",
        )
        .bind(idle_since)
        .bind(unclaimed_before)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::server::db::testing::temp_db;

    #[tokio::test]
    async fn claim_cap_and_purge() {
        let (db, _dir) = temp_db().await;
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            db.insert_mcp_session(id, "{}", 100 + i as i64)
                .await
                .unwrap();
            assert!(db.claim_mcp_session(id, "k", 100 + i as i64).await.unwrap());
            assert!(!db.claim_mcp_session(id, "other", 200).await.unwrap());
        }
        db.touch_mcp_session("a", 200).await.unwrap();
        // "a" was used last; "b" is the oldest in use.
        assert_eq!(db.cap_mcp_sessions("k", 2).await.unwrap(), 2);
        assert!(db.find_mcp_session("b").await.unwrap().is_none());
        assert!(db.find_mcp_session("c").await.unwrap().is_none());
        assert_eq!(
            db.find_mcp_session("a")
                .await
                .unwrap()
                .unwrap()
                .owner
                .as_deref(),
            Some("k")
        );
        assert!(db.mcp_session_params("d", 103).await.unwrap().is_some());
        assert!(db.mcp_session_params("d", 104).await.unwrap().is_none());
        db.insert_mcp_session("e", "{}", 100).await.unwrap();
        assert!(db.mcp_session_params("e", 0).await.unwrap().is_none());
        assert_eq!(db.count_mcp_sessions(0).await.unwrap(), 2);
        assert_eq!(db.purge_mcp_sessions(150, 101).await.unwrap(), 2);
        assert_eq!(db.delete_mcp_sessions_of("k").await.unwrap(), 1);
    }
}
