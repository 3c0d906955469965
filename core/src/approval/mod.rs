//! The approval lifecycle as a pure state machine: `handle(event) -> effects`.
//!
//! [`Approvals`] holds pending approvals, grants and a little memory of
//! recent decisions. The daemon feeds it [`Event`]s and carries out the
//! [`Effect`]s it returns (answer a held call, tell the consoles, write a
//! policy rule, record an answer in the audit log). It does no IO, reads no
//! clock (time arrives in events as Unix milliseconds, `now_ms`) and draws no
//! random numbers, so every transition is tested with plain events.
//!
//! Only calls whose policy decision is *ask* reach this machine: the daemon
//! classifies the call and evaluates the policy first.
//!
//! # A call and its key
//!
//! A call is identified by the daemon's `call_id`. What an approval is
//! *about* is its [`CallKey`]: server, tool, the canonical SHA-256 of the
//! arguments and the hash of the tool's definition as first seen. Two calls
//! with the same key are the same request as far as a human is concerned.
//!
//! # What happens to an `Ask`
//!
//! Checked in this order, the first that applies wins:
//!
//! 1. a matching **deny grant** → the call is denied (a single-use one is
//!    used up);
//! 2. `retry: true` (a 2026-07-28 retry carrying `inputResponses`) and the
//!    same key was **allowed recently in this session** → allowed, no new
//!    question (it is the same call continuing);
//! 3. a matching **allow grant** → allowed; a single-use grant is removed in
//!    the same step, so two identical calls in a row let exactly one through;
//! 4. a **pending approval with the same key** → the call is held as one
//!    more waiter on it (no second question for the human);
//! 5. more than [`Config::max_pending`] approvals pending → denied, fail
//!    closed, with a reason that says so;
//! 6. otherwise a **new pending approval** is created and the call is held
//!    on it until `now + hold_ms`.
//!
//! Expired grants met on the way are ignored and removed: expiry is enforced
//! when a grant is used, not only when grants are listed.
//!
//! # States of one approval
//!
//! ```text
//!                     Ask (no grant, no pending with this key)
//!                                   │
//!                                   ▼
//!   Ask (same key) ──attach──▶ ┌─────────┐ ◀──detach── HoldExpired{call}
//!                              │ PENDING │             (call answered
//!   SessionEnded ────detach──▶ │ waiters │              AwaitingApproval;
//!   (calls dropped)            └─────────┘              approval stays)
//!                                   │
//!        ┌──────────────────┬───────┴─────────┬──────────────────────┐
//!   Answer approve     Answer deny     Cancelled{held call}   ToolDefChanged
//!   (console channel)  (console        / Tick past            (old definition)
//!        │              channel)         pending_ttl                │
//!        ▼                 ▼                  ▼                     ▼
//!   ┌──────────┐      ┌────────┐        ┌───────────┐         ┌───────────┐
//!   │ APPROVED │      │ DENIED │        │ WITHDRAWN │         │ WITHDRAWN │
//!   └──────────┘      └────────┘        └───────────┘         └───────────┘
//!   waiters allowed,  waiters denied,   other waiters denied; later answers
//!   grants by scope   deny grants       get Reply::Withdrawn, the call never
//!                     by scope          runs
//! ```
//!
//! A closed approval is remembered (the last [`Config::max_closed`]) so a
//! late answer gets [`Reply::AlreadyDecided`] or [`Reply::Withdrawn`]
//! rather than [`Reply::Unknown`]. The first answer from any channel wins.
//!
//! # Holding
//!
//! A held call (a *waiter*) is released by the first of: an answer
//! (`Resolve` allow or deny), its hold expiring (`HoldExpired` → `Resolve
//! AwaitingApproval`: the daemon tells the agent that the call awaits a
//! human, with the approval id, and that the identical call will go through
//! once approved — **the approval stays pending**), its cancellation, or its
//! session ending. The daemon runs the hold timers: it starts one on each
//! [`Effect::Hold`] and sends [`Event::HoldExpired`] when it fires; a
//! `HoldExpired` for a call that is no longer held is ignored (races are
//! normal). A second `Hold` for a call already held means the call moved to
//! another approval (see *Once*, below).
//!
//! # Answers and scopes
//!
//! Only the console-like channels in [`ANSWERING_CHANNELS`] (`tui`, `cli`,
//! `telegram`, `notification`, `desktop`, and [`IN_CLIENT`], which may answer
//! with scope *once* only) may answer. Any other channel, `shim` above
//! all, gets [`Reply::Refused`], changes nothing, and is recorded. Every
//! answer, accepted or not, produces one [`Effect::Record`].
//!
//! | scope | approve | deny |
//! |---|---|---|
//! | `Once` | the first held waiter runs; if none is held, a single-use grant for the identical call (any session), expiring after `once_ttl_ms` | every held waiter is denied; if none is held, a single-use deny grant for the identical call |
//! | `SessionArgs` | grant for these arguments, in each session that asked, for `session_ttl_ms`; all waiters run | same, deny |
//! | `SessionTool` | grant for this tool with any arguments, in each session that asked; all waiters run | same, deny |
//! | `Always` | [`Effect::WriteRule`] for the tool (any arguments), plus an in-memory grant so it applies before the policy reloads (dropped on [`Event::PolicyReloaded`], or after `always_ttl_ms`); all waiters run | same, deny rule |
//!
//! *Once* with several identical calls held: one call runs; the others are
//! distinct calls that nobody approved, so they move, still held with their
//! hold deadlines, to a fresh pending approval (`PendingAdded` and a new
//! `Hold` for each).
//!
//! The *sessions that asked* are the session of the first call and of every
//! identical call attached since, less the sessions that ended. If none is
//! left when a session-scoped approve arrives, a single-use grant is made
//! instead (one identical call from a restarted client may then run), so the
//! human's answer is not lost; a session-scoped deny with no session left
//! makes a single-use deny grant likewise.
//!
//! Every grant is bound to server, tool and the definition hash as first
//! seen; to the argument hash unless the scope is `SessionTool` or
//! `Always`; to a session for session scopes. Deny grants are checked
//! before allow grants; a standing grant is preferred over a single-use one
//! when both match, so a once-grant is not wasted.
//!
//! # Other events
//!
//! * `Cancelled { call_id }` (the client's `notifications/cancelled` for a
//!   held request) withdraws that call's approval: the cancelled call is
//!   dropped (no answer goes to the client), every other waiter is denied
//!   "withdrawn", the approval closes as withdrawn. A later approve gets
//!   [`Reply::Withdrawn`] and the call never runs. A cancellation of a call
//!   that is not held (its hold expired, or it was decided) changes nothing.
//! * `ToolDefChanged { server, tool, new_def_hash }`: grants, recent
//!   retries and pending approvals bound to any other definition of that
//!   tool are removed; such pending approvals are **withdrawn** (the human
//!   would be approving a tool that no longer exists in that form) and their
//!   waiters denied with a reason that says to retry. The identical retry
//!   carries the new definition hash and asks afresh.
//! * `ToolDefSeen { server, tool, def_hash }`: the first definition of a
//!   tool the daemon learns. Grants, pending approvals and recent retries
//!   made while the definition was still unknown (a client may call a tool
//!   before it lists them) are bound to it: "as first seen".
//! * `SessionEnded { session }`: the session's grants and recent retries are
//!   dropped, its held calls are resolved `Dropped` (nobody is listening),
//!   and its pending approvals **stay**: an agent that reconnects under a
//!   new session and retries the identical call attaches to them, and an
//!   approve still leaves a single-use grant (see above).
//! * `PolicyReloaded`: in-memory `Always` grants are dropped, the reloaded
//!   policy now carries their rules.
//! * `Tick { now_ms }` (the daemon sends it now and then, e.g. every
//!   minute): expired grants and recent retries are pruned, and approvals
//!   pending longer than `pending_ttl_ms` are withdrawn as expired.
//!
//! # Bounds
//!
//! Pending approvals (`max_pending`, 1,000 by default): past it an `Ask` is
//! denied. Waiters per approval (`max_waiters`): past it the call is
//! answered `AwaitingApproval` at once. Grants (`max_grants`, 10,000): a new
//! grant first prunes expired ones, then evicts the oldest; losing a grant
//! only ever means asking again. Recent retries: `max_recent` overall and
//! `max_recent_per_session`. Closed approvals remembered: `max_closed`.
//!
//! # Persistence
//!
//! [`Approvals::snapshot`] / [`Approvals::restore`] carry pending approvals,
//! grants, recent retries, closed approvals and the id counter as JSON
//! (`{"version": 1, …}`). Held calls are not persisted: after a restart
//! their shims have lost the daemon, so restored approvals have no waiters.
//! Restoring does not drop anything that expired meanwhile; the next `Ask`
//! or `Tick` does.

