//! The decision path: classify, evaluate, consult approvals, commit the
//! audit row, answer. Any failure denies (fail closed).
//!
//! A call walks down from here and comes back with its answer: the judge
//! settles conditions first ([`crate::judge::settle`]), the core decides
//! ([`latch_core::decide_with`]), the approval state machine answers an
//! ask, the audit writer commits the row, the approval driver carries out
//! the rest ([`crate::driver`]).

use std::sync::Arc;

use latch_core::approval::{self, Effect, Outcome as Fsm};
use latch_core::policy::Place;
use latch_core::redact::redact_value;
use latch_core::{Call, Decision as CoreDecision, Flag};
use latch_proto::{AuditRow, DaemonMsg, Decision, Event};
use serde_json::Value;

use crate::audit::NewEvent;
use crate::engine;
use crate::now_ms;
use crate::shared::Shared;

/// The decision path: classify, evaluate, consult approvals, commit the
/// audit row, answer. Any failure denies (fail closed).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn decide(
    shared: &Arc<Shared>,
    req: u64,
    conn: u64,
    server: &str,
    tool: &str,
    args: Value,
    args_hash: String,
    retry: bool,
    large: bool,
) -> DaemonMsg {
    // What is stored and shown: bounded, then redacted.
    let (args, redacted) = if large {
        let work = tokio::task::spawn_blocking(move || {
            let redacted = redact_value(&latch_core::redact::bounded(&args));
            (args, redacted)
        });
        match work.await {
            Ok(done) => done,
            Err(_) => return deny_reply(req, "", "Latch failed reading the call's arguments; nothing ran".into()),
        }
    } else {
        let redacted = redact_value(&latch_core::redact::bounded(&args));
        (args, redacted)
    };
    // The kill switch: nothing is judged or classified, the call is denied.
    if shared.engine().stopped.is_some() {
        return stopped(shared, req, conn, server, tool, &redacted, args_hash).await;
    }
    // Conditions a model must judge are settled first, the lock released.
    let args = Arc::new(args);
    let answers = crate::judge::settle::settle(shared, conn, server, tool, &args, &redacted, &args_hash, large).await;
    // The server's pins, once a listing of it being compared is done.
    let (pins, effects) = {
        let eng = shared.engine();
        let pins = if eng.hooks.contains_key(&conn) { None } else { eng.pins.get(server) };
        (pins, crate::pins::Effects::of(&eng.policy, eng.floor.as_ref()))
    };
    let changed = match pins {
        Some(p) => crate::pins::say(&*p.lock().await, effects, tool),
        None => Vec::new(),
    };
    let now = now_ms();
    // The server's cwd and environment, read when its shim connected.
    let place = shared.engine().shims.get(&conn).map(|s| s.place.clone()).unwrap_or_else(crate::identity::nowhere);
    let who = crate::taint::calls::who(shared, conn);
    // A large call is classified on the blocking pool, against a copy of
    // what is in force (a call's arguments are scanned whole; 200 MiB of
    // them take seconds).
    let early = if large {
        let snapshot = {
            let eng = shared.engine();
            Snapshot {
                policy: eng.policy.clone(),
                floor: eng.floor.clone(),
                def: eng.tool_def(conn, tool).cloned(),
                facts: eng.facts(conn, server, tool),
                roots: eng.shims.get(&conn).and_then(|s| s.roots.clone()),
            }
        };
        let (server_o, tool_o, answers_o, place_o) =
            (server.to_owned(), tool.to_owned(), answers.clone(), place.clone());
        let args_o = args.clone();
        let work = tokio::task::spawn_blocking(move || {
            let call = Call { server: &server_o, tool: &tool_o, args: &args_o };
            let memo = crate::identity::Memo::with_lookups(16 * crate::identity::DECISION_LOOKUPS);
            let place = Place { client_roots: snapshot.roots.as_deref(), ..crate::identity::place(&place_o, &memo) };
            let s = &snapshot;
            evaluate(&s.policy, s.floor.as_ref(), &call, s.def.as_ref(), &answers_o, place, s.facts)
        });
        match work.await {
            Ok(verdict) => Some(verdict),
            Err(_) => return deny_reply(req, "", "Latch failed classifying the call; nothing ran".into()),
        }
    } else {
        None
    };

    // How many of the reasons are the classifier's reading (they go last in
    // what the agent reads: the decisive reason comes first).
    let traced;
    let (call_id, class, decision, reasons, rule, session, approval_id, hold_ms, effects, asked) = {
        let mut eng = shared.engine();
        let def = eng.tool_def(conn, tool);
        let def_hash = def.map(|d| d.hash.clone());
        let call = Call { server, tool, args: &args };
        let roots = eng.shims.get(&conn).and_then(|s| s.roots.clone());
        let memo = crate::identity::Memo::default();
        let place = Place { client_roots: roots.as_deref(), ..crate::identity::place(&place, &memo) };
        let facts = eng.facts(conn, server, tool);
        let mut verdict = match early {
            Some(v) => v,
            None => evaluate(&eng.policy, eng.floor.as_ref(), &call, def, &answers, place, facts),
        };
        // Rate limits and budgets, for a call the policy did not deny: the
        // stricter of theirs and the policy's decision.
        let mut payment = None;
        if verdict.evaluation.decision != CoreDecision::Deny {
            let f = crate::threats::Facts {
                server,
                tool,
                args: &args,
                class: verdict.classification.class,
                flags: &verdict.classification.flags,
                now_ms: now,
            };
            // A changed or suspect definition is named even when the policy
            // asks anyway: the person must know what they approve.
            for say in &changed {
                if say.effect >= verdict.evaluation.decision {
                    verdict.evaluation.decision = say.effect;
                    verdict.evaluation.reasons.push(say.reason.clone());
                }
            }
            let eng = &mut *eng;
            let said = eng.threats.check(&eng.policy, &f);
            payment = said.payment;
            if let Some(say) = said.say
                && say.effect > verdict.evaluation.decision
            {
                verdict.evaluation.decision = say.effect;
                verdict.evaluation.reasons.push(say.reason);
            }
        }
        // The lethal trifecta: a sink call in a tainted session.
        let (class, flags) = (verdict.classification.class, &verdict.classification.flags);
        let tc = crate::taint::Call { server, tool, args: &args, class, flags, now_ms: now };
        let reads = crate::taint::calls::check(&mut eng, &who, &tc, &mut verdict.evaluation);
        let class = verdict.classification.class.as_str().to_owned();
        // Reasons may quote argument text (hosts, SQL, pipeline stages).
        let mut reasons: Vec<String> = verdict
            .classification
            .reasons
            .iter()
            .chain(&verdict.evaluation.reasons)
            .map(|r| latch_core::redact::redact_text(r).into_owned())
            .collect();
        traced = verdict.classification.reasons.len();
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
                summary: crate::managed::summary_of(&redacted, &reasons, verdict.managed),
                now_ms: now,
                hold_ms: Some(hold_ms as i64),
            };
            // One agent (or one shim of it) may not fill the approvals
            // everyone shares.
            if let Some(why) = crate::limits::refuse_new(&eng.approvals, &ask.key(), &session, now) {
                decision = Decision::Deny;
                reasons.push(why);
                eng.calls.remove(&call_id);
            }
            let asked =
                if decision == Decision::Ask { eng.approvals.handle(approval::Event::Ask(ask)) } else { Vec::new() };
            for effect in asked {
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
        // A payment is counted once it runs.
        if let Some(amounts) = payment {
            match decision {
                Decision::Allow => eng.threats.spent(server, &amounts, now),
                Decision::Ask => eng.threats.wait(&call_id, server, amounts),
                Decision::Deny => {}
            }
        }
        crate::taint::calls::decided(shared, &mut eng, &call_id, decision, reads);
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
        shared.persist().await;
    }
    // A console row only when a console listens: no copy of the arguments
    // otherwise.
    let mut row = (shared.engine().consoles > 0).then(|| ev.shown(0, &redacted));
    let mut inserted = shared.audit.insert(ev).await;
    if asked && inserted.is_ok() {
        // Journaled is enough for the call; the approvals' state is not in
        // the journal, so it and the row are committed before anyone hears.
        shared.audit.flush().await;
        if let Some(why) = shared.audit.stuck() {
            inserted = Err(crate::audit::AuditError::Write(why));
        }
    }
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
            crate::driver::apply(shared, effects, None).await;
            // No shim decides while the log refuses the daemon's rows.
            crate::lease::log_refused(shared);
            return deny_reply(req, &class, log_unwritable(&shared.paths.database, &e));
        }
    };
    let (held_until, leases_back) = {
        let mut eng = shared.engine();
        if decision == Decision::Deny {
            eng.calls.remove(&call_id);
        } else {
            eng.calls.insert(call_id.clone(), engine::Call { audit_id, conn });
        }
        (eng.held.get(&call_id).map(|h| h.hold_until), crate::lease::log_accepted(shared, &mut eng))
    };
    if leases_back {
        crate::lease::reissue_all(shared);
    }
    if decision == Decision::Deny {
        // Nothing will forward it: complete the row now.
        shared.audit.finish(audit_id, "blocked", 0).await;
    }
    if let Some(c) = standing_answer(shared, decision, approval_id.as_deref(), audit_id) {
        if let Some(row) = &mut row {
            row.answer = Some(c.answer.to_owned());
            row.answered_by = Some(c.answered_by.clone());
        }
        shared.audit.concluded(c).await;
    }
    if let Some(row) = row {
        shared.emit(Event::Call { row: AuditRow { id: audit_id, ..row } });
    }
    if let Some(hold_until) = held_until {
        crate::driver::start_hold_timer(shared, call_id.clone(), hold_until);
    }
    // The rest: console events for the approval, answers to other calls.
    crate::driver::apply(shared, effects, None).await;
    let reason = summary(&class, &reasons, traced);
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

