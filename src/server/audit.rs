//! The audit trail: who did what to what, when, from where, and how it ended, for every
//! security-relevant event. Appended to, never changed; removed only after
//! `AUDIT_RETENTION_DAYS`.
//!
//! Domains record with `record(db, now, Event::new(action, actor)…)` at the point where the
//! event is complete. The client's address comes from the request being served (a task-local
//! the router sets, `with_address`), the replica from the store. Recording never fails the
//! action: a trail that cannot be written is logged as an error.
//!
//! Nothing secret goes in: events name things (a token's id, a secret's name, a client's id),
//! and `detail` carries reasons, names and scopes, never a value that grants access.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use futures::Stream;
use serde_json::Value;

use crate::model::audit::{AUDIT_PAGE, AUDIT_PAGE_MAX, AuditEventView, AuditFilter, AuditPageView};
use crate::server::clock::UnixTime;
use crate::server::db::Db;
use crate::server::db::audit::{AuditQuery, AuditRow};
use crate::server::error::AppError;

tokio::task_local! {
    /// The address of the client whose request is being served.
    static ADDRESS: String;
}

/// Runs `f` (a request's handling) with `address` as the address its events record.
pub async fn with_address<F: Future>(address: IpAddr, f: F) -> F::Output {
    ADDRESS.scope(address.to_string(), f).await
}

fn current_address() -> Option<String> {
    ADDRESS.try_with(Clone::clone).ok()
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person, by subject (username or email).
    Person(String),
    /// A static API token, by id.
    Token(String),
    /// An MCP client of Gatehouse's authorization server, by client id.
    Client(String),
    /// Someone not signed in (a failed sign-in, a refused token).
    Anonymous,
    /// Gatehouse itself (a refresh, a clean-up).
    System,
    /// A `gatehouse` command run on the store, by whom it acted as.
    CommandLine(String),
}

impl Actor {
    fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Actor::Person(p) => ("person", Some(p)),
            Actor::Token(t) => ("token", Some(t)),
            Actor::Client(c) => ("client", Some(c)),
            Actor::Anonymous => ("anonymous", None),
            Actor::System => ("system", None),
            Actor::CommandLine(p) => ("cli", Some(p)),
        }
    }
}

/// One event, built up before `record`.
#[derive(Debug, Clone)]
pub struct Event {
    action: &'static str,
    actor: Actor,
    outcome: &'static str,
    target: Option<(&'static str, String)>,
    detail: Option<Value>,
}

impl Event {
    /// `action` done by `actor`, which succeeded (see `refused`, `failed`).
    pub fn new(action: &'static str, actor: Actor) -> Self {
        Event {
            action,
            actor,
            outcome: "ok",
            target: None,
            detail: None,
        }
    }

    /// What it was done to: a kind (`connection`, `secret`, …) and an id or name.
    pub fn on(mut self, kind: &'static str, target: impl Into<String>) -> Self {
        self.target = Some((kind, target.into()));
        self
    }

    /// Turned down: not allowed, not valid.
    pub fn refused(mut self) -> Self {
        self.outcome = "refused";
        self
    }

    /// Tried and did not work (a provider's error, say).
    pub fn failed(mut self) -> Self {
        self.outcome = "failed";
        self
    }

    /// More about it: a reason, names, scopes. Never a secret.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn action(&self) -> &'static str {
        self.action
    }
}

/// Ids sort by time, then by this process's count, then by replica.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Events by nobody (a failed sign-in, a refused token) one address may add in a minute on
/// one replica. Past it, one `audit.suppressed` event marks the minute and the rest go to the
/// log only: a flood of bad tokens cannot fill the store.
const ANONYMOUS_PER_MINUTE: u32 = 60;

enum Allowance {
    Record,
    /// The first event over the limit this minute: recorded as `audit.suppressed`.
    Mark,
    Drop,
}

fn anonymous_allowance(address: &str, now: UnixTime) -> Allowance {
    static COUNTS: LazyLock<Mutex<HashMap<String, (i64, u32)>>> = LazyLock::new(Mutex::default);
    let minute = now.div_euclid(60);
    let mut counts = COUNTS.lock().expect("the anonymous event counts");
    if counts.len() >= 10_000 {
        counts.retain(|_, (m, _)| *m == minute);
    }
    let entry = counts.entry(address.to_string()).or_insert((minute, 0));
    if entry.0 != minute {
        *entry = (minute, 0);
    }
    entry.1 = entry.1.saturating_add(1);
    match entry.1 {
        n if n <= ANONYMOUS_PER_MINUTE => Allowance::Record,
        n if n == ANONYMOUS_PER_MINUTE + 1 => Allowance::Mark,
        _ => Allowance::Drop,
    }
}