//! # Driving it
//!
//! ```
//! use latch_core::Class;
//! use latch_core::approval::{Answer, Approvals, Ask, Config, Effect, Event, Outcome, Scope};
//!
//! let mut approvals = Approvals::new(Config::default(), 0x5eed);
//! let ask = Ask {
//!     call_id: "c1".into(),
//!     session: "s1".into(),
//!     server: "shell".into(),
//!     tool: "run".into(),
//!     args_hash: "3f…".into(),
//!     def_hash: Some("9a…".into()),
//!     class: Class::Execute,
//!     retry: false,
//!     summary: serde_json::json!({"args": {"cmd": "make"}}),
//!     now_ms: 1_000,
//!     hold_ms: None,
//! };
//! let effects = approvals.handle(Event::Ask(ask));
//! let Effect::Hold { approval_id, hold_until, .. } = &effects[0] else { unreachable!() };
//! assert_eq!(*hold_until, 51_000);
//!
//! // A person approves in the console before the hold runs out.
//! let effects = approvals.handle(Event::Answer(Answer {
//!     approval_id: approval_id.clone(),
//!     approve: true,
//!     scope: Scope::Once,
//!     channel: "tui".into(),
//!     who: "alice".into(),
//!     reason: None,
//!     now_ms: 5_000,
//! }));
//! assert!(effects.iter().any(|e| matches!(e,
//!     Effect::Resolve { call_id, outcome: Outcome::Allow { .. } } if call_id == "c1")));
//! ```

