//! Who is an admin. `none` and `basic` modes have one user, an admin. In `oauth2` mode an
//! admin is named by `AUTH_ADMIN_USERS` or belongs to one of `AUTH_OAUTH2_ADMIN_GROUPS` (read
//! from the identity provider's groups claim at sign-in); everyone else it lets in is a
//! member. With neither list set every allowed person is an admin, as before roles existed,
//! and start-up and the Settings page say so.
//!
//! The role is worked out on every request from the current settings, so taking a name off
//! `AUTH_ADMIN_USERS` takes effect at the next restart; group membership is what the provider
//! said at sign-in, so it changes at the person's next sign-in.

use serde_json::{Map, Value};

use crate::model::session::Role;
use crate::server::config::AuthConfig;

/// True in `oauth2` mode when no admin list is set.
pub fn everyone_is_admin(auth: &AuthConfig) -> bool {
    match auth {
        AuthConfig::Oauth2(o) => o.admin_users.is_empty() && o.admin_groups.is_empty(),
        AuthConfig::None | AuthConfig::Basic(_) => false,
    }
}

/// The role of `subject`, whom the identity provider put in `admin_groups` at sign-in (only
/// groups still named in `AUTH_OAUTH2_ADMIN_GROUPS` count).
pub fn role_of(auth: &AuthConfig, subject: &str, admin_groups: &[String]) -> Role {
    let AuthConfig::Oauth2(o) = auth else {
        return Role::Admin;
    };
    if everyone_is_admin(auth)
        || o.admin_users
            .iter()
            .any(|u| u.eq_ignore_ascii_case(subject))
        || admin_groups.iter().any(|g| o.admin_groups.contains(g))
    {
        Role::Admin
    } else {
        Role::Member
    }
}

/// Which of `AUTH_OAUTH2_ADMIN_GROUPS` the provider's `claims` put the person in.
pub fn admin_groups_in(auth: &AuthConfig, claims: &Map<String, Value>) -> Vec<String> {
    let AuthConfig::Oauth2(o) = auth else {
        return Vec::new();
    };
    if o.admin_groups.is_empty() {
        return Vec::new();
    }
    let mut matched: Vec<String> = groups(claims, &o.groups_claim)
        .into_iter()
        .filter(|g| o.admin_groups.contains(g))
        .collect();
    matched.sort();
    matched.dedup();
    matched
}

/// The groups a claim lists: an array of strings (most providers), or one string of names
/// separated by commas (never spaces: "Gatehouse Admins" is one group, not two). A dotted name that is not a claim itself is a path into
/// objects (Keycloak's `realm_access.roles`).
pub fn groups(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    let value = claims.get(claim).or_else(|| {
        let mut parts = claim.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |v, part| v.get(part))
    });
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::{AuthConfig, OAuth2Config, TokenAuthMethod};
    use serde_json::json;

    fn oauth2(admin_users: &[&str], admin_groups: &[&str], claim: &str) -> AuthConfig {
        AuthConfig::Oauth2(Box::new(OAuth2Config {
            client_id: "gatehouse".into(),
            client_secret: None,
            authorization_url: None,
            token_url: None,
            redirect_url: None,
            scopes: vec![],
            user_info_url: None,
            issuer_url: None,
            allowed_users: vec![],
            allowed_domains: vec!["example.com".into()],
            admin_users: admin_users.iter().map(|s| s.to_string()).collect(),
            admin_groups: admin_groups.iter().map(|s| s.to_string()).collect(),
            groups_claim: claim.into(),
            token_auth_method: TokenAuthMethod::ClientSecretBasic,
        }))
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn roles_by_mode_and_list() {
        let none: &[String] = &[];
        let ops = &["ops".to_string()][..];
        assert_eq!(role_of(&AuthConfig::None, "anonymous", none), Role::Admin);
        let open = oauth2(&[], &[], "groups");
        assert!(everyone_is_admin(&open));
        assert_eq!(role_of(&open, "anyone@example.com", none), Role::Admin);

        let listed = oauth2(&["ada@example.com"], &[], "groups");
        assert!(!everyone_is_admin(&listed));
        assert_eq!(role_of(&listed, "Ada@Example.com", none), Role::Admin);
        assert_eq!(role_of(&listed, "bob@example.com", none), Role::Member);
        // A group counts only while it is named as an admin group.
        assert_eq!(role_of(&listed, "bob@example.com", ops), Role::Member);

        let grouped = oauth2(&[], &["ops"], "groups");
        assert_eq!(role_of(&grouped, "bob@example.com", ops), Role::Admin);
        assert_eq!(role_of(&grouped, "bob@example.com", none), Role::Member);
        let renamed = oauth2(&[], &["platform"], "groups");
        assert_eq!(role_of(&renamed, "bob@example.com", ops), Role::Member);
    }

    #[test]
    fn groups_claim_shapes() {
        let c = claims(json!({
            "groups": ["ops", "dev", 7],
            "roles": "ops, dev admin",
            "spaced": ["Gatehouse Admins"],
            "realm_access": {"roles": ["ops"]},
            "a.b": ["exact"]
        }));
        assert_eq!(groups(&c, "groups"), ["ops", "dev"]);
        assert_eq!(groups(&c, "roles"), ["ops", "dev admin"]);
        assert_eq!(groups(&c, "realm_access.roles"), ["ops"]);
        assert_eq!(groups(&c, "a.b"), ["exact"]);
        assert!(groups(&c, "missing").is_empty());
        assert!(groups(&c, "realm_access.missing").is_empty());

        let auth = oauth2(&[], &["ops"], "realm_access.roles");
        assert_eq!(admin_groups_in(&auth, &c), ["ops"]);
        let auth = oauth2(&[], &["Ops"], "groups");
        assert!(
            admin_groups_in(&auth, &c).is_empty(),
            "group names compare exactly"
        );
        let auth = oauth2(&[], &["Admins", "Gatehouse Admins"], "spaced");
        assert_eq!(admin_groups_in(&auth, &c), ["Gatehouse Admins"]);
        let auth = oauth2(&[], &["admin"], "roles");
        assert!(
            admin_groups_in(&auth, &c).is_empty(),
            "\"dev admin\" is one group"
        );
    }
}
