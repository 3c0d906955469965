//! Every transition, driven by plain events: no async, no clock.

use serde_json::json;

use super::*;

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

// ---- answers ----

#[test]
fn first_answer_wins_and_later_ones_are_told_who_decided() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::Answer(answer(&id, true, Scope::Once, "telegram", T0 + 5)));
    assert!(allowed(&fx, "c1"));
    let fx = m.handle(Event::Answer(answer(&id, false, Scope::Once, "tui", T0 + 6)));
    assert!(outcome_of(&fx, "c1").is_none());
    assert_eq!(
        reply(&fx),
        &Reply::AlreadyDecided {
            approval_id: id.clone(),
            decision: Decision::Allow,
            scope: Scope::Once,
            channel: "telegram".into(),
            who: "alice".into(),
            at: T0 + 5,
        }
    );
    assert_eq!(records(&fx)[0].result, AnswerResult::AlreadyDecided);
    assert!(reply(&fx).message().contains("already approved by alice via telegram"));
    // The losing deny left no deny grant behind.
    assert_eq!(m.grants().count(), 0);
}

#[test]
fn every_answer_is_recorded_with_channel_who_and_time() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let mut a = answer(&id, true, Scope::SessionTool, "cli", T0 + 9);
    a.reason = Some("looks fine".into());
    let fx = m.handle(Event::Answer(a));
    assert_eq!(
        records(&fx),
        vec![&AnswerRecord {
            approval_id: id,
            decision: Decision::Allow,
            scope: Scope::SessionTool,
            channel: "cli".into(),
            who: "alice".into(),
            reason: Some("looks fine".into()),
            at: T0 + 9,
            result: AnswerResult::Decided,
        }]
    );
    match outcome_of(&fx, "c1") {
        Some(Outcome::Allow { reason, .. }) => {
            assert!(reason.ends_with(": looks fine"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn shim_channel_is_refused_and_recorded() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::Answer(answer(&id, true, Scope::Always, "shim", T0 + 1)));
    assert!(matches!(reply(&fx), Reply::Refused { reason } if reason.contains("`shim`")));
    assert_eq!(records(&fx)[0].result, AnswerResult::Refused);
    assert_eq!(records(&fx)[0].channel, "shim");
    assert!(outcome_of(&fx, "c1").is_none());
    assert!(!fx.iter().any(|e| matches!(e, Effect::WriteRule { .. })));
    assert_eq!(m.get(&id).unwrap().waiting(), 1, "still pending and held");
    assert!(allowed(&approve(&mut m, &id, Scope::Once, T0 + 2), "c1"));
}

#[test]
fn in_client_answers_decide_once_and_nothing_wider() {
    for scope in [Scope::SessionArgs, Scope::SessionTool, Scope::Always] {
        let mut m = machine();
        let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
        let fx = m.handle(Event::Answer(answer(&id, true, scope, IN_CLIENT, T0 + 1)));
        assert!(matches!(reply(&fx), Reply::Refused { .. }), "{scope:?}");
        assert_eq!(records(&fx)[0].result, AnswerResult::Refused);
        assert!(!fx.iter().any(|e| matches!(e, Effect::WriteRule { .. })));
        assert_eq!(m.get(&id).unwrap().waiting(), 1, "still pending and held");
    }
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::Answer(answer(&id, true, Scope::Once, IN_CLIENT, T0 + 1)));
    assert!(allowed(&fx, "c1"));
    assert_eq!(records(&fx)[0].channel, IN_CLIENT);
    // First answer wins: a later one from the client changes nothing.
    let id = ask_pending(&mut m, "c2", "s1", "rm", T0 + 2);
    deny(&mut m, &id, Scope::Once, T0 + 3);
    let fx = m.handle(Event::Answer(answer(&id, true, Scope::Once, IN_CLIENT, T0 + 4)));
    assert!(matches!(reply(&fx), Reply::AlreadyDecided { .. }));
}

#[test]
fn unknown_channel_is_refused_too() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::Answer(answer(&id, true, Scope::Once, "web", T0 + 1)));
    assert!(matches!(reply(&fx), Reply::Refused { .. }));
    assert!(m.get(&id).is_some());
}

#[test]
fn unknown_id_gets_unknown() {
    let mut m = machine();
    let fx = approve(&mut m, "zzzzzz", Scope::Once, T0);
    assert_eq!(reply(&fx), &Reply::Unknown { approval_id: "zzzzzz".into() });
    assert_eq!(records(&fx)[0].result, AnswerResult::Unknown);
}

