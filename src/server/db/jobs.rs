//! `job_leases`: a background pass (a clean-up, a renewal round) runs on one replica at a
//! time. A replica takes the lease for the length of its interval; the others skip the round.

use super::{Db, DbError};
use crate::server::clock::UnixTime;

impl Db {
    /// Takes a background pass's lease for one interval: with replicas, one of them runs each
    /// round. An error skips the round (logged).
    pub async fn take_turn(&self, job: &str, now: UnixTime, every: std::time::Duration) -> bool {
        let until = now + (every.as_secs() as i64 - 1).max(1);
        match self.take_job_lease(job, now, until).await {
            Ok(mine) => mine,
            Err(e) => {
                tracing::warn!(error = %e, job, "cannot take a background pass's lease; skipping");
                false
            }
        }
    }

    /// Takes `name`'s lease until `until` when it is free (or already this replica's).
    pub async fn take_job_lease(
        &self,
        name: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool, DbError> {
        let row: Option<(String,)> = sqlx::query_as(
            "INSERT INTO job_leases (name, owner, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
                 lease_until = excluded.lease_until \
             WHERE job_leases.lease_until <= $4 OR job_leases.owner = excluded.owner \
             RETURNING owner",
        )
        .bind(name)
        .bind(self.replica_id())
        .bind(until)
        .bind(now)
        .fetch_optional(self.writer())
        .await?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    use crate::server::db::testing::temp_db;

    #[tokio::test]
    async fn one_holder_until_the_lease_ends() {
        let (db, _dir) = temp_db().await;
        let (other, _dir2) = temp_db().await;
        assert!(db.take_job_lease("purge", 100, 160).await.unwrap());
        assert!(db.take_job_lease("purge", 110, 170).await.unwrap());
        // Another replica on the same store: simulated by another owner id on the same rows.
        let same_store = db.as_replica(other.replica_id());
        assert!(!same_store.take_job_lease("purge", 120, 180).await.unwrap());
        assert!(same_store.take_job_lease("purge", 170, 230).await.unwrap());
        assert!(!db.take_job_lease("purge", 171, 231).await.unwrap());
    }
}