mod id;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::class::{Class, Decision};

pub use id::normalize as normalize_id;

/// Channels whose answers count. Anything else (`shim` above all) is refused.
pub const ANSWERING_CHANNELS: [&str; 6] = ["tui", "cli", "telegram", "notification", "desktop", IN_CLIENT];

/// The channel of an answer a person gave inside the MCP client itself
/// (elicitation, for clients the policy names). It reaches no further than
/// the one call: any other scope is refused.
pub const IN_CLIENT: &str = "in-client";

/// Version of the snapshot format.
pub const SNAPSHOT_VERSION: u32 = 1;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Durations (milliseconds) and bounds. Not persisted: it comes from the
/// daemon's configuration each start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long a call is held when the `Ask` names no `hold_ms`. The
    /// default stays under the 60 s request timeout of the TypeScript SDK.
    pub hold_ms: i64,
    /// Life of a single-use grant left by an answer with scope `Once`.
    pub once_ttl_ms: i64,
    /// Life of a session grant.
    pub session_ttl_ms: i64,
    /// Life of the in-memory grant that stands in for an `Always` rule until
    /// the policy reloads.
    pub always_ttl_ms: i64,
    /// How long an allowed call counts as "recent" for `retry: true`.
    pub retry_ttl_ms: i64,
    /// Pending approvals older than this are withdrawn on `Tick`.
    pub pending_ttl_ms: i64,
    pub max_pending: usize,
    pub max_grants: usize,
    pub max_waiters: usize,
    pub max_recent: usize,
    pub max_recent_per_session: usize,
    pub max_closed: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hold_ms: 50_000,
            once_ttl_ms: 15 * MINUTE_MS,
            session_ttl_ms: 12 * HOUR_MS,
            always_ttl_ms: 15 * MINUTE_MS,
            retry_ttl_ms: 10 * MINUTE_MS,
            pending_ttl_ms: 24 * HOUR_MS,
            max_pending: 1_000,
            max_grants: 10_000,
            max_waiters: 64,
            max_recent: 4_096,
            max_recent_per_session: 32,
            max_closed: 1_000,
        }
    }
}

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
}

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

/// A call held on a pending approval. Not persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub call_id: String,
    pub session: String,
    pub hold_until: i64,
}

/// An approval waiting for a human.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub key: CallKey,
    pub class: Class,
    /// The daemon's display data from the first `Ask`.
    pub summary: Value,
    pub created_at: i64,
    /// Sessions that asked (first call and identical calls attached since),
    /// less those that ended. Session-scoped answers grant these.
    pub sessions: BTreeSet<String>,
    #[serde(skip)]
    waiters: Vec<Waiter>,
}

impl Pending {
    /// Calls held on it right now.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    pub fn waiters(&self) -> &[Waiter] {
        &self.waiters
    }

    /// The latest hold deadline among its waiters.
    pub fn hold_until(&self) -> Option<i64> {
        self.waiters.iter().map(|w| w.hold_until).max()
    }
}

/// A standing answer: allows or denies matching calls without asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub decision: Decision,
    /// `Once` grants are single-use.
    pub scope: Scope,
    pub server: String,
    pub tool: String,
    /// `None`: any arguments.
    pub args_hash: Option<String>,
    /// `None`: any session.
    pub session: Option<String>,
    pub def_hash: Option<String>,
    /// The approval whose answer made it.
    pub approval_id: String,
    pub created_at: i64,
    /// Unusable from this instant on.
    pub expires_at: i64,
}

