//! The wall clock moving apart from elapsed time: grants, holds and pending
//! approvals keep their elapsed-time life; a restart bounds grants by their
//! TTL.

use super::*;

const HOUR: i64 = 3_600_000;

#[test]
fn a_clock_set_back_does_not_lengthen_a_grant() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::SessionArgs, T0);
    let ttl = Config::default().session_ttl_ms;
    // The clock is set back two hours.
    m.handle(Event::ClockJumped { by_ms: -2 * HOUR });
    // The wall clock now reads T0 + ttl - 2 h when the grant's TTL has elapsed.
    let elapsed_ttl = T0 + ttl - 2 * HOUR;
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s1", "ls", elapsed_ttl - 1))), "c2"));
    let fx = m.handle(Event::Ask(ask("c3", "s1", "ls", elapsed_ttl)));
    assert!(outcome_of(&fx, "c3").is_none(), "asks again once its TTL has elapsed: {fx:#?}");
}

#[test]
fn a_clock_set_forward_does_not_shorten_a_grant() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::SessionArgs, T0);
    m.handle(Event::ClockJumped { by_ms: 48 * HOUR });
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s1", "ls", T0 + 48 * HOUR + 1))), "c2"));
    let g = m.grants().next().unwrap();
    assert_eq!((g.created_at, g.expires_at - g.created_at), (T0 + 48 * HOUR, Config::default().session_ttl_ms));
}

#[test]
fn a_clock_jump_moves_holds_and_pending_approvals_too() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    m.handle(Event::ClockJumped { by_ms: -HOUR });
    let p = m.get(&id).unwrap();
    assert_eq!((p.created_at, p.hold_until()), (T0 - HOUR, Some(T0 - HOUR + Config::default().hold_ms)));
    // Withdrawn after its pending TTL of elapsed time, not an hour later.
    let fx = m.handle(Event::Tick { now_ms: T0 - HOUR + Config::default().pending_ttl_ms });
    assert!(fx.iter().any(|e| matches!(e, Effect::PendingRemoved { .. })), "{fx:#?}");
}

#[test]
fn a_restart_after_the_clock_was_set_back_bounds_grants_by_their_ttl() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::SessionArgs, T0);
    let ttl = Config::default().session_ttl_ms;
    let mut m = Approvals::restore(Config::default(), m.snapshot()).unwrap();
    // The daemon restarts with the clock a day behind the grant.
    let restart = T0 - 24 * HOUR;
    m.handle(Event::Restarted { now_ms: restart });
    let g = m.grants().next().unwrap();
    assert_eq!((g.created_at, g.expires_at), (restart, restart + ttl));
    assert!(allowed(&m.handle(Event::Ask(ask("c2", "s1", "ls", restart + ttl - 1))), "c2"));
    assert!(outcome_of(&m.handle(Event::Ask(ask("c3", "s1", "ls", restart + ttl))), "c3").is_none());
}

#[test]
fn a_restart_keeps_what_the_stored_clock_says_when_it_did_not_go_back() {
    let mut m = machine();
    let id = ask_pending(&mut m, "c1", "s1", "ls", T0);
    approve(&mut m, &id, Scope::SessionArgs, T0);
    let before = m.grants().next().unwrap().clone();
    m.handle(Event::Restarted { now_ms: T0 + HOUR });
    assert_eq!(m.grants().next().unwrap(), &before);
}
