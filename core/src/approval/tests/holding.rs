//! Holding calls on pending approvals, and retries of allowed calls.

use super::*;

// ---- holding ----

#[test]
fn ask_without_grant_creates_a_pending_approval_and_holds_the_call() {
    let mut m = machine();
    let fx = m.handle(Event::Ask(ask("c1", "s1", "ls", T0)));
    let id = held_id(&fx);
    assert_eq!(
        fx,
        vec![
            Effect::Hold { call_id: "c1".into(), approval_id: id.clone(), hold_until: T0 + 50_000 },
            Effect::PendingAdded { approval_id: id.clone() },
        ]
    );
    let p = m.get(&id).unwrap();
    assert_eq!(p.waiting(), 1);
    assert_eq!(p.hold_until(), Some(T0 + 50_000));
    assert_eq!(p.summary, json!({"args": {"cmd": "ls"}}));
    assert_eq!(m.held_on("c1"), Some(id.as_str()));
}

#[test]
fn ask_hold_ms_overrides_the_configured_hold() {
    let mut m = machine();
    let mut a = ask("c1", "s1", "ls", T0);
    a.hold_ms = Some(5_000);
    let fx = m.handle(Event::Ask(a));
    assert!(matches!(fx[0], Effect::Hold { hold_until, .. } if hold_until == T0 + 5_000));
}

#[test]
fn approve_within_the_hold_allows_the_held_call_exactly_once() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = approve(&mut m, &id, Scope::Once, T0 + 1_000);
    assert!(allowed(&fx, "c1"));
    assert!(matches!(reply(&fx), Reply::Decided { released: 1, .. }));
    assert!(fx.iter().any(|e| matches!(e, Effect::PendingRemoved { approval_id, .. } if *approval_id == id)));
    assert_eq!(m.pending().count(), 0);
    // The held call used the approval: no grant is left behind.
    assert_eq!(m.grants().count(), 0);
    let fx = m.handle(Event::HoldExpired { call_id: "c1".into() });
    assert!(fx.is_empty(), "a late hold expiry changes nothing: {fx:#?}");
    let fx = m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 2_000)));
    assert!(fx.iter().any(|e| matches!(e, Effect::PendingAdded { .. })), "asks again: {fx:#?}");
}

#[test]
fn hold_expiry_answers_awaiting_and_keeps_the_approval_pending() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::HoldExpired { call_id: "c1".into() });
    assert_eq!(
        fx,
        vec![
            Effect::Resolve { call_id: "c1".into(), outcome: Outcome::AwaitingApproval { approval_id: id.clone() } },
            Effect::PendingUpdated { approval_id: id.clone() },
        ]
    );
    let p = m.get(&id).expect("still pending");
    assert_eq!(p.waiting(), 0);
    assert_eq!(m.held_on("c1"), None);
}

#[test]
fn approve_after_hold_expiry_lets_the_identical_retry_through() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    let fx = approve(&mut m, &id, Scope::Once, T0 + 60_000);
    assert!(matches!(reply(&fx), Reply::Decided { released: 0, .. }));
    let fx = m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 70_000)));
    assert!(allowed(&fx, "c2"), "{fx:#?}");
    assert_eq!(outcome_of(&fx, "c2").unwrap().decision(), Some(Decision::Allow));
}

#[test]
fn changed_arguments_ask_again() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    approve(&mut m, &id, Scope::Once, T0 + 1_000);
    let fx = m.handle(Event::Ask(ask("c2", "s1", "rm -rf /", T0 + 2_000)));
    assert!(fx.iter().any(|e| matches!(e, Effect::PendingAdded { .. })), "{fx:#?}");
    assert!(outcome_of(&fx, "c2").is_none());
}

#[test]
fn second_retry_of_a_once_grant_asks_again() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    approve(&mut m, &id, Scope::Once, T0 + 1_000);
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 2_000))), "c2"));
    let fx = m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + 3_000)));
    assert!(outcome_of(&fx, "c3").is_none());
    assert_ne!(held_id(&fx), id, "a fresh approval");
}

#[test]
fn two_identical_retries_after_a_once_grant_let_exactly_one_through() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    approve(&mut m, &id, Scope::Once, T0 + 1_000);
    let a = m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 2_000)));
    let b = m.handle(Event::Ask(ask("c3", "s2", "ls", T0 + 2_000)));
    assert_eq!([allowed(&a, "c2"), allowed(&b, "c3")].iter().filter(|x| **x).count(), 1);
}

