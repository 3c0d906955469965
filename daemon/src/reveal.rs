//! Revealing a masked value to the person, on the local console only.
//!
//! The daemon keeps the unredacted arguments of each *pending* approval in
//! memory ([`Kept`]), cut to the length the console shows
//! (`redact::bounded`), and drops them when the approval closes. They are
//! never written to the audit log or the approvals' saved state, never put
//! in an event, a notification or a Telegram message: the one way out is
//! [`reveal`], the reply to a console connection that the person unlocked
//! with the PIN. A CLI (even unlocked: its output lands in scrollback and
//! logs), a locked console, a shim, a hook, or any connection while no PIN
//! is set is refused, and the refusal is an audit row (`reveal_refused`).
//! A reveal that is served is an audit row too (`reveal`), without the
//! arguments.

use std::collections::HashMap;

use latch_proto::Role;
use serde_json::Value;

/// The unredacted arguments of pending approvals, by approval id. Its
/// `Debug` never shows them.
#[derive(Default)]
pub struct Kept {
    args: HashMap<String, Value>,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kept({} approvals)", self.args.len())
    }
}

impl Kept {
    /// Keeps `args` for `approval_id` (the first call's: an approval
    /// covers calls with identical arguments only).
    pub fn keep(&mut self, approval_id: &str, args: &Value) {
        if !self.args.contains_key(approval_id) {
            let shown = latch_core::redact::bounded(args).into_owned();
            self.args.insert(approval_id.to_owned(), shown);
        }
    }

    /// The approval closed: its arguments go.
    pub fn forget(&mut self, approval_id: &str) {
        self.args.remove(approval_id);
    }

    /// Drops what belongs to no pending approval.
    pub fn retain(&mut self, pending: impl Fn(&str) -> bool) {
        self.args.retain(|id, _| pending(id));
    }

    pub fn get(&self, approval_id: &str) -> Option<&Value> {
        self.args.get(approval_id)
    }

    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

/// Why a reveal is refused. The text reaches the peer that asked; it names
/// no way round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only the local console shows revealed values")]
    NotConsole,
    #[error("no approval PIN is set: values are revealed only to a console unlocked with the PIN")]
    NoPin,
    #[error("this console is not unlocked: the person types the PIN first")]
    Locked,
}

/// Who may see raw arguments: a console, unlocked with the PIN.
pub fn allowed(role: Role, pin_set: bool, unlocked: bool) -> Result<(), Refusal> {
    if role != Role::Console {
        return Err(Refusal::NotConsole);
    }
    if !pin_set {
        return Err(Refusal::NoPin);
    }
    if !unlocked {
        return Err(Refusal::Locked);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_an_unlocked_console_with_a_pin_may_see_raw_arguments() {
        assert_eq!(allowed(Role::Console, true, true), Ok(()));
        assert_eq!(allowed(Role::Console, true, false), Err(Refusal::Locked));
        assert_eq!(allowed(Role::Console, false, true), Err(Refusal::NoPin));
        for role in [Role::Cli, Role::Shim, Role::Hook] {
            assert_eq!(allowed(role, true, true), Err(Refusal::NotConsole), "{role:?}");
        }
    }

    #[test]
    fn kept_arguments_are_bounded_forgotten_and_never_in_debug() {
        let mut kept = Kept::default();
        let long = "x".repeat(1 << 20);
        kept.keep("a1", &json!({"env": "PGPASSWORD=hunter2hunter2", "blob": long}));
        kept.keep("a1", &json!({"other": 1}));
        let got = kept.get("a1").unwrap();
        assert_eq!(got["env"], "PGPASSWORD=hunter2hunter2", "the first call's arguments stay");
        assert!(got["blob"].as_str().unwrap().len() < 64 * 1024, "cut like what the console shows");
        assert!(!format!("{kept:?}").contains("hunter2"));
        kept.keep("a2", &json!({}));
        kept.retain(|id| id == "a2");
        assert!(kept.get("a1").is_none());
        kept.forget("a2");
        assert!(kept.is_empty());
    }
}
