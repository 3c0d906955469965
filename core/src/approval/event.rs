//! What goes into the machine: calls that ask, people's answers, and the
//! daemon's other events.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::class::Class;

/// How far an answer reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// This call only: the held call, or a single identical retry.
    #[default]
    Once,
    /// These exact arguments, in the sessions that asked.
    SessionArgs,
    /// This tool with any arguments, in the sessions that asked.
    SessionTool,
    /// This tool, for good: a rule is written to the policy file.
    Always,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Once => "once",
            Scope::SessionArgs => "session_args",
            Scope::SessionTool => "session_tool",
            Scope::Always => "always",
        }
    }

    /// For a person: "once", "for this session" …
    pub fn describe(self) -> &'static str {
        match self {
            Scope::Once => "once",
            Scope::SessionArgs => "for this session (these arguments)",
            Scope::SessionTool => "for this session (any arguments)",
            Scope::Always => "always",
        }
    }
}

/// What an approval is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallKey {
    pub server: String,
    pub tool: String,
    /// Canonical SHA-256 of the arguments, hex.
    pub args_hash: String,
    /// Hash of the tool's definition as first seen (`ToolDef::hash`).
    pub def_hash: Option<String>,
}

/// A call whose policy decision is *ask*.
#[derive(Clone, Debug, PartialEq)]
pub struct Ask {
    /// Unique among the daemon's calls.
    pub call_id: String,
    /// The shim session the call came from.
    pub session: String,
    pub server: String,
    pub tool: String,
    pub args_hash: String,
    pub def_hash: Option<String>,
    pub class: Class,
    /// A 2026-07-28 retry carrying `inputResponses`/`requestState`.
    pub retry: bool,
    /// Display data the daemon wants back when listing (redacted arguments,
    /// reasons …). Kept, persisted and shown; never interpreted.
    pub summary: Value,
    pub now_ms: i64,
    /// How long to hold this call; [`Config::hold_ms`] when `None`. The
    /// daemon may shorten it for clients with a short request timeout.
    pub hold_ms: Option<i64>,
}

impl Ask {
    pub fn key(&self) -> CallKey {
        CallKey {
            server: self.server.clone(),
            tool: self.tool.clone(),
            args_hash: self.args_hash.clone(),
            def_hash: self.def_hash.clone(),
        }
    }
}

/// A person's answer to a pending approval.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// As typed: read with [`normalize_id`].
    pub approval_id: String,
    pub approve: bool,
    pub scope: Scope,
    /// Where the answer came from: see [`ANSWERING_CHANNELS`].
    pub channel: String,
    /// Who answered (a user name, a Telegram user id …).
    pub who: String,
    pub reason: Option<String>,
    pub now_ms: i64,
}

/// What the daemon tells the machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Ask(Ask),
    /// The hold of a held call ran out.
    HoldExpired {
        call_id: String,
    },
    Answer(Answer),
    /// `notifications/cancelled` for a call.
    Cancelled {
        call_id: String,
        now_ms: i64,
    },
    /// `tools/list` showed a different definition for a tool.
    ToolDefChanged {
        server: String,
        tool: String,
        new_def_hash: String,
        now_ms: i64,
    },
    /// The first definition of a tool the daemon has learned (not a change).
    ToolDefSeen {
        server: String,
        tool: String,
        def_hash: String,
    },
    /// A shim session closed.
    SessionEnded {
        session: String,
    },
    /// The policy file was reloaded successfully.
    PolicyReloaded,
    /// Housekeeping: prune what expired.
    Tick {
        now_ms: i64,
    },
    /// An "always" answer whose rule is narrower than the tool (the daemon
    /// writes it): like [`Event::Answer`], but the in-memory grant that
    /// stands in for the rule until the reload covers these arguments
    /// only, never the whole tool.
    AnswerNarrow(Answer),
    /// The wall clock moved `by_ms` apart from elapsed time (a person or
    /// NTP set it; the daemon sees it against its elapsed-time clock):
    /// every deadline and start time moves with it, so that grants, holds
    /// and pending approvals last their elapsed time.
    ClockJumped {
        by_ms: i64,
    },
    /// The daemon restored this machine from a snapshot and started at
    /// `now_ms`: a grant lasts at most its TTL from now.
    Restarted {
        now_ms: i64,
    },
}
