//! Who is calling `/mcp`. One place decides, for every request: no token (allowed only while
//! MCP protection is off), a static API token, or an access token of Gatehouse's own
//! authorization server. Each answer carries the scopes the caller holds.

use std::collections::BTreeSet;

use http::HeaderMap;

use crate::model::mcp_settings::TokenScope;
use crate::server::auth::{
    ANONYMOUS, TOKEN_PREFIX, TokenRejection, bearer_token, verify_api_token,
};
use crate::server::clock::UnixTime;
use crate::server::config::AuthConfig;
use crate::server::db::DbError;
use crate::server::oauth_as::{AccessRefusal, verify_access_token};
use crate::server::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No token, with MCP protection off.
    Anonymous,
    ApiToken {
        id: String,
        name: String,
        expires_at: Option<UnixTime>,
    },
    /// An access token from Gatehouse's authorization server.
    OAuth {
        /// The user who approved the client.
        subject: String,
        client_id: String,
        client_name: Option<String>,
        /// The authorization (session) the token comes from.
        family: String,
        expires_at: UnixTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCaller {
    pub principal: Principal,
    pub scopes: BTreeSet<TokenScope>,
    /// The Gatehouse user the call acts as: an API token's creator, the subject who approved
    /// the OAuth client, or `anonymous` when app login is off (`AUTH_TYPE=none`, where the
    /// pages are used as `anonymous` too). `None`: a caller without a token on an instance
    /// with app login, which is nobody in particular. Per-person connections use this
    /// person's grant.
    pub person: Option<String>,
}

impl McpCaller {
    /// No token, with MCP protection off: nobody in particular.
    pub fn anonymous() -> Self {
        McpCaller {
            principal: Principal::Anonymous,
            scopes: BTreeSet::from([TokenScope::Mcp]),
            person: None,
        }
    }

    /// The key of the sessions an API token opens.
    pub fn api_token_key(token_id: &str) -> String {
        format!("token:{token_id}")
    }

    /// Identifies the principal across requests: an MCP session belongs to the principal that
    /// opened it.
    pub fn key(&self) -> String {
        match &self.principal {
            Principal::Anonymous => "anonymous".into(),
            Principal::ApiToken { id, .. } => McpCaller::api_token_key(id),
            // Refreshing keeps the family, so a session outlives the access token it began with.
            Principal::OAuth { family, .. } => format!("oauth:{family}"),
        }
    }
}

/// Why a request to `/mcp` is refused (RFC 6750 terms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpAuthFailure {
    /// No token, and protection is on: 401 without an error code.
    Missing,
    /// A token that is malformed, unknown or expired: 401 `invalid_token`.
    InvalidToken(&'static str),
    /// A valid token without the `mcp` scope: 403 `insufficient_scope`.
    InsufficientScope,
}

/// The token a request presents, from `Authorization: Bearer` or `?token=`.
fn presented_token<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
) -> Result<Option<String>, McpAuthFailure> {
    let header = bearer_token(headers).map_err(|_| {
        McpAuthFailure::InvalidToken("The Authorization header is not a Bearer token.")
    })?;
    let from_query = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    match (header, from_query) {
        (Some(h), Some(q)) if h != q => Err(McpAuthFailure::InvalidToken(
            "The request carries two different tokens (header and ?token=).",
        )),
        (Some(h), _) => Ok(Some(h.to_string())),
        (None, Some(q)) if q.is_empty() => Err(McpAuthFailure::InvalidToken(
            "The ?token= parameter is empty.",
        )),
        (None, q) => Ok(q),
    }
}

pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    now: UnixTime,
) -> Result<Result<McpCaller, McpAuthFailure>, DbError> {
    let token = match presented_token(headers, query) {
        Ok(token) => token,
        Err(failure) => return Ok(Err(failure)),
    };
    let Some(token) = token else {
        return Ok(
            if state.mcp.protection.require_auth(&state.db, now).await? {
                Err(McpAuthFailure::Missing)
            } else {
                Ok(McpCaller {
                    // Without app login, everyone is `anonymous`, on the pages and here.
                    person: matches!(state.config.auth, AuthConfig::None)
                        .then(|| ANONYMOUS.to_string()),
                    ..McpCaller::anonymous()
                })
            },
        );
    };
    // A presented token is always checked, protection on or off: a bad one is refused, not
    // silently ignored.
    if !token.starts_with(TOKEN_PREFIX) {
        return oauth_caller(state, &token, now).await;
    }
    let verified = match verify_api_token(state, &token, now).await? {
        Ok(verified) => verified,
        Err(TokenRejection::Unknown) => {
            return Ok(Err(McpAuthFailure::InvalidToken("The token is not valid.")));
        }
        Err(TokenRejection::Expired) => {
            return Ok(Err(McpAuthFailure::InvalidToken("The token has expired.")));
        }
    };
    if !verified.scopes.contains(&TokenScope::Mcp) {
        return Ok(Err(McpAuthFailure::InsufficientScope));
    }
    Ok(Ok(McpCaller {
        principal: Principal::ApiToken {
            id: verified.id,
            name: verified.name,
            expires_at: verified.expires_at,
        },
        scopes: verified.scopes,
        person: Some(verified.created_by),
    }))
}

async fn oauth_caller(
    state: &AppState,
    token: &str,
    now: UnixTime,
) -> Result<Result<McpCaller, McpAuthFailure>, DbError> {
    let grant = match verify_access_token(state, token, now).await? {
        Ok(grant) => grant,
        Err(AccessRefusal::Expired) => {
            return Ok(Err(McpAuthFailure::InvalidToken(
                "The access token has expired.",
            )));
        }
        Err(AccessRefusal::Revoked) => {
            return Ok(Err(McpAuthFailure::InvalidToken(
                "The access token has been revoked.",
            )));
        }
        Err(AccessRefusal::Invalid) => {
            return Ok(Err(McpAuthFailure::InvalidToken("The token is not valid.")));
        }
    };
    let scopes: BTreeSet<TokenScope> = grant
        .scope
        .split_whitespace()
        .filter_map(TokenScope::parse)
        .collect();
    if !scopes.contains(&TokenScope::Mcp) {
        return Ok(Err(McpAuthFailure::InsufficientScope));
    }
    Ok(Ok(McpCaller {
        person: Some(grant.subject.clone()),
        principal: Principal::OAuth {
            subject: grant.subject,
            client_id: grant.client_id,
            client_name: grant.client_name,
            family: grant.family,
            expires_at: grant.expires_at,
        },
        scopes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn tokens_from_header_or_query() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_token(&h, None), Ok(None));
        assert_eq!(
            presented_token(&h, Some("a=1&token=abc")),
            Ok(Some("abc".into()))
        );
        assert!(presented_token(&h, Some("token=")).is_err());
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(presented_token(&h, None), Ok(Some("abc".into())));
        assert_eq!(
            presented_token(&h, Some("token=abc")),
            Ok(Some("abc".into()))
        );
        assert!(presented_token(&h, Some("token=other")).is_err());
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Basic abc"),
        );
        assert!(presented_token(&h, None).is_err());
    }
}
