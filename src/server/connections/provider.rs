//! A provider definition: everything the engine needs to run OAuth against one provider.
//! The custom provider is filled from the operator's form; built-in providers (a later
//! issue) fill the same struct from data.

use url::Url;

use std::collections::HashMap;

use super::builtin::{BuiltinProvider, Providers};
use crate::model::connections::ConnectionInput;
use crate::server::http::{OutboundPolicy, check_outbound_url};

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const AUTH_POST: &str = "client_secret_post";
pub const AUTH_BASIC: &str = "client_secret_basic";
/// A public client (some dynamic registrations): no secret, `client_id` in the body.
pub const AUTH_NONE: &str = "none";

pub const MAX_NAME: usize = 100;
pub const MAX_DESCRIPTION: usize = 500;
pub const MAX_SCOPES: usize = 100;
pub const MAX_PARAMS: usize = 30;
const MAX_FIELD: usize = 2048;

/// Authorization parameters Gatehouse sets itself: an extra parameter must not override them.
const RESERVED_PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "resource",
];

/// The validated definition of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// `custom`, or a built-in provider's slug.
    pub provider: String,
    pub instance_fields: Vec<(String, String)>,
    pub name: String,
    pub description: String,
    pub provider_type: String,
    pub grant_type: String,
    pub dynamic_registration: bool,
    pub client_id: Option<String>,
    /// None: keep what is stored (edits), or none at all.
    pub client_secret: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub revocation_url: Option<String>,
    pub introspection_url: Option<String>,
    pub provider_domain_url: Option<String>,
    pub token_auth_method: String,
    pub pkce: bool,
    pub extra_auth_params: Vec<(String, String)>,
    pub resource: Option<String>,
    /// Query strings removed from pasted URLs, to tell the operator.
    pub notices: Vec<String>,
}