#[test]
fn identical_call_while_pending_attaches_as_another_waiter() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::Ask(ask("c2", "s2", "ls", T0 + 10)));
    assert_eq!(held_id(&fx), id);
    assert!(!fx.iter().any(|e| matches!(e, Effect::PendingAdded { .. })));
    assert!(fx.contains(&Effect::PendingUpdated { approval_id: id.clone() }));
    assert_eq!(m.pending().count(), 1);
    assert_eq!(m.get(&id).unwrap().waiting(), 2);
    assert_eq!(m.get(&id).unwrap().sessions.len(), 2);
}

#[test]
fn approve_once_with_two_identical_waiters_runs_one_and_reasks_for_the_other() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 10)));
    let fx = approve(&mut m, &id, Scope::Once, T0 + 1_000);
    assert!(allowed(&fx, "c1"));
    assert!(outcome_of(&fx, "c2").is_none(), "the duplicate is not allowed: {fx:#?}");
    let new_id = held_id(&fx);
    assert_ne!(new_id, id);
    assert!(fx.contains(&Effect::Hold { call_id: "c2".into(), approval_id: new_id.clone(), hold_until: T0 + 50_010 }));
    assert!(fx.contains(&Effect::PendingAdded { approval_id: new_id.clone() }));
    assert_eq!(m.held_on("c2"), Some(new_id.as_str()));
    assert_eq!(m.grants().count(), 0);
    let fx = approve(&mut m, &new_id, Scope::Once, T0 + 2_000);
    assert!(allowed(&fx, "c2"));
}

#[test]
fn approve_for_the_session_releases_every_waiter() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 10)));
    let fx = approve(&mut m, &id, Scope::SessionArgs, T0 + 1_000);
    assert!(allowed(&fx, "c1") && allowed(&fx, "c2"));
    assert!(matches!(reply(&fx), Reply::Decided { released: 2, .. }));
}

#[test]
fn too_many_waiters_are_answered_awaiting_at_once() {
    let mut m = Approvals::new(Config { max_waiters: 1, ..Config::default() }, 7);
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::Ask(ask("c2", "s1", "ls", T0)));
    assert_eq!(outcome_of(&fx, "c2"), Some(&Outcome::AwaitingApproval { approval_id: id }));
}

#[test]
fn duplicate_call_id_is_denied_not_held_twice() {
    let mut m = machine();
    ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::Ask(ask("c1", "s1", "ls", T0)));
    assert!(denied(&fx, "c1"));
    assert_eq!(m.pending().next().unwrap().waiting(), 1);
}

// ---- retries (2026-07-28) ----

#[test]
fn retry_of_a_recently_allowed_call_is_allowed_without_asking() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::Once, T0 + 1);
    let mut retry = ask("c2", "s1", "ls", T0 + 2);
    retry.retry = true;
    assert!(allowed(&m.handle(Event::Ask(retry.clone())), "c2"));
    // Several rounds of input_required are fine.
    retry.call_id = "c3".into();
    assert!(allowed(&m.handle(Event::Ask(retry)), "c3"));
}

#[test]
fn retry_flag_does_not_help_another_session_changed_args_or_after_the_ttl() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::Once, T0 + 1);
    let mut other_session = ask("c2", "s2", "ls", T0 + 2);
    other_session.retry = true;
    assert!(outcome_of(&m.handle(Event::Ask(other_session)), "c2").is_none());
    let mut other_args = ask("c3", "s1", "pwd", T0 + 2);
    other_args.retry = true;
    assert!(outcome_of(&m.handle(Event::Ask(other_args)), "c3").is_none());
    let mut late = ask("c4", "s1", "ls", T0 + 1 + Config::default().retry_ttl_ms);
    late.retry = true;
    let fx = m.handle(Event::Ask(late));
    assert!(!allowed(&fx, "c4"), "{fx:#?}");
}

#[test]
fn identical_call_without_the_retry_flag_is_not_a_retry() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::Once, T0 + 1);
    assert!(outcome_of(&m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 2))), "c2").is_none());
}

#[test]
fn recent_retries_are_bounded_per_session() {
    let mut m = Approvals::new(Config { max_recent_per_session: 2, ..Config::default() }, 7);
    for (i, args) in ["a", "b", "c"].into_iter().enumerate() {
        let call = format!("c{i}");
        let id = ask_pending(&mut m, &call, "s1", args, T0);
        assert!(allowed(&approve(&mut m, &id, Scope::Once, T0 + 1), &call));
    }
    let retry = |call: &str, args: &str| Event::Ask(Ask { retry: true, ..ask(call, "s1", args, T0 + 2) });
    assert!(!allowed(&m.handle(retry("r1", "a")), "r1"), "the oldest was forgotten");
    assert!(allowed(&m.handle(retry("r2", "c")), "r2"));
    m.handle(Event::SessionEnded { session: "s1".into() });
    assert!(!allowed(&m.handle(retry("r3", "c")), "r3"), "a session end forgets its retries");
}
