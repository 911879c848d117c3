//! Small helpers shared by the server and the browser build.

/// Returns `candidate` if it is a safe place to send a browser back to after login: a path on
/// this origin. Anything that a browser could read as another origin (`//host`, `/\host`,
/// `https:…`) or that carries control characters is refused, so `next=` can never become an
/// open redirect.
pub fn safe_return_path(candidate: &str) -> Option<String> {
    // Long enough for an OAuth authorization request coming back after login.
    const MAX_LEN: usize = 4096;
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

/// `key<separator>value` per line (blank lines skipped, both sides trimmed); a line without
/// the separator is a key with an empty value, for the server to refuse with a message.
pub fn parse_pairs(text: &str, separator: char) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(separator) {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
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

/// A unix time as `YYYY-MM-DD HH:MM UTC`, the same on the server and in the browser.
pub fn format_utc(unix: i64) -> String {
    let mut at = format_utc_seconds(unix);
    // "YYYY-MM-DD HH:MM:SS UTC" less ":SS".
    at.replace_range(16..19, "");
    at
}

/// A unix time as `YYYY-MM-DD HH:MM:SS UTC` (the audit trail's precision).
pub fn format_utc_seconds(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        (secs % 3_600) / 60,
        secs % 60
    )
}

/// How long ago `then` was, relative to `now`, in words.
pub fn ago(then: i64, now: i64) -> String {
    let d = (now - then).max(0);
    match d {
        0..=59 => "just now".into(),
        60..=3_599 => format!("{} min ago", d / 60),
        3_600..=86_399 => format!("{} h ago", d / 3_600),
        _ => format!("{} days ago", d / 86_400),
    }
}

/// How soon `at` comes, relative to `now`, in words ("due" once it has passed).
pub fn due_in(at: i64, now: i64) -> String {
    let d = at - now;
    match d {
        ..=0 => "due now".into(),
        1..=59 => "in under a minute".into(),
        60..=3_599 => format!("in {} min", d / 60),
        3_600..=86_399 => format!("in {} h", d / 3_600),
        _ => format!("in {} days", d / 86_400),
    }
}

/// A connection's or a grant's refresh health in one line, for admins: last refresh, next
/// refresh, failures in a row.
pub fn refresh_health(
    refreshed_at: Option<i64>,
    next_refresh_at: Option<i64>,
    failures: i64,
    now: i64,
) -> String {
    let last = match refreshed_at {
        Some(at) => format!("refreshed {}", ago(at, now)),
        None => "never refreshed".into(),
    };
    let next = match next_refresh_at {
        Some(at) => format!("next refresh {}", due_in(at, now)),
        None => "no refresh due".into(),
    };
    match failures {
        0 => format!("{last} · {next}"),
        1 => format!("{last} · {next} · 1 failure"),
        n => format!("{last} · {next} · {n} failures in a row"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_health_reads_as_a_sentence() {
        assert_eq!(
            refresh_health(Some(1_000), Some(1_000 + 3_700), 0, 1_030),
            "refreshed just now · next refresh in 1 h"
        );
        assert_eq!(
            refresh_health(None, Some(50), 3, 100),
            "never refreshed · next refresh due now · 3 failures in a row"
        );
        assert_eq!(
            refresh_health(Some(0), None, 1, 7_200),
            "refreshed 2 h ago · no refresh due · 1 failure"
        );
    }

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
        assert_eq!(safe_return_path(&format!("/{}", "a".repeat(5000))), None);
        assert_eq!(safe_return_path("/login?next=/x").as_deref(), Some("/"));
        assert_eq!(safe_return_path("/auth/callback").as_deref(), Some("/"));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query_value("/a b?c=d&e"), "%2Fa%20b%3Fc%3Dd%26e");
        assert_eq!(encode_query_value("é"), "%C3%A9");
    }

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_795_474_525), "2026-11-23 22:55 UTC");
        assert_eq!(ago(100, 130), "just now");
        assert_eq!(ago(0, 7_200), "2 h ago");
        assert_eq!(ago(0, 3 * 86_400), "3 days ago");
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
