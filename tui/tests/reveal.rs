//! `r` in the detail of a pending approval: the unredacted arguments, asked
//! of the daemon by a console unlocked with the PIN, shown on this screen
//! only and dropped as soon as they are not.

mod support;

use latch_proto::{ClientMsg, DaemonMsg, Event, PendingItem};
use latch_tui::app::{App, Input, Mode};
use latch_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use serde_json::{Value, json};
use support::*;

const SECRET: &str = "ghp_R3v3alM3OnlyOnTh1sScr33n0000000000";

fn raw() -> Value {
    json!({ "path": "/home/me/project/deploy.sh", "token": SECRET, "dry_run": false })
}

fn item() -> PendingItem {
    pending("ap-1", "shell", "run_command", "EXECUTE", 50_000)
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| ui::draw(f, app, NOW)).unwrap();
    format!("{}", t.backend())
}

fn reveal_req(out: &[ClientMsg]) -> u64 {
    match out {
        [ClientMsg::Reveal { req, approval_id }] => {
            assert_eq!(approval_id, "ap-1");
            *req
        }
        other => panic!("expected one Reveal, got {other:?}"),
    }
}

fn revealed(req: u64, ok: bool, args: Option<Value>, message: &str) -> Input {
    Input::Daemon(Box::new(DaemonMsg::Revealed { req, ok, approval_id: "ap-1".into(), args, message: message.into() }))
}

/// An unlocked console with the detail of ap-1 open, its values revealed.
fn revealing() -> App {
    let mut app = connected(&[item()], &mut SyntheticLog::new(0));
    app.handle(code(KeyCode::Enter), NOW);
    let req = reveal_req(&app.handle(key('r'), NOW));
    app.handle(revealed(req, true, Some(raw()), "revealed"), NOW);
    assert_eq!(app.revealed_args("ap-1"), Some(&raw()));
    app
}

#[test]
fn r_asks_for_the_pin_then_shows_the_raw_arguments_and_r_masks_them_again() {
    let mut app = locked(&[item()], &mut SyntheticLog::new(0));
    app.handle(code(KeyCode::Enter), NOW);
    assert!(!screen(&app).contains(SECRET));
    assert!(screen(&app).contains("[REDACTED]"));
    // Locked: the PIN first, nothing sent while it is typed.
    assert!(app.handle(key('r'), NOW).is_empty());
    assert!(matches!(app.mode, Mode::Pin { .. }));
    for c in "2468".chars() {
        assert!(app.handle(key(c), NOW).is_empty());
    }
    let out = app.handle(code(KeyCode::Enter), NOW);
    let [ClientMsg::Unlock { req, .. }] = &out[..] else { panic!("{out:?}") };
    let done = DaemonMsg::Done { req: *req, ok: true, message: "unlocked".into() };
    // Unlocked: the detail opens again and the reveal goes out.
    let req = reveal_req(&app.handle(Input::Daemon(Box::new(done)), NOW));
    assert!(matches!(app.mode, Mode::Detail { .. }));
    app.handle(revealed(req, true, Some(raw()), "revealed"), NOW);
    let shown = screen(&app);
    assert!(shown.contains(SECRET), "{shown}");
    assert!(shown.contains("REVEALED"), "{shown}");
    assert!(!app.toast.as_ref().unwrap().text.contains(SECRET), "never in a footer message");
    assert!(!format!("{app:?}").contains(SECRET), "never in Debug output");
    // Again: masked, without asking the daemon.
    assert!(app.handle(key('r'), NOW + 1).is_empty());
    assert!(app.revealed.is_none());
    assert!(!screen(&app).contains(SECRET));
}

#[test]
fn revealed_values_go_when_the_detail_closes_the_approval_closes_or_the_daemon_goes() {
    let mut app = revealing();
    app.handle(code(KeyCode::Esc), NOW + 1);
    assert!(app.revealed.is_none(), "closing the detail");
    app.handle(code(KeyCode::Enter), NOW + 2);
    assert!(!screen(&app).contains(SECRET), "opening it again shows the redacted arguments");

    let mut app = revealing();
    app.handle(event(Event::PendingRemoved { id: "ap-1".into(), decision: "deny".into(), by: "cli:bob".into() }), NOW);
    assert!(matches!(app.mode, Mode::Detail { .. }), "the detail stays readable");
    assert!(app.revealed.is_none(), "the approval closed");
    assert!(!screen(&app).contains(SECRET));

    let mut app = revealing();
    app.handle(Input::Disconnected { error: "gone".into(), retry_at: NOW + 1000 }, NOW);
    assert!(app.revealed.is_none(), "the connection dropped");

    // Answering from the detail closes it too.
    let mut app = revealing();
    app.handle(key('d'), NOW + 1);
    assert!(app.revealed.is_none());
}

#[test]
fn a_refused_or_late_reveal_shows_nothing() {
    let mut app = connected(&[item()], &mut SyntheticLog::new(0));
    app.handle(code(KeyCode::Enter), NOW);
    let req = reveal_req(&app.handle(key('r'), NOW));
    app.handle(revealed(req, false, None, "this console is not unlocked"), NOW);
    assert!(app.revealed.is_none());
    assert!(app.toast.as_ref().unwrap().text.contains("not revealed"));

    // The reply arrives after the detail was closed: dropped.
    let req = reveal_req(&app.handle(key('r'), NOW));
    app.handle(code(KeyCode::Esc), NOW);
    app.handle(revealed(req, true, Some(raw()), "revealed"), NOW);
    assert!(app.revealed.is_none());
    assert!(!screen(&app).contains(SECRET));
}

#[test]
fn without_a_pin_nothing_is_asked_and_a_history_row_cannot_be_revealed() {
    let mut app = App::new("alice", 0);
    let mut st = status();
    st.pin_set = false;
    for m in app.handle(Input::Connected, NOW) {
        match m {
            ClientMsg::Status { req } => {
                app.handle(Input::Daemon(Box::new(DaemonMsg::Status { req, status: st.clone() })), NOW);
            }
            ClientMsg::ListPending { req } => {
                app.handle(Input::Daemon(Box::new(DaemonMsg::Pending { req, items: vec![item()] })), NOW);
            }
            _ => {}
        }
    }
    app.handle(key('1'), NOW);
    app.handle(code(KeyCode::Enter), NOW);
    assert!(app.handle(key('r'), NOW).is_empty());
    assert!(app.toast.as_ref().unwrap().text.contains("PIN"));

    let mut app = connected(&[], &mut SyntheticLog::new(0));
    app.handle(event(Event::Call { row: row(7, 7) }), NOW);
    app.handle(code(KeyCode::Enter), NOW);
    assert!(matches!(app.mode, Mode::Detail { .. }));
    assert!(app.handle(key('r'), NOW).is_empty());
}
