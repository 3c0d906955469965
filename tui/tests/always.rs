//! `A`: the "always" scope picker. Narrowest first, the whole tool last,
//! the exact rule shown; what is sent names the chosen scope by its id.

mod support;

use latch_core::policy::narrow::{self, WHOLE_TOOL};
use latch_proto::{ClientMsg, DaemonMsg, PendingItem, Scope};
use latch_tui::app::{App, Input, Mode};
use latch_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use serde_json::json;
use support::*;

fn npm_test() -> PendingItem {
    let mut p = pending("ap-9c1d", "dev-shell-with-a-long-name", "run_command", "EXECUTE", 40_000);
    p.args = json!({ "command": "npm run test -- --grep 'login flow'", "cwd": "/home/me/project" });
    p
}

fn picker(app: &App) -> &latch_tui::app::AlwaysPick {
    match &app.mode {
        Mode::Always(p) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_narrowest_scope_is_first_and_the_whole_tool_last() {
    let mut app = connected(&[npm_test()], &mut SyntheticLog::new(0));
    let out = app.handle(key('A'), NOW);
    assert!(matches!(out.as_slice(), [ClientMsg::Audit { .. }]), "only the log is asked: {out:?}");
    let p = picker(&app);
    assert_eq!(p.sel, 0);
    assert!(p.offers[0].label.starts_with("this exact command"), "{:#?}", p.offers);
    assert_eq!(p.offers.last().unwrap().id, WHOLE_TOOL);
    assert!(p.rule_text("alice", NOW).contains("from tui (alice) at "));
}

#[test]
fn choosing_a_prefix_sends_its_id_and_the_whole_tool_sends_a_plain_always() {
    let item = npm_test();
    let offers = narrow::offers(&item.server, &item.tool, &item.args);
    let mut app = connected(std::slice::from_ref(&item), &mut SyntheticLog::new(0));
    app.handle(key('A'), NOW);
    app.handle(key('j'), NOW + 1);
    let p = picker(&app);
    assert!(
        p.rule_text("alice", NOW).contains("command = [\"npm\", \"run\", \"test\"]"),
        "{}",
        p.rule_text("alice", NOW)
    );
    let out = app.handle(key('y'), NOW + 2);
    match out.as_slice() {
        [ClientMsg::AnswerNarrow { approval_id, offer, .. }] => {
            assert_eq!((approval_id.as_str(), offer.as_str()), ("ap-9c1d", offers[1].id.as_str()));
        }
        other => panic!("{other:?}"),
    }

    let mut app = connected(&[item], &mut SyntheticLog::new(0));
    app.handle(key('A'), NOW);
    for _ in 0..10 {
        app.handle(code(KeyCode::Down), NOW + 1);
    }
    assert_eq!(picker(&app).chosen().id, WHOLE_TOOL);
    let out = app.handle(code(KeyCode::Enter), NOW + 2);
    assert!(matches!(out.as_slice(), [ClientMsg::Answer { approve: true, scope: Scope::Always, .. }]), "{out:?}");
}

#[test]
fn the_picker_counts_what_each_scope_would_have_allowed_last_week() {
    let mut app = connected(&[npm_test()], &mut SyntheticLog::new(0));
    let out = app.handle(key('A'), NOW);
    let req = match out.as_slice() {
        [ClientMsg::Audit { req, filter, .. }] => {
            assert_eq!(filter.decision.as_deref(), Some("ask"));
            assert_eq!(filter.tool.as_deref(), Some("run_command"));
            *req
        }
        other => panic!("{other:?}"),
    };
    let rows: Vec<_> = ["npm run test", "npm run test; rm -rf ~", "npm run lint"]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut r = row(i as i64 + 1, 3);
            r.kind = "call".into();
            r.args = json!({ "command": c });
            r
        })
        .collect();
    app.handle(Input::Daemon(Box::new(DaemonMsg::AuditRows { req, rows })), NOW);
    let (asked, counts) = picker(&app).asked.clone().expect("counted");
    assert_eq!(asked, 3);
    // Exact, `npm run test`, `npm run`, cwd, whole tool.
    assert_eq!(counts, [Some(0), Some(1), Some(2), Some(0), Some(3)]);
}

#[test]
fn the_picker_at_80x24_and_200x50() {
    let mut app = connected(&[npm_test()], &mut SyntheticLog::new(0));
    app.handle(key('A'), NOW);
    app.handle(key('j'), NOW + 1);
    for (w, h) in [(80, 24), (200, 50)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| ui::draw(f, &app, NOW)).unwrap();
        insta::assert_snapshot!(format!("always_picker_{w}x{h}"), t.backend());
    }
}
