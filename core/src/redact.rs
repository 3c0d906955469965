//! Redaction: secrets never reach the database, a console, a notification or
//! a network peer. Values are redacted by key name (`password`, `token` …)
//! and by value pattern (provider keys, JWTs, PEM keys, `Bearer …`,
//! passwords inside URLs), including inside free text such as a shell
//! command line. Harmless keys (`author`, `filename`, `path`) stay readable.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// What a redacted secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Key names whose values are secrets, matched on the key's words.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['-', ' '], "_");
    const EXACT: &[&str] = &[
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "auth",
        "cookie",
        "set_cookie",
        "private_key",
        "privatekey",
        "client_secret",
        "access_token",
        "refresh_token",
        "session",
        "sessionid",
        "session_id",
        "credentials",
        "credential",
        "passphrase",
        "otp",
        "pin",
    ];
    if EXACT.contains(&k.as_str()) {
        return true;
    }
    const SUFFIXES: &[&str] = &[
        "_password",
        "_passwd",
        "_secret",
        "_token",
        "_api_key",
        "_apikey",
        "_key_secret",
        "_private_key",
        "_credentials",
        "_passphrase",
        "_cookie",
    ];
    SUFFIXES.iter().any(|s| k.ends_with(s)) || k.starts_with("secret_") || k.starts_with("token_")
}

static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // PEM private keys (whole block, or an unterminated tail).
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
        // Bearer / Basic credentials.
        r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}",
        // JWTs.
        r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
        // OpenAI / Anthropic style keys.
        r"\bsk-[A-Za-z0-9_-]{16,}",
        // GitHub tokens.
        r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}",
        r"\bgithub_pat_[A-Za-z0-9_]{30,}",
        // AWS access key ids.
        r"\b(AKIA|ASIA)[A-Z0-9]{16}\b",
        // Slack tokens.
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        // Stripe keys.
        r"\b(sk|rk)_(live|test)_[A-Za-z0-9]{16,}",
        // Google API keys.
        r"\bAIza[0-9A-Za-z_-]{35}",
        // Passwords inside URLs: scheme://user:password@host
        r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@",
        // key=value and key: value in free text for secret-looking keys.
        r#"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)\s*[=:]\s*("[^"]*"|'[^']*'|[^\s&"']+)"#,
    ]
    .iter()
    .map(|p| Regex::new(p).expect("built-in redaction patterns compile"))
    .collect()
});

/// Redacts secrets inside free text.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (i, re) in PATTERNS.iter().enumerate() {
        if !re.is_match(&out) {
            continue;
        }
        let replaced = match i {
            // Keep the scheme and user of a URL, drop the password.
            10 => re
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    let m = &c[0];
                    let colon = m.rfind(':').unwrap_or(m.len());
                    format!("{}:{MASK}@", &m[..colon])
                })
                .into_owned(),
            // Keep the key, drop the value.
            11 => re.replace_all(&out, |c: &regex::Captures<'_>| format!("{}={MASK}", &c[1])).into_owned(),
            _ => re.replace_all(&out, MASK).into_owned(),
        };
        out = Cow::Owned(replaced);
    }
    out
}

/// A copy of `value` with every secret replaced by [`MASK`].
pub fn redact_value(value: &Value) -> Value {
    match value {
        Value::String(s) => match redact_text(s) {
            Cow::Borrowed(_) => value.clone(),
            Cow::Owned(o) => Value::String(o),
        },
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) && !v.is_null() && !v.is_boolean() {
                        Value::String(MASK.to_owned())
                    } else {
                        redact_value(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// True when redaction would change something.
pub fn has_secret(value: &Value) -> bool {
    redact_value(value) != *value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_patterns() {
        let v = json!({
            "password": "hunter2",
            "author": "ada",
            "path": "/tmp/x",
            "command": "curl -H 'Authorization: Bearer abcdefghijklmnop' https://u:pw@h.example/x",
            "nested": [{"api_key": "k"}, "sk-abcdefghijklmnopqrstuv"],
        });
        let r = redact_value(&v);
        let s = r.to_string();
        assert!(!s.contains("hunter2") && !s.contains("abcdefghijklmnop") && !s.contains(":pw@"), "{s}");
        assert!(!s.contains("sk-abc"), "{s}");
        assert_eq!(r["author"], "ada");
        assert_eq!(r["path"], "/tmp/x");
        assert_eq!(r["nested"][0]["api_key"], MASK);
    }
}
