//! The relay loop: owns every piece of the shim's state.
//!
//! Client → server: each line is validated ([`envelope`]); a `tools/call`
//! waits for the daemon's decision, everything else is forwarded untouched.
//! Server → client: forwarded untouched; responses to the client's requests
//! are matched by id (the client's id space, separate from the server's own
//! requests) to learn `tools/list` pages and each call's outcome and latency.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use latch_proto::{ClientInfo, ClientMsg, DaemonMsg, Decision, Outcome, frame};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::sleep_until;

use crate::Options;
use crate::child;
use crate::continuation::{self, Continuations};
use crate::envelope::{self, Envelope, Line};
use crate::fold;
use crate::io::{Input, read_lines, with_newline, write_frames};
use crate::link::{self, LinkEvent};
use crate::progress;
use crate::text;

/// How often a held call's client hears progress (when it sent a token).
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// The daemon ends holds; the shim's own deadline is this much later, a
/// backstop for a daemon that went silent.
const BACKSTOP: Duration = Duration::from_secs(2);
/// The `_meta` key of Latch's machine-readable verdicts.
pub const META_KEY: &str = "dev.latch/decision";

/// A `tools/call` the shim is holding: waiting for a decision, or for an
/// approval.
struct Held {
    id: String,
    line: Vec<u8>,
    tool: String,
    progress_token: Option<Box<RawValue>>,
    call_id: Option<String>,
    approval_id: Option<String>,
    class: String,
    deadline: Option<Instant>,
    next_progress: Option<Instant>,
    progress: u64,
    /// The call's arguments, raw, until the daemon has them.
    args: String,
    /// A 2026-07-28 retry: it brought back a continuation token this shim
    /// issued ([`continuation`]).
    retry: bool,
    /// For a retry: gives the server back its own `requestState`.
    state_edit: Option<continuation::Edit>,
    /// The request is in the 2026-07-28 form (per-request protocol
    /// version): results the shim writes need `resultType`.
    modern: bool,
}

enum Kind {
    Call { call_id: String, tool: String },
    ToolsList { first_page: bool },
    Other,
}

/// A client request forwarded to the server and not answered yet.
struct InFlight {
    kind: Kind,
    start: Instant,
}

/// Progress already sent on a client's token while its call was held: the
/// server's own progress for that call is shifted past it, so the client
/// sees progress only ever increase, as the protocol requires.
struct ProgressShift {
    request_id: String,
    offset: f64,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(rename = "progressToken", default)]
    progress_token: Option<Box<RawValue>>,
    #[serde(rename = "io.modelcontextprotocol/clientInfo", default)]
    client_info: Option<WireClientInfo>,
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", default)]
    protocol_version: Option<String>,
}

#[derive(Deserialize)]
struct WireClientInfo {
    name: String,
    #[serde(default)]
    version: String,
}

struct Relay {
    opts: Options,
    to_client: mpsc::Sender<Vec<u8>>,
    to_server: Option<mpsc::Sender<Vec<u8>>>,
    daemon: Option<mpsc::Sender<Vec<u8>>>,
    /// True until the first connection attempt settles.
    connecting: bool,
    next_req: u64,
    /// Sent to the daemon, waiting for its decision (by `req`).
    deciding: HashMap<u64, Held>,
    /// Decided `ask`, waiting for an answer (by call id).
    held: HashMap<String, Held>,
    /// Answers that overtook their decision (by call id).
    early: HashMap<String, (Decision, String)>,
    /// Calls queued while the first connection is made.
    queued: Vec<Held>,
    inflight: HashMap<String, InFlight>,
    client: Option<ClientInfo>,
    /// The last `tools/list` pages, replayed to a restarted daemon.
    tool_pages: Vec<(String, bool)>,
    /// Tool definitions (for offline reads).
    tool_defs: HashMap<String, Value>,
    /// Reports for the daemon (outcomes, refused lines …) kept while no
    /// daemon is connected, sent when one is.
    outbox: std::collections::VecDeque<Vec<u8>>,
    /// Outcome reports not sent yet: they ride along with the next frame
    /// to the daemon, or go on their own at `finished_due`. One write and
    /// one wake-up of the daemon instead of two per call.
    finished: Vec<u8>,
    finished_due: Option<Instant>,
    /// By progress token (raw JSON), for calls that were held.
    shifts: HashMap<String, ProgressShift>,
    /// Something that is not Latch's daemon answers at the socket (its
    /// pid and executable), until a real daemon is connected.
    impostor: Option<String>,
    /// Continuation tokens issued in `input_required` results.
    continuations: Continuations,
}

