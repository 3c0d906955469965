//! The async shell: socket, connections, the decision path, shutdown.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use latch_core::approval::{self, Approvals, Closure, Effect, Outcome as Fsm, Reply};
use latch_core::policy::Place;
use latch_core::redact::redact_value;
use latch_core::{Call, Decision as CoreDecision, Flag, ToolDef};
use latch_proto::paths::Paths;
use latch_proto::quiet;
use latch_proto::{
    AuditRow, ClientMsg, DaemonMsg, Decision, Event, PROTOCOL_VERSION, Role, ShimInfo, StatusReport, frame,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::audit::{Audit, NewEvent};
use crate::engine::{self, Engine};
use crate::lock::Lock;
use crate::policy_file;
use crate::{DaemonError, now_ms, private_dir};

/// The state key under which approvals and grants survive a restart.
const APPROVALS_STATE: &str = "approvals";
/// Client roots kept per shim connection.
const MAX_CLIENT_ROOTS: usize = 64;

pub(crate) struct Shared {
    pub(crate) paths: Paths,
    pub(crate) audit: Audit,
    engine: Mutex<Engine>,
    pub(crate) events: broadcast::Sender<Event>,
    /// `LATCH_HOLD_MS`: one hold limit for every client (tests, scripts).
    hold_override: Option<u64>,
    /// Holds that ran out (call id, the hold's end), for [`expiries`].
    expired: mpsc::UnboundedSender<(String, i64)>,
    /// The approval PIN and which connections are unlocked.
    pub(crate) pin: crate::pin::Gate,
    /// The accepted policy and what waits for the person.
    guard: Mutex<crate::accepted::Guard>,
}

impl Shared {
    pub(crate) fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock must not wedge the daemon: the
        // state is still consistent enough to answer and shut down.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn guard(&self) -> MutexGuard<'_, crate::accepted::Guard> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(paths: Paths) -> Result<(), DaemonError> {
    // A file that is not a usable log still lets the daemon start (refusing
    // every call), so that it can say what is wrong; an unsafe place not.
    match crate::audit::check_place(&paths.database) {
        Err(crate::audit::AuditError::Unusable { .. }) | Ok(()) => {}
        Err(e) => return Err(e.into()),
    }
    keep_freed_memory();
    private_dir(&paths.data_dir)?;
    private_dir(paths.socket_dir())?;
    let _lock = Lock::acquire(&paths.data_dir)?;
    let audit = Audit::open_or_refusing(&paths.database)?;

    if let Ok(true) = policy_file::ensure_default(&paths.policy) {
        eprintln!("latch daemon: wrote the default policy to {}", paths.policy.display());
    }
    let stamp = policy_file::stamp(&paths.policy);
    let (file_text, policy_error) = match policy_file::load_text(&paths) {
        Ok((text, _)) => (Some(text), None),
        Err(report) => {
            eprintln!(
                "latch daemon: the policy file is not valid; the built-in defaults are in force until it is:\n{report}"
            );
            (None, Some(report))
        }
    };
    let (pin, pin_problem) = crate::pin::Gate::load(&paths.data_dir, crate::accepted::Guard::exists(&paths.data_dir));
    if let Some(p) = &pin_problem {
        eprintln!("latch daemon: {p}");
    }
    let mut guard = crate::accepted::Guard::load(&paths.data_dir);
    let (settled, guard_notes) = guard.settle(file_text.as_deref(), pin.is_set(), None);
    let mut policy = latch_core::Policy::parse(&settled.text).unwrap_or_else(|_| latch_core::Policy::builtin());
    policy.set_protected(policy_file::protected(&paths));
    let floor = settled.floor.then(|| policy_file::builtin(&paths));
    let salt = (now_ms() as u64) ^ ((std::process::id() as u64) << 32);
    let approvals = restore_approvals(&audit, salt, policy.grant_ttl_seconds());
    let known = crate::known::load(&audit);
    let (events, _) = broadcast::channel(1024);
    let hold_override = std::env::var("LATCH_HOLD_MS").ok().and_then(|v| v.parse().ok());
    let (expired, expired_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        paths: paths.clone(),
        audit,
        engine: Mutex::new(Engine::new(policy, approvals, salt)),
        events,
        hold_override,
        expired,
        pin,
        guard: Mutex::new(guard),
    });
    {
        let mut eng = shared.engine();
        eng.policy_error = policy_error.clone();
        eng.policy_stamp = stamp;
        eng.floor = floor;
        eng.policy_pending = shared.guard().pending();
        eng.known = known;
    }
    crate::reload::record_reload(&shared, policy_error).await;
    for note in pin_problem.into_iter().chain(guard_notes) {
        record(&shared, NewEvent { kind: "policy_guard", detail: Some(note), ..event_now() }).await;
    }
    let pending = shared.engine().policy_pending.clone();
    if let Some(p) = pending {
        eprintln!("latch daemon: policy change pending: {} rules loosen; a person must accept it", p.loosen);
        let detail = Some(p.diff.join("\n"));
        record(&shared, NewEvent { kind: "policy_pending", decision: "ask".into(), detail, ..event_now() }).await;
    }
    tokio::spawn(tick(shared.clone()));
    tokio::spawn(crate::reload::watch_policy(shared.clone()));
    tokio::spawn(expiries(shared.clone(), expired_rx));
    let policy = shared.clone();
    tokio::spawn(crate::audit::retention::every_hour(shared.audit.clone(), move || *policy.engine().policy.audit()));
    // Approval channels beyond the socket: each gets a handle and runs on
    // its own task.
    let hub = crate::channel::Hub::new(shared.clone());
    crate::desktop::spawn(hub.clone());
    crate::telegram::spawn(hub);

    // Only this daemon holds the lock, so a socket file left here is stale.
    let _ = std::fs::remove_file(&paths.socket);
    let name = paths
        .socket
        .as_path()
        .to_fs_name::<GenericFilePath>()
        .map_err(|e| DaemonError::Listen { path: paths.socket.clone(), source: e })?;
    let listener = ListenerOptions::new()
        .name(name)
        .create_tokio()
        .map_err(|e| DaemonError::Listen { path: paths.socket.clone(), source: e })?;
    eprintln!("latch daemon {} listening ({})", std::process::id(), crate::describe(&paths));

    let mut term = signal(SignalKind::terminate()).map_err(crate::io_err(&paths.socket))?;
    let mut int = signal(SignalKind::interrupt()).map_err(crate::io_err(&paths.socket))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut next_conn = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    next_conn += 1;
                    conns.spawn(connection(shared.clone(), stream, next_conn, stop_rx.clone()));
                }
                Err(e) => eprintln!("latch daemon: accept failed: {e}"),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }

    eprintln!("latch daemon: shutting down");
    // Held calls get an answer before anything closes: they did not run.
    // Their approvals stay pending (and are saved) for the next daemon.
    {
        let mut eng = shared.engine();
        let held: Vec<(String, u64)> = eng.held.drain().map(|(c, h)| (c, h.conn)).collect();
        for (call_id, conn) in held {
            let approval_id = eng.approvals.held_on(&call_id).unwrap_or_default().to_owned();
            if let Some(shim) = eng.shims.get(&conn) {
                let _ = shim.tx.try_send(frame::encode(&DaemonMsg::Resolved {
                    call_id,
                    approval_id,
                    decision: Decision::Deny,
                    reason: "the Latch daemon is shutting down; the call did not run. Its approval stays pending: \
                             retry the call once the daemon is back"
                        .into(),
                }));
            }
        }
    }
    persist(&shared).await;
    let _ = stop_tx.send(true);
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(3), async { while conns.join_next().await.is_some() {} }).await;
    shared.audit.flush().await;
    let _ = std::fs::remove_file(&paths.socket);
    Ok(())
}