impl Grant {
    pub fn single_use(&self) -> bool {
        self.scope == Scope::Once
    }

    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at
    }

    /// Whether it applies to a call (expiry aside).
    pub fn covers(&self, key: &CallKey, session: &str) -> bool {
        self.server == key.server
            && self.tool == key.tool
            && self.def_hash == key.def_hash
            && self.args_hash.as_ref().is_none_or(|h| *h == key.args_hash)
            && self.session.as_deref().is_none_or(|s| s == session)
    }
}

/// A call allowed recently, for `retry: true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Recent {
    session: String,
    key: CallKey,
    at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Closed {
    approval_id: String,
    closure: Closure,
}

/// Everything persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    version: u32,
    id_salt: u64,
    next_seq: u64,
    /// In creation order.
    pending: Vec<Pending>,
    /// In creation order.
    grants: Vec<Grant>,
    recent: VecDeque<Recent>,
    closed: VecDeque<Closed>,
}

/// A snapshot that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("approval state is not in the expected form: {0}")]
    Format(#[from] serde_json::Error),
    #[error("approval state has version {found}, this build reads version {SNAPSHOT_VERSION}")]
    Version { found: u32 },
}

/// The approval state machine.
#[derive(Clone, Debug)]
pub struct Approvals {
    config: Config,
    state: State,
    /// Held call id → approval id. Not persisted.
    held: HashMap<String, String>,
}

impl Approvals {
    /// An empty machine. `id_salt` shuffles the approval ids (the daemon
    /// picks it at random once; it is persisted with the state).
    pub fn new(config: Config, id_salt: u64) -> Approvals {
        Approvals {
            config,
            state: State {
                version: SNAPSHOT_VERSION,
                id_salt,
                next_seq: 0,
                pending: Vec::new(),
                grants: Vec::new(),
                recent: VecDeque::new(),
                closed: VecDeque::new(),
            },
            held: HashMap::new(),
        }
    }

    /// The persistable state: pending approvals (without waiters), grants,
    /// recent retries, closed approvals, the id counter.
    pub fn snapshot(&self) -> Value {
        serde_json::to_value(&self.state).expect("approval state has only string map keys")
    }

    /// A machine from a [`snapshot`](Self::snapshot). Restored approvals
    /// have no waiters.
    pub fn restore(config: Config, snapshot: Value) -> Result<Approvals, RestoreError> {
        let found = snapshot.get("version").and_then(Value::as_u64).unwrap_or(0);
        if found != u64::from(SNAPSHOT_VERSION) {
            return Err(RestoreError::Version { found: u32::try_from(found).unwrap_or(u32::MAX) });
        }
        let state: State = serde_json::from_value(snapshot)?;
        Ok(Approvals { config, state, held: HashMap::new() })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Pending approvals, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.state.pending.iter()
    }

    /// One pending approval, by id as typed.
    pub fn get(&self, approval_id: &str) -> Option<&Pending> {
        let id = id::normalize(approval_id);
        self.state.pending.iter().find(|p| p.id == id)
    }

