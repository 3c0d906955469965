//! The daemon's side: asking for decisions, applying them, and the link
//! coming and going.

use std::ops::Range;
use std::time::{Duration, Instant};

use latch_proto::{ClientMsg, DaemonMsg, Decision, frame};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::reply::blocked;
use super::{BACKSTOP, Held, InFlight, Kind, ProgressShift, Relay};
use crate::envelope::{self, Line};
use crate::splice::{Edit, range_in};
use crate::text;

impl Relay {
    pub(super) fn decide(&mut self, mut held: Box<Held>, raw: Vec<u8>) {
        held.line = match held.state_edit.take() {
            Some(edit) => {
                if let Some(args) = held.args.take() {
                    let Some(moved) = shifted(args, &edit, &raw) else {
                        return self.deny(*held, "the call's arguments could not be read");
                    };
                    held.args = Some(moved);
                }
                edit.apply(&raw)
            }
            None => raw,
        };
        let Some(mut held) = self.try_local(held) else { return };
        if !self.daemon {
            if self.connecting {
                self.queued.push(*held);
            } else {
                self.offline(*held);
            }
            return;
        }
        self.next_req += 1;
        let req = self.next_req;
        // The arguments are a slice of a line the envelope reader has just
        // validated: they travel raw.
        let args = match &held.args {
            None => "{}",
            Some(range) => match held.line.get(range.clone()).map(std::str::from_utf8) {
                Some(Ok(args)) => args,
                // Cannot happen (a slice of a line read as text); never
                // decided on something else.
                _ => return self.deny(*held, "the call's arguments could not be read"),
            },
        };
        let frame = frame::encode_decide(req, &held.tool, args, held.retry);
        let sent = self.send_frames(frame);
        if sent {
            held.args = None;
            self.deciding.insert(req, *held);
        } else {
            self.offline(*held);
        }
    }

    /// No daemon: nothing runs, unless the user allowed reads offline and
    /// this is one.
    pub(super) fn offline(&mut self, mut held: Held) {
        if let Some(who) = &self.impostor {
            let text = text::impostor(&held.tool, who);
            let verdict = json!({"decision": "deny", "reason": "not Latch's daemon at the socket"});
            self.send_client(blocked(&held.id, text, verdict, held.modern));
            return;
        }
        if self.opts.allow_reads_offline && self.is_offline_read(&held.tool) {
            let line = std::mem::take(&mut held.line);
            // Its result is checked like any call's (no call id: no outcome).
            let kind = Kind::Call { call_id: String::new(), tool: held.tool.clone() };
            self.inflight.insert(held.id.clone(), InFlight { kind, start: Instant::now() });
            self.send_server(line);
            return;
        }
        let text = text::offline(&held.tool);
        let verdict = json!({"decision": "deny", "reason": "daemon unavailable"});
        self.send_client(blocked(&held.id, text, verdict, held.modern));
    }