/// The deny while the kill switch is on, recorded like any call.
async fn stopped(
    shared: &Arc<Shared>,
    req: u64,
    conn: u64,
    server: &str,
    tool: &str,
    redacted: &Value,
    args_hash: String,
) -> DaemonMsg {
    let reasons = vec![crate::stop::STOPPED_REASON.to_owned()];
    let (call_id, session) = {
        let mut eng = shared.engine();
        (eng.next_call_id(), eng.session_of(conn).unwrap_or_default())
    };
    let ev = NewEvent {
        time_ms: now_ms(),
        kind: "call",
        server: server.to_owned(),
        session,
        tool: tool.to_owned(),
        decision: Decision::Deny.as_str().to_owned(),
        reasons: reasons.clone(),
        args: redacted.to_string(),
        args_hash,
        rule: Some("stopped".into()),
        detail: crate::hook::detail(shared, conn),
        ..Default::default()
    };
    let row = (shared.engine().consoles > 0).then(|| ev.shown(0, redacted));
    // Denied whether or not the row could be written.
    if let Ok(audit_id) = shared.audit.insert(ev).await {
        shared.audit.finish(audit_id, "blocked", 0).await;
        if let Some(row) = row {
            shared.emit(Event::Call { row: AuditRow { id: audit_id, ..row } });
        }
    }
    DaemonMsg::Decision {
        req,
        call_id,
        decision: Decision::Deny,
        class: String::new(),
        reason: crate::stop::STOPPED_REASON.to_owned(),
        approval_id: None,
        hold_ms: None,
        ask_in_client: None,
    }
}

