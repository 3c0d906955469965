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

mod clock;
mod config;
mod effect;
mod event;
mod id;
mod machine;
mod state;
#[cfg(test)]
mod tests;

pub use config::{ANSWERING_CHANNELS, Config, IN_CLIENT, SNAPSHOT_VERSION};
pub use effect::{AnswerRecord, AnswerResult, Closure, Effect, Outcome, Reply, Withdrawal};
pub use event::{Answer, Ask, CallKey, Event, Scope};
pub use id::normalize as normalize_id;
pub use machine::Approvals;
pub use state::{Grant, Pending, RestoreError, Waiter};
