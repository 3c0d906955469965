//! Every transition, driven by plain events: no async, no clock. The
//! helpers are here; the tests are grouped by what they are about.

use serde_json::json;

use super::*;
use crate::class::{Class, Decision};

mod answers;
mod clock;
mod grants;
mod holding;
mod lifecycle;

const T0: i64 = 1_800_000_000_000;

fn machine() -> Approvals {
    Approvals::new(Config::default(), 7)
}

fn ask(call_id: &str, session: &str, args: &str, now_ms: i64) -> Ask {
    Ask {
        call_id: call_id.to_owned(),
        session: session.to_owned(),
        server: "sh".to_owned(),
        tool: "run".to_owned(),
        args_hash: args.to_owned(),
        def_hash: Some("def1".to_owned()),
        class: Class::Execute,
        retry: false,
        summary: json!({"args": {"cmd": args}}),
        now_ms,
        hold_ms: None,
    }
}

fn answer(id: &str, approve: bool, scope: Scope, channel: &str, now_ms: i64) -> Answer {
    Answer {
        approval_id: id.to_owned(),
        approve,
        scope,
        channel: channel.to_owned(),
        who: "alice".to_owned(),
        reason: None,
        now_ms,
    }
}

/// The approval id a call was held on, from its effects.
fn held_id(fx: &[Effect]) -> String {
    fx.iter()
        .find_map(|e| match e {
            Effect::Hold { approval_id, .. } => Some(approval_id.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Hold in {fx:#?}"))
}

fn outcome_of<'a>(fx: &'a [Effect], call: &str) -> Option<&'a Outcome> {
    let mut found = fx.iter().filter_map(|e| match e {
        Effect::Resolve { call_id, outcome } if call_id == call => Some(outcome),
        _ => None,
    });
    let first = found.next();
    assert!(found.next().is_none(), "{call} resolved twice in {fx:#?}");
    first
}

fn allowed(fx: &[Effect], call: &str) -> bool {
    matches!(outcome_of(fx, call), Some(Outcome::Allow { .. }))
}

fn denied(fx: &[Effect], call: &str) -> bool {
    matches!(outcome_of(fx, call), Some(Outcome::Deny { .. }))
}

fn reply(fx: &[Effect]) -> &Reply {
    let replies: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Reply(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "{fx:#?}");
    replies[0]
}

fn records(fx: &[Effect]) -> Vec<&AnswerRecord> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Record(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// Asks, and returns the id of the new pending approval.
fn ask_pending(m: &mut Approvals, call: &str, session: &str, args: &str, now: i64) -> String {
    let fx = m.handle(Event::Ask(ask(call, session, args, now)));
    assert!(fx.iter().any(|e| matches!(e, Effect::PendingAdded { .. })), "{fx:#?}");
    held_id(&fx)
}

fn approve(m: &mut Approvals, id: &str, scope: Scope, now: i64) -> Vec<Effect> {
    m.handle(Event::Answer(answer(id, true, scope, "tui", now)))
}

fn deny(m: &mut Approvals, id: &str, scope: Scope, now: i64) -> Vec<Effect> {
    m.handle(Event::Answer(answer(id, false, scope, "tui", now)))
}
