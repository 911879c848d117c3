//! MCP protection: the persisted "Require authentication" setting. Read on every `/mcp`
//! request, so it is cached for a few seconds; a change takes effect at once here, and on the
//! other replicas when they hear of it (`MCP_PROTECTION_CHANGED`).

use std::sync::Mutex;

use crate::model::mcp_settings::McpSettingsView;
use crate::server::audit::{self, Actor, Event};
use crate::server::auth::{Identity, list_tokens};
use crate::server::clock::UnixTime;
use crate::server::db::{Db, DbError};
use crate::server::error::AppError;
use crate::server::state::AppState;

pub const REQUIRE_AUTH_KEY: &str = "mcp.require_auth";
/// Change topic: the setting changed.
pub const MCP_PROTECTION_CHANGED: &str = "mcp_protection_changed";
const CACHE_SECS: i64 = 5;

#[derive(Debug, Default)]
pub struct McpProtection {
    cached: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    value: Option<(bool, UnixTime)>,
    /// Bumped by every change made here, so that a read that started before a change cannot
    /// store the older value over it.
    generation: u64,
}

impl McpProtection {
    pub async fn require_auth(&self, db: &Db, now: UnixTime) -> Result<bool, DbError> {
        let generation = {
            let cache = self.cached.lock().expect("protection lock");
            if let Some((value, at)) = cache.value
                && now - at < CACHE_SECS
                && now >= at
            {
                return Ok(value);
            }
            cache.generation
        };
        let value = db.get_setting(REQUIRE_AUTH_KEY).await?.as_deref() == Some("true");
        Ok(self.store_read(generation, value, now))
    }

    /// Keeps what a read found unless a change was made meanwhile; the value to use.
    fn store_read(&self, generation: u64, value: bool, now: UnixTime) -> bool {
        let mut cache = self.cached.lock().expect("protection lock");
        if cache.generation != generation
            && let Some((newer, _)) = cache.value
        {
            return newer;
        }
        cache.value = Some((value, now));
        value
    }

    pub async fn set(&self, db: &Db, value: bool, now: UnixTime) -> Result<(), DbError> {
        db.put_setting(REQUIRE_AUTH_KEY, if value { "true" } else { "false" }, now)
            .await?;
        {
            let mut cache = self.cached.lock().expect("protection lock");
            cache.value = Some((value, now));
            cache.generation += 1;
        }
        db.tell_replicas(MCP_PROTECTION_CHANGED, None).await;
        Ok(())
    }

    /// Another replica changed the setting: the next request reads it again.
    pub fn forget(&self) {
        let mut cache = self.cached.lock().expect("protection lock");
        cache.value = None;
        cache.generation += 1;
    }
}

/// The settings as `caller` may see them: a member sees only their own tokens.
pub async fn settings_view(
    state: &AppState,
    caller: &Identity,
) -> Result<McpSettingsView, AppError> {
    let now = state.now();
    Ok(McpSettingsView {
        require_auth: state.mcp.protection.require_auth(&state.db, now).await?,
        tokens: list_tokens(state, caller).await?,
        can_manage: caller.is_admin(),
        everyone_is_admin: crate::server::auth::everyone_is_admin(&state.config.auth),
        mcp_url: format!("{}/mcp", state.public_origin),
        app_auth_type: state.config.auth.auth_type(),
        now,
    })
}

pub async fn set_require_auth(
    state: &AppState,
    value: bool,
    by: &Identity,
) -> Result<(), AppError> {
    by.require_admin()?;
    let by = by.subject.as_str();
    state
        .mcp
        .protection
        .set(&state.db, value, state.now())
        .await?;
    tracing::info!(require_auth = value, by = %by, "MCP protection changed");
    let event = Event::new("settings.changed", Actor::Person(by.to_string()))
        .on("setting", "mcp.require_auth")
        .detail(serde_json::json!({ "value": value }));
    audit::record(&state.db, state.now(), event).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::testing::temp_db;

    #[tokio::test]
    async fn a_read_that_started_before_a_change_cannot_undo_it() {
        let (db, _dir) = temp_db().await;
        let p = McpProtection::default();
        // A read begins (and finds "off" in the database)...
        let generation = p.cached.lock().unwrap().generation;
        // ...the setting is turned on meanwhile...
        p.set(&db, true, 100).await.unwrap();
        // ...and the read ends: it must not put "off" back.
        assert!(p.store_read(generation, false, 100));
        assert!(p.require_auth(&db, 101).await.unwrap());
    }

    #[tokio::test]
    async fn cached_for_a_few_seconds() {
        let (db, _dir) = temp_db().await;
        let p = McpProtection::default();
        assert!(!p.require_auth(&db, 100).await.unwrap());
        // Another replica turns it on.
        db.put_setting(REQUIRE_AUTH_KEY, "true", 101).await.unwrap();
        assert!(!p.require_auth(&db, 104).await.unwrap());
        assert!(p.require_auth(&db, 105).await.unwrap());
        // Changed here: at once.
        p.set(&db, false, 106).await.unwrap();
        assert!(!p.require_auth(&db, 106).await.unwrap());
    }
}