async fn connection(shared: Arc<Shared>, stream: Stream, conn: u64, mut stop: watch::Receiver<bool>) {
    let me = crate::audit::current_uid();
    let creds = stream.peer_creds().ok();
    let peer = creds.as_ref().and_then(|c| c.euid());
    let peer_pid = creds.as_ref().and_then(|c| c.pid());
    // Watched for reading only: see `latch_proto::quiet`.
    let stream = match quiet::Stream::from_local(stream) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("latch daemon: cannot use a new connection: {e}");
            return;
        }
    };
    let (r, mut w) = tokio::io::split(stream);
    if peer != Some(me) {
        let reason = format!("peer user id {peer:?} is not the daemon's ({me})");
        let _ = w.write_all(&frame::encode(&DaemonMsg::Refused { reason: reason.clone() })).await;
        record(&shared, NewEvent { kind: "refused", detail: Some(reason), ..event_now() }).await;
        return;
    }
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1024);
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if w.write_all(&line).await.is_err() {
                break;
            }
            // Write everything queued before flushing once.
            while let Ok(more) = rx.try_recv() {
                if w.write_all(&more).await.is_err() {
                    return;
                }
            }
            if w.flush().await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut buf = Vec::with_capacity(4096);

    let hello = match tokio::time::timeout(Duration::from_secs(10), reader.read_until(b'\n', &mut buf)).await {
        Ok(Ok(n)) if n > 0 => frame::decode::<ClientMsg>(&buf),
        _ => return,
    };
    let (role, name) = match hello {
        Ok(ClientMsg::Hello { protocol, role, name, pid, session, command }) => {
            if protocol != PROTOCOL_VERSION {
                let reason = format!(
                    "protocol {protocol} is not the daemon's {PROTOCOL_VERSION}: restart the daemon (`latch daemon`) \
                     after upgrading, so shim and daemon are the same version"
                );
                let _ = tx.send(frame::encode(&DaemonMsg::Refused { reason })).await;
                drop(tx);
                let _ = writer.await;
                return;
            }
            let _ = tx.send(frame::encode(&DaemonMsg::Welcome { protocol, daemon_pid: std::process::id() })).await;
            shared.pin.connected(conn, crate::pin::login_of(me), peer_pid);
            match role {
                Role::Shim => {
                    let info =
                        ShimInfo { server: name.clone(), pid, session: session.clone(), since: now_ms(), client: None };
                    shared
                        .engine()
                        .shims
                        .insert(conn, engine::Shim { info: info.clone(), tx: tx.clone(), roots: None });
                    let cmd = redact_value(&Value::from(command.clone()));
                    record(
                        &shared,
                        NewEvent {
                            kind: "shim_connect",
                            server: name.clone(),
                            session,
                            args: cmd.to_string(),
                            detail: Some(format!("pid {pid}")),
                            ..event_now()
                        },
                    )
                    .await;
                    shared.emit(Event::ShimConnected { shim: info });
                }
                Role::Console => shared.engine().consoles += 1,
                Role::Cli => {}
                Role::Hook => {
                    crate::hook::connected(&shared, conn, &name, pid, &session, &command, tx.clone()).await;
                }
            }
            (role, name)
        }
        _ => {
            let _ = tx
                .send(frame::encode(&DaemonMsg::Refused { reason: "the first message must be a hello".into() }))
                .await;
            drop(tx);
            let _ = writer.await;
            return;
        }
    };

    loop {
        buf.clear();
        let n = tokio::select! {
            n = reader.read_until(b'\n', &mut buf) => n,
            _ = stop.changed() => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let msg = match frame::decode::<ClientMsg>(&buf) {
            Ok(m) => m,
            Err(e) => {
                // Answer the request it was meant to be, so a shim waiting on
                // it fails closed instead of waiting forever.
                let (kind, req) = envelope_of(&buf);
                let message = match e {
                    // Only a call's arguments can hold what the shim let
                    // through and the daemon cannot read: a number beyond
                    // any machine's range, which JSON itself allows.
                    frame::FrameError::Json(e) if kind == "decide" => {
                        format!("its arguments are JSON that Latch cannot read: {e}")
                    }
                    e => e.to_string(),
                };
                let _ = tx.send(frame::encode(&DaemonMsg::Error { req, message })).await;
                continue;
            }
        };
        handle(&shared, conn, role, &name, &tx, msg, &buf).await;
    }

    match role {
        Role::Shim => {
            let (info, effects) = {
                let mut eng = shared.engine();
                eng.calls.retain(|_, c| c.conn != conn);
                eng.held.retain(|_, h| h.conn != conn);
                eng.forget_tools(conn);
                let info = eng.shims.remove(&conn).map(|s| s.info);
                // Another shim of the same session (a reconnect) keeps it alive.
                let effects = match &info {
                    Some(i) if !eng.shims.values().any(|s| s.info.session == i.session) => {
                        eng.approvals.handle(approval::Event::SessionEnded { session: i.session.clone() })
                    }
                    _ => Vec::new(),
                };
                (info, effects)
            };
            apply(&shared, effects, None).await;
            if let Some(info) = info {
                record(
                    &shared,
                    NewEvent {
                        kind: "shim_disconnect",
                        server: info.server.clone(),
                        session: info.session.clone(),
                        ..event_now()
                    },
                )
                .await;
                shared.emit(Event::ShimDisconnected { server: info.server, session: info.session });
            }
        }
        Role::Console => shared.engine().consoles -= 1,
        Role::Cli => {}
        Role::Hook => crate::hook::closed(&shared, conn).await,
    }
    shared.pin.disconnected(conn);
    drop(tx);
    let _ = writer.await;
}

