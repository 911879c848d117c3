//! Outbound HTTP: one client configuration for every call Gatehouse makes to the outside
//! (identity provider, later OAuth providers and upstream MCP servers). Redirects are off (a
//! redirect could carry a secret somewhere it was not meant to go) and every call has a
//! deadline.

use std::time::Duration;

pub const USER_AGENT: &str = concat!("Gatehouse/", env!("CARGO_PKG_VERSION"));

/// Largest response body Gatehouse reads from a metadata, token or userinfo endpoint.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

pub fn outbound_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .expect("the TLS backend initialises")
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    #[error("HTTP {status}")]
    Status { status: u16, body: String },
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("response is not the JSON expected: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads a response body up to `MAX_RESPONSE_BYTES` and parses it as JSON. Non-2xx answers
/// are errors that keep (a bounded prefix of) the body for the log.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    mut response: reqwest::Response,
) -> Result<T, FetchError> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(FetchError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).chars().take(300).collect(),
        });
    }
    Ok(serde_json::from_slice(&body)?)
}
