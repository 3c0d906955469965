//! Whether self-protection reads anything of a call's arguments as a path
//! or a command: a call where it does not is decided the same without the
//! server's working directory, environment and file system, which is what
//! lets a shim decide it under a lease (issue 16).

use serde_json::Value;

use super::{Guard, PATH_KEYS};

/// Longest key read as a plain name.
const MAX_KEY: usize = 64;

impl Guard {
    /// True when no string or key of `args` could be read as a path, a
    /// command or a mention of a protected file: strings hold no `/` or
    /// `\`, start with none of `~ $ .`, sit under no path-like key and hold
    /// none of the words that make text worth parsing as a command
    /// (`latch`, `kill`, protected file names); keys are short plain
    /// names (letters, digits, `_`, `-`) with none of those words either.
    /// Conservative: a `false` only means the daemon decides.
    pub(crate) fn place_free(&self, args: &Value) -> bool {
        self.free(args, None, 0)
    }

    fn free(&self, v: &Value, key: Option<&str>, depth: usize) -> bool {
        if depth > 32 {
            return false;
        }
        match v {
            Value::String(s) => self.plain_text(s, key),
            Value::Array(a) => a.iter().all(|x| self.free(x, key, depth + 1)),
            Value::Object(o) => o.iter().all(|(k, x)| self.plain_key(k) && self.free(x, Some(k), depth + 1)),
            _ => true,
        }
    }

    fn plain_key(&self, k: &str) -> bool {
        !k.is_empty()
            && k.len() <= MAX_KEY
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && !self.may_mention(k)
    }

    fn plain_text(&self, s: &str, key: Option<&str>) -> bool {
        let pathish = key.is_some_and(|k| PATH_KEYS.iter().any(|p| k.eq_ignore_ascii_case(p)));
        !pathish
            && !s.starts_with(['~', '$', '.'])
            && !s.contains(['/', '\\', '\0'])
            && self.mentions.find(s, true).is_none()
            && !self.may_mention(s)
    }
}