    /// Grants, oldest first (expired ones too, until pruned).
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.state.grants.iter()
    }

    /// The approval a call is held on.
    pub fn held_on(&self, call_id: &str) -> Option<&str> {
        self.held.get(call_id).map(String::as_str)
    }

    /// Feeds one event; returns what the daemon must do, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Ask(ask) => self.on_ask(ask, &mut fx),
            Event::HoldExpired { call_id } => self.on_hold_expired(&call_id, &mut fx),
            Event::Answer(answer) => self.on_answer(answer, &mut fx),
            Event::Cancelled { call_id, now_ms } => self.on_cancelled(&call_id, now_ms, &mut fx),
            Event::ToolDefChanged { server, tool, new_def_hash, now_ms } => {
                self.on_def_changed(&server, &tool, &new_def_hash, now_ms, &mut fx)
            }
            Event::ToolDefSeen { server, tool, def_hash } => self.on_def_seen(&server, &tool, &def_hash),
            Event::SessionEnded { session } => self.on_session_ended(&session, &mut fx),
            Event::PolicyReloaded => self.state.grants.retain(|g| g.scope != Scope::Always),
            Event::Tick { now_ms } => self.on_tick(now_ms, &mut fx),
        }
        fx
    }

    // ---- Ask ----

    fn on_ask(&mut self, ask: Ask, fx: &mut Vec<Effect>) {
        let now = ask.now_ms;
        if let Some(approval_id) = self.held.get(&ask.call_id) {
            // The daemon's call ids are unique; fail closed if they are not.
            let reason = format!("duplicate call id {} (already held on approval {approval_id})", ask.call_id);
            fx.push(resolve(&ask.call_id, Outcome::Deny { reason, approval_id: None }));
            return;
        }
        let key = ask.key();
        self.prune_grants(now);

        if let Some(g) = self.take_grant(&key, &ask.session, Decision::Deny) {
            let reason = format!("denied {} by an earlier answer (approval {})", g.scope.describe(), g.approval_id);
            fx.push(resolve(&ask.call_id, Outcome::Deny { reason, approval_id: Some(g.approval_id) }));
            return;
        }
        if ask.retry && self.recent_hit(&key, &ask.session, now) {
            self.remember(&ask.session, &key, now);
            let reason = "retry of a call allowed moments ago in this session".to_owned();
            fx.push(resolve(&ask.call_id, Outcome::Allow { reason, approval_id: None }));
            return;
        }
        if let Some(g) = self.take_grant(&key, &ask.session, Decision::Allow) {
            self.remember(&ask.session, &key, now);
            let reason = format!("approved {} (approval {})", g.scope.describe(), g.approval_id);
            fx.push(resolve(&ask.call_id, Outcome::Allow { reason, approval_id: Some(g.approval_id) }));
            return;
        }

        let hold_until = now.saturating_add(ask.hold_ms.unwrap_or(self.config.hold_ms).max(0));
        let waiter = Waiter { call_id: ask.call_id.clone(), session: ask.session.clone(), hold_until };
        if let Some(p) = self.state.pending.iter_mut().find(|p| p.key == key) {
            let approval_id = p.id.clone();
            if p.waiters.len() >= self.config.max_waiters {
                fx.push(resolve(&ask.call_id, Outcome::AwaitingApproval { approval_id }));
                return;
            }
            p.sessions.insert(ask.session.clone());
            p.waiters.push(waiter);
            self.held.insert(ask.call_id.clone(), approval_id.clone());
            fx.push(Effect::Hold { call_id: ask.call_id, approval_id: approval_id.clone(), hold_until });
            fx.push(Effect::PendingUpdated { approval_id });
            return;
        }

        if self.state.pending.len() >= self.config.max_pending {
            let reason = format!(
                "too many approvals are pending ({}): a person must answer some in Latch first; retry later",
                self.state.pending.len()
            );
            fx.push(resolve(&ask.call_id, Outcome::Deny { reason, approval_id: None }));
            return;
        }

        let approval_id = self.next_id();
        self.held.insert(ask.call_id.clone(), approval_id.clone());
        self.state.pending.push(Pending {
            id: approval_id.clone(),
            key,
            class: ask.class,
            summary: ask.summary,
            created_at: now,
            sessions: BTreeSet::from([ask.session]),
            waiters: vec![waiter],
        });
        fx.push(Effect::Hold { call_id: ask.call_id, approval_id: approval_id.clone(), hold_until });
        fx.push(Effect::PendingAdded { approval_id });
    }

    /// The best matching unexpired grant with this decision; a single-use one
    /// is removed in the same step. Standing grants are preferred.
    fn take_grant(&mut self, key: &CallKey, session: &str, decision: Decision) -> Option<Grant> {
        let matching = |g: &&Grant| g.decision == decision && g.covers(key, session);
        let grants = &mut self.state.grants;
        if let Some(g) = grants.iter().filter(matching).find(|g| !g.single_use()) {
            return Some(g.clone());
        }
        let at = grants.iter().position(|g| matching(&g))?;
        Some(grants.remove(at))
    }

    fn prune_grants(&mut self, now: i64) {
        self.state.grants.retain(|g| !g.expired(now));
    }

    // ---- holds ----

    fn on_hold_expired(&mut self, call_id: &str, fx: &mut Vec<Effect>) {
        let Some(approval_id) = self.held.remove(call_id) else {
            return;
        };
        if let Some(p) = self.state.pending.iter_mut().find(|p| p.id == approval_id) {
            p.waiters.retain(|w| w.call_id != call_id);
        }
        fx.push(resolve(call_id, Outcome::AwaitingApproval { approval_id: approval_id.clone() }));
        fx.push(Effect::PendingUpdated { approval_id });
    }

    // ---- answers ----

    fn on_answer(&mut self, a: Answer, fx: &mut Vec<Effect>) {
        let approval_id = id::normalize(&a.approval_id);
        let decision = if a.approve { Decision::Allow } else { Decision::Deny };
        let record = |result| {
            Effect::Record(AnswerRecord {
                approval_id: approval_id.clone(),
                decision,
                scope: a.scope,
                channel: a.channel.clone(),
                who: a.who.clone(),
                reason: a.reason.clone(),
                at: a.now_ms,
                result,
            })
        };

        if !ANSWERING_CHANNELS.contains(&a.channel.as_str()) {
            fx.push(record(AnswerResult::Refused));
            let reason = format!(
                "channel `{}` may not answer approvals: answer in `latch tui`, with `latch approve`, \
                 or from a notification or Telegram",
                a.channel
            );
            fx.push(Effect::Reply(Reply::Refused { reason }));
            return;
        }

        if a.channel == IN_CLIENT && a.scope != Scope::Once {
            fx.push(record(AnswerResult::Refused));
            let reason = format!("an answer in the client covers this call only, never {}", a.scope.describe());
            fx.push(Effect::Reply(Reply::Refused { reason }));
            return;
        }

        if let Some(at) = self.state.pending.iter().position(|p| p.id == approval_id) {
            fx.push(record(AnswerResult::Decided));
            let pending = self.state.pending.remove(at);
            let released = self.decide(pending, decision, &a, fx);
            fx.push(Effect::Reply(Reply::Decided { approval_id, decision, scope: a.scope, released }));
            return;
        }

        let reply = match self.state.closed.iter().find(|c| c.approval_id == approval_id) {
            Some(Closed { closure: Closure::Decided { decision, scope, channel, who, at }, .. }) => {
                fx.push(record(AnswerResult::AlreadyDecided));
                Reply::AlreadyDecided {
                    approval_id: approval_id.clone(),
                    decision: *decision,
                    scope: *scope,
                    channel: channel.clone(),
                    who: who.clone(),
                    at: *at,
                }
            }
            Some(Closed { closure: Closure::Withdrawn { cause, at }, .. }) => {
                fx.push(record(AnswerResult::Withdrawn));
                Reply::Withdrawn { approval_id: approval_id.clone(), cause: *cause, at: *at }
            }
            None => {
                fx.push(record(AnswerResult::Unknown));
                Reply::Unknown { approval_id: approval_id.clone() }
            }
        };
        fx.push(Effect::Reply(reply));
    }

    /// Applies a decision to a pending approval already taken out of the
    /// list. Returns how many held calls it answered.
    fn decide(&mut self, p: Pending, decision: Decision, a: &Answer, fx: &mut Vec<Effect>) -> usize {
        let now = a.now_ms;
        for w in &p.waiters {
            self.held.remove(&w.call_id);
        }
        let closure =
            Closure::Decided { decision, scope: a.scope, channel: a.channel.clone(), who: a.who.clone(), at: now };
        self.close(&p.id, closure.clone());
        fx.push(Effect::PendingRemoved { approval_id: p.id.clone(), closure });

        let verb = if decision == Decision::Allow { "approved" } else { "denied" };
        let mut reason = format!("{verb} {} by {} (approval {})", a.scope.describe(), by(&a.channel, &a.who), p.id);
        if let Some(why) = a.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            reason.push_str(": ");
            reason.push_str(why.trim());
        }
        let outcome = |reason: &str| match decision {
            Decision::Allow => Outcome::Allow { reason: reason.to_owned(), approval_id: Some(p.id.clone()) },
            _ => Outcome::Deny { reason: reason.to_owned(), approval_id: Some(p.id.clone()) },
        };

        // Grants.
        let grant = |scope: Scope, args: bool, session: Option<String>, ttl: i64| Grant {
            decision,
            scope,
            server: p.key.server.clone(),
            tool: p.key.tool.clone(),
            args_hash: args.then(|| p.key.args_hash.clone()),
            session,
            def_hash: p.key.def_hash.clone(),
            approval_id: p.id.clone(),
            created_at: now,
            expires_at: now.saturating_add(ttl),
        };
        let once = grant(Scope::Once, true, None, self.config.once_ttl_ms);
        match a.scope {
            Scope::Once => {
                if p.waiters.is_empty() {
                    self.add_grant(once, now);
                }
            }
            Scope::SessionArgs | Scope::SessionTool => {
                if p.sessions.is_empty() {
                    self.add_grant(once, now);
                }
                let args = a.scope == Scope::SessionArgs;
                for s in &p.sessions {
                    self.add_grant(grant(a.scope, args, Some(s.clone()), self.config.session_ttl_ms), now);
                }
            }
            Scope::Always => {
                self.add_grant(grant(Scope::Always, false, None, self.config.always_ttl_ms), now);
                fx.push(Effect::WriteRule {
                    approval_id: p.id.clone(),
                    server: p.key.server.clone(),
                    tool: p.key.tool.clone(),
                    decision,
                    def_hash: p.key.def_hash.clone(),
                });
            }
        }

        // Held calls.
        let single = decision == Decision::Allow && a.scope == Scope::Once;
        let mut waiters = p.waiters.iter();
        let mut released = 0;
        for w in waiters.by_ref().take(if single { 1 } else { usize::MAX }) {
            if decision == Decision::Allow {
                self.remember(&w.session, &p.key, now);
            }
            fx.push(resolve(&w.call_id, outcome(&reason)));
            released += 1;
        }
        let rest: Vec<Waiter> = waiters.cloned().collect();
        if !rest.is_empty() {
            // Identical calls beyond the one approved once: nobody approved
            // them; they wait, still held, on a fresh approval.
            let approval_id = self.next_id();
            for w in &rest {
                self.held.insert(w.call_id.clone(), approval_id.clone());
            }
            self.state.pending.push(Pending {
                id: approval_id.clone(),
                key: p.key.clone(),
                class: p.class,
                summary: p.summary.clone(),
                created_at: now,
                sessions: rest.iter().map(|w| w.session.clone()).collect(),
                waiters: rest.clone(),
            });
            for w in rest {
                fx.push(Effect::Hold {
                    call_id: w.call_id,
                    approval_id: approval_id.clone(),
                    hold_until: w.hold_until,
                });
            }
            fx.push(Effect::PendingAdded { approval_id });
        }
        released
    }

    fn add_grant(&mut self, g: Grant, now: i64) {
        let grants = &mut self.state.grants;
        if !g.single_use() {
            // A standing grant replaces an identical one (fresh expiry).
            grants.retain(|o| {
                !(o.decision == g.decision
                    && o.scope == g.scope
                    && o.server == g.server
                    && o.tool == g.tool
                    && o.args_hash == g.args_hash
                    && o.session == g.session
                    && o.def_hash == g.def_hash)
            });
        }
        if grants.len() >= self.config.max_grants {
            grants.retain(|o| !o.expired(now));
        }
        if grants.len() >= self.config.max_grants {
            // Losing a grant only means asking again.
            let excess = grants.len() + 1 - self.config.max_grants.max(1);
            grants.drain(..excess.min(grants.len()));
        }
        grants.push(g);
    }

    // ---- withdrawals ----

    fn on_cancelled(&mut self, call_id: &str, now: i64, fx: &mut Vec<Effect>) {
        let Some(approval_id) = self.held.remove(call_id) else {
            return;
        };
        fx.push(resolve(call_id, Outcome::Dropped { reason: "cancelled by the client".to_owned() }));
        if let Some(at) = self.state.pending.iter().position(|p| p.id == approval_id) {
            let mut p = self.state.pending.remove(at);
            p.waiters.retain(|w| w.call_id != call_id);
            self.withdraw(p, Withdrawal::Cancelled, now, fx);
        }
    }

    fn on_def_seen(&mut self, server: &str, tool: &str, def: &str) {
        let unbound = |s: &str, t: &str, d: &Option<String>| s == server && t == tool && d.is_none();
        let bind = Some(def.to_owned());
        for g in self.state.grants.iter_mut().filter(|g| unbound(&g.server, &g.tool, &g.def_hash)) {
            g.def_hash = bind.clone();
        }
        for r in self.state.recent.iter_mut().filter(|r| unbound(&r.key.server, &r.key.tool, &r.key.def_hash)) {
            r.key.def_hash = bind.clone();
        }
        for p in self.state.pending.iter_mut().filter(|p| unbound(&p.key.server, &p.key.tool, &p.key.def_hash)) {
            p.key.def_hash = bind.clone();
        }
    }

    fn on_def_changed(&mut self, server: &str, tool: &str, new_def: &str, now: i64, fx: &mut Vec<Effect>) {
        let stale = |s: &str, t: &str, d: &Option<String>| s == server && t == tool && d.as_deref() != Some(new_def);
        self.state.grants.retain(|g| !stale(&g.server, &g.tool, &g.def_hash));
        self.state.recent.retain(|r| !stale(&r.key.server, &r.key.tool, &r.key.def_hash));
        let (gone, kept) = std::mem::take(&mut self.state.pending)
            .into_iter()
            .partition(|p| stale(&p.key.server, &p.key.tool, &p.key.def_hash));
        self.state.pending = kept;
        for p in gone {
            self.withdraw(p, Withdrawal::ToolDefChanged, now, fx);
        }
    }

    fn on_tick(&mut self, now: i64, fx: &mut Vec<Effect>) {
        self.prune_grants(now);
        let ttl = self.config.retry_ttl_ms;
        self.state.recent.retain(|r| now.saturating_sub(r.at) < ttl);
        let ttl = self.config.pending_ttl_ms;
        let (gone, kept) =
            std::mem::take(&mut self.state.pending).into_iter().partition(|p| now.saturating_sub(p.created_at) >= ttl);
        self.state.pending = kept;
        for p in gone {
            self.withdraw(p, Withdrawal::Expired, now, fx);
        }
    }

    /// Closes a pending approval (already out of the list) without an
    /// answer; its remaining waiters are denied.
    fn withdraw(&mut self, p: Pending, cause: Withdrawal, now: i64, fx: &mut Vec<Effect>) {
        let closure = Closure::Withdrawn { cause, at: now };
        self.close(&p.id, closure.clone());
        fx.push(Effect::PendingRemoved { approval_id: p.id.clone(), closure });
        let reason = match cause {
            Withdrawal::ToolDefChanged => format!(
                "approval {} withdrawn: the tool's definition changed while the call waited; \
                 retry the call to ask again",
                p.id
            ),
            cause => format!("approval {} withdrawn: {}", p.id, cause.describe()),
        };
        for w in p.waiters {
            self.held.remove(&w.call_id);
            fx.push(resolve(&w.call_id, Outcome::Deny { reason: reason.clone(), approval_id: Some(p.id.clone()) }));
        }
    }

    fn on_session_ended(&mut self, session: &str, fx: &mut Vec<Effect>) {
        self.state.grants.retain(|g| g.session.as_deref() != Some(session));
        self.state.recent.retain(|r| r.session != session);
        for p in &mut self.state.pending {
            p.sessions.remove(session);
            let before = p.waiters.len();
            p.waiters.retain(|w| {
                if w.session != session {
                    return true;
                }
                self.held.remove(&w.call_id);
                fx.push(resolve(&w.call_id, Outcome::Dropped { reason: "the session ended".to_owned() }));
                false
            });
            if p.waiters.len() != before {
                fx.push(Effect::PendingUpdated { approval_id: p.id.clone() });
            }
        }
    }

    // ---- bookkeeping ----

    fn close(&mut self, approval_id: &str, closure: Closure) {
        let closed = &mut self.state.closed;
        while closed.len() >= self.config.max_closed.max(1) {
            closed.pop_front();
        }
        closed.push_back(Closed { approval_id: approval_id.to_owned(), closure });
    }

    fn next_id(&mut self) -> String {
        loop {
            let id = id::make(self.state.next_seq, self.state.id_salt);
            self.state.next_seq = self.state.next_seq.wrapping_add(1);
            let taken =
                self.state.pending.iter().any(|p| p.id == id) || self.state.closed.iter().any(|c| c.approval_id == id);
            if !taken {
                return id;
            }
        }
    }

    fn recent_hit(&mut self, key: &CallKey, session: &str, now: i64) -> bool {
        let ttl = self.config.retry_ttl_ms;
        self.state.recent.retain(|r| now.saturating_sub(r.at) < ttl);
        self.state.recent.iter().any(|r| r.session == session && r.key == *key)
    }

    fn remember(&mut self, session: &str, key: &CallKey, now: i64) {
        let recent = &mut self.state.recent;
        recent.retain(|r| !(r.session == session && r.key == *key));
        let cap = self.config.max_recent_per_session.max(1);
        let mut mine = recent.iter().filter(|r| r.session == session).count();
        while mine >= cap {
            let Some(at) = recent.iter().position(|r| r.session == session) else {
                break;
            };
            recent.remove(at);
            mine -= 1;
        }
        while recent.len() >= self.config.max_recent.max(1) {
            recent.pop_front();
        }
        recent.push_back(Recent { session: session.to_owned(), key: key.clone(), at: now });
    }
}

fn resolve(call_id: &str, outcome: Outcome) -> Effect {
    Effect::Resolve { call_id: call_id.to_owned(), outcome }
}

fn by(channel: &str, who: &str) -> String {
    if who.is_empty() { channel.to_owned() } else { format!("{who} via {channel}") }
}
