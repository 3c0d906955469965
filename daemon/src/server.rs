//! The async shell: socket, connections, the decision path, shutdown.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use latch_core::redact::redact_value;
use latch_core::{Call, Decision as CoreDecision, Policy, ToolDef};
use latch_proto::paths::Paths;
use latch_proto::{
    AuditRow, ClientMsg, DaemonMsg, Decision, Event, PROTOCOL_VERSION, PendingItem, Role, ShimInfo, StatusReport,
    canonical, frame,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::approvals::{Answered, Asked, Key, Waiter};
use crate::audit::{Audit, NewEvent};
use crate::engine::{self, Engine};
use crate::lock::Lock;
use crate::{DaemonError, now_ms, private_dir};

/// A single-use grant lives this long when nobody consumes it.
const GRANT_TTL_MS: i64 = 10 * 60 * 1000;

struct Shared {
    paths: Paths,
    audit: Audit,
    engine: Mutex<Engine>,
    events: broadcast::Sender<Event>,
    /// `LATCH_HOLD_MS`: one hold limit for every client (tests, scripts).
    hold_override: Option<u64>,
}

impl Shared {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock must not wedge the daemon: the
        // state is still consistent enough to answer and shut down.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(paths: Paths) -> Result<(), DaemonError> {
    private_dir(&paths.data_dir)?;
    private_dir(paths.socket_dir())?;
    let _lock = Lock::acquire(&paths.data_dir)?;
    let audit = Audit::open(&paths.database)?;

    let policy = Policy::builtin();
    let salt = (now_ms() as u64) ^ ((std::process::id() as u64) << 32);
    let (events, _) = broadcast::channel(1024);
    let hold_override = std::env::var("LATCH_HOLD_MS").ok().and_then(|v| v.parse().ok());
    let shared = Arc::new(Shared {
        paths: paths.clone(),
        audit,
        engine: Mutex::new(Engine::new(policy, salt)),
        events,
        hold_override,
    });

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
    {
        let mut eng = shared.engine();
        for (approval_id, w) in eng.approvals.all_waiters() {
            if let Some(shim) = eng.shims.get(&w.conn) {
                let _ = shim.tx.try_send(frame::encode(&DaemonMsg::Resolved {
                    call_id: w.call_id.clone(),
                    approval_id,
                    decision: Decision::Deny,
                    reason:
                        "the Latch daemon is shutting down; the call did not run — retry it once the daemon is back"
                            .into(),
                }));
            }
        }
        eng.approvals.conn_gone(u64::MAX);
    }
    let _ = stop_tx.send(true);
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(3), async { while conns.join_next().await.is_some() {} }).await;
    shared.audit.flush().await;
    let _ = std::fs::remove_file(&paths.socket);
    Ok(())
}

fn peer_uid(stream: &Stream) -> Option<u32> {
    stream.peer_creds().ok()?.euid()
}

async fn connection(shared: Arc<Shared>, stream: Stream, conn: u64, mut stop: watch::Receiver<bool>) {
    let me = crate::audit::current_uid();
    let peer = peer_uid(&stream);
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
            match role {
                Role::Shim => {
                    let info =
                        ShimInfo { server: name.clone(), pid, session: session.clone(), since: now_ms(), client: None };
                    shared.engine().shims.insert(conn, engine::Shim { info: info.clone(), tx: tx.clone() });
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
                let req = serde_json::from_slice::<Value>(&buf)
                    .ok()
                    .and_then(|v| v.as_object()?.values().next()?.get("req")?.as_u64())
                    .unwrap_or(0);
                let _ = tx.send(frame::encode(&DaemonMsg::Error { req, message: e.to_string() })).await;
                continue;
            }
        };
        handle(&shared, conn, role, &name, &tx, msg).await;
    }

    match role {
        Role::Shim => {
            let info = {
                let mut eng = shared.engine();
                eng.approvals.conn_gone(conn);
                eng.calls.retain(|_, c| c.conn != conn);
                eng.shims.remove(&conn).map(|s| s.info)
            };
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
    }
    drop(tx);
    let _ = writer.await;
}

