//! Grants: how far an allow reaches, when it expires, and the tool
//! definition it is bound to.

use super::*;

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
fn narrowed_always_writes_a_rule_but_grants_only_these_arguments_until_reload() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    let fx = m.handle(Event::AnswerNarrow(answer(&id, true, Scope::Always, "tui", T0 + 1)));
    assert!(allowed(&fx, "c1"));
    assert!(fx.iter().any(|e| matches!(e, Effect::WriteRule { decision: Decision::Allow, .. })));
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s7", "ls", T0 + 2))), "c2"), "the same arguments");
    let fx = m.handle(Event::Ask(ask("c3", "s7", "pwd", T0 + 3)));
    assert!(outcome_of(&fx, "c3").is_none(), "other arguments wait for the rule: {fx:#?}");
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
