//! Host and origin rules, in one place: which names are loopback, which `Host` headers name
//! this instance, and which browser origins may call it.
//!
//! The `Host` rule is the DNS-rebinding defence. A web page whose name an attacker re-points at
//! this machine sends requests with the attacker's name in `Host` (and in `Origin`), so any
//! check that compares the two is worthless; only a fixed list of names this instance answers
//! to tells such a request apart.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::HeaderMap;
use url::Url;

/// `localhost` or a loopback address.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => is_loopback_name(d),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `localhost` (any case, with or without the root dot) or a loopback address literal.
pub fn is_loopback_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A `Host` header (or URI authority) split into a lowercased host, without brackets around
/// an IPv6 address and without a root dot, and its port. `None` when it is not a plain
/// `host[:port]`: a header an honest client never sends.
pub fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    if authority.is_empty()
        || authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"/?#@\\".contains(&b))
    {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    // One root dot is allowed (`localhost.`); empty labels are not.
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.starts_with('.') || host.ends_with('.') || host.contains("..") {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// The names this instance answers to, and the browser origins allowed to call `/mcp`.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// `PUBLIC_URL`'s host (lowercased, no brackets) and its port (explicit or the default).
    public_host: String,
    public_port: u16,
    /// `PUBLIC_URL`'s origin, `scheme://host[:port]`.
    public_origin: String,
    /// `ALLOWED_HOSTS`: more names (or addresses) that reach this instance, on any port.
    extra_hosts: Vec<String>,
    /// `MCP_ALLOWED_ORIGINS`.
    extra_origins: Vec<String>,
}

impl HostPolicy {
    pub fn new(public_url: &Url, extra_hosts: Vec<String>, extra_origins: Vec<String>) -> Self {
        let public_host = public_url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        HostPolicy {
            public_host,
            public_port: public_url.port_or_known_default().unwrap_or(80),
            public_origin: public_url.origin().ascii_serialization(),
            extra_hosts,
            extra_origins,
        }
    }

    /// Whether a `Host` header names this instance: `PUBLIC_URL`'s host and port, a loopback
    /// name or address on any port, or a name in `ALLOWED_HOSTS` on any port. A request with
    /// no `Host` at all (HTTP/1.0 tools) cannot come from a browser and is let through.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true;
        };
        let Some((name, port)) = split_authority(host) else {
            return false;
        };
        if name == self.public_host && port.unwrap_or(self.default_port()) == self.public_port {
            return true;
        }
        is_loopback_name(&name) || self.extra_hosts.contains(&name)
    }

    fn default_port(&self) -> u16 {
        if self.public_origin.starts_with("https:") {
            443
        } else {
            80
        }
    }

    /// Whether a browser origin may call `/mcp`: the public origin, a loopback origin (local
    /// tools such as the MCP Inspector), or one in `MCP_ALLOWED_ORIGINS`.
    pub fn mcp_origin_allowed(&self, origin: &str) -> bool {
        if origin == self.public_origin || self.extra_origins.iter().any(|o| o == origin) {
            return true;
        }
        match Url::parse(origin) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => is_loopback_host(&url),
            _ => false,
        }
    }

    /// Whether an app request's `Origin` is this instance itself: the public origin, or the
    /// origin of the (already checked) `Host` the browser used, such as `localhost` when
    /// `PUBLIC_URL` says `127.0.0.1`. A missing port is the scheme's default on both sides.
    pub fn app_origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if origin == self.public_origin {
            return true;
        }
        let (Some((scheme, origin_authority)), Some(host)) = (origin.split_once("://"), host)
        else {
            return false;
        };
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => return false,
        };
        let normalized = |authority: &str| {
            split_authority(authority).map(|(name, port)| (name, port.unwrap_or(default_port)))
        };
        self.host_allowed(Some(host))
            && matches!(
                (normalized(origin_authority), normalized(host)),
                (Some(a), Some(b)) if a == b
            )
    }

    /// The names accepted, for the start-up log and error messages.
    pub fn describe(&self) -> String {
        let mut names = vec![match (self.public_port, self.default_port()) {
            (p, d) if p == d => self.public_host.clone(),
            (p, _) => format!("{}:{p}", self.public_host),
        }];
        names.push("localhost and loopback addresses".into());
        names.extend(self.extra_hosts.iter().cloned());
        names.join(", ")
    }
}

/// One `ALLOWED_HOSTS` entry, checked: a host name or an address, without scheme, port or
/// path, lowercased.
pub fn parse_allowed_host(entry: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "{entry:?} is not a host name like gatehouse.internal or an address like 192.0.2.10 (no scheme, port or path)"
        )
    };
    // An IPv6 address may come with or without brackets; it is kept in its canonical form,
    // which is how `split_authority` reads a Host header.
    let entry = entry.trim();
    if let Ok(ip) = entry
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(ip.to_string());
    }
    match split_authority(entry) {
        Some((host, None))
            if host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
        {
            Ok(host)
        }
        _ => Err(bad()),
    }
}