fn event_now() -> NewEvent {
    NewEvent { time_ms: now_ms(), ..Default::default() }
}

async fn record(shared: &Shared, ev: NewEvent) {
    shared.audit.record(ev).await;
}

pub(crate) async fn send(tx: &mpsc::Sender<Vec<u8>>, msg: &DaemonMsg) {
    let _ = tx.send(frame::encode(msg)).await;
}

/// `frame` is the line `msg` was read from.
async fn handle(
    shared: &Arc<Shared>,
    conn: u64,
    role: Role,
    name: &str,
    tx: &mpsc::Sender<Vec<u8>>,
    msg: ClientMsg,
    frame: &[u8],
) {
    match msg {
        ClientMsg::Hello { .. } => {}
        ClientMsg::Decide { req, tool, args, retry } => {
            if !role.speaks_for_agent() {
                send(tx, &DaemonMsg::Error { req, message: "only shims and hooks ask for decisions".into() }).await;
                return;
            }
            // Every digit counts: from the frame's text if parsing lost some.
            let args_hash = crate::wire::args_hash(&args, frame);
            let reply = decide(shared, req, conn, name, &tool, args, args_hash, retry).await;
            send(tx, &reply).await;
        }
        ClientMsg::Client { info } => {
            if let Some(s) = shared.engine().shims.get_mut(&conn) {
                s.info.client = Some(info);
            }
        }
        ClientMsg::ClientRoots { mut roots } => {
            if let Some(r) = roots.as_mut() {
                r.truncate(MAX_CLIENT_ROOTS);
            }
            if let Some(s) = shared.engine().shims.get_mut(&conn) {
                s.roots = roots;
            }
        }
        ClientMsg::ToolsListed { tools, first_page } => {
            let parsed: Value = serde_json::from_str(tools.get()).unwrap_or(Value::Null);
            let defs = ToolDef::list_from_value(&parsed);
            let now = now_ms();
            let (effects, conflicts) = {
                let mut eng = shared.engine();
                let engine::Learned { seen, changed, conflicts } = eng.learn_tools(conn, name, defs, first_page);
                let mut effects = Vec::new();
                for (tool, def_hash) in seen {
                    effects.extend(eng.approvals.handle(approval::Event::ToolDefSeen {
                        server: name.to_owned(),
                        tool,
                        def_hash,
                    }));
                }
                for (tool, new_def_hash) in changed {
                    effects.extend(eng.approvals.handle(approval::Event::ToolDefChanged {
                        server: name.to_owned(),
                        tool,
                        new_def_hash,
                        now_ms: now,
                    }));
                }
                (effects, conflicts)
            };
            for tool in conflicts {
                let session = shared.engine().session_of(conn).unwrap_or_default();
                let why = format!("tool {tool:?} of server {name:?} is described two different ways; its calls ask");
                record(
                    shared,
                    NewEvent {
                        kind: "tool_conflict",
                        server: name.to_owned(),
                        session,
                        tool,
                        reasons: vec![why],
                        ..event_now()
                    },
                )
                .await;
            }
            apply(shared, effects, None).await;
        }
        ClientMsg::Finished { call_id, outcome, latency_us } => {
            let (call, consoles) = {
                let mut eng = shared.engine();
                (eng.calls.remove(&call_id), eng.consoles)
            };
            if let Some(c) = call {
                shared.audit.finish(c.audit_id, outcome.as_str(), latency_us as i64).await;
                // Only consoles show calls; the other channels want approvals.
                if consoles > 0 {
                    shared.emit(Event::Finished { audit_id: c.audit_id, outcome: outcome.as_str().into(), latency_us });
                }
            }
        }
        ClientMsg::Cancelled { call_id } => {
            let effects = {
                let mut eng = shared.engine();
                eng.held.remove(&call_id);
                eng.approvals.handle(approval::Event::Cancelled { call_id, now_ms: now_ms() })
            };
            apply(shared, effects, None).await;
        }
        ClientMsg::HoldExpired { call_id } => {
            // The daemon's own timer normally fires first; this is the
            // shim's word that it stopped holding the call.
            let effects = {
                let mut eng = shared.engine();
                if eng.held.remove(&call_id).is_none() {
                    return;
                }
                eng.approvals.handle(approval::Event::HoldExpired { call_id })
            };
            apply(shared, effects, None).await;
        }
        ClientMsg::InClientAnswer { call_id, approve } => {
            crate::in_client::answer(shared, conn, role, call_id, approve).await;
        }
        ClientMsg::Malformed { from, reason, bytes } => {
            record(
                shared,
                NewEvent {
                    kind: "malformed",
                    server: name.to_owned(),
                    decision: "deny".into(),
                    detail: Some(format!("{bytes} bytes from the {from}: {reason}")),
                    ..event_now()
                },
            )
            .await;
        }
        ClientMsg::ListPending { req } => {
            // What a person is shown survives a crash.
            shared.audit.flush().await;
            let items = shared.engine().pending_items();
            send(tx, &DaemonMsg::Pending { req, items }).await;
        }
        ClientMsg::Answer { req, approval_id, approve, scope, reason, who: _, pin } => {
            let a = crate::answers::AnswerReq { req, approval_id, approve, scope, reason, pin };
            crate::answers::answer(shared, conn, role, tx, a).await;
        }
        ClientMsg::Unlock { req, pin } => crate::answers::unlock(shared, conn, role, tx, req, pin).await,
        ClientMsg::SetPin { req, old, new } => crate::answers::set_pin(shared, conn, role, tx, req, old, new).await,
        ClientMsg::PolicyAccept { req, pin } => crate::answers::policy_accept(shared, conn, role, tx, req, pin).await,
        ClientMsg::Status { req } => {
            let status = {
                let eng = shared.engine();
                StatusReport {
                    daemon_pid: std::process::id(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    socket: shared.paths.socket.display().to_string(),
                    database: shared.paths.database.display().to_string(),
                    policy: shared.paths.policy.display().to_string(),
                    policy_error: eng.policy_error.clone(),
                    shims: eng
                        .shims
                        .iter()
                        .filter(|(c, _)| !eng.hooks.contains_key(c))
                        .map(|(_, s)| s.info.clone())
                        .collect(),
                    consoles: eng.consoles,
                    pending: eng.approvals.pending().filter(|p| !eng.unsaved.contains(&p.id)).count() as u32,
                    channels: eng.channels.values().cloned().collect(),
                    findings: shared.audit.finding().into_iter().chain(eng.findings()).collect(),
                    pin_set: shared.pin.is_set(),
                    policy_pending: eng.policy_pending.clone(),
                    policy_note: shared.guard().note.clone(),
                }
            };
            send(tx, &DaemonMsg::Status { req, status }).await;
        }
        ClientMsg::Audit { req, limit, before, filter } => {
            // What was recorded before the question is in the answer (rows
            // nobody waits for are otherwise committed a few ms later).
            shared.audit.flush().await;
            match shared.audit.query(filter, before, limit).await {
                Ok(rows) => send(tx, &DaemonMsg::AuditRows { req, rows }).await,
                Err(e) => send(tx, &DaemonMsg::Error { req, message: e.to_string() }).await,
            }
        }
        ClientMsg::AuditPrune { req } => {
            let reply = if role.speaks_for_agent() {
                DaemonMsg::Error { req, message: "only a person may prune the audit log".into() }
            } else {
                let settings = *shared.engine().policy.audit();
                match shared.audit.prune(settings, now_ms()).await {
                    Ok(p) => DaemonMsg::AuditPruned { req, removed: p.deleted, message: p.describe() },
                    Err(e) => DaemonMsg::Error { req, message: e.to_string() },
                }
            };
            send(tx, &reply).await;
        }
        ClientMsg::Reveal { req, approval_id } => crate::reveal::reveal(shared, conn, role, tx, req, approval_id).await,
        ClientMsg::Subscribe { req } => {
            let mut rx = shared.events.subscribe();
            send(tx, &DaemonMsg::Subscribed { req }).await;
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            if tx.send(frame::encode(&DaemonMsg::Event { event })).await.is_err() {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            });
        }
    }
}

