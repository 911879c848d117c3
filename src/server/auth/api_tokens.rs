//! Static API tokens: `gatehouse_at_` + 256 random bits (base64url). The value is returned once
//! at creation; the database holds its SHA-256 only. Verification hashes the presented value
//! and looks the digest up, so comparing secrets never happens in application code. Uses are
//! noted in memory and written in batches (`LastUsedTracker`), not once per request.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::json;

use super::Identity;
use crate::model::mcp_settings::{ApiTokenView, CreatedTokenView, TokenScope};
use crate::server::audit::{self, Event};
use crate::server::clock::UnixTime;
use crate::server::db::api_tokens::ApiTokenRow;
use crate::server::db::{Db, DbError};
use crate::server::error::AppError;
use crate::server::secrets::{random_id, random_token, sha256_hex};
use crate::server::state::AppState;

pub const TOKEN_PREFIX: &str = "gatehouse_at_";
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_LIFETIME_DAYS: i64 = 3650;
/// A presented token longer than this is not one of ours; refused before hashing.
const MAX_TOKEN_LEN: usize = 256;

/// What a caller asks for when creating a token (REST body and server function alike).
#[derive(utoipa::ToSchema, Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// What it is for (trimmed; at most 100 characters).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
    )]
    pub name: String,
    /// Defaults to `["mcp"]`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::model::mcp_settings::TokenScope>>, min_items = 1)]
    pub scopes: Option<Vec<String>>,
    /// Days until it stops working (not with `expires_at`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
    /// Unix seconds; an alternative to `expires_in_days`.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub name: String,
    pub scopes: BTreeSet<TokenScope>,
    pub expires_at: Option<UnixTime>,
}

impl NewTokenRequest {
    pub fn validate(self, now: UnixTime) -> Result<NewToken, AppError> {
        let bad = |m: &str| Err(AppError::BadRequest(m.to_string()));
        let name = self.name.trim().to_string();
        if name.is_empty() {
            return bad(
                "Give the token a name, e.g. the client that will use it (\"Claude Desktop\").",
            );
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return bad("The name is longer than 100 characters.");
        }
        if name.chars().any(char::is_control) {
            return bad("The name must not contain control characters.");
        }
        let requested = self.scopes.unwrap_or_else(|| vec!["mcp".into()]);
        if requested.is_empty() {
            return bad("Choose at least one scope: mcp, connections:token.");
        }
        let mut scopes = BTreeSet::new();
        for scope in &requested {
            match TokenScope::parse(scope) {
                Some(s) => {
                    scopes.insert(s);
                }
                None => {
                    return Err(AppError::BadRequest(format!(
                        "Unknown scope {scope:?}; the scopes are mcp and connections:token."
                    )));
                }
            }
        }
        let expires_at = match (self.expires_in_days, self.expires_at) {
            (Some(_), Some(_)) => return bad("Give expires_in_days or expires_at, not both."),
            (Some(days), None) if !(1..=MAX_LIFETIME_DAYS).contains(&days) => {
                return bad("expires_in_days must be between 1 and 3650.");
            }
            (Some(days), None) => Some(now + days * 86_400),
            (None, Some(at)) if at <= now => return bad("expires_at is in the past."),
            (None, Some(at)) if at > now + MAX_LIFETIME_DAYS * 86_400 => {
                return bad("expires_at is more than ten years away.");
            }
            (None, at) => at,
        };
        Ok(NewToken {
            name,
            scopes,
            expires_at,
        })
    }
}

/// A fresh token value and what is stored of it.
pub struct GeneratedToken {
    pub value: String,
    pub hash: String,
    pub hint: String,
}

pub fn generate() -> GeneratedToken {
    let value = format!("{TOKEN_PREFIX}{}", random_token());
    let hint = format!("{TOKEN_PREFIX}…{}", &value[value.len() - 4..]);
    GeneratedToken {
        hash: sha256_hex(&value),
        value,
        hint,
    }
}

pub fn parse_scopes(stored: &str) -> BTreeSet<TokenScope> {
    stored
        .split_whitespace()
        .filter_map(TokenScope::parse)
        .collect()
}

