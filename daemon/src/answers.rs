//! Requests only the person may make: answering an approval, unlocking a
//! console, setting the PIN, accepting a looser policy. Each checks the
//! approval PIN ([`crate::pin`]) when one is set; a refusal is an audit row
//! (`answer_refused`, `pin_refused`) and a reply that says what happened,
//! never how to get round it.

use std::sync::Arc;

use latch_core::approval;
use latch_proto::{DaemonMsg, Pin, Role, Scope};

use crate::audit::NewEvent;
use crate::driver::apply;
use crate::now_ms;
use crate::outbox::Outbox;
use crate::pin::Refusal;
use crate::shared::{Shared, send};

/// The channel name an answer on a connection of `role` is recorded with.
pub(crate) fn channel_of(role: Role) -> &'static str {
    match role {
        Role::Console => "tui",
        Role::Cli => "cli",
        // Refused by the state machine, and recorded.
        Role::Shim => "shim",
        Role::Hook => "hook",
    }
}

pub(crate) struct AnswerReq {
    pub req: u64,
    pub approval_id: String,
    pub approve: bool,
    pub scope: Scope,
    pub reason: Option<String>,
    pub pin: Option<Pin>,
    /// An "always" approval narrower than the tool ([`crate::always`]).
    pub narrow: Option<latch_core::policy::narrow::Narrowing>,
}

/// An answer from a console or the CLI. An approval needs the person:
/// the connection is unlocked, or the answer carries the PIN. A deny does
/// not (it only tightens: the call does not run, an "always" deny writes a
/// deny rule).
pub(crate) async fn answer(shared: &Arc<Shared>, conn: u64, role: Role, tx: &Outbox, a: AnswerReq) {
    if a.approve && a.scope == Scope::Always && managed_asks(shared, &a.approval_id) {
        let message = format!(
            "approval {} was not answered: the managed policy asks about this call every time, so an \"always\" \
             answer would change nothing; approve it once, or deny it",
            a.approval_id
        );
        return send(tx, &DaemonMsg::Answered { req: a.req, ok: false, message }).await;
    }
    let channel = channel_of(role);
    let who = shared.pin.who(conn);
    if a.approve && !role.speaks_for_agent() && !shared.pin.is_unlocked(conn) {
        let pin = a.pin.as_ref().map(|p| p.0.as_str());
        match shared.pin.check(pin, now_ms()).await {
            // The person is here: what they accepted can be verified now
            // (an "always" rule then joins the accepted policy).
            Ok(Some(key)) => crate::enforce::key_known(shared, key).await,
            Ok(None) => {}
            Err(refusal) => {
                refused(shared, "answer_refused", channel, conn, Some(&a.approval_id), &refusal).await;
                let message = format!("approval {} was not answered: {refusal}", a.approval_id);
                send(tx, &DaemonMsg::Answered { req: a.req, ok: false, message }).await;
                return;
            }
        }
    }
    let answer = approval::Answer {
        approval_id: approval::normalize_id(&a.approval_id),
        approve: a.approve,
        scope: crate::wire::scope(a.scope),
        channel: channel.to_owned(),
        who,
        reason: a.reason,
        now_ms: now_ms(),
    };
    let effects = {
        let mut eng = shared.engine();
        if a.scope == Scope::Always {
            // The driver takes the rule when the machine asks for it; what
            // is left (the approval was already closed) goes below.
            let narrow = a.narrow.filter(|_| a.approve);
            let before = insert_before(&eng, &answer.approval_id, a.approve);
            let narrowed = narrow.is_some();
            eng.narrow.insert(answer.approval_id.clone(), crate::placed::Placed { narrow, before });
            if narrowed {
                eng.approvals.handle(approval::Event::AnswerNarrow(answer))
            } else {
                eng.approvals.handle(approval::Event::Answer(answer))
            }
        } else {
            eng.approvals.handle(approval::Event::Answer(answer))
        }
    };
    let id = approval::normalize_id(&a.approval_id);
    apply(shared, effects, Some((tx, a.req))).await;
    shared.engine().narrow.remove(&id);
}