/// Checks an operator's input. `has_secret`: a client secret is already stored (an edit
/// may leave the field empty to keep it).
pub fn validate(
    input: ConnectionInput,
    policy: OutboundPolicy,
    has_secret: bool,
    providers: &Providers,
) -> Result<Definition, String> {
    let slug = input.provider.trim().to_string();
    let (input, provider) = match slug.as_str() {
        "" | "custom" => (input, "custom".to_string()),
        slug => {
            let builtin = providers.find(slug).ok_or_else(|| {
                format!("Unknown provider {slug:?}: use custom or one of the built-in providers.")
            })?;
            (from_builtin(input, builtin)?, slug.to_string())
        }
    };
    let instance_fields = input.instance_fields.clone();
    let mut notices = Vec::new();
    let name = input.name.trim().to_string();
    if name.is_empty() {
        return Err("Give the connection a name.".into());
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(format!(
            "The name must be at most {MAX_NAME} characters, without control characters."
        ));
    }
    let description = input.description.trim().to_string();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(format!(
            "The description must be at most {MAX_DESCRIPTION} characters."
        ));
    }
    let provider_type = match input.provider_type.trim() {
        "" => "custom".to_string(),
        t if t.len() <= 40
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') =>
        {
            t.to_string()
        }
        _ => return Err("The provider type must be a short lowercase word.".into()),
    };
    let grant_type = match input.grant_type.trim() {
        "" | GRANT_AUTHORIZATION_CODE => GRANT_AUTHORIZATION_CODE,
        GRANT_CLIENT_CREDENTIALS => GRANT_CLIENT_CREDENTIALS,
        other => {
            return Err(format!(
                "Unknown grant type {other:?}: use authorization_code or client_credentials."
            ));
        }
    }
    .to_string();
    let code_flow = grant_type == GRANT_AUTHORIZATION_CODE;
    let dynamic_registration = input.dynamic_registration;
    if dynamic_registration && !code_flow {
        return Err(
            "Dynamic client registration is for the authorization code grant; a client credentials connection needs a client ID and secret."
                .into(),
        );
    }

    let token_url = endpoint("Token URL", &input.token_url, policy, &mut notices)?
        .ok_or("The token URL is required.")?;
    let authorization_url = endpoint(
        "Authorization URL",
        &input.authorization_url,
        policy,
        &mut notices,
    )?;
    if code_flow && authorization_url.is_none() {
        return Err("The authorization URL is required for the authorization code grant.".into());
    }
    let revocation_url = endpoint(
        "Revocation URL",
        &input.revocation_url,
        policy,
        &mut notices,
    )?;
    let introspection_url = endpoint(
        "Introspection URL",
        &input.introspection_url,
        policy,
        &mut notices,
    )?;
    let provider_domain_url = endpoint(
        "Provider domain URL",
        &input.provider_domain_url,
        policy,
        &mut notices,
    )?;

    let (client_id, client_secret) = if dynamic_registration {
        (None, None)
    } else {
        let id = input.client_id.trim();
        if id.is_empty() {
            return Err(
                "The client ID is required (or turn on dynamic client registration).".into(),
            );
        }
        if id.len() > MAX_FIELD || id.chars().any(char::is_control) {
            return Err("The client ID is not valid.".into());
        }
        let secret = input
            .client_secret
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        if secret.is_none() && !has_secret && input.token_auth_method.trim() != "none" {
            return Err(
                "The client secret is required (or turn on dynamic client registration, or use the auth method none for a public client).".into(),
            );
        }
        if secret
            .as_ref()
            .is_some_and(|s| s.len() > MAX_FIELD || s.chars().any(char::is_control))
        {
            return Err("The client secret is not valid.".into());
        }
        (Some(id.to_string()), secret)
    };

    let token_auth_method = match input.token_auth_method.trim() {
        // A dynamic registration's method is whatever the provider registered; not edited.
        m if dynamic_registration => {
            if m.is_empty() {
                AUTH_BASIC
            } else {
                m
            }
        }
        "" | AUTH_POST => AUTH_POST,
        AUTH_BASIC => AUTH_BASIC,
        // A public client (a client ID metadata document's, or one registered without a
        // secret): PKCE is its proof.
        "none" if client_secret.is_none() => "none",
        "none" => {
            return Err(
                "The auth method none is for a client without a secret: leave the secret empty, or use client_secret_post or client_secret_basic.".into(),
            );
        }
        other => {
            return Err(format!(
                "Unknown auth method {other:?}: use client_secret_post, client_secret_basic or none."
            ));
        }
    }
    .to_string();

    let mut scopes: Vec<String> = Vec::new();
    for scope in input.scopes.iter().flat_map(|s| s.split_whitespace()) {
        // RFC 6749 §3.3: scope tokens are printable ASCII without space, quote or backslash.
        if !scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(format!(
                "The scope {scope:?} contains characters a scope cannot have."
            ));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    if scopes.len() > MAX_SCOPES {
        return Err(format!("At most {MAX_SCOPES} scopes."));
    }

    let mut extra_auth_params = Vec::new();
    for (key, value) in input.extra_auth_params {
        let key = key.trim().to_string();
        if key.is_empty() && value.trim().is_empty() {
            continue;
        }
        if key.is_empty()
            || key.len() > 100
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "The parameter name {key:?} must be letters, digits, '_', '-' or '.'."
            ));
        }
        if RESERVED_PARAMS.contains(&key.as_str()) {
            return Err(format!(
                "The parameter {key} is set by Gatehouse; it cannot be an extra parameter."
            ));
        }
        if value.len() > MAX_FIELD || value.chars().any(char::is_control) {
            return Err(format!("The value of {key} is not valid."));
        }
        if extra_auth_params
            .iter()
            .any(|(k, _): &(String, String)| *k == key)
        {
            return Err(format!("The parameter {key} is given twice."));
        }
        extra_auth_params.push((key, value.trim().to_string()));
    }
    if extra_auth_params.len() > MAX_PARAMS {
        return Err(format!("At most {MAX_PARAMS} extra parameters."));
    }

    let resource = match input.resource.trim() {
        "" => None,
        r => {
            let url =
                Url::parse(r).map_err(|_| "The resource must be an absolute URL.".to_string())?;
            // RFC 8707 §2: an absolute URI without a fragment.
            if url.fragment().is_some() {
                return Err("The resource must not contain a fragment.".into());
            }
            Some(r.to_string())
        }
    };

    Ok(Definition {
        provider,
        instance_fields,
        name,
        description,
        provider_type,
        grant_type,
        dynamic_registration,
        client_id,
        client_secret,
        authorization_url,
        token_url,
        scopes,
        revocation_url,
        introspection_url,
        provider_domain_url,
        token_auth_method,
        // Dynamic registrations are public-ish clients made on the fly: PKCE always.
        pkce: input.pkce || dynamic_registration,
        extra_auth_params,
        resource,
        notices,
    })
}

