//! People's answers: who may answer, what a deny reaches, what the
//! agent is told.

use super::*;

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
    assert!(reply(&fx).message().contains("already approved by alice via Telegram"));
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
            server: "sh".into(),
            tool: "run".into(),
        }]
    );
    match outcome_of(&fx, "c1") {
        Some(Outcome::Allow { reason, .. }) => {
            assert!(reason.starts_with("approved by a person: looks fine (approval "), "{reason}")
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
