//! `gatehouse rotate-secret-key`: every value sealed at rest, re-sealed under `SECRET_KEY`.
//!
//! Each sealed value names the key it was sealed with; one sealed under a key of
//! `SECRET_KEY_PREVIOUS` is opened and sealed again under the current one, in place, and only
//! if nobody changed it meanwhile (a running Gatehouse may be writing: what it writes is under
//! the current key already, or is re-sealed by the next pass). Values handed to clients and signatures are not stored: they
//! stay valid under `SECRET_KEY_PREVIOUS` until their own expiry.

use serde_json::Value;

use super::{MasterKey, Sealer, UnsealError, sha256_hex};
use crate::server::db::sealed::SealedColumn;
use crate::server::db::{Db, DbError};

/// Which sealer a column's values are under.
#[derive(Clone, Copy)]
enum Kind {
    AtRest,
    /// Refresh tokens' successors, under a purpose of their own (`oauth_as::SUCCESSOR_PURPOSE`).
    Successor,
    /// Sealed JSON holding sealed values of the connection's own columns.
    PendingChanges,
}

struct Place {
    at: SealedColumn,
    kind: Kind,
    /// The value's associated data, from its row's key values.
    context: fn(&[String]) -> String,
}

const fn place(
    table: &'static str,
    keys: &'static [&'static str],
    column: &'static str,
    kind: Kind,
    context: fn(&[String]) -> String,
) -> Place {
    Place {
        at: SealedColumn {
            table,
            keys,
            column,
        },
        kind,
        context,
    }
}

/// Every column that holds sealed values, with the context each was sealed with (the same
/// formats as the code that seals them: `connections`, `secrets::vault`, the gateway's
/// headers, the authorization server's successors).
const PLACES: [Place; 11] = [
    place("connections", &["id"], "client_secret", Kind::AtRest, |k| {
        format!("connection/{}/client_secret", k[0])
    }),
    place(
        "connections",
        &["id"],
        "registration_access_token",
        Kind::AtRest,
        |k| format!("connection/{}/registration_access_token", k[0]),
    ),
    place(
        "connection_tokens",
        &["connection_id"],
        "access_token",
        Kind::AtRest,
        |k| format!("connection/{}/access_token", k[0]),
    ),
    place(
        "connection_tokens",
        &["connection_id"],
        "refresh_token",
        Kind::AtRest,
        |k| format!("connection/{}/refresh_token", k[0]),
    ),
    place(
        "connection_grants",
        &["connection_id", "person"],
        "access_token",
        Kind::AtRest,
        |k| {
            format!(
                "connection/{}/person/{}/access_token",
                k[0],
                sha256_hex(&k[1])
            )
        },
    ),
    place(
        "connection_grants",
        &["connection_id", "person"],
        "refresh_token",
        Kind::AtRest,
        |k| {
            format!(
                "connection/{}/person/{}/refresh_token",
                k[0],
                sha256_hex(&k[1])
            )
        },
    ),
    place(
        "connection_states",
        &["state_hash", "connection_id"],
        "code_verifier",
        Kind::AtRest,
        |k| format!("connection/{}/code_verifier", k[1]),
    ),
    place(
        "connection_states",
        &["state_hash", "connection_id"],
        "pending_changes",
        Kind::PendingChanges,
        |k| format!("connection/{}/pending_changes", k[1]),
    ),
    place("mcp_servers", &["id"], "headers", Kind::AtRest, |k| {
        format!("mcp_server/{}/headers", k[0])
    }),
    place("vault_secrets", &["name"], "value", Kind::AtRest, |k| {
        format!("vault/{}", k[0])
    }),
    place(
        "oauth_refresh_tokens",
        &["id"],
        "successor_sealed",
        Kind::Successor,
        |k| format!("oauth_refresh_tokens/{}/successor", k[0]),
    ),
];

/// What the pass did to one column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotated {
    /// `table.column`.
    pub column: String,
    /// Re-sealed under the current key.
    pub resealed: u64,
    /// Under the current key already.
    pub current: u64,
    /// Changed by someone else while the pass ran (their value is under the current key).
    pub changed: u64,
    /// Under a key neither `SECRET_KEY` nor `SECRET_KEY_PREVIOUS` names, or altered: left as
    /// they are, and they will not open.
    pub unreadable: u64,
}

/// The at-rest sealer and the successors' sealer with these keys.
struct Sealers {
    at_rest: Sealer,
    successor: Sealer,
}

/// Passes at most: each one re-seals what a running Gatehouse may have written back under
/// an old key meanwhile (a refresh keeping the old refresh token, an edit keeping a secret).
const MAX_PASSES: u32 = 5;

/// The whole rotation: per column, and whether a last pass found nothing left to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    pub columns: Vec<Rotated>,
    pub passes: u32,
    /// The last pass re-sealed nothing and found nothing changed: every value that opens is
    /// under the current key.
    pub settled: bool,
}

