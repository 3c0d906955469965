//! The console's state machine, driven by hand: keys, daemon messages and
//! the clock are inputs, the messages to the daemon are the output.

mod support;

use latch_proto::{ClientMsg, DaemonMsg, Event, Scope};
use latch_tui::app::{App, Conn, Input, Mode, PAGE, Pane, QUIET_MS};
use ratatui::crossterm::event::KeyCode;
use support::*;

fn answers(msgs: &[ClientMsg]) -> Vec<(String, bool, Scope)> {
    msgs.iter()
        .filter_map(|m| match m {
            ClientMsg::Answer { approval_id, approve, scope, .. } => Some((approval_id.clone(), *approve, *scope)),
            _ => None,
        })
        .collect()
}

fn audit_before(msgs: &[ClientMsg]) -> Vec<Option<i64>> {
    msgs.iter()
        .filter_map(|m| match m {
            ClientMsg::Audit { before, .. } => Some(*before),
            _ => None,
        })
        .collect()
}

fn idle_app() -> App {
    connected(&[], &mut SyntheticLog::new(0))
}

#[test]
fn connecting_subscribes_before_it_lists_pending() {
    let mut app = App::new("alice", 0);
    let msgs = app.handle(Input::Connected, NOW);
    let kinds: Vec<&str> = msgs
        .iter()
        .map(|m| match m {
            ClientMsg::Subscribe { .. } => "subscribe",
            ClientMsg::ListPending { .. } => "pending",
            ClientMsg::Status { .. } => "status",
            ClientMsg::ToolFindings { .. } => "findings",
            ClientMsg::Taints { .. } => "taints",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["subscribe", "pending", "status", "findings", "taints"]);
    assert_eq!(app.conn, Conn::Up { since: NOW });
}

#[test]
fn pending_at_startup_takes_focus() {
    let app = connected(&[pending("ap-1", "shell", "run_command", "EXECUTE", 50_000)], &mut SyntheticLog::new(0));
    assert_eq!(app.pane, Pane::Pending);
    assert_eq!(app.pending_sel.as_deref(), Some("ap-1"));
}

#[test]
fn a_new_approval_takes_focus_when_the_console_is_idle() {
    let mut app = idle_app();
    assert_eq!(app.pane, Pane::Live);
    app.handle(event(Event::PendingAdded { item: pending("ap-1", "shell", "run_command", "EXECUTE", 50_000) }), NOW);
    assert_eq!(app.pane, Pane::Pending);
    assert_eq!(app.pending_sel.as_deref(), Some("ap-1"));
}

#[test]
fn a_new_approval_waits_for_a_quiet_second_after_a_key() {
    let mut app = idle_app();
    app.handle(key('j'), NOW);
    app.handle(
        event(Event::PendingAdded { item: pending("ap-1", "shell", "run_command", "EXECUTE", 50_000) }),
        NOW + 200,
    );
    assert_eq!(app.pane, Pane::Live, "focus must not move right after a key");
    assert_eq!(app.next_wake(NOW + 200), Some(NOW + 1000), "a tick is asked for when the quiet second ends");
    app.handle(Input::Tick, NOW + QUIET_MS);
    assert_eq!(app.pane, Pane::Pending);
    assert_eq!(app.pending_sel.as_deref(), Some("ap-1"));
}

#[test]
fn a_new_approval_never_takes_a_keystroke_typed_into_the_search() {
    let mut app = idle_app();
    app.handle(key('3'), NOW - 10_000);
    app.handle(key('/'), NOW - 5_000);
    app.handle(event(Event::PendingAdded { item: pending("ap-1", "shell", "run_command", "EXECUTE", 50_000) }), NOW);
    // `d` would deny on the pending pane; here it is a letter of the search.
    let out = app.handle(key('d'), NOW + 5_000);
    assert!(answers(&out).is_empty());
    assert_eq!(app.mode, Mode::Search { input: "d".into() });
    app.handle(Input::Tick, NOW + 9_000);
    assert_eq!(app.pane, Pane::History, "no focus move while the search input is open");
    app.handle(code(KeyCode::Enter), NOW + 10_000);
    app.handle(Input::Tick, NOW + 11_000);
    assert_eq!(app.pane, Pane::Pending, "focus moves at the first idle moment");
}

#[test]
fn answer_keys_are_held_for_a_moment_after_focus_moved_by_itself() {
    let mut app = idle_app();
    app.handle(event(Event::PendingAdded { item: pending("ap-1", "shell", "run_command", "EXECUTE", 50_000) }), NOW);
    let out = app.handle(key('a'), NOW + 100);
    assert!(answers(&out).is_empty(), "a key in the first half second only warns");
    assert!(app.toast.as_ref().unwrap().text.contains("press again"));
    let out = app.handle(key('a'), NOW + 300);
    assert_eq!(answers(&out), [("ap-1".to_string(), true, Scope::Once)]);
}

#[test]
fn the_selection_follows_the_approval_not_its_row() {
    let mut app = connected(&[pending("ap-b", "shell", "run_command", "EXECUTE", 50_000)], &mut SyntheticLog::new(0));
    assert_eq!(app.pending_sel.as_deref(), Some("ap-b"));
    // A more urgent one sorts above the selected one.
    app.handle(event(Event::PendingAdded { item: pending("ap-a", "github", "merge_pr", "SUBMIT", 5_000) }), NOW);
    assert_eq!(app.pending[0].id, "ap-a");
    assert_eq!(app.pending_sel.as_deref(), Some("ap-b"));
    app.handle(key('d'), NOW + 10);
    let out = app.handle(code(KeyCode::Enter), NOW + 10);
    assert_eq!(answers(&out), [("ap-b".to_string(), false, Scope::Once)]);
}

#[test]
fn the_first_approval_asks_for_the_pin_once_per_session_and_a_deny_never_does() {
    let items =
        [pending("ap-1", "shell", "run_command", "EXECUTE", 50_000), pending("ap-2", "shell", "x", "EXECUTE", 60_000)];
    let mut app = locked(&items, &mut SyntheticLog::new(0));
    app.handle(key('1'), NOW);
    // A deny needs no PIN.
    app.handle(key('j'), NOW);
    app.handle(key('d'), NOW);
    let out = app.handle(code(KeyCode::Enter), NOW);
    assert_eq!(answers(&out), [("ap-2".to_string(), false, Scope::Once)]);
    app.handle(key('k'), NOW);
    // An approval asks for the PIN first; nothing is sent while typing.
    assert!(app.handle(key('a'), NOW).is_empty());
    assert!(matches!(app.mode, Mode::Pin { .. }));
    for c in "1234".chars() {
        assert!(app.handle(key(c), NOW).is_empty(), "a digit typed into the PIN is not a key");
    }
    let out = app.handle(code(KeyCode::Enter), NOW);
    let req = match &out[..] {
        [ClientMsg::Unlock { req, pin }] => {
            assert_eq!(pin.0, "1234");
            *req
        }
        other => panic!("{other:?}"),
    };
    // The daemon accepts it: the approval goes out, and the next one asks no more.
    let done = DaemonMsg::Done { req, ok: true, message: "unlocked".into() };
    let out = app.handle(Input::Daemon(Box::new(done)), NOW);
    assert_eq!(answers(&out), [("ap-1".to_string(), true, Scope::Once)]);
    assert!(app.unlocked);
    // A new connection is a new session.
    app.handle(Input::Disconnected { error: "gone".into(), retry_at: NOW + 1000 }, NOW);
    app.handle(Input::Connected, NOW + 1000);
    assert!(!app.unlocked);
}

#[test]
fn without_a_pin_p_sets_one_typed_twice() {
    let mut app = App::new("alice", 0);
    let msgs = app.handle(Input::Connected, NOW);
    let mut st = status();
    st.pin_set = false;
    for m in msgs {
        if let ClientMsg::Status { req } = m {
            app.handle(Input::Daemon(Box::new(DaemonMsg::Status { req, status: st.clone() })), NOW);
        }
    }
    app.handle(key('p'), NOW);
    for c in "2468".chars() {
        assert!(app.handle(key(c), NOW).is_empty());
    }
    assert!(app.handle(code(KeyCode::Enter), NOW).is_empty(), "asked again first");
    for c in "2468".chars() {
        app.handle(key(c), NOW);
    }
    let out = app.handle(code(KeyCode::Enter), NOW);
    let [ClientMsg::SetPin { req, old: None, new }] = &out[..] else { panic!("{out:?}") };
    assert_eq!(new.0, "2468");
    let done = DaemonMsg::Done { req: *req, ok: true, message: "PIN set".into() };
    app.handle(Input::Daemon(Box::new(done)), NOW);
    assert!(app.unlocked && app.status.as_ref().unwrap().pin_set);
    // Typed differently the second time: nothing is sent.
    let mut other = App::new("alice", 0);
    for m in other.handle(Input::Connected, NOW) {
        if let ClientMsg::Status { req } = m {
            other.handle(Input::Daemon(Box::new(DaemonMsg::Status { req, status: st.clone() })), NOW);
        }
    }
    other.handle(key('p'), NOW);
    other.handle(key('1'), NOW);
    other.handle(code(KeyCode::Enter), NOW);
    other.handle(key('2'), NOW);
    assert!(other.handle(code(KeyCode::Enter), NOW).is_empty());
    assert_eq!(other.mode, Mode::Normal);
}

#[test]
fn a_refused_pin_sends_no_answer() {
    let mut app = locked(&[pending("ap-1", "shell", "run_command", "EXECUTE", 50_000)], &mut SyntheticLog::new(0));
    app.handle(key('1'), NOW);
    app.handle(key('a'), NOW);
    app.handle(key('9'), NOW);
    let out = app.handle(code(KeyCode::Enter), NOW);
    let [ClientMsg::Unlock { req, .. }] = &out[..] else { panic!("{out:?}") };
    let done = DaemonMsg::Done { req: *req, ok: false, message: "wrong PIN (1 wrong in a row)".into() };
    assert!(app.handle(Input::Daemon(Box::new(done)), NOW).is_empty());
    assert!(!app.unlocked);
    assert!(app.toast.as_ref().is_some_and(|t| t.text.contains("wrong PIN")));
}

#[test]
fn each_answer_key_sends_its_scope_once() {
    for (k, approve, scope) in [
        ('a', true, Scope::Once),
        ('s', true, Scope::SessionArgs),
        ('S', true, Scope::SessionTool),
        ('d', false, Scope::Once),
    ] {
        let mut app =
            connected(&[pending("ap-1", "shell", "run_command", "EXECUTE", 50_000)], &mut SyntheticLog::new(0));
        let mut out = app.handle(key(k), NOW);
        if k == 'd' {
            // A deny first asks why (Enter: no reason).
            assert!(out.is_empty());
            out = app.handle(code(KeyCode::Enter), NOW);
        }
        assert_eq!(answers(&out), [("ap-1".to_string(), approve, scope)], "key {k}");
        match &out[0] {
            ClientMsg::Answer { who, .. } => assert_eq!(who, "alice"),
            other => panic!("{other:?}"),
        }
        assert!(app.handle(key(k), NOW + 1).is_empty(), "a second press does not answer twice");
    }
}

#[test]
fn always_answers_ask_for_confirmation() {
    let mut app = connected(&[pending("ap-1", "shell", "run_command", "EXECUTE", 50_000)], &mut SyntheticLog::new(0));
    let out = app.handle(key('A'), NOW);
    assert!(answers(&out).is_empty(), "{out:?}");
    assert!(matches!(app.mode, Mode::Always(_)), "approve always first asks how far");
    assert!(app.handle(code(KeyCode::Esc), NOW + 1).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.handle(key('D'), NOW + 1).is_empty());
    assert!(matches!(app.mode, Mode::Confirm(_)));
    assert!(app.handle(key('n'), NOW + 1).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.handle(key('D'), NOW + 2).is_empty());
    let out = app.handle(key('y'), NOW + 3);
    assert_eq!(answers(&out), [("ap-1".to_string(), false, Scope::Always)]);
}

#[test]
fn approving_a_transfer_asks_for_confirmation_but_denying_it_does_not() {
    let mut app = connected(&[transfer("ap-t")], &mut SyntheticLog::new(0));
    assert!(app.handle(key('a'), NOW).is_empty());
    let out = app.handle(code(KeyCode::Enter), NOW + 1);
    assert_eq!(answers(&out), [("ap-t".to_string(), true, Scope::Once)]);

    let mut app = connected(&[transfer("ap-t")], &mut SyntheticLog::new(0));
    app.handle(key('d'), NOW);
    let out = app.handle(code(KeyCode::Enter), NOW);
    assert_eq!(answers(&out), [("ap-t".to_string(), false, Scope::Once)]);
}

#[test]
fn a_deny_from_the_console_carries_the_reason_typed_for_the_agent() {
    let mut app = connected(&[pending("ap-1", "github", "merge_pr", "SUBMIT", 50_000)], &mut SyntheticLog::new(0));
    assert!(app.handle(key('d'), NOW).is_empty());
    assert!(matches!(app.mode, Mode::DenyReason { .. }));
    // Letters that are keys elsewhere (a approves, q quits) are text here.
    for c in "ask the release manager, q".chars() {
        assert!(app.handle(key(c), NOW).is_empty(), "{c} sent something");
    }
    let out = app.handle(code(KeyCode::Enter), NOW);
    match &out[..] {
        [ClientMsg::Answer { approval_id, approve: false, scope: Scope::Once, reason, .. }] => {
            assert_eq!(approval_id, "ap-1");
            assert_eq!(reason.as_deref(), Some("ask the release manager, q"));
        }
        other => panic!("{other:?}"),
    }
    // Esc sends nothing.
    let mut app = connected(&[pending("ap-1", "github", "merge_pr", "SUBMIT", 50_000)], &mut SyntheticLog::new(0));
    app.handle(key('d'), NOW);
    assert!(app.handle(code(KeyCode::Esc), NOW).is_empty());
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn an_answer_in_one_console_shows_in_every_console() {
    let items = [pending("ap-1", "shell", "run_command", "EXECUTE", 30_000), transfer("ap-2")];
    let mut one = connected(&items, &mut SyntheticLog::new(0));
    let mut two = connected(&items, &mut SyntheticLog::new(0));
    // Console two is about to approve the transfer; console one denies it.
    two.handle(key('j'), NOW);
    assert_eq!(two.pending_sel.as_deref(), Some("ap-2"));
    two.handle(key('a'), NOW + 1);
    assert!(matches!(two.mode, Mode::Confirm(_)));
    one.handle(key('j'), NOW);
    one.handle(key('d'), NOW + 2);
    let out = one.handle(code(KeyCode::Enter), NOW + 2);
    assert_eq!(answers(&out), [("ap-2".to_string(), false, Scope::Once)]);
    // The daemon answers console one and broadcasts the removal to both.
    one.handle(Input::Daemon(Box::new(DaemonMsg::Answered { req: 99, ok: true, message: String::new() })), NOW + 3);
    let removed =
        || event(Event::PendingRemoved { id: "ap-2".into(), decision: "deny".into(), by: "alice (tui)".into() });
    one.handle(removed(), NOW + 3);
    two.handle(removed(), NOW + 3);
    for app in [&one, &two] {
        assert_eq!(app.pending.len(), 1);
        assert_eq!(app.pending_sel.as_deref(), Some("ap-1"));
    }
    assert_eq!(two.mode, Mode::Normal, "the confirmation of an answered approval closes");
    assert!(two.toast.as_ref().unwrap().text.contains("answered elsewhere"));
    // Confirming now sends nothing.
    assert!(two.handle(key('y'), NOW + 4).is_empty());
}

#[test]
fn losing_the_daemon_keeps_the_console_and_reconnecting_starts_over() {
    let mut log = SyntheticLog::new(500);
    let mut app = connected(&[pending("ap-1", "shell", "run_command", "EXECUTE", 50_000)], &mut log);
    app.handle(Input::Disconnected { error: "no daemon at /x".into(), retry_at: NOW + 250 }, NOW);
    assert!(matches!(app.conn, Conn::Down { .. }));
    assert!(!app.should_quit());
    let out = app.handle(key('a'), NOW + 10);
    assert!(out.is_empty(), "nothing is sent while disconnected");
    assert!(app.toast.as_ref().unwrap().text.contains("not connected"));
    // History opened while down loads once the daemon is back.
    assert!(app.handle(key('3'), NOW + 20).is_empty());
    let out = app.handle(Input::Connected, NOW + 300);
    assert_eq!(out.len(), 6, "{out:?}");
    assert_eq!(audit_before(&out), [None]);
    let more = answer(&mut app, out, &[], &mut log, NOW + 300);
    assert!(more.is_empty());
    assert!(app.pending.is_empty(), "the list is the daemon's, fresh");
    assert_eq!(app.history.rows.len(), PAGE as usize);
}

#[test]
fn history_holds_one_page_and_pages_back_to_exactly_the_same_rows() {
    let mut log = SyntheticLog::new(1_000_000);
    let mut app = connected(&[], &mut log);
    let out = app.handle(key('3'), NOW);
    assert_eq!(audit_before(&out), [None]);
    answer(&mut app, out, &[], &mut log, NOW);
    assert_eq!(app.history.rows.first().unwrap().id, 1_000_000);
    let page1: Vec<i64> = app.history.rows.iter().map(|r| r.id).collect();

    // PgDn at the page's last row loads the next page.
    app.handle(key('G'), NOW);
    let out = app.handle(code(KeyCode::PageDown), NOW);
    assert_eq!(audit_before(&out), [Some(999_901)]);
    answer(&mut app, out, &[], &mut log, NOW);
    let page2: Vec<i64> = app.history.rows.iter().map(|r| r.id).collect();
    assert_eq!(page2[0], 999_900);
    assert_eq!(app.history.rows.len(), PAGE as usize);

    // Moving down past the last row loads the next page, first row selected.
    app.handle(key('G'), NOW);
    let out = app.handle(key('j'), NOW);
    assert_eq!(audit_before(&out), [Some(999_801)]);
    answer(&mut app, out, &[], &mut log, NOW);
    assert_eq!((app.history.page, app.history.sel), (2, 0));

    // Up past the first row goes back to page 2, last row selected.
    let out = app.handle(key('k'), NOW);
    answer(&mut app, out, &[], &mut log, NOW);
    assert_eq!(app.history.rows.iter().map(|r| r.id).collect::<Vec<_>>(), page2);
    assert_eq!(app.history.sel, PAGE as usize - 1);

    // PgUp moves a screenful up within the page, then loads the page before.
    for _ in 0..PAGE / 10 {
        assert!(app.handle(code(KeyCode::PageUp), NOW).is_empty());
    }
    assert_eq!(app.history.sel, 0);
    let out = app.handle(code(KeyCode::PageUp), NOW);
    answer(&mut app, out, &[], &mut log, NOW);
    assert_eq!(app.history.rows.iter().map(|r| r.id).collect::<Vec<_>>(), page1);
    assert!(log.produced < 1_000, "only pages were produced, not the log: {}", log.produced);
}

#[test]
fn the_end_of_the_log_stops_paging() {
    let mut log = SyntheticLog::new(150);
    let mut app = connected(&[], &mut log);
    let out = app.handle(key('3'), NOW);
    answer(&mut app, out, &[], &mut log, NOW);
    app.handle(key('G'), NOW);
    let out = app.handle(code(KeyCode::PageDown), NOW);
    answer(&mut app, out, &[], &mut log, NOW);
    assert_eq!(app.history.rows.len(), 50);
    assert!(app.history.at_end);
    assert!(app.handle(code(KeyCode::PageDown), NOW).is_empty());
    app.handle(key('G'), NOW);
    assert!(app.handle(key('j'), NOW).is_empty());
    assert_eq!(app.history.rows.last().unwrap().id, 1);
}

#[test]
fn page_down_moves_through_rows_off_screen_even_on_the_last_page() {
    let mut log = SyntheticLog::new(60);
    let mut app = connected(&[], &mut log);
    let out = app.handle(key('3'), NOW);
    answer(&mut app, out, &[], &mut log, NOW);
    assert!(app.history.at_end);
    assert_eq!(app.history.sel, 0);
    assert!(app.handle(code(KeyCode::PageDown), NOW).is_empty());
    assert_eq!(app.history.sel, 10, "PgDn moved nothing on the only page");
    for _ in 0..10 {
        app.handle(code(KeyCode::PageDown), NOW);
    }
    assert_eq!(app.history.sel, 59);
    app.handle(code(KeyCode::PageUp), NOW);
    assert_eq!(app.history.sel, 49);
}

#[test]
fn the_server_filter_never_cycles_through_a_blank_server() {
    let mut log = SyntheticLog::new(120);
    let mut app = connected(&[], &mut log);
    let out = app.handle(key('3'), NOW);
    answer(&mut app, out, &[], &mut log, NOW);
    // A policy reload's row has no server.
    let mut blank = row(121, 121);
    (blank.kind, blank.server) = ("policy_reload".into(), String::new());
    app.handle(event(latch_proto::Event::Call { row: blank }), NOW);
    let mut seen = Vec::new();
    for _ in 0..8 {
        let out = app.handle(key('e'), NOW);
        seen.push(app.history.server.clone());
        answer(&mut app, out, &[], &mut log, NOW);
    }
    assert!(seen.iter().all(|s| s.as_deref() != Some("")), "{seen:?}");
    assert!(seen.contains(&None), "cycles back to any: {seen:?}");
}

#[test]
fn search_and_filters_are_sent_to_the_daemon() {
    let mut log = SyntheticLog::new(10_000);
    let mut app = connected(&[], &mut log);
    let out = app.handle(key('3'), NOW);
    answer(&mut app, out, &[], &mut log, NOW);
    let filter_of = |out: &[ClientMsg]| match out.last() {
        Some(ClientMsg::Audit { filter, before: None, .. }) => filter.clone(),
        other => panic!("expected a fresh audit query, got {other:?}"),
    };
    let out = app.handle(key('v'), NOW);
    assert_eq!(filter_of(&out).decision.as_deref(), Some("allow"));
    let out = app.handle(key('c'), NOW);
    assert_eq!(filter_of(&out).class.as_deref(), Some("READ"));
    let out = app.handle(key('t'), NOW);
    assert_eq!(filter_of(&out).since, Some(NOW - 3_600_000));
    app.handle(key('/'), NOW);
    for c in "file99".chars() {
        assert!(app.handle(key(c), NOW).is_empty());
    }
    let out = app.handle(code(KeyCode::Enter), NOW);
    let f = filter_of(&out);
    assert_eq!(f.text.as_deref(), Some("file99"));
    answer(&mut app, out, &[], &mut log, NOW);
    assert!(app.history.rows.iter().all(|r| r.server == "fs" && r.args.to_string().contains("file99")));
    assert!(!app.history.rows.is_empty());
    let out = app.handle(key('x'), NOW);
    assert_eq!(filter_of(&out), Default::default());
}

#[test]
fn a_late_reply_to_an_older_query_is_ignored() {
    let mut log = SyntheticLog::new(1_000);
    let mut app = connected(&[], &mut log);
    let first = app.handle(key('3'), NOW);
    let second = app.handle(key('v'), NOW);
    answer(&mut app, second, &[], &mut log, NOW);
    answer(&mut app, first, &[], &mut log, NOW);
    assert!(app.history.rows.iter().all(|r| r.decision == "allow"));
}

#[test]
fn live_calls_get_their_outcome_when_they_finish() {
    let mut app = idle_app();
    app.handle(
        event(Event::Call {
            row: {
                let mut r = row(7, 7);
                r.outcome = None;
                r.latency_us = None;
                r
            },
        }),
        NOW,
    );
    app.handle(event(Event::Finished { audit_id: 7, outcome: "ok".into(), latency_us: 1234 }), NOW + 5);
    assert_eq!(app.live[0].outcome.as_deref(), Some("ok"));
    assert_eq!(app.live[0].latency_us, Some(1234));
}

#[test]
fn the_live_selection_stays_on_its_row_while_calls_arrive() {
    let mut app = idle_app();
    for id in 1..=3 {
        app.handle(event(Event::Call { row: row(id, 3) }), NOW);
    }
    assert_eq!(app.live_index(), 0, "following the newest");
    app.handle(key('j'), NOW);
    assert_eq!(app.live_sel, Some(2));
    app.handle(event(Event::Call { row: row(4, 4) }), NOW);
    assert_eq!(app.live_sel, Some(2));
    assert_eq!(app.live_index(), 2);
}

#[test]
fn the_clock_ticks_only_while_something_counts_down() {
    let mut app = idle_app();
    assert_eq!(app.next_wake(NOW), None, "idle: no timer at all");
    app.handle(event(Event::PendingAdded { item: pending("ap-1", "shell", "run_command", "EXECUTE", 10_500) }), NOW);
    assert_eq!(app.pending[0].hold_until, NOW + 10_500);
    // The displayed second changes at +500 ms (0:11 → 0:10); the toast-free
    // state asks for exactly that.
    assert_eq!(app.next_wake(NOW), Some(NOW + 500));
    app.handle(
        event(Event::PendingRemoved { id: "ap-1".into(), decision: "allow".into(), by: "bob (telegram)".into() }),
        NOW + 1,
    );
    let wake = app.next_wake(NOW + 1);
    assert_eq!(wake, Some(app.toast.as_ref().unwrap().until), "only the message's expiry remains");
    app.handle(Input::Tick, wake.unwrap());
    assert_eq!(app.next_wake(wake.unwrap()), None);
}

#[test]
fn q_quits_but_is_a_letter_in_the_search() {
    let mut app = idle_app();
    app.handle(key('3'), NOW);
    app.handle(key('/'), NOW);
    app.handle(key('q'), NOW);
    assert!(!app.should_quit());
    app.handle(code(KeyCode::Esc), NOW);
    app.handle(key('q'), NOW);
    assert!(app.should_quit());
}

#[test]
fn a_policy_reload_error_reaches_the_health_pane() {
    let mut app = idle_app();
    app.handle(event(Event::PolicyReloaded { error: Some("policy.toml:12:5: unknown class `RAED`".into()) }), NOW);
    assert_eq!(app.status.as_ref().unwrap().policy_error.as_deref(), Some("policy.toml:12:5: unknown class `RAED`"));
    app.handle(event(Event::ShimDisconnected { server: "github".into(), session: "s-gh".into() }), NOW);
    assert_eq!(app.status.as_ref().unwrap().shims.len(), 1);
}

#[test]
fn the_detail_of_an_approval_answers_it_unless_it_was_answered_elsewhere() {
    let items = [pending("ap-1", "shell", "run_command", "EXECUTE", 30_000)];
    let mut app = connected(&items, &mut SyntheticLog::new(0));
    app.handle(code(KeyCode::Enter), NOW);
    let out = app.handle(key('s'), NOW + 1);
    assert_eq!(answers(&out), [("ap-1".to_string(), true, Scope::SessionArgs)]);
    assert_eq!(app.mode, Mode::Normal);

    let mut app = connected(&items, &mut SyntheticLog::new(0));
    app.handle(code(KeyCode::Enter), NOW);
    app.handle(
        event(Event::PendingRemoved { id: "ap-1".into(), decision: "deny".into(), by: "cli:bob".into() }),
        NOW + 1,
    );
    assert!(matches!(app.mode, Mode::Detail { .. }), "the detail stays readable");
    assert!(app.handle(key('a'), NOW + 2).is_empty());
    assert!(app.toast.as_ref().unwrap().text.contains("no longer pending"));
}
