//! `R`: the rules view. The daemon lists the rules and deletes one; the
//! console shows who added each and asks before deleting.

mod support;

use latch_proto::{ClientMsg, DaemonMsg, RuleInfo};
use latch_tui::app::{App, Input, Mode};
use latch_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::*;

fn rules() -> Vec<RuleInfo> {
    vec![
        RuleInfo {
            number: 1,
            line: 183,
            name: Some("no-force-push".into()),
            effect: "deny".into(),
            summary: "tool run_command, args.command regex \"git\\\\s+push\\\\s+.*(--force|-f)\\\\b\"".into(),
            added: "by hand".into(),
            text: "[[rule]]\nname = \"no-force-push\"\ntool = \"run_command\"\nargs = [{ path = \"command\", regex = 'git\\s+push\\s+.*(--force|-f)\\b' }]\neffect = \"deny\"".into(),
        },
        RuleInfo {
            number: 2,
            line: 212,
            name: None,
            effect: "allow".into(),
            summary: "server dev-shell-with-a-long-name, tool run_command, args.command command starts \"npm run test\"".into(),
            added: "tui (alice) at 2026-11-24 15:30 UTC, approval ap-9c1d".into(),
            text: "# from tui (alice) at 2026-11-24 15:30 UTC, approval ap-9c1d \"always\"\n[[rule]]\nserver = \"dev-shell-with-a-long-name\"\ntool = \"run_command\"\nargs = [\n  { path = \"command\", command = [\"npm\", \"run\", \"test\"] },\n]\neffect = \"allow\"".into(),
        },
    ]
}

fn opened() -> App {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    let out = app.handle(key('R'), NOW);
    let req = match out.as_slice() {
        [ClientMsg::ListRules { req }] => *req,
        other => panic!("{other:?}"),
    };
    app.handle(Input::Daemon(Box::new(DaemonMsg::Rules { req, rules: rules(), error: None })), NOW);
    app
}

#[test]
fn delete_asks_first_and_names_the_rule_by_number_and_line() {
    let mut app = opened();
    app.handle(key('j'), NOW);
    assert!(app.handle(key('d'), NOW).is_empty());
    assert!(matches!(&app.mode, Mode::Rules(v) if v.confirm));
    let out = app.handle(key('y'), NOW);
    assert!(matches!(out.as_slice(), [ClientMsg::DeleteRule { number: 2, line: 212, .. }]), "{out:?}");

    // Anything but `y` deletes nothing.
    let mut app = opened();
    app.handle(key('d'), NOW);
    assert!(app.handle(key('n'), NOW).is_empty());
    assert!(matches!(&app.mode, Mode::Rules(v) if !v.confirm));
    app.handle(key('q'), NOW);
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn the_rules_view_at_80x24_and_200x50() {
    let mut app = opened();
    app.handle(key('j'), NOW);
    for (w, h) in [(80, 24), (200, 50)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| ui::draw(f, &app, NOW)).unwrap();
        insta::assert_snapshot!(format!("rules_view_{w}x{h}"), t.backend());
    }
}
