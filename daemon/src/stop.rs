//! The kill switch: `latch stop` denies every call of every shim and hook
//! at once, and every pending approval, until `latch resume`. Stopping only
//! tightens, so anyone on a console or the CLI may; resuming loosens, so it
//! needs the PIN like any loosening. The state is kept in the audit
//! database's state table: a restarted daemon is still stopped.

use std::sync::Arc;

use latch_core::approval::{self, Scope};
use latch_proto::{DaemonMsg, Pin, Role};

use crate::answers::{channel_of, refused};
use crate::audit::{Audit, NewEvent};
use crate::now_ms;
use crate::outbox::Outbox;
use crate::pin::Refusal;
use crate::shared::{Shared, send};

/// The state key: the time it was stopped (Unix ms), or `null`.
const STOPPED_STATE: &str = "stopped";

/// What the agent is told for every call while stopped. Names no command:
/// only a person may resume.
pub(crate) const STOPPED_REASON: &str =
    "a person stopped all tool calls in Latch; nothing runs until a person resumes them in Latch";

/// Whether the last daemon was stopped. A state that is not readable as
/// one counts as stopped (fail closed): a person resumes.
pub(crate) fn restore(audit: &Audit) -> Option<i64> {
    match audit.get_state(STOPPED_STATE) {
        Ok(None) => None,
        Ok(Some(text)) => match serde_json::from_str::<Option<i64>>(&text) {
            Ok(since) => since,
            Err(e) => {
                tracing::warn!("the kill switch's saved state is not readable ({e}); staying stopped");
                Some(now_ms())
            }
        },
        // A database that cannot be read denies every call by itself (no
        // call runs without its row), with the reason and what to do.
        Err(e) => {
            tracing::warn!("could not read the kill switch's state ({e}); the audit log refuses calls meanwhile");
            None
        }
    }
}

/// `Stop` from a console or the CLI.
pub(crate) async fn stop(shared: &Arc<Shared>, conn: u64, role: Role, tx: &Outbox, req: u64) {
    if role.speaks_for_agent() {
        send(tx, &DaemonMsg::Done { req, ok: false, message: "only a person may stop Latch".into() }).await;
        return;
    }
    let channel = channel_of(role);
    let who = shared.pin.who(conn);
    let now = now_ms();
    let (already, effects) = {
        let mut eng = shared.engine();
        let already = eng.stopped.is_some();
        if !already {
            eng.lease.bump();
            eng.stopped = Some(now);
        }
        // What waits for a person is denied too: an approval given later
        // must not run a call while stopped.
        let ids: Vec<String> = eng.approvals.pending().map(|p| p.id.clone()).collect();
        let mut effects = Vec::new();
        for approval_id in ids {
            effects.extend(eng.approvals.handle(approval::Event::Answer(approval::Answer {
                approval_id,
                approve: false,
                scope: Scope::Once,
                channel: channel.to_owned(),
                who: who.clone(),
                reason: Some(STOPPED_REASON.into()),
                now_ms: now,
            })));
        }
        (already, effects)
    };
    if !already {
        shared.audit.set_state(STOPPED_STATE, serde_json::to_string(&Some(now)).unwrap_or_default()).await;
        shared
            .record(NewEvent {
                time_ms: now,
                kind: "stop",
                decision: "deny".into(),
                answered_by: Some(format!("{channel}:{who}")),
                detail: Some("every tool call is denied until a person resumes".into()),
                ..Default::default()
            })
            .await;
    }
    crate::driver::apply(shared, effects, None).await;
    shared.emit(latch_proto::Event::Stopped { since: shared.engine().stopped });
    shared.persist().await;
    // Stopped before the person hears so.
    shared.audit.flush().await;
    tracing::warn!("stopped by {channel}:{who}: every tool call is denied");
    let message = if already { "Latch was already stopped" } else { "stopped: every tool call is denied" };
    send(tx, &DaemonMsg::Done { req, ok: true, message: message.into() }).await;
}

/// `Resume` from a console or the CLI: with the PIN when one is set.
pub(crate) async fn resume(shared: &Arc<Shared>, conn: u64, role: Role, tx: &Outbox, req: u64, pin: Option<Pin>) {
    let channel = channel_of(role);
    let checked = if role.speaks_for_agent() {
        Err(Refusal::Missing)
    } else if shared.pin.is_unlocked(conn) && shared.pin.key().is_some() {
        Ok(())
    } else {
        shared.pin.check(pin.as_ref().map(|p| p.0.as_str()), now_ms()).await.map(|_| ())
    };
    if let Err(refusal) = checked {
        refused(shared, "resume_refused", channel, conn, None, &refusal).await;
        let message = format!("Latch was not resumed: {refusal}");
        send(tx, &DaemonMsg::Done { req, ok: false, message }).await;
        return;
    }
    let who = shared.pin.who(conn);
    let was = shared.engine().stopped.take();
    crate::lease::reissue_all(shared);
    let message = match was {
        None => "Latch was not stopped".to_owned(),
        Some(_) => {
            shared.audit.set_state(STOPPED_STATE, "null".into()).await;
            shared
                .record(NewEvent {
                    time_ms: now_ms(),
                    kind: "resume",
                    decision: "allow".into(),
                    answered_by: Some(format!("{channel}:{who}")),
                    detail: Some("tool calls are decided by the policy again".into()),
                    ..Default::default()
                })
                .await;
            shared.audit.flush().await;
            tracing::warn!("resumed by {channel}:{who}");
            shared.emit(latch_proto::Event::Stopped { since: None });
            "resumed: tool calls are decided by the policy again".to_owned()
        }
    };
    send(tx, &DaemonMsg::Done { req, ok: true, message }).await;
}
