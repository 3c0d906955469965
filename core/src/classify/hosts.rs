//! Finding hosts and e-mail domains in argument strings, without a URL crate.
//!
//! Recognised forms: `scheme://user:pass@host:port/path?q#f` (IPv6 literals
//! in brackets included), bare e-mail addresses `a@b.c`, display forms
//! `Name <a@b.c>`, `mailto:a@b.c`, scp-style `git@host:path`, and — only
//! under host-like keys (`url`, `host`, `domain`, `endpoint` …) — a bare
//! `host[:port][/path]`. Every returned host is lower-case, without port,
//! brackets or trailing dot. Malformed input yields nothing, never a panic.

/// Longest part of one string that is scanned for addresses.
pub(crate) const MAX_SCAN_BYTES: usize = 16 * 1024;

/// True when `host` is one of `internal_domains` or a subdomain of one
/// (compared on the parsed, lower-cased host, label by label:
/// `localbank.com` is not internal for `local` nor for `bank.com`,
/// `a.example.com` is for `example.com`, `example.com.evil.net` is not).
/// Entries may be written `example.com`, `.example.com`, `*.example.com` or
/// `@example.com`; empty entries match nothing. A `host` that is a URL or an
/// address is parsed first.
pub fn is_internal(host: &str, internal_domains: &[String]) -> bool {
    let parsed;
    let host = if host.contains("://") || host.contains('@') {
        parsed = first_host(host);
        match &parsed {
            Some(h) => h.as_str(),
            None => return false,
        }
    } else {
        strip_port(host.trim())
    };
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return false;
    }
    internal_domains.iter().any(|d| {
        let d = d.trim();
        let d = d.trim_start_matches("*.").trim_start_matches(['.', '@']).trim_end_matches('.');
        if d.is_empty() || d.len() > host.len() {
            return false;
        }
        let tail = &host[host.len() - d.len()..];
        if !tail.eq_ignore_ascii_case(d) {
            return false;
        }
        host.len() == d.len() || host.as_bytes()[host.len() - d.len() - 1] == b'.'
    })
}

/// Loopback and private-network hosts: the user's own machine and network,
/// never "external" whatever the internal domain list says.
pub(crate) fn is_local(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") || host == "::1" || host == "0.0.0.0" {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified();
    }
    if let Ok(ip) = host.parse::<std::net::Ipv6Addr>() {
        let first = ip.segments()[0];
        // Loopback, unique-local fc00::/7, link-local fe80::/10.
        return ip.is_loopback() || ip.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80;
    }
    false
}

fn strip_port(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    // More than one colon without brackets: an IPv6 literal, keep it.
    match s.find(':') {
        Some(i) if s[i + 1..].contains(':') => s,
        Some(i) => &s[..i],
        None => s,
    }
}

fn first_host(s: &str) -> Option<String> {
    let mut out = None;
    scan(s, false, &mut |h| {
        if out.is_none() {
            out = Some(h.to_owned());
        }
    });
    out
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'
}

fn is_local_part_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b)
}

/// A plausible DNS name: labels of host bytes, at least one dot, a
/// top-level label that is not all digits; or `localhost`.
fn plausible_domain(h: &str) -> bool {
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if h.len() > 253 || !h.contains('.') || h.starts_with('.') || h.contains("..") {
        return false;
    }
    let tld = h.rsplit('.').next().unwrap_or("");
    !tld.is_empty() && !tld.bytes().all(|b| b.is_ascii_digit()) && h.bytes().all(is_host_byte)
}

/// Normalises a raw host: lower-case, no trailing dot, IPv4 and bracketed
/// IPv6 literals kept as they are. `None` when it is not a host.
fn normalise(raw: &str) -> Option<String> {
    let h = raw.trim_end_matches('.');
    if h.is_empty() {
        return None;
    }
    if h.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some(h.to_owned());
    }
    if h.contains(':') {
        return h.parse::<std::net::Ipv6Addr>().ok().map(|ip| ip.to_string());
    }
    if !plausible_domain(h) {
        return None;
    }
    Some(h.to_ascii_lowercase())
}