/// Most reports kept for a daemon that is not there.
const OUTBOX: usize = 4096;

/// Longest an outcome report waits for a frame to ride along with.
const FINISHED_DELAY: Duration = Duration::from_millis(3);

pub async fn run(opts: Options) -> i32 {
    let (mut server, stdin, stdout) = match child::spawn(&opts.command) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "latch shim: cannot start the MCP server `{}`: {e} — check the command after `--`",
                opts.command.join(" ")
            );
            return 127;
        }
    };

    let (client_out_tx, client_out_rx) = mpsc::channel::<Vec<u8>>(256);
    let client_writer = tokio::spawn(write_frames(crate::io::stdout(), client_out_rx));
    let (server_in_tx, server_in_rx) = mpsc::channel::<Vec<u8>>(256);
    tokio::spawn(write_frames(stdin, server_in_rx));

    let (client_tx, mut client_rx) = mpsc::channel::<Input>(64);
    tokio::spawn(read_lines(BufReader::with_capacity(256 * 1024, crate::io::stdin()), opts.max_message, client_tx));
    let (server_tx, mut server_rx) = mpsc::channel::<Input>(64);
    tokio::spawn(read_lines(BufReader::with_capacity(256 * 1024, stdout), opts.max_message, server_tx));

    let session = format!("{}-{}", std::process::id(), crate_now_ms());
    let (link_tx, mut link_rx) = mpsc::channel::<LinkEvent>(1024);
    tokio::spawn(link::run(
        opts.paths.clone(),
        link::hello(&opts.name, &session, &opts.command),
        opts.autostart,
        link_tx,
    ));

    let mut sigs = Vec::new();
    for kind in [SignalKind::terminate(), SignalKind::interrupt(), SignalKind::hangup()] {
        match signal(kind) {
            Ok(s) => sigs.push((kind.as_raw_value(), s)),
            Err(e) => eprintln!("latch shim: cannot watch signal {}: {e}", kind.as_raw_value()),
        }
    }
    let (sig_tx, mut sig_rx) = mpsc::channel::<i32>(8);
    for (num, mut s) in sigs {
        let tx = sig_tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(num).await.is_err() {
                    break;
                }
            }
        });
    }

    let mut relay = Relay {
        opts,
        to_client: client_out_tx,
        to_server: Some(server_in_tx),
        daemon: None,
        connecting: true,
        next_req: 0,
        deciding: HashMap::new(),
        held: HashMap::new(),
        early: HashMap::new(),
        queued: Vec::new(),
        inflight: HashMap::new(),
        client: None,
        tool_pages: Vec::new(),
        tool_defs: HashMap::new(),
        outbox: std::collections::VecDeque::new(),
        finished: Vec::new(),
        finished_due: None,
        shifts: HashMap::new(),
        impostor: None,
        continuations: Continuations::default(),
    };

    let far = || Instant::now() + Duration::from_secs(3600);
    let mut client_open = true;
    let mut server_open = true;
    // After the client hangs up: when to send SIGTERM, then SIGKILL.
    let mut escalate: Option<(Instant, i32)> = None;
    let status = loop {
        let wake = relay.next_wake().unwrap_or_else(far);
        let escalate_at = escalate.map(|(t, _)| t).unwrap_or_else(far);
        tokio::select! {
            input = client_rx.recv(), if client_open => match input {
                Some(Input::Line(line)) => relay.on_client_line(line).await,
                Some(Input::Oversized(n)) => relay.on_client_oversized(n).await,
                Some(Input::Eof) | None => {
                    client_open = false;
                    relay.on_client_eof().await;
                    escalate = Some((Instant::now() + relay.opts.grace, libc::SIGTERM));
                }
            },
            input = server_rx.recv(), if server_open => match input {
                Some(Input::Line(line)) => relay.on_server_line(line).await,
                Some(Input::Oversized(n)) => {
                    eprintln!("latch shim: the server sent a message of {n} bytes, over the limit of {}; dropped", relay.opts.max_message);
                }
                Some(Input::Eof) | None => {
                    server_open = false;
                    // The server closed its stdout: it is exiting. Give it
                    // the grace period, then make sure.
                    if escalate.is_none() {
                        escalate = Some((Instant::now() + relay.opts.grace, libc::SIGTERM));
                    }
                }
            },
            status = server.wait(), if !server_open => break status,
            ev = link_rx.recv() => if let Some(ev) = ev { relay.on_link(ev).await },
            Some(sig) = sig_rx.recv() => {
                server.signal(sig);
                if escalate.is_none() {
                    escalate = Some((Instant::now() + relay.opts.grace * 2, libc::SIGKILL));
                }
            }
            _ = sleep_until(wake.into()) => relay.on_timer().await,
            _ = sleep_until(escalate_at.into()), if escalate.is_some() => {
                let (_, sig) = escalate.take().expect("checked");
                server.signal(sig);
                if sig == libc::SIGTERM {
                    escalate = Some((Instant::now() + relay.opts.grace, libc::SIGKILL));
                }
            }
        }
    };

    let code = match status {
        Ok(s) => child::exit_code(s),
        Err(e) => {
            eprintln!("latch shim: lost the MCP server: {e}");
            70
        }
    };
    // Make sure nothing of the server's group survives it.
    server.signal(libc::SIGKILL);
    relay.on_server_gone(code).await;
    // Let the link write the last reports before the runtime goes away.
    if let Some(tx) = relay.daemon.take() {
        let until = Instant::now() + Duration::from_millis(200);
        while tx.capacity() < tx.max_capacity() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::task::yield_now().await;
    }
    let Relay { to_client, .. } = relay;
    drop(to_client);
    let _ = tokio::time::timeout(Duration::from_secs(5), client_writer).await;
    code
}

