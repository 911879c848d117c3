//! `audit_events`: the audit trail, appended to and read back newest first.

use sqlx::FromRow;

use super::group::GroupedWrite;
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
    /// Any of these targets (empty: any target).
    pub targets: Vec<String>,
    pub outcome: Option<&'a str>,
    pub since: Option<UnixTime>,
    pub until: Option<UnixTime>,
    /// Older than this id.
    pub before: Option<&'a str>,
}

const COLUMNS: &str =
    "id, at, action, outcome, actor_kind, actor, target_kind, target, address, replica, detail";

/// `insert_audit_event` on SQLite, in a group commit (`db::group`).
static INSERT_SQLITE: GroupedWrite = GroupedWrite {
    body: "INSERT INTO audit_events (id, at, action, outcome, actor_kind, actor, target_kind, \
        target, address, replica, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);",
    outcome: "SELECT $0 AS k;",
};

impl Db {
    pub async fn insert_audit_event(&self, row: &AuditRow) -> Result<(), DbError> {
        if !self.is_postgres() {
            // In the next group commit: an event costs the writer no transaction of its own
            // (the token endpoint records one per grant).
            let params = vec![
                row.id.as_str().into(),
                row.at.into(),
                row.action.as_str().into(),
                row.outcome.as_str().into(),
                row.actor_kind.as_str().into(),
                row.actor.as_deref().into(),
                row.target_kind.as_deref().into(),
                row.target.as_deref().into(),
                row.address.as_deref().into(),
                row.replica.as_str().into(),
                row.detail.as_deref().into(),
            ];
            self.grouped(&INSERT_SQLITE, params).await?;
            return Ok(());
        }
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

    /// Newest first, `limit` at most. Only the conditions that are set are in the query, so
    /// each can use its index (a `$n IS NULL OR …` form would defeat them).
    pub async fn list_audit_events(
        &self,
        q: &AuditQuery<'_>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, DbError> {
        enum Bound {
            Text(String),
            Int(i64),
        }
        let prefix = q.action_prefix.map(|p| format!("{}%", like_escaped(p)));
        let mut conditions: Vec<String> = Vec::new();
        let mut binds: Vec<Bound> = Vec::new();
        let mut add = |condition: &str, value: Bound| {
            binds.push(value);
            conditions.push(condition.replace('?', &format!("${}", binds.len())));
        };
        if let Some(v) = q.action {
            add("action = ?", Bound::Text(v.into()));
        }
        if let Some(v) = prefix {
            add("action LIKE ? ESCAPE '\\'", Bound::Text(v));
        }
        if let Some(v) = q.actor {
            add("actor = ?", Bound::Text(v.into()));
        }
        if let Some(v) = q.outcome {
            add("outcome = ?", Bound::Text(v.into()));
        }
        if let Some(v) = q.since {
            add("at >= ?", Bound::Int(v));
        }
        if let Some(v) = q.until {
            add("at < ?", Bound::Int(v));
        }
        if let Some(v) = q.before {
            add("id < ?", Bound::Text(v.into()));
        }
        if !q.targets.is_empty() {
            let first = binds.len() + 1;
            let marks: Vec<String> = (first..first + q.targets.len())
                .map(|n| format!("${n}"))
                .collect();
            conditions.push(format!("target IN ({})", marks.join(", ")));
            binds.extend(q.targets.iter().map(|t| Bound::Text(t.clone())));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {} ", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_events {filter}ORDER BY id DESC LIMIT ${}",
            binds.len() + 1
        );
        let mut query = sqlx::query_as::<_, AuditRow>(&sql);
        for bound in binds {
            query = match bound {
                Bound::Text(v) => query.bind(v),
                Bound::Int(v) => query.bind(v),
            };
        }
        Ok(query.bind(limit).fetch_all(self.pool()).await?)
    }

    /// The ids of what has this name (a connection, an MCP server), for a filter that names
    /// its target: events name targets by id, which outlives renames.
    pub async fn audit_target_ids(&self, name: &str) -> Result<Vec<String>, DbError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM connections WHERE name = $1 UNION SELECT id FROM mcp_servers WHERE name = $1",
        )
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
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
