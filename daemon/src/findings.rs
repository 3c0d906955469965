//! The tool findings a person looks at and accepts (issue 18), and
//! shadowing among the servers the daemon knows.
//!
//! Listing findings is open to consoles and the CLI. Accepting a
//! definition loosens (its calls stop asking), so it needs the PIN like any
//! loosening, is refused to shims and hooks, and accepts only the
//! definition the person was shown (its hash): a server that changed it
//! again meanwhile stays changed. Grants and known definitions are bound to
//! a definition's hash: those of an older definition do not cover calls to
//! the accepted one.

use std::collections::HashMap;
use std::sync::Arc;

use latch_core::ToolDef;
use latch_core::threat::Finding;
use latch_core::threat::describe::{ServerTools, shadowing};
use latch_proto::{DaemonMsg, Event, Pin, Role};

use crate::answers::{channel_of, refused};
use crate::audit::NewEvent;
use crate::now_ms;
use crate::outbox::Outbox;
use crate::pin::Refusal;
use crate::shared::{Shared, send};

/// `ToolFindings`: every server's tools with findings.
pub(crate) async fn list(shared: &Arc<Shared>, tx: &Outbox, req: u64) {
    let all = shared.engine().pins.all();
    let mut items = Vec::new();
    for (name, server) in all {
        items.extend(server.lock().await.findings(&name));
    }
    send(tx, &DaemonMsg::ToolFindings { req, items, pin_set: shared.pin.is_set() }).await;
}

/// What a `ToolAccept` names.
pub(crate) struct AcceptReq {
    pub req: u64,
    pub server: String,
    pub tool: String,
    pub hash: String,
    pub pin: Option<Pin>,
}

/// `ToolAccept` from a console or the CLI: with the PIN when one is set.
pub(crate) async fn accept(shared: &Arc<Shared>, conn: u64, role: Role, tx: &Outbox, a: AcceptReq) {
    let channel = channel_of(role);
    let checked = if role.speaks_for_agent() {
        Err(Refusal::Missing)
    } else if shared.pin.is_unlocked(conn) && shared.pin.key().is_some() {
        Ok(())
    } else {
        shared.pin.check(a.pin.as_ref().map(|p| p.0.as_str()), now_ms()).await.map(|_| ())
    };
    if let Err(refusal) = checked {
        refused(shared, "tool_accept_refused", channel, conn, None, &refusal).await;
        let message = format!("the definition of {:?} was not accepted: {refusal}", a.tool);
        send(tx, &DaemonMsg::Done { req: a.req, ok: false, message }).await;
        return;
    }
    let Some(server) = shared.engine().pins.get(&a.server) else {
        let message = format!("Latch knows no tools of server {:?}", a.server);
        send(tx, &DaemonMsg::Done { req: a.req, ok: false, message }).await;
        return;
    };
    let done = server.lock().await.accept(&a.tool, &a.hash);
    let state = match done {
        Ok(state) => state,
        Err(message) => {
            send(tx, &DaemonMsg::Done { req: a.req, ok: false, message }).await;
            return;
        }
    };
    crate::pins::save(&shared.audit, &a.server, None, Some(state)).await;
    let who = shared.pin.who(conn);
    shared
        .record(NewEvent {
            time_ms: now_ms(),
            kind: "tool_accepted",
            server: a.server.clone(),
            tool: a.tool.clone(),
            decision: "allow".into(),
            answered_by: Some(format!("{channel}:{who}")),
            detail: Some(format!("definition {} accepted", short(&a.hash))),
            ..Default::default()
        })
        .await;
    shared.audit.flush().await;
    shared.emit(Event::FindingsChanged);
    // The accepted tool may be leased again (only a loosening: the epoch
    // moves anyway).
    crate::lease::reissue_all(shared);
    tracing::warn!("{channel}:{who} accepted the definition of {:?} of server {:?}", a.tool, a.server);
    let message = format!("accepted: calls to {:?} of {:?} are decided by the policy again", a.tool, a.server);
    send(tx, &DaemonMsg::Done { req: a.req, ok: true, message }).await;
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Shadowing among all servers the daemon has pinned, in the order they
/// were first pinned: each server's findings set anew, new ones recorded
/// when `record` (not at start: they were when first found).
/// The comparison runs on the blocking pool; each server's lock is held
/// only to read its tools and to set its findings.
pub(crate) async fn reshadow(shared: &Arc<Shared>, record: bool) {
    let all = shared.engine().pins.all();
    let mut lists = Vec::with_capacity(all.len());
    for (name, server) in &all {
        let tools: Vec<serde_json::Value> = {
            let s = server.lock().await;
            s.current().map(|p| serde_json::json!({"name": p.name, "description": p.description})).collect()
        };
        lists.push((name.clone(), tools));
    }
    let work = tokio::task::spawn_blocking(move || {
        let servers: Vec<ServerTools> = lists
            .into_iter()
            .map(|(server, tools)| ServerTools {
                server,
                tools: tools.iter().filter_map(ToolDef::from_value).collect(),
            })
            .collect();
        let mut by_server: HashMap<String, HashMap<String, Vec<Finding>>> = HashMap::new();
        for s in shadowing(&servers) {
            by_server.entry(s.server).or_default().entry(s.tool).or_default().push(s.finding);
        }
        by_server
    });
    let Ok(mut by_server) = work.await else { return };
    let now = now_ms();
    let mut rows = Vec::new();
    for (name, server) in &all {
        let found = by_server.remove(name).unwrap_or_default();
        let mut s = server.lock().await;
        let before = std::mem::take(&mut s.shadows);
        for (tool, findings) in found {
            let since = match before.get(&tool) {
                Some((old, since)) if *old == findings => *since,
                _ if !record => 0,
                _ => {
                    rows.push(NewEvent {
                        time_ms: now,
                        kind: "tool_suspect",
                        server: name.clone(),
                        tool: tool.clone(),
                        decision: "ask".into(),
                        reasons: findings.iter().map(crate::pins::reason_line).collect(),
                        ..Default::default()
                    });
                    now
                }
            };
            s.shadows.insert(tool, (findings, since));
        }
    }
    for row in rows {
        shared.record(row).await;
    }
}
