//! The approval driver: carries out what the approval state machine asks
//! for (answers to held calls, console events, audit rows for answers,
//! "always" rules, saving the approvals), runs the hold timers, and prunes
//! what expired.
//!
//! It never waits on a peer: answers are pushed to each connection's
//! bounded queue ([`crate::outbox`]), and a peer too far behind is dropped.

use std::sync::Arc;
use std::time::Duration;

use latch_core::Decision as CoreDecision;
use latch_core::approval::{self, AnswerResult, Closure, Effect, Outcome as Fsm, Reply};
use latch_proto::{DaemonMsg, Decision, Event, frame};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::audit::{Conclusion, NewEvent};
use crate::engine::{self, Engine};
use crate::now_ms;
use crate::outbox::Outbox;
use crate::shared::{RuleJob, Shared, event_now};

/// Starts the driver's tasks: hold expiries and the minute tick.
pub(crate) fn start(tasks: &mut JoinSet<()>, shared: &Arc<Shared>, expired: mpsc::UnboundedReceiver<(String, i64)>) {
    tasks.spawn(expiries(shared.clone(), expired));
    tasks.spawn(tick(shared.clone()));
}

/// Carries out what the approval state machine asked for: answers to held
/// calls, console events, audit rows for answers, the reply to whoever
/// answered. Saves the approvals afterwards so they survive a restart.
pub(crate) async fn apply(shared: &Arc<Shared>, effects: Vec<Effect>, reply_to: Option<(&Outbox, u64)>) {
    if effects.is_empty() {
        return;
    }
    let mut sends = Vec::new();
    let mut events = Vec::new();
    let mut rows = Vec::new();
    let mut timers = Vec::new();
    let mut rules = Vec::new();
    // Calls an answer released, and the answer: their rows end with it.
    let mut released: Vec<(i64, String)> = Vec::new();
    let mut answers: Vec<Conclusion> = Vec::new();
    // Who answered (for an "always" rule's comment).
    let mut answered_by: Option<String> = None;
    // Denied calls nothing will forward: their rows end `blocked` now.
    let mut blocked: Vec<i64> = Vec::new();
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
                    if decision != Decision::Ask {
                        eng.threats.settled(&call_id, decision == Decision::Allow, now_ms());
                        crate::taint::calls::settled(shared, &mut eng, &call_id, decision == Decision::Allow);
                    }
                    if decision != Decision::Ask
                        && let Some(call) = eng.calls.get(&call_id)
                    {
                        released.push((call.audit_id, approval_id.clone()));
                    }
                    // The shim answers a denied call itself and reports
                    // nothing: the call is over here.
                    if decision == Decision::Deny
                        && let Some(audit_id) = eng.calls.get(&call_id).map(|c| c.audit_id).filter(|&id| id != 0)
                    {
                        eng.calls.remove(&call_id);
                        blocked.push(audit_id);
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
                Effect::WriteRule { approval_id, server, tool, decision, def_hash } => {
                    let placed = eng.narrow.remove(&approval_id).unwrap_or_default();
                    if !crate::hold_key::writes_no_rule(def_hash.as_deref()) {
                        rules.push((approval_id, server, tool, decision, placed));
                    }
                }
                Effect::Record(r) => {
                    let by = format!("{}:{}", r.channel, r.who);
                    answered_by = Some(by.clone());
                    if r.result == AnswerResult::Decided {
                        answers.push(Conclusion {
                            ids: Vec::new(),
                            approval_id: r.approval_id.clone(),
                            answer: if r.decision == CoreDecision::Allow { "allow" } else { "deny" },
                            answered_by: by.clone(),
                            at_ms: r.at,
                            earlier: true,
                        });
                    }
                    rows.push(NewEvent {
                        answered_by: Some(by),
                        server: r.server,
                        tool: r.tool,
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
    for (approval_id, server, tool, decision, placed) in rules {
        // "always": a rule the user can read and undo, written at once; the
        // in-memory grant covers the moment until the reload.
        let rule = latch_core::policy::NewRule {
            server: server.clone(),
            tool: tool.clone(),
            effect: decision,
            comment: latch_core::policy::origin::comment(
                answered_by.as_deref(),
                &approval_id,
                &crate::audit::retention::utc(now_ms()),
            ),
            insert_before: placed.before,
            narrow: placed.narrow,
        };
        // Written by the policy component, off the runtime; the answer
        // waits for it, so the person hears of the rule once it is there.
        let (done, written) = oneshot::channel();
        let detail = match shared.rules.send(RuleJob { rule, done }) {
            Ok(()) => written.await.unwrap_or_else(|_| "could not write the rule: the daemon is stopping".into()),
            Err(_) => "could not write the rule: the daemon is stopping".into(),
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
    for mut c in answers {
        c.ids = released.iter().filter(|(_, a)| *a == c.approval_id).map(|(id, _)| *id).collect();
        shared.audit.concluded(c).await;
    }
    for &audit_id in &blocked {
        shared.audit.finish(audit_id, "blocked", 0).await;
    }
    // What anyone is told next (a shim, a console, the person answering) is
    // on disk first: answers, their audit rows and the approvals' state.
    shared.persist().await;
    shared.audit.flush().await;
    for (tx, line) in sends {
        tx.push(line);
    }
    for ev in events {
        shared.emit(ev);
    }
    if !blocked.is_empty() && shared.engine().consoles > 0 {
        for audit_id in blocked {
            shared.emit(Event::Finished { audit_id, outcome: "blocked".into(), latency_us: 0 });
        }
    }
    for (call_id, hold_until) in timers {
        start_hold_timer(shared, call_id, hold_until);
    }
}

/// When the hold ends, [`expiries`] hears of it (and checks the call is
/// still held on this very hold).
pub(crate) fn start_hold_timer(shared: &Shared, call_id: String, hold_until: i64) {
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

/// Housekeeping for the approvals: prune what expired.
async fn tick(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        let effects = shared.engine().approvals.handle(approval::Event::Tick { now_ms: now_ms() });
        apply(&shared, effects, None).await;
    }
}