#[test]
fn typed_ids_are_matched_leniently() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = approve(&mut m, &format!(" {} ", id.to_uppercase()), Scope::Once, T0 + 1);
    assert!(allowed(&fx, "c1"));
}

// ---- deny ----

#[test]
fn deny_once_denies_every_held_waiter() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::Ask(ask("c2", "s2", "ls", T0)));
    let fx = deny(&mut m, &id, Scope::Once, T0 + 1);
    assert!(denied(&fx, "c1") && denied(&fx, "c2"));
    assert_eq!(m.grants().count(), 0);
    assert!(
        m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + 2))).iter().any(|e| matches!(e, Effect::PendingAdded { .. }))
    );
}

#[test]
fn deny_once_after_hold_expiry_denies_the_identical_retry_once() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    deny(&mut m, &id, Scope::Once, T0 + 1);
    assert!(denied(&m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 2))), "c2"));
    assert!(outcome_of(&m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + 3))), "c3").is_none());
}

#[test]
fn deny_for_the_session_denies_later_calls_of_that_session_only() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    deny(&mut m, &id, Scope::SessionTool, T0 + 1);
    assert!(denied(&m.handle(Event::Ask(ask("c2", "s1", "cat x", T0 + 2))), "c2"));
    assert!(denied(&m.handle(Event::Ask(ask("c3", "s1", "cat x", T0 + 3))), "c3"), "not single-use");
    let fx = m.handle(Event::Ask(ask("c4", "s2", "cat x", T0 + 4)));
    assert!(outcome_of(&fx, "c4").is_none(), "other session asks: {fx:#?}");
}

#[test]
fn deny_session_args_leaves_other_arguments_to_ask() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    deny(&mut m, &id, Scope::SessionArgs, T0 + 1);
    assert!(denied(&m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 2))), "c2"));
    assert!(outcome_of(&m.handle(Event::Ask(ask("c3", "s1", "pwd", T0 + 3))), "c3").is_none());
}

#[test]
fn deny_always_writes_a_deny_rule_and_denies_until_reload() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = deny(&mut m, &id, Scope::Always, T0 + 1);
    assert!(denied(&fx, "c1"));
    assert!(fx.contains(&Effect::WriteRule {
        approval_id: id,
        server: "sh".into(),
        tool: "run".into(),
        decision: Decision::Deny,
        def_hash: Some("def1".into()),
    }));
    assert!(denied(&m.handle(Event::Ask(ask("c2", "s9", "pwd", T0 + 2))), "c2"));
    m.handle(Event::PolicyReloaded);
    assert_eq!(m.grants().count(), 0);
}

#[test]
fn deny_grant_wins_over_allow_grant() {
    let mut m = machine();
    let a = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &a, Scope::SessionTool, T0 + 1);
    // A different key of the same tool can't be pending now (session grant
    // covers it), so deny from another session and check precedence there.
    let b = ask_pending(&mut m, "c2", "s2", "ls", T0 + 2);
    deny(&mut m, &b, Scope::Always, T0 + 3);
    assert!(denied(&m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + 4))), "c3"));
}

// ---- allow scopes ----

#[test]
fn session_grant_does_not_leak_to_another_session() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::SessionArgs, T0 + 1);
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 2))), "c2"));
    assert!(allowed(&m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + 3))), "c3"), "standing, not single-use");
    let fx = m.handle(Event::Ask(ask("c4", "s2", "ls", T0 + 4)));
    assert!(outcome_of(&fx, "c4").is_none(), "{fx:#?}");
    assert!(outcome_of(&m.handle(Event::Ask(ask("c5", "s1", "pwd", T0 + 5))), "c5").is_none(), "other args ask");
}

#[test]
fn session_tool_grant_covers_any_arguments_of_that_tool_only() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::SessionTool, T0 + 1);
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s1", "pwd", T0 + 2))), "c2"));
    let mut other_tool = ask("c3", "s1", "pwd", T0 + 3);
    other_tool.tool = "exec".into();
    assert!(outcome_of(&m.handle(Event::Ask(other_tool)), "c3").is_none());
    let mut other_server = ask("c4", "s1", "pwd", T0 + 4);
    other_server.server = "sh2".into();
    assert!(outcome_of(&m.handle(Event::Ask(other_server)), "c4").is_none());
}