fn crate_now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// The error message for a line the shim refused.
fn refusal(e: &envelope::ParseError) -> String {
    match e.code() {
        -32700 => format!("Parse error: {e}"),
        _ => format!("Invalid Request (Latch refused it): {e}"),
    }
}

/// A JSON-RPC error response.
fn rpc_error(id: &str, code: i32, message: &str) -> Vec<u8> {
    let mut out =
        format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{}}}"#, json!({"code": code, "message": message})).into_bytes();
    out.push(b'\n');
    out
}

/// A tool result with `isError: true`, Latch's verdict in `_meta`. In the
/// 2026-07-28 form a result also says it is complete.
fn blocked(id: &str, text: String, verdict: Value, modern: bool) -> Vec<u8> {
    let mut result = json!({
        "content": [{"type": "text", "text": text}],
        "isError": true,
        "_meta": {META_KEY: verdict},
    });
    if modern {
        result["resultType"] = json!("complete");
    }
    let mut out = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes();
    out.push(b'\n');
    out
}

impl Relay {
    async fn send_client(&self, frame: Vec<u8>) {
        let _ = self.to_client.send(frame).await;
    }

    async fn send_server(&mut self, frame: Vec<u8>) -> bool {
        match &self.to_server {
            Some(tx) => tx.send(with_newline(frame)).await.is_ok(),
            None => false,
        }
    }

    /// A report the daemon should get eventually: sent now, or kept until
    /// a daemon is connected.
    fn report(&mut self, msg: &ClientMsg) {
        if self.daemon.is_some() && matches!(msg, ClientMsg::Finished { .. }) {
            self.finished.extend_from_slice(&frame::encode(msg));
            self.finished_due.get_or_insert_with(|| Instant::now() + FINISHED_DELAY);
            return;
        }
        if self.daemon.is_some() && self.send_daemon(msg) {
            return;
        }
        if self.outbox.len() == OUTBOX {
            self.outbox.pop_front();
        }
        self.outbox.push_back(frame::encode(msg));
    }

    /// Sends to the daemon now; false when no daemon is connected.
    fn send_daemon(&mut self, msg: &ClientMsg) -> bool {
        self.send_frames(frame::encode(msg))
    }

    /// Sends the outcome reports that are due (or all, at the end).
    fn flush_finished(&mut self) {
        if !self.finished.is_empty() {
            self.send_frames(Vec::new());
        }
    }