/// Fills a built-in provider's definition into the operator's input: the endpoints (with
/// the instance fields checked first), PKCE, auth method, parameters and resource come from
/// the data; the operator gives the client, the scopes and the instance fields.
fn from_builtin(
    mut input: ConnectionInput,
    p: &BuiltinProvider,
) -> Result<ConnectionInput, String> {
    let mut values = HashMap::new();
    for (k, v) in &input.instance_fields {
        if !p.instance_fields.iter().any(|f| f.name == *k) {
            return Err(format!("{} has no field {k:?}.", p.name));
        }
        values.insert(k.clone(), v.trim().to_string());
    }
    input.authorization_url = p.url(&p.authorization_url, &values)?;
    input.token_url = p.url(&p.token_url, &values)?;
    input.revocation_url = match &p.revocation_url {
        Some(u) => p.url(u, &values)?,
        None => String::new(),
    };
    input.introspection_url = match &p.introspection_url {
        Some(u) => p.url(u, &values)?,
        None => String::new(),
    };
    input.instance_fields = p
        .instance_fields
        .iter()
        .map(|f| (f.name.clone(), values[&f.name].clone()))
        .collect();
    if input.name.trim().is_empty() {
        input.name = p.name.clone();
    }
    if input.provider_type.trim().is_empty() || input.provider_type == "custom" {
        input.provider_type = p.icon.clone();
    }
    input.grant_type = GRANT_AUTHORIZATION_CODE.into();
    input.dynamic_registration = false;
    input.token_auth_method = p.token_auth_method.clone();
    input.pkce = p.pkce == "s256";
    input.resource = p.resource.clone().unwrap_or_default();
    input.extra_auth_params = p.extra_auth_params.clone();
    if p.scope_param.is_none() {
        // The provider refuses a scope parameter (Asana MCP).
        input.scopes.clear();
    } else if input.scopes.iter().all(|s| s.trim().is_empty()) {
        input.scopes = p.default_scopes();
    }
    Ok(input)
}