fn join_scopes(scopes: &BTreeSet<TokenScope>) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn view(row: &ApiTokenRow, last_used_at: Option<UnixTime>, now: UnixTime) -> ApiTokenView {
    ApiTokenView {
        id: row.id.clone(),
        name: row.name.clone(),
        scopes: parse_scopes(&row.scopes).into_iter().collect(),
        hint: row.hint.clone(),
        created_by: row.created_by.clone(),
        created_at: row.created_at,
        last_used_at: last_used_at.max(row.last_used_at),
        expires_at: row.expires_at,
        expired: row.expires_at.is_some_and(|e| e <= now),
    }
}

pub async fn create_token(
    state: &AppState,
    request: NewTokenRequest,
    creator: &Identity,
) -> Result<CreatedTokenView, AppError> {
    let now = state.now();
    let new = request.validate(now)?;
    // Members may hold either scope: a token acts as its creator, so a member's
    // connections:token reaches their own grants of per-person connections and nothing else
    // (the token route checks the role at each use).
    let created_by = creator.subject.as_str();
    let generated = generate();
    let row = ApiTokenRow {
        id: random_id(),
        name: new.name,
        token_hash: generated.hash,
        hint: generated.hint,
        scopes: join_scopes(&new.scopes),
        created_by: created_by.to_string(),
        creator_admin_groups: creator.admin_groups.join(","),
        created_at: now,
        last_used_at: None,
        expires_at: new.expires_at,
    };
    state.db.insert_api_token(&row).await?;
    tracing::info!(token_id = %row.id, name = %row.name, scopes = %row.scopes, by = %created_by, "API token created");
    let event = Event::new("api_token.created", creator.actor())
        .on("api_token", &row.id)
        .detail(json!({"name": row.name, "scopes": row.scopes, "expires_at": row.expires_at}));
    audit::record(&state.db, now, event).await;
    Ok(CreatedTokenView {
        token: view(&row, None, now),
        value: generated.value,
        mcp_url: format!("{}/mcp", state.public_origin),
    })
}

/// Every token for an admin; a member's own for a member.
pub async fn list_tokens(
    state: &AppState,
    caller: &Identity,
) -> Result<Vec<ApiTokenView>, AppError> {
    let now = state.now();
    let only = (!caller.is_admin()).then_some(caller.subject.as_str());
    let rows = state.db.list_api_tokens(only).await?;
    Ok(rows
        .iter()
        .map(|row| view(row, state.api_tokens.uses.pending(&row.id), now))
        .collect())
}

/// Deletes a token; it stops working at once here, and on the other replicas as soon as they
/// hear of it. The caller also ends the MCP sessions it opened (`gateway::end_token_sessions`).
pub async fn delete_token(state: &AppState, id: &str, caller: &Identity) -> Result<(), AppError> {
    let missing = || AppError::NotFound(format!("There is no API token with id {id:?}."));
    // A member's view has only their own tokens: another's is not there for them.
    if !caller.is_admin() {
        let token = state.db.find_api_token(id).await?;
        if !caller.may_act_on(token.as_ref().map(|t| t.created_by.as_str())) {
            return Err(missing());
        }
    }
    let deleted_by = caller.subject.as_str();
    if !state.db.delete_api_token(id).await? {
        return Err(missing());
    }
    state.api_tokens.forget(id);
    state.db.tell_replicas(API_TOKEN_DELETED, Some(id)).await;
    tracing::info!(token_id = %id, by = %deleted_by, "API token deleted");
    let event = Event::new("api_token.deleted", caller.actor()).on("api_token", id);
    audit::record(&state.db, state.now(), event).await;
    Ok(())
}

fn split_groups(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// Change topic: an API token was deleted (key: its id).
pub const API_TOKEN_DELETED: &str = "api_token_deleted";

/// A presented token that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub id: String,
    pub name: String,
    /// Who created it: the token acts as them.
    pub created_by: String,
    /// The admin groups the creator's latest sign-in reported.
    pub creator_admin_groups: Vec<String>,
    pub scopes: BTreeSet<TokenScope>,
    pub expires_at: Option<UnixTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Unknown,
    Expired,
}