#[test]
fn session_grant_goes_to_every_session_that_asked() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    m.handle(Event::Ask(ask("c2", "s2", "ls", T0 + 1)));
    approve(&mut m, &id, Scope::SessionArgs, T0 + 2);
    assert!(allowed(&m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + 3))), "c3"));
    assert!(allowed(&m.handle(Event::Ask(ask("c4", "s2", "ls", T0 + 3))), "c4"));
    assert!(outcome_of(&m.handle(Event::Ask(ask("c5", "s3", "ls", T0 + 3))), "c5").is_none());
}

#[test]
fn always_writes_a_rule_and_allows_any_arguments_until_reload() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = approve(&mut m, &id, Scope::Always, T0 + 1);
    assert!(allowed(&fx, "c1"));
    assert!(fx.contains(&Effect::WriteRule {
        approval_id: id,
        server: "sh".into(),
        tool: "run".into(),
        decision: Decision::Allow,
        def_hash: Some("def1".into()),
    }));
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s7", "pwd", T0 + 2))), "c2"));
    m.handle(Event::PolicyReloaded);
    assert!(outcome_of(&m.handle(Event::Ask(ask("c3", "s7", "pwd", T0 + 3))), "c3").is_none());
}

#[test]
fn standing_grant_is_used_before_a_once_grant() {
    let mut m = machine();
    let a = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    approve(&mut m, &a, Scope::Once, T0 + 1);
    // Another approval of the same tool: for the session, any arguments.
    let b = ask_pending(&mut m, "c2", "s1", "pwd", T0 + 2);
    approve(&mut m, &b, Scope::SessionTool, T0 + 3);
    assert!(allowed(&m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + 4))), "c3"));
    assert!(m.grants().any(|g| g.scope == Scope::Once), "the once grant is still there");
}

// ---- expiry ----

#[test]
fn expired_once_grant_is_ignored_and_removed_at_use() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    approve(&mut m, &id, Scope::Once, T0 + 1_000);
    assert_eq!(m.grants().count(), 1);
    let late = T0 + 1_000 + Config::default().once_ttl_ms;
    let fx = m.handle(Event::Ask(ask("c2", "s1", "ls", late)));
    assert!(outcome_of(&fx, "c2").is_none(), "asks again: {fx:#?}");
    assert_eq!(m.grants().count(), 0);
}

#[test]
fn expired_session_grant_is_ignored_at_use() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::SessionArgs, T0);
    let ttl = Config::default().session_ttl_ms;
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + ttl - 1))), "c2"));
    assert!(outcome_of(&m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + ttl))), "c3").is_none());
}

#[test]
fn expired_deny_grant_no_longer_denies() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    deny(&mut m, &id, Scope::SessionTool, T0);
    let ttl = Config::default().session_ttl_ms;
    assert!(outcome_of(&m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + ttl))), "c2").is_none());
}

#[test]
fn tick_prunes_expired_grants_and_withdraws_stale_approvals() {
    let mut m = machine();
    let a = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &a, Scope::SessionArgs, T0);
    let b = ask_pending(&mut m, "c2", "s1", "pwd", T0);
    m.handle(Event::HoldExpired { call_id: "c2".into() });
    let cfg = Config::default();
    let fx = m.handle(Event::Tick { now_ms: T0 + cfg.session_ttl_ms });
    assert!(fx.is_empty(), "{fx:#?}");
    assert_eq!(m.grants().count(), 0);
    let now = T0 + cfg.pending_ttl_ms;
    let fx = m.handle(Event::Tick { now_ms: now });
    assert_eq!(
        fx,
        vec![Effect::PendingRemoved {
            approval_id: b.clone(),
            closure: Closure::Withdrawn { cause: Withdrawal::Expired, at: now }
        }]
    );
    assert!(matches!(
        reply(&approve(&mut m, &b, Scope::Once, now + 1)),
        Reply::Withdrawn { cause: Withdrawal::Expired, .. }
    ));
}

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

// ---- definition changes ----

