//! `settings`: instance-wide key/value settings changed at run time.

use super::{Db, DbError};
use crate::server::clock::UnixTime;

impl Db {
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>, DbError> {
        let value: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(value.map(|(v,)| v))
    }

    pub async fn put_setting(&self, key: &str, value: &str, now: UnixTime) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::server::db::testing::temp_db;

    #[tokio::test]
    async fn put_then_get() {
        let (db, _dir) = temp_db().await;
        assert_eq!(db.get_setting("k").await.unwrap(), None);
        db.put_setting("k", "1", 10).await.unwrap();
        db.put_setting("k", "2", 11).await.unwrap();
        assert_eq!(db.get_setting("k").await.unwrap().as_deref(), Some("2"));
    }
}
