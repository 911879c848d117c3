//! Upstream MCP servers behind `/mcp`, the secrets vault their headers draw on, and the
//! catalog of well-known remote servers.

use serde::{Deserialize, Serialize};

/// An upstream server entry as the operator enters it. `headers: None` on an edit keeps the
/// stored headers (their values are never sent back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct McpServerInput {
    #[cfg_attr(feature = "ssr", schema(required = true, schema_with = crate::model::schemas::server_name))]
    pub name: String,
    #[cfg_attr(feature = "ssr", schema(required = true, schema_with = crate::model::schemas::url))]
    pub url: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::transport))]
    pub transport: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::schemas::server_auth))]
    pub auth: String,
    /// With `auth: connection`: the connection whose access token is sent as Bearer.
    pub connection_id: Option<String>,
    /// With `auth: headers`: `[name, value]` pairs; values may hold `${NAME}` placeholders
    /// resolved from the vault at call time.
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::model::optional_pairs_schema))]
    pub headers: Option<Vec<(String, String)>>,
    /// Seconds, 1 to 300 (default 30).
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 300))]
    pub timeout_secs: Option<i64>,
    /// Default true.
    pub enabled: Option<bool>,
    /// The catalog entry this came from.
    pub catalog_id: Option<String>,
    /// What of the server `/mcp` offers; `None` on an edit keeps the stored policy, on a
    /// creation means everything.
    pub policy: Option<ServerPolicy>,
    /// With `auth: discover` (creation only): how the connection it signs in with is made.
    pub sign_in: Option<SignInInput>,
}

/// `auth: discover`: Gatehouse finds the server's authorization server and creates the
/// connection for it (shared or per person); a client ID is needed only when that server
/// neither registers clients nor accepts Gatehouse's client ID metadata document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SignInInput {
    pub per_person: bool,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ToolSummaryView {
    /// As `/mcp` lists it: `<server>__<tool>`.
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct McpServerView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub transport: String,
    pub auth: String,
    pub connection_id: Option<String>,
    pub connection_name: Option<String>,
    /// Header names only; the values are write-only.
    pub header_names: Vec<String>,
    /// Vault names the headers use.
    pub secret_refs: Vec<String>,
    pub timeout_secs: i64,
    pub enabled: bool,
    pub catalog_id: Option<String>,
    /// `healthy`, `failing`, `disabled` or `unknown` (not contacted yet).
    pub status: String,
    pub last_error: Option<String>,
    pub latency_ms: Option<u64>,
    pub tools: Vec<ToolSummaryView>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Reached through a per-person connection: each caller uses their own account, and this
    /// says whether the viewer has connected theirs.
    #[serde(default)]
    pub personal: Option<PersonalAccountView>,
    /// Which tools, prompts and resources `/mcp` offers.
    #[serde(default)]
    pub policy: ServerPolicy,
    /// How its tool calls went lately on this replica (admins only).
    #[serde(default)]
    pub calls: Option<UpstreamCallsView>,
}

/// An upstream's recent tool calls as one replica saw them: the same measurements as
/// `/metrics`' `gatehouse_upstream_call_duration_seconds` and `gatehouse_mcp_tool_calls_total`,
/// over the latest calls of the last hour (at most `UPSTREAM_WINDOW_CALLS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpstreamCallsView {
    pub calls: u32,
    /// Calls that failed: not answered, timed out, or answered with a protocol error (a
    /// tool's own error result is an answer).
    pub failed: u32,
    /// Latency percentiles of the answered calls, in milliseconds.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

/// How many of an upstream's latest calls `UpstreamCallsView` covers.
pub const UPSTREAM_WINDOW_CALLS: usize = 1000;

impl UpstreamCallsView {
    /// "p50 120 ms · p95 480 ms · p99 900 ms · 2.0% failed of 150 calls".
    pub fn summary(&self) -> String {
        let ms = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| format!("{v} ms"));
        let failed = if self.calls == 0 {
            0.0
        } else {
            f64::from(self.failed) * 100.0 / f64::from(self.calls)
        };
        format!(
            "p50 {} · p95 {} · p99 {} · {failed:.1}% failed of {} calls",
            ms(self.p50_ms),
            ms(self.p95_ms),
            ms(self.p99_ms),
            self.calls
        )
    }
}

/// The viewer's own account of a per-person server's connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PersonalAccountView {
    pub connection_id: String,
    pub connection_name: String,
    pub status: crate::model::connections::ConnectionStatus,
}

/// What "Test" found: the tools, or the precise error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct McpServerTestView {
    pub ok: bool,
    pub latency_ms: u64,
    pub server_name: Option<String>,
    pub protocol_version: Option<String>,
    pub tools: Vec<ToolSummaryView>,
    pub error: Option<String>,
}

/// A vault secret: its name and who uses it, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SecretView {
    pub name: String,
    pub used_by: Vec<String>,
    pub updated_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SecretInput {
    pub value: String,
}

/// A well-known remote MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CatalogEntryView {
    pub id: String,
    pub name: String,
    /// The server name it gets by default (the tool prefix).
    pub server_name: String,
    pub description: String,
    pub url: String,
    pub transport: String,
    /// The built-in provider whose connection it needs, if any.
    pub provider: Option<String>,
    /// That provider's display name.
    pub provider_name: Option<String>,
    pub docs_url: String,
    /// `discover`, `provider`, `headers` or `none`: how its server is signed in to.
    pub sign_in: String,
    /// The service's documentation that says so.
    pub sources: Vec<String>,
    pub sign_in_notes: Option<String>,
}

