//! `[export]`: every audit row sent on to an OpenTelemetry collector as a
//! log record (OTLP/HTTP, protobuf).
//!
//! ```toml
//! [export]
//! otlp_endpoint = "http://127.0.0.1:4318"   # `/v1/logs` is appended
//! batch_size = 512                           # records per request
//! interval_ms = 1000                         # how often new rows are looked for
//! max_queue_rows = 100000                    # rows owed before the oldest are dropped
//! timeout_seconds = 10                       # one request's time limit
//! ```
//!
//! `otlp_endpoint` is a base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` is:
//! `/v1/logs` is appended to its path (`http://host:4318` and
//! `http://host:4318/` become `http://host:4318/v1/logs`,
//! `https://host/otlp` becomes `https://host/otlp/v1/logs`), unless the
//! path already ends in `/v1/logs`, which is then used as written.
//!
//! Plain `http` is accepted only for a collector on this machine (a
//! loopback host): what is sent is redacted, but the headers (from the
//! environment, never from this file) often carry a key. A URL with a user
//! or password in it, a query or a fragment is refused: credentials go in
//! `OTEL_EXPORTER_OTLP_HEADERS`. This module does no IO.

use toml::de::DeTable;

use super::error::ProblemKind;
use super::read::{Cx, entries};

const KEYS: &[&str] = &["otlp_endpoint", "batch_size", "interval_ms", "max_queue_rows", "timeout_seconds"];
/// The OTLP/HTTP path of the logs signal.
pub const LOGS_PATH: &str = "/v1/logs";

/// The `[export]` section, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportConf {
    /// The full URL requests go to (the written base with [`LOGS_PATH`]).
    pub logs_url: String,
    /// Whether the host is a loopback address (no proxy is used for it).
    pub loopback: bool,
    /// Records per request.
    pub batch_size: u32,
    /// How often the log is looked at for new rows, in ms.
    pub interval_ms: u64,
    /// Rows not yet exported beyond this many: the oldest are dropped (and
    /// counted).
    pub max_queue_rows: u64,
    /// One request's time limit.
    pub timeout_seconds: u64,
}

impl ExportConf {
    pub const DEFAULT_BATCH_SIZE: u32 = 512;
    pub const DEFAULT_INTERVAL_MS: u64 = 1_000;
    pub const DEFAULT_MAX_QUEUE_ROWS: u64 = 100_000;
    pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
}

/// What is wrong with an endpoint, and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadEndpoint {
    pub why: String,
    pub fix: String,
}

/// The logs URL of an `otlp_endpoint` and whether its host is loopback.
pub fn logs_url(endpoint: &str) -> Result<(String, bool), BadEndpoint> {
    let bad = |why: &str, fix: &str| BadEndpoint { why: why.to_owned(), fix: fix.to_owned() };
    let example = "write it like `otlp_endpoint = \"http://127.0.0.1:4318\"` or `\"https://collector.example:4318\"`";
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((s, r)) if s.eq_ignore_ascii_case("http") => ("http", r),
        Some((s, r)) if s.eq_ignore_ascii_case("https") => ("https", r),
        _ => return Err(bad("it is not an http:// or https:// URL", example)),
    };
    if rest.contains(['?', '#']) {
        return Err(bad("it has a query or fragment, which OTLP does not use", "leave out everything from `?` or `#`"));
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it holds spaces or control characters", example));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad(
            "it holds a user or password, and this file is no place for credentials",
            "put them in the environment as `OTEL_EXPORTER_OTLP_HEADERS=\"authorization=Basic …\"`",
        ));
    }
    let host = host_of(authority).ok_or_else(|| bad("it has no valid host or port", example))?;
    let loopback = is_loopback(&host);
    if scheme == "http" && !loopback {
        return Err(bad(
            "plain http is accepted only for a collector on this machine (the request's headers often carry a key)",
            "use https://, or run a collector on this machine (`http://127.0.0.1:4318`)",
        ));
    }
    let path = path.trim_end_matches('/');
    let full = if path.ends_with(LOGS_PATH) { path.to_owned() } else { format!("{path}{LOGS_PATH}") };
    Ok((format!("{scheme}://{authority}{full}"), loopback))
}

