//! Cancelled calls, ended sessions, the bounds on every table, and
//! persistence.

use super::*;

// ---- cancellation ----

#[test]
fn cancel_then_approve_is_withdrawn_and_the_call_never_runs() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::Cancelled { call_id: "c1".into(), now_ms: T0 + 5 });
    assert_eq!(
        fx,
        vec![
            Effect::Resolve {
                call_id: "c1".into(),
                outcome: Outcome::Dropped { reason: "cancelled by the client".into() }
            },
            Effect::PendingRemoved {
                approval_id: id.clone(),
                closure: Closure::Withdrawn { cause: Withdrawal::Cancelled, at: T0 + 5 }
            },
        ]
    );
    let fx = approve(&mut m, &id, Scope::SessionTool, T0 + 6);
    assert_eq!(reply(&fx), &Reply::Withdrawn { approval_id: id, cause: Withdrawal::Cancelled, at: T0 + 5 });
    assert_eq!(records(&fx)[0].result, AnswerResult::Withdrawn);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Resolve { .. })));
    assert_eq!(m.grants().count(), 0);
    let fx = m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 7)));
    assert!(outcome_of(&fx, "c2").is_none(), "the identical call asks afresh");
}

#[test]
fn cancel_denies_the_other_waiters_of_the_withdrawn_approval() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::Ask(ask("c2", "s2", "ls", T0 + 1)));
    let fx = m.handle(Event::Cancelled { call_id: "c2".into(), now_ms: T0 + 2 });
    assert!(matches!(outcome_of(&fx, "c2"), Some(Outcome::Dropped { .. })));
    match outcome_of(&fx, "c1") {
        Some(Outcome::Deny { reason, approval_id }) => {
            assert!(reason.contains("withdrawn"), "{reason}");
            assert_eq!(approval_id.as_deref(), Some(id.as_str()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.pending().count(), 0);
    assert_eq!(m.held_on("c1"), None);
}

#[test]
fn cancel_of_a_call_no_longer_held_changes_nothing() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    assert!(m.handle(Event::Cancelled { call_id: "c1".into(), now_ms: T0 + 1 }).is_empty());
    assert!(m.get(&id).is_some());
    assert!(m.handle(Event::Cancelled { call_id: "nope".into(), now_ms: T0 + 1 }).is_empty());
}

// ---- sessions ----

#[test]
fn session_end_drops_its_grants_and_held_calls_but_keeps_pending() {
    let mut m = machine();
    let a = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &a, Scope::SessionTool, T0 + 1);
    let b = ask_pending(&mut m, "c2", "s2", "pwd", T0 + 2);
    m.handle(Event::Ask(ask("c3", "s3", "pwd", T0 + 2)));
    let fx = m.handle(Event::SessionEnded { session: "s2".into() });
    assert_eq!(
        fx,
        vec![
            Effect::Resolve { call_id: "c2".into(), outcome: Outcome::Dropped { reason: "the session ended".into() } },
            Effect::PendingUpdated { approval_id: b.clone() },
        ]
    );
    let p = m.get(&b).unwrap();
    assert_eq!(p.waiting(), 1);
    assert!(!p.sessions.contains("s2"));
    m.handle(Event::SessionEnded { session: "s1".into() });
    assert_eq!(m.grants().count(), 0);
    assert!(outcome_of(&m.handle(Event::Ask(ask("c4", "s1", "ls", T0 + 3))), "c4").is_none());
}

#[test]
fn session_scoped_approve_with_every_session_gone_leaves_a_single_use_grant() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::SessionEnded { session: "s1".into() });
    assert!(m.get(&id).is_some(), "kept");
    approve(&mut m, &id, Scope::SessionArgs, T0 + 1);
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s-new", "ls", T0 + 2))), "c2"));
    assert!(outcome_of(&m.handle(Event::Ask(ask("c3", "s-new", "ls", T0 + 3))), "c3").is_none());
}

// ---- bounds ----