/// Carries out what the approval state machine asked for: answers to held
/// calls, console events, audit rows for answers, the reply to whoever
/// answered. Saves the approvals afterwards so they survive a restart.
pub(crate) async fn apply(shared: &Arc<Shared>, effects: Vec<Effect>, reply_to: Option<(&mpsc::Sender<Vec<u8>>, u64)>) {
    if effects.is_empty() {
        return;
    }
    let mut sends = Vec::new();
    let mut events = Vec::new();
    let mut rows = Vec::new();
    let mut timers = Vec::new();
    let mut rules = Vec::new();
    // Calls an answer released, and who answered: their rows say so.
    let mut released: Vec<(i64, String)> = Vec::new();
    let mut answered_by: Option<String> = None;
    // Definitions a person's approval made known.
    let mut learned = Vec::new();
    let known_snapshot;
    {
        let mut eng = shared.engine();
        for effect in effects {
            match effect {
                Effect::Hold { call_id, approval_id: _, hold_until } => {
                    if let Some(conn) = eng.conn_of(&call_id) {
                        eng.held.insert(call_id.clone(), engine::Held { conn, hold_until });
                        timers.push((call_id, hold_until));
                    }
                }
                Effect::Resolve { call_id, outcome } => {
                    let Some(held) = eng.held.remove(&call_id) else { continue };
                    let approval_id = eng.approvals.held_on(&call_id).unwrap_or_default().to_owned();
                    let (decision, reason, approval_id) = match outcome {
                        Fsm::Allow { reason, approval_id: a } => (Decision::Allow, reason, a.unwrap_or(approval_id)),
                        Fsm::Deny { reason, approval_id: a } => (Decision::Deny, reason, a.unwrap_or(approval_id)),
                        Fsm::AwaitingApproval { approval_id } => (Decision::Ask, String::new(), approval_id),
                        Fsm::Dropped { .. } => continue,
                    };
                    if decision != Decision::Ask
                        && let Some(call) = eng.calls.get(&call_id)
                    {
                        released.push((call.audit_id, approval_id.clone()));
                    }
                    if let Some(shim) = eng.shims.get(&held.conn) {
                        sends.push((
                            shim.tx.clone(),
                            frame::encode(&DaemonMsg::Resolved { call_id, approval_id, decision, reason }),
                        ));
                    }
                }
                Effect::PendingAdded { approval_id } | Effect::PendingUpdated { approval_id } => {
                    if let Some(p) = eng.approvals.get(&approval_id) {
                        events.push(Event::PendingAdded { item: Engine::pending_item(p) });
                    }
                }
                Effect::PendingRemoved { approval_id, closure } => {
                    eng.reveal.forget(&approval_id);
                    let approved = matches!(closure, Closure::Decided { decision: CoreDecision::Allow, .. });
                    if let Some(def) = eng.known.closed(&approval_id, approved, now_ms()) {
                        learned.push((approval_id.clone(), def));
                    }
                    let (decision, by) = match closure {
                        Closure::Decided { decision, channel, who, .. } => {
                            (decision.as_str().to_owned(), format!("{channel}:{who}"))
                        }
                        Closure::Withdrawn { cause, .. } => ("withdrawn".to_owned(), cause.describe().to_owned()),
                    };
                    events.push(Event::PendingRemoved { id: approval_id, decision, by });
                }
                Effect::WriteRule { approval_id, server, tool, decision, def_hash: _ } => {
                    rules.push((approval_id, server, tool, decision));
                }
                Effect::Record(r) => {
                    let by = format!("{}:{}", r.channel, r.who);
                    answered_by = Some(by.clone());
                    rows.push(NewEvent {
                        answered_by: Some(by),
                        kind: "answer",
                        decision: r.decision.as_str().into(),
                        reasons: r.reason.iter().cloned().collect(),
                        approval_id: Some(r.approval_id),
                        detail: Some(format!("scope {}; {:?}", r.scope.as_str(), r.result)),
                        ..event_now()
                    });
                }
                Effect::Reply(reply) => {
                    if let Some((tx, req)) = reply_to {
                        let ok = matches!(reply, Reply::Decided { .. });
                        sends.push((
                            tx.clone(),
                            frame::encode(&DaemonMsg::Answered { req, ok, message: reply.message() }),
                        ));
                    }
                }
            }
        }
        // Whatever closed an approval, its raw arguments go with it.
        if !eng.reveal.is_empty() {
            let e = &mut *eng;
            let approvals = &e.approvals;
            e.reveal.retain(|id| approvals.get(id).is_some());
        }
        known_snapshot = (!learned.is_empty()).then(|| eng.known.snapshot());
    }
    if let Some(snapshot) = known_snapshot {
        shared.audit.set_state(crate::known::STATE_KEY, snapshot).await;
        rows.extend(learned.into_iter().map(|(approval_id, def)| crate::known::row(approval_id, def, event_now())));
    }
    for (approval_id, server, tool, decision) in rules {
        // "always": a rule the user can read and undo, written at once; the
        // in-memory grant covers the moment until the reload.
        let rule = latch_core::policy::NewRule {
            server: server.clone(),
            tool: tool.clone(),
            effect: decision,
            comment: format!("added by answering approval {approval_id} \"always\" (unix ms {})", now_ms()),
            insert_before: None,
        };
        // Answered with the PIN: the rule is accepted with it.
        shared.guard().accept_rule(&rule, shared.pin.key().as_ref());
        let detail = match policy_file::write_rule(&shared.paths.policy, &rule) {
            Ok(()) => {
                crate::reload::reload_policy(shared).await;
                format!("{} {server}/{tool} written to {}", decision.as_str(), shared.paths.policy.display())
            }
            Err(e) => {
                eprintln!(
                    "latch daemon: could not write the \"always\" rule to {}: {e}",
                    shared.paths.policy.display()
                );
                format!("could not write the rule: {e}")
            }
        };
        rows.push(NewEvent {
            kind: "policy_rule",
            server,
            tool,
            decision: decision.as_str().into(),
            approval_id: Some(approval_id),
            detail: Some(detail),
            ..event_now()
        });
    }
    for ev in rows {
        shared.audit.record(ev).await;
    }
    if let Some(by) = answered_by {
        for (audit_id, approval_id) in released {
            shared.audit.answered(audit_id, approval_id, by.clone()).await;
        }
    }
    // What anyone is told next (a shim, a console, the person answering) is
    // on disk first: answers, their audit rows and the approvals' state.
    persist(shared).await;
    shared.audit.flush().await;
    for (tx, line) in sends {
        let _ = tx.send(line).await;
    }
    for ev in events {
        shared.emit(ev);
    }
    for (call_id, hold_until) in timers {
        start_hold_timer(shared, call_id, hold_until);
    }
}

