//! Storage. One pool behind a repository layer (one submodule per table group) whose SQL is
//! portable: `$1` placeholders, TEXT ids, BIGINT unix seconds, no backend-specific syntax, so
//! SQLite and PostgreSQL run the same queries through sqlx's `Any` driver. Each backend has its
//! own migration folder (`migrations/sqlite`, `migrations/postgres`).

pub mod api_tokens;
pub mod audit;
pub mod changes;
pub mod connections;
pub mod copy;
pub mod gateway;
pub(crate) mod group;
pub mod jobs;
pub mod login_states;
pub mod mcp_sessions;
pub mod oauth;
pub mod revoked_sessions;
pub mod sealed;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::server::files::create_private_dir;

/// Which store, where, and how many connections. `Debug` never shows a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    Sqlite {
        /// The file, as given (relative paths are relative to the working directory).
        path: PathBuf,
        /// The URL handed to sqlx, with `mode=rwc` so the file is created on first start.
        url: String,
        max_connections: u32,
    },
    Postgres {
        /// The URL as given, credentials included: handed to sqlx, never shown.
        url: String,
        /// `host:port/database`, safe to show.
        location: String,
        max_connections: u32,
    },
}

/// Pool sizes when `DATABASE_MAX_CONNECTIONS` is not set.
pub const DEFAULT_SQLITE_CONNECTIONS: u32 = 8;
pub const DEFAULT_POSTGRES_CONNECTIONS: u32 = 10;

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.backend_name())
            .field("location", &self.location())
            .field("max_connections", &self.max_connections())
            .finish()
    }
}

impl DatabaseConfig {
    /// An SQLite file with the default pool (tests, benchmarks, tools).
    pub fn sqlite_file(path: impl Into<PathBuf>) -> DatabaseConfig {
        let path = path.into();
        DatabaseConfig::Sqlite {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            path,
            max_connections: DEFAULT_SQLITE_CONNECTIONS,
        }
    }

    /// Reads a `DATABASE_URL`: `sqlite://path` (created on first start) or
    /// `postgres://…`/`postgresql://…` with any option sqlx understands (`sslmode`, …).
    /// Pure: nothing is opened here. Errors never repeat a password.
    pub fn from_url(value: &str, max_connections: Option<u32>) -> Result<DatabaseConfig, String> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return parse_postgres(value, max_connections);
        }
        let Some(rest) = value.strip_prefix("sqlite:") else {
            return Err(format!(
                "{:?} is neither a sqlite:// nor a postgres:// URL",
                redact_url(value)
            ));
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.is_empty() || path == ":memory:" {
            return Err(
                "needs a file path (an in-memory database would lose everything at exit)".into(),
            );
        }
        let mut url = format!("sqlite://{path}");
        match query {
            Some(q) if q.split('&').any(|kv| kv.starts_with("mode=")) => {
                url.push('?');
                url.push_str(q);
            }
            Some(q) if !q.is_empty() => {
                url.push_str("?mode=rwc&");
                url.push_str(q);
            }
            _ => url.push_str("?mode=rwc"),
        }
        Ok(DatabaseConfig::Sqlite {
            path: PathBuf::from(path),
            url,
            max_connections: max_connections.unwrap_or(DEFAULT_SQLITE_CONNECTIONS),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseConfig::Sqlite { .. } => "SQLite",
            DatabaseConfig::Postgres { .. } => "PostgreSQL",
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseConfig::Postgres { .. })
    }

    /// Where the data lives, safe to show (no credentials).
    pub fn location(&self) -> String {
        match self {
            DatabaseConfig::Sqlite { path, .. } => path.display().to_string(),
            DatabaseConfig::Postgres { location, .. } => location.clone(),
        }
    }

    pub fn max_connections(&self) -> u32 {
        match self {
            DatabaseConfig::Sqlite {
                max_connections, ..
            }
            | DatabaseConfig::Postgres {
                max_connections, ..
            } => *max_connections,
        }
    }

    fn url(&self) -> &str {
        match self {
            DatabaseConfig::Sqlite { url, .. } | DatabaseConfig::Postgres { url, .. } => url,
        }
    }
}

