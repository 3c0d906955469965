//! The tool findings popup (`F`): the tools whose definition changed or is
//! suspect, the description's diff, and accepting the definition shown with
//! the PIN.

mod support;

use latch_proto::{ClientMsg, DaemonMsg, Event, ToolFinding};
use latch_tui::app::{App, Input, Mode};
use latch_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use support::*;

fn finding() -> ToolFinding {
    ToolFinding {
        server: "facts".into(),
        tool: "get_fact_of_the_day".into(),
        kinds: vec!["changed".into(), "injection".into()],
        since: NOW - 5_000,
        reasons: vec!["description changed (30 → 200 characters)".into()],
        diff: Some("--- pinned\n+++ now\n Returns a fun fact of the day.\n+<IMPORTANT>\x1b[2J\n+</IMPORTANT>".into()),
        hash: "abc123".into(),
    }
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
    t.draw(|f| ui::draw(f, app, NOW)).unwrap();
    format!("{}", t.backend())
}

fn findings_req(out: &[ClientMsg]) -> u64 {
    match out {
        [ClientMsg::ToolFindings { req }] => *req,
        other => panic!("expected one ToolFindings, got {other:?}"),
    }
}

fn reply(req: u64, items: Vec<ToolFinding>) -> Input {
    Input::Daemon(Box::new(DaemonMsg::ToolFindings { req, items, pin_set: true }))
}

#[test]
fn f_lists_the_findings_with_the_diff_and_a_accepts_the_definition_shown_after_the_pin() {
    let mut app = locked(&[], &mut SyntheticLog::new(0));
    let req = findings_req(&app.handle(key('F'), NOW));
    assert!(matches!(app.mode, Mode::Findings { .. }));
    app.handle(reply(req, vec![finding()]), NOW);
    let s = screen(&app);
    assert!(s.contains("facts / get_fact_of_the_day  [changed, injection]"), "{s}");
    assert!(s.contains("+<IMPORTANT><U+001B>[2J"), "escape shown, not sent: {s}");
    assert!(s.contains("1 tools changed or suspect"), "{s}");

    // `a`: the PIN first, then the definition shown, by its hash.
    assert!(app.handle(key('a'), NOW).is_empty());
    assert!(matches!(app.mode, Mode::Pin { .. }));
    for c in "1234".chars() {
        app.handle(key(c), NOW);
    }
    let unlock = match app.handle(code(KeyCode::Enter), NOW).as_slice() {
        [ClientMsg::Unlock { req, .. }] => *req,
        other => panic!("{other:?}"),
    };
    let out =
        app.handle(Input::Daemon(Box::new(DaemonMsg::Done { req: unlock, ok: true, message: "unlocked".into() })), NOW);
    let accept = match out.as_slice() {
        [ClientMsg::ToolAccept { req, server, tool, hash, pin: None }] => {
            assert_eq!((server.as_str(), tool.as_str(), hash.as_str()), ("facts", "get_fact_of_the_day", "abc123"));
            *req
        }
        other => panic!("{other:?}"),
    };
    let out =
        app.handle(Input::Daemon(Box::new(DaemonMsg::Done { req: accept, ok: true, message: "accepted".into() })), NOW);
    let req = findings_req(&out);
    app.handle(reply(req, vec![]), NOW);
    assert!(screen(&app).contains("No tool has findings"));
    // A change elsewhere asks for the list again.
    findings_req(&app.handle(event(Event::FindingsChanged), NOW));
    app.handle(code(KeyCode::Esc), NOW);
    assert_eq!(app.mode, Mode::Normal);
}
