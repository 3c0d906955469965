//! The trifecta's calls from the decision path ([`crate::decide`]), the
//! approval driver, the hook path and the dispatcher: they take the shared
//! state; [`super::Sessions`] itself does not (engine holds it).

use std::sync::Arc;

use latch_core::class::Decision;

use super::{Call, Ran, Who, agent};
use crate::shared::Shared;

/// Who `conn` speaks for; reads `/proc` (call it before taking the lock).
pub(crate) fn who(shared: &Shared, conn: u64) -> Arc<Who> {
    let (cached, hook, session) = {
        let eng = shared.engine();
        (eng.taint.conns.get(&conn).cloned(), eng.hooks.contains_key(&conn), eng.session_of(conn).unwrap_or_default())
    };
    if let Some(w) = cached {
        return w;
    }
    let pid = shared.pin.pid(conn);
    if hook {
        return Arc::new(Who::Hook { session, ancestors: agent::ancestors(pid) });
    }
    let w = Arc::new(Who::Shim { agent: agent::agent_of(pid), session });
    let mut eng = shared.engine();
    if eng.taint.conns.len() >= super::MAX_CONNS {
        eng.taint.conns.clear();
    }
    eng.taint.conns.insert(conn, w.clone());
    w
}

/// The decision path's hook: for a call the policy did not deny, the
/// trifecta's say joins the verdict (the stricter wins, its chain among
/// the reasons); returns the reads to record once the call runs.
pub(crate) fn check(
    eng: &mut crate::engine::Engine,
    who: &Who,
    c: &Call<'_>,
    evaluation: &mut latch_core::policy::Evaluation,
) -> Option<Ran> {
    let deciding = evaluation.decision != Decision::Deny;
    let eng = &mut *eng;
    let checked = eng.taint.check(&eng.policy.threats().taint, who, c, deciding);
    if let Some(say) = checked.say {
        if say.effect > evaluation.decision {
            evaluation.decision = say.effect;
        }
        evaluation.reasons.push(say.reason);
    }
    checked.ran
}

/// The call `call_id` was decided; tells consoles when a session's taint
/// changed.
pub(crate) fn decided(
    shared: &Shared,
    eng: &mut crate::engine::Engine,
    call_id: &str,
    decision: latch_proto::Decision,
    ran: Option<Ran>,
) {
    let eng = &mut *eng;
    if let Some(ev) = eng.taint.decided(&eng.policy.threats().taint, call_id, decision, ran) {
        shared.emit(ev);
    }
}

/// A call that waited was answered: `ran` when it runs.
pub(crate) fn settled(shared: &Shared, eng: &mut crate::engine::Engine, call_id: &str, ran: bool) {
    let eng = &mut *eng;
    if let Some(ev) = eng.taint.settled(&eng.policy.threats().taint, call_id, ran) {
        shared.emit(ev);
    }
}

/// `Taints` from a console or the CLI.
pub(crate) async fn taints(shared: &Shared, role: latch_proto::Role, tx: &crate::outbox::Outbox, req: u64) {
    let msg = if role.speaks_for_agent() {
        latch_proto::DaemonMsg::Error { req, message: "only consoles and the CLI see sessions' taint".into() }
    } else {
        latch_proto::DaemonMsg::Taints { req, sessions: shared.engine().taint.reports() }
    };
    crate::shared::send(tx, &msg).await;
}
