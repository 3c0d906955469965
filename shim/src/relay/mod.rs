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

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use latch_proto::{ClientInfo, ClientMsg, DaemonMsg, Decision, Outcome, frame};
use serde_json::value::RawValue;
use serde_json::{Value, json};

mod client;
mod daemon;
mod elicit;
mod in_result;
mod lease;
mod reply;
mod results;
#[cfg(test)]
mod results_tests;
mod roots;
mod run;
mod server;
#[cfg(test)]
mod tests;

use self::reply::{blocked, rpc_error};
pub use self::run::run;
use crate::Options;
use crate::continuation::{self, Continuations};
use crate::io::with_newline;
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
    /// Where the call's arguments are in `line` (raw; `None`: absent),
    /// until the daemon has them: they go to it without a copy of their
    /// own.
    args: Option<std::ops::Range<usize>>,
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
    Call {
        call_id: String,
        tool: String,
    },
    ToolsList {
        first_page: bool,
    },
    Other,
    /// `resources/read` of this URI: its result is checked ([`results`]).
    Read {
        uri: String,
    },
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

/// What happens to the relay: a line from either side, the daemon link
/// coming, going or speaking, a timer, the server's exit.
#[derive(Debug)]
pub(crate) enum Event {
    ClientLine(Vec<u8>),
    /// A client line over the limit (its length), skipped unread.
    ClientOversized(usize),
    ClientEof,
    ServerLine(Vec<u8>),
    DaemonUp,
    DaemonDown(String),
    /// Something that is not Latch's daemon answers at the socket.
    Impostor(String),
    Daemon(Box<DaemonMsg>),
    /// A deadline of [`Relay::next_wake`] may have passed.
    Timer,
    /// The server exited with this code.
    ServerGone(i32),
    /// A result forwarded by [`Action::ClientThenCheck`] was checked.
    Checked {
        key: u64,
        checked: crate::results::Checked,
    },
}

/// What the relay asks the IO loop to do, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A frame for the client (newline-terminated).
    Client(Vec<u8>),
    /// A frame for the server (newline-terminated).
    Server(Vec<u8>),
    /// Close the server's stdin (how MCP asks it to exit).
    CloseServer,
    /// Encoded frames for the connected daemon.
    Daemon(Vec<u8>),
    /// A result for the client (`record` mode): written as it is, then
    /// checked off the loop ([`crate::results::check`], `record`); the
    /// check comes back as [`Event::Checked`] with `key`.
    ClientThenCheck { key: u64, frame: std::sync::Arc<Vec<u8>> },
}

/// The relay: a state machine. [`Relay::handle`] takes an event and
/// returns the actions; it does no IO itself.
pub(crate) struct Relay {
    opts: Options,
    /// The actions of the event being handled.
    out: Vec<Action>,
    /// False once the server's stdin is closed.
    server_writable: bool,
    /// A daemon is connected.
    daemon: bool,
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
    outbox: VecDeque<Vec<u8>>,
    /// Outcome reports not sent yet: they ride along with the next frame
    /// to the daemon, or go on their own at `finished_due`. One write and
    /// one wake-up of the daemon instead of two per call.
    finished: Vec<u8>,
    /// How many reports `finished` holds.
    finished_n: usize,
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
    /// What to do with results that have findings, once the daemon said.
    results_mode: Option<latch_core::threat::result::Handling>,
    /// Results held for a person (by the shim's key).
    held_results: results::HeldResults,
    next_result_key: u64,
    /// The response `inspect_server` just matched, when it is to be checked.
    scan_next: Option<results::Target>,
    /// Results forwarded in `record` mode whose check has not come back
    /// (by key): their findings and outcome are reported when it does.
    checking: results::Checking,
    /// The daemon's lease: plain allows decided here ([`crate::lease`]).
    lease: Option<crate::lease::Leased>,
}

/// Most reports kept for a daemon that is not there.
const OUTBOX: usize = 4096;

/// Longest an outcome report waits for a frame to ride along with.
const FINISHED_DELAY: Duration = Duration::from_millis(3);

/// Most reports that wait together: the daemon takes a burst in without
/// pause on its one runtime thread, so a burst of a few hundred (3 ms of
/// leased calls) delays whatever call it meets by a few hundred µs (on one
/// vCPU, the relay bench's p99). Sixteen keep the write per burst and the
/// daemon's pause short.
const FINISHED_MAX: usize = 16;

impl Relay {
    pub(crate) fn new(opts: Options) -> Relay {
        Relay {
            opts,
            out: Vec::new(),
            server_writable: true,
            daemon: false,
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
            outbox: VecDeque::new(),
            finished: Vec::new(),
            finished_n: 0,
            finished_due: None,
            shifts: HashMap::new(),
            impostor: None,
            continuations: Continuations::default(),
            roots: roots::Roots::default(),
            elicit_prefix: None,
            next_elicit: 0,
            asking: HashMap::new(),
            parked: HashMap::new(),
            results_mode: None,
            held_results: HashMap::new(),
            next_result_key: 0,
            scan_next: None,
            checking: HashMap::new(),
            lease: None,
        }
    }

