//! Snapshots of every view at 80×24 (the smallest supported terminal) and
//! 120×40. Times are rendered from the injected `now` and the fixtures'
//! fixed times and ids, so the snapshots are stable; review changes with
//! `cargo insta review` (or `INSTA_UPDATE=always` and `git diff`).

mod support;

use latch_proto::Event;
use latch_tui::app::{App, Input};
use latch_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use support::*;

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 50)];

fn render(app: &App, w: u16, h: u16) -> TestBackend {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::draw(f, app, NOW)).unwrap();
    t.backend().clone()
}

fn snap(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render(app, w, h));
    }
}

fn with_pending() -> App {
    let mut app = connected(
        &[pending("ap-7f3a", "shell", "run_command", "EXECUTE", 8_000), transfer("ap-91c2")],
        &mut SyntheticLog::new(0),
    );
    app.handle(Input::Tick, NOW);
    app
}

fn with_live(n: i64) -> App {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    for id in 1..=n {
        let mut r = row(id, n);
        if id == n {
            (r.outcome, r.latency_us) = (None, None);
        }
        app.handle(event(Event::Call { row: r }), NOW - 1_000);
    }
    app.handle(Input::Tick, NOW);
    app
}

fn with_history(log_len: i64) -> App {
    let mut log = SyntheticLog::new(log_len);
    let mut app = connected(&[], &mut log);
    let out = app.handle(key('3'), NOW - 5_000);
    answer(&mut app, out, &[], &mut log, NOW - 5_000);
    app.handle(Input::Tick, NOW);
    app
}

#[test]
fn pending_view() {
    snap("pending", &with_pending());
}

#[test]
fn pending_view_when_nothing_waits() {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    app.handle(key('1'), NOW - 10_000);
    app.handle(Input::Tick, NOW);
    snap("pending_empty", &app);
}

#[test]
fn pending_view_after_the_hold_limit() {
    let mut app = with_pending();
    app.handle(key('j'), NOW - 5_000);
    app.handle(key('k'), NOW - 5_000);
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| ui::draw(f, &app, NOW + 60_000)).unwrap();
    insta::assert_snapshot!("pending_over_80x24", t.backend());
}

#[test]
fn confirmation_before_denying_always() {
    let mut app = with_pending();
    app.handle(key('D'), NOW);
    snap("confirm_always", &app);
}

#[test]
fn pending_detail() {
    let mut app = with_pending();
    app.handle(key('j'), NOW - 2_000);
    app.handle(code(KeyCode::Enter), NOW - 2_000);
    app.handle(Input::Tick, NOW);
    snap("detail_pending", &app);
}

#[test]
fn live_view() {
    let mut app = with_live(40);
    app.handle(key('j'), NOW - 2_000);
    app.handle(key('j'), NOW - 2_000);
    app.handle(Input::Tick, NOW);
    snap("live", &app);
}

#[test]
fn live_view_before_any_call() {
    snap("live_empty", &with_live(0));
}

#[test]
fn history_view_of_a_million_rows() {
    snap("history", &with_history(1_000_000));
}

#[test]
fn history_view_with_search_and_filters() {
    let mut log = SyntheticLog::new(1_000_000);
    let mut app = with_history(0);
    for k in ['v', 'e', 't', 't'] {
        let out = app.handle(key(k), NOW - 4_000);
        answer(&mut app, out, &[], &mut log, NOW - 4_000);
    }
    app.handle(key('/'), NOW - 3_000);
    for c in "file9999".chars() {
        app.handle(key(c), NOW - 3_000);
    }
    let out = app.handle(code(KeyCode::Enter), NOW - 3_000);
    answer(&mut app, out, &[], &mut log, NOW - 3_000);
    app.handle(Input::Tick, NOW);
    snap("history_filtered", &app);
}

#[test]
fn history_search_input() {
    let mut app = with_history(1_000_000);
    app.handle(key('/'), NOW - 3_000);
    for c in "refund".chars() {
        app.handle(key(c), NOW - 3_000);
    }
    snap("history_search_input", &app);
}

