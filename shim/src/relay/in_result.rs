//! Asking the person inside a 2026-07-28 client: the question travels in
//! an `input_required` result, the answer in the client's retry.
//!
//! The 2026-07-28 form has no requests to the client. A held call of a
//! named client that declared form elicitation (in the request's
//! `clientCapabilities`) is answered at once with `resultType:
//! "input_required"`, carrying Latch's question (the same once/deny
//! elicitation as [`super::elicit`]) and a Latch-issued, single-use
//! `requestState`. The call is parked: it never reached the server, and
//! its approval stays pending in the daemon. The client re-sends the call
//! under a new id with `inputResponses` and that state; the answer goes to
//! the daemon as an in-client answer for the parked call, and the retry
//! becomes the held call, released or blocked by the daemon's verdict.
//!
//! A retry counts only with a state this shim issued, not yet used, for
//! the same tool and arguments; anything else is a new call, decided (and
//! asked) as such. What reaches the server is the original call, under
//! the retry's id: Latch's state and answer never do.

use std::collections::HashMap;
use std::time::Instant;

use latch_proto::{ClientMsg, Decision, Outcome};
use serde_json::{Value, json};

use super::{Held, META_KEY, Relay, elicit};
use crate::continuation;
use crate::envelope::{self, Line};
use crate::splice::{Edit, range_in};

/// The shim's states start with this (the server's own continuations use
/// another prefix).
const PREFIX: &str = "latch-approval:";
/// The key of Latch's question in `inputRequests` and of its answer in
/// `inputResponses`.
const KEY: &str = "latch-approval";

/// A held call answered with Latch's question, until its retry.
pub(super) struct Parked {
    call_id: String,
    held: Held,
    /// The approval was decided elsewhere while the question was open.
    decided: Option<(Decision, String)>,
}

/// A retry that brought back a parked call's state.
pub(super) struct Resumed {
    parked: Parked,
    id: String,
    progress_token: Option<Box<serde_json::value::RawValue>>,
    answer: Option<bool>,
}

/// Parked calls by their state.
pub(super) type ParkedCalls = HashMap<String, Parked>;

/// Name and arguments of a `tools/call` line, parsed.
fn call_of(line: &[u8]) -> Option<(Value, Value)> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let params = v.get("params")?;
    let name = params.get("name")?.clone();
    let args = params.get("arguments").cloned().unwrap_or_else(|| json!({}));
    Some((name, args))
}

/// `line` (one request) with its id replaced by `id` (raw JSON).
fn with_id(line: &[u8], id: &str) -> Option<Vec<u8>> {
    let range = match envelope::parse(line).ok()? {
        Line::One(env) => range_in(line, env.id?.get())?,
        Line::Batch(_) => return None,
    };
    Some(Edit { range, with: id.as_bytes().to_vec() }.apply(line))
}

impl Relay {
    /// Answers held call `call_id` with Latch's question in an
    /// `input_required` result and parks it until the client's retry.
    pub(super) fn park(&mut self, call_id: String, mut held: Held, question: &str) {
        let Some(hex) = continuation::random_hex() else {
            // No state to issue: the call waits in Latch as any other.
            self.held.insert(call_id, held);
            return;
        };
        let state = format!("{PREFIX}{hex}");
        let verdict = json!({
            "decision": "ask",
            "status": "pending",
            "class": held.class,
            "approval_id": held.approval_id,
            "call_id": call_id,
        });
        let result = json!({
            "resultType": "input_required",
            "inputRequests": {KEY: {"method": "elicitation/create", "params": elicit::params(question)}},
            "requestState": state,
            "_meta": {META_KEY: verdict},
        });
        let mut line = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#, held.id).into_bytes();
        line.push(b'\n');
        held.next_progress = None;
        self.parked.insert(state, Parked { call_id, held, decided: None });
        self.send_client(line);
    }