    /// Writes encoded frames to the daemon, behind the outcome reports still
    /// waiting; false when no daemon took them. Reports that could not be
    /// sent are kept for the next daemon.
    fn send_frames(&mut self, frame: Vec<u8>) -> bool {
        self.finished_due = None;
        let reports = self.finished.len();
        let frame = if reports == 0 {
            frame
        } else {
            let mut out = std::mem::take(&mut self.finished);
            out.extend_from_slice(&frame);
            out
        };
        let Some(tx) = &self.daemon else {
            if reports > 0 {
                self.outbox.push_back(frame[..reports].to_vec());
            }
            return false;
        };
        let sent = tx.try_send(frame);
        if let Err(mpsc::error::TrySendError::Full(f) | mpsc::error::TrySendError::Closed(f)) = &sent
            && reports > 0
        {
            self.outbox.push_back(f[..reports].to_vec());
        }
        match sent {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                eprintln!("latch shim: the daemon is not keeping up; message dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.daemon = None;
                false
            }
        }
    }

    async fn on_client_oversized(&mut self, n: usize) {
        let reason = format!("message of {n} bytes exceeds the shim's limit of {} bytes", self.opts.max_message);
        eprintln!("latch shim: refused a {reason}");
        self.send_client(rpc_error("null", -32600, &format!("Latch refused the message: {reason}"))).await;
        self.report(&ClientMsg::Malformed { from: "client".into(), reason, bytes: n as u64 });
    }