/// Calls `found` with every host in `s` (URLs and e-mail domains; bare
/// hosts too when `host_key` says the value is meant as a host). At most
/// [`MAX_SCAN_BYTES`] are scanned.
pub(crate) fn scan(s: &str, host_key: bool, found: &mut dyn FnMut(&str)) {
    let mut end = s.len().min(MAX_SCAN_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = &s[..end];
    let bytes = s.as_bytes();
    let mut any = false;

    // scheme://authority
    let mut from = 0;
    while let Some(pos) = s[from..].find("://") {
        let sep = from + pos;
        from = sep + 3;
        let mut start = sep;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || b"+.-".contains(&bytes[start - 1])) {
            start -= 1;
        }
        if start == sep || !bytes[start].is_ascii_alphabetic() {
            continue;
        }
        let auth_start = sep + 3;
        let auth_len = s[auth_start..]
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c == '\\' || c.is_whitespace() || "\"'<>{}|^`,;".contains(c)
            })
            .unwrap_or(s.len() - auth_start);
        let authority = &s[auth_start..auth_start + auth_len];
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if let Some(rest) = hostport.strip_prefix('[') {
            rest.split(']').next().unwrap_or("")
        } else {
            let h = hostport.split(':').next().unwrap_or("");
            let n = h.bytes().take_while(|&b| is_host_byte(b)).count();
            &h[..n]
        };
        if let Some(h) = normalise(host) {
            any = true;
            found(&h);
        }
        from = auth_start + auth_len;
    }

    // local@domain (also `Name <a@b.c>`, `mailto:`, `git@host:path`).
    // Where the first `://` ends, found once: asking at every `@` whether
    // the text before it has one would be quadratic.
    let first_scheme_end = s.find("://").map(|p| p + 3);
    let mut from = 0;
    while let Some(pos) = s[from..].find('@') {
        let at = from + pos;
        from = at + 1;
        let mut ls = at;
        while ls > 0 && is_local_part_byte(bytes[ls - 1]) {
            ls -= 1;
        }
        if ls == at {
            continue;
        }
        // `scheme://user@host` was handled above.
        if s[..ls].ends_with("//") || (ls > 0 && bytes[ls - 1] == b':' && first_scheme_end.is_some_and(|e| e <= ls)) {
            continue;
        }
        let dlen = bytes[at + 1..].iter().take_while(|&&b| is_host_byte(b)).count();
        if let Some(h) = normalise(&s[at + 1..at + 1 + dlen]) {
            any = true;
            found(&h);
        }
    }

    // A bare host under a host-like key.
    if host_key && !any {
        let v = s.trim();
        let first = v.split(['/', '?', '#']).next().unwrap_or("");
        let host = strip_port(first);
        if !host.is_empty()
            && !v.contains(char::is_whitespace)
            && let Some(h) = normalise(host)
        {
            found(&h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(s: &str, host_key: bool) -> Vec<String> {
        let mut v = Vec::new();
        scan(s, host_key, &mut |h| v.push(h.to_owned()));
        v
    }

    #[test]
    fn url_forms_give_the_host() {
        assert_eq!(hosts("https://Example.COM/path?q=1", false), ["example.com"]);
        assert_eq!(hosts("https://user:pw@api.example.com:8443/x", false), ["api.example.com"]);
        assert_eq!(hosts("see (https://docs.rs/serde) now", false), ["docs.rs"]);
        assert_eq!(hosts("http://[::1]:8080/", false), ["::1"]);
        assert_eq!(hosts("http://[2001:db8::1]/", false), ["2001:db8::1"]);
        assert_eq!(hosts("http://10.0.0.1:80", false), ["10.0.0.1"]);
        assert_eq!(hosts("ftp://example.org.", false), ["example.org"]);
        assert!(hosts("file:///etc/passwd", false).is_empty());
        assert!(hosts("://nohost", false).is_empty());
        assert!(hosts("http://[::zz]/", false).is_empty());
        assert!(hosts("http://[", false).is_empty());
    }

    #[test]
    fn email_forms_give_the_domain() {
        assert_eq!(hosts("bob@Corp.com", false), ["corp.com"]);
        assert_eq!(hosts("Bob Smith <bob@corp.com>", false), ["corp.com"]);
        assert_eq!(hosts("mailto:a@b.co", false), ["b.co"]);
        assert_eq!(hosts("git@github.com:owner/repo.git", false), ["github.com"]);
        assert_eq!(hosts("a@x.com, b@y.org", false), ["x.com", "y.org"]);
        assert!(hosts("@ nobody @", false).is_empty());
        assert!(hosts("npm i @scope/pkg@1.2.3", false).is_empty());
        assert!(hosts("user@localhost", false) == ["localhost"]);
    }

    #[test]
    fn bare_hosts_only_under_host_keys() {
        assert_eq!(hosts("api.example.com:443/v1", true), ["api.example.com"]);
        assert!(hosts("api.example.com", false).is_empty());
        assert!(hosts("hello world.com", true).is_empty());
        assert!(hosts("1.5", true).is_empty());
    }

    #[test]
    fn internal_is_exact_or_subdomain() {
        let d = vec!["example.com".to_owned(), "local".to_owned(), "".to_owned(), "*.corp.net".to_owned()];
        assert!(is_internal("example.com", &d));
        assert!(is_internal("A.Example.COM", &d));
        assert!(is_internal("a.example.com.", &d));
        assert!(is_internal("x.corp.net", &d));
        assert!(is_internal("https://a.example.com:8443/x", &d));
        assert!(is_internal("bob@example.com", &d));
        assert!(!is_internal("localbank.com", &d));
        assert!(!is_internal("example.com.evil.net", &d));
        assert!(!is_internal("notexample.com", &d));
        assert!(!is_internal("", &d));
        assert!(!is_internal("example.com", &[]));
    }

    #[test]
    fn local_hosts() {
        for h in ["localhost", "app.localhost", "127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "fd00::1"] {
            assert!(is_local(h), "{h}");
        }
        for h in ["8.8.8.8", "example.com", "2001:db8::1"] {
            assert!(!is_local(h), "{h}");
        }
    }

    #[test]
    fn huge_and_odd_strings_do_not_panic() {
        let big = "a@".repeat(100_000) + "é://" + &"€".repeat(10_000);
        let _ = hosts(&big, true);
        let _ = hosts("é@ü.de", false);
        let _ = hosts("[[[::::]]]", true);
        let _ = is_internal("[::1", &["x".to_owned()]);
    }
}
