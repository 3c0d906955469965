//! An audit row as an OpenTelemetry log record: severity, a short
//! sentence as the body, the event name, and attributes — the GenAI and
//! MCP semantic conventions where they fit, Latch's own under `latch.`.
//!
//! Built from the stored row, which was redacted when it was recorded; every
//! text is run through the redactor once more here, so a row written by an
//! older Latch, or a secret pattern learnt since, does not leave the machine
//! either.

use latch_core::redact::{redact_text, redact_value};

use super::otlp::{Record, Severity, Value};
use crate::audit::tail::StoredRow;

/// Longest body sentence, in characters (the detail follows in full in
/// `latch.detail`).
const BODY_CHARS: usize = 200;

/// The record for `row`, observed (read for export) at `observed_ms`.
pub fn of_row(row: &StoredRow, observed_ms: i64) -> Record {
    let mut attrs: Vec<(String, Value)> = Vec::new();
    let call = row.kind == "call";
    let hook = row.detail.as_deref().is_some_and(|d| d.starts_with("hook "));
    if call {
        put(&mut attrs, "gen_ai.operation.name", "execute_tool");
        if !hook {
            put(&mut attrs, "mcp.method.name", "tools/call");
        }
        attrs.push(("latch.hook".into(), Value::Bool(hook)));
    }
    put(&mut attrs, "gen_ai.tool.name", &row.tool);
    if let Some(id) = row.detail.as_deref().and_then(tool_use_id) {
        put(&mut attrs, "gen_ai.tool.call.id", id);
    }
    put(&mut attrs, "latch.kind", &row.kind);
    put(&mut attrs, "latch.server", &row.server);
    put(&mut attrs, "latch.session", &row.session);
    put(&mut attrs, "latch.class", &row.class);
    put(&mut attrs, "latch.decision", &row.decision);
    put(&mut attrs, "latch.rule", row.rule.as_deref().unwrap_or(""));
    put(&mut attrs, "latch.approval_id", row.approval_id.as_deref().unwrap_or(""));
    put(&mut attrs, "latch.answered_by", row.answered_by.as_deref().unwrap_or(""));
    put(&mut attrs, "latch.answer", row.answer.as_deref().unwrap_or(""));
    put(&mut attrs, "latch.outcome", row.outcome.as_deref().unwrap_or(""));
    put(&mut attrs, "latch.detail", row.detail.as_deref().unwrap_or(""));
    put(&mut attrs, "latch.arguments_hash", &row.args_hash);
    if call || row.args != "null" {
        let args = match serde_json::from_str::<serde_json::Value>(&row.args) {
            Ok(v) => redact_value(&v).to_string(),
            Err(_) => redact_text(&row.args).into_owned(),
        };
        put(&mut attrs, "latch.arguments", &args);
    }
    put(&mut attrs, "latch.audit.hash", &row.hash);
    put(&mut attrs, "latch.audit.prev_hash", &row.prev_hash);
    attrs.push(("latch.audit.id".into(), Value::Int(row.id)));
    if let Some(us) = row.latency_us {
        attrs.push(("latch.latency_us".into(), Value::Int(us)));
    }
    let reasons: Vec<String> = serde_json::from_str(&row.reasons).unwrap_or_default();
    if !reasons.is_empty() {
        let items = reasons.iter().map(|r| Value::Str(redact_text(r).into_owned())).collect();
        attrs.push(("latch.reasons".into(), Value::Array(items)));
    }
    if row.kind == super::DROPPED_KIND {
        let counts: serde_json::Value = serde_json::from_str(&row.args).unwrap_or_default();
        for key in ["dropped", "dropped_total"] {
            if let Some(n) = counts.get(key).and_then(serde_json::Value::as_i64) {
                attrs.push((format!("latch.export.{key}"), Value::Int(n)));
            }
        }
    }
    Record {
        time_unix_nano: nanos(row.time_ms),
        observed_time_unix_nano: nanos(observed_ms),
        severity: severity(row),
        body: redact_text(&body(row)).into_owned(),
        attributes: attrs,
        event_name: format!("latch.{}", row.kind),
    }
}

/// A text attribute, redacted; nothing when empty.
fn put(attrs: &mut Vec<(String, Value)>, k: &str, v: &str) {
    if !v.is_empty() {
        attrs.push((k.to_owned(), Value::Str(redact_text(v).into_owned())));
    }
}

fn nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

/// INFO for what went as it should (an allowed call, a person's answer, a
/// shim connecting), WARN for what a person should see (a call asked or
/// denied, anything refused, a suspect tool, a finding in a result, the kill
/// switch, a policy change waiting), ERROR for evidence or configuration
/// lost (rows dropped before export, unreadable journal lines, a policy
/// file that failed to load).
pub fn severity(row: &StoredRow) -> Severity {
    match row.kind.as_str() {
        "call" if row.decision == "allow" => Severity::Info,
        "call" => Severity::Warn,
        "journal" => Severity::Error,
        k if k == super::DROPPED_KIND => Severity::Error,
        "policy_reload" if row.detail.is_some() => Severity::Error,
        "refused" | "malformed" | "answer_refused" | "reveal_refused" | "tool_changed" | "tool_suspect"
        | "tool_conflict" | "result" | "stop" | "policy_pending" | "policy_guard" => Severity::Warn,
        _ => Severity::Info,
    }
}