    /// Handles one event; returns what the IO loop must do, in order.
    pub(crate) fn handle(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::ClientLine(line) => self.on_client_line(line),
            Event::ClientOversized(n) => self.on_client_oversized(n),
            Event::ClientEof => self.on_client_eof(),
            Event::ServerLine(line) => self.on_server_line(line),
            Event::DaemonUp => self.on_up(),
            Event::DaemonDown(why) => self.on_down(why),
            Event::Impostor(who) => {
                self.impostor = Some(who.clone());
                self.on_down(format!("not Latch's daemon: {who}"));
            }
            Event::Daemon(msg) => self.on_daemon(*msg),
            Event::Timer => self.on_timer(),
            Event::ServerGone(code) => self.on_server_gone(code),
            Event::Checked { key, checked } => self.on_checked(key, checked),
        }
        std::mem::take(&mut self.out)
    }

    fn send_client(&mut self, frame: Vec<u8>) {
        self.out.push(Action::Client(frame));
    }

    /// False once the server's stdin is closed.
    fn send_server(&mut self, frame: Vec<u8>) -> bool {
        if self.server_writable {
            self.out.push(Action::Server(with_newline(frame)));
        }
        self.server_writable
    }

    /// A report the daemon should get eventually: sent now, or kept until
    /// a daemon is connected.
    fn report(&mut self, msg: &ClientMsg) {
        if self.daemon && matches!(msg, ClientMsg::Finished { .. } | ClientMsg::LocalCall(_)) {
            self.finished.extend_from_slice(&frame::encode(msg));
            self.finished_n += 1;
            self.finished_due.get_or_insert_with(|| Instant::now() + FINISHED_DELAY);
            if self.finished_n >= FINISHED_MAX {
                self.flush_finished();
            }
            return;
        }
        if self.daemon && self.send_daemon(msg) {
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
        self.finished_n = 0;
        let reports = self.finished.len();
        let frame = if reports == 0 {
            frame
        } else {
            let mut out = std::mem::take(&mut self.finished);
            out.extend_from_slice(&frame);
            out
        };
        if !self.daemon {
            if reports > 0 {
                self.outbox.push_back(frame[..reports].to_vec());
            }
            return false;
        }
        // A daemon slower than the client slows the client down (the IO
        // loop stops reading it): frames are never dropped.
        self.out.push(Action::Daemon(frame));
        true
    }

    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let held = self.held.values().flat_map(|h| [h.deadline, h.next_progress]).flatten();
        held.chain(self.finished_due).chain(self.parked_wake()).chain(self.results_wake()).min()
    }

    /// Progress for held calls, and answers for those past their hold.
    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.finished_due.is_some_and(|d| d <= now) {
            self.flush_finished();
        }
        self.expire_parked(now);
        self.expire_results(now);
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
            self.send_client(f);
        }
        for call_id in expired {
            if let Some(mut h) = self.held.remove(&call_id) {
                self.withdraw(h.elicit.take());
                // The daemon did not end this hold in time: tell it.
                self.report(&ClientMsg::HoldExpired { call_id: call_id.clone() });
                self.awaiting(call_id, h);
            }
        }
    }

    /// Answers a held call: it did not run, its approval is still pending,
    /// and the identical retry goes through once approved.
    fn awaiting(&mut self, call_id: String, h: Held) {
        let approval = h.approval_id.clone().unwrap_or_default();
        let text = text::awaiting(&h.tool, &approval);
        let verdict = json!({"decision": "ask", "status": "pending", "class": h.class, "approval_id": approval, "call_id": call_id});
        self.send_client(blocked(&h.id, text, verdict, h.modern));
        self.report(&ClientMsg::Finished { call_id, outcome: Outcome::Blocked, latency_us: 0 });
    }

    fn on_client_eof(&mut self) {
        // Calls the client can no longer receive answers for never run.
        self.drop_parked(true);
        self.withhold_all_results(false, true);
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
        self.server_writable = false;
        self.out.push(Action::CloseServer);
    }

    /// The server exited: every request it did not answer gets an error.
    fn on_server_gone(&mut self, code: i32) {
        let message = format!("the MCP server exited (code {code}) before answering");
        self.drop_parked(true);
        self.withhold_all_results(false, false);
        for (id, f) in self.inflight.drain().collect::<Vec<_>>() {
            if let Kind::Call { call_id, .. } = f.kind {
                self.report(&ClientMsg::Finished {
                    call_id,
                    outcome: Outcome::ServerDied,
                    latency_us: f.start.elapsed().as_micros() as u64,
                });
            }
            self.send_client(rpc_error(&id, -32603, &message));
        }
        let held: Vec<Held> = self.held.drain().map(|(_, h)| h).chain(self.deciding.drain().map(|(_, h)| h)).collect();
        for mut h in held {
            self.withdraw(h.elicit.take());
            if h.line.is_empty() {
                continue;
            }
            if let Some(call_id) = &h.call_id {
                self.report(&ClientMsg::Cancelled { call_id: call_id.clone() });
            }
            self.send_client(rpc_error(&h.id, -32603, &message));
        }
        self.flush_finished();
    }
}