    /// READ by the tool's own annotations and name: `readOnlyHint: true`
    /// and a reading verb first in its name. Deliberately narrower than the
    /// daemon's classifier.
    pub(super) fn is_offline_read(&self, tool: &str) -> bool {
        let read_only = self
            .tool_defs
            .get(tool)
            .and_then(|d| d.get("annotations"))
            .and_then(|a| a.get("readOnlyHint"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let first = tool.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("").to_ascii_lowercase();
        read_only
            && matches!(first.as_str(), "read" | "get" | "list" | "search" | "find" | "query" | "describe" | "view")
    }

    pub(super) fn on_up(&mut self) {
        self.daemon = true;
        self.impostor = None;
        self.connecting = false;
        while let Some(frame) = self.outbox.pop_front() {
            self.send_frames(frame);
        }
        // What to do with results that have findings (answered before any
        // decision on this connection).
        self.send_daemon(&ClientMsg::ResultsModeQuery {});
        if let Some(info) = self.client.clone() {
            self.send_daemon(&ClientMsg::Client { info });
        }
        if let Some(roots) = self.roots.known.clone() {
            self.send_daemon(&ClientMsg::ClientRoots { roots: Some(roots) });
        }
        for (page, first_page) in self.tool_pages.clone() {
            if let Ok(tools) = RawValue::from_string(page) {
                self.send_daemon(&ClientMsg::ToolsListed { tools, first_page });
            }
        }
        for mut held in std::mem::take(&mut self.queued) {
            let line = std::mem::take(&mut held.line);
            self.decide(Box::new(held), line);
        }
    }

    /// No daemon to ask any more: calls waiting for one are answered as
    /// not run.
    pub(super) fn on_down(&mut self, why: String) {
        self.daemon = false;
        self.lease = None;
        self.finished_due = None;
        self.finished_n = 0;
        if !self.finished.is_empty() {
            self.outbox.push_back(std::mem::take(&mut self.finished));
        }
        self.connecting = false;
        // Their approvals went with the daemon; a retry is a new call.
        self.drop_parked(false);
        // Nobody can decide a held result any more: withheld.
        self.withhold_all_results(true, false);
        for held in std::mem::take(&mut self.queued) {
            self.offline(held);
        }
        let deciding: Vec<Held> = self.deciding.drain().map(|(_, h)| h).collect();
        let held: Vec<Held> = self.held.drain().map(|(_, h)| h).collect();
        if !deciding.is_empty() || !held.is_empty() {
            eprintln!(
                "latch shim: lost the daemon ({why}); {} held call(s) answered as not run",
                deciding.len() + held.len()
            );
        }
        for mut h in deciding.into_iter().chain(held) {
            self.withdraw(h.elicit.take());
            if h.line.is_empty() {
                continue;
            }
            let text = match &self.impostor {
                Some(who) => text::impostor(&h.tool, who),
                None => text::daemon_gone(&h.tool),
            };
            let verdict = json!({"decision": "deny", "reason": "daemon unavailable", "approval_id": h.approval_id});
            self.send_client(blocked(&h.id, text, verdict, h.modern));
        }
    }

    pub(super) fn on_daemon(&mut self, msg: DaemonMsg) {
        match msg {
            DaemonMsg::Decision { req, call_id, decision, class, reason, approval_id, hold_ms, ask_in_client } => {
                let Some(mut held) = self.deciding.remove(&req) else {
                    return;
                };

                held.call_id = Some(call_id.clone());
                held.class = class;
                if held.line.is_empty() {
                    // Cancelled while being decided.
                    self.report(&ClientMsg::Cancelled { call_id });
                    return;
                }
                let (decision, reason) = match (decision, self.early.remove(&call_id)) {
                    (Decision::Ask, Some(answer)) => answer,
                    (d, _) => (d, reason),
                };
                match decision {
                    Decision::Allow => self.forward_call(held),
                    Decision::Deny => self.deny(held, &reason),
                    Decision::Ask => {
                        let now = Instant::now();
                        held.approval_id = approval_id;
                        held.deadline = Some(now + Duration::from_millis(hold_ms.unwrap_or(50_000)) + BACKSTOP);
                        if held.progress_token.is_some() {
                            held.next_progress = Some(now);
                        }
                        eprintln!(
                            "latch shim: {} awaits approval {}: a person must decide it in Latch",
                            held.tool,
                            held.approval_id.as_deref().unwrap_or("?"),
                        );
                        match ask_in_client {
                            // The 2026-07-28 form has no requests to the
                            // client: the question goes in the result.
                            Some(question) if held.modern && held.elicits => {
                                self.park(call_id, held, &question);
                            }
                            Some(question) if !held.modern => {
                                self.held.insert(call_id.clone(), held);
                                self.ask_in_client(&call_id, &question);
                            }
                            _ => {
                                self.held.insert(call_id, held);
                            }
                        }
                        self.on_timer();
                    }
                }
            }
            DaemonMsg::Resolved { call_id, decision, reason, .. }
                if self.resolve_result(&call_id, decision, &reason) => {}
            DaemonMsg::Resolved { call_id, approval_id: _, decision, reason } => match self.held.remove(&call_id) {
                None if self.parked_resolved(&call_id, decision, reason.clone()) => {}
                Some(mut held) => {
                    // Answered (here or elsewhere): the question in the
                    // client is withdrawn, if still open.
                    self.withdraw(held.elicit.take());
                    match decision {
                        Decision::Allow => self.forward_call(held),
                        Decision::Ask => self.awaiting(call_id, held),
                        Decision::Deny => self.deny(held, &reason),
                    }
                }
                None => {
                    if !self.deciding.is_empty() {
                        self.early.insert(call_id, (decision, reason));
                    } else if decision == Decision::Allow {
                        // Nobody holds this call any more: give the grant back.
                        self.report(&ClientMsg::HoldExpired { call_id });
                    }
                }
            },
            DaemonMsg::Error { req, message } => {
                // Fail closed: a call the daemon could not decide never runs.
                if let Some(held) = self.deciding.remove(&req)
                    && !held.line.is_empty()
                {
                    self.deny(held, &format!("the Latch daemon could not decide the call ({message})"));
                }
            }
            DaemonMsg::Lease(lease) => self.on_lease(lease),
            DaemonMsg::LeaseAck { upto } => {
                if let Some(l) = self.lease.as_mut() {
                    l.acked(upto);
                }
            }
            DaemonMsg::ResultsMode { mode } => self.results_mode = Some(crate::results::mode_of(&mode)),
            DaemonMsg::ResultHeld { key, hold_id, decision, approval_id, reason, hold_ms } => {
                self.on_result_held(&key, hold_id, decision, approval_id, &reason, hold_ms);
            }
            _ => {}
        }
    }

    pub(super) fn forward_call(&mut self, held: Held) {
        if let (Some(token), true) = (&held.progress_token, held.progress > 0) {
            self.shifts.insert(
                token.get().to_owned(),
                ProgressShift { request_id: held.id.clone(), offset: held.progress as f64 },
            );
        }
        let call_id = held.call_id.clone().unwrap_or_default();
        let kind = Kind::Call { call_id, tool: held.tool.clone() };
        self.inflight.insert(held.id.clone(), InFlight { kind, start: Instant::now() });
        self.send_server(held.line);
    }

    pub(super) fn deny(&mut self, held: Held, reason: &str) {
        let text = format!("Latch blocked {}: {reason}", held.tool);
        let verdict = json!({
            "decision": "deny",
            "class": held.class,
            "reason": reason,
            "call_id": held.call_id,
            "approval_id": held.approval_id,
        });
        self.send_client(blocked(&held.id, text, verdict, held.modern));
    }
}

/// `args` (a range of `raw`) once `edit` is applied to `raw`. The edit
/// changes `params.requestState`, never inside the arguments; should it
/// overlap them, the arguments are found again in the edited line.
fn shifted(args: Range<usize>, edit: &Edit, raw: &[u8]) -> Option<Range<usize>> {
    if edit.range.end <= args.start {
        let at = args.start - edit.range.len() + edit.with.len();
        return Some(at..at + args.len());
    }
    if edit.range.start >= args.end {
        return Some(args);
    }
    let edited = edit.apply(raw);
    match envelope::parse(&edited).ok()? {
        Line::One(env) => range_in(&edited, env.params?.arguments?.get()),
        Line::Batch(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: &[u8], part: &str) -> Range<usize> {
        let start = std::str::from_utf8(line).unwrap().find(part).unwrap();
        start..start + part.len()
    }

    #[test]
    fn the_arguments_are_found_again_after_an_edit_of_the_state() {
        let raw = br#"{"params":{"requestState":"abc","arguments":{"a":1},"x":"yz"}}"#;
        let args = at(raw, r#"{"a":1}"#);
        for with in [&b"\"a-much-longer-state\""[..], b"\"\""] {
            // Before the arguments.
            let edit = Edit { range: at(raw, r#""abc""#), with: with.to_vec() };
            let edited = edit.apply(raw);
            assert_eq!(shifted(args.clone(), &edit, raw), Some(at(&edited, r#"{"a":1}"#)));
            // After them.
            let edit = Edit { range: at(raw, r#""yz""#), with: with.to_vec() };
            assert_eq!(shifted(args.clone(), &edit, raw), Some(args.clone()));
        }
        // Overlapping them (not an edit the shim makes): read again.
        let edit = Edit { range: args.start + 5..args.start + 6, with: b"22".to_vec() };
        let edited = edit.apply(raw);
        let moved = shifted(args.clone(), &edit, raw).unwrap();
        assert_eq!(&edited[moved], br#"{"a":22}"#);
    }
}