fn parse_postgres(value: &str, max_connections: Option<u32>) -> Result<DatabaseConfig, String> {
    use std::str::FromStr;
    // sqlx's own parser: whatever it accepts (sslmode, sslrootcert, options, host=/socket …)
    // is accepted here, and what it refuses is refused before start-up opens anything.
    let options = sqlx::postgres::PgConnectOptions::from_str(value).map_err(|e| {
        format!(
            "{:?} is not a usable PostgreSQL URL: {}",
            redact_url(value),
            redact_error(&e.to_string(), value)
        )
    })?;
    let database = options.get_database().unwrap_or("(the user's database)");
    let location = format!("{}:{}/{}", options.get_host(), options.get_port(), database);
    Ok(DatabaseConfig::Postgres {
        url: value.to_string(),
        location,
        max_connections: max_connections.unwrap_or(DEFAULT_POSTGRES_CONNECTIONS),
    })
}

/// Drops any password from a URL-like string before it goes into a message.
fn redact_url(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => value.chars().take(200).collect(),
        // Unparseable: keep only the scheme, the rest may hold a password.
        Err(_) => match value.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => value.chars().take(200).collect(),
        },
    }
}

/// A driver's message may quote the URL it was given.
fn redact_error(message: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        Some(password) if !password.is_empty() => message.replace(&password, "***"),
        _ => message.to_string(),
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the {backend} database at {location}: {message}")]
    Connect {
        backend: &'static str,
        location: String,
        message: String,
    },
    #[error("cannot migrate the {backend} database at {location}: {message}")]
    Migrate {
        backend: &'static str,
        location: String,
        message: String,
    },
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

/// SQLite: runs `query`, several statements wrapped in their own `BEGIN` … `COMMIT` and
/// ending with a `SELECT` of the outcome, in one trip to the writer connection (sqlx runs
/// a multi-statement string in one go, binding `$N` across all of them), where a
/// transaction of separate statements makes one trip each. Returns the rows of the `SELECT`s
/// after the `COMMIT`: the outcome is read back, because the rows-affected count of a batch also
/// counts what `BEGIN` and `COMMIT` report (SQLite's count of the statement before). A
/// failure midway rolls back before the connection goes back to the pool.
pub(crate) async fn write_batch_on<'q>(
    writer: &AnyPool,
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
    let mut conn = writer.acquire().await?;
    match query.fetch_all(&mut *conn).await {
        Ok(rows) => Ok(rows),
        Err(e) => {
            if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                // No transaction was open, or the connection is broken: either way, a fresh
                // one is the safe choice.
                conn.close_on_drop();
            }
            Err(e.into())
        }
    }
}

#[derive(Clone, Debug)]
pub struct Db {
    /// Reads (and, on PostgreSQL, everything).
    pool: AnyPool,
    /// Writes: one connection on SQLite, the same pool on PostgreSQL.
    writer: AnyPool,
    config: Arc<DatabaseConfig>,
    /// Names this process among the replicas (leases, change notifications).
    replica: Arc<str>,
    /// What other replicas (and `announce` here) report, for `follow_changes`.
    changes: tokio::sync::broadcast::Sender<changes::Change>,
    /// SQLite: the queue of the group-committing writer (`group`).
    grouped: Option<tokio::sync::mpsc::UnboundedSender<group::Queued>>,
}