/// An endpoint URL: optional, https (or loopback http), query string and fragment removed
/// with a notice (Gatehouse adds the parameters it needs itself).
fn endpoint(
    label: &str,
    value: &str,
    policy: OutboundPolicy,
    notices: &mut Vec<String>,
) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_FIELD {
        return Err(format!("The {label} is too long."));
    }
    let mut url = Url::parse(value).map_err(|e| format!("The {label} is not a valid URL: {e}."))?;
    check_outbound_url(&url, policy).map_err(|e| format!("The {label} {e}."))?;
    if url.query().is_some() || url.fragment().is_some() {
        let removed = url.query().unwrap_or_default().to_string();
        url.set_query(None);
        url.set_fragment(None);
        notices.push(format!(
            "The query string was removed from the {label} ({removed}); Gatehouse adds the parameters it needs."
        ));
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: OutboundPolicy = OutboundPolicy {
        allow_http: false,
        allow_private: false,
    };

    fn input() -> ConnectionInput {
        ConnectionInput {
            name: "Acme CRM".into(),
            client_id: "abc".into(),
            client_secret: Some("s3cret".into()),
            authorization_url: "https://acme.example/oauth/authorize".into(),
            token_url: "https://acme.example/oauth/token".into(),
            scopes: vec!["read write".into(), "read".into()],
            ..ConnectionInput::default()
        }
    }

    /// The OpenAPI document's patterns accept what `validate` accepts, no more and no less.
    #[test]
    fn the_documented_patterns_are_the_checks() {
        let providers = Providers::builtin();
        let accepts = |input: ConnectionInput| validate(input, STRICT, false, &providers).is_ok();
        let pattern = |schema: utoipa::openapi::schema::Object| {
            regex::Regex::new(&schema.pattern.unwrap()).unwrap()
        };
        let name = pattern(crate::model::schemas::display_name());
        for value in [
            "Acme", " Acme ", "", " ", "\t\n", "a\u{7}b", "a\u{85}", " \u{85}a", "\u{9f}", "Å ß",
        ] {
            let valid = accepts(ConnectionInput {
                name: value.into(),
                ..input()
            });
            assert_eq!(name.is_match(value), valid, "{value:?}");
        }
        let kind = pattern(crate::model::schemas::provider_type());
        for value in [
            "",
            " crm ",
            "crm-2_x",
            "CRM",
            "a b",
            &"a".repeat(40),
            &"a".repeat(41),
        ] {
            let valid = accepts(ConnectionInput {
                provider_type: value.into(),
                ..input()
            });
            assert_eq!(kind.is_match(value), valid, "{value:?}");
        }
        // The URL pattern is the usual spelling of a URL the check accepts; it cannot parse a
        // host, and the check's WHATWG parsing also takes rarer spellings (`HTTPS:host`).
        let url = pattern(crate::model::schemas::optional_url());
        for value in [
            "",
            "  ",
            "https://acme.example/revoke",
            " https://acme.example/revoke?x=1 ",
        ] {
            let valid = accepts(ConnectionInput {
                revocation_url: value.into(),
                ..input()
            });
            assert!(valid && url.is_match(value), "{value:?}");
        }
        for value in [
            "ftp://acme.example",
            "acme.example",
            "https://",
            "https:// x",
        ] {
            assert!(!url.is_match(value), "{value:?}");
        }
    }

    #[test]
    fn a_complete_definition_passes_with_defaults() {
        let d = validate(input(), STRICT, false, &Providers::builtin()).unwrap();
        assert_eq!(d.grant_type, GRANT_AUTHORIZATION_CODE);
        assert_eq!(d.token_auth_method, AUTH_POST);
        assert_eq!(d.provider_type, "custom");
        assert_eq!(d.scopes, vec!["read", "write"]);
        assert!(d.notices.is_empty());
    }

    #[test]
    fn query_strings_are_stripped_and_reported() {
        let mut i = input();
        i.token_url = "https://api.notion.com/v1/oauth/token?grant_type=authorization_code".into();
        let d = validate(i, STRICT, false, &Providers::builtin()).unwrap();
        assert_eq!(d.token_url, "https://api.notion.com/v1/oauth/token");
        assert!(
            d.notices[0].contains("grant_type=authorization_code"),
            "{:?}",
            d.notices
        );
    }

    #[test]
    fn refusals() {
        type Change = Box<dyn Fn(&mut ConnectionInput)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|i| i.name = " ".into()), "name"),
            (
                Box::new(|i| i.token_url = "http://acme.example/token".into()),
                "https",
            ),
            (
                Box::new(|i| i.token_url = "javascript:alert(1)".into()),
                "https",
            ),
            (
                Box::new(|i| i.authorization_url = String::new()),
                "authorization URL is required",
            ),
            (
                Box::new(|i| i.client_id = String::new()),
                "client ID is required",
            ),
            (
                Box::new(|i| i.client_secret = None),
                "client secret is required",
            ),
            (
                Box::new(|i| i.grant_type = "password".into()),
                "Unknown grant type",
            ),
            (
                Box::new(|i| i.token_auth_method = "private_key_jwt".into()),
                "Unknown auth method",
            ),
            (Box::new(|i| i.scopes = vec!["a\"b".into()]), "scope"),
            (
                Box::new(|i| i.extra_auth_params = vec![("state".into(), "x".into())]),
                "set by Gatehouse",
            ),
            (
                Box::new(|i| i.extra_auth_params = vec![("a b".into(), "x".into())]),
                "parameter name",
            ),
            (
                Box::new(|i| i.resource = "https://api.example/#frag".into()),
                "fragment",
            ),
            (
                Box::new(|i| {
                    i.grant_type = "client_credentials".into();
                    i.dynamic_registration = true;
                }),
                "Dynamic client registration",
            ),
        ];
        for (change, expected) in cases {
            let mut i = input();
            change(&mut i);
            let err = validate(i.clone(), STRICT, false, &Providers::builtin()).unwrap_err();
            assert!(err.contains(expected), "{i:?}: {err}");
        }
    }

    #[test]
    fn loopback_http_and_kept_secrets_are_accepted() {
        let mut i = input();
        i.token_url = "http://127.0.0.1:9000/token".into();
        i.client_secret = None;
        let d = validate(i, STRICT, true, &Providers::builtin()).unwrap();
        assert_eq!(d.client_secret, None);
        let mut dcr = input();
        dcr.dynamic_registration = true;
        dcr.client_id = String::new();
        let d = validate(dcr, STRICT, false, &Providers::builtin()).unwrap();
        assert!(d.pkce, "PKCE is forced on with dynamic registration");
        assert_eq!(d.client_id, None);
    }
}
