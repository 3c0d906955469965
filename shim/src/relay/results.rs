//! Poisoned results in the relay: the answer to a decided `tools/call` or
//! to a `resources/read` is checked ([`crate::results`]) before it goes to
//! the client, and handled by the server's mode, which the daemon tells
//! the shim (`ResultsMode`, after connecting and after each reload):
//!
//! - `record`: forwarded as it came, first; then checked off the relay
//!   loop (the IO loop runs the check on the blocking pool) and the
//!   findings reported (an audit row tied to the call), the call's outcome
//!   after them;
//! - `mask`: secrets masked in what is forwarded, the findings reported; a
//!   result that could not be read whole is held instead (unmasked text
//!   must not slip through);
//! - `hold`: kept here until a person decides its approval in Latch;
//!   approved → forwarded as it came, denied, timed out, daemon or server
//!   gone → withheld (the client gets an error result saying so).
//!
//! Until the daemon has said, results are masked (no person is needed).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use latch_core::threat::result::Handling;
use latch_proto::{ClientMsg, Decision, Outcome, ResultReport};
use serde_json::json;

use super::reply::{blocked, rpc_error};
use super::{Action, BACKSTOP, Relay};
use crate::results::{self, Checked};
use crate::text;

/// Results from this size on are checked after they are forwarded in
/// `record` mode; a smaller one is checked in a few microseconds, less than
/// handing it to another thread would cost, so it is checked first.
const CHECK_AFTER: usize = 64 * 1024;

/// How long a held result waits for the daemon's `ResultHeld`.
const FIRST_ANSWER: Duration = Duration::from_secs(30);

/// A response the relay checks before forwarding: set by `inspect_server`.
#[derive(Debug)]
pub(super) struct Target {
    /// The decided call (`tools/call`); `None` for `resources/read`.
    pub call_id: Option<String>,
    pub method: &'static str,
    /// The tool, or the resource's URI.
    pub subject: String,
    /// The client's request id, raw.
    pub request_id: String,
    /// The call's outcome report, sent after the findings (so the daemon
    /// still knows the call when they arrive).
    pub finished: Option<(Outcome, u64)>,
    /// The server's result carried `resultType` (2026-07-28 form).
    pub modern: bool,
}

/// A result waiting for a person.
pub(super) struct HeldResult {
    target: Target,
    line: Vec<u8>,
    /// The daemon's id for the hold (its `Resolved` names it).
    hold_id: Option<String>,
    approval_id: Option<String>,
    deadline: Instant,
}

pub(super) type HeldResults = HashMap<String, HeldResult>;

/// Results forwarded in `record` mode, being checked: the response and
/// its length.
pub(super) type Checking = HashMap<u64, (Target, usize)>;

