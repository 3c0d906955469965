//! What the bot says, built without IO: the approval message, its buttons,
//! the outcome an edit shows, the answer to a press.
//!
//! Everything that leaves the machine passes [`redact_text`] last, on the
//! whole text, even though a pending item's arguments and reasons are
//! redacted already: the message is the one place where text from several
//! sources (server and tool names, reasons, who answered) is put together,
//! and a second pass costs nothing next to a network request.

use latch_core::redact::{redact_text, redact_value};
use latch_proto::msg::{PendingItem, Scope};

/// Longest argument text shown (Telegram allows 4096 characters a message).
const MAX_ARGS_CHARS: usize = 2500;
/// Longest single reason shown.
const MAX_REASON_CHARS: usize = 300;
/// Most reasons shown.
const MAX_REASONS: usize = 8;
/// Longest message sent, well under Telegram's 4096.
const MAX_MESSAGE_CHARS: usize = 3900;

/// What a button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    ApproveOnce,
    ApproveSession,
    Deny,
}

impl Action {
    /// The three buttons, in the order shown.
    pub(crate) const ALL: [Action; 3] = [Action::ApproveOnce, Action::ApproveSession, Action::Deny];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Action::ApproveOnce => "Approve once",
            Action::ApproveSession => "Approve for session",
            Action::Deny => "Deny",
        }
    }

    /// `(approve, scope)` for `Hub::answer`. "For session" is the narrower
    /// session scope: these exact arguments, this shim session.
    pub(crate) fn answer(self) -> (bool, Scope) {
        match self {
            Action::ApproveOnce => (true, Scope::Once),
            Action::ApproveSession => (true, Scope::SessionArgs),
            Action::Deny => (false, Scope::Once),
        }
    }

    /// How a button's action is saved across a restart.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Action::ApproveOnce => "approve_once",
            Action::ApproveSession => "approve_session",
            Action::Deny => "deny",
        }
    }

    pub(crate) fn from_key(key: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.key() == key)
    }

    /// The answer to the person who pressed, once it decided.
    pub(crate) fn done(self, approval_id: &str) -> String {
        match self {
            Action::ApproveOnce => format!("Approved {approval_id} once."),
            Action::ApproveSession => format!("Approved {approval_id} for this session (these arguments)."),
            Action::Deny => format!("Denied {approval_id}."),
        }
    }
}

/// Redacts `s`, then cuts it to at most `max` characters: in this order, so
/// that a cut never leaves half a secret the patterns no longer recognise.
fn clean(s: &str, max: usize) -> String {
    cut(&redact_text(s), max)
}

/// Cuts `s` to at most `max` characters, marking the cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The message for a pending approval: plain text (no parse mode, so
/// nothing in it needs escaping and nothing in it can format).
pub(crate) fn approval_message(item: &PendingItem) -> String {
    let args = serde_json::to_string(&redact_value(&item.args)).unwrap_or_else(|_| "(unreadable)".to_owned());
    let mut text = format!(
        "Latch: approval {id} is waiting\n\nserver: {server}\ntool: {tool}\nclass: {class}\narguments: {args}",
        id = clean(&item.id, 20),
        server = clean(&item.server, 200),
        tool = clean(&item.tool, 200),
        class = clean(&item.class, 40),
        args = clean(&args, MAX_ARGS_CHARS),
    );
    if !item.reasons.is_empty() {
        text.push_str("\n\nwhy:");
        for r in item.reasons.iter().take(MAX_REASONS) {
            text.push_str("\n- ");
            text.push_str(&clean(r, MAX_REASON_CHARS));
        }
        if item.reasons.len() > MAX_REASONS {
            text.push_str(&format!("\n- … and {} more", item.reasons.len() - MAX_REASONS));
        }
    }
    cut(&redact_text(&text), MAX_MESSAGE_CHARS)
}

/// The line an edit appends once the approval closed. `decision` and `by`
/// are those of `Event::PendingRemoved`.
pub(crate) fn outcome_line(decision: &str, by: &str) -> String {
    let by = clean(by, 200);
    let line = match decision {
        "allow" => format!("Approved by {}.", latch_proto::words::who_answered(&by)),
        "deny" => format!("Denied by {}.", latch_proto::words::who_answered(&by)),
        "withdrawn" => format!("Withdrawn: {by}."),
        "closed" => format!("Closed: {by}."),
        other => format!("Closed ({other}): {by}."),
    };
    redact_text(&line).into_owned()
}

/// The message as it reads once the approval closed (buttons gone).
pub(crate) fn closed_message(sent: &str, decision: &str, by: &str) -> String {
    cut(&format!("{sent}\n\n{}", outcome_line(decision, by)), MAX_MESSAGE_CHARS + 300)
}

/// 16 random bytes from the kernel, as 32 hex characters: the value a
/// button carries. None when no randomness can be had (then nothing is
/// sent: a guessable button would let anyone who sees one answer others).
pub(crate) fn nonce() -> Option<String> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).ok()?;
    Some(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(args: serde_json::Value, reasons: Vec<String>) -> PendingItem {
        PendingItem {
            id: "a1b2c3".into(),
            server: "test".into(),
            tool: "run_command".into(),
            class: "EXECUTE".into(),
            args,
            reasons,
            created_at: 0,
            hold_until: 0,
            waiting: 1,
        }
    }

    #[test]
    fn the_message_names_server_tool_class_arguments_and_reasons() {
        let m = approval_message(&item(json!({"command": "make deploy"}), vec!["name word 'run'".into()]));
        for want in ["a1b2c3", "server: test", "tool: run_command", "class: EXECUTE", "make deploy", "- name word"] {
            assert!(m.contains(want), "{want:?} missing from {m}");
        }
    }

    #[test]
    fn secrets_never_reach_the_message_even_when_the_item_was_not_redacted() {
        let key = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789ABCD";
        let gh = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        let m = approval_message(&item(
            json!({"command": format!("curl -H 'Authorization: token {gh}' https://bob:hunter2pass@example.com/x"),
                   "api_key": key}),
            vec![format!("argument carries {key}")],
        ));
        for secret in [key, gh, "hunter2pass"] {
            assert!(!m.contains(secret), "{secret} leaked: {m}");
        }
        assert!(!outcome_line("allow", &format!("telegram:{gh}")).contains(gh));
    }

    #[test]
    fn long_arguments_are_cut_under_telegrams_limit() {
        let m = approval_message(&item(json!({"content": "x".repeat(20_000)}), vec!["r".repeat(5000); 20]));
        assert!(m.chars().count() <= MAX_MESSAGE_CHARS, "{}", m.len());
        assert!(m.contains('…'));
        let m = approval_message(&item(json!({}), vec!["because".into(); 20]));
        assert!(m.contains("and 12 more"), "{m}");
    }

    #[test]
    fn outcomes_say_who_answered() {
        assert_eq!(outcome_line("allow", "telegram:@alice"), "Approved by @alice via Telegram.");
        assert_eq!(outcome_line("deny", "cli:bob"), "Denied by bob on the command line.");
        assert_eq!(outcome_line("allow", "tui:tui"), "Approved by a person in the console.");
        assert!(
            closed_message("Latch: x", "withdrawn", "the client cancelled the request")
                .ends_with("cancelled the request.")
        );
    }

    #[test]
    fn button_values_are_random_and_distinct() {
        let a = nonce().unwrap();
        let b = nonce().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn session_approval_is_for_these_arguments_only() {
        assert_eq!(Action::ApproveSession.answer(), (true, Scope::SessionArgs));
        assert!(!Action::Deny.answer().0);
    }
}
