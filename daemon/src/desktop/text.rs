//! What a notification says, built from a pending item alone (pure).
//!
//! The pending item already carries redacted arguments and reasons; every
//! piece of text is still run through [`redact_text`] again (names come
//! from shims, reasons may quote arguments), squeezed onto one line and cut
//! to a bound, and the finished body passes [`redact_text`] once more.
//! Redaction always comes before cutting: cutting first could shorten a
//! secret until no pattern recognises it, and show its first half.

use latch_core::redact::redact_text;
use latch_proto::msg::PendingItem;

/// Longest argument summary, in characters.
pub(crate) const ARGS_MAX: usize = 160;
/// Longest reason line, in characters.
pub(crate) const REASON_MAX: usize = 120;
/// Longest server or tool name shown, in characters.
const NAME_MAX: usize = 48;

/// A notification's title and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text {
    pub summary: String,
    pub body: String,
}

/// The notification for `item`. `buttons`: the server shows our Approve
/// and Deny actions (else the body says how to answer); `markup`: the
/// server reads the body as markup, so `&`, `<` and `>` are escaped.
pub(crate) fn compose(item: &PendingItem, buttons: bool, markup: bool) -> Text {
    let server = one_line(&item.server, NAME_MAX);
    let tool = one_line(&item.tool, NAME_MAX);
    let class = one_line(&item.class, NAME_MAX);
    let summary = format!("Latch: {class} call waits for approval");
    let args = match &item.args {
        serde_json::Value::Null => String::new(),
        v => one_line(&v.to_string(), ARGS_MAX),
    };
    let mut lines = vec![format!("{server} · {tool} · {class}")];
    if !args.is_empty() {
        lines.push(args);
    }
    lines.push(format!("why: {}", one_line(&risk(item), REASON_MAX)));
    let id = one_line(&item.id, NAME_MAX);
    if buttons {
        lines.push(format!("approval {id}"));
    } else {
        lines.push(format!("answer in `latch tui`, or `latch approve {id}` / `latch deny {id}`"));
    }
    let body = redact_text(&lines.join("\n")).into_owned();
    let body = if markup { escape(&body) } else { body };
    Text { summary: redact_text(&summary).into_owned(), body }
}

/// What the call risks, in words: the first reason about what it does (the
/// arguments, the command, a protected path, the rule that asks), not how
/// the classifier read the tool's name; else what its class does.
pub(crate) fn risk(item: &PendingItem) -> String {
    const TRACES: [&str; 6] =
        ["name word", "tool name word", "no rule matched", "default for", "annotation read", "user override"];
    for reason in &item.reasons {
        let r = reason.trim();
        // "name word 'rm' deletes or overwrites": the risk is after the word.
        if let Some(rest) = r.strip_prefix("name word '").and_then(|t| t.split_once("' ")).map(|(_, rest)| rest)
            && !rest.trim_start_matches(':').trim().chars().all(|c| c.is_ascii_uppercase() || c == '_')
        {
            return rest.trim_start_matches(':').trim().to_owned();
        }
        if r.is_empty() || TRACES.iter().any(|t| r.starts_with(t)) || r.starts_with("class ") {
            continue;
        }
        return r.to_owned();
    }
    match item.class.as_str() {
        "READ" => "reads data",
        "WRITE" => "changes files or data",
        "SEND" => "sends a message out",
        "EXECUTE" => "runs a command",
        "SUBMIT" => "publishes or submits something on your behalf",
        "TRANSFER_VALUE" => "moves money",
        _ => "a call the policy asks a person about",
    }
    .to_owned()
}

/// `s` redacted, on one line (control characters and runs of spaces become
/// one space), cut to `max` characters with `…` when longer.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let squeezed = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    let redacted = redact_text(&squeezed);
    if redacted.chars().count() <= max {
        return redacted.into_owned();
    }
    let mut cut: String = redacted.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Escapes the characters notification markup gives a meaning to.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(args: serde_json::Value) -> PendingItem {
        PendingItem {
            id: "A7K2".into(),
            server: "test".into(),
            tool: "run_command".into(),
            class: "EXECUTE".into(),
            args,
            reasons: vec!["name word 'run'".into(), "default for EXECUTE: ask".into()],
            created_at: 0,
            hold_until: 0,
            waiting: 1,
        }
    }

    #[test]
    fn the_body_names_server_tool_class_arguments_and_the_first_reason() {
        let t = compose(&item(json!({"command": "make deploy"})), true, false);
        assert_eq!(t.summary, "Latch: EXECUTE call waits for approval");
        assert_eq!(
            t.body,
            "test · run_command · EXECUTE\n{\"command\":\"make deploy\"}\nwhy: runs a command\napproval A7K2"
        );
    }

    #[test]
    fn the_why_names_the_risk_not_the_classifier_trace() {
        let mut it = item(json!({"command": "rm -rf /var/lib/postgresql/14/main"}));
        assert_eq!(risk(&it), "runs a command");
        it.reasons.insert(1, "argument deletes files under /var/lib/postgresql".into());
        assert_eq!(risk(&it), "argument deletes files under /var/lib/postgresql");
        it.reasons = vec!["name word 'delete' deletes or overwrites".into()];
        assert_eq!(risk(&it), "deletes or overwrites");
        it.reasons = vec!["name word 'run': EXECUTE".into()];
        assert_eq!(risk(&it), "runs a command");
    }

    #[test]
    fn without_buttons_the_body_says_how_to_answer() {
        let t = compose(&item(json!({})), false, false);
        assert!(t.body.ends_with("answer in `latch tui`, or `latch approve A7K2` / `latch deny A7K2`"), "{}", t.body);
    }

    #[test]
    fn long_arguments_are_cut_to_one_bounded_line() {
        let long = "x".repeat(1000);
        let t = compose(&item(json!({"command": format!("echo a\nb\r\n{long}")})), true, false);
        let args_line = t.body.lines().nth(1).unwrap();
        assert_eq!(args_line.chars().count(), ARGS_MAX);
        assert!(args_line.ends_with('…'));
        assert_eq!(t.body.lines().count(), 4, "{}", t.body);
    }

    #[test]
    fn secrets_in_arguments_or_reasons_never_reach_the_text() {
        let key = "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
        let gh = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A";
        let mut it =
            item(json!({"command": format!("curl -H 'x-key: {key}' https://bob:hunter2pass@example.com/ {gh}")}));
        it.reasons.insert(0, format!("argument mentions {gh}"));
        for (buttons, markup) in [(true, false), (false, true)] {
            let t = compose(&it, buttons, markup);
            let all = format!("{}\n{}", t.summary, t.body);
            for secret in [key, gh, "hunter2pass"] {
                assert!(!all.contains(secret), "{secret} leaked: {all}");
            }
        }
    }

    #[test]
    fn markup_servers_get_escaped_text() {
        let t = compose(&item(json!({"command": "a < b && c > d"})), true, true);
        assert!(t.body.contains("a &lt; b &amp;&amp; c &gt; d"), "{}", t.body);
    }

    #[test]
    fn cutting_keeps_whole_characters() {
        assert_eq!(one_line("ééééé", 3), "éé…");
        assert_eq!(one_line("  a \t b  ", 10), "a b");
    }
}
