//! `revoked_sessions`: session JWTs ended by logout before they expire.

use super::{Db, DbError};
use crate::server::clock::UnixTime;

impl Db {
    pub async fn revoke_session(&self, jti: &str, expires_at: UnixTime) -> Result<(), DbError> {
        // Logging out twice is not an error.
        sqlx::query(
            "INSERT INTO revoked_sessions (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn is_session_revoked(&self, jti: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT 1 FROM revoked_sessions WHERE jti = $1")
            .bind(jti)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Entries outlive their token by nothing: an expired JWT is refused anyway.
    pub async fn purge_expired_revocations(&self, now: UnixTime) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM revoked_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::server::db::testing::temp_db;

    #[tokio::test]
    async fn revoke_and_purge() {
        let (db, _dir) = temp_db().await;
        assert!(!db.is_session_revoked("j").await.unwrap());
        db.revoke_session("j", 1000).await.unwrap();
        db.revoke_session("j", 1000).await.unwrap();
        assert!(db.is_session_revoked("j").await.unwrap());
        assert_eq!(db.purge_expired_revocations(999).await.unwrap(), 0);
        assert_eq!(db.purge_expired_revocations(1000).await.unwrap(), 1);
        assert!(!db.is_session_revoked("j").await.unwrap());
    }
}
