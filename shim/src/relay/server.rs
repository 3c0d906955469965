//! The server's side: lines from the MCP server are relayed, and what
//! answers the client's requests is learnt from them.

use latch_proto::{ClientMsg, Outcome};
use serde_json::Value;
use serde_json::value::RawValue;

use super::reply::rpc_error;
use super::results::Target;
use super::{Kind, Relay};
use crate::continuation;
use crate::envelope::{self, Envelope};
use crate::peek::{self, Peeked};
use crate::progress;

impl Relay {
    pub(super) fn on_server_line(&mut self, line: Vec<u8>) {
        match peek::server_line(&line) {
            Ok(Peeked::One(env)) => {
                if let (Some(shift), Some(params)) = (self.progress_shift(&env), env.params.as_ref()) {
                    let shifted = progress::shift(&line, params, shift);
                    self.send_client(shifted);
                    return;
                }
                let edit = self.inspect_server(&env, &line);
                let line = match edit {
                    Some(edit) => edit.apply(&line),
                    None => line,
                };
                // A result that reaches the model is checked first.
                match self.scan_next.take() {
                    Some(target) => self.pass_result(target, line),
                    None => self.send_client(line),
                }
                return;
            }
            Ok(Peeked::Batch(items)) => {
                // Batches left the protocol before input_required came:
                // nothing in one is rewritten, except a result withheld.
                let mut out: Vec<Vec<u8>> = Vec::with_capacity(items.len());
                let mut changed = false;
                for item in &items {
                    let bytes = item.get().as_bytes();
                    if let Ok(env) = envelope::parse_element(item) {
                        self.inspect_server(&env, &[]);
                    }
                    match self.scan_next.take().and_then(|t| self.pass_batch_item(t, bytes)) {
                        Some(replaced) => {
                            changed = true;
                            out.push(replaced);
                        }
                        None => out.push(bytes.to_vec()),
                    }
                }
                if changed {
                    let mut joined = b"[".to_vec();
                    joined.extend_from_slice(&out.join(&b","[..]));
                    joined.extend_from_slice(b"]\n");
                    self.send_client(joined);
                    return;
                }
            }
            Err(refused) => {
                let id = refused.id.map(|id| id.get().to_owned());
                self.on_server_refused(refused.error, id);
                return;
            }
        }
        self.send_client(line);
    }

    /// A server line whose envelope cannot be read safely is not relayed:
    /// the shim and the client could disagree about what it answers. A
    /// client request it named (once, before the point it was refused) gets
    /// an error in its place.
    fn on_server_refused(&mut self, error: peek::PeekError, id: Option<String>) {
        if line_was_blank(&error) {
            return;
        }
        eprintln!("latch shim: the server sent a line that is not a readable JSON-RPC message ({error}); not relayed");
        let Some(f) = id.as_deref().and_then(|id| self.inflight.remove(id)) else { return };
        let id = id.unwrap_or_default();
        if let Kind::Call { call_id, .. } = f.kind {
            let latency_us = f.start.elapsed().as_micros() as u64;
            self.report(&ClientMsg::Finished { call_id, outcome: Outcome::RpcError, latency_us });
        }
        let message = format!("Latch refused the MCP server's answer: {error}");
        self.send_client(rpc_error(&id, -32603, &message));
    }

    /// The shift for a server's progress notification on a token the shim
    /// used while holding the call.
    pub(super) fn progress_shift(&self, env: &Envelope<'_>) -> Option<f64> {
        if self.shifts.is_empty() || env.id.is_some() {
            return None;
        }
        let token = env.params.as_ref()?.progress_token?;
        let shift = self.shifts.get(token.get())?;
        (env.method().as_deref() == Some("notifications/progress")).then_some(shift.offset)
    }

    /// Learns from a server message; for an `input_required` result of a
    /// decided call, the edit that puts a continuation token in it (`line`
    /// is the buffer `env` was read from; empty: no edit).
    pub(super) fn inspect_server(&mut self, env: &Envelope<'_>, line: &[u8]) -> Option<continuation::Edit> {
        if !env.is_response() {
            if let (Some(id), Some(method)) = (env.id, env.method()) {
                self.roots.server_request(id.get(), &method);
            }
            return None;
        }
        let id = env.id?;
        if !self.shifts.is_empty() {
            self.shifts.retain(|_, s| s.request_id != id.get());
        }
        let f = self.inflight.remove(id.get())?;
        match f.kind {
            Kind::Call { call_id, tool } => {
                let latency_us = f.start.elapsed().as_micros() as u64;
                let outcome = match &env.result {
                    _ if env.has_error => Outcome::RpcError,
                    Some(r) if r.is_error => Outcome::IsError,
                    _ => Outcome::Ok,
                };
                // Its result is checked before the outcome is reported
                // ([`super::results`]); an error has none.
                if env.result.is_some() && !env.has_error {
                    let modern = env.result.as_ref().is_some_and(|r| r.result_type.is_some());
                    let finished = (!call_id.is_empty()).then_some((outcome, latency_us));
                    self.scan_next = Some(Target {
                        call_id: (!call_id.is_empty()).then(|| call_id.clone()),
                        method: "tools/call",
                        subject: tool.clone(),
                        request_id: id.get().to_owned(),
                        finished,
                        modern,
                    });
                }
                if let Some(r) = env.result.as_ref().filter(|r| r.input_required() && !line.is_empty()) {
                    let state = r.request_state.map(RawValue::get);
                    let result_type = r.result_type.map(RawValue::get).unwrap_or_default();
                    let edit = self.continuations.issue(&tool, line, state, result_type);
                    if edit.is_none() {
                        eprintln!(
                            "latch shim: could not mark an input_required result; its retry will be decided anew"
                        );
                    }
                    return edit;
                }
                if self.scan_next.is_none() && !call_id.is_empty() {
                    self.report(&ClientMsg::Finished { call_id, outcome, latency_us });
                }
            }
            Kind::Read { uri } => {
                if env.result.is_some() && !env.has_error {
                    self.scan_next = Some(Target {
                        call_id: None,
                        method: "resources/read",
                        subject: uri,
                        request_id: id.get().to_owned(),
                        finished: None,
                        modern: false,
                    });
                }
            }
            Kind::ToolsList { first_page } => {
                if let Some(tools) = env.result.as_ref().and_then(|r| r.tools) {
                    if first_page {
                        self.tool_pages.clear();
                        self.tool_defs.clear();
                    }
                    if let Some(l) = self.lease.as_mut() {
                        l.tools_listed();
                    }
                    self.tool_pages.push((tools.get().to_owned(), first_page));
                    if let Ok(Value::Array(defs)) = serde_json::from_str::<Value>(tools.get()) {
                        for d in defs {
                            if let Some(name) = d.get("name").and_then(Value::as_str) {
                                self.tool_defs.insert(name.to_owned(), d.clone());
                            }
                        }
                    }
                    if let Ok(tools) = RawValue::from_string(tools.get().to_owned()) {
                        self.send_daemon(&ClientMsg::ToolsListed { tools, first_page });
                    }
                }
            }
            Kind::Other => {}
        }
        None
    }
}

/// A blank line (nothing but whitespace) is dropped without a word.
fn line_was_blank(error: &peek::PeekError) -> bool {
    matches!(error, peek::PeekError::Structure(peek::BLANK))
}
