use serde::{Deserialize, Serialize};

/// How people sign in to this Gatehouse (`AUTH_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum AuthType {
    None,
    Basic,
    Oauth2,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::None => "none",
            AuthType::Basic => "basic",
            AuthType::Oauth2 => "oauth2",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AuthType::None => "None (open to anyone who can reach it)",
            AuthType::Basic => "Username and password",
            AuthType::Oauth2 => "OAuth2 / OIDC identity provider",
        }
    }
}

/// What the login page needs to know to draw itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginOptionsView {
    pub auth_type: AuthType,
    /// For `oauth2`: the identity provider's host, shown on the sign-in button.
    pub provider_host: Option<String>,
}

/// What a signed-in person may do. Admins run the instance; members use it: the dashboard,
/// the MCP servers (to read), their own MCP sessions and API tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

/// The signed-in caller, for the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub identity: String,
    pub auth_type: AuthType,
    pub role: Role,
    /// `oauth2` mode with no admin list: everyone allowed in is an admin (shown as a warning).
    pub everyone_is_admin: bool,
    /// Unix time at which the session ends, when it does.
    pub expires_at: Option<i64>,
}