fn event_now() -> NewEvent {
    NewEvent { time_ms: now_ms(), ..Default::default() }
}

async fn record(shared: &Shared, ev: NewEvent) {
    shared.audit.record(ev).await;
}

async fn send(tx: &mpsc::Sender<Vec<u8>>, msg: &DaemonMsg) {
    let _ = tx.send(frame::encode(msg)).await;
}

async fn handle(shared: &Arc<Shared>, conn: u64, role: Role, name: &str, tx: &mpsc::Sender<Vec<u8>>, msg: ClientMsg) {
    match msg {
        ClientMsg::Hello { .. } => {}
        ClientMsg::Decide { req, tool, args, retry: _ } => {
            if role != Role::Shim {
                send(tx, &DaemonMsg::Error { req, message: "only shims ask for decisions".into() }).await;
                return;
            }
            let reply = decide(shared, req, conn, name, &tool, args.get()).await;
            send(tx, &reply).await;
        }
        ClientMsg::Client { info } => {
            if let Some(s) = shared.engine().shims.get_mut(&conn) {
                s.info.client = Some(info);
            }
        }
        ClientMsg::ToolsListed { tools, first_page } => {
            let parsed: Value = serde_json::from_str(tools.get()).unwrap_or(Value::Null);
            let defs = ToolDef::list_from_value(&parsed);
            let mut eng = shared.engine();
            let map = eng.tools.entry(name.to_owned()).or_default();
            if first_page {
                map.clear();
            }
            for d in defs {
                map.insert(d.name.clone(), d);
            }
        }
        ClientMsg::Finished { call_id, outcome, latency_us } => {
            let call = shared.engine().calls.remove(&call_id);
            if let Some(c) = call {
                shared.audit.finish(c.audit_id, outcome.as_str(), latency_us as i64).await;
                shared.emit(Event::Finished { audit_id: c.audit_id, outcome: outcome.as_str().into(), latency_us });
            }
        }
        ClientMsg::Cancelled { call_id } => {
            let withdrawn = shared.engine().approvals.cancel(&call_id);
            if let Some((item, others)) = withdrawn {
                resolve_waiters(shared, &item.id, &others, Decision::Deny, "withdrawn: the client cancelled the call")
                    .await;
                record(
                    shared,
                    NewEvent {
                        kind: "answer",
                        server: item.server.clone(),
                        tool: item.tool.clone(),
                        decision: "withdrawn".into(),
                        approval_id: Some(item.id.clone()),
                        answered_by: Some("client:cancelled".into()),
                        ..event_now()
                    },
                )
                .await;
                shared.emit(Event::PendingRemoved { id: item.id, decision: "withdrawn".into(), by: "client".into() });
            }
        }
        ClientMsg::HoldExpired { call_id } => {
            let now = now_ms();
            let mut eng = shared.engine();
            let (key, approved) = match eng.calls.get(&call_id) {
                Some(c) => (Some(c.key.clone()), c.approved),
                None => (None, false),
            };
            eng.approvals.hold_expired(&call_id, key, approved, now, GRANT_TTL_MS);
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
            let items = shared.engine().approvals.pending();
            send(tx, &DaemonMsg::Pending { req, items }).await;
        }
        ClientMsg::Answer { req, approval_id, approve, scope, reason, who } => {
            let channel = match role {
                Role::Console => "tui",
                Role::Cli => "cli",
                Role::Shim => "shim",
            };
            let by = if who.is_empty() { channel.to_owned() } else { format!("{channel}:{who}") };
            if role == Role::Shim {
                record(
                    shared,
                    NewEvent {
                        kind: "refused",
                        server: name.to_owned(),
                        approval_id: Some(approval_id.clone()),
                        detail: Some("a shim tried to answer an approval".into()),
                        ..event_now()
                    },
                )
                .await;
                send(tx, &DaemonMsg::Answered { req, ok: false, message: "shims may not answer approvals".into() })
                    .await;
                return;
            }
            let result = {
                let mut eng = shared.engine();
                let sessions: std::collections::HashMap<u64, String> =
                    eng.shims.iter().map(|(k, s)| (*k, s.info.session.clone())).collect();
                eng.approvals.answer(
                    &approval_id,
                    approve,
                    scope,
                    |c| sessions.get(&c).cloned(),
                    &by,
                    GRANT_TTL_MS,
                    now_ms(),
                )
            };
            match result {
                Answered::Done { waiters, item } => {
                    let decision = if approve { Decision::Allow } else { Decision::Deny };
                    let why = match (&reason, approve) {
                        (Some(r), _) => format!("{} by {by}: {r}", if approve { "approved" } else { "denied" }),
                        (None, true) => format!("approved by {by}"),
                        (None, false) => format!("denied by {by}"),
                    };
                    {
                        let mut eng = shared.engine();
                        for w in &waiters {
                            if let Some(c) = eng.calls.get_mut(&w.call_id) {
                                c.approved = approve;
                            }
                        }
                    }
                    resolve_waiters(shared, &item.id, &waiters, decision, &why).await;
                    record(
                        shared,
                        NewEvent {
                            kind: "answer",
                            server: item.server.clone(),
                            tool: item.tool.clone(),
                            class: item.class.clone(),
                            decision: decision.as_str().into(),
                            reasons: vec![why.clone()],
                            approval_id: Some(item.id.clone()),
                            answered_by: Some(by.clone()),
                            detail: Some(format!("scope {scope:?}")),
                            ..event_now()
                        },
                    )
                    .await;
                    shared.emit(Event::PendingRemoved { id: item.id.clone(), decision: decision.as_str().into(), by });
                    send(tx, &DaemonMsg::Answered { req, ok: true, message: why }).await;
                }
                Answered::AlreadyDecided(how) => {
                    send(
                        tx,
                        &DaemonMsg::Answered {
                            req,
                            ok: false,
                            message: format!("approval {approval_id} was already {how}"),
                        },
                    )
                    .await;
                }
                Answered::Unknown => {
                    send(
                        tx,
                        &DaemonMsg::Answered {
                            req,
                            ok: false,
                            message: format!("no pending approval {approval_id} — see `latch pending`"),
                        },
                    )
                    .await;
                }
            }
        }
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
                    shims: eng.shims.values().map(|s| s.info.clone()).collect(),
                    consoles: eng.consoles,
                    pending: eng.approvals.len() as u32,
                }
            };
            send(tx, &DaemonMsg::Status { req, status }).await;
        }
        ClientMsg::Audit { req, limit, before, filter } => match shared.audit.query(filter, before, limit).await {
            Ok(rows) => send(tx, &DaemonMsg::AuditRows { req, rows }).await,
            Err(e) => send(tx, &DaemonMsg::Error { req, message: e.to_string() }).await,
        },
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