/// The address a request comes from: the TCP peer, or (with `TRUST_PROXY_HEADERS`) the last
/// address in `X-Forwarded-For`, the one the trusted proxy itself appended.
pub fn client_ip(
    request_headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    trust_proxy: bool,
) -> IpAddr {
    if trust_proxy
        && let Some(ip) = request_headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return ip;
    }
    peer.map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(public: &str) -> HostPolicy {
        HostPolicy::new(
            &Url::parse(public).unwrap(),
            vec!["gatehouse.internal".into(), "192.0.2.10".into()],
            vec!["https://app.example.com".into()],
        )
    }

    #[test]
    fn authorities() {
        assert_eq!(
            split_authority("Example.COM:8080"),
            Some(("example.com".into(), Some(8080)))
        );
        assert_eq!(split_authority("[::1]:9"), Some(("::1".into(), Some(9))));
        assert_eq!(split_authority("[::1]"), Some(("::1".into(), None)));
        assert_eq!(
            split_authority("localhost."),
            Some(("localhost".into(), None))
        );
        for bad in [
            "",
            "a b",
            "evil.example@127.0.0.1",
            "x:",
            "x:y",
            "[::1",
            "[nope]:1",
            "::1",
            "x/y",
            ":80",
            "h:99999",
            "localhost..",
            "a..b",
            ".a",
        ] {
            assert_eq!(split_authority(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hosts() {
        let p = policy("https://gh.example.com");
        for ok in [
            "gh.example.com",
            "GH.example.com:443",
            "gh.example.com.",
            "localhost:8080",
            "LOCALHOST",
            "127.0.0.1:9",
            "127.8.9.10",
            "[::1]:8080",
            "gatehouse.internal:8080",
            "192.0.2.10",
        ] {
            assert!(p.host_allowed(Some(ok)), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "gh.example.com.evil.example",
            "gh.example.com:8443",
            "localhost.evil.example",
            "192.0.2.11",
            "0.0.0.0:8080",
            "gatehouse.internal.evil",
            "",
        ] {
            assert!(!p.host_allowed(Some(refused)), "{refused}");
        }
        assert!(p.host_allowed(None));
        let local = policy("http://127.0.0.1:8080");
        assert!(local.host_allowed(Some("127.0.0.1:8080")));
        assert!(!local.host_allowed(Some("rebind.evil.example:8080")));
        let plain = policy("http://gatehouse.example:8080");
        assert!(plain.host_allowed(Some("gatehouse.example:8080")));
        assert!(!plain.host_allowed(Some("gatehouse.example")));
    }

    #[test]
    fn mcp_origins() {
        let p = policy("https://gh.example.com");
        assert!(p.mcp_origin_allowed("https://gh.example.com"));
        assert!(p.mcp_origin_allowed("https://app.example.com"));
        assert!(p.mcp_origin_allowed("http://localhost:6274"));
        assert!(p.mcp_origin_allowed("http://127.0.0.1:3000"));
        assert!(!p.mcp_origin_allowed("https://evil.example"));
        assert!(!p.mcp_origin_allowed("null"));
        assert!(!p.mcp_origin_allowed("http://gh.example.com"));
    }

    #[test]
    fn app_origins() {
        let p = policy("http://127.0.0.1:8080");
        assert!(p.app_origin_allowed("http://127.0.0.1:8080", None));
        assert!(p.app_origin_allowed("http://localhost:8080", Some("localhost:8080")));
        assert!(p.app_origin_allowed("http://gatehouse.internal", Some("gatehouse.internal")));
        // The rebinding page: its Origin and Host agree, but the name is not ours.
        assert!(!p.app_origin_allowed("http://evil.example:8080", Some("evil.example:8080")));
        assert!(!p.app_origin_allowed("http://localhost:3000", Some("127.0.0.1:8080")));
        assert!(!p.app_origin_allowed("null", Some("127.0.0.1:8080")));
        // The default port, written or not, is the same origin.
        assert!(p.app_origin_allowed("http://localhost", Some("localhost:80")));
        assert!(!p.app_origin_allowed("https://localhost", Some("localhost:80")));
    }

    #[test]
    fn allowed_host_entries() {
        assert_eq!(
            parse_allowed_host("Gatehouse.Internal").unwrap(),
            "gatehouse.internal"
        );
        assert_eq!(parse_allowed_host("192.0.2.10").unwrap(), "192.0.2.10");
        assert_eq!(parse_allowed_host("[2001:db8::1]").unwrap(), "2001:db8::1");
        assert_eq!(parse_allowed_host("2001:DB8:0::1").unwrap(), "2001:db8::1");
        for bad in [
            "https://x.example",
            "x.example:8080",
            "x.example/",
            "x_y",
            "*.x",
        ] {
            assert!(parse_allowed_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_names() {
        for name in ["localhost", "LocalHost.", "127.0.0.1", "::1", "[::1]"] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in ["localhost.evil", "0.0.0.0", "192.0.2.1", "evil"] {
            assert!(!is_loopback_name(name), "{name}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let h = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7")]);
        let peer = ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5555)));
        assert_eq!(
            client_ip(&h, Some(&peer), false),
            IpAddr::from([10, 0, 0, 1])
        );
        assert_eq!(
            client_ip(&h, Some(&peer), true),
            IpAddr::from([203, 0, 113, 7])
        );
        assert_eq!(
            client_ip(&headers(&[]), Some(&peer), true),
            IpAddr::from([10, 0, 0, 1])
        );
    }
}