/// Re-seals every sealed value under `current`, opening old ones with `previous`, pass after
/// pass until one has nothing left to do.
pub async fn rotate(
    db: &Db,
    current: &MasterKey,
    previous: &[MasterKey],
    successor_purpose: &str,
) -> Result<Rotation, DbError> {
    let sealers = Sealers {
        at_rest: Sealer::new(current, previous),
        successor: Sealer::for_purpose(current, previous, successor_purpose),
    };
    let mut rotation = Rotation::default();
    while rotation.passes < MAX_PASSES && !rotation.settled {
        let report = one_pass(db, &sealers).await?;
        rotation.passes += 1;
        rotation.settled = report.iter().all(|r| r.resealed == 0 && r.changed == 0);
        if rotation.columns.is_empty() {
            rotation.columns = report;
            continue;
        }
        for (total, pass) in rotation.columns.iter_mut().zip(report) {
            total.resealed += pass.resealed;
            total.changed += pass.changed;
            total.current = pass.current;
            total.unreadable = pass.unreadable;
        }
    }
    Ok(rotation)
}

async fn one_pass(db: &Db, sealers: &Sealers) -> Result<Vec<Rotated>, DbError> {
    let mut report = Vec::new();
    for place in &PLACES {
        let mut done = Rotated {
            column: format!("{}.{}", place.at.table, place.at.column),
            ..Rotated::default()
        };
        for (keys, sealed) in db.sealed_values(place.at).await? {
            let context = (place.context)(&keys);
            match resealed(sealers, place.kind, &keys, &sealed, &context) {
                Ok(None) => done.current += 1,
                Ok(Some(new)) => {
                    if db.replace_sealed(place.at, &keys, &sealed, &new).await? {
                        done.resealed += 1;
                    } else {
                        done.changed += 1;
                    }
                }
                Err(e) => {
                    tracing::warn!(column = %done.column, error = %e, "a sealed value does not open with SECRET_KEY or SECRET_KEY_PREVIOUS");
                    done.unreadable += 1;
                }
            }
        }
        report.push(done);
    }
    Ok(report)
}

/// One value under the current key (`None`: it is already).
fn resealed(
    sealers: &Sealers,
    kind: Kind,
    keys: &[String],
    sealed: &str,
    context: &str,
) -> Result<Option<String>, UnsealError> {
    match kind {
        Kind::AtRest => sealers.at_rest.reseal(sealed, context),
        Kind::Successor => sealers.successor.reseal(sealed, context),
        Kind::PendingChanges => {
            // The changes carry values sealed for the connection's own columns: they are
            // re-sealed too, or applying the changes later would bring old keys back.
            let opened = sealers.at_rest.open(sealed, context)?;
            let mut changes: Value =
                serde_json::from_str(opened.expose()).map_err(|_| UnsealError::Malformed)?;
            let mut inner_changed = false;
            for column in ["client_secret", "registration_access_token"] {
                if let Some(Value::String(inner)) = changes.get(column).cloned() {
                    let inner_context = format!("connection/{}/{column}", keys[1]);
                    if let Some(new) = sealers.at_rest.reseal(&inner, &inner_context)? {
                        changes[column] = Value::String(new);
                        inner_changed = true;
                    }
                }
            }
            if !inner_changed && sealers.at_rest.is_current(sealed) {
                return Ok(None);
            }
            Ok(Some(sealers.at_rest.seal(&changes.to_string(), context)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::testing::temp_db;

    fn key(c: char) -> MasterKey {
        MasterKey::from_bytes(c.to_string().repeat(40))
    }

    #[tokio::test]
    async fn old_values_are_resealed_current_ones_left_and_strangers_reported() {
        let (db, _dir) = temp_db().await;
        let (old, new, stranger) = (key('a'), key('b'), key('c'));
        let now = 1_000;
        for (name, master) in [("OLD", &old), ("NEW", &new), ("STRANGER", &stranger)] {
            let sealed = Sealer::new(master, &[]).seal("value", &format!("vault/{name}"));
            db.put_vault_secret(name, &sealed, "ada", now)
                .await
                .unwrap();
        }
        let report = rotate(&db, &new, std::slice::from_ref(&old), "p")
            .await
            .unwrap();
        assert!(report.settled);
        assert_eq!(report.passes, 2, "one to re-seal, one to find nothing left");
        let vault = report
            .columns
            .iter()
            .find(|r| r.column == "vault_secrets.value")
            .unwrap();
        // Counted current by the last pass: the one it re-sealed too.
        assert_eq!((vault.resealed, vault.current, vault.unreadable), (1, 2, 1));
        // Now under the new key alone, OLD opens.
        let only_new = Sealer::new(&new, &[]);
        for row in db.list_vault_secrets().await.unwrap() {
            let opened = only_new.open(&row.value, &format!("vault/{}", row.name));
            assert_eq!(opened.is_ok(), row.name != "STRANGER", "{}", row.name);
        }
        // A second pass has nothing left to do.
        let again = rotate(&db, &new, std::slice::from_ref(&old), "p")
            .await
            .unwrap();
        assert!(again.columns.iter().all(|r| r.resealed == 0));
        assert_eq!(again.passes, 1);
    }
}
