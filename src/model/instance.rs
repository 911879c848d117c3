use super::session::AuthType;
use serde::{Deserialize, Serialize};

/// Facts about this Gatehouse instance, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub version: String,
    pub auth_type: AuthType,
    /// e.g. "SQLite"
    pub storage_backend: String,
    /// Where the data lives, without credentials (a file path for SQLite).
    pub storage_location: String,
    pub public_url: String,
    pub started_at: i64,
    pub now: i64,
}