/// The page's data in one call: servers, catalog, secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServersOverview {
    /// The caller is an admin, who may add, edit, test and delete (members read).
    pub can_manage: bool,
    pub servers: Vec<McpServerView>,
    pub catalog: Vec<CatalogEntryView>,
    pub secrets: Vec<SecretView>,
}

/// Which of an upstream's tools, prompts and resources `/mcp` offers. Hidden ones are neither
/// listed nor reachable by name: a call answers as for a name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServerPolicy {
    /// Matched against the upstream's own tool names (without the `<server>__` prefix).
    pub tools: NameFilter,
    /// Matched against the upstream's own prompt names.
    pub prompts: NameFilter,
    /// Matched against a resource's URI (a template's URI template; a read, against the URI
    /// read), as the server names it.
    pub resources: NameFilter,
}

impl ServerPolicy {
    pub fn is_open(&self) -> bool {
        self.tools.is_open() && self.prompts.is_open() && self.resources.is_open()
    }
}

/// `all` (the default), `allow` (only what matches a pattern) or `deny` (all but what
/// matches). A pattern is a name in which `*` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NameFilter {
    pub mode: FilterMode,
    pub patterns: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum FilterMode {
    #[default]
    All,
    Allow,
    Deny,
}

pub const MAX_FILTER_PATTERNS: usize = 100;
pub const MAX_PATTERN_LEN: usize = 256;

impl NameFilter {
    pub fn allow(patterns: &[&str]) -> Self {
        Self {
            mode: FilterMode::Allow,
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
        }
    }

    pub fn deny(patterns: &[&str]) -> Self {
        Self {
            mode: FilterMode::Deny,
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.mode == FilterMode::All
    }

    fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| glob_match(p, name))
    }

    /// Whether something known by any of `names` is offered.
    pub fn allows_any(&self, names: &[&str]) -> bool {
        match self.mode {
            FilterMode::All => true,
            FilterMode::Allow => names.iter().any(|n| self.matches(n)),
            FilterMode::Deny => !names.iter().any(|n| self.matches(n)),
        }
    }

    pub fn allows(&self, name: &str) -> bool {
        self.allows_any(&[name])
    }

    /// The filter in words, for a card: `None` when everything is offered.
    pub fn describe(&self) -> Option<String> {
        let list = self.patterns.join(", ");
        match self.mode {
            FilterMode::All => None,
            FilterMode::Allow if self.patterns.is_empty() => Some("none".into()),
            FilterMode::Allow => Some(format!("only {list}")),
            FilterMode::Deny if self.patterns.is_empty() => None,
            FilterMode::Deny => Some(format!("all but {list}")),
        }
    }

    /// Patterns trimmed, blank ones dropped; an error names what is wrong.
    pub fn normalized(&self, what: &str) -> Result<Self, String> {
        let patterns: Vec<String> = self
            .patterns
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if patterns.len() > MAX_FILTER_PATTERNS {
            return Err(format!(
                "The {what} filter has {} patterns; at most {MAX_FILTER_PATTERNS} are allowed.",
                patterns.len()
            ));
        }
        for p in &patterns {
            if p.len() > MAX_PATTERN_LEN || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "The {what} pattern {p:?} is not valid: a pattern is a name (at most {MAX_PATTERN_LEN} characters, no spaces) in which * stands for any characters."
                ));
            }
        }
        Ok(Self {
            mode: self.mode,
            patterns: if self.mode == FilterMode::All {
                Vec::new()
            } else {
                patterns
            },
        })
    }
}

/// `*` matches any run of characters (none included); everything else matches itself.
/// Iterative with one backtrack point, so no pattern costs more than O(len²).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("create_*", "create_issue", true),
            ("create_*", "create_", true),
            ("create_*", "delete_issue", false),
            ("*_issue", "create_issue", true),
            ("*", "", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("file:///docs/*", "file:///docs/a.md", true),
            ("**", "x", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn filters() {
        let all = NameFilter::default();
        assert!(all.allows("anything") && all.describe().is_none());
        let allow = NameFilter::allow(&["get_*", "search"]);
        assert!(allow.allows("get_me") && allow.allows("search") && !allow.allows("delete_repo"));
        assert_eq!(allow.describe().unwrap(), "only get_*, search");
        let deny = NameFilter::deny(&["delete_*"]);
        assert!(!deny.allows("delete_repo") && deny.allows("get_me"));
        assert!(!deny.allows_any(&["file:///x", "delete_me"]));
        assert_eq!(deny.describe().unwrap(), "all but delete_*");
        assert_eq!(NameFilter::allow(&[]).describe().unwrap(), "none");
        let messy = NameFilter::deny(&[" a* ", "", "b"])
            .normalized("tool")
            .unwrap();
        assert_eq!(messy.patterns, ["a*", "b"]);
        let err = NameFilter::deny(&["two words"])
            .normalized("tool")
            .unwrap_err();
        assert!(err.contains("\"two words\""), "{err}");
        let cleared = NameFilter {
            mode: FilterMode::All,
            patterns: vec!["x".into()],
        };
        assert!(cleared.normalized("tool").unwrap().patterns.is_empty());
    }
}
