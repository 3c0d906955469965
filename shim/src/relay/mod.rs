//! The relay loop: owns every piece of the shim's state.
//!
//! Client → server: each line is validated ([`envelope`]); a `tools/call`
//! waits for the daemon's decision, everything else is forwarded untouched.
//! Server → client: forwarded untouched; responses to the client's requests
//! are matched by id (the client's id space, separate from the server's own
//! requests) to learn `tools/list` pages and each call's outcome and latency.
//!
//! The loop and the state are here; the handlers are split by the side
//! they serve: `client` (lines from the agent's client), `daemon` (asking,
//! answers, the link), `server` (lines from the MCP server), and `reply`
//! (messages the shim writes itself).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use latch_proto::{ClientInfo, ClientMsg, Decision, Outcome, frame};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::sleep_until;

mod client;
mod daemon;
mod elicit;
mod in_result;
mod reply;
mod roots;
mod server;

use self::reply::{blocked, rpc_error};
use crate::Options;
use crate::child;
use crate::continuation::{self, Continuations};
use crate::io::{Input, read_lines, with_newline, write_frames};
use crate::link::{self, LinkEvent};
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
    /// The id (raw JSON) of the question asked about this call inside the
    /// client, while it is open ([`elicit`]).
    elicit: Option<String>,
    /// A 2026-07-28 request whose client declared form elicitation in its
    /// `clientCapabilities`: it can be asked in an `input_required` result
    /// ([`in_result`]).
    elicits: bool,
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
    /// The client's roots (the workspace), replayed to a restarted daemon.
    roots: roots::Roots,
    /// The prefix of the shim's own request ids to the client, once the
    /// client declared form elicitation in `initialize` ([`elicit`]).
    elicit_prefix: Option<String>,
    next_elicit: u64,
    /// Questions open in the client: request id (raw JSON) → call id.
    asking: HashMap<String, String>,
    /// Calls answered with Latch's question in an `input_required` result,
    /// waiting for their retry (by the state issued).
    parked: in_result::ParkedCalls,
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
        roots: roots::Roots::default(),
        elicit_prefix: None,
        next_elicit: 0,
        asking: HashMap::new(),
        parked: HashMap::new(),
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

    fn next_wake(&self) -> Option<Instant> {
        let held = self.held.values().flat_map(|h| [h.deadline, h.next_progress]).flatten();
        held.chain(self.finished_due).chain(self.parked_wake()).min()
    }

    /// Progress for held calls, and answers for those past their hold.
    async fn on_timer(&mut self) {
        let now = Instant::now();
        if self.finished_due.is_some_and(|d| d <= now) {
            self.flush_finished();
        }
        self.expire_parked(now);
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
            if let Some(mut h) = self.held.remove(&call_id) {
                self.withdraw(h.elicit.take()).await;
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

    async fn on_client_eof(&mut self) {
        // Calls the client can no longer receive answers for never run.
        self.drop_parked(true);
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
        self.drop_parked(true);
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
        for mut h in held {
            self.withdraw(h.elicit.take()).await;
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
