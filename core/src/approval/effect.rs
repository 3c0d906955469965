//! What comes out of the machine: how each call is answered, how each
//! approval closed, and the effects the daemon carries out.

use serde::{Deserialize, Serialize};

use super::event::Scope;
use crate::class::Decision;

/// How a call is answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Forward the call. `approval_id` names the approval (or grant's
    /// approval) that allowed it, if any.
    Allow { reason: String, approval_id: Option<String> },
    /// Answer the call with an `isError` result carrying `reason`.
    Deny { reason: String, approval_id: Option<String> },
    /// Answer the call with an `isError` result saying it awaits a human
    /// (approval `approval_id`) and that the identical call will go through
    /// once approved.
    AwaitingApproval { approval_id: String },
    /// Send nothing to the client: it cancelled, or its session is gone.
    Dropped { reason: String },
}

impl Outcome {
    /// The text for the agent (the tool result, `isError` unless allowed).
    pub fn message(&self) -> String {
        match self {
            Outcome::Allow { reason, .. } => format!("allowed: {reason}"),
            Outcome::Deny { reason, .. } => format!("blocked by Latch: {reason}"),
            Outcome::AwaitingApproval { approval_id } => format!(
                "this call awaits a human's approval (Latch approval {approval_id}). \
                 It has not run. Once it is approved, retry the identical call \
                 (same tool, same arguments) and it will go through."
            ),
            Outcome::Dropped { reason } => format!("not answered: {reason}"),
        }
    }

    /// The decision carried to the shim: `AwaitingApproval` is answered
    /// like a deny (an `isError` result); `Dropped` has none.
    pub fn decision(&self) -> Option<Decision> {
        match self {
            Outcome::Allow { .. } => Some(Decision::Allow),
            Outcome::Deny { .. } | Outcome::AwaitingApproval { .. } => Some(Decision::Deny),
            Outcome::Dropped { .. } => None,
        }
    }
}

/// Why an approval closed without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Withdrawal {
    /// A held call of it was cancelled by the client.
    Cancelled,
    /// The tool's definition changed.
    ToolDefChanged,
    /// Nobody answered within `pending_ttl_ms`.
    Expired,
}

impl Withdrawal {
    pub fn describe(self) -> &'static str {
        match self {
            Withdrawal::Cancelled => "the client cancelled the request",
            Withdrawal::ToolDefChanged => "the tool's definition changed",
            Withdrawal::Expired => "nobody answered in time",
        }
    }
}

/// How an approval closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Closure {
    Decided { decision: Decision, scope: Scope, channel: String, who: String, at: i64 },
    Withdrawn { cause: Withdrawal, at: i64 },
}

/// What became of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerResult {
    /// This answer decided the approval.
    Decided,
    /// Another answer came first.
    AlreadyDecided,
    /// The approval was withdrawn before.
    Withdrawn,
    /// No such approval (or forgotten long ago).
    Unknown,
    /// The channel may not answer approvals.
    Refused,
}

/// The reply to the answering channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Taken: `released` held calls were answered by it.
    Decided {
        approval_id: String,
        decision: Decision,
        scope: Scope,
        released: usize,
    },
    AlreadyDecided {
        approval_id: String,
        decision: Decision,
        scope: Scope,
        channel: String,
        who: String,
        at: i64,
    },
    Withdrawn {
        approval_id: String,
        cause: Withdrawal,
        at: i64,
    },
    Unknown {
        approval_id: String,
    },
    Refused {
        reason: String,
    },
}

impl Reply {
    /// One line for the person who answered.
    pub fn message(&self) -> String {
        match self {
            Reply::Decided { approval_id, decision, scope, released } => {
                let verb = if *decision == Decision::Allow { "approved" } else { "denied" };
                format!("{approval_id} {verb} {}; {released} waiting call(s) answered", scope.describe())
            }
            Reply::AlreadyDecided { approval_id, decision, channel, who, .. } => {
                let verb = if *decision == Decision::Allow { "approved" } else { "denied" };
                format!("{approval_id} was already {verb} by {}", by(channel, who))
            }
            Reply::Withdrawn { approval_id, cause, .. } => {
                format!("{approval_id} was withdrawn: {}", cause.describe())
            }
            Reply::Unknown { approval_id } => {
                format!("no pending approval `{approval_id}` — list them with `latch pending`")
            }
            Reply::Refused { reason } => reason.clone(),
        }
    }
}

/// An answer for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerRecord {
    pub approval_id: String,
    pub decision: Decision,
    pub scope: Scope,
    pub channel: String,
    pub who: String,
    pub reason: Option<String>,
    pub at: i64,
    pub result: AnswerResult,
    /// The server and tool of the call the approval was for, when the
    /// approval was still pending.
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub tool: String,
}

/// What the daemon must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Hold the call (start its hold timer, tell the shim the approval id).
    Hold { call_id: String, approval_id: String, hold_until: i64 },
    /// Answer a call (held or just asked) and forget it.
    Resolve { call_id: String, outcome: Outcome },
    /// A new pending approval: notify consoles, desktop, Telegram.
    PendingAdded { approval_id: String },
    /// A pending approval's waiters changed.
    PendingUpdated { approval_id: String },
    /// A pending approval closed.
    PendingRemoved { approval_id: String, closure: Closure },
    /// Write a policy rule for `server`/`tool` (any arguments) with this
    /// decision, then reload the policy.
    WriteRule { approval_id: String, server: String, tool: String, decision: Decision, def_hash: Option<String> },
    /// Store an answer in the audit log.
    Record(AnswerRecord),
    /// Reply to the channel that sent the `Answer`.
    Reply(Reply),
}

/// Who answered, in words: "ada via Telegram", "a person in the Latch
/// console" when the name says nothing more than the place (never the
/// daemon's `tui`/`cli` channel names).
pub(super) fn by(channel: &str, who: &str) -> String {
    let place = match channel {
        "tui" => "in the Latch console",
        "cli" => "on the command line",
        "telegram" => "via Telegram",
        "desktop" => "from a desktop notification",
        "client" => "in the agent's client",
        other => {
            return if who.is_empty() || who == other { format!("via {other}") } else { format!("{who} via {other}") };
        }
    };
    let who = who.trim();
    if who.is_empty() || who == channel || who == "unknown peer" {
        format!("a person {place}")
    } else {
        format!("{who} {place}")
    }
}