#[test]
fn past_the_pending_cap_an_ask_is_denied_with_a_reason() {
    let mut m = Approvals::new(Config { max_pending: 2, ..Config::default() }, 7);
    ask_pending(&mut m, "c1", "s1", "a", T0);
    ask_pending(&mut m, "c2", "s1", "b", T0);
    let fx = m.handle(Event::Ask(ask("c3", "s1", "c", T0)));
    match outcome_of(&fx, "c3") {
        Some(Outcome::Deny { reason, approval_id: None }) => assert!(reason.contains("too many approvals"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // An identical call still attaches: it creates nothing new.
    assert!(m.handle(Event::Ask(ask("c4", "s1", "a", T0))).iter().any(|e| matches!(e, Effect::Hold { .. })));
}

#[test]
fn grant_cap_evicts_the_oldest_grant() {
    let mut m = Approvals::new(Config { max_grants: 2, ..Config::default() }, 7);
    for (i, args) in ["a", "b", "c"].iter().enumerate() {
        let id = ask_pending(&mut m, &format!("c{i}"), "s1", args, T0 + i as i64);
        approve(&mut m, &id, Scope::SessionArgs, T0 + i as i64);
    }
    let kept: Vec<_> = m.grants().filter_map(|g| g.args_hash.clone()).collect();
    assert_eq!(kept, ["b", "c"]);
}

#[test]
fn closed_approvals_are_remembered_up_to_the_cap() {
    let mut m = Approvals::new(Config { max_closed: 1, ..Config::default() }, 7);
    let a = ask_pending(&mut m, "c1", "s1", "a", T0);
    deny(&mut m, &a, Scope::Once, T0);
    let b = ask_pending(&mut m, "c2", "s1", "b", T0);
    deny(&mut m, &b, Scope::Once, T0);
    assert!(matches!(reply(&approve(&mut m, &a, Scope::Once, T0)), Reply::Unknown { .. }));
    assert!(matches!(reply(&approve(&mut m, &b, Scope::Once, T0)), Reply::AlreadyDecided { .. }));
}

// ---- persistence ----

#[test]
fn snapshot_restore_keeps_pending_approvals_and_unused_grants() {
    let mut m = machine();
    let used = ask_pending(&mut m, "c1", "s1", "a", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    approve(&mut m, &used, Scope::Once, T0 + 1);
    let session = ask_pending(&mut m, "c2", "s1", "b", T0 + 2);
    approve(&mut m, &session, Scope::SessionArgs, T0 + 3);
    let pending = ask_pending(&mut m, "c3", "s1", "c", T0 + 4);
    m.handle(Event::Ask(ask("c4", "s2", "c", T0 + 5)));

    let snap = m.snapshot();
    assert_eq!(snap["version"], 1);
    let text = serde_json::to_string(&snap).unwrap();
    let mut r = Approvals::restore(Config::default(), serde_json::from_str(&text).unwrap()).unwrap();

    let p = r.get(&pending).expect("pending survives");
    assert_eq!(p.waiting(), 0, "waiters are not persisted");
    assert_eq!(p.sessions.len(), 2);
    assert_eq!(p.summary, json!({"args": {"cmd": "c"}}));
    assert_eq!(r.held_on("c3"), None);
    assert_eq!(r.grants().count(), 2);
    // The once grant and the session grant still work after the restart.
    assert!(allowed(&r.handle(Event::Ask(ask("d1", "s1", "a", T0 + 10))), "d1"));
    assert!(allowed(&r.handle(Event::Ask(ask("d2", "s1", "b", T0 + 10))), "d2"));
    // The pending approval can still be answered; the retry then goes through.
    assert!(matches!(reply(&approve(&mut r, &pending, Scope::Once, T0 + 11)), Reply::Decided { released: 0, .. }));
    assert!(allowed(&r.handle(Event::Ask(ask("d3", "s2", "c", T0 + 12))), "d3"));
    // Closed approvals are remembered, and new ids do not collide.
    assert!(matches!(reply(&approve(&mut r, &used, Scope::Once, T0 + 13)), Reply::AlreadyDecided { .. }));
    let fresh = ask_pending(&mut r, "d4", "s1", "zz", T0 + 14);
    assert!(![used, session, pending].contains(&fresh));
}

#[test]
fn restore_rejects_other_versions_and_garbage() {
    assert!(matches!(
        Approvals::restore(Config::default(), json!({"version": 2})),
        Err(RestoreError::Version { found: 2 })
    ));
    assert!(matches!(Approvals::restore(Config::default(), json!({"version": 1})), Err(RestoreError::Format(_))));
    assert!(matches!(Approvals::restore(Config::default(), json!(null)), Err(RestoreError::Version { found: 0 })));
}

#[test]
fn empty_snapshot_round_trips() {
    let m = machine();
    let r = Approvals::restore(Config::default(), m.snapshot()).unwrap();
    assert_eq!(r.snapshot(), m.snapshot());
}
