use serde::{Deserialize, Serialize};

/// How people sign in to this Gatehouse (`AUTH_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// The signed-in caller, for the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub identity: String,
    pub auth_type: AuthType,
    /// Unix time at which the session ends, when it does.
    pub expires_at: Option<i64>,
}
