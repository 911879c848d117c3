//! Small helpers shared by the server and the browser build.

/// Returns `candidate` if it is a safe place to send a browser back to after login: a path on
/// this origin. Anything that a browser could read as another origin (`//host`, `/\host`,
/// `https:…`) or that carries control characters is refused, so `next=` can never become an
/// open redirect.
pub fn safe_return_path(candidate: &str) -> Option<String> {
    const MAX_LEN: usize = 2048;
    if candidate.is_empty() || candidate.len() > MAX_LEN {
        return None;
    }
    let bytes = candidate.as_bytes();
    if bytes[0] != b'/' {
        return None;
    }
    // Browsers treat `\` like `/`, so `/\evil.example` is protocol-relative too.
    if bytes.len() > 1 && (bytes[1] == b'/' || bytes[1] == b'\\') {
        return None;
    }
    if candidate
        .chars()
        .any(|c| c.is_control() || c == '\\' || c.is_whitespace())
    {
        return None;
    }
    // Returning to the login page after logging in would loop.
    if candidate == "/login" || candidate.starts_with("/login?") || candidate.starts_with("/auth/")
    {
        return Some("/".to_string());
    }
    Some(candidate.to_string())
}

/// Percent-encodes a string for use as one query-string value (RFC 3986 unreserved characters
/// are kept as they are).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The login URL that returns to `path` afterwards, optionally showing an error code.
pub fn login_url(next: Option<&str>, error: Option<&str>) -> String {
    let mut url = String::from("/login");
    let mut sep = '?';
    if let Some(error) = error {
        url.push(sep);
        url.push_str("error=");
        url.push_str(&encode_query_value(error));
        sep = '&';
    }
    if let Some(next) = next.and_then(safe_return_path).filter(|n| n != "/") {
        url.push(sep);
        url.push_str("next=");
        url.push_str(&encode_query_value(&next));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_origin() {
        assert_eq!(safe_return_path("/").as_deref(), Some("/"));
        assert_eq!(
            safe_return_path("/settings?tab=1#x").as_deref(),
            Some("/settings?tab=1#x")
        );
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/ok\\..\\x",
            "javascript:alert(1)",
            "evil",
            "/a\nb",
            "/a b",
            "/\t/evil.example",
        ] {
            assert_eq!(safe_return_path(bad), None, "{bad:?} must be refused");
        }
        assert_eq!(safe_return_path(&format!("/{}", "a".repeat(3000))), None);
        assert_eq!(safe_return_path("/login?next=/x").as_deref(), Some("/"));
        assert_eq!(safe_return_path("/auth/callback").as_deref(), Some("/"));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query_value("/a b?c=d&e"), "%2Fa%20b%3Fc%3Dd%26e");
        assert_eq!(encode_query_value("é"), "%C3%A9");
    }

    #[test]
    fn login_urls_carry_safe_next_only() {
        assert_eq!(login_url(None, None), "/login");
        assert_eq!(login_url(Some("/"), None), "/login");
        assert_eq!(
            login_url(Some("/x?y=1"), Some("session_expired")),
            "/login?error=session_expired&next=%2Fx%3Fy%3D1"
        );
        assert_eq!(login_url(Some("//evil"), None), "/login");
    }
}