/// When the hold ends, [`expiries`] hears of it (and checks the call is
/// still held on this very hold).
fn start_hold_timer(shared: &Shared, call_id: String, hold_until: i64) {
    let expired = shared.expired.clone();
    tokio::spawn(async move {
        let wait = (hold_until - now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let _ = expired.send((call_id, hold_until));
    });
}

/// The daemon is the authority on holds: when one runs out, the state
/// machine answers the call as awaiting approval (the shim's own deadline is
/// a later backstop for a daemon that went away).
async fn expiries(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<(String, i64)>) {
    while let Some((call_id, hold_until)) = rx.recv().await {
        let effects = {
            let mut eng = shared.engine();
            // Only if the call is still held, on this very hold.
            match eng.held.get(&call_id) {
                Some(h) if h.hold_until == hold_until => {}
                _ => continue,
            }
            eng.approvals.handle(approval::Event::HoldExpired { call_id })
        };
        apply(&shared, effects, None).await;
    }
}

/// A large call (a 1 MiB argument) is read, parsed and hashed in buffers
/// of its size. glibc gives such buffers their own mappings and returns
/// them at once, so every large call paid for fresh zeroed pages several
/// times over. Keeping freed memory in the heap (up to 64 MiB) makes the
/// next large call reuse it.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread
    // of ours allocates concurrently.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// Saves pending approvals and grants.
async fn persist(shared: &Shared) {
    let snapshot = shared.engine().approvals.snapshot();
    shared.audit.set_state(APPROVALS_STATE, snapshot.to_string()).await;
}

fn restore_approvals(audit: &Audit, salt: u64, grant_ttl_seconds: u64) -> Approvals {
    let config =
        approval::Config { once_ttl_ms: (grant_ttl_seconds as i64).saturating_mul(1000), ..Default::default() };
    match audit.get_state(APPROVALS_STATE) {
        Ok(Some(text)) => match serde_json::from_str(&text).map(|v| Approvals::restore(config.clone(), v)) {
            Ok(Ok(a)) => return a,
            Ok(Err(e)) => eprintln!("latch daemon: saved approvals could not be restored ({e}); starting with none"),
            Err(e) => eprintln!("latch daemon: saved approvals are not JSON ({e}); starting with none"),
        },
        Ok(None) => {}
        Err(e) => eprintln!("latch daemon: could not read saved approvals ({e}); starting with none"),
    }
    Approvals::new(config, salt)
}

/// Housekeeping for the approvals: prune what expired.
async fn tick(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        let effects = shared.engine().approvals.handle(approval::Event::Tick { now_ms: now_ms() });
        apply(&shared, effects, None).await;
    }
}

