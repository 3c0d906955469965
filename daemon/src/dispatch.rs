//! What a connection asks, routed to the component that owns it.

use std::sync::Arc;

use latch_core::approval;
use latch_proto::{ClientMsg, DaemonMsg, Event, Role, StatusReport, frame};
use tokio::sync::broadcast;

use crate::audit::NewEvent;
use crate::now_ms;
use crate::outbox::Outbox;
use crate::shared::{Shared, event_now, send};

/// Frames at least this large are decoded, hashed and classified off the
/// runtime.
pub(crate) const LARGE_FRAME: usize = 256 * 1024;

/// `frame` is the line `msg` was read from.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    conn: u64,
    role: Role,
    name: &str,
    tx: &Outbox,
    msg: ClientMsg,
    frame: &mut Vec<u8>,
) {
    match msg {
        ClientMsg::Hello { .. } => {}
        ClientMsg::Decide { req, tool, args, retry } => {
            if !role.speaks_for_agent() {
                send(tx, &DaemonMsg::Error { req, message: "only shims and hooks ask for decisions".into() }).await;
                return;
            }
            // Every digit counts: from the frame's text if parsing lost some.
            let large = frame.len() >= LARGE_FRAME;
            let (args, args_hash) = if large {
                // Hashing 200 MiB takes a while: not on the runtime.
                let line = std::mem::take(frame);
                let work = tokio::task::spawn_blocking(move || {
                    let hash = crate::wire::args_hash(&args, &line);
                    (args, hash)
                });
                match work.await {
                    Ok(done) => done,
                    Err(_) => {
                        let message = "Latch failed hashing the call's arguments; nothing ran".into();
                        send(tx, &DaemonMsg::Error { req, message }).await;
                        return;
                    }
                }
            } else {
                let hash = crate::wire::args_hash(&args, frame);
                (args, hash)
            };
            let reply = crate::decide::decide(shared, req, conn, name, &tool, args, args_hash, retry, large).await;
            send(tx, &reply).await;
        }
        ClientMsg::Client { info } => crate::registry::set_client(shared, conn, info),
        ClientMsg::ClientRoots { roots } => crate::registry::set_roots(shared, conn, roots),
        ClientMsg::ToolsListed { tools, first_page } => {
            crate::registry::tools_listed(shared, conn, name, tools.get(), first_page).await;
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
            crate::driver::apply(shared, effects, None).await;
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
            crate::driver::apply(shared, effects, None).await;
        }
        ClientMsg::InClientAnswer { call_id, approve } => {
            crate::in_client::answer(shared, conn, role, call_id, approve).await;
        }
        ClientMsg::Malformed { from, reason, bytes } => {
            shared
                .record(NewEvent {
                    kind: "malformed",
                    server: name.to_owned(),
                    decision: "deny".into(),
                    detail: Some(format!("{bytes} bytes from the {from}: {reason}")),
                    ..event_now()
                })
                .await;
        }
        ClientMsg::ListPending { req } => {
            // What a person is shown survives a crash.
            shared.audit.flush().await;
            let items = shared.engine().pending_items();
            send(tx, &DaemonMsg::Pending { req, items }).await;
        }
        ClientMsg::Answer { req, approval_id, approve, scope, reason, who: _, pin } => {
            let a = crate::answers::AnswerReq { req, approval_id, approve, scope, reason, pin, narrow: None };
            crate::answers::answer(shared, conn, role, tx, a).await;
        }
        ClientMsg::AnswerNarrow { req, approval_id, offer, pin } => {
            crate::always::answer_narrow(shared, conn, role, tx, req, approval_id, offer, pin).await;
        }
        ClientMsg::ListRules { req } => crate::rules::list(shared, role, tx, req).await,
        ClientMsg::DeleteRule { req, number, line } => crate::rules::delete(shared, role, tx, req, number, line).await,
        ClientMsg::Unlock { req, pin } => crate::answers::unlock(shared, conn, role, tx, req, pin).await,
        ClientMsg::SetPin { req, old, new } => crate::answers::set_pin(shared, conn, role, tx, req, old, new).await,
        ClientMsg::PolicyAccept { req, pin } => crate::answers::policy_accept(shared, conn, role, tx, req, pin).await,
        ClientMsg::Stop { req } => crate::stop::stop(shared, conn, role, tx, req).await,
        ClientMsg::Resume { req, pin } => crate::stop::resume(shared, conn, role, tx, req, pin).await,
        ClientMsg::ToolFindings { req } => crate::findings::list(shared, tx, req).await,
        ClientMsg::ToolAccept { req, server, tool, hash, pin } => {
            let a = crate::findings::AcceptReq { req, server, tool, hash, pin };
            crate::findings::accept(shared, conn, role, tx, a).await
        }
        ClientMsg::Taints { req } => crate::taint::calls::taints(shared, role, tx, req).await,
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
                    stopped_since: eng.stopped,
                    managed: eng.managed_note.clone(),
                    export: eng.export.clone(),
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
        ClientMsg::Reveal { req, approval_id } => {
            crate::answers::reveal(shared, conn, role, tx, req, approval_id).await
        }
        ClientMsg::ResultsModeQuery {} => crate::results::query(shared, name, tx).await,
        ClientMsg::ResultFound(report) if role == Role::Shim => {
            crate::results::found(shared, conn, name, tx, report).await;
        }
        ClientMsg::ResultFound(_) => {}
        ClientMsg::LocalCall(row) if role == Role::Shim => crate::lease::local_call(shared, conn, name, row).await,
        ClientMsg::LocalCall(_) => {}
        ClientMsg::Subscribe { req } => {
            let mut rx = shared.events.subscribe();
            send(tx, &DaemonMsg::Subscribed { req }).await;
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            if !tx.send(frame::encode(&DaemonMsg::Event { event })).await {
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
