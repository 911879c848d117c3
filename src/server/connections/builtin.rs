//! The built-in providers, as data: one JSON file per provider under `providers/`, compiled
//! into the binary and read once. A definition says everything the engine needs (endpoints,
//! scopes with descriptions, PKCE, auth method, extra parameters, refresh behaviour); a quirk
//! data cannot express is a named hook (`TokenShape`, `FieldCheck`), never a branch on a
//! provider's name.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// How a provider's refresh tokens behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshMode {
    /// A new refresh token with every refresh; the old one stops working.
    Rotating,
    /// The refresh token stays the same.
    Standard,
    /// Tokens do not expire and are never refreshed.
    Never,
}

/// Where the token a connection uses sits in the token endpoint's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenShape {
    /// RFC 6749 §5.1, at the top level.
    Standard,
    /// Slack's user token: under `authed_user`.
    SlackAuthedUser,
}

/// How an instance field is checked before it goes anywhere near a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldCheck {
    /// One DNS label: `^[a-z0-9][a-z0-9-]*$`, at most 63 characters.
    DnsLabel,
    /// A UUID in its canonical 8-4-4-4-12 hex form.
    Uuid,
}

impl FieldCheck {
    pub fn check(self, value: &str) -> Result<(), String> {
        let ok = match self {
            FieldCheck::DnsLabel => {
                !value.is_empty()
                    && value.len() <= 63
                    && value
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }
            FieldCheck::Uuid => {
                let groups: Vec<&str> = value.split('-').collect();
                groups.len() == 5
                    && groups
                        .iter()
                        .zip([8, 4, 4, 4, 12])
                        .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                FieldCheck::DnsLabel => format!(
                    "{value:?} is not valid: use lowercase letters, digits and '-', starting with a letter or digit"
                ),
                FieldCheck::Uuid => format!("{value:?} is not a UUID (8-4-4-4-12 hex digits)"),
            })
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceField {
    pub name: String,
    pub label: String,
    pub check: FieldCheck,
    pub help: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeInfo {
    pub name: String,
    pub description: String,
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeWarning {
    /// Shown when this scope is not selected.
    pub unless_scope: String,
    pub message: String,
}

/// One built-in provider, as its data file says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinProvider {
    pub slug: String,
    pub name: String,
    pub icon: String,
    /// Where the operator creates the OAuth app.
    pub app_console_url: String,
    /// May contain `{field}` placeholders for instance fields.
    pub authorization_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub introspection_url: Option<String>,
    pub token_auth_method: String,
    /// `s256` or `off`.
    pub pkce: String,
    /// The authorization parameter that carries scopes; `None`: send none at all.
    pub scope_param: Option<String>,
    pub scope_separator: String,
    pub extra_auth_params: Vec<(String, String)>,
    /// Sent with the authorization code exchange only (Shopify's `expiring=1` asks for an
    /// offline token that expires, with a refresh token).
    pub extra_code_exchange_params: Vec<(String, String)>,
    pub resource: Option<String>,
    pub refresh: RefreshMode,
    pub token_response: TokenShape,
    /// Error codes that, beside RFC 6749's, mean the grant is gone and only a new
    /// authorization helps (Slack's `invalid_refresh_token`, GitHub's `bad_refresh_token`).
    pub dead_grant_errors: Vec<String>,
    pub instance_fields: Vec<InstanceField>,
    pub scopes: Vec<ScopeInfo>,
    pub warnings: Vec<ScopeWarning>,
    pub notes: String,
    pub sources: Vec<String>,
}

/// The data files, in the order the create dialog lists them.
const FILES: &[(&str, &str)] = &[
    ("google", include_str!("../../../providers/google.json")),
    ("slack", include_str!("../../../providers/slack.json")),
    (
        "slack_mcp",
        include_str!("../../../providers/slack_mcp.json"),
    ),
    ("asana", include_str!("../../../providers/asana.json")),
    (
        "asana_mcp",
        include_str!("../../../providers/asana_mcp.json"),
    ),
    (
        "atlassian",
        include_str!("../../../providers/atlassian.json"),
    ),
    ("github", include_str!("../../../providers/github.json")),
    (
        "github_mcp",
        include_str!("../../../providers/github_mcp.json"),
    ),
    ("hubspot", include_str!("../../../providers/hubspot.json")),
    ("linear", include_str!("../../../providers/linear.json")),
    ("notion", include_str!("../../../providers/notion.json")),
    ("sentry", include_str!("../../../providers/sentry.json")),
    ("shopify", include_str!("../../../providers/shopify.json")),
];

/// Every built-in provider. The files are checked by the unit tests, so parsing cannot
/// fail in a build that passed them.
pub fn builtin_providers() -> &'static [BuiltinProvider] {
    static PROVIDERS: OnceLock<Vec<BuiltinProvider>> = OnceLock::new();
    PROVIDERS.get_or_init(|| {
        FILES
            .iter()
            .map(|(slug, json)| {
                serde_json::from_str(json).unwrap_or_else(|e| {
                    panic!("providers/{slug}.json is not a valid definition: {e}")
                })
            })
            .collect()
    })
}

pub fn find_builtin(slug: &str) -> Option<&'static BuiltinProvider> {
    builtin_providers().iter().find(|p| p.slug == slug)
}

/// The providers an instance uses: the built-in data, with any `PROVIDER_OVERRIDES` applied
/// (a self-hosted GitHub Enterprise, or tests pointing a provider at a local server).
#[derive(Debug, Clone)]
pub struct Providers(std::sync::Arc<Vec<BuiltinProvider>>);

impl Providers {
    pub fn builtin() -> Self {
        Providers(std::sync::Arc::new(builtin_providers().to_vec()))
    }

