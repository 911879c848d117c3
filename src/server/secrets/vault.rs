//! The secrets vault: named values, sealed at rest, write-only (a value can be replaced,
//! never read back through the UI or API), resolved into upstream headers at call time from
//! `${NAME}` placeholders.

use std::collections::BTreeSet;

use crate::model::mcp_servers::SecretView;
use crate::server::audit::{self, Actor, Event};
use crate::server::error::AppError;
use crate::server::secrets::SecretString;
use crate::server::state::AppState;

/// Largest secret value accepted.
const MAX_VALUE_BYTES: usize = 8 * 1024;

/// `^[A-Z][A-Z0-9_]{0,63}$`, like an environment variable.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_uppercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid secret name: use A-Z, 0-9 and _, starting with a letter (at most 64)"
        ))
    }
}

/// The names a template's `${NAME}` placeholders use. A `$` not followed by `{` is literal.
pub fn placeholders(template: &str) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "a \"${\" placeholder is not closed with \"}\"".to_string())?;
        let name = &after[..end];
        check_name(name)?;
        names.insert(name.to_string());
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// Fills a template's placeholders with `lookup`'s values.
pub fn fill(
    template: &str,
    mut lookup: impl FnMut(&str) -> Result<SecretString, String>,
) -> Result<SecretString, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "a \"${\" placeholder is not closed with \"}\"".to_string())?;
        out.push_str(lookup(&after[..end])?.expose());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(SecretString::new(out))
}

fn context(name: &str) -> String {
    format!("vault/{name}")
}

pub async fn list(state: &AppState) -> Result<Vec<SecretView>, AppError> {
    let servers = state.db.list_mcp_servers().await?;
    Ok(state
        .db
        .list_vault_secrets()
        .await?
        .into_iter()
        .map(|row| SecretView {
            used_by: users(&servers, &row.name),
            name: row.name,
            updated_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect())
}

fn users(servers: &[crate::server::db::gateway::McpServerRow], name: &str) -> Vec<String> {
    servers
        .iter()
        .filter(|s| {
            serde_json::from_str::<Vec<String>>(&s.secret_refs)
                .unwrap_or_default()
                .iter()
                .any(|r| r == name)
        })
        .map(|s| s.name.clone())
        .collect()
}

/// Creates or replaces a secret. The value is sealed before it is stored; nothing returns it.
pub async fn put(state: &AppState, name: &str, value: &str, by: &str) -> Result<(), AppError> {
    check_name(name).map_err(AppError::BadRequest)?;
    if value.is_empty() {
        return Err(AppError::BadRequest("The value is empty.".into()));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(AppError::BadRequest(format!(
            "The value is longer than {MAX_VALUE_BYTES} bytes."
        )));
    }
    // Values go into HTTP headers: a line break would end the header (and start another).
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(AppError::BadRequest(
            "The value contains a line break or another control character.".into(),
        ));
    }
    let sealed = state.sealer.seal(value, &context(name));
    state
        .db
        .put_vault_secret(name, &sealed, by, state.now())
        .await?;
    tracing::info!(secret = name, by, "vault secret saved");
    let event = Event::new("secret.set", Actor::Person(by.to_string())).on("secret", name);
    audit::record(&state.db, state.now(), event).await;
    Ok(())
}

/// Deletes a secret no server uses; otherwise says which do.
pub async fn delete(state: &AppState, name: &str, by: &str) -> Result<(), AppError> {
    check_name(name).map_err(AppError::BadRequest)?;
    let servers = state.db.list_mcp_servers().await?;
    let used_by = users(&servers, name);
    if !used_by.is_empty() {
        return Err(AppError::Conflict(format!(
            "The secret {name} is used by {}: change their headers first.",
            used_by.join(", ")
        )));
    }
    if !state.db.delete_vault_secret(name).await? {
        return Err(AppError::NotFound(format!("No secret named {name}.")));
    }
    tracing::info!(secret = name, by, "vault secret deleted");
    let event = Event::new("secret.deleted", Actor::Person(by.to_string())).on("secret", name);
    audit::record(&state.db, state.now(), event).await;
    Ok(())
}

/// A secret's value, for a request about to be sent.
pub async fn open(state: &AppState, name: &str) -> Result<SecretString, String> {
    let row = state
        .db
        .find_vault_secret(name)
        .await
        .map_err(|e| format!("cannot read the vault: {e}"))?
        .ok_or_else(|| format!("the secret {name} is not in the vault"))?;
    state
        .sealer
        .open(&row.value, &context(name))
        .map_err(|e| format!("the secret {name} cannot be opened: {e}"))
}

/// Whether every name is in the vault; the missing ones otherwise.
pub async fn missing(state: &AppState, names: &BTreeSet<String>) -> Result<Vec<String>, AppError> {
    let mut missing = Vec::new();
    for name in names {
        if state.db.find_vault_secret(name).await?.is_none() {
            missing.push(name.clone());
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_placeholders() {
        assert!(check_name("GITHUB_TOKEN").is_ok());
        for bad in ["", "github", "1X", "A-B", "A B", &"A".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let names = placeholders("Bearer ${A_TOKEN} and ${B}, costs $5").unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["A_TOKEN", "B"]);
        assert!(placeholders("${OPEN").is_err());
        assert!(placeholders("${lower}").is_err());
        let filled = fill("Bearer ${A}-${B}$", |n| {
            Ok(SecretString::new(n.to_lowercase()))
        })
        .unwrap();
        assert_eq!(filled.expose(), "Bearer a-b$");
        assert!(fill("${A}", |n| Err(format!("no {n}"))).is_err());
    }
}
