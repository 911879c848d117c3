//! Sealed columns read and written back one value at a time, for `gatehouse
//! rotate-secret-key`. Table and column names come from the fixed list in
//! `secrets::rotation`, never from outside.

use sqlx::Row;

use super::{Db, DbError};

/// Where a sealed value lives: the table, the columns that name its row (and its context),
/// and its column.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    pub keys: &'static [&'static str],
    pub column: &'static str,
}

impl Db {
    /// Every non-null value of the column, with its row's key values (in `keys` order).
    pub async fn sealed_values(
        &self,
        at: SealedColumn,
    ) -> Result<Vec<(Vec<String>, String)>, DbError> {
        let sql = format!(
            "SELECT {}, {} FROM {} WHERE {} IS NOT NULL",
            at.keys.join(", "),
            at.column,
            at.table,
            at.column
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let keys = (0..at.keys.len())
                    .map(|i| row.try_get::<String, _>(i))
                    .collect::<Result<Vec<_>, _>>()?;
                let value = row.try_get::<String, _>(at.keys.len())?;
                Ok((keys, value))
            })
            .collect()
    }

    /// Replaces one value, only if it is still `old` (a writer that changed it meanwhile
    /// wins); whether it was replaced.
    pub async fn replace_sealed(
        &self,
        at: SealedColumn,
        keys: &[String],
        old: &str,
        new: &str,
    ) -> Result<bool, DbError> {
        let conditions: Vec<String> = at
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", i + 3))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} = $1 WHERE {} = $2 AND {}",
            at.table,
            at.column,
            at.column,
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&sql).bind(new).bind(old);
        for key in keys {
            query = query.bind(key);
        }
        Ok(query.execute(self.writer()).await?.rows_affected() == 1)
    }
}
