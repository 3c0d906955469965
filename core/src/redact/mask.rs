//! What a secret is replaced with, and how deep values are inspected.

use serde_json::Value;

/// What a redacted secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// What replaces an array or object nested deeper than [`MAX_DEPTH`].
pub const TOO_DEEP: &str = "[REDACTED: nested too deep]";

/// Arrays and objects below this many levels of nesting are not inspected:
/// they are replaced by [`TOO_DEEP`].
pub const MAX_DEPTH: usize = 64;

/// Whether a value under a secret key is masked: `null`, booleans and empty
/// strings carry no secret and stay.
pub(crate) fn maskable(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(_) => false,
        Value::String(s) => !s.is_empty() && s != MASK,
        _ => true,
    }
}
