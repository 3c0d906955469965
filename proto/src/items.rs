//! What the daemon lists: audit rows, pending approvals, rules and taint
//! (re-exported from [`crate::msg`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One agent session's taint (the lethal trifecta, issue 18): its first
/// untrusted and first private read (Unix ms, a redacted label).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaintReport {
    /// The daemon's key of the session (`agent:PID:START`, `hook:…`).
    pub key: String,
    /// What a person reads: the agent process or the agent's session id.
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<(i64, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<(i64, String)>,
    /// Both were read: calls that could carry data out ask.
    pub tainted: bool,
}

/// One rule of the policy file, as a console lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// 1-based, in file order.
    pub number: u32,
    /// Line of its `[[rule]]` header.
    pub line: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub effect: String,
    /// Its matchers in one line.
    pub summary: String,
    /// Who added it, when, from which approval; "by hand" when unknown.
    pub added: String,
    /// Its lines as written.
    pub text: String,
}

/// A pending approval as consoles see it. Arguments are redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingItem {
    pub id: String,
    pub server: String,
    pub tool: String,
    pub class: String,
    pub args: Value,
    pub reasons: Vec<String>,
    /// Unix time in milliseconds.
    pub created_at: i64,
    /// When the shim stops holding the call (Unix ms); the approval stays.
    pub hold_until: i64,
    /// Calls waiting on this approval right now.
    pub waiting: u32,
}

/// One row of the audit log, arguments redacted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    /// Unix time in milliseconds.
    pub time: i64,
    pub kind: String,
    pub server: String,
    pub tool: String,
    pub class: String,
    pub decision: String,
    pub reasons: Vec<String>,
    pub args: Value,
    pub args_hash: String,
    pub outcome: Option<String>,
    pub latency_us: Option<i64>,
    pub approval_id: Option<String>,
    pub answered_by: Option<String>,
    /// The policy rule that decided (`None` when a class default did).
    #[serde(default)]
    pub rule: Option<String>,
    /// A person's answer to the call's approval (allow | deny), once given.
    #[serde(default)]
    pub answer: Option<String>,
    /// How long the call waited for that answer (ms).
    #[serde(default)]
    pub waited_ms: Option<i64>,
    /// Set when a cell of the stored row does not hold what the log writes
    /// there (overwritten bytes): which columns, for a person. The row is
    /// shown as best it can be read. (Boxed: one pointer, so that the live
    /// event carrying a row stays small.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<Box<String>>,
}