async fn resolve_waiters(shared: &Shared, approval_id: &str, waiters: &[Waiter], decision: Decision, reason: &str) {
    let sends: Vec<_> = {
        let eng = shared.engine();
        waiters
            .iter()
            .filter_map(|w| {
                eng.shims.get(&w.conn).map(|s| {
                    (
                        s.tx.clone(),
                        frame::encode(&DaemonMsg::Resolved {
                            call_id: w.call_id.clone(),
                            approval_id: approval_id.to_owned(),
                            decision,
                            reason: reason.to_owned(),
                        }),
                    )
                })
            })
            .collect()
    };
    for (tx, line) in sends {
        let _ = tx.send(line).await;
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
    }
}

/// The decision path: classify, evaluate, consult approvals, commit the
/// audit row, answer. Any failure denies (fail closed).
async fn decide(shared: &Shared, req: u64, conn: u64, server: &str, tool: &str, raw_args: &str) -> DaemonMsg {
    let args: Value = match serde_json::from_str(raw_args) {
        Ok(v) => v,
        Err(e) => {
            return deny_reply(req, "", format!("the call's arguments are not valid JSON: {e}"));
        }
    };
    let redacted = redact_value(&args);
    let args_hash = canonical::hash(&args);
    let now = now_ms();
    let call_key = Key { server: server.to_owned(), tool: tool.to_owned(), args_hash: args_hash.clone() };

    let (call_id, class, decision, reasons, rule, session, approval, hold_ms) = {
        let mut eng = shared.engine();
        let verdict = latch_core::decide(&eng.policy, &Call { server, tool, args: &args }, eng.tool_def(server, tool));
        let class = verdict.classification.class.as_str().to_owned();
        let mut reasons = verdict.classification.reasons.clone();
        reasons.extend(verdict.evaluation.reasons.iter().cloned());
        let call_id = eng.next_call_id();
        let session = eng.session_of(conn).unwrap_or_default();
        let client = eng.shims.get(&conn).and_then(|s| s.info.client.clone());
        let hold_ms = eng.hold_ms(shared.hold_override, client.as_ref());
        let mut decision = match verdict.evaluation.decision {
            CoreDecision::Allow => Decision::Allow,
            CoreDecision::Ask => Decision::Ask,
            CoreDecision::Deny => Decision::Deny,
        };
        let mut approval = None;
        if decision == Decision::Ask {
            let item = PendingItem {
                id: String::new(),
                server: server.to_owned(),
                tool: tool.to_owned(),
                class: class.clone(),
                args: redacted.clone(),
                reasons: reasons.clone(),
                created_at: now,
                hold_until: now + hold_ms as i64,
                waiting: 1,
            };
            match eng.approvals.ask(call_key.clone(), &session, Waiter { call_id: call_id.clone(), conn }, item, now) {
                Ok(Asked::Granted { approve, reason }) => {
                    decision = if approve { Decision::Allow } else { Decision::Deny };
                    reasons.push(reason);
                }
                Ok(Asked::Held { approval_id, new }) => approval = Some((approval_id, new)),
                Err(reason) => {
                    decision = Decision::Deny;
                    reasons.push(reason);
                }
            }
        }
        (call_id, class, decision, reasons, verdict.evaluation.rule, session, approval, hold_ms)
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
        approval_id: approval.as_ref().map(|(id, _)| id.clone()),
        ..Default::default()
    };
    let audit_id = match shared.audit.insert(ev.clone()).await {
        Ok(id) => id,
        Err(e) => {
            // Fail closed: a call we cannot record does not run.
            if approval.is_some() {
                let _ = shared.engine().approvals.cancel(&call_id);
            }
            return deny_reply(req, &class, format!("the audit log could not record the call ({e}); nothing ran"));
        }
    };
    if decision == Decision::Deny {
        // Nothing will forward it: complete the row now.
        shared.audit.finish(audit_id, "blocked", 0).await;
    } else {
        shared.engine().calls.insert(call_id.clone(), engine::Call { audit_id, conn, key: call_key, approved: false });
    }
    shared.emit(Event::Call { row: row_of(audit_id, &ev, &redacted) });
    if let Some((id, true)) = &approval {
        let item = shared.engine().approvals.pending().into_iter().find(|i| &i.id == id);
        if let Some(item) = item {
            shared.emit(Event::PendingAdded { item });
        }
    }
    let reason = summary(&class, &reasons);
    DaemonMsg::Decision {
        req,
        call_id,
        decision,
        class,
        reason,
        approval_id: approval.map(|a| a.0),
        hold_ms: Some(hold_ms),
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
    }
}