/// Verified tokens, remembered for a few seconds so a busy client costs one database lookup per
/// few seconds rather than one per request. A token deleted here is forgotten at once; one
/// deleted by another replica stops working here within `CACHE_SECS`.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// SHA-256 of the token → what it verified as, and when.
    map: HashMap<String, (VerifiedToken, UnixTime)>,
    /// Bumped by every deletion here, so that a lookup that started before a deletion cannot
    /// put the deleted token back.
    generation: u64,
}

const CACHE_SECS: i64 = 5;
const CACHE_MAX: usize = 10_000;

impl VerifiedTokens {
    /// The cached verification, or the generation a database lookup starts from.
    fn get(&self, hash: &str, now: UnixTime) -> Result<VerifiedToken, u64> {
        let entries = self.entries.lock().expect("token cache lock");
        match entries.map.get(hash) {
            Some((token, at)) if now >= *at && now - at < CACHE_SECS => Ok(token.clone()),
            _ => Err(entries.generation),
        }
    }

    /// Remembers a lookup's result; `false` when a token was deleted while it ran (the
    /// caller looks again rather than trust it).
    fn put(&self, generation: u64, hash: String, token: VerifiedToken, now: UnixTime) -> bool {
        let mut entries = self.entries.lock().expect("token cache lock");
        if entries.generation != generation {
            return false;
        }
        if entries.map.len() >= CACHE_MAX {
            entries.map.retain(|_, (_, at)| now - *at < CACHE_SECS);
        }
        if entries.map.len() < CACHE_MAX {
            entries.map.insert(hash, (token, now));
        }
        true
    }

    pub fn forget(&self, id: &str) {
        let mut entries = self.entries.lock().expect("token cache lock");
        entries.map.retain(|_, (token, _)| token.id != id);
        entries.generation += 1;
    }

    pub fn forget_all(&self) {
        let mut entries = self.entries.lock().expect("token cache lock");
        entries.map.clear();
        entries.generation += 1;
    }
}

/// API tokens as the request path sees them: verification (with its short cache) and the
/// batching of last-used times.
#[derive(Debug, Default)]
pub struct ApiTokens {
    pub verified: VerifiedTokens,
    pub uses: LastUsedTracker,
}

impl ApiTokens {
    /// Checks a presented token and notes its use. `Ok(Err(_))` is a refusal, `Err(_)` a
    /// failure to check.
    pub async fn verify(
        &self,
        db: &Db,
        presented: &str,
        now: UnixTime,
    ) -> Result<Result<VerifiedToken, TokenRejection>, DbError> {
        if !presented.starts_with(TOKEN_PREFIX) || presented.len() > MAX_TOKEN_LEN {
            return Ok(Err(TokenRejection::Unknown));
        }
        let hash = sha256_hex(presented);
        let mut attempts = 0;
        let token = loop {
            let generation = match self.verified.get(&hash, now) {
                Ok(token) => break token,
                Err(generation) => generation,
            };
            let Some(row) = db.find_api_token_by_hash(&hash).await? else {
                return Ok(Err(TokenRejection::Unknown));
            };
            let token = VerifiedToken {
                scopes: parse_scopes(&row.scopes),
                created_by: row.created_by,
                creator_admin_groups: split_groups(&row.creator_admin_groups),
                id: row.id,
                name: row.name,
                expires_at: row.expires_at,
            };
            attempts += 1;
            // A deletion ran meanwhile: what was read may be the deleted token. Look again
            // (deletions are rare: a second look settles it).
            if self
                .verified
                .put(generation, hash.clone(), token.clone(), now)
                || attempts > 2
            {
                break token;
            }
        };
        if token.expires_at.is_some_and(|e| e <= now) {
            return Ok(Err(TokenRejection::Expired));
        }
        self.uses.record(&token.id, now);
        Ok(Ok(token))
    }

    /// After a deletion: no cached verification, no pending use.
    pub fn forget(&self, id: &str) {
        self.verified.forget(id);
        self.uses.forget(id);
    }

