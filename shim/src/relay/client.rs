//! The client's side: each line the agent's client sends is validated and
//! either forwarded, answered, dropped, or held for a decision.

use std::time::Instant;

use latch_proto::{ClientInfo, ClientMsg, Outcome};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::reply::{refusal, rpc_error};
use super::{Held, InFlight, Kind, Relay};
use crate::envelope::{self, Envelope, Line};
use crate::fold;
use crate::splice::range_in;

impl Relay {
    pub(super) fn on_client_oversized(&mut self, n: usize) {
        let reason = format!("message of {n} bytes exceeds the shim's limit of {} bytes", self.opts.max_message);
        eprintln!("latch shim: refused a {reason}");
        self.send_client(rpc_error("null", -32600, &format!("Latch refused the message: {reason}")));
        self.report(&ClientMsg::Malformed { from: "client".into(), reason, bytes: n as u64 });
    }

    pub(super) fn on_client_line(&mut self, line: Vec<u8>) {
        let parsed = match envelope::parse(&line) {
            Ok(p) => p,
            Err(e) => {
                let reason = e.to_string();
                eprintln!("latch shim: refused a line from the client: {reason}");
                self.send_client(rpc_error("null", e.code(), &refusal(&e)));
                self.report(&ClientMsg::Malformed { from: "client".into(), reason, bytes: line.len() as u64 });
                return;
            }
        };
        match parsed {
            Line::One(env) => {
                if let Some(kind) = self.inspect_client(&env, &line) {
                    match kind {
                        ClientAction::Forward => {
                            self.send_server(line);
                        }
                        ClientAction::Decide(held) => self.decide(held, line),
                        ClientAction::Resume(r) => self.resume(*r),
                        ClientAction::Drop => {}
                        ClientAction::Reply(frame) => self.send_client(frame),
                    }
                }
            }
            Line::Batch(items) => {
                // Each tools/call of an old-style batch is decided on its
                // own; the rest travel on as one batch, bytes untouched.
                let mut rest: Vec<&RawValue> = Vec::new();
                let mut calls = Vec::new();
                let mut replies = Vec::new();
                let mut resumed = Vec::new();
                let mut untouched = true;
                for item in &items {
                    match envelope::parse_element(item) {
                        Ok(env) => match self.inspect_client(&env, item.get().as_bytes()) {
                            Some(ClientAction::Forward) | None => rest.push(item),
                            Some(ClientAction::Decide(h)) => {
                                untouched = false;
                                calls.push((h, item.get().as_bytes().to_vec()));
                            }
                            Some(ClientAction::Resume(r)) => {
                                untouched = false;
                                resumed.push(r);
                            }
                            Some(ClientAction::Drop) => untouched = false,
                            Some(ClientAction::Reply(f)) => {
                                untouched = false;
                                replies.push(f);
                            }
                        },
                        Err(e) => {
                            untouched = false;
                            replies.push(rpc_error("null", e.code(), &format!("{} (in a batch element)", refusal(&e))));
                            let reason = format!("batch element: {e}");
                            self.report(&ClientMsg::Malformed {
                                from: "client".into(),
                                reason,
                                bytes: line.len() as u64,
                            });
                        }
                    }
                }
                if untouched {
                    drop(items);
                    self.send_server(line);
                } else {
                    if !rest.is_empty() {
                        let mut out = Vec::with_capacity(line.len());
                        out.push(b'[');
                        for (i, r) in rest.iter().enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            out.extend_from_slice(r.get().as_bytes());
                        }
                        out.push(b']');
                        self.send_server(out);
                    }
                    drop(items);
                    for f in replies {
                        self.send_client(f);
                    }
                    for (held, raw) in calls {
                        self.decide(held, raw);
                    }
                    for r in resumed {
                        self.resume(*r);
                    }
                }
            }
        }
    }

    /// Decides what to do with one client message. `None` when it is not
    /// something the shim has an opinion on (forward it).
    /// `base` is the buffer `env` was read from (the line, or the batch
    /// element).
    pub(super) fn inspect_client(&mut self, env: &Envelope<'_>, base: &[u8]) -> Option<ClientAction> {
        let method = env.method();
        let Some(method) = method else {
            // An answer to the shim's own question in the client is Latch's.
            if let Some(id) = env.id
                && self.on_elicit_reply(id.get(), base)
            {
                return Some(ClientAction::Drop);
            }
            // A response to one of the server's requests, or junk the server
            // will judge: relayed untouched. An answer to `roots/list`
            // tells the daemon the workspace.
            if let Some(roots) = env.id.and_then(|id| self.roots.client_response(id.get(), base)) {
                self.send_daemon(&ClientMsg::ClientRoots { roots });
            }
            return Some(ClientAction::Forward);
        };
        match (env.id, method.as_str()) {
            (Some(id), "tools/call") => {
                let id = id.get().to_owned();
                let params = env.params.as_ref();
                let name = params.and_then(|p| p.name).and_then(|n| serde_json::from_str::<String>(n.get()).ok());
                // `_meta` is small; an odd one is ignored, not fatal.
                let meta: Meta =
                    params.and_then(|p| p.meta).and_then(|m| serde_json::from_str(m.get()).ok()).unwrap_or_default();
                let (Some(params), Some(name)) = (params, name) else {
                    return Some(ClientAction::Reply(rpc_error(
                        &id,
                        -32602,
                        "Invalid params: tools/call needs a string params.name (Latch does not forward calls it cannot read)",
                    )));
                };
                if let Some(Err(why)) = params.arguments.map(|a| fold::check_arguments(a.get())) {
                    eprintln!("latch shim: refused a tools/call of {name}: {why}");
                    let message = format!("Invalid Request (Latch refused it): {why}");
                    self.report(&ClientMsg::Malformed { from: "client".into(), reason: why, bytes: 0 });
                    return Some(ClientAction::Reply(rpc_error(&id, -32600, &message)));
                }
                // Where the arguments are: what the daemon decides on is
                // cut from the very bytes the server will get.
                let args = match params.arguments.map(|a| range_in(base, a.get())) {
                    None => None,
                    Some(Some(range)) => Some(range),
                    Some(None) => {
                        return Some(ClientAction::Reply(rpc_error(&id, -32603, "Latch could not read the call")));
                    }
                };
                let modern = meta.protocol_version.is_some();
                // The retry of a call parked with Latch's question in it.
                if let Some(resumed) = params.request_state.and_then(|st| self.resume_of(&name, st.get(), base, &id)) {
                    return Some(ClientAction::Resume(resumed));
                }
                let elicits =
                    modern && super::elicit::offers_form(meta.client_capabilities.as_deref().map(RawValue::get));
                // Only a state this shim issued makes a retry; any other
                // `requestState` is a field of a new call.
                let state_edit = params.request_state.and_then(|st| self.continuations.redeem(&name, base, st.get()));
                if let (None, Some(ci)) = (&self.client, meta.client_info) {
                    self.set_client(ClientInfo {
                        name: ci.name,
                        version: ci.version,
                        protocol_version: meta.protocol_version.unwrap_or_default(),
                    });
                }
                Some(ClientAction::Decide(Box::new(Held {
                    id,
                    line: Vec::new(),
                    tool: name,
                    progress_token: meta.progress_token,
                    call_id: None,
                    approval_id: None,
                    class: String::new(),
                    deadline: None,
                    next_progress: None,
                    progress: 0,
                    args,
                    retry: state_edit.is_some(),
                    state_edit,
                    modern,
                    elicit: None,
                    elicits,
                })))
            }
            (Some(id), m) => {
                let kind = match m {
                    "tools/list" => Kind::ToolsList { first_page: env.params.as_ref().is_none_or(|p| !p.cursor) },
                    "initialize" => {
                        let params = env.params.as_ref();
                        if let Some(ci) = params
                            .and_then(|p| p.client_info)
                            .and_then(|c| serde_json::from_str::<WireClientInfo>(c.get()).ok())
                        {
                            let protocol_version = params
                                .and_then(|p| p.protocol_version)
                                .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
                                .unwrap_or_default();
                            self.set_client(ClientInfo { name: ci.name, version: ci.version, protocol_version });
                        }
                        let caps = params.and_then(|p| p.capabilities).map(|c| c.get());
                        self.elicit_prefix = super::elicit::offers_form(caps).then(super::elicit::id_prefix).flatten();
                        Kind::Other
                    }
                    "resources/read" => Kind::Read { uri: read_uri(base) },
                    _ => Kind::Other,
                };
                self.inflight.insert(id.get().to_owned(), InFlight { kind, start: Instant::now() });
                Some(ClientAction::Forward)
            }
            (None, "tools/call") => {
                // A call without an id is a notification: no answer can be
                // sent and no outcome matched, so it is never decided or run.
                let reason = "a tools/call without an id (a notification) is never forwarded".to_owned();
                eprintln!("latch shim: refused {reason}");
                self.report(&ClientMsg::Malformed { from: "client".into(), reason, bytes: 0 });
                Some(ClientAction::Drop)
            }
            (None, "notifications/roots/list_changed") => {
                if self.roots.changed() {
                    self.send_daemon(&ClientMsg::ClientRoots { roots: None });
                }
                Some(ClientAction::Forward)
            }
            (None, "notifications/cancelled") => {
                let request_id = env.params.as_ref().and_then(|p| p.request_id).map(|r| r.get().to_owned());
                match request_id {
                    Some(rid) if let Some(elicit) = self.cancel_held(&rid) => {
                        // The question about it in the client goes too.
                        match self.withdrawal(elicit) {
                            Some(line) => Some(ClientAction::Reply(line)),
                            None => Some(ClientAction::Drop),
                        }
                    }
                    Some(rid) => {
                        if let Some(f) = self.inflight.remove(&rid)
                            && let Kind::Call { call_id, .. } = f.kind
                        {
                            self.report(&ClientMsg::Finished {
                                call_id,
                                outcome: Outcome::Cancelled,
                                latency_us: f.start.elapsed().as_micros() as u64,
                            });
                        }
                        Some(ClientAction::Forward)
                    }
                    None => Some(ClientAction::Forward),
                }
            }
            _ => Some(ClientAction::Forward),
        }
    }

    pub(super) fn set_client(&mut self, info: ClientInfo) {
        self.send_daemon(&ClientMsg::Client { info: info.clone() });
        self.client = Some(info);
    }

    /// A held call was cancelled by the client: it never runs. `None` when
    /// no call of that id waits here; else the id of the question asked
    /// about it in the client, if one is open.
    pub(super) fn cancel_held(&mut self, request_id: &str) -> Option<Option<String>> {
        if let Some(call_id) = self.held.iter().find(|(_, h)| h.id == request_id).map(|(k, _)| k.clone()) {
            let elicit = self.held.remove(&call_id).and_then(|h| h.elicit);
            self.report(&ClientMsg::Cancelled { call_id });
            return Some(elicit);
        }
        if let Some(req) = self.deciding.iter().find(|(_, h)| h.id == request_id).map(|(k, _)| *k) {
            // The decision will arrive for a call nobody waits for; the
            // daemon hears of the cancellation once it has a call id.
            if let Some(h) = self.deciding.get_mut(&req) {
                h.line.clear();
            }
            return Some(None);
        }
        if let Some(i) = self.queued.iter().position(|h| h.id == request_id) {
            self.queued.remove(i);
            return Some(None);
        }
        None
    }
}

pub(super) enum ClientAction {
    Forward,
    Decide(Box<Held>),
    /// The retry of a parked call ([`super::in_result`]).
    Resume(Box<super::in_result::Resumed>),
    Drop,
    Reply(Vec<u8>),
}

#[derive(Deserialize, Default)]
pub(super) struct Meta {
    #[serde(rename = "progressToken", default)]
    progress_token: Option<Box<RawValue>>,
    #[serde(rename = "io.modelcontextprotocol/clientInfo", default)]
    client_info: Option<WireClientInfo>,
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", default)]
    protocol_version: Option<String>,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities", default)]
    client_capabilities: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
pub(super) struct WireClientInfo {
    name: String,
    #[serde(default)]
    version: String,
}

/// The URI a `resources/read` asks for (for the record; empty when odd).
fn read_uri(base: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Req {
        params: ReadParams,
    }
    #[derive(Deserialize)]
    struct ReadParams {
        uri: String,
    }
    serde_json::from_slice::<Req>(base).map(|r| r.params.uri).unwrap_or_default()
}