    /// A `tools/call` of `tool` carrying `state` (raw): the parked call it
    /// continues, when it brings back a state this shim issued, for the
    /// same tool and arguments. The state is used up either way.
    pub(super) fn resume_of(&mut self, tool: &str, state: &str, base: &[u8], id: &str) -> Option<Box<Resumed>> {
        let state: String = serde_json::from_str(state).ok()?;
        if !state.starts_with(PREFIX) {
            return None;
        }
        let parked = self.parked.remove(&state)?;
        let same = parked.held.tool == tool && call_of(base).is_some_and(|c| call_of(&parked.held.line) == Some(c));
        if !same {
            // Its only way back is spent: the approval is withdrawn.
            eprintln!("latch shim: a retry changed the call it continues; decided as a new call");
            self.report(&ClientMsg::Cancelled { call_id: parked.call_id });
            return None;
        }
        let retry: Option<Value> = serde_json::from_slice(base).ok();
        let answer =
            retry.as_ref().and_then(|v| v.get("params")?.get("inputResponses")?.get(KEY)).and_then(elicit::choice);
        let progress_token = retry
            .as_ref()
            .and_then(|v| v.get("params")?.get("_meta")?.get("progressToken"))
            .and_then(|t| serde_json::value::to_raw_value(t).ok());
        Some(Box::new(Resumed { parked, id: id.to_owned(), progress_token, answer }))
    }

    /// The retry of a parked call: the person's answer goes to the daemon
    /// and the retry waits for its verdict (or takes the one already given).
    pub(super) fn resume(&mut self, r: Resumed) {
        let Resumed { parked: Parked { call_id, mut held, decided }, id, progress_token, answer } = r;
        let Some(line) = with_id(&held.line, &id) else {
            self.report(&ClientMsg::Cancelled { call_id });
            self.deny(held, "the call could not be continued");
            return;
        };
        held.id = id;
        held.line = line;
        held.progress_token = progress_token;
        held.progress = 0;
        match decided {
            Some((Decision::Allow, _)) => self.forward_call(held),
            Some((_, reason)) => self.deny(held, &reason),
            None => {
                match answer {
                    Some(approve) => {
                        self.send_daemon(&ClientMsg::InClientAnswer { call_id: call_id.clone(), approve });
                    }
                    None => {
                        eprintln!("latch shim: the client gave no answer to the approval question; it waits in Latch")
                    }
                }
                if held.progress_token.is_some() {
                    held.next_progress = Some(Instant::now());
                }
                self.held.insert(call_id, held);
                self.on_timer();
            }
        }
    }

    /// The daemon's verdict for a parked call: kept for its retry. False
    /// when `call_id` is not parked.
    pub(super) fn parked_resolved(&mut self, call_id: &str, decision: Decision, reason: String) -> bool {
        let Some(state) = self.parked.iter().find(|(_, p)| p.call_id == call_id).map(|(s, _)| s.clone()) else {
            return false;
        };
        if decision == Decision::Ask {
            // The hold ended in the daemon; the approval stays pending
            // there and the retry is decided anew.
            self.parked.remove(&state);
            self.report(&ClientMsg::Finished { call_id: call_id.to_owned(), outcome: Outcome::Blocked, latency_us: 0 });
        } else if let Some(p) = self.parked.get_mut(&state) {
            p.decided = Some((decision, reason));
        }
        true
    }

    /// Parked calls past their hold: the daemon is told, and a grant given
    /// for them goes back.
    pub(super) fn expire_parked(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .parked
            .iter()
            .filter(|(_, p)| p.held.deadline.is_some_and(|d| d <= now))
            .map(|(s, _)| s.clone())
            .collect();
        for state in expired {
            if let Some(p) = self.parked.remove(&state) {
                self.report(&ClientMsg::HoldExpired { call_id: p.call_id });
            }
        }
    }

    /// The earliest deadline of a parked call.
    pub(super) fn parked_wake(&self) -> Option<Instant> {
        self.parked.values().filter_map(|p| p.held.deadline).min()
    }

    /// No retry can come any more (the client or the server went away):
    /// the daemon withdraws the approvals.
    pub(super) fn drop_parked(&mut self, tell_daemon: bool) {
        for (_, p) in self.parked.drain().collect::<Vec<_>>() {
            if tell_daemon {
                self.report(&ClientMsg::Cancelled { call_id: p.call_id });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_call_goes_on_under_the_retrys_id() {
        let line = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}}"#;
        let out = with_id(line, r#""r-9""#).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], "r-9");
        assert_eq!(v["params"]["arguments"]["a"], 1);
    }

    #[test]
    fn name_and_arguments_are_compared_as_values() {
        let a = br#"{"id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1,"b":2}}}"#;
        let b = br#"{"id":2,"method":"tools/call","params":{"arguments":{"b":2,"a":1},"name":"t","requestState":"x"}}"#;
        let c = br#"{"id":2,"method":"tools/call","params":{"arguments":{"b":3,"a":1},"name":"t"}}"#;
        assert_eq!(call_of(a), call_of(b));
        assert_ne!(call_of(a), call_of(c));
    }
}
