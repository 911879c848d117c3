//! Outbound HTTP: one client configuration for every call Gatehouse makes to the outside
//! (identity provider, later OAuth providers and upstream MCP servers). Redirects are off (a
//! redirect could carry a secret somewhere it was not meant to go) and every call has a
//! deadline.

use std::sync::Arc;
use std::time::Duration;

pub const USER_AGENT: &str = concat!("Gatehouse/", env!("CARGO_PKG_VERSION"));

/// Largest response body Gatehouse reads from a metadata, token or userinfo endpoint.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Outbound HTTP as configured: the address policy and any extra trusted CA certificates
/// (`OUTBOUND_CA_CERTS`, for an identity provider or upstream behind an internal CA).
#[derive(Clone)]
pub struct Outbound {
    pub policy: OutboundPolicy,
    roots: Arc<Vec<reqwest::Certificate>>,
}

impl Outbound {
    pub fn new(policy: OutboundPolicy, roots: Vec<reqwest::Certificate>) -> Self {
        Outbound {
            policy,
            roots: Arc::new(roots),
        }
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none());
        for root in self.roots.iter() {
            builder = builder.add_root_certificate(root.clone());
        }
        builder
    }

    /// The client for configured endpoints (the identity provider): no redirects, deadlines.
    pub fn client(&self) -> reqwest::Client {
        self.builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .expect("the TLS backend initialises")
    }
}

/// Reads a PEM bundle of CA certificates.
pub fn load_ca_bundle(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{} is not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
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
    response: reqwest::Response,
) -> Result<T, FetchError> {
    let status = response.status();
    let body = read_capped(response, MAX_RESPONSE_BYTES).await?;
    if !status.is_success() {
        return Err(FetchError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).chars().take(300).collect(),
        });
    }
    Ok(serde_json::from_slice(&body)?)
}

/// What outbound fetches to URLs that come from outside (client metadata documents, later
/// provider endpoints) may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Plain http to hosts other than loopback (`OUTBOUND_ALLOW_HTTP`).
    pub allow_http: bool,
    /// Private, loopback and link-local addresses (`OUTBOUND_ALLOW_PRIVATE_NETWORKS`).
    pub allow_private: bool,
}

/// Whether an address is on the public internet: not loopback, private, link-local (where
/// cloud metadata services live), carrier-grade NAT, multicast, documentation or reserved.
pub fn is_public_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let v4 = std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                );
                return is_public_ip(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

/// Why an outbound URL was not fetched.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// The shape check for an outbound URL an operator or a client supplied: https, or http
/// to a loopback host (or anywhere with `OUTBOUND_ALLOW_HTTP`); a host; no credentials in
/// it. Where the host resolves is checked when it is called (`Outbound::guarded_client`).
pub fn check_outbound_url(url: &url::Url, policy: OutboundPolicy) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http || crate::server::net::is_loopback_host(url) => {}
        "http" => {
            return Err(
                "must be https (http is accepted for loopback addresses, or everywhere with OUTBOUND_ALLOW_HTTP=true)"
                    .into(),
            );
        }
        other => return Err(format!("must be an https URL, not {other}:")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    Ok(())
}

impl Outbound {
    /// A client for one URL that came from outside, with the SSRF guards: the URL's shape
    /// (`check_outbound_url`), every address its name resolves to must be public (unless
    /// `OUTBOUND_ALLOW_PRIVATE_NETWORKS`), and the client connects to the address that was
    /// checked (no second lookup to rebind). No redirects; `timeout` bounds resolving and
    /// connecting.
    async fn guarded_builder(
        &self,
        url: &url::Url,
        timeout: Duration,
    ) -> Result<reqwest::ClientBuilder, GuardError> {
        let policy = self.policy;
        check_outbound_url(url, policy).map_err(|e| GuardError::Refused(format!("{url}: {e}")))?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<std::net::SocketAddr> =
            tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port)))
                .await
                .map_err(|_| GuardError::Refused(format!("resolving {host} timed out")))?
                .map_err(|e| GuardError::Refused(format!("cannot resolve {host}: {e}")))?
                .collect();
        let Some(first) = addrs.first().copied() else {
            return Err(GuardError::Refused(format!("{host} has no address")));
        };
        let loopback_name = host.eq_ignore_ascii_case("localhost");
        if !policy.allow_private && (loopback_name || addrs.iter().any(|a| !is_public_ip(a.ip()))) {
            return Err(GuardError::Refused(format!(
                "{host} resolves to a private, loopback or link-local address; set OUTBOUND_ALLOW_PRIVATE_NETWORKS=true to allow it"
            )));
        }
        Ok(self
            .builder()
            .connect_timeout(timeout)
            .resolve(&host, first))
    }

    /// `guarded_builder` for one call: `timeout` bounds the whole call.
    pub async fn guarded_client(
        &self,
        url: &url::Url,
        timeout: Duration,
    ) -> Result<reqwest::Client, GuardError> {
        Ok(self
            .guarded_builder(url, timeout)
            .await?
            .timeout(timeout)
            .build()
            .map_err(FetchError::from)?)
    }

    /// `guarded_builder` for a long-lived event stream: only connecting has a deadline (the
    /// reader bounds each wait itself).
    pub async fn guarded_stream_client(
        &self,
        url: &url::Url,
        timeout: Duration,
    ) -> Result<reqwest::Client, GuardError> {
        Ok(self
            .guarded_builder(url, timeout)
            .await?
            .build()
            .map_err(FetchError::from)?)
    }

    /// GETs a URL that came from outside through `guarded_client`, reading at most
    /// `max_bytes`. Any status is returned, not an error.
    pub async fn fetch_guarded(
        &self,
        url: &url::Url,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<(http::StatusCode, http::HeaderMap, Vec<u8>), GuardError> {
        let client = self.guarded_client(url, timeout).await?;
        let response = client
            .get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(FetchError::from)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, max_bytes).await?;
        Ok((status, headers, body))
    }
}

