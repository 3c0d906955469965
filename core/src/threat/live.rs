//! Which of redaction's masks in a result hide something that looks like a
//! live secret.
//!
//! Redaction leans towards masking too much (`password: …` loses the word
//! after it, `Cookie` lines go whole): right for arguments that are stored
//! and shown, too eager for results, where a finding or a mask changes what
//! the agent reads. A result counts as holding a secret only when some
//! masked part looks like one: eight characters or more, digits with
//! letters (or digits only), six distinct characters or more, and no
//! whitespace unless it is long (a PEM block). `require('cookie')` in a README does not; a token,
//! a key or `S3cr3t-Pa55` does.

use serde_json::Value;

use crate::redact::{self, MASK};

/// True when `redact_text(t)` masks something live-looking.
pub fn text_has_live_secret(t: &str) -> bool {
    match redact::redact_text(t) {
        std::borrow::Cow::Borrowed(_) => false,
        std::borrow::Cow::Owned(r) => text_change_is_live(t, &r),
    }
}

/// Whether what `redacted` masked of `orig` looks live.
pub fn text_change_is_live(orig: &str, redacted: &str) -> bool {
    masked_parts(orig, redacted).is_none_or(|parts| parts.iter().any(|p| looks_live(p)))
}

/// True when `redact_value(v)` masks something live-looking.
pub fn value_has_live_secret(v: &Value) -> bool {
    redact::has_secret(v) && changed_live(v, &redact::redact_value(v))
}

/// Whether what `redacted` masked of `orig` looks live.
pub fn value_change_is_live(orig: &Value, redacted: &Value) -> bool {
    changed_live(orig, redacted)
}

fn changed_live(orig: &Value, red: &Value) -> bool {
    match (orig, red) {
        (Value::String(a), Value::String(b)) if a == b => false,
        (Value::String(a), Value::String(b)) => masked_parts(a, b).is_none_or(|p| p.iter().any(|p| looks_live(p))),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a.iter().zip(b).any(|(x, y)| changed_live(x, y)),
        (Value::Object(a), Value::Object(b)) if a.len() == b.len() && a.keys().eq(b.keys()) => {
            a.values().zip(b.values()).any(|(x, y)| changed_live(x, y))
        }
        // A number or a whole subtree masked.
        (x, Value::String(m)) if m == MASK => match x {
            Value::String(_) => unreachable!("strings are handled above"),
            Value::Number(n) => looks_live(&n.to_string()),
            other => value_has_any_live(other),
        },
        (x, y) => x != y,
    }
}

/// A subtree masked whole (under a secret key): live when any string or
/// number in it looks live.
fn value_has_any_live(v: &Value) -> bool {
    match v {
        Value::String(s) => looks_live(s),
        Value::Number(n) => looks_live(&n.to_string()),
        Value::Array(a) => a.iter().any(value_has_any_live),
        Value::Object(m) => m.values().any(value_has_any_live),
        _ => false,
    }
}

/// The parts of `orig` that `masked` replaced by [`MASK`], or `None` when
/// they cannot be lined up (then the caller assumes the worst).
fn masked_parts<'a>(orig: &'a str, masked: &str) -> Option<Vec<&'a str>> {
    let pieces: Vec<&str> = masked.split(MASK).collect();
    let mut at = orig.strip_prefix(pieces[0]).map(|_| pieces[0].len())?;
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate().skip(1) {
        let last = i == pieces.len() - 1;
        let rest = &orig[at..];
        let end = if last {
            rest.len().checked_sub(piece.len()).filter(|&e| rest[e..] == **piece)?
        } else if piece.is_empty() {
            // Two masks side by side: the split point is unknown.
            return None;
        } else {
            rest.find(piece)?
        };
        out.push(&rest[..end]);
        at += end + piece.len();
    }
    Some(out)
}

/// Eight characters or more, digits with letters (or digits only), six
/// distinct, and no whitespace unless 40 characters or more.
pub fn looks_live(s: &str) -> bool {
    let s = s.trim_matches(|c: char| c == '"' || c == '\'' || c == '`');
    let n = s.chars().count();
    let mut distinct: Vec<char> = s.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    n >= 8
        && s.chars().any(|c| c.is_ascii_digit())
        && (s.chars().any(|c| c.is_alphabetic()) || s.chars().all(|c| c.is_ascii_digit()))
        && distinct.len() >= 6
        && (n >= 40 || !s.chars().any(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_and_not() {
        for t in
            ["token ghp_Zx9Kq2Lm7Np4Rs8Tv1Wy5Ab3Cd6Ef0Gh2Jk4", "password=S3cr3t-Pa55", "postgres://u:Xk82hsj2K@db/x"]
        {
            assert!(text_has_live_secret(t), "{t}");
        }
        for t in ["var cookie = require('cookie');", "Authorization: 'Bearer token'", "password: '***'", "plain"] {
            assert!(!text_has_live_secret(t), "{t}");
        }
        assert!(value_has_live_secret(&json!({"password": "hunter2-Strong!"})));
        assert!(value_has_live_secret(&json!({"api_key": 123456789012_u64})));
        assert!(!value_has_live_secret(&json!({"password": "changeme"})));
        assert!(!value_has_live_secret(&json!({"items": ["a"]})));
    }

    #[test]
    fn masked_parts_line_up() {
        assert_eq!(masked_parts("a=XY b=ZW c", &format!("a={MASK} b={MASK} c")), Some(vec!["XY", "ZW"]));
        assert_eq!(masked_parts("XY", MASK), Some(vec!["XY"]));
        assert_eq!(masked_parts("abc", "zzz"), None);
    }
}
