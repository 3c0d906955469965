//! The shim's IO loop: it feeds the relay machine ([`Relay::handle`]) the
//! events of the client, the server, the daemon link, signals and timers,
//! and carries out the actions it returns. All state of the relay is in the
//! machine; here are only the pipes, the child and the daemon link's queue.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use super::{Action, Event, Relay};
use crate::Options;
use crate::child;
use crate::io::{Frame, Input, Spare, read_lines, write_frames};
use crate::link::{self, LinkEvent};
use crate::results::{self, Checked};

/// Results checked at once after they were forwarded (`record` mode);
/// while this many are being checked, the server is not read: a server
/// that floods large results is slowed down, and the shim's memory stays
/// bounded.
const CHECKS: usize = 1;

/// How long the end of the shim waits for results still being checked.
const CHECKS_AT_END: Duration = Duration::from_secs(5);

/// The pipes and the daemon link the machine's actions go to.
struct Outlets {
    to_client: mpsc::Sender<Frame>,
    to_server: Option<mpsc::Sender<Frame>>,
    daemon: Option<mpsc::Sender<Vec<u8>>>,
    /// Frames for the connected daemon that did not fit in the link's
    /// queue, in order. While any wait, the client is not read: a client
    /// faster than the daemon is slowed down, never refused.
    backlog: VecDeque<Vec<u8>>,
    /// Results forwarded and being checked, on the blocking pool.
    checks: JoinSet<(u64, Checked)>,
    spare: Spare,
}