    async fn on_client_line(&mut self, line: Vec<u8>) {
        let parsed = match envelope::parse(&line) {
            Ok(p) => p,
            Err(e) => {
                let reason = e.to_string();
                eprintln!("latch shim: refused a line from the client: {reason}");
                self.send_client(rpc_error("null", e.code(), &refusal(&e))).await;
                self.report(&ClientMsg::Malformed { from: "client".into(), reason, bytes: line.len() as u64 });
                return;
            }
        };
        match parsed {
            Line::One(env) => {
                if let Some(kind) = self.inspect_client(&env, &line) {
                    match kind {
                        ClientAction::Forward => {
                            self.send_server(line).await;
                        }
                        ClientAction::Decide(held) => self.decide(held, line).await,
                        ClientAction::Drop => {}
                        ClientAction::Reply(frame) => self.send_client(frame).await,
                    }
                }
            }
            Line::Batch(items) => {
                // Each tools/call of an old-style batch is decided on its
                // own; the rest travel on as one batch, bytes untouched.
                let mut rest: Vec<&RawValue> = Vec::new();
                let mut calls = Vec::new();
                let mut replies = Vec::new();
                let mut untouched = true;
                for item in &items {
                    match envelope::parse_element(item) {
                        Ok(env) => match self.inspect_client(&env, item.get().as_bytes()) {
                            Some(ClientAction::Forward) | None => rest.push(item),
                            Some(ClientAction::Decide(h)) => {
                                untouched = false;
                                calls.push((h, item.get().as_bytes().to_vec()));
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
                    self.send_server(line).await;
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
                        self.send_server(out).await;
                    }
                    drop(items);
                    for f in replies {
                        self.send_client(f).await;
                    }
                    for (held, raw) in calls {
                        self.decide(held, raw).await;
                    }
                }
            }
        }
    }

    /// Decides what to do with one client message. `None` when it is not
    /// something the shim has an opinion on (forward it).
    /// `base` is the buffer `env` was read from (the line, or the batch
    /// element).
    fn inspect_client(&mut self, env: &Envelope<'_>, base: &[u8]) -> Option<ClientAction> {
        let method = env.method();
        let Some(method) = method else {
            // A response to one of the server's requests, or junk the server
            // will judge: relayed untouched.
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
                let modern = meta.protocol_version.is_some();
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
                    args: params.arguments.map(|a| a.get()).unwrap_or("{}").to_owned(),
                    retry: state_edit.is_some(),
                    state_edit,
                    modern,
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
                        Kind::Other
                    }
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
            (None, "notifications/cancelled") => {
                let request_id = env.params.as_ref().and_then(|p| p.request_id).map(|r| r.get().to_owned());
                match request_id {
                    Some(rid) if self.cancel_held(&rid) => Some(ClientAction::Drop),
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

    fn set_client(&mut self, info: ClientInfo) {
        self.send_daemon(&ClientMsg::Client { info: info.clone() });
        self.client = Some(info);
    }

    /// A held call was cancelled by the client: it never runs.
    fn cancel_held(&mut self, request_id: &str) -> bool {
        if let Some(call_id) = self.held.iter().find(|(_, h)| h.id == request_id).map(|(k, _)| k.clone()) {
            self.held.remove(&call_id);
            self.report(&ClientMsg::Cancelled { call_id });
            return true;
        }
        if let Some(req) = self.deciding.iter().find(|(_, h)| h.id == request_id).map(|(k, _)| *k) {
            // The decision will arrive for a call nobody waits for; the
            // daemon hears of the cancellation once it has a call id.
            if let Some(h) = self.deciding.get_mut(&req) {
                h.line.clear();
            }
            return true;
        }
        if let Some(i) = self.queued.iter().position(|h| h.id == request_id) {
            self.queued.remove(i);
            return true;
        }
        false
    }

    async fn decide(&mut self, mut held: Box<Held>, raw: Vec<u8>) {
        held.line = match held.state_edit.take() {
            Some(edit) => edit.apply(&raw),
            None => raw,
        };
        if self.daemon.is_none() {
            if self.connecting {
                self.queued.push(*held);
            } else {
                self.offline(*held).await;
            }
            return;
        }
        self.next_req += 1;
        let req = self.next_req;
        // The arguments are a slice of a line the envelope reader has just
        // validated: they travel raw.
        let frame = frame::encode_decide(req, &held.tool, &held.args, held.retry);
        let sent = self.send_frames(frame);
        if sent {
            held.args = String::new();
            self.deciding.insert(req, *held);
        } else {
            self.offline(*held).await;
        }
    }

    /// No daemon: nothing runs, unless the user allowed reads offline and
    /// this is one.
    async fn offline(&mut self, mut held: Held) {
        if let Some(who) = &self.impostor {
            let text = text::impostor(&held.tool, who);
            let verdict = json!({"decision": "deny", "reason": "not Latch's daemon at the socket"});
            self.send_client(blocked(&held.id, text, verdict, held.modern)).await;
            return;
        }
        if self.opts.allow_reads_offline && self.is_offline_read(&held.tool) {
            let line = std::mem::take(&mut held.line);
            self.inflight.insert(held.id.clone(), InFlight { kind: Kind::Other, start: Instant::now() });
            self.send_server(line).await;
            return;
        }
        let text = text::offline(&held.tool);
        let verdict = json!({"decision": "deny", "reason": "daemon unavailable"});
        self.send_client(blocked(&held.id, text, verdict, held.modern)).await;
    }

    /// READ by the tool's own annotations and name: `readOnlyHint: true`
    /// and a reading verb first in its name. Deliberately narrower than the
    /// daemon's classifier.
    fn is_offline_read(&self, tool: &str) -> bool {
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

    async fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Up(tx) => {
                self.daemon = Some(tx);
                self.impostor = None;
                self.connecting = false;
                while let Some(frame) = self.outbox.pop_front() {
                    if let Some(tx) = &self.daemon
                        && tx.try_send(frame).is_err()
                    {
                        break;
                    }
                }
                if let Some(info) = self.client.clone() {
                    self.send_daemon(&ClientMsg::Client { info });
                }
                for (page, first_page) in self.tool_pages.clone() {
                    if let Ok(tools) = RawValue::from_string(page) {
                        self.send_daemon(&ClientMsg::ToolsListed { tools, first_page });
                    }
                }
                for mut held in std::mem::take(&mut self.queued) {
                    let line = std::mem::take(&mut held.line);
                    self.decide(Box::new(held), line).await;
                }
            }
            LinkEvent::Down(why) => self.on_down(why).await,
            LinkEvent::Impostor(who) => {
                self.impostor = Some(who.clone());
                self.on_down(format!("not Latch's daemon: {who}")).await;
            }
            LinkEvent::Msg(msg) => self.on_daemon(*msg).await,
        }
    }

    /// No daemon to ask any more: calls waiting for one are answered as
    /// not run.
    async fn on_down(&mut self, why: String) {
        self.daemon = None;
        self.finished_due = None;
        if !self.finished.is_empty() {
            self.outbox.push_back(std::mem::take(&mut self.finished));
        }
        self.connecting = false;
        for held in std::mem::take(&mut self.queued) {
            self.offline(held).await;
        }
        let deciding: Vec<Held> = self.deciding.drain().map(|(_, h)| h).collect();
        let held: Vec<Held> = self.held.drain().map(|(_, h)| h).collect();
        if !deciding.is_empty() || !held.is_empty() {
            eprintln!(
                "latch shim: lost the daemon ({why}); {} held call(s) answered as not run",
                deciding.len() + held.len()
            );
        }
        for h in deciding.into_iter().chain(held) {
            if h.line.is_empty() {
                continue;
            }
            let text = match &self.impostor {
                Some(who) => text::impostor(&h.tool, who),
                None => text::daemon_gone(&h.tool),
            };
            let verdict = json!({"decision": "deny", "reason": "daemon unavailable", "approval_id": h.approval_id});
            self.send_client(blocked(&h.id, text, verdict, h.modern)).await;
        }
    }

    async fn on_daemon(&mut self, msg: DaemonMsg) {
        match msg {
            DaemonMsg::Decision { req, call_id, decision, class, reason, approval_id, hold_ms } => {
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
                    Decision::Allow => self.forward_call(held).await,
                    Decision::Deny => self.deny(held, &reason).await,
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
                        self.held.insert(call_id, held);
                        self.on_timer().await;
                    }
                }
            }
            DaemonMsg::Resolved { call_id, approval_id: _, decision, reason } => match self.held.remove(&call_id) {
                Some(held) => match decision {
                    Decision::Allow => self.forward_call(held).await,
                    Decision::Ask => self.awaiting(call_id, held).await,
                    Decision::Deny => self.deny(held, &reason).await,
                },
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
                    self.deny(held, &format!("the Latch daemon could not decide the call ({message})")).await;
                }
            }
            _ => {}
        }
    }

    async fn forward_call(&mut self, held: Held) {
        if let (Some(token), true) = (&held.progress_token, held.progress > 0) {
            self.shifts.insert(
                token.get().to_owned(),
                ProgressShift { request_id: held.id.clone(), offset: held.progress as f64 },
            );
        }
        let call_id = held.call_id.clone().unwrap_or_default();
        let kind = Kind::Call { call_id, tool: held.tool.clone() };
        self.inflight.insert(held.id.clone(), InFlight { kind, start: Instant::now() });
        self.send_server(held.line).await;
    }

    async fn deny(&mut self, held: Held, reason: &str) {
        let text = format!("Latch blocked {}: {reason}", held.tool);
        let verdict = json!({
            "decision": "deny",
            "class": held.class,
            "reason": reason,
            "call_id": held.call_id,
            "approval_id": held.approval_id,
        });
        self.send_client(blocked(&held.id, text, verdict, held.modern)).await;
    }

    fn next_wake(&self) -> Option<Instant> {
        self.held.values().flat_map(|h| [h.deadline, h.next_progress]).flatten().chain(self.finished_due).min()
    }

    /// Progress for held calls, and answers for those past their hold.
    async fn on_timer(&mut self) {
        let now = Instant::now();
        if self.finished_due.is_some_and(|d| d <= now) {
            self.flush_finished();
        }
        let mut expired = Vec::new();
        let mut frames = Vec::new();
        for (call_id, h) in self.held.iter_mut() {
            if h.deadline.is_some_and(|d| d <= now) {
                expired.push(call_id.clone());
                continue;
            }
            if let (Some(t), Some(token)) = (h.next_progress, &h.progress_token)
                && t <= now
            {
                h.progress += 1;
                h.next_progress = Some(now + PROGRESS_EVERY);
                let approval = h.approval_id.as_deref().unwrap_or("?");
                let mut line = format!(
                    r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{},"progress":{},"message":{}}}}}"#,
                    token.get(),
                    h.progress,
                    json!(text::waiting(approval)),
                )
                .into_bytes();
                line.push(b'\n');
                frames.push(line);
            }
        }

        for f in frames {
            self.send_client(f).await;
        }
        for call_id in expired {
            if let Some(h) = self.held.remove(&call_id) {
                // The daemon did not end this hold in time: tell it.
                self.report(&ClientMsg::HoldExpired { call_id: call_id.clone() });
                self.awaiting(call_id, h).await;
            }
        }
    }

    /// Answers a held call: it did not run, its approval is still pending,
    /// and the identical retry goes through once approved.
    async fn awaiting(&mut self, call_id: String, h: Held) {
        let approval = h.approval_id.clone().unwrap_or_default();
        let text = text::awaiting(&h.tool, &approval);
        let verdict = json!({"decision": "ask", "status": "pending", "class": h.class, "approval_id": approval, "call_id": call_id});
        self.send_client(blocked(&h.id, text, verdict, h.modern)).await;
        self.report(&ClientMsg::Finished { call_id, outcome: Outcome::Blocked, latency_us: 0 });
    }

    async fn on_server_line(&mut self, line: Vec<u8>) {
        match envelope::parse(&line) {
            Ok(Line::One(env)) => {
                if let (Some(shift), Some(params)) = (self.progress_shift(&env), env.params.as_ref()) {
                    let shifted = progress::shift(&line, params, shift);
                    self.send_client(shifted).await;
                    return;
                }
                if let Some(edit) = self.inspect_server(&env, &line) {
                    let edited = edit.apply(&line);
                    self.send_client(edited).await;
                    return;
                }
            }
            Ok(Line::Batch(items)) => {
                // Batches left the protocol before input_required came:
                // nothing in one is rewritten.
                for item in &items {
                    if let Ok(env) = envelope::parse_element(item) {
                        self.inspect_server(&env, &[]);
                    }
                }
            }
            Err(e) => eprintln!("latch shim: the server sent a line that is not JSON-RPC ({e}); relayed as is"),
        }
        self.send_client(line).await;
    }

    /// The shift for a server's progress notification on a token the shim
    /// used while holding the call.
    fn progress_shift(&self, env: &Envelope<'_>) -> Option<f64> {
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
    fn inspect_server(&mut self, env: &Envelope<'_>, line: &[u8]) -> Option<continuation::Edit> {
        if !env.is_response() {
            return None;
        }
        let id = env.id?;
        if !self.shifts.is_empty() {
            self.shifts.retain(|_, s| s.request_id != id.get());
        }
        let f = self.inflight.remove(id.get())?;
        match f.kind {
            Kind::Call { call_id, tool } => {
                if let Some(r) = env.result.as_ref().filter(|r| r.input_required() && !line.is_empty()) {
                    let state = r.request_state.map(RawValue::get);
                    let result_type = r.result_type.map(RawValue::get).unwrap_or_default();
                    let edit = self.continuations.issue(&tool, line, state, result_type);
                    if edit.is_none() {
                        eprintln!(
                            "latch shim: could not mark an input_required result; its retry will be decided anew"
                        );
                    }
                    let latency_us = f.start.elapsed().as_micros() as u64;
                    self.report(&ClientMsg::Finished { call_id, outcome: Outcome::Ok, latency_us });
                    return edit;
                }
                let outcome = match &env.result {
                    _ if env.has_error => Outcome::RpcError,
                    Some(r) if r.is_error => Outcome::IsError,
                    _ => Outcome::Ok,
                };
                let latency_us = f.start.elapsed().as_micros() as u64;
                self.report(&ClientMsg::Finished { call_id, outcome, latency_us });
            }
            Kind::ToolsList { first_page } => {
                if let Some(tools) = env.result.as_ref().and_then(|r| r.tools) {
                    if first_page {
                        self.tool_pages.clear();
                        self.tool_defs.clear();
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

    async fn on_client_eof(&mut self) {
        // Calls the client can no longer receive answers for never run.
        for (_, h) in self.held.drain().collect::<Vec<_>>() {
            if let Some(call_id) = h.call_id {
                self.report(&ClientMsg::Cancelled { call_id });
            }
        }
        for h in self.deciding.values_mut() {
            h.line.clear();
        }
        self.queued.clear();
        // Closing the server's stdin is how MCP asks it to exit.
        self.to_server = None;
    }

    /// The server exited: every request it did not answer gets an error.
    async fn on_server_gone(&mut self, code: i32) {
        let message = format!("the MCP server exited (code {code}) before answering");
        for (id, f) in self.inflight.drain().collect::<Vec<_>>() {
            if let Kind::Call { call_id, .. } = f.kind {
                self.report(&ClientMsg::Finished {
                    call_id,
                    outcome: Outcome::ServerDied,
                    latency_us: f.start.elapsed().as_micros() as u64,
                });
            }
            self.send_client(rpc_error(&id, -32603, &message)).await;
        }
        let held: Vec<Held> = self.held.drain().map(|(_, h)| h).chain(self.deciding.drain().map(|(_, h)| h)).collect();
        for h in held {
            if h.line.is_empty() {
                continue;
            }
            if let Some(call_id) = &h.call_id {
                self.report(&ClientMsg::Cancelled { call_id: call_id.clone() });
            }
            self.send_client(rpc_error(&h.id, -32603, &message)).await;
        }
        self.flush_finished();
    }
}

enum ClientAction {
    Forward,
    Decide(Box<Held>),
    Drop,
    Reply(Vec<u8>),
}
