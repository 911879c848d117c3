//! `audit_events`: the audit trail, appended to and read back newest first.

use sqlx::FromRow;

use super::{Db, DbError};
use crate::server::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub action: String,
    pub outcome: String,
    pub actor_kind: String,
    pub actor: Option<String>,
    pub target_kind: Option<String>,
    pub target: Option<String>,
    pub address: Option<String>,
    pub replica: String,
    /// JSON.
    pub detail: Option<String>,
}

/// What a listing narrows to (`None`: no condition).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    pub action: Option<&'a str>,
    /// Actions starting with this (`connection.`).
    pub action_prefix: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub target: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub since: Option<UnixTime>,
    pub until: Option<UnixTime>,
    /// Older than this id.
    pub before: Option<&'a str>,
}

const COLUMNS: &str =
    "id, at, action, outcome, actor_kind, actor, target_kind, target, address, replica, detail";

impl Db {
    pub async fn insert_audit_event(&self, row: &AuditRow) -> Result<(), DbError> {
        sqlx::query(&format!(
            "INSERT INTO audit_events ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&row.id)
        .bind(row.at)
        .bind(&row.action)
        .bind(&row.outcome)
        .bind(&row.actor_kind)
        .bind(&row.actor)
        .bind(&row.target_kind)
        .bind(&row.target)
        .bind(&row.address)
        .bind(&row.replica)
        .bind(&row.detail)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Newest first, `limit` at most.
    pub async fn list_audit_events(
        &self,
        q: &AuditQuery<'_>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, DbError> {
        let prefix = q.action_prefix.map(|p| format!("{}%", like_escaped(p)));
        let rows = sqlx::query_as::<_, AuditRow>(&format!(
            "SELECT {COLUMNS} FROM audit_events \
             WHERE ($1 IS NULL OR action = $1) \
             AND ($2 IS NULL OR action LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR actor = $3) \
             AND ($4 IS NULL OR target = $4) \
             AND ($5 IS NULL OR outcome = $5) \
             AND ($6 IS NULL OR at >= $6) \
             AND ($7 IS NULL OR at < $7) \
             AND ($8 IS NULL OR id < $8) \
             ORDER BY id DESC LIMIT $9"
        ))
        .bind(q.action)
        .bind(prefix)
        .bind(q.actor)
        .bind(q.target)
        .bind(q.outcome)
        .bind(q.since)
        .bind(q.until)
        .bind(q.before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// Removes what is older than `before` (the retention pass); how many.
    pub async fn purge_audit_events(&self, before: UnixTime) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(before)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

/// `value` matching itself only, in a LIKE pattern with `\` as the escape.
fn like_escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::testing::temp_db;

    fn row(id: &str, at: i64, action: &str) -> AuditRow {
        AuditRow {
            id: id.into(),
            at,
            action: action.into(),
            outcome: "ok".into(),
            actor_kind: "person".into(),
            actor: Some("ada@example.com".into()),
            target_kind: None,
            target: None,
            address: None,
            replica: "r".into(),
            detail: None,
        }
    }

    #[tokio::test]
    async fn listed_newest_first_filtered_paged_and_purged() {
        let (db, _dir) = temp_db().await;
        for (id, at, action) in [
            ("01", 10, "sign_in"),
            ("02", 20, "connection.created"),
            ("03", 30, "connection_x.created"),
            ("04", 40, "connection.deleted"),
        ] {
            db.insert_audit_event(&row(id, at, action)).await.unwrap();
        }
        let ids = |rows: Vec<AuditRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = db.list_audit_events(&AuditQuery::default(), 10).await;
        assert_eq!(ids(all.unwrap()), ["04", "03", "02", "01"]);
        // `_` in the prefix is not a wildcard.
        let kind = AuditQuery {
            action_prefix: Some("connection."),
            ..AuditQuery::default()
        };
        assert_eq!(
            ids(db.list_audit_events(&kind, 10).await.unwrap()),
            ["04", "02"]
        );
        let page = AuditQuery {
            before: Some("04"),
            since: Some(20),
            ..AuditQuery::default()
        };
        assert_eq!(ids(db.list_audit_events(&page, 1).await.unwrap()), ["03"]);
        assert_eq!(db.purge_audit_events(30).await.unwrap(), 2);
        assert_eq!(
            ids(db
                .list_audit_events(&AuditQuery::default(), 10)
                .await
                .unwrap()),
            ["04", "03"]
        );
    }
}