#[test]
fn history_view_of_an_empty_log() {
    snap("history_empty", &with_history(0));
}

#[test]
fn row_detail() {
    let mut app = with_history(1_000);
    app.handle(key('j'), NOW - 3_000);
    app.handle(code(KeyCode::Enter), NOW - 3_000);
    app.handle(Input::Tick, NOW);
    snap("detail_row", &app);
}

#[test]
fn health_view() {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    app.handle(key('4'), NOW - 5_000);
    app.handle(
        event(Event::PolicyReloaded { error: Some("policy.toml line 12, column 5: unknown class `RAED`".into()) }),
        NOW - 5_000,
    );
    app.handle(Input::Tick, NOW);
    snap("health", &app);
}

#[test]
fn daemon_down() {
    let mut app = with_live(5);
    app.handle(
        Input::Disconnected {
            error: "no daemon is running (socket /home/me/.local/share/latch/run/latch.sock) — start it with `latch daemon`".into(),
            retry_at: NOW + 2_000,
        },
        NOW,
    );
    snap("daemon_down", &app);
    app.handle(key('4'), NOW);
    snap("health_daemon_down", &app);
}

#[test]
fn help_overlay() {
    let mut app = with_pending();
    app.handle(key('?'), NOW);
    snap("help", &app);
}

#[test]
fn health_shows_security_findings() {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    app.handle(key('4'), NOW);
    app.status.as_mut().expect("a status").findings =
        vec!["server name \"bank\": tool \"ledger\" was described 2 different ways".into()];
    app.handle(Input::Tick, NOW);
    let backend = render(&app, 120, 40);
    let text: String = backend.buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("finding") && text.contains("tool \"ledger\" was described"), "{text}");
}

#[test]
fn health_shows_what_a_pending_change_would_have_done() {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    app.handle(key('4'), NOW - 5_000);
    let pending = latch_proto::PolicyPending {
        loosen: 1,
        diff: vec!["+ rule \"tests\": allow run_command (command npm run test …)".into()],
        replay: vec![
            "would allow 14 calls that were asked in the last 7 days (rule \"tests\")".into(),
            "2 of these calls replay approximately (arguments redacted in the log, or no tool definition)".into(),
        ],
    };
    app.handle(event(Event::PolicyPending { pending: Some(pending) }), NOW - 5_000);
    app.handle(Input::Tick, NOW);
    snap("health_policy_pending_replay", &app);
    let text: String = render(&app, 200, 50).buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("would allow 14 calls that were asked in the last 7 days"), "{text}");
}

#[test]
fn answer_keys_are_hidden_when_nothing_waits() {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    app.handle(key('1'), NOW - 10_000);
    app.handle(Input::Tick, NOW);
    let footer = |app: &App| {
        let b = render(app, 120, 24);
        let buf = b.buffer();
        (0..120).map(|x| buf[(x, 23)].symbol().to_owned()).collect::<String>()
    };
    let empty = footer(&app);
    assert!(!empty.contains("deny") && !empty.contains("approve"), "{empty}");
    let full = footer(&with_pending());
    assert!(full.contains("deny"), "{full}");
}

/// A row whose stored bytes were overwritten (the audit readers mark it
/// rather than stop) says so in the list and, in full, in its detail.
#[test]
fn a_damaged_row_says_so_in_the_list_and_the_detail() {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    let mut r = row(1, 1);
    r.tool = "t\u{fffd}ol".into();
    r.damaged = Some(Box::new("damaged: tool does not hold what the log writes there".into()));
    app.handle(event(Event::Call { row: r }), NOW - 1_000);
    app.handle(Input::Tick, NOW);
    let text = |app: &App| {
        let b = render(app, 200, 50);
        b.buffer().content().iter().map(|c| c.symbol()).collect::<String>()
    };
    assert!(text(&app).contains("DAMAGED"), "{}", text(&app));
    app.handle(code(KeyCode::Enter), NOW);
    assert!(text(&app).contains("tool does not hold what the log writes there"), "{}", text(&app));
}