/// The host of `host[:port]` or `[v6][:port]`, lower case; None when empty
/// or the port is not a number.
fn host_of(authority: &str) -> Option<String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return None;
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':');
    (!host.is_empty() && host.chars().all(ok)).then(|| host.to_ascii_lowercase())
}

/// `localhost`, `127.0.0.0/8` and `[::1]`.
fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4 && parts[0] == "127" && parts.iter().all(|p| p.parse::<u8>().is_ok())
}

/// Reads the `[export]` table; problems go to `cx` with their line.
pub(crate) fn parse(cx: &mut Cx<'_>, t: &DeTable<'_>, section: std::ops::Range<usize>) -> Option<ExportConf> {
    let mut endpoint = None;
    let mut c = ExportConf {
        logs_url: String::new(),
        loopback: false,
        batch_size: ExportConf::DEFAULT_BATCH_SIZE,
        interval_ms: ExportConf::DEFAULT_INTERVAL_MS,
        max_queue_rows: ExportConf::DEFAULT_MAX_QUEUE_ROWS,
        timeout_seconds: ExportConf::DEFAULT_TIMEOUT_SECONDS,
    };
    for (k, v) in entries(t) {
        match k.get_ref().as_ref() {
            "otlp_endpoint" => {
                let Some(s) = cx.str(v, "otlp_endpoint", "`otlp_endpoint = \"http://127.0.0.1:4318\"`") else {
                    continue;
                };
                match logs_url(s) {
                    Ok(u) => endpoint = Some(u),
                    Err(e) => cx.problem(
                        ProblemKind::WrongType,
                        v.span(),
                        format!("`otlp_endpoint` is not usable: {}", e.why),
                        e.fix,
                    ),
                }
            }
            "batch_size" => {
                if let Some(n) =
                    cx.int(v, "batch_size", (1, 10_000), "records per request: 1 to 10000 (512 is the default)")
                {
                    c.batch_size = n as u32;
                }
            }
            "interval_ms" => {
                if let Some(n) = cx.int(
                    v,
                    "interval_ms",
                    (50, 60_000),
                    "how often new rows are looked for: 50 to 60000 ms (1000 is the default)",
                ) {
                    c.interval_ms = n;
                }
            }
            "max_queue_rows" => {
                if let Some(n) = cx.int(
                    v,
                    "max_queue_rows",
                    (10, 1 << 32),
                    "rows owed to the collector before the oldest are dropped: 10 or more (100000 is the default)",
                ) {
                    c.max_queue_rows = n;
                }
            }
            "timeout_seconds" => {
                if let Some(n) =
                    cx.int(v, "timeout_seconds", (1, 120), "one request's time limit: 1 to 120 s (10 is the default)")
                {
                    c.timeout_seconds = n;
                }
            }
            "headers" | "otlp_headers" => cx.problem(
                ProblemKind::UnknownKey,
                k.span(),
                format!("unknown key `{}` in [export]: headers are not written in the policy", k.get_ref()),
                "set them in the daemon's environment: `OTEL_EXPORTER_OTLP_HEADERS=\"api-key=…\"` (or \
                 `OTEL_EXPORTER_OTLP_LOGS_HEADERS`), so no key sits in a file people share",
            ),
            _ => cx.unknown_key(k, "in [export]", KEYS),
        }
    }
    let had_endpoint_key = entries(t).iter().any(|(k, _)| k.get_ref() == "otlp_endpoint");
    match endpoint {
        Some((url, loopback)) => {
            c.logs_url = url;
            c.loopback = loopback;
            Some(c)
        }
        None => {
            if !had_endpoint_key {
                cx.problem(
                    ProblemKind::MissingKey,
                    section,
                    "[export] has no `otlp_endpoint`: nothing would be exported",
                    "add `otlp_endpoint = \"http://127.0.0.1:4318\"` (your collector), or remove the [export] section",
                );
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::logs_url;
    use crate::policy::{Policy, ProblemKind};

    #[test]
    fn export_is_off_without_the_section() {
        assert!(Policy::parse("").unwrap().export().is_none());
    }

    #[test]
    fn a_base_endpoint_gets_the_logs_path() {
        let u = |s: &str| logs_url(s).unwrap().0;
        assert_eq!(u("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/logs");
        assert_eq!(u("http://localhost:4318/"), "http://localhost:4318/v1/logs");
        assert_eq!(u("https://otel.example.com/otlp"), "https://otel.example.com/otlp/v1/logs");
        assert_eq!(u("https://otel.example.com/otlp/v1/logs"), "https://otel.example.com/otlp/v1/logs");
        assert_eq!(u("http://[::1]:4318"), "http://[::1]:4318/v1/logs");
        assert!(logs_url("http://127.0.0.1:4318").unwrap().1);
        assert!(!logs_url("https://otel.example.com").unwrap().1);
    }

    #[test]
    fn unsafe_or_odd_endpoints_are_refused_with_a_fix() {
        for bad in [
            "http://otel.example.com:4318",
            "http://127.0.0.1.evil.example:4318",
            "https://user:pw@otel.example.com",
            "https://otel.example.com/?k=v",
            "ftp://otel.example.com",
            "otel.example.com:4318",
            "https://otel.example.com:port",
            "https://",
        ] {
            let e = logs_url(bad).unwrap_err();
            assert!(!e.fix.is_empty(), "{bad}");
        }
        assert!(logs_url("http://otel.example.com").unwrap_err().fix.contains("https://"));
    }

    #[test]
    fn the_section_is_read_with_defaults() {
        let p = Policy::parse("[export]\notlp_endpoint = \"http://127.0.0.1:4318\"\n").unwrap();
        let e = p.export().unwrap();
        assert_eq!(e.logs_url, "http://127.0.0.1:4318/v1/logs");
        assert_eq!((e.batch_size, e.interval_ms, e.max_queue_rows, e.timeout_seconds), (512, 1_000, 100_000, 10));
        let p = Policy::parse(
            "[export]\notlp_endpoint = \"https://c.example\"\nbatch_size = 3\ninterval_ms = 100\nmax_queue_rows = \
             50\ntimeout_seconds = 2\n",
        )
        .unwrap();
        let e = p.export().unwrap();
        assert_eq!((e.batch_size, e.interval_ms, e.max_queue_rows, e.timeout_seconds), (3, 100, 50, 2));
    }

    #[test]
    fn a_typo_or_a_missing_endpoint_is_an_error_not_a_silent_off() {
        let e = Policy::parse("[export]\notlp_endpiont = \"http://127.0.0.1:4318\"\n").unwrap_err();
        assert!(e.problems.iter().any(|p| p.kind == ProblemKind::UnknownKey && p.line == 2), "{e:?}");
        assert!(e.problems.iter().any(|p| p.hint.contains("otlp_endpoint")), "{e:?}");
        assert!(e.problems.iter().any(|p| p.kind == ProblemKind::MissingKey), "{e:?}");
        let e = Policy::parse("[export]\notlp_endpoint = \"http://10.0.0.5:4318\"\n").unwrap_err();
        assert!(e.problems[0].message.contains("otlp_endpoint"), "{e:?}");
        let e = Policy::parse("[export]\notlp_endpoint = \"http://127.0.0.1:4318\"\nbatch_size = 0\n").unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::OutOfRange);
        let e = Policy::parse("export = \"http://127.0.0.1:4318\"\n").unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::WrongType);
    }

    #[test]
    fn headers_in_the_file_are_refused_and_pointed_to_the_environment() {
        let e = Policy::parse("[export]\notlp_endpoint = \"http://127.0.0.1:4318\"\nheaders = \"k=v\"\n").unwrap_err();
        assert!(e.problems[0].hint.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{e:?}");
    }

    #[test]
    fn turning_export_on_or_changing_it_loosens() {
        // A new place for the log to go waits for the person like any
        // loosening change; so does turning it off.
        let on = "[export]\notlp_endpoint = \"http://127.0.0.1:4318\"\n";
        assert_eq!(crate::policy::compare("", on).unwrap().loosening(), 1);
        assert_eq!(crate::policy::compare(on, "").unwrap().loosening(), 1);
        let moved = "[export]\notlp_endpoint = \"https://elsewhere.example\"\n";
        assert_eq!(crate::policy::compare(on, moved).unwrap().loosening(), 1);
    }
}