#[test]
fn def_change_revokes_grants_bound_to_the_old_definition() {
    let mut m = machine();
    let a = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &a, Scope::SessionTool, T0 + 1);
    let mut other = ask("cx", "s1", "ls", T0 + 1);
    other.tool = "other".into();
    let b = held_id(&m.handle(Event::Ask(other)));
    approve(&mut m, &b, Scope::SessionTool, T0 + 1);
    assert_eq!(m.grants().count(), 2);

    let fx = m.handle(Event::ToolDefChanged {
        server: "sh".into(),
        tool: "run".into(),
        new_def_hash: "def2".into(),
        now_ms: T0 + 2,
    });
    assert!(fx.is_empty());
    assert_eq!(m.grants().count(), 1, "the other tool's grant stays");
    let mut new_def = ask("c2", "s1", "ls", T0 + 3);
    new_def.def_hash = Some("def2".into());
    assert!(outcome_of(&m.handle(Event::Ask(new_def)), "c2").is_none(), "asks again");
    // Changing back to the first definition does not revive the grant.
    m.handle(Event::ToolDefChanged {
        server: "sh".into(),
        tool: "run".into(),
        new_def_hash: "def1".into(),
        now_ms: T0 + 4,
    });
    assert!(outcome_of(&m.handle(Event::Ask(ask("c3", "s1", "ls", T0 + 5))), "c3").is_none());
}

#[test]
fn grant_does_not_apply_to_a_call_with_another_definition() {
    let mut m = machine();
    let a = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &a, Scope::SessionArgs, T0 + 1);
    let mut other = ask("c2", "s1", "ls", T0 + 2);
    other.def_hash = None;
    assert!(outcome_of(&m.handle(Event::Ask(other)), "c2").is_none());
}

#[test]
fn def_change_withdraws_pending_approvals_of_the_old_definition() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::ToolDefChanged {
        server: "sh".into(),
        tool: "run".into(),
        new_def_hash: "def2".into(),
        now_ms: T0 + 1,
    });
    assert!(fx.contains(&Effect::PendingRemoved {
        approval_id: id.clone(),
        closure: Closure::Withdrawn { cause: Withdrawal::ToolDefChanged, at: T0 + 1 }
    }));
    assert!(matches!(outcome_of(&fx, "c1"), Some(Outcome::Deny { reason, .. }) if reason.contains("retry")));
    assert!(matches!(reply(&approve(&mut m, &id, Scope::Once, T0 + 2)), Reply::Withdrawn { .. }));
}

#[test]
fn def_change_to_the_same_definition_changes_nothing() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::ToolDefChanged {
        server: "sh".into(),
        tool: "run".into(),
        new_def_hash: "def1".into(),
        now_ms: T0 + 1,
    });
    assert!(fx.is_empty());
    assert!(m.get(&id).is_some());
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

// ---- messages ----

#[test]
fn awaiting_message_names_the_approval_and_says_to_retry_the_identical_call() {
    let text = Outcome::AwaitingApproval { approval_id: "k3m9qz".into() }.message();
    assert!(text.contains("k3m9qz") && text.contains("retry the identical call"), "{text}");
    assert_eq!(Outcome::AwaitingApproval { approval_id: "x".into() }.decision(), Some(Decision::Deny));
    assert_eq!(Outcome::Dropped { reason: "gone".into() }.decision(), None);
}

#[test]
fn an_approval_given_before_the_definition_was_known_binds_to_it_when_first_seen() {
    let mut m = machine();
    let mut early = ask("c1", "s1", "a", 0);
    early.def_hash = None;
    let fx = m.handle(Event::Ask(early));
    let id = held_id(&fx);
    m.handle(Event::HoldExpired { call_id: "c1".into() });
    m.handle(Event::Answer(answer(&id, true, Scope::SessionArgs, "cli", 10)));
    // The client lists its tools: the definition is seen for the first time.
    m.handle(Event::ToolDefSeen { server: "sh".into(), tool: "run".into(), def_hash: "def1".into() });
    for (n, call) in ["c2", "c3"].into_iter().enumerate() {
        let fx = m.handle(Event::Ask(ask(call, "s1", "a", 20 + n as i64)));
        assert!(matches!(outcome_of(&fx, call), Some(Outcome::Allow { .. })), "{call}: {fx:?}");
    }
    // A later change of the definition still revokes it.
    m.handle(Event::ToolDefChanged {
        server: "sh".into(),
        tool: "run".into(),
        new_def_hash: "def2".into(),
        now_ms: 30,
    });
    let mut changed = ask("c4", "s1", "a", 40);
    changed.def_hash = Some("def2".into());
    let fx = m.handle(Event::Ask(changed));
    assert!(!matches!(outcome_of(&fx, "c4"), Some(Outcome::Allow { .. })), "{fx:?}");
}