/// A short sentence for people reading the record.
fn body(row: &StoredRow) -> String {
    let target = if row.tool.is_empty() { row.server.clone() } else { format!("{}/{}", row.server, row.tool) };
    match row.kind.as_str() {
        "call" => {
            let mut s = format!("{} {target}", row.decision);
            if !row.class.is_empty() {
                s.push_str(&format!(" ({})", row.class));
            }
            if let Some(rule) = &row.rule {
                s.push_str(&format!(" by rule {rule}"));
            }
            s
        }
        "answer" => format!(
            "{} answered {} to approval {} for {target}",
            row.answered_by.as_deref().unwrap_or("someone"),
            row.decision,
            row.approval_id.as_deref().unwrap_or("?")
        ),
        _ => {
            let mut s = row.kind.replace('_', " ");
            if !target.is_empty() {
                s.push_str(&format!(" {target}"));
            }
            if let Some(d) = &row.detail {
                s.push_str(": ");
                s.extend(d.chars().take(BODY_CHARS));
                if d.chars().nth(BODY_CHARS).is_some() {
                    s.push('…');
                }
            }
            s
        }
    }
}

/// The agent's own id of the tool call, which a hook's row carries
/// (`…; tool_use_id ID; …`).
fn tool_use_id(detail: &str) -> Option<&str> {
    let rest = detail.split("tool_use_id ").nth(1)?;
    let id = rest.split(';').next()?.trim();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(decision: &str) -> StoredRow {
        StoredRow {
            id: 7,
            prev_hash: "p".into(),
            hash: "h".into(),
            time_ms: 1_700_000_000_123,
            kind: "call".into(),
            server: "fs".into(),
            session: "s1".into(),
            tool: "write_file".into(),
            class: "write".into(),
            decision: decision.into(),
            reasons: "[\"writes a file\"]".into(),
            args: "{\"path\":\"/tmp/x\",\"token\":\"[REDACTED]\"}".into(),
            args_hash: "ah".into(),
            ..Default::default()
        }
    }

    fn attr<'a>(r: &'a Record, k: &str) -> Option<&'a Value> {
        r.attributes.iter().find(|(key, _)| key == k).map(|(_, v)| v)
    }

    #[test]
    fn a_call_carries_the_conventions_and_its_chain_position() {
        let r = of_row(&call("allow"), 1_700_000_001_000);
        assert_eq!(r.severity, Severity::Info);
        assert_eq!(r.time_unix_nano, 1_700_000_000_123_000_000);
        assert_eq!(r.observed_time_unix_nano, 1_700_000_001_000_000_000);
        assert_eq!(r.event_name, "latch.call");
        assert_eq!(r.body, "allow fs/write_file (write)");
        assert_eq!(attr(&r, "gen_ai.operation.name"), Some(&Value::Str("execute_tool".into())));
        assert_eq!(attr(&r, "gen_ai.tool.name"), Some(&Value::Str("write_file".into())));
        assert_eq!(attr(&r, "mcp.method.name"), Some(&Value::Str("tools/call".into())));
        assert_eq!(attr(&r, "latch.audit.id"), Some(&Value::Int(7)));
        assert_eq!(attr(&r, "latch.audit.hash"), Some(&Value::Str("h".into())));
        assert_eq!(attr(&r, "latch.reasons"), Some(&Value::Array(vec![Value::Str("writes a file".into())])));
        assert_eq!(attr(&r, "gen_ai.tool.call.id"), None);
        assert_eq!(of_row(&call("deny"), 0).severity, Severity::Warn);
        assert_eq!(of_row(&call("ask"), 0).severity, Severity::Warn);
    }

    #[test]
    fn every_text_is_redacted_again() {
        // As an older Latch might have stored it.
        let mut row = call("allow");
        row.args = "{\"password\":\"hunter2-very-secret\",\"note\":\"AKIAIOSFODNN7EXAMPLE\"}".into();
        row.reasons = "[\"key AKIAIOSFODNN7EXAMPLE seen\"]".into();
        row.detail = Some("token ghp_abcdefghijklmnopqrstuvwxyz0123456789".into());
        let r = of_row(&row, 0);
        let all = format!("{:?}", r);
        for secret in ["hunter2-very-secret", "AKIAIOSFODNN7EXAMPLE", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"] {
            assert!(!all.contains(secret), "{secret} left in {all}");
        }
    }

    #[test]
    fn a_hook_call_names_the_agents_tool_call_id() {
        let mut row = call("ask");
        row.detail = Some("hook claude; cwd /w; tool_use_id toolu_01ABC".into());
        let r = of_row(&row, 0);
        assert_eq!(attr(&r, "gen_ai.tool.call.id"), Some(&Value::Str("toolu_01ABC".into())));
        assert_eq!(attr(&r, "mcp.method.name"), None);
    }

    #[test]
    fn other_rows_say_what_happened() {
        let row = StoredRow {
            id: 9,
            kind: "answer".into(),
            server: "fs".into(),
            tool: "write_file".into(),
            decision: "allow".into(),
            approval_id: Some("a1".into()),
            answered_by: Some("cli:alice".into()),
            args: "null".into(),
            reasons: "[]".into(),
            ..Default::default()
        };
        let r = of_row(&row, 0);
        assert_eq!(r.body, "cli:alice answered allow to approval a1 for fs/write_file");
        assert_eq!(r.severity, Severity::Info);
        assert_eq!(attr(&r, "gen_ai.operation.name"), None);
        assert_eq!(attr(&r, "latch.arguments"), None);
        let long = StoredRow { kind: "policy_reload".into(), detail: Some("x".repeat(500)), ..row };
        let r = of_row(&long, 0);
        assert_eq!(r.severity, Severity::Error);
        assert!(r.body.chars().count() <= 240, "{}", r.body);
    }
}
