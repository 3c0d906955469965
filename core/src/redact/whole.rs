//! Masking a value as a whole when its key (or the field it fills) names
//! a secret.

use serde_json::Value;

use super::keys::masks_whole;
use super::mask::MASK;
use super::shell;
use super::text::{self, redact_text};

/// What replaces the value `v` under key `k` when the key (or the field it
/// fills) names a secret: [`MASK`], or for a string holding shell
/// substitutions its literal parts masked (see [`shell`](super::shell)). `None`: nothing
/// to mask as a whole; the value is redacted like any other.
pub(crate) fn whole_mask(k: &str, v: &Value, fills_secret: bool) -> Option<Value> {
    if !masks_whole(k, v, fills_secret) {
        return None;
    }
    match v {
        Value::String(s) if shell::has_syntax(s) => {
            let mut parts = Vec::new();
            shell::literal_parts(s, 0, s.len(), true, &mut parts);
            match parts.as_slice() {
                [] => None,
                [(0, e)] if *e == s.len() => Some(Value::String(MASK.to_owned())),
                // The code left visible is redacted like any text.
                _ => {
                    let masked = redact_text(&text::apply_spans(s, &parts)).into_owned();
                    (masked != *s).then_some(Value::String(masked))
                }
            }
        }
        _ => Some(Value::String(MASK.to_owned())),
    }
}