fn deny_reply(req: u64, class: &str, reason: String) -> DaemonMsg {
    DaemonMsg::Decision {
        req,
        call_id: String::new(),
        decision: Decision::Deny,
        class: class.to_owned(),
        reason,
        approval_id: None,
        hold_ms: None,
        ask_in_client: None,
    }
}

/// The message kind and `req` of a frame that did not decode, so its sender
/// hears why (`("", 0)` when even that is unreadable). Only the envelope is
/// read: the rest may be what failed (a number out of range in a call's
/// arguments), and skipping a value does not check it.
fn envelope_of(frame: &[u8]) -> (String, u64) {
    #[derive(serde::Deserialize)]
    struct Req {
        req: Option<u64>,
    }
    serde_json::from_slice::<std::collections::HashMap<String, Req>>(frame)
        .ok()
        .and_then(|m| m.into_iter().next())
        .map(|(kind, r)| (kind, r.req.unwrap_or(0)))
        .unwrap_or_default()
}

/// The decision path: classify, evaluate, consult approvals, commit the
/// audit row, answer. Any failure denies (fail closed).
#[allow(clippy::too_many_arguments)]
async fn decide(
    shared: &Arc<Shared>,
    req: u64,
    conn: u64,
    server: &str,
    tool: &str,
    args: Value,
    args_hash: String,
    retry: bool,
) -> DaemonMsg {
    // What is stored and shown: bounded, then redacted.
    let redacted = redact_value(&latch_core::redact::bounded(&args));
    // Conditions a model must judge are settled first, the lock released.
    let answers = crate::judge::settle(shared, conn, server, tool, &args, &redacted, &args_hash).await;
    let now = now_ms();
    // The server's cwd and environment, read before the lock is taken.
    let shim_pid = shared.engine().shims.get(&conn).map(|s| s.info.pid);
    let place = crate::identity::server_env_cached(shim_pid);

    let (call_id, class, decision, reasons, rule, session, approval_id, hold_ms, effects, asked) = {
        let mut eng = shared.engine();
        let def = eng.tool_def(conn, tool);
        let def_hash = def.map(|d| d.hash.clone());
        let call = Call { server, tool, args: &args };
        let roots = eng.shims.get(&conn).and_then(|s| s.roots.clone());
        let place = Place { client_roots: roots.as_deref(), ..crate::identity::place(&place) };
        let facts = eng.facts(conn, server, tool);
        let mut verdict = latch_core::decide_with(&eng.policy, &call, def, &answers, place, facts);
        // While the accepted policy is unverified, the built-in defaults
        // bound it: the stricter decision wins.
        if let Some(floor) = &eng.floor {
            let bound = latch_core::decide_with(floor, &call, def, &answers, place, facts);
            if bound.evaluation.decision > verdict.evaluation.decision {
                verdict = bound;
            }
        }
        let class = verdict.classification.class.as_str().to_owned();
        // Reasons may quote argument text (hosts, SQL, pipeline stages).
        let mut reasons: Vec<String> = verdict
            .classification
            .reasons
            .iter()
            .chain(&verdict.evaluation.reasons)
            .map(|r| latch_core::redact::redact_text(r).into_owned())
            .collect();
        let call_id = eng.next_call_id();
        let session = eng.session_of(conn).unwrap_or_default();
        let client = eng.shims.get(&conn).and_then(|s| s.info.client.clone());
        let prompt = crate::hook::prompt_asks(&mut eng, conn, tool);
        let hold_ms = if prompt {
            crate::hook::PROMPT_HOLD_MS
        } else {
            eng.hold_ms(shared.hold_override, server, client.as_ref())
        };
        let conflicted = eng.conflicted(server, tool);
        if conflicted && verdict.evaluation.decision == CoreDecision::Allow {
            reasons.push(format!("tool {tool:?} is described two different ways under server {server:?}: asking"));
        }
        if prompt && verdict.evaluation.decision == CoreDecision::Allow {
            reasons.push(format!("{server} asks its user for permission: a person may answer in Latch"));
        }
        let mut decision = match verdict.evaluation.decision {
            CoreDecision::Allow if conflicted || prompt => Decision::Ask,
            d => crate::wire::decision(d),
        };
        let mut approval_id = None;
        let mut effects = Vec::new();
        if decision == Decision::Ask {
            // The call is the shim's until it is answered.
            eng.calls.insert(call_id.clone(), engine::Call { audit_id: 0, conn });
            let ask = approval::Ask {
                call_id: call_id.clone(),
                session: session.clone(),
                server: server.to_owned(),
                tool: tool.to_owned(),
                args_hash: args_hash.clone(),
                def_hash: def_hash.clone(),
                class: verdict.classification.class,
                retry,
                summary: serde_json::json!({"args": redacted, "reasons": reasons}),
                now_ms: now,
                hold_ms: Some(hold_ms as i64),
            };
            for effect in eng.approvals.handle(approval::Event::Ask(ask)) {
                match effect {
                    Effect::Resolve { call_id: c, outcome } if c == call_id => match outcome {
                        Fsm::Allow { reason, approval_id: a } => {
                            decision = Decision::Allow;
                            reasons.push(reason);
                            approval_id = a;
                        }
                        Fsm::Deny { reason, approval_id: a } => {
                            decision = Decision::Deny;
                            reasons.push(reason);
                            approval_id = a;
                        }
                        Fsm::AwaitingApproval { approval_id: a } => approval_id = Some(a),
                        Fsm::Dropped { reason } => {
                            decision = Decision::Deny;
                            reasons.push(reason);
                        }
                    },
                    Effect::Hold { call_id: c, approval_id: a, hold_until } if c == call_id => {
                        eng.held.insert(c, engine::Held { conn, hold_until });
                        approval_id = Some(a);
                    }
                    other => effects.push(other),
                }
            }
        }
        // The person may reveal what redaction masks, while the approval
        // is pending (memory only).
        if decision == Decision::Ask
            && let Some(a) = &approval_id
            && eng.approvals.get(a).is_some()
        {
            eng.reveal.keep(a, &args);
        }
        // Approving a call nothing speaks for makes its definition known.
        if let (Decision::Ask, Some(a), Some(h)) = (decision, &approval_id, def_hash)
            && verdict.classification.flags.contains(&Flag::NoEvidence)
        {
            eng.known
                .asked(a, crate::known::Definition { server: server.to_owned(), tool: tool.to_owned(), def_hash: h });
        }
        let asked = verdict.evaluation.decision == CoreDecision::Ask || conflicted || prompt;
        // A new approval is listed only once its call row is committed.
        for effect in &effects {
            if let Effect::PendingAdded { approval_id } = effect {
                eng.unsaved.insert(approval_id.clone());
            }
        }
        (call_id, class, decision, reasons, verdict.evaluation.rule, session, approval_id, hold_ms, effects, asked)
    };

    let ev = NewEvent {
        time_ms: now,
        kind: "call",
        server: server.to_owned(),
        session,
        tool: tool.to_owned(),
        class: class.clone(),
        decision: decision.as_str().to_owned(),
        reasons: reasons.clone(),
        args: redacted.to_string(),
        args_hash: args_hash.clone(),
        rule,
        approval_id: approval_id.clone(),
        detail: crate::hook::detail(shared, conn),
        ..Default::default()
    };
    if asked {
        // The approvals' state joins the call row's commit: a new pending
        // approval is durable before anyone hears of it, and a single-use
        // grant this call consumed stays consumed after a crash.
        persist(shared).await;
    }
    // A console row only when a console listens: no copy of the arguments
    // otherwise.
    let row = (shared.engine().consoles > 0).then(|| row_of(0, &ev, &redacted));
    let inserted = shared.audit.insert(ev).await;
    if let Some(a) = &approval_id {
        shared.engine().unsaved.remove(a);
    }
    let audit_id = match inserted {
        Ok(id) => id,
        Err(e) => {
            // Fail closed: a call we cannot record does not run.
            let effects = {
                let mut eng = shared.engine();
                eng.held.remove(&call_id);
                eng.calls.remove(&call_id);
                eng.approvals.handle(approval::Event::Cancelled { call_id: call_id.clone(), now_ms: now_ms() })
            };
            apply(shared, effects, None).await;
            return deny_reply(req, &class, format!("the audit log could not record the call ({e}); nothing ran"));
        }
    };
    let held_until = {
        let mut eng = shared.engine();
        if decision == Decision::Deny {
            eng.calls.remove(&call_id);
        } else {
            eng.calls.insert(call_id.clone(), engine::Call { audit_id, conn });
        }
        eng.held.get(&call_id).map(|h| h.hold_until)
    };
    if decision == Decision::Deny {
        // Nothing will forward it: complete the row now.
        shared.audit.finish(audit_id, "blocked", 0).await;
    }
    if let Some(row) = row {
        shared.emit(Event::Call { row: AuditRow { id: audit_id, ..row } });
    }
    if let Some(hold_until) = held_until {
        start_hold_timer(shared, call_id.clone(), hold_until);
    }
    // The rest: console events for the approval, answers to other calls.
    apply(shared, effects, None).await;
    let reason = summary(&class, &reasons);
    let ask_in_client = match (&approval_id, held_until) {
        (Some(a), Some(_)) => crate::in_client::question(&shared.engine(), conn, server, tool, &redacted, a),
        _ => None,
    };
    DaemonMsg::Decision {
        req,
        call_id,
        decision,
        class,
        reason,
        approval_id,
        hold_ms: Some(held_until.map(|h| (h - now_ms()).max(0) as u64).unwrap_or(0).min(hold_ms)),
        ask_in_client,
    }
}

fn summary(class: &str, reasons: &[String]) -> String {
    if reasons.is_empty() { class.to_owned() } else { format!("{class}: {}", reasons.join("; ")) }
}

fn row_of(id: i64, ev: &NewEvent, args: &Value) -> AuditRow {
    AuditRow {
        id,
        time: ev.time_ms,
        kind: ev.kind.to_owned(),
        server: ev.server.clone(),
        tool: ev.tool.clone(),
        class: ev.class.clone(),
        decision: ev.decision.clone(),
        reasons: ev.reasons.clone(),
        args: args.clone(),
        args_hash: ev.args_hash.clone(),
        outcome: None,
        latency_us: None,
        approval_id: ev.approval_id.clone(),
        answered_by: None,
        rule: ev.rule.clone(),
    }
}
