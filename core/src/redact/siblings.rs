//! Secrets recognised by their siblings in an array or object: a flag and
//! its value in two argv elements (see [`super::argv`]), the value of a
//! `[name, value]` pair whose name is a secret key (`["X-Api-Key", X]`), an
//! AWS secret access key in another value than its `AKIA…` key id.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::argv::argv_spans;
use super::mask::MASK;
use super::rules::{Check, passes};
use super::text::{apply_spans, redact_text, text_has_secret};

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

/// Whether `s` looks like a header or parameter name (`X-Api-Key`,
/// `access_token`): one short word of name characters with no secret in it,
/// so that neither free text nor a redacted name (with its `[REDACTED]`)
/// ever counts, and redacting twice gives the same result.
fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !text_has_secret(s)
}

/// Replacements for the elements of an array decided by their siblings
/// (`None` at an index: redact that element on its own). `None` when no
/// element is affected.
pub(super) fn array_context(items: &[Value]) -> Option<Vec<Option<Value>>> {
    // A `[name, value]` pair, as header and parameter lists are often
    // written: the value of a secret name (one word, not free text) is
    // masked like one under that key.
    if let [Value::String(name), value @ (Value::String(_) | Value::Number(_))] = items
        && is_name(name)
        && let Some(masked) = super::whole::whole_mask(name, value, false)
    {
        return Some(vec![None, Some(masked)]);
    }
    // Masking can bring a command word up against a mask (`…]sshpass -p
    // X`), where a rule matches only on the next reading: read the masked
    // line again, a few times at most, like `redact_text` does.
    let mut masked: Option<Vec<Value>> = None;
    for _ in 0..MAX_ARGV_PASSES {
        let now = masked.as_deref().unwrap_or(items);
        let Some(spans) = argv_spans(now) else { break };
        let next = now
            .iter()
            .zip(spans)
            .map(|(v, parts)| match v.as_str() {
                Some(s) if !parts.is_empty() => Value::String(redact_text(&apply_spans(s, &parts)).into_owned()),
                _ => v.clone(),
            })
            .collect();
        masked = Some(next);
    }
    let aws = aws_pair(items.iter());
    if masked.is_none() && !aws {
        return None;
    }
    let out = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if let Some(m) = masked.as_ref().map(|m| &m[i]).filter(|m| *m != v) {
                // Redacted as a whole too: what the line did not mask.
                return Some(match m.as_str() {
                    Some(s) => Value::String(redact_text(s).into_owned()),
                    None => m.clone(),
                });
            }
            if aws { aws_mask(v) } else { None }
        })
        .collect();
    Some(out)
}

/// Readings of an argv array as one command line; see [`array_context`].
const MAX_ARGV_PASSES: usize = 4;