/// Appends `event` to the trail.
pub async fn record(db: &Db, now: UnixTime, event: Event) {
    let event = if event.actor == Actor::Anonymous {
        let address = current_address().unwrap_or_default();
        // Per store and replica: instances in one process (tests) count apart.
        match anonymous_allowance(&format!("{}|{address}", db.replica_id()), now) {
            Allowance::Record => event,
            Allowance::Mark => Event::new("audit.suppressed", Actor::Anonymous)
                .refused()
                .detail(serde_json::json!({
                    "action": event.action,
                    "limit_per_minute": ANONYMOUS_PER_MINUTE,
                })),
            Allowance::Drop => {
                tracing::info!(action = event.action, address = %address, "audit event by nobody not recorded: over the limit for this address this minute");
                return;
            }
        }
    } else {
        event
    };
    let (actor_kind, actor) = event.actor.parts();
    let (target_kind, target) = match event.target {
        Some((kind, target)) => (Some(kind.to_string()), Some(target)),
        None => (None, None),
    };
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1_000_000_000_000;
    let row = AuditRow {
        id: format!("{:012}{sequence:012}{}", now.max(0), db.replica_id()),
        at: now,
        action: event.action.to_string(),
        outcome: event.outcome.to_string(),
        actor_kind: actor_kind.to_string(),
        actor: actor.map(str::to_owned),
        target_kind,
        target,
        address: current_address(),
        replica: db.replica_id().to_string(),
        detail: event.detail.map(|d| d.to_string()),
    };
    if let Err(e) = db.insert_audit_event(&row).await {
        tracing::error!(action = event.action, error = %e, "the audit trail could not record an event");
    }
}

/// A filter from outside, checked: what the store is asked, and the page size.
fn query(filter: &AuditFilter) -> Result<(AuditQuery<'_>, u32), AppError> {
    let bad = |m: String| Err(AppError::BadRequest(m));
    let plain = |v: &str| v.chars().count() <= 200 && v.chars().all(|c| !c.is_control());
    for (name, value) in [
        ("action", &filter.action),
        ("actor", &filter.actor),
        ("target", &filter.target),
    ] {
        if let Some(v) = value
            && !plain(v)
        {
            return bad(format!(
                "{name} must be at most 200 characters, without control characters"
            ));
        }
    }
    // Empty is any outcome, as for the other filters (a form's "any").
    if let Some(o) = filter.outcome.as_deref().filter(|o| !o.is_empty())
        && !matches!(o, "ok" | "refused" | "failed")
    {
        return bad(format!("outcome must be ok, refused or failed, not {o:?}"));
    }
    if let Some(c) = filter.cursor.as_deref()
        && (c.len() > 100 || !c.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return bad("cursor is not one this listing gave".into());
    }
    let limit = filter.limit.unwrap_or(AUDIT_PAGE);
    if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
        return bad(format!("limit must be between 1 and {AUDIT_PAGE_MAX}"));
    }
    let (action, action_prefix) = match filter.action.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => match a.strip_suffix('*') {
            Some(prefix) => (None, Some(prefix)),
            None => (Some(a), None),
        },
        None => (None, None),
    };
    fn some(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|v| !v.is_empty())
    }
    Ok((
        AuditQuery {
            action,
            action_prefix,
            actor: some(&filter.actor),
            targets: some(&filter.target)
                .map(str::to_string)
                .into_iter()
                .collect(),
            outcome: some(&filter.outcome),
            since: filter.since,
            until: filter.until,
            before: some(&filter.cursor),
        },
        limit,
    ))
}

fn view(row: AuditRow) -> AuditEventView {
    AuditEventView {
        id: row.id,
        at: row.at,
        action: row.action,
        outcome: row.outcome,
        actor_kind: row.actor_kind,
        actor: row.actor,
        target_kind: row.target_kind,
        target: row.target,
        address: row.address,
        replica: row.replica,
        detail: row.detail.and_then(|d| serde_json::from_str(&d).ok()),
    }
}

