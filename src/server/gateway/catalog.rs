//! The catalog of well-known remote MCP servers, as data: one JSON file per entry under
//! `catalog/`, compiled in, each naming the built-in provider whose connection it needs.
//! `MCP_CATALOG` adds an organization's own entries (or replaces one by id).

use std::sync::Arc;

use serde::Deserialize;

use crate::model::mcp_servers::CatalogEntryView;
use crate::server::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    /// The entry's default server name (the tool prefix).
    pub server_name: String,
    pub description: String,
    pub url: String,
    pub transport: String,
    /// With `sign_in: provider`: the built-in provider whose connection it needs.
    pub provider: Option<String>,
    pub docs_url: String,
    /// How the server is signed in to: `discover` (the MCP authorization spec, no client to
    /// register), `provider` (a client registered with the service), `headers` (a token in
    /// a header) or `none`. Absent: `provider` when a provider is named, else `none`.
    #[serde(default)]
    pub sign_in: Option<String>,
    /// The service's public documentation that says so.
    #[serde(default)]
    pub sources: Vec<String>,
    /// What to know about signing in, in a sentence or two.
    #[serde(default)]
    pub sign_in_notes: Option<String>,
}

impl CatalogEntry {
    pub fn sign_in(&self) -> &str {
        match (&self.sign_in, &self.provider) {
            (Some(s), _) => s,
            (None, Some(_)) => "provider",
            (None, None) => "none",
        }
    }
}

/// The data files, in the order the catalog lists them.
const FILES: &[&str] = &[
    include_str!("../../../catalog/github.json"),
    include_str!("../../../catalog/slack.json"),
    include_str!("../../../catalog/asana.json"),
    include_str!("../../../catalog/notion.json"),
    include_str!("../../../catalog/linear.json"),
    include_str!("../../../catalog/sentry.json"),
    include_str!("../../../catalog/deepwiki.json"),
];

#[derive(Debug, Clone)]
pub struct Catalog(Arc<Vec<CatalogEntry>>);

impl Catalog {
    pub fn builtin() -> Self {
        Catalog(Arc::new(
            FILES
                .iter()
                .map(|f| {
                    serde_json::from_str(f).expect("the catalog files are valid (unit-tested)")
                })
                .collect(),
        ))
    }

    /// The built-in entries plus `json`'s (an array of entries); `is_provider` says which
    /// provider slugs exist.
    pub fn with_extra(json: &str, is_provider: impl Fn(&str) -> bool) -> Result<Self, String> {
        let extra: Vec<CatalogEntry> = serde_json::from_str(json)
            .map_err(|e| format!("not an array of catalog entries: {e}"))?;
        let mut entries = Catalog::builtin().0.as_ref().clone();
        for entry in extra {
            check(&entry, &is_provider)?;
            match entries.iter_mut().find(|e| e.id == entry.id) {
                Some(existing) => *existing = entry,
                None => entries.push(entry),
            }
        }
        Ok(Catalog(Arc::new(entries)))
    }

    pub fn find(&self, id: &str) -> Option<&CatalogEntry> {
        self.0.iter().find(|e| e.id == id)
    }

    pub fn entries(&self) -> &[CatalogEntry] {
        &self.0
    }
}

fn check(entry: &CatalogEntry, is_provider: &impl Fn(&str) -> bool) -> Result<(), String> {
    let id = &entry.id;
    super::servers::check_name(&entry.server_name).map_err(|e| format!("{id}: {e}"))?;
    super::servers::parse_transport(&entry.transport).map_err(|e| format!("{id}: {e}"))?;
    url::Url::parse(&entry.url).map_err(|e| format!("{id}: the URL: {e}"))?;
    if let Some(p) = &entry.provider
        && !is_provider(p)
    {
        return Err(format!("{id}: {p:?} is not a built-in provider"));
    }
    match (entry.sign_in(), &entry.provider) {
        ("provider", Some(_)) | ("discover" | "headers" | "none", None) => Ok(()),
        ("provider", None) => Err(format!(
            "{id}: sign_in \"provider\" needs the provider it signs in with"
        )),
        ("discover" | "headers" | "none", Some(_)) => Err(format!(
            "{id}: a provider goes with sign_in \"provider\" only"
        )),
        (other, _) => Err(format!(
            "{id}: sign_in {other:?} is not one of discover, provider, headers, none"
        )),
    }
}