/// A call decided by a person's earlier answer (the approved retry, a call a
/// session grant covers): the answer, who gave it and when, for its row.
fn standing_answer(
    shared: &Shared,
    decision: Decision,
    approval_id: Option<&str>,
    audit_id: i64,
) -> Option<crate::audit::Conclusion> {
    let approval_id = approval_id.filter(|_| decision != Decision::Ask)?;
    let eng = shared.engine();
    match eng.approvals.closure(approval_id)? {
        approval::Closure::Decided { decision: d, channel, who, at, .. } => Some(crate::audit::Conclusion {
            ids: vec![audit_id],
            approval_id: approval_id.to_owned(),
            answer: if *d == CoreDecision::Allow { "allow" } else { "deny" },
            answered_by: format!("{channel}:{who}"),
            at_ms: *at,
            earlier: false,
        }),
        approval::Closure::Withdrawn { .. } => None,
    }
}

/// What the agent reads: the decisive reasons first (the rule, a person's
/// answer, a limit), then the class with the classifier's reading of the
/// call in brackets.
fn summary(class: &str, reasons: &[String], traced: usize) -> String {
    let (trace, decisive) = reasons.split_at(traced.min(reasons.len()));
    let class = match (class.is_empty(), trace.is_empty()) {
        (true, true) => String::new(),
        (true, false) => trace.join("; "),
        (false, true) => format!("class {class}"),
        (false, false) => format!("class {class} ({})", trace.join("; ")),
    };
    match (decisive.is_empty(), class.is_empty()) {
        (true, _) => class,
        (false, true) => decisive.join("; "),
        (false, false) => format!("{}; {class}", decisive.join("; ")),
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

/// What a large call is evaluated against, off the runtime.
struct Snapshot {
    policy: latch_core::Policy,
    floor: Option<latch_core::Policy>,
    def: Option<latch_core::ToolDef>,
    facts: latch_core::policy::Facts,
    roots: Option<Vec<String>>,
}

/// Classifies and evaluates; while the accepted policy is unverified, the
/// built-in defaults (`floor`) bound it: the stricter decision wins.
fn evaluate(
    policy: &latch_core::Policy,
    floor: Option<&latch_core::Policy>,
    call: &Call<'_>,
    def: Option<&latch_core::ToolDef>,
    answers: &[latch_core::policy::Answer],
    place: Place<'_>,
    facts: latch_core::policy::Facts,
) -> latch_core::Verdict {
    let mut verdict = latch_core::decide_with(policy, call, def, answers, place, facts);
    if let Some(floor) = floor {
        let bound = latch_core::decide_with(floor, call, def, answers, place, facts);
        if bound.evaluation.decision > verdict.evaluation.decision {
            verdict = bound;
        }
    }
    verdict
}

/// The deny for a call whose row could not be written: what happened, and
/// what a person can do (a full disk is the usual cause).
fn log_unwritable(database: &std::path::Path, e: &crate::audit::AuditError) -> String {
    format!(
        "the audit log could not record the call ({e}), so it did not run. A person must make room on the disk that \
         holds {} (or fix what the error names); calls are decided again as soon as the log can be written",
        database.display()
    )
}

#[cfg(test)]
mod summary_tests {
    use super::summary;

    #[test]
    fn the_decisive_reason_comes_before_the_classifier_trace() {
        let reasons =
            ["name word 'refund'".to_owned(), "rule \"no-refunds\" denies TRANSFER_VALUE on stripe".to_owned()];
        assert_eq!(
            summary("TRANSFER_VALUE", &reasons, 1),
            "rule \"no-refunds\" denies TRANSFER_VALUE on stripe; class TRANSFER_VALUE (name word 'refund')"
        );
        assert_eq!(summary("READ", &[], 0), "class READ");
        assert_eq!(summary("", &["stopped".to_owned()], 0), "stopped");
    }
}