/// One page of events, newest first. For admins: the callers check.
pub async fn list(db: &Db, filter: &AuditFilter) -> Result<AuditPageView, AppError> {
    let (mut q, limit) = query(filter)?;
    if let Some(target) = q.targets.first().cloned() {
        // A name stands for what bears it now (events name their targets by id).
        q.targets.extend(db.audit_target_ids(&target).await?);
    }
    // One more than the page tells whether there is a next one.
    let mut rows = db.list_audit_events(&q, i64::from(limit) + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(AuditPageView {
        events: rows.into_iter().map(view).collect(),
        next_cursor,
    })
}

/// Every event the filter selects, newest first, as JSON lines (`\n` after each), read
/// from the store a page at a time. The filter is checked before the first line.
pub fn export(
    db: Db,
    filter: AuditFilter,
) -> Result<impl Stream<Item = Result<String, AppError>>, AppError> {
    query(&filter)?;
    let start = AuditFilter {
        limit: Some(AUDIT_PAGE_MAX),
        ..filter
    };
    Ok(futures::stream::try_unfold(Some(start), move |next| {
        let db = db.clone();
        async move {
            let Some(filter) = next else {
                return Ok(None);
            };
            let page = list(&db, &filter).await?;
            let lines: String = page
                .events
                .iter()
                .map(|e| format!("{}\n", serde_json::to_string(e).expect("JSON")))
                .collect();
            let next = page.next_cursor.map(|cursor| AuditFilter {
                cursor: Some(cursor),
                ..filter
            });
            Ok(Some((lines, next)))
        }
    }))
}

/// The retention pass: events older than `days` go; how many.
pub async fn purge(db: &Db, now: UnixTime, days: u32) -> Result<u64, AppError> {
    Ok(db
        .purge_audit_events(now - i64::from(days) * 86_400)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::testing::temp_db;

    #[tokio::test]
    async fn events_are_recorded_with_the_requests_address_and_paged() {
        let (db, _dir) = temp_db().await;
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        with_address(address, async {
            record(
                &db,
                100,
                Event::new("secret.set", Actor::Person("ada".into())).on("secret", "GITHUB_TOKEN"),
            )
            .await;
        })
        .await;
        for n in 0..3 {
            record(
                &db,
                200 + n,
                Event::new("connection.refreshed", Actor::System)
                    .on("connection", "c1")
                    .failed()
                    .detail(serde_json::json!({"reason": "invalid_grant"})),
            )
            .await;
        }
        let first = list(
            &db,
            &AuditFilter {
                limit: Some(2),
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(first.events.len(), 2);
        assert_eq!(first.events[0].at, 202);
        assert_eq!(first.events[0].outcome, "failed");
        assert_eq!(first.events[0].actor_kind, "system");
        assert_eq!(first.events[0].address, None, "no request, no address");
        let rest = list(
            &db,
            &AuditFilter {
                cursor: first.next_cursor.clone(),
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(rest.events.len(), 2);
        assert_eq!(rest.next_cursor, None);
        let set = &rest.events[1];
        assert_eq!(set.action, "secret.set");
        assert_eq!(set.address.as_deref(), Some("192.0.2.7"));
        assert_eq!(set.target.as_deref(), Some("GITHUB_TOKEN"));
        let kind = list(
            &db,
            &AuditFilter {
                action: Some("connection.*".into()),
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(kind.events.len(), 3);
        for bad in [
            AuditFilter {
                outcome: Some("maybe".into()),
                ..AuditFilter::default()
            },
            AuditFilter {
                cursor: Some("x' OR 1=1".into()),
                ..AuditFilter::default()
            },
            AuditFilter {
                limit: Some(0),
                ..AuditFilter::default()
            },
        ] {
            assert!(matches!(
                list(&db, &bad).await,
                Err(AppError::BadRequest(_))
            ));
        }
        assert_eq!(purge(&db, 201 + 86_400, 1).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn events_by_nobody_are_limited_per_address_and_minute() {
        let (db, _dir) = temp_db().await;
        let flood = |n: u32, at: UnixTime| {
            let db = db.clone();
            with_address("198.51.100.9".parse().unwrap(), async move {
                for _ in 0..n {
                    record(
                        &db,
                        at,
                        Event::new("mcp.token_refused", Actor::Anonymous).refused(),
                    )
                    .await;
                }
            })
        };
        let minute = 6_000_000;
        flood(ANONYMOUS_PER_MINUTE + 10, minute).await;
        // A person's events are not limited.
        for _ in 0..5 {
            record(
                &db,
                minute,
                Event::new("secret.set", Actor::Person("ada".into())),
            )
            .await;
        }
        let all = AuditFilter {
            limit: Some(AUDIT_PAGE_MAX),
            ..AuditFilter::default()
        };
        let events = list(&db, &all).await.unwrap().events;
        let count = |action: &str| events.iter().filter(|e| e.action == action).count();
        assert_eq!(count("mcp.token_refused"), ANONYMOUS_PER_MINUTE as usize);
        assert_eq!(count("audit.suppressed"), 1);
        assert_eq!(count("secret.set"), 5);
        // The next minute starts afresh.
        flood(1, minute + 60).await;
        let events = list(&db, &all).await.unwrap().events;
        assert_eq!(
            events
                .iter()
                .filter(|e| e.action == "mcp.token_refused")
                .count(),
            ANONYMOUS_PER_MINUTE as usize + 1
        );
    }
}