pub fn views(state: &AppState) -> Vec<CatalogEntryView> {
    state
        .upstreams
        .catalog
        .entries()
        .iter()
        .map(|e| CatalogEntryView {
            id: e.id.clone(),
            name: e.name.clone(),
            description: e.description.clone(),
            url: e.url.clone(),
            transport: e.transport.clone(),
            provider: e.provider.clone(),
            provider_name: e
                .provider
                .as_ref()
                .map(|p| state.provider_name(p).unwrap_or_else(|| p.clone())),
            docs_url: e.docs_url.clone(),
            server_name: e.server_name.clone(),
            sign_in: e.sign_in().to_string(),
            sources: e.sources.clone(),
            sign_in_notes: e.sign_in_notes.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_valid_and_names_a_builtin_provider() {
        let providers = crate::server::connections::Providers::builtin();
        let is_provider = |p: &str| providers.find(p).is_some();
        let catalog = Catalog::builtin();
        assert!(catalog.entries().len() >= 7);
        for entry in catalog.entries() {
            check(entry, &is_provider).unwrap();
            assert!(entry.url.starts_with("https://"), "{}", entry.id);
            // Each says how it is signed in to, citing the service's documentation.
            assert!(entry.sign_in.is_some(), "{}", entry.id);
            assert!(!entry.sources.is_empty(), "{}", entry.id);
            assert!(entry.sources.iter().all(|s| s.starts_with("https://")));
        }
        for (id, sign_in, provider) in [
            ("github", "provider", Some("github_mcp")),
            ("slack", "provider", Some("slack_mcp")),
            ("asana", "provider", Some("asana_mcp")),
            ("notion", "discover", None),
            ("linear", "discover", None),
            ("sentry", "discover", None),
            ("deepwiki", "none", None),
        ] {
            let entry = catalog.find(id).unwrap();
            assert_eq!(
                (entry.sign_in(), entry.provider.as_deref()),
                (sign_in, provider)
            );
        }
        let bad = |json: &str| Catalog::with_extra(json, is_provider).unwrap_err();
        assert!(bad(r#"[{"id": "x", "name": "X", "server_name": "x", "description": "", "url": "https://x", "transport": "http", "provider": "sentry", "sign_in": "discover", "docs_url": ""}]"#).contains("provider goes with"));
        assert!(bad(r#"[{"id": "x", "name": "X", "server_name": "x", "description": "", "url": "https://x", "transport": "http", "provider": null, "sign_in": "magic", "docs_url": ""}]"#).contains("not one of"));
        let extra = Catalog::with_extra(
            r#"[{"id": "sentry", "name": "Sentry (test)", "server_name": "sentry", "description": "d", "url": "http://127.0.0.1:9/mcp", "transport": "http", "provider": "sentry", "docs_url": "https://x"}]"#,
            is_provider,
        )
        .unwrap();
        assert_eq!(extra.find("sentry").unwrap().url, "http://127.0.0.1:9/mcp");
        assert_eq!(extra.entries().len(), catalog.entries().len());
        assert!(Catalog::with_extra(r#"[{"id": "x"}]"#, is_provider).is_err());
        assert!(
            Catalog::with_extra(
                r#"[{"id": "x", "name": "X", "server_name": "x", "description": "", "url": "https://x", "transport": "stdio", "provider": null, "docs_url": ""}]"#,
                is_provider
            )
            .is_err()
        );
    }
}