    /// Applies overrides: a JSON object `{"<slug>": {<fields of the definition>}}` whose
    /// fields replace the definition's.
    pub fn with_overrides(json: &str) -> Result<Self, String> {
        let overrides: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| format!("not a JSON object of provider overrides: {e}"))?;
        let mut providers = Vec::new();
        for (slug, file) in FILES {
            let mut definition: serde_json::Value =
                serde_json::from_str(file).expect("the built-in files are valid (unit-tested)");
            if let Some(changes) = overrides.get(*slug) {
                let changes = changes
                    .as_object()
                    .ok_or_else(|| format!("the override of {slug} must be an object"))?;
                for (k, v) in changes {
                    if k == "slug" || definition.get(k).is_none() {
                        return Err(format!(
                            "{slug}: {k:?} is not a field that can be overridden"
                        ));
                    }
                    definition[k] = v.clone();
                }
            }
            providers.push(serde_json::from_value(definition).map_err(|e| format!("{slug}: {e}"))?);
        }
        if let Some(unknown) = overrides
            .keys()
            .find(|k| !FILES.iter().any(|(s, _)| s == k))
        {
            return Err(format!("{unknown:?} is not a built-in provider"));
        }
        Ok(Providers(std::sync::Arc::new(providers)))
    }

    pub fn find(&self, slug: &str) -> Option<&BuiltinProvider> {
        self.0.iter().find(|p| p.slug == slug)
    }

    /// Where the token sits in the answers of the connection's provider.
    pub fn token_shape(&self, provider: &str) -> TokenShape {
        self.find(provider)
            .map_or(TokenShape::Standard, |p| p.token_response)
    }

    /// Extra parameters of the provider's authorization code exchange.
    pub fn code_exchange_params(&self, provider: &str) -> &[(String, String)] {
        self.find(provider)
            .map_or(&[], |p| p.extra_code_exchange_params.as_slice())
    }

    /// The provider's own codes for a dead grant (see `ProviderError::is_dead_grant`).
    pub fn dead_grant_errors(&self, provider: &str) -> &[String] {
        self.find(provider)
            .map_or(&[], |p| p.dead_grant_errors.as_slice())
    }

    /// Whether the provider's tokens are ever refreshed (GitHub OAuth App tokens are not).
    pub fn refreshes(&self, provider: &str) -> bool {
        self.find(provider)
            .is_none_or(|p| p.refresh != RefreshMode::Never)
    }

    /// The built-in providers for the create dialog.
    pub fn views(&self) -> Vec<crate::model::connections::BuiltinProviderView> {
        self.0
            .iter()
            .map(|p| crate::model::connections::BuiltinProviderView {
                slug: p.slug.clone(),
                name: p.name.clone(),
                icon: p.icon.clone(),
                app_console_url: p.app_console_url.clone(),
                instance_fields: p
                    .instance_fields
                    .iter()
                    .map(|f| (f.name.clone(), f.label.clone(), f.help.clone()))
                    .collect(),
                scopes: p
                    .scopes
                    .iter()
                    .map(|s| (s.name.clone(), s.description.clone(), s.default))
                    .collect(),
                scopeless: p.scope_param.is_none(),
                warnings: p
                    .warnings
                    .iter()
                    .map(|w| (w.unless_scope.clone(), w.message.clone()))
                    .collect(),
                notes: p.notes.clone(),
            })
            .collect()
    }
}

