//! Secrets recognised by their siblings in an array or object: a flag and
//! its value in two argv elements (see [`super::argv`]), the value of a
//! `[name, value]` pair whose name is a secret key (`["X-Api-Key", X]`), an
//! AWS secret access key in another value than its `AKIA…` key id.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::MASK;
use super::argv::argv_spans;
use super::rules::{Check, passes};
use super::text::{apply_spans, redact_text};

/// An AWS access key id (`AKIA…`, `ASIA…`) anywhere in a string.
static AWS_KEY_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}").expect("AWS key id pattern compiles"));

/// Whether `s` is shaped like an AWS secret access key: 40 characters of
/// base64 with upper- and lower-case letters and digits (a git SHA, all
/// lower-case hex, is not), random-looking.
fn aws_secret_shape(s: &str) -> bool {
    s.len() == 40
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
        && s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && s.bytes().any(|b| b.is_ascii_digit())
        && passes(Check::Random, None, s)
}

/// Whether some of `values` is an AWS secret whose key id is in another of
/// them: then every value of that shape is masked.
pub(super) fn aws_pair<'a>(mut values: impl Iterator<Item = &'a Value> + Clone) -> bool {
    values.clone().any(|v| v.as_str().is_some_and(aws_secret_shape))
        && values.any(|v| v.as_str().is_some_and(|s| AWS_KEY_ID.is_match(s)))
}

/// What replaces a child `v` of a container where [`aws_pair`] held.
pub(super) fn aws_mask(v: &Value) -> Option<Value> {
    v.as_str().filter(|s| aws_secret_shape(s)).map(|_| Value::String(MASK.to_owned()))
}

/// Replacements for the elements of an array decided by their siblings
/// (`None` at an index: redact that element on its own). `None` when no
/// element is affected.
pub(super) fn array_context(items: &[Value]) -> Option<Vec<Option<Value>>> {
    // A `[name, value]` pair, as header and parameter lists are often
    // written: the value of a secret name (one word, not free text) is
    // masked like one under that key.
    if let [Value::String(name), value @ (Value::String(_) | Value::Number(_))] = items
        && name.len() <= 64
        && !name.contains(char::is_whitespace)
        && let Some(masked) = super::whole_mask(name, value, false)
    {
        return Some(vec![None, Some(masked)]);
    }
    let argv = argv_spans(items);
    let aws = aws_pair(items.iter());
    if argv.is_none() && !aws {
        return None;
    }
    let out = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if let Some(parts) = argv.as_ref().map(|a| &a[i]).filter(|p| !p.is_empty())
                && let Some(s) = v.as_str()
            {
                let masked = apply_spans(s, parts);
                return Some(Value::String(redact_text(&masked).into_owned()));
            }
            if aws { aws_mask(v) } else { None }
        })
        .collect();
    Some(out)
}
