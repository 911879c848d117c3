//! 2025-era MCP sessions (`Mcp-Session-Id`) live in the store, not in a process:
//! - any replica can continue a session another opened: rmcp asks `SessionStore::load` for a
//!   session it does not hold and replays the client's `initialize` from the row;
//! - an idle session costs a row (a few hundred bytes): the in-memory worker rmcp keeps for a
//!   session is closed right after `initialize` and whenever a session has been quiet for a
//!   minute, and re-made from the row when the next request comes;
//! - a caller holds at most `MCP_MAX_SESSIONS_PER_CALLER` sessions: opening one more ends the
//!   one it used least recently.
//!
//! Rows are keyed by the SHA-256 of the session id. The owner check on every request reads
//! the row, so a session ended on one replica (deleted, evicted, its token deleted) is refused
//! by every replica on its next request.

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};

use crate::server::clock::{Clock, UnixTime};
use crate::server::db::{Db, DbError};
use crate::server::secrets::sha256_hex;

/// A session nobody uses for this long ends (the client then gets 404 and starts anew).
pub const SESSION_IDLE_SECS: i64 = 60 * 60;
/// A session's last use is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;
/// An `initialize` whose answer never went out leaves an unclaimed row for this long.
const UNCLAIMED_SECS: i64 = 5 * 60;

fn key(session_id: &str) -> String {
    sha256_hex(session_id)
}

/// What a request's session id names, for this caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// A live session of this caller.
    Ours,
    /// Unknown, ended, expired, or another caller's: all answered 404 alike.
    NotFound,
}

/// The rows behind rmcp's sessions.
#[derive(Clone)]
pub struct StoredSessions {
    db: Db,
    clock: Arc<dyn Clock>,
    per_caller: u32,
}

impl StoredSessions {
    pub fn new(db: Db, clock: Arc<dyn Clock>, per_caller: u32) -> StoredSessions {
        StoredSessions {
            db,
            clock,
            per_caller,
        }
    }

    /// Whether `session_id` is a live session of `caller`; a use is recorded.
    pub async fn check(
        &self,
        session_id: &str,
        caller: &str,
        now: UnixTime,
    ) -> Result<SessionCheck, DbError> {
        let id = key(session_id);
        let Some(row) = self.db.find_mcp_session(&id).await? else {
            return Ok(SessionCheck::NotFound);
        };
        if row.owner.as_deref() != Some(caller) || row.last_used_at < now - SESSION_IDLE_SECS {
            return Ok(SessionCheck::NotFound);
        }
        if now - row.last_used_at >= TOUCH_EVERY_SECS {
            self.db.touch_mcp_session(&id, now).await?;
        }
        Ok(SessionCheck::Ours)
    }

    /// Gives a session just opened to its caller, and ends the caller's least recently used
    /// sessions beyond the cap; how many were ended.
    pub async fn claim(
        &self,
        session_id: &str,
        caller: &str,
        now: UnixTime,
    ) -> Result<u64, DbError> {
        self.db
            .claim_mcp_session(&key(session_id), caller, now)
            .await?;
        self.db.cap_mcp_sessions(caller, self.per_caller).await
    }

    pub async fn end(&self, session_id: &str) -> Result<(), DbError> {
        self.db.delete_mcp_session(&key(session_id)).await
    }

    /// Ends every session of a caller (its token was deleted).
    pub async fn end_all_of(&self, caller: &str) -> Result<u64, DbError> {
        self.db.delete_mcp_sessions_of(caller).await
    }

    pub async fn count_live(&self, now: UnixTime) -> Result<i64, DbError> {
        self.db.count_mcp_sessions(now - SESSION_IDLE_SECS).await
    }

    pub async fn purge(&self, now: UnixTime) -> Result<u64, DbError> {
        self.db
            .purge_mcp_sessions(now - SESSION_IDLE_SECS, now - UNCLAIMED_SECS)
            .await
    }
}

#[async_trait::async_trait]
impl SessionStore for StoredSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let now = self.clock.now();
        let Some(params) = self
            .db
            .mcp_session_params(&key(session_id), now - SESSION_IDLE_SECS)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(SessionState::new(serde_json::from_str(&params)?)))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let params = serde_json::to_string(&state.initialize_params)?;
        self.db
            .insert_mcp_session(&key(session_id), &params, self.clock.now())
            .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.end(session_id).await?;
        Ok(())
    }
}
