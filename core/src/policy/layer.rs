//! Which layer of the policy decided a call (see [`super::layered`]).

use serde::Serialize;

/// Which layer of the policy decided a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The managed policy (`/etc/latch/managed.toml`).
    Managed,
    /// The user's own policy file.
    User,
    /// A built-in rule no policy can change (self-protection, the ask on
    /// writes outside the workspace).
    Builtin,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Managed => "managed",
            Layer::User => "user",
            Layer::Builtin => "built-in",
        }
    }

    /// The layer of an evaluation of `from` that named rule `rule`.
    pub(crate) fn of(from: Layer, rule: Option<&str>) -> Layer {
        match rule {
            Some(r) if r.starts_with("builtin:") => Layer::Builtin,
            _ => from,
        }
    }
}