/// Whether the managed layer alone asks about the pending approval's call
/// (see `managed::summary_of`).
fn managed_asks(shared: &Shared, approval_id: &str) -> bool {
    let eng = shared.engine();
    eng.approvals
        .get(&approval::normalize_id(approval_id))
        .is_some_and(|p| p.summary.get(crate::managed::MANAGED_ASKS).and_then(serde_json::Value::as_bool) == Some(true))
}

/// A console proves the person once for the session.
pub(crate) async fn unlock(shared: &Arc<Shared>, conn: u64, role: Role, tx: &Outbox, req: u64, pin: Pin) {
    let reply = if role.speaks_for_agent() {
        refused(shared, "pin_refused", channel_of(role), conn, None, &Refusal::Missing).await;
        DaemonMsg::Done { req, ok: false, message: "a shim cannot unlock".into() }
    } else {
        match shared.pin.check(Some(&pin.0), now_ms()).await {
            Ok(None) => DaemonMsg::Done { req, ok: true, message: "no PIN is set: approvals are unprotected".into() },
            Ok(Some(key)) => {
                shared.pin.unlock(conn);
                crate::enforce::key_known(shared, key).await;
                DaemonMsg::Done { req, ok: true, message: "unlocked".into() }
            }
            Err(refusal) => {
                refused(shared, "pin_refused", channel_of(role), conn, None, &refusal).await;
                DaemonMsg::Done { req, ok: false, message: refusal.to_string() }
            }
        }
    };
    send(tx, &reply).await;
}

/// `latch pin set`: the first PIN from any console or CLI; a change only
/// with the old one.
pub(crate) async fn set_pin(
    shared: &Arc<Shared>,
    conn: u64,
    role: Role,
    tx: &Outbox,
    req: u64,
    old: Option<Pin>,
    new: Pin,
) {
    let who = shared.pin.who(conn);
    if role.speaks_for_agent() {
        refused(shared, "pin_refused", channel_of(role), conn, None, &Refusal::Missing).await;
        send(tx, &DaemonMsg::Done { req, ok: false, message: "a shim cannot set the PIN".into() }).await;
        return;
    }
    let first = !shared.pin.is_set();
    let reply = match shared.pin.set(old.as_ref().map(|p| p.0.as_str()), &new.0, now_ms()).await {
        Ok((key, old_key)) => {
            shared
                .audit
                .record(NewEvent {
                    time_ms: now_ms(),
                    kind: if first { "pin_set" } else { "pin_changed" },
                    answered_by: Some(format!("{}:{who}", channel_of(role))),
                    ..Default::default()
                })
                .await;
            // Whoever typed it is the person on this connection.
            shared.pin.unlock(conn);
            crate::enforce::pin_changed(shared, key, old_key).await;
            let _ = shared.events.send(latch_proto::Event::PinSet);
            let message = if first { "PIN set: approvals now need it" } else { "PIN changed" };
            DaemonMsg::Done { req, ok: true, message: message.into() }
        }
        Err(refusal) => {
            refused(shared, "pin_refused", channel_of(role), conn, None, &refusal).await;
            DaemonMsg::Done { req, ok: false, message: format!("the PIN was not changed: {refusal}") }
        }
    };
    send(tx, &reply).await;
}

/// `latch policy accept` and the console's key: the waiting change takes
/// force once the person proves themself.
pub(crate) async fn policy_accept(
    shared: &Arc<Shared>,
    conn: u64,
    role: Role,
    tx: &Outbox,
    req: u64,
    pin: Option<Pin>,
) {
    let who = shared.pin.who(conn);
    let checked = if role.speaks_for_agent() {
        Err(Refusal::Missing)
    } else if shared.pin.is_unlocked(conn) && shared.pin.key().is_some() {
        Ok(shared.pin.key())
    } else {
        shared.pin.check(pin.as_ref().map(|p| p.0.as_str()), now_ms()).await
    };
    let reply = match checked {
        Ok(key) => {
            let message = crate::enforce::accept(shared, key, &format!("{}:{who}", channel_of(role))).await;
            DaemonMsg::Done { req, ok: message.is_ok(), message: message.unwrap_or_else(|e| e) }
        }
        Err(refusal) => {
            refused(shared, "pin_refused", channel_of(role), conn, None, &refusal).await;
            DaemonMsg::Done { req, ok: false, message: format!("the policy change was not accepted: {refusal}") }
        }
    };
    send(tx, &reply).await;
}

