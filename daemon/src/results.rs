//! Poisoned results, the daemon's side: each shim learns what to do with
//! its server's results that have findings (`[threats] results`, per
//! server), and what a shim found becomes an audit row tied to the call,
//! and under `hold` a pending approval a person decides like a call's.
//!
//! A held result's approval is keyed so that nothing else ever matches it:
//! its definition hash is `result:` and the hold's own id, so a grant made
//! by answering it (for the session, or "always") covers no call, and an
//! "always" answer writes no policy rule ([`writes_no_rule`]).

use std::sync::Arc;

use latch_core::Class;
use latch_core::approval::{self, Effect, Outcome as Fsm};
use latch_core::redact::{redact_text, redact_value};
use latch_core::threat::result::Handling;
use latch_proto::{DaemonMsg, Decision, ResultReport, frame};
use serde_json::{Value, json};

use crate::audit::NewEvent;
use crate::engine::{self, Engine};
use crate::hold_key::{HOLD_KEY, writes_no_rule};
use crate::now_ms;
use crate::outbox::Outbox;
use crate::shared::{Shared, send};

/// How long a held result's approval holds on the daemon's side: the shim
/// keeps the usual hold and withdraws the approval when it ends (so the
/// approval never outlives the result it is about).
const HOLD_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// Most findings kept in a row.
const MAX_ROW_FINDINGS: usize = 32;

fn rank(h: Handling) -> u8 {
    match h {
        Handling::Record => 0,
        Handling::Mask => 1,
        Handling::Hold => 2,
    }
}

/// The mode for `server`'s results: the policy's, bounded by the built-in
/// defaults while the accepted policy is unverified (the stricter wins).
pub(crate) fn mode_for(eng: &Engine, server: &str) -> Handling {
    let mode = eng.policy.threats().results_for(server);
    match &eng.floor {
        Some(floor) => {
            let bound = floor.threats().results_for(server);
            if rank(bound) > rank(mode) { bound } else { mode }
        }
        None => mode,
    }
}

/// A shim asks what to do with its server's results.
pub(crate) async fn query(shared: &Shared, name: &str, tx: &Outbox) {
    let mode = mode_for(&shared.engine(), name);
    send(tx, &DaemonMsg::ResultsMode { mode: mode.as_str().to_owned() }).await;
}

/// A new policy is in force: every shim hears its mode again.
pub(crate) fn policy_changed(shared: &Shared) {
    let eng = shared.engine();
    for (conn, shim) in &eng.shims {
        if eng.hooks.contains_key(conn) {
            continue;
        }
        let mode = mode_for(&eng, &shim.info.server);
        shim.tx.push(frame::encode(&DaemonMsg::ResultsMode { mode: mode.as_str().to_owned() }));
    }
}