    /// Every token is looked up again (another replica's changes may have been missed).
    pub fn forget_verifications(&self) {
        self.verified.forget_all();
    }
}

/// Last-used times noted in memory and written to the database in batches (every 30 s and at
/// shutdown), so a busy token costs no write per request.
#[derive(Debug, Default)]
pub struct LastUsedTracker {
    pending: Mutex<HashMap<String, UnixTime>>,
}

impl LastUsedTracker {
    pub fn record(&self, id: &str, now: UnixTime) {
        let mut pending = self.pending.lock().expect("tracker lock");
        match pending.get_mut(id) {
            Some(at) => *at = (*at).max(now),
            None => {
                pending.insert(id.to_string(), now);
            }
        }
    }

    pub fn pending(&self, id: &str) -> Option<UnixTime> {
        self.pending.lock().expect("tracker lock").get(id).copied()
    }

    pub fn forget(&self, id: &str) {
        self.pending.lock().expect("tracker lock").remove(id);
    }

    /// Writes what has accumulated. On failure the uses go back into the queue (merged with
    /// newer ones), so nothing is lost to a transient database error.
    pub async fn flush(&self, db: &Db) -> Result<usize, DbError> {
        let batch: Vec<(String, UnixTime)> =
            std::mem::take(&mut *self.pending.lock().expect("tracker lock"))
                .into_iter()
                .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        match db.record_api_token_use(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                for (id, at) in &batch {
                    self.record(id, *at);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::testing::temp_db;

    const NOW: i64 = 1_800_000_000;

    fn req(name: &str) -> NewTokenRequest {
        NewTokenRequest {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_have_the_prefix_and_256_bits() {
        let t = generate();
        assert!(t.value.starts_with(TOKEN_PREFIX));
        assert_eq!(t.value.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(t.hash, sha256_hex(&t.value));
        assert!(t.hint.ends_with(&t.value[t.value.len() - 4..]));
        assert!(
            !t.hint
                .contains(&t.value[TOKEN_PREFIX.len()..TOKEN_PREFIX.len() + 10])
        );
    }

    #[test]
    fn validation() {
        let ok = req("  Claude Desktop ").validate(NOW).unwrap();
        assert_eq!(ok.name, "Claude Desktop");
        assert_eq!(ok.scopes, BTreeSet::from([TokenScope::Mcp]));
        assert_eq!(ok.expires_at, None);

        let err = |r: NewTokenRequest| match r.validate(NOW) {
            Err(AppError::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        };
        assert!(err(req(" ")).contains("name"));
        assert!(err(req(&"x".repeat(101))).contains("100"));
        assert!(err(req("a\u{7}b")).contains("control"));
        assert!(
            err(NewTokenRequest {
                scopes: Some(vec![]),
                ..req("a")
            })
            .contains("at least one")
        );
        assert!(
            err(NewTokenRequest {
                scopes: Some(vec!["admin".into()]),
                ..req("a")
            })
            .contains("admin")
        );
        assert!(
            err(NewTokenRequest {
                expires_in_days: Some(0),
                ..req("a")
            })
            .contains("between")
        );
        assert!(
            err(NewTokenRequest {
                expires_at: Some(NOW - 1),
                ..req("a")
            })
            .contains("past")
        );
        assert!(
            err(NewTokenRequest {
                expires_at: Some(NOW + 10),
                expires_in_days: Some(1),
                ..req("a")
            })
            .contains("not both")
        );

        let both = NewTokenRequest {
            scopes: Some(vec!["connections:token".into(), "mcp".into(), "mcp".into()]),
            expires_in_days: Some(30),
            ..req("ci")
        }
        .validate(NOW)
        .unwrap();
        assert_eq!(both.scopes.len(), 2);
        assert_eq!(both.expires_at, Some(NOW + 30 * 86_400));
        assert_eq!(join_scopes(&both.scopes), "mcp connections:token");
        assert_eq!(parse_scopes("mcp connections:token junk"), both.scopes);
    }

    /// A stored token "t1" for the value `t`.
    fn stored(t: &GeneratedToken, expires_at: Option<i64>) -> ApiTokenRow {
        ApiTokenRow {
            id: "t1".into(),
            name: "ci".into(),
            token_hash: t.hash.clone(),
            hint: t.hint.clone(),
            scopes: "mcp".into(),
            created_by: "admin".into(),
            creator_admin_groups: String::new(),
            created_at: NOW,
            last_used_at: None,
            expires_at,
        }
    }

    #[tokio::test]
    async fn verify_and_flush() {
        let (db, _dir) = temp_db().await;
        let tokens = ApiTokens::default();
        let uses = &tokens.uses;
        let t = generate();
        db.insert_api_token(&stored(&t, Some(NOW + 100)))
            .await
            .unwrap();

        let ok = tokens
            .verify(&db, &t.value, NOW + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ok.id, "t1");
        assert_eq!(uses.pending("t1"), Some(NOW + 1));
        assert_eq!(
            tokens.verify(&db, "gatehouse_at_nope", NOW).await.unwrap(),
            Err(TokenRejection::Unknown)
        );
        assert_eq!(
            tokens.verify(&db, "Bearer xyz", NOW).await.unwrap(),
            Err(TokenRejection::Unknown)
        );
        assert_eq!(
            tokens.verify(&db, &t.value, NOW + 100).await.unwrap(),
            Err(TokenRejection::Expired)
        );

        // Nothing written until the flush.
        assert_eq!(
            db.find_api_token_by_hash(&t.hash)
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            None
        );
        tokens
            .verify(&db, &t.value, NOW + 5)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(uses.flush(&db).await.unwrap(), 1);
        assert_eq!(
            db.find_api_token_by_hash(&t.hash)
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(NOW + 5)
        );
        assert_eq!(uses.flush(&db).await.unwrap(), 0);
    }

    #[test]
    fn a_lookup_that_started_before_a_deletion_is_not_cached() {
        let cache = VerifiedTokens::default();
        let token = VerifiedToken {
            id: "t1".into(),
            name: "n".into(),
            created_by: "admin".into(),
            creator_admin_groups: Vec::new(),
            scopes: BTreeSet::new(),
            expires_at: None,
        };
        // A lookup begins (and reads the token from the database)...
        let generation = cache.get("h", NOW).unwrap_err();
        // ...the token is deleted meanwhile...
        cache.forget("t1");
        // ...and the lookup ends: it must not be remembered as valid.
        assert!(!cache.put(generation, "h".into(), token.clone(), NOW));
        assert!(cache.get("h", NOW).is_err());
        let fresh = cache.get("h", NOW).unwrap_err();
        assert!(cache.put(fresh, "h".into(), token, NOW));
        assert!(cache.get("h", NOW).is_ok());
    }

    #[tokio::test]
    async fn verified_tokens_are_cached_briefly() {
        let (db, _dir) = temp_db().await;
        let tokens = ApiTokens::default();
        let t = generate();
        let row = stored(&t, None);
        db.insert_api_token(&row).await.unwrap();
        assert!(tokens.verify(&db, &t.value, NOW).await.unwrap().is_ok());
        // Deleted by another replica: still accepted from the cache for a few seconds...
        db.delete_api_token("t1").await.unwrap();
        assert!(
            tokens
                .verify(&db, &t.value, NOW + CACHE_SECS - 1)
                .await
                .unwrap()
                .is_ok()
        );
        // ...then refused.
        assert_eq!(
            tokens
                .verify(&db, &t.value, NOW + CACHE_SECS)
                .await
                .unwrap(),
            Err(TokenRejection::Unknown)
        );
        // Deleted here: refused at once.
        db.insert_api_token(&row).await.unwrap();
        assert!(
            tokens
                .verify(&db, &t.value, NOW + 10)
                .await
                .unwrap()
                .is_ok()
        );
        db.delete_api_token("t1").await.unwrap();
        tokens.forget("t1");
        assert_eq!(
            tokens.verify(&db, &t.value, NOW + 10).await.unwrap(),
            Err(TokenRejection::Unknown)
        );
    }
}
