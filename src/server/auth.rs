//! App login: who is using the UI and the `/api` routes. Three modes (`AUTH_TYPE`): none,
//! basic (username + password) and oauth2 (an external OAuth2/OIDC identity provider). Every
//! successful login ends the same way: a session JWT in a cookie (or handed to API callers).

pub mod api_tokens;
pub mod handlers;
pub mod middleware;
pub mod oidc;
pub mod password;
pub mod roles;
pub mod session;
pub mod throttle;

// The front door: what other domains use.
pub use api_tokens::{
    NewTokenRequest, TOKEN_PREFIX, TokenRejection, VerifiedToken, create_token, delete_token,
    list_tokens,
};
pub use middleware::authenticate;
pub use roles::everyone_is_admin;
pub use session::bearer_token;
pub use throttle::WindowLimiter;

use crate::model::session::Role;
use crate::server::clock::UnixTime;
use crate::server::db::DbError;
use crate::server::db::changes::Change;
use crate::server::error::AppError;
use crate::server::state::AppState;

/// Another replica's change arrived: a deleted token is refused here too.
pub fn on_change(state: &AppState, change: &Change) {
    if change.topic == api_tokens::API_TOKEN_DELETED
        && let Some(id) = &change.key
    {
        state.api_tokens.forget(id);
    } else if change.is(api_tokens::API_TOKEN_DELETED) {
        state.api_tokens.forget_verifications();
    }
}

/// A presented static API token: what it may do, or why not. A token acts as its creator,
/// so one whose creator may no longer sign in (`AUTH_OAUTH2_ALLOWED_*`) is refused like an
/// unknown one.
pub async fn verify_api_token(
    state: &AppState,
    token: &str,
    now: UnixTime,
) -> Result<Result<VerifiedToken, TokenRejection>, DbError> {
    let verified = state.api_tokens.verify(&state.db, token, now).await?;
    if let (Ok(token), crate::server::config::AuthConfig::Oauth2(o)) =
        (&verified, &state.config.auth)
        && !o.email_allowed(&token.created_by)
    {
        return Ok(Err(TokenRejection::Unknown));
    }
    Ok(verified)
}

/// Who is making a request, as established by the session middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Username (basic), email (oauth2) or "anonymous" (none).
    pub subject: String,
    pub method: AuthMethod,
    /// The session's `jti`, when the caller holds a session.
    pub session_id: Option<String>,
    /// Unix time at which the session ends.
    pub expires_at: Option<i64>,
    pub role: Role,
    /// The admin groups the identity provider put them in at sign-in (kept with the API
    /// tokens they create, whose role is worked out again at each use).
    pub admin_groups: Vec<String>,
}

/// Who everyone is when app login is off (`AUTH_TYPE=none`).
pub const ANONYMOUS: &str = "anonymous";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `AUTH_TYPE=none`: everyone is let in.
    Anonymous,
    Basic,
    Oauth2,
    /// A `gatehouse` command run on the store (`api-tokens`, `connections`): whoever holds
    /// the database and the key is an admin already. Never a session's method.
    CommandLine,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "none",
            AuthMethod::Basic => "basic",
            AuthMethod::Oauth2 => "oauth2",
            AuthMethod::CommandLine => "cli",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "basic" => Some(AuthMethod::Basic),
            "oauth2" => Some(AuthMethod::Oauth2),
            _ => None,
        }
    }
}

impl VerifiedToken {
    /// The role of the token's creator under the current settings: a token acts as them.
    pub fn creator_role(&self, auth: &crate::server::config::AuthConfig) -> Role {
        roles::role_of(auth, &self.created_by, &self.creator_admin_groups)
    }

    /// The person the token acts as, with their current role.
    pub fn creator_identity(&self, auth: &crate::server::config::AuthConfig) -> Identity {
        Identity {
            subject: self.created_by.clone(),
            method: match auth {
                crate::server::config::AuthConfig::None => AuthMethod::Anonymous,
                crate::server::config::AuthConfig::Basic(_) => AuthMethod::Basic,
                crate::server::config::AuthConfig::Oauth2(_) => AuthMethod::Oauth2,
            },
            session_id: None,
            expires_at: self.expires_at,
            role: self.creator_role(auth),
            admin_groups: self.creator_admin_groups.clone(),
        }
    }
}

impl Identity {
    /// Who they are in the audit trail.
    pub fn actor(&self) -> crate::server::audit::Actor {
        match self.method {
            AuthMethod::CommandLine => {
                crate::server::audit::Actor::CommandLine(self.subject.clone())
            }
            _ => crate::server::audit::Actor::Person(self.subject.clone()),
        }
    }

    /// Who a `gatehouse` command acts as: an admin named `subject` (what it creates is
    /// theirs), with the admin groups a token it creates keeps.
    pub fn command_line(subject: &str, admin_groups: Vec<String>) -> Identity {
        Identity {
            subject: subject.to_string(),
            method: AuthMethod::CommandLine,
            session_id: None,
            expires_at: None,
            role: Role::Admin,
            admin_groups,
        }
    }
}

impl Identity {
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }

    /// Whether the caller may act on something of `owner`'s: an admin on anyone's, a member
    /// on their own. (`None`: there is no such thing.)
    pub fn may_act_on(&self, owner: Option<&str>) -> bool {
        self.is_admin() && owner.is_some() || owner == Some(self.subject.as_str())
    }

    /// Refuses a member: the one check every admin-only operation makes.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "Only an admin can do this. Ask an admin of this Gatehouse.".into(),
            ))
        }
    }

    pub fn anonymous() -> Self {
        Identity {
            subject: ANONYMOUS.into(),
            method: AuthMethod::Anonymous,
            session_id: None,
            expires_at: None,
            role: Role::Admin,
            admin_groups: Vec::new(),
        }
    }
}