pub(crate) async fn refused(
    shared: &Shared,
    kind: &'static str,
    channel: &str,
    conn: u64,
    approval_id: Option<&str>,
    why: &Refusal,
) {
    let who = shared.pin.who(conn);
    tracing::warn!("refused {channel}:{who}: {why}");
    let detail = match shared.pin.pid(conn) {
        Some(pid) => format!("{why} (peer pid {pid})"),
        None => why.to_string(),
    };
    shared
        .audit
        .record(NewEvent {
            time_ms: now_ms(),
            kind,
            decision: "deny".into(),
            approval_id: approval_id.map(str::to_owned),
            answered_by: Some(format!("{channel}:{who}")),
            detail: Some(detail),
            ..Default::default()
        })
        .await;
}

/// `Reveal` from any connection.
pub(crate) async fn reveal(shared: &Arc<Shared>, conn: u64, role: Role, tx: &Outbox, req: u64, approval_id: String) {
    let id = approval::normalize_id(&approval_id);
    let channel = channel_of(role);
    let who = format!("{channel}:{}", shared.pin.who(conn));
    let pin_set = shared.pin.is_set();
    if let Err(why) = crate::reveal::allowed(role, pin_set, pin_set && shared.pin.is_unlocked(conn)) {
        tracing::warn!("refused to reveal {id} to {who}: {why}");
        let detail = match shared.pin.pid(conn) {
            Some(pid) => format!("{why} (peer pid {pid})"),
            None => why.to_string(),
        };
        let row = NewEvent {
            time_ms: now_ms(),
            kind: "reveal_refused",
            decision: "deny".into(),
            approval_id: Some(id.clone()),
            answered_by: Some(who),
            detail: Some(detail),
            ..Default::default()
        };
        shared.audit.record(row).await;
        let message = format!("the arguments of {id} were not revealed: {why}");
        send(tx, &DaemonMsg::Revealed { req, ok: false, approval_id: id, args: None, message }).await;
        return;
    }
    let found = {
        let eng = shared.engine();
        let pending = eng.approvals.get(&id).is_some() && !eng.unsaved.contains(&id);
        let item = eng.approvals.get(&id).map(|p| (p.key.server.clone(), p.key.tool.clone()));
        (pending, eng.reveal.get(&id).cloned(), item)
    };
    let reply = match found {
        (true, Some(args), Some((server, tool))) => {
            let row = NewEvent {
                time_ms: now_ms(),
                kind: "reveal",
                server,
                tool,
                approval_id: Some(id.clone()),
                answered_by: Some(who),
                detail: Some("unredacted arguments shown on the console".into()),
                ..Default::default()
            };
            shared.audit.record(row).await;
            DaemonMsg::Revealed { req, ok: true, approval_id: id, args: Some(args), message: "revealed".into() }
        }
        (true, _, _) => DaemonMsg::Revealed {
            req,
            ok: false,
            approval_id: id,
            args: None,
            message: "the daemon restarted since this call: its arguments were kept in memory only".into(),
        },
        (false, _, _) => DaemonMsg::Revealed {
            req,
            ok: false,
            approval_id: id,
            args: None,
            message: "that approval is no longer pending".into(),
        },
    };
    send(tx, &reply).await;
}

/// The `[[rule]]` line the "always" rule for this approval must precede:
/// the user rule that decides its call now (evaluated on the approval's
/// redacted arguments), when that rule's effect is not the answer's.
fn insert_before(eng: &crate::engine::Engine, approval_id: &str, approve: bool) -> Option<usize> {
    let p = eng.approvals.get(approval_id)?;
    let args = p.summary.get("args").cloned().unwrap_or_default();
    let call = latch_core::Call { server: &p.key.server, tool: &p.key.tool, args: &args };
    let ev = latch_core::decide(&eng.policy, &call, None).evaluation;
    let wanted = if approve { latch_core::Decision::Allow } else { latch_core::Decision::Deny };
    ev.rule_line.filter(|_| ev.decision != wanted)
}