/// Why a held result is withheld.
enum Withheld<'a> {
    Denied(&'a str),
    TimedOut,
    DaemonGone,
    ServerGone,
    ClientGone,
    Refused(&'a str),
}

impl Relay {
    /// The mode in force for this server's results.
    fn results_mode(&self) -> Handling {
        self.results_mode.unwrap_or(Handling::Mask)
    }

    /// Checks a response line before it goes to the client; a large one in
    /// `record` mode after (it goes as it came either way).
    pub(super) fn pass_result(&mut self, t: Target, line: Vec<u8>) {
        let mode = self.results_mode();
        if mode == Handling::Record && line.len() >= CHECK_AFTER {
            self.next_result_key += 1;
            let key = self.next_result_key;
            self.checking.insert(key, (t, line.len()));
            self.out.push(Action::ClientThenCheck { key, frame: std::sync::Arc::new(line) });
            return;
        }
        let checked = results::check(&line, mode);
        let hold = mode == Handling::Hold || (mode == Handling::Mask && checked.unchecked());
        let Checked::Found { findings, masked, .. } = checked else {
            self.finish(&t);
            self.send_client(line);
            return;
        };
        let mut report = ResultReport {
            call_id: t.call_id.clone(),
            method: t.method.to_owned(),
            subject: t.subject.clone(),
            request_id: t.request_id.clone(),
            handling: mode.as_str().to_owned(),
            findings: results::wire(&findings),
            bytes: line.len() as u64,
            hold: None,
        };
        if !hold {
            let out = masked.unwrap_or(line);
            self.report(&ClientMsg::ResultFound(report));
            self.finish(&t);
            self.send_client(out);
            return;
        }
        if !self.daemon {
            // Nobody can decide it: withheld (fail closed).
            report.handling = "withheld".into();
            self.report(&ClientMsg::ResultFound(report));
            self.finish(&t);
            self.withhold(&t, None, Withheld::DaemonGone);
            return;
        }
        self.next_result_key += 1;
        let key = format!("r{}", self.next_result_key);
        report.hold = Some(key.clone());
        report.handling = Handling::Hold.as_str().to_owned();
        eprintln!("latch shim: the result of {} is held for a person: it has findings", t.subject);
        self.report(&ClientMsg::ResultFound(report));
        self.finish(&t);
        let deadline = Instant::now() + FIRST_ANSWER;
        self.held_results.insert(key, HeldResult { target: t, line, hold_id: None, approval_id: None, deadline });
    }

    /// The check of a result forwarded in `record` mode: its findings are
    /// reported, then the call's outcome (the daemon still knows the call
    /// when the findings arrive).
    pub(super) fn on_checked(&mut self, key: u64, checked: Checked) {
        let Some((t, bytes)) = self.checking.remove(&key) else { return };
        if let Checked::Found { findings, .. } = checked {
            self.report(&ClientMsg::ResultFound(ResultReport {
                call_id: t.call_id.clone(),
                method: t.method.to_owned(),
                subject: t.subject.clone(),
                request_id: t.request_id.clone(),
                handling: Handling::Record.as_str().to_owned(),
                findings: results::wire(&findings),
                bytes: bytes as u64,
                hold: None,
            }));
        }
        self.finish(&t);
    }

    /// Checks a response inside a batch: recorded, or (under `mask` and
    /// `hold`, when it has findings) withheld in place; the replacement
    /// element is returned. A batch is not held: the other responses in it
    /// would wait too.
    pub(super) fn pass_batch_item(&mut self, t: Target, item: &[u8]) -> Option<Vec<u8>> {
        let mode = self.results_mode();
        let Checked::Found { findings, .. } = results::check(item, Handling::Record) else {
            self.finish(&t);
            return None;
        };
        let withheld = mode != Handling::Record;
        let report = ResultReport {
            call_id: t.call_id.clone(),
            method: t.method.to_owned(),
            subject: t.subject.clone(),
            request_id: t.request_id.clone(),
            handling: if withheld { "withheld".into() } else { mode.as_str().to_owned() },
            findings: results::wire(&findings),
            bytes: item.len() as u64,
            hold: None,
        };
        self.report(&ClientMsg::ResultFound(report));
        self.finish(&t);
        if !withheld {
            return None;
        }
        let text = text::result_refused(&t.subject, "it came in a batch, which Latch does not hold");
        let mut line = if t.method == "tools/call" {
            let verdict = json!({"decision": "deny", "withheld": "result", "call_id": t.call_id});
            blocked(&t.request_id, text, verdict, t.modern)
        } else {
            rpc_error(&t.request_id, -32603, &text)
        };
        line.pop();
        Some(line)
    }

    /// The daemon's answer to a hold request.
    pub(super) fn on_result_held(
        &mut self,
        key: &str,
        hold_id: String,
        decision: Decision,
        approval: Option<String>,
        reason: &str,
        hold_ms: u64,
    ) {
        let Some(h) = self.held_results.get_mut(key) else {
            // Gone meanwhile: the daemon's approval has nothing to release.
            self.report(&ClientMsg::Cancelled { call_id: hold_id });
            return;
        };
        match decision {
            Decision::Ask => {
                h.hold_id = Some(hold_id);
                h.approval_id = approval;
                h.deadline = Instant::now() + Duration::from_millis(hold_ms) + BACKSTOP;
                eprintln!(
                    "latch shim: the result of {} awaits approval {}: a person must decide it in Latch",
                    h.target.subject,
                    h.approval_id.as_deref().unwrap_or("?")
                );
            }
            Decision::Allow => {
                if let Some(h) = self.held_results.remove(key) {
                    self.send_client(h.line);
                }
            }
            Decision::Deny => {
                if let Some(h) = self.held_results.remove(key) {
                    self.withhold(&h.target, approval.as_deref(), Withheld::Refused(reason));
                }
            }
        }
    }

    /// A `Resolved` for a held result; false when `hold_id` is not one.
    pub(super) fn resolve_result(&mut self, hold_id: &str, decision: Decision, reason: &str) -> bool {
        let Some(key) =
            self.held_results.iter().find(|(_, h)| h.hold_id.as_deref() == Some(hold_id)).map(|(k, _)| k.clone())
        else {
            return false;
        };
        let Some(h) = self.held_results.remove(&key) else { return false };
        match decision {
            Decision::Allow => self.send_client(h.line),
            Decision::Deny => self.withhold(&h.target, h.approval_id.as_deref(), Withheld::Denied(reason)),
            // The hold ran out before a person decided.
            Decision::Ask => {
                self.report(&ClientMsg::Cancelled { call_id: hold_id.to_owned() });
                self.withhold(&h.target, h.approval_id.as_deref(), Withheld::TimedOut);
            }
        }
        true
    }

    /// The earliest deadline of a held result.
    pub(super) fn results_wake(&self) -> Option<Instant> {
        self.held_results.values().map(|h| h.deadline).min()
    }

    /// Held results past their deadline are withheld.
    pub(super) fn expire_results(&mut self, now: Instant) {
        let due: Vec<String> =
            self.held_results.iter().filter(|(_, h)| h.deadline <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            if let Some(h) = self.held_results.remove(&key) {
                if let Some(id) = h.hold_id.clone() {
                    self.report(&ClientMsg::Cancelled { call_id: id });
                }
                self.withhold(&h.target, h.approval_id.as_deref(), Withheld::TimedOut);
            }
        }
    }

    /// Every held result is withheld: the daemon, the server or the client
    /// went away.
    pub(super) fn withhold_all_results(&mut self, daemon_gone: bool, client_gone: bool) {
        for (_, h) in self.held_results.drain().collect::<Vec<_>>() {
            if !daemon_gone && let Some(id) = h.hold_id.clone() {
                // Its approval has nothing left to release.
                self.report(&ClientMsg::Cancelled { call_id: id });
            }
            let why = match (daemon_gone, client_gone) {
                (true, _) => Withheld::DaemonGone,
                (_, true) => Withheld::ClientGone,
                _ => Withheld::ServerGone,
            };
            if !client_gone {
                self.withhold(&h.target, h.approval_id.as_deref(), why);
            }
        }
    }

    /// The client's answer in place of a withheld result.
    fn withhold(&mut self, t: &Target, approval: Option<&str>, why: Withheld<'_>) {
        let text = match why {
            Withheld::Denied(reason) => text::result_denied(&t.subject, approval.unwrap_or("?"), reason),
            Withheld::TimedOut => text::result_timed_out(&t.subject, approval.unwrap_or("?")),
            Withheld::DaemonGone => text::result_no_daemon(&t.subject),
            Withheld::ServerGone => text::result_server_gone(&t.subject),
            Withheld::ClientGone => return,
            Withheld::Refused(reason) => text::result_refused(&t.subject, reason),
        };
        let line = if t.method == "tools/call" {
            let verdict =
                json!({"decision": "deny", "withheld": "result", "approval_id": approval, "call_id": t.call_id});
            blocked(&t.request_id, text, verdict, t.modern)
        } else {
            rpc_error(&t.request_id, -32603, &text)
        };
        self.send_client(line);
    }

    fn finish(&mut self, t: &Target) {
        if let (Some(call_id), Some((outcome, latency_us))) = (&t.call_id, t.finished) {
            self.report(&ClientMsg::Finished { call_id: call_id.clone(), outcome, latency_us });
        }
    }
}