impl Db {
    /// Opens (creating when needed) the database and applies pending migrations.
    pub async fn connect(config: &DatabaseConfig) -> Result<Db, DbError> {
        install_default_drivers();
        if let DatabaseConfig::Sqlite { path, .. } = config {
            create_parent_dir(path)?;
        }
        let connect_error = |e: sqlx::Error| DbError::Connect {
            backend: config.backend_name(),
            location: config.location(),
            message: redact_error(&e.to_string(), config.url()),
        };
        let options = |writer: bool| {
            AnyPoolOptions::new()
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if conn.backend_name() == "SQLite" {
                            // The writer never stops after a commit to copy the log into the
                            // database file (and wait for the disk): `checkpoint_wal` does it
                            // beside it.
                            if writer {
                                conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                                // The pages a grant walks stay in memory as the tables grow
                                // (the default is 2 MB; memory is taken only as pages are).
                                conn.execute("PRAGMA cache_size = -32768").await?;
                            }
                            // Reads map the file instead of copying each page in.
                            conn.execute("PRAGMA mmap_size = 268435456").await?;
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
        };
        let pool = options(false)
            .max_connections(config.max_connections())
            .connect(config.url())
            .await
            .map_err(connect_error)?;
        let migrator = match config {
            DatabaseConfig::Sqlite { .. } => &SQLITE_MIGRATIONS,
            // Replicas starting together serialize on the migrator's advisory lock.
            DatabaseConfig::Postgres { .. } => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(|e| DbError::Migrate {
            backend: config.backend_name(),
            location: config.location(),
            message: redact_error(&e.to_string(), config.url()),
        })?;
        // SQLite lets one writer in at a time and makes the others sleep and retry (the
        // busy timeout), which is what stretched the tail of the token endpoint. Writes go
        // through one connection instead, whose queue is fair and never sleeps; reads keep
        // the pool (WAL: they never wait for the writer).
        let writer = match config {
            DatabaseConfig::Sqlite { .. } => options(true)
                .max_connections(1)
                .connect(config.url())
                .await
                .map_err(connect_error)?,
            DatabaseConfig::Postgres { .. } => pool.clone(),
        };
        Ok(Db {
            pool,
            config: Arc::new(config.clone()),
            replica: new_replica_id().into(),
            changes: tokio::sync::broadcast::channel(1024).0,
            grouped: (!config.is_postgres()).then(|| group::spawn(writer.clone())),
            writer,
        })
    }

    /// True on PostgreSQL (several replicas may share it), false on SQLite (one process).
    pub fn is_postgres(&self) -> bool {
        self.config.is_postgres()
    }

    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    fn postgres_url(&self) -> Option<&str> {
        self.is_postgres().then(|| self.config.url())
    }

    /// This process's name among the replicas sharing the store.
    pub fn replica_id(&self) -> &str {
        &self.replica
    }

    /// The same store seen as another replica (tests of leases).
    #[cfg(test)]
    pub(crate) fn as_replica(&self, replica: &str) -> Db {
        Db {
            replica: replica.into(),
            ..self.clone()
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Where writes (and transactions) go: see `connect`.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// A round trip to the database, for `/healthz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// SQLite: `write` with `params` in the next group commit (see `group`); its outcome
    /// rows.
    pub(crate) async fn grouped(
        &self,
        write: &'static group::GroupedWrite,
        params: Vec<group::Param>,
    ) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
        let queue = self.grouped.as_ref().expect("group commits are SQLite's");
        group::run(queue, write, params).await
    }

    /// SQLite: copies the write-ahead log into the database file every second, beside the
    /// writer rather than in its way (see `connect`). Runs until aborted; nothing to do on
    /// PostgreSQL.
    pub async fn checkpoint_wal(self) {
        if self.is_postgres() {
            return;
        }
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "SQLite checkpoint failed; the next one tries again");
            }
        }
    }

    pub async fn close(&self) {
        if !self.is_postgres() {
            // Leaves the database file whole and the log empty.
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.writer)
                .await;
        }
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// A random name for this process (64 bits, hex): not a secret, only distinct.
fn new_replica_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    hex::encode(bytes)
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
        let config = DatabaseConfig::sqlite_file(dir.path().join("nested/gatehouse.db"));
        (Db::connect(&config).await.unwrap(), dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sqlx refuses to start on a database whose applied migration has changed since: a
    /// released migration is never edited (a new one is added instead).
    #[test]
    fn released_sqlite_migrations_are_unchanged() {
        let released = [
            (20261123000001, "d35ddadb33c1ee88"),
            (20261124000001, "b54f2e35b7590f4b"),
            (20261124000002, "7f3ee2f8cfb8fdbc"),
            (20261125000001, "94725f0d353c7547"),
            (20261126000001, "c4d6723c38bd9848"),
            (20261201000001, "812bda02bab082b0"),
        ];
        for (version, prefix) in released {
            let migration = SQLITE_MIGRATIONS
                .iter()
                .find(|m| m.version == version)
                .unwrap_or_else(|| panic!("migration {version} is missing"));
            assert_eq!(
                &hex::encode(&migration.checksum)[..16],
                prefix,
                "migration {version} was edited after release"
            );
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let config =
            DatabaseConfig::from_url("postgres://gh:s3cret@db:5432/gh?sslmode=require", None)
                .unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.location(), "db:5432/gh");
        let e = DatabaseConfig::from_url("postgres://gh:s3cret@db:notaport/gh", None).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let e = DatabaseConfig::from_url("mysql://gh:s3cret@db/gh", None).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