/// A shim found something in a result: an audit row tied to the call, and
/// for a hold, a pending approval.
pub(crate) async fn found(shared: &Arc<Shared>, conn: u64, server: &str, tx: &Outbox, r: ResultReport) {
    let now = now_ms();
    let subject = redact_text(&r.subject).into_owned();
    let findings: Vec<Value> = r
        .findings
        .iter()
        .take(MAX_ROW_FINDINGS)
        .map(|f| {
            json!({
                "kind": f.kind,
                "place": f.place,
                "reason": f.reason,
                // Redacted by the shim; again here, as for anything stored.
                "excerpt": redact_text(&f.excerpt),
            })
        })
        .collect();
    let mut reasons: Vec<String> = r
        .findings
        .iter()
        .take(MAX_ROW_FINDINGS)
        .map(|f| redact_text(&format!("result {}: {} in {}: {}", r.handling, f.kind, f.place, f.reason)).into_owned())
        .collect();
    let (call_row, session, client) = {
        let eng = shared.engine();
        // Only a call of this very connection: a shim cannot tie its findings to
        // another shim's call.
        let row = r.call_id.as_ref().and_then(|c| eng.calls.get(c)).filter(|c| c.conn == conn).map(|c| c.audit_id);
        (row, eng.session_of(conn).unwrap_or_default(), eng.shims.get(&conn).and_then(|s| s.info.client.clone()))
    };
    let args = redact_value(&json!({
        "method": r.method,
        "subject": subject,
        "request_id": r.request_id,
        "call_id": r.call_id,
        "call_row": call_row,
        "bytes": r.bytes,
        "findings": findings,
    }));
    let tool = if r.method == "tools/call" { subject.clone() } else { r.method.clone() };

    // A hold: an approval that only this result waits on.
    let mut held = None;
    if let Some(key) = &r.hold {
        reasons.push(format!(
            "the result of {subject} waits: a person decides in Latch whether the agent may read it as it came"
        ));
        let (hold_id, reply, effects) = {
            let mut eng = shared.engine();
            let hold_id = eng.next_call_id();
            let hold_ms = eng.hold_ms(shared.hold_override, server, client.as_ref());
            let ask = approval::Ask {
                call_id: hold_id.clone(),
                session: session.clone(),
                server: server.to_owned(),
                tool: format!("{tool} (result)"),
                args_hash: format!("{HOLD_KEY}{hold_id}"),
                def_hash: Some(format!("{HOLD_KEY}{hold_id}")),
                class: Class::Read,
                retry: false,
                summary: json!({"args": args, "reasons": reasons}),
                now_ms: now,
                hold_ms: Some(HOLD_LIFETIME_MS),
            };
            let refused = crate::limits::refuse_new(&eng.approvals, &ask.key(), &session, now);
            let mut reply = (Decision::Deny, None, refused.clone().unwrap_or_default(), 0u64);
            let mut effects = Vec::new();
            if refused.is_none() {
                for effect in eng.approvals.handle(approval::Event::Ask(ask)) {
                    match effect {
                        Effect::Hold { call_id, approval_id, hold_until } if call_id == hold_id => {
                            eng.held.insert(call_id, engine::Held { conn, hold_until });
                            reply = (Decision::Ask, Some(approval_id), String::new(), hold_ms);
                        }
                        Effect::Resolve { call_id, outcome } if call_id == hold_id => {
                            reply.2 = match outcome {
                                Fsm::Deny { reason, .. } | Fsm::Allow { reason, .. } | Fsm::Dropped { reason } => {
                                    reason
                                }
                                Fsm::AwaitingApproval { .. } => "no approval could be made".into(),
                            };
                        }
                        other => {
                            if let Effect::PendingAdded { approval_id } = &other {
                                eng.unsaved.insert(approval_id.clone());
                            }
                            effects.push(other);
                        }
                    }
                }
            }
            (hold_id, reply, effects)
        };
        held = Some((key.clone(), hold_id, reply, effects));
    }

    let approval_id = held.as_ref().and_then(|(_, _, reply, _)| reply.1.clone());
    if approval_id.is_some() {
        // The pending approval is durable before anyone hears of it.
        shared.persist().await;
    }
    let ev = NewEvent {
        time_ms: now,
        kind: "result",
        server: server.to_owned(),
        session,
        tool,
        class: Class::Read.as_str().to_owned(),
        decision: if r.hold.is_some() { "ask".into() } else { r.handling.clone() },
        reasons,
        args: args.to_string(),
        approval_id: approval_id.clone(),
        detail: Some(match call_row {
            Some(row) => format!("result of the call in row {row} ({} bytes)", r.bytes),
            None => format!("{} result ({} bytes)", r.method, r.bytes),
        }),
        ..Default::default()
    };
    let inserted = shared.audit.insert(ev).await;
    let Some((key, hold_id, (mut decision, approval_id, mut reason, hold_ms), effects)) = held else {
        return;
    };
    if let Err(e) = inserted {
        // Fail closed: a hold that cannot be recorded is withheld.
        decision = Decision::Deny;
        reason = format!("the audit log could not record it ({e})");
        let effects = {
            let mut eng = shared.engine();
            eng.held.remove(&hold_id);
            eng.approvals.handle(approval::Event::Cancelled { call_id: hold_id.clone(), now_ms: now_ms() })
        };
        crate::driver::apply(shared, effects, None).await;
    }
    // The shim learns the hold's id before anyone can answer it (the
    // approval is listed only once `unsaved` lets go of it, and answers
    // reach the shim through the same queue).
    let reply = DaemonMsg::ResultHeld {
        key,
        hold_id: hold_id.clone(),
        decision,
        approval_id: approval_id.clone(),
        reason,
        hold_ms,
    };
    send(tx, &reply).await;
    if let Some(a) = &approval_id {
        shared.engine().unsaved.remove(a);
    }
    let hold_until =
        (decision == Decision::Ask).then(|| shared.engine().held.get(&hold_id).map(|h| h.hold_until)).flatten();
    if let Some(until) = hold_until {
        crate::driver::start_hold_timer(shared, hold_id, until);
    }
    crate::driver::apply(shared, effects, None).await;
}

/// A shim connection closed: the results it held can no longer be
/// released, so their approvals are withdrawn (before the registry forgets
/// which calls the connection held).
pub(crate) async fn shim_closed(shared: &Arc<Shared>, conn: u64) {
    let effects = {
        let mut eng = shared.engine();
        let holds: Vec<String> = eng
            .held
            .iter()
            .filter(|(_, h)| h.conn == conn)
            .map(|(c, _)| c.clone())
            .filter(|c| {
                let approval = eng.approvals.held_on(c).and_then(|a| eng.approvals.get(a));
                approval.is_some_and(|p| writes_no_rule(p.key.def_hash.as_deref()))
            })
            .collect();
        let mut effects = Vec::new();
        for call_id in holds {
            eng.held.remove(&call_id);
            effects.extend(eng.approvals.handle(approval::Event::Cancelled { call_id, now_ms: now_ms() }));
        }
        effects
    };
    crate::driver::apply(shared, effects, None).await;
}
