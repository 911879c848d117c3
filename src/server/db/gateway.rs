//! Upstream MCP server entries and the secrets vault. Sealed columns stay sealed here.

use sqlx::FromRow;

use super::{Db, DbError};
use crate::server::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct McpServerRow {
    pub id: String,
    pub name: String,
    pub url: String,
    pub transport: String,
    pub auth: String,
    pub connection_id: Option<String>,
    /// Sealed JSON of `[name, template]` pairs.
    pub headers: Option<String>,
    /// JSON array of vault names.
    pub secret_refs: String,
    pub timeout_secs: i64,
    pub enabled: i64,
    pub catalog_id: Option<String>,
    /// JSON of `model::mcp_servers::ServerPolicy`.
    pub policy: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SERVER_COLUMNS: &str = "id, name, url, transport, auth, connection_id, headers, secret_refs, \
     timeout_secs, enabled, catalog_id, policy, created_by, created_at, updated_at";

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct VaultSecretRow {
    pub name: String,
    /// Sealed.
    pub value: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Db {
    pub async fn list_mcp_servers(&self) -> Result<Vec<McpServerRow>, DbError> {
        Ok(sqlx::query_as::<_, McpServerRow>(&format!(
            "SELECT {SERVER_COLUMNS} FROM mcp_servers ORDER BY name"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn find_mcp_server(&self, id: &str) -> Result<Option<McpServerRow>, DbError> {
        Ok(sqlx::query_as::<_, McpServerRow>(&format!(
            "SELECT {SERVER_COLUMNS} FROM mcp_servers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// `false` when the name is taken.
    pub async fn insert_mcp_server(&self, row: &McpServerRow) -> Result<bool, DbError> {
        let done = sqlx::query(&format!(
            "INSERT INTO mcp_servers ({SERVER_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15 WHERE NOT EXISTS (SELECT 1 FROM mcp_servers WHERE name = $2)"
        ))
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.url)
        .bind(&row.transport)
        .bind(&row.auth)
        .bind(&row.connection_id)
        .bind(&row.headers)
        .bind(&row.secret_refs)
        .bind(row.timeout_secs)
        .bind(row.enabled)
        .bind(&row.catalog_id)
        .bind(&row.policy)
        .bind(&row.created_by)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// `false` when the new name is another server's.
    pub async fn update_mcp_server(&self, row: &McpServerRow) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE mcp_servers SET name = $2, url = $3, transport = $4, auth = $5, \
             connection_id = $6, headers = $7, secret_refs = $8, timeout_secs = $9, enabled = $10, \
             updated_at = $11, policy = $12 WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM mcp_servers WHERE name = $2 AND id <> $1)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.url)
        .bind(&row.transport)
        .bind(&row.auth)
        .bind(&row.connection_id)
        .bind(&row.headers)
        .bind(&row.secret_refs)
        .bind(row.timeout_secs)
        .bind(row.enabled)
        .bind(row.updated_at)
        .bind(&row.policy)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_mcp_server(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM mcp_servers WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Names of the servers that send a connection's token.
    pub async fn mcp_servers_using_connection(&self, id: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM mcp_servers WHERE connection_id = $1 ORDER BY name",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn list_vault_secrets(&self) -> Result<Vec<VaultSecretRow>, DbError> {
        Ok(sqlx::query_as::<_, VaultSecretRow>(
            "SELECT name, value, created_by, created_at, updated_at FROM vault_secrets ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn find_vault_secret(&self, name: &str) -> Result<Option<VaultSecretRow>, DbError> {
        Ok(sqlx::query_as::<_, VaultSecretRow>(
            "SELECT name, value, created_by, created_at, updated_at FROM vault_secrets WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Creates or replaces a secret (SQLite and PostgreSQL both have `ON CONFLICT`).
    pub async fn put_vault_secret(
        &self,
        name: &str,
        sealed: &str,
        by: &str,
        now: UnixTime,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO vault_secrets (name, value, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO UPDATE SET value = $2, \
             created_by = $3, updated_at = $4",
        )
        .bind(name)
        .bind(sealed)
        .bind(by)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn delete_vault_secret(&self, name: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM vault_secrets WHERE name = $1")
            .bind(name)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
