//! Long strings cut before redaction, storage and display.

use std::borrow::Cow;

use serde_json::Value;

use super::mask::MAX_DEPTH;

/// Longest string kept whole in what is stored or shown; longer strings are
/// cut (see [`bounded`]).
pub const MAX_SHOWN_STRING: usize = 16 * 1024;

/// How far back from the cut [`bounded`] looks for the end of a token.
const TOKEN_TAIL: usize = 128;

/// `value` with every string longer than [`MAX_SHOWN_STRING`] cut and
/// marked, so redaction, storage and display cost the same for a 1 GiB
/// argument as for a 16 KiB one. The cut falls at a token boundary (white
/// space or punctuation) within the last [`TOKEN_TAIL`] bytes, or drops
/// those bytes: a secret that straddled the cut never survives as a
/// fragment too short for the patterns to recognise. Borrowed when nothing
/// is long.
pub fn bounded(value: &Value) -> Cow<'_, Value> {
    if !has_long_string(value, 0) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(cut(value, 0))
}

fn has_long_string(value: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::String(s) => s.len() > MAX_SHOWN_STRING,
        Value::Array(items) => items.iter().any(|v| has_long_string(v, depth + 1)),
        Value::Object(map) => map.values().any(|v| has_long_string(v, depth + 1)),
        _ => false,
    }
}

fn cut(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(s) if s.len() > MAX_SHOWN_STRING => Value::String(cut_string(s)),
        Value::Array(items) if depth <= MAX_DEPTH => Value::Array(items.iter().map(|v| cut(v, depth + 1)).collect()),
        Value::Object(map) if depth <= MAX_DEPTH => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), cut(v, depth + 1))).collect())
        }
        _ => value.clone(),
    }
}

fn cut_string(s: &str) -> String {
    let mut end = MAX_SHOWN_STRING;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let floor = end.saturating_sub(TOKEN_TAIL);
    let boundary = s.as_bytes()[floor..end]
        .iter()
        .rposition(|b| b.is_ascii_whitespace() || b"\"',;:()[]{}<>|&=".contains(b))
        .map(|i| floor + i + 1);
    let mut keep = boundary.unwrap_or(floor);
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}…[{} more bytes not shown]", &s[..keep], s.len() - keep)
}

#[cfg(test)]
mod bounded_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_values_are_borrowed() {
        let v = json!({"a": "x".repeat(100)});
        assert!(matches!(bounded(&v), Cow::Borrowed(_)));
    }

    #[test]
    fn long_strings_are_cut_at_a_token_boundary_and_marked() {
        let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
        let text = format!("{} {secret} tail", "a ".repeat((MAX_SHOWN_STRING - 20) / 2));
        let v = json!({"cmd": text});
        let b = bounded(&v);
        let s = b["cmd"].as_str().unwrap();
        assert!(s.len() < MAX_SHOWN_STRING + 64);
        assert!(s.contains("more bytes not shown"));
        // No fragment of the straddling secret is kept.
        assert!(!s.contains("sk-"), "{}", &s[s.len() - 100..]);
    }

    #[test]
    fn a_long_token_loses_its_tail_rather_than_leak_a_fragment() {
        let v = json!("k".repeat(MAX_SHOWN_STRING * 2));
        let b = bounded(&v);
        let s = b.as_str().unwrap();
        assert!(s.starts_with(&"k".repeat(MAX_SHOWN_STRING - TOKEN_TAIL)));
        assert!(!s.starts_with(&"k".repeat(MAX_SHOWN_STRING - TOKEN_TAIL + 1)));
    }
}