impl Outlets {
    async fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Client(frame) => {
                    let _ = self.to_client.send(frame.into()).await;
                }
                Action::ClientThenCheck { key, frame } => {
                    let _ = self.to_client.send(Frame::Shared(frame.clone())).await;
                    let spare = self.spare.clone();
                    self.checks
                        .spawn_blocking(move || (key, results::check_forwarded(frame, |f| spare.give_shared(f))));
                }
                Action::Server(frame) => {
                    if let Some(tx) = &self.to_server {
                        let _ = tx.send(frame.into()).await;
                    }
                }
                Action::CloseServer => self.to_server = None,
                Action::Daemon(frame) => self.send_daemon(frame),
            }
        }
    }

    fn send_daemon(&mut self, frame: Vec<u8>) {
        let Some(tx) = &self.daemon else { return };
        if !self.backlog.is_empty() {
            self.backlog.push_back(frame);
            return;
        }
        match tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(f)) => self.backlog.push_back(f),
            // The link is ending: its `Down` follows, and the machine
            // answers the calls that were waiting.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// What the daemon link reports, as the machine's event.
    fn link_event(&mut self, ev: LinkEvent) -> Option<Event> {
        Some(match ev {
            LinkEvent::Up(tx) => {
                self.daemon = Some(tx);
                self.backlog.clear();
                Event::DaemonUp
            }
            LinkEvent::Down(why) => {
                self.daemon = None;
                // Frames still waiting for the lost link (the calls among
                // them are answered by the machine) are never sent to the
                // next daemon.
                self.backlog.clear();
                Event::DaemonDown(why)
            }
            LinkEvent::Impostor(who) => {
                self.daemon = None;
                self.backlog.clear();
                Event::Impostor(who)
            }
            LinkEvent::Msg(msg) => Event::Daemon(msg),
            LinkEvent::Written => return None,
        })
    }

    /// The daemon link has room: the oldest waiting frame goes.
    fn on_daemon_room(&mut self, permit: Option<mpsc::OwnedPermit<Vec<u8>>>) {
        match (permit, self.backlog.pop_front()) {
            (Some(permit), Some(frame)) => {
                permit.send(frame);
            }
            (None, _) => self.backlog.clear(),
            (Some(_), None) => {}
        }
    }
}

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

    // Long lines' buffers go round: read, relayed, written, reused.
    let spare = Spare::default();
    let (client_out_tx, client_out_rx) = mpsc::channel::<Frame>(256);
    let client_writer = tokio::spawn(write_frames(crate::io::stdout(), spare.clone(), client_out_rx));
    let (server_in_tx, server_in_rx) = mpsc::channel::<Frame>(256);
    tokio::spawn(write_frames(stdin, spare.clone(), server_in_rx));

    let (client_tx, mut client_rx) = mpsc::channel::<Input>(64);
    tokio::spawn(read_lines(crate::io::stdin(), opts.max_message, spare.clone(), client_tx));
    let (server_tx, mut server_rx) = mpsc::channel::<Input>(64);
    tokio::spawn(read_lines(stdout, opts.max_message, spare.clone(), server_tx));

    let session = format!("{}-{}", std::process::id(), now_ms());
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

    let grace = opts.grace;
    let max_message = opts.max_message;
    let mut relay = Relay::new(opts);
    let mut out = Outlets {
        to_client: client_out_tx,
        to_server: Some(server_in_tx),
        daemon: None,
        backlog: VecDeque::new(),
        checks: JoinSet::new(),
        spare,
    };

    let far = || Instant::now() + Duration::from_secs(3600);
    let mut client_open = true;
    let mut server_open = true;
    // After the client hangs up: when to send SIGTERM, then SIGKILL.
    let mut escalate: Option<(Instant, i32)> = None;
    let status = loop {
        let wake = relay.next_wake().unwrap_or_else(far);
        let escalate_at = escalate.map(|(t, _)| t).unwrap_or_else(far);
        let daemon_tx = out.daemon.clone().filter(|_| !out.backlog.is_empty());
        let event = tokio::select! {
            permit = reserve(daemon_tx.as_ref()) => {
                out.on_daemon_room(permit);
                continue;
            }
            input = client_rx.recv(), if client_open && out.backlog.is_empty() => match input {
                Some(Input::Line(line)) => Event::ClientLine(line),
                Some(Input::Oversized(n)) => Event::ClientOversized(n),
                Some(Input::Eof) | None => {
                    client_open = false;
                    escalate = Some((Instant::now() + grace, libc::SIGTERM));
                    Event::ClientEof
                }
            },
            Some(done) = out.checks.join_next(), if !out.checks.is_empty() => match done {
                Ok((key, checked)) => Event::Checked { key, checked },
                // Not reached: the check catches its own panics.
                Err(_) => continue,
            },
            input = server_rx.recv(), if server_open && out.checks.len() < CHECKS => match input {
                Some(Input::Line(line)) => Event::ServerLine(line),
                Some(Input::Oversized(n)) => {
                    eprintln!("latch shim: the server sent a message of {n} bytes, over the limit of {max_message}; dropped");
                    continue;
                }
                Some(Input::Eof) | None => {
                    server_open = false;
                    // The server closed its stdout: it is exiting. Give it
                    // the grace period, then make sure.
                    if escalate.is_none() {
                        escalate = Some((Instant::now() + grace, libc::SIGTERM));
                    }
                    continue;
                }
            },
            status = server.wait(), if !server_open => break status,
            ev = link_rx.recv() => match ev.and_then(|ev| out.link_event(ev)) {
                Some(ev) => ev,
                None => continue,
            },
            Some(sig) = sig_rx.recv() => {
                server.signal(sig);
                if escalate.is_none() {
                    escalate = Some((Instant::now() + grace * 2, libc::SIGKILL));
                }
                continue;
            }
            _ = sleep_until(wake.into()) => Event::Timer,
            _ = sleep_until(escalate_at.into()), if escalate.is_some() => {
                let (_, sig) = escalate.take().expect("checked");
                server.signal(sig);
                if sig == libc::SIGTERM {
                    escalate = Some((Instant::now() + grace, libc::SIGKILL));
                }
                continue;
            }
        };
        if matches!(event, Event::ClientLine(_)) {
            // What the daemon said before this line was read goes first (a
            // new lease, or none): a call is never decided on a lease the
            // daemon has already replaced. The epoch file is the authority
            // (crate::lease); this only spares a wasted local decision.
            while let Ok(ev) = link_rx.try_recv() {
                if let Some(ev) = out.link_event(ev) {
                    out.carry_out(relay.handle(ev)).await;
                }
            }
        }
        out.carry_out(relay.handle(event)).await;
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
    // Results still being checked: their findings and outcomes are
    // reported before the end.
    let until = Instant::now() + CHECKS_AT_END;
    while let Ok(Some(Ok((key, checked)))) = tokio::time::timeout_at(until.into(), out.checks.join_next()).await {
        out.carry_out(relay.handle(Event::Checked { key, checked })).await;
    }
    out.carry_out(relay.handle(Event::ServerGone(code))).await;
    // Let the link write the last reports before the runtime goes away
    // (rows of calls decided under a lease and their outcomes among them):
    // as long as the daemon takes them, up to 10 s; 5 s without progress
    // ends the wait (the rows left the daemon reads from the journal).
    if let Some(tx) = out.daemon.take() {
        let give_up = Instant::now() + Duration::from_secs(10);
        let stall = Duration::from_secs(5);
        while let Some(frame) = out.backlog.pop_front() {
            let until = (Instant::now() + stall).min(give_up);
            if !matches!(tokio::time::timeout_at(until.into(), tx.send(frame)).await, Ok(Ok(()))) {
                break;
            }
        }
        // The link's writer ends once it has written every frame (the
        // last one included, not only taken from the queue) and says so.
        drop(tx);
        let written = async {
            while let Some(ev) = link_rx.recv().await {
                if matches!(ev, LinkEvent::Written | LinkEvent::Down(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout_at(give_up.into(), written).await;
    }
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(5), client_writer).await;
    code
}

/// Room in the daemon link's queue, once there is some (never, without a
/// link).
async fn reserve(tx: Option<&mpsc::Sender<Vec<u8>>>) -> Option<mpsc::OwnedPermit<Vec<u8>>> {
    match tx {
        Some(tx) => tx.clone().reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}