/// Reads a response body, refusing one larger than `max_bytes` without reading it all.
/// A parameter of a `WWW-Authenticate` challenge (`scope="a b"` or `scope=a`).
pub fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let lower = challenge.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b',' | b'\t');
        let rest = challenge[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        return Some(match rest.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or_default().to_string(),
            None => rest
                .split([',', ' '])
                .next()
                .unwrap_or_default()
                .to_string(),
        });
    }
    None
}

pub async fn read_capped(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters() {
        let c = r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://x/.well-known/oauth-protected-resource""#;
        assert_eq!(
            challenge_param(c, "scope").as_deref(),
            Some("files:read files:write")
        );
        assert_eq!(
            challenge_param(c, "error").as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(
            challenge_param("Bearer scope=a, realm=x", "scope").as_deref(),
            Some("a")
        );
        assert_eq!(challenge_param("Bearer realm=x", "scope"), None);
        // Not a parameter that merely ends in the name.
        assert_eq!(challenge_param("Bearer myscope=a", "scope"), None);
    }

    #[test]
    fn public_addresses() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public_ip(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!is_public_ip(private.parse().unwrap()), "{private}");
        }
    }

    #[tokio::test]
    async fn guarded_fetch_refuses_private_targets() {
        let policy = OutboundPolicy {
            allow_http: true,
            allow_private: false,
        };
        for url in [
            "http://127.0.0.1:9/x",
            "http://localhost:9/x",
            "http://[::1]:9/x",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let err = Outbound::new(policy, vec![])
                .fetch_guarded(&url::Url::parse(url).unwrap(), 1024, Duration::from_secs(2))
                .await
                .unwrap_err();
            assert!(matches!(err, GuardError::Refused(_)), "{url}: {err}");
        }
        let https_only = OutboundPolicy {
            allow_http: false,
            allow_private: true,
        };
        let err = Outbound::new(https_only, vec![])
            .fetch_guarded(
                &url::Url::parse("http://example.com/").unwrap(),
                1024,
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        // Loopback http is allowed by shape, and then refused by address unless allowed.
        let loopback = url::Url::parse("http://127.0.0.1:9/").unwrap();
        assert!(check_outbound_url(&loopback, policy).is_ok());
        for bad in [
            "http://example.com/token",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "javascript:alert(1)",
        ] {
            let url = url::Url::parse(bad).unwrap();
            assert!(
                check_outbound_url(
                    &url,
                    OutboundPolicy {
                        allow_http: false,
                        allow_private: false
                    }
                )
                .is_err(),
                "{bad}"
            );
        }
    }
}
