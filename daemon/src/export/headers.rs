//! Request headers from the environment, as OpenTelemetry's exporters read
//! them: `OTEL_EXPORTER_OTLP_HEADERS`, then `OTEL_EXPORTER_OTLP_LOGS_HEADERS`
//! (whose keys win), each `key1=value1,key2=value2` with values
//! percent-decoded. A value is never logged or shown: problems name the
//! variable and the entry's position only.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

pub const GENERAL: &str = "OTEL_EXPORTER_OTLP_HEADERS";
pub const LOGS: &str = "OTEL_EXPORTER_OTLP_LOGS_HEADERS";

/// Headers Latch sets itself and the environment may not change.
const OWN: &[&str] = &["content-type", "content-length", "host", "transfer-encoding", "connection"];

/// The headers from `get` (the environment, or a map in tests).
pub fn from(get: impl Fn(&str) -> Option<String>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for var in [GENERAL, LOGS] {
        let Some(text) = get(var).filter(|t| !t.trim().is_empty()) else { continue };
        for (n, entry) in text.split(',').enumerate() {
            let at = || format!("{var}, entry {}", n + 1);
            if entry.trim().is_empty() {
                continue;
            }
            let Some((k, v)) = entry.split_once('=') else {
                return Err(format!("{} has no `=`: write `key=value` pairs separated by commas", at()));
            };
            let key = k.trim().to_ascii_lowercase();
            let name = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| format!("{}: `{key}` is not a valid header name", at()))?;
            if OWN.contains(&key.as_str()) {
                return Err(format!("{}: `{key}` is set by Latch and cannot be changed", at()));
            }
            let value = percent_decode(v.trim()).ok_or_else(|| format!("{}: the value has a bad `%` escape", at()))?;
            let mut value = HeaderValue::from_bytes(&value)
                .map_err(|_| format!("{}: the value of `{key}` holds characters a header cannot carry", at()))?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
    }
    Ok(map)
}

/// `%XX` escapes decoded; None for a broken one.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn pairs_are_read_decoded_and_the_logs_variable_wins() {
        let h = from(env(&[(GENERAL, "api-key=abc, X-Team = a%20b%2Cc ,,"), (LOGS, "api-key=logs")])).unwrap();
        assert_eq!(h.get("api-key").unwrap(), "logs");
        assert_eq!(h.get("x-team").unwrap(), "a b,c");
        assert!(h.get("api-key").unwrap().is_sensitive());
        assert!(from(env(&[])).unwrap().is_empty());
    }

    #[test]
    fn problems_never_show_the_value() {
        for bad in
            ["novalue", "k=%zz-secretvalue", "bad name=secretvalue", "content-type=secretvalue", "k=a\u{1}secretvalue"]
        {
            let e = from(env(&[(GENERAL, bad)])).unwrap_err();
            assert!(e.contains(GENERAL), "{e}");
            assert!(!e.contains("secretvalue"), "{e}");
        }
    }
}