impl BuiltinProvider {
    /// Checks the instance fields the provider needs; every one must be present and pass its
    /// check before any URL is built from it.
    pub fn check_fields(&self, values: &HashMap<String, String>) -> Result<(), String> {
        for field in &self.instance_fields {
            let value = values
                .get(&field.name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{} is required for {}.", field.label, self.name))?;
            field
                .check
                .check(value)
                .map_err(|e| format!("{}: {e}.", field.label))?;
        }
        Ok(())
    }

    /// A URL of the definition with its `{field}` placeholders filled in, from checked values.
    pub fn url(&self, template: &str, values: &HashMap<String, String>) -> Result<String, String> {
        self.check_fields(values)?;
        let mut url = template.to_string();
        for field in &self.instance_fields {
            url = url.replace(&format!("{{{}}}", field.name), values[&field.name].trim());
        }
        if url.contains('{') {
            return Err(format!("{}: a URL placeholder has no field", self.slug));
        }
        Ok(url)
    }

    pub fn default_scopes(&self) -> Vec<String> {
        self.scopes
            .iter()
            .filter(|s| s.default)
            .map(|s| s.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_fields(p: &BuiltinProvider) -> HashMap<String, String> {
        p.instance_fields
            .iter()
            .map(|f| {
                let v = match f.check {
                    FieldCheck::DnsLabel => "my-store",
                    FieldCheck::Uuid => "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                };
                (f.name.clone(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn every_definition_is_complete_and_consistent() {
        let providers = builtin_providers();
        assert_eq!(providers.len(), 13);
        for (p, (slug, _)) in providers.iter().zip(FILES) {
            assert_eq!(&p.slug, slug, "file name and slug agree");
            let fields = sample_fields(p);
            for template in [
                Some(&p.authorization_url),
                Some(&p.token_url),
                p.revocation_url.as_ref(),
                p.introspection_url.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                let url = url::Url::parse(&p.url(template, &fields).unwrap()).unwrap();
                assert_eq!(url.scheme(), "https", "{slug}: {url}");
                assert!(
                    url.query().is_none(),
                    "{slug}: parameters belong in extra_auth_params: {url}"
                );
            }
            assert!(
                matches!(
                    p.token_auth_method.as_str(),
                    "client_secret_post" | "client_secret_basic"
                ),
                "{slug}"
            );
            assert!(matches!(p.pkce.as_str(), "s256" | "off"), "{slug}");
            assert!(matches!(p.scope_separator.as_str(), " " | ","), "{slug}");
            assert!(p.app_console_url.starts_with("https://"), "{slug}");
            assert!(
                !p.sources.is_empty(),
                "{slug}: say where the facts come from"
            );
            if p.scope_param.is_some() {
                assert!(!p.scopes.is_empty(), "{slug}: a scope picker needs scopes");
            }
            for w in &p.warnings {
                assert!(
                    p.scopes.iter().any(|s| s.name == w.unless_scope),
                    "{slug}: warning about an unknown scope"
                );
            }
        }
    }

    #[test]
    fn instance_fields_refuse_injection_before_any_url_is_built() {
        let shopify = find_builtin("shopify").unwrap();
        let atlassian = find_builtin("atlassian").unwrap();
        for bad in [
            "evil.com/x",
            "my.store",
            "MyStore",
            "-store",
            "store?x=1",
            "a b",
            "",
            "x/../y",
            "store#",
        ] {
            let values = HashMap::from([("shop".to_string(), bad.to_string())]);
            assert!(
                shopify.url(&shopify.authorization_url, &values).is_err(),
                "{bad:?}"
            );
        }
        let ok = HashMap::from([("shop".to_string(), "my-store".to_string())]);
        assert_eq!(
            shopify.url(&shopify.authorization_url, &ok).unwrap(),
            "https://my-store.myshopify.com/admin/oauth/authorize"
        );
        assert!(
            FieldCheck::Uuid
                .check("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
                .is_ok()
        );
        for bad in [
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fz",
            "../x",
        ] {
            assert!(FieldCheck::Uuid.check(bad).is_err(), "{bad}");
        }
        assert!(
            atlassian.check_fields(&HashMap::new()).is_err(),
            "the cloud ID is required"
        );
    }

    // Token answers, refresh answers and error shapes: `providers/fixtures/`, checked in
    // `flow::tests::every_provider_matches_its_fixture`.
    #[test]
    fn refresh_behaviour_and_overrides() {
        // GitHub OAuth App tokens are never refreshed; the others are.
        let providers = Providers::builtin();
        assert!(!providers.refreshes("github"));
        assert!(
            providers.refreshes("github_mcp")
                && providers.refreshes("google")
                && providers.refreshes("custom")
        );
        // Overrides re-point a provider and are checked.
        let moved = Providers::with_overrides(
            r#"{"sentry": {"authorization_url": "https://sentry.internal/oauth/authorize/"}}"#,
        )
        .unwrap();
        assert_eq!(
            moved.find("sentry").unwrap().authorization_url,
            "https://sentry.internal/oauth/authorize/"
        );
        assert!(Providers::with_overrides(r#"{"nope": {}}"#).is_err());
        assert!(Providers::with_overrides(r#"{"sentry": {"colour": "red"}}"#).is_err());
        assert!(Providers::with_overrides(r#"{"sentry": {"pkce": 3}}"#).is_err());
    }
}
