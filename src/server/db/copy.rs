//! Moving up: copies every row of one store into another, empty one (`gatehouse copy-data`).
//! Values are copied as stored: sealed secrets stay sealed (the same `SECRET_KEY` opens them on
//! the other side), hashes stay hashes. One transaction on the target: all or nothing.

use sqlx::Row;

use super::{Db, DbError};

/// Every table, parents before the tables that reference them. Transient tables (background
/// pass leases) are not copied.
pub const TABLES: [&str; 18] = [
    "settings",
    "api_tokens",
    "login_states",
    "revoked_sessions",
    "oauth_clients",
    "oauth_consents",
    "oauth_pending",
    "oauth_families",
    "oauth_codes",
    "oauth_refresh_tokens",
    "connections",
    "connection_tokens",
    "connection_grants",
    "connection_states",
    "vault_secrets",
    "mcp_servers",
    "mcp_sessions",
    "audit_events",
];

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the target already holds data (table {table} has {rows} rows); copy-data only fills an empty store"
    )]
    TargetNotEmpty { table: String, rows: i64 },
    #[error("the source and the target are the same store")]
    SameStore,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        CopyError::Db(DbError::Query(e))
    }
}

/// Copies every row of `from` into `to` (both migrated to the same version); how many rows
/// each table had.
pub async fn copy_all(from: &Db, to: &Db) -> Result<Vec<(&'static str, u64)>, CopyError> {
    if from.config() == to.config() {
        return Err(CopyError::SameStore);
    }
    for table in TABLES {
        let (rows,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(to.pool())
            .await?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty {
                table: table.into(),
                rows,
            });
        }
    }
    let mut copied = Vec::new();
    let mut tx = to.pool().begin().await?;
    for table in TABLES {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(from.pool())
            .await?;
        for row in &rows {
            let columns: Vec<&str> = row.columns().iter().map(sqlx::Column::name).collect();
            let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                columns.join(", "),
                placeholders.join(", ")
            );
            let mut insert = sqlx::query(&sql);
            for (i, column) in columns.iter().enumerate() {
                // The schema has two column types, BIGINT and TEXT, and PostgreSQL wants a
                // NULL bound with its column's type.
                insert = if is_integer_column(column) {
                    insert.bind(row.try_get::<Option<i64>, _>(i)?)
                } else {
                    insert.bind(row.try_get::<Option<String>, _>(i)?)
                };
            }
            insert.execute(&mut *tx).await?;
        }
        copied.push((table, rows.len() as u64));
    }
    tx.commit().await?;
    Ok(copied)
}

/// Column types by name: every BIGINT column is a time, a count, a flag or a version.
fn is_integer_column(column: &str) -> bool {
    column.ends_with("_at")
        || column.ends_with("_until")
        || matches!(
            column,
            "failures"
                | "version"
                | "enabled"
                | "timeout_secs"
                | "expires_at"
                | "per_person"
                | "iss_required"
                | "at"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::testing::temp_db;

    /// A table added by a migration must be added to the copy too.
    #[tokio::test]
    async fn every_table_is_copied() {
        let (db, _dir) = temp_db().await;
        let mut tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT IN ('_sqlx_migrations', 'job_leases') ORDER BY name",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let mut listed: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
        tables.sort();
        listed.sort();
        assert_eq!(tables, listed);
    }

    /// Every BIGINT column is recognised by name (a NULL must be bound with its type on
    /// PostgreSQL).
    #[tokio::test]
    async fn integer_columns_are_known_by_name() {
        let (db, _dir) = temp_db().await;
        for table in TABLES {
            let columns: Vec<(String, String)> = sqlx::query_as(&format!(
                "SELECT name, upper(type) FROM pragma_table_info('{table}')"
            ))
            .fetch_all(db.pool())
            .await
            .unwrap();
            for (name, kind) in columns {
                assert_eq!(
                    is_integer_column(&name),
                    kind == "BIGINT",
                    "{table}.{name} is {kind}"
                );
            }
        }
    }
}
