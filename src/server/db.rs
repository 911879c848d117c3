//! Storage. One pool behind a repository layer (one submodule per table group) whose SQL is
//! portable: `$1` placeholders, TEXT ids, BIGINT unix seconds, no backend-specific syntax, so
//! SQLite and PostgreSQL run the same queries through sqlx's `Any` driver.

pub mod api_tokens;
pub mod connections;
pub mod gateway;
pub mod login_states;
pub mod oauth;
pub mod revoked_sessions;
pub mod settings;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::server::files::create_private_dir;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    Sqlite {
        /// The file, as given (relative paths are relative to the working directory).
        path: PathBuf,
        /// The URL handed to sqlx, with `mode=rwc` so the file is created on first start.
        url: String,
    },
}

impl DatabaseConfig {
    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseConfig::Sqlite { .. } => "SQLite",
        }
    }

    /// Where the data lives, safe to show (no credentials).
    pub fn location(&self) -> String {
        match self {
            DatabaseConfig::Sqlite { path, .. } => path.display().to_string(),
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database at {location}: {source}")]
    Connect {
        location: String,
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
}

impl Db {
    /// Opens (creating when needed) the database and applies pending migrations.
    pub async fn connect(config: &DatabaseConfig) -> Result<Db, DbError> {
        install_default_drivers();
        let (url, max_connections) = match config {
            DatabaseConfig::Sqlite { path, url } => {
                create_parent_dir(path)?;
                (url.as_str(), 8)
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        // WAL lets readers run beside the writer; the busy timeout makes a
                        // second writer wait instead of failing with SQLITE_BUSY.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 5000",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|source| DbError::Connect {
                location: config.location(),
                source,
            })?;
        MIGRATOR.run(&pool).await?;
        Ok(Db { pool })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A round trip to the database, for `/healthz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn create_parent_dir(path: &Path) -> Result<(), DbError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    // The folder holds sealed secrets and token hashes: owner only.
    create_private_dir(dir).map_err(|source| DbError::CreateDir {
        path: dir.display().to_string(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A fresh database in a temporary folder (kept alive by the returned guard).
    pub async fn temp_db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/gatehouse.db");
        let config = DatabaseConfig::Sqlite {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            path,
        };
        (Db::connect(&config).await.unwrap(), dir)
    }
}
