//! Snapshots with the data people really have, at 80×24 and 200×50: long
//! server names, long commands with their dangerous part at the end, many
//! rows, calls a person answered, and shims coming and going. Review with
//! `cargo insta review` (or `INSTA_UPDATE=always` and `git diff`).

mod support;

use latch_proto::{AuditFilter, AuditRow, Event, PendingItem};
use latch_tui::app::{App, Input};
use latch_tui::pages::PageSource;
use latch_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use support::*;

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 50)];

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::draw(f, app, NOW)).unwrap();
    format!("{}", t.backend())
}

fn snap(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render(app, w, h));
    }
}

const LONG_SERVER: &str = "github-enterprise-production-eu-west-1";
const DB_SERVER: &str = "postgres-admin-prod-primary";
const COMMAND: &str = "cd /srv/app && ./scripts/migrate.sh --env production --lock-timeout 30s && \
     psql -c 'VACUUM FULL ANALYZE' && rm -rf /var/lib/postgresql/14/main/pg_wal/*";

fn dangerous_command() -> PendingItem {
    let mut p = pending("ap-9k2m", DB_SERVER, "run_command", "EXECUTE", 25_000);
    p.args = json!({ "command": COMMAND, "cwd": "/srv/app", "timeout_ms": 600000 });
    p.reasons = vec![
        "tool name word 'run': EXECUTE".into(),
        "command runs rm -rf on /var/lib/postgresql/14/main/pg_wal/*: deletes files".into(),
        "no rule matched; default for EXECUTE: ask".into(),
    ];
    p
}

fn review_comment() -> PendingItem {
    let mut p = pending("ap-3h7q", LONG_SERVER, "create_pull_request_review_comment", "SUBMIT", 50_000);
    p.args = json!({ "owner": "acme", "repo": "payments", "pull_number": 4312, "body": "LGTM, merging." });
    p
}

/// A live row of a realistic session.
fn live_row(id: i64, newest: i64) -> AuditRow {
    let mut r = row(id, newest);
    match id % 4 {
        0 => {
            r.server = LONG_SERVER.into();
            r.tool = "create_pull_request_review_comment".into();
            r.class = "SUBMIT".into();
            (r.decision, r.answer) = ("ask".into(), Some("deny".into()));
            (r.outcome, r.latency_us, r.waited_ms) = (Some("blocked".into()), Some(0), Some(24_300));
            r.answered_by = Some("tui:alice".into());
        }
        1 => {
            r.server = DB_SERVER.into();
            r.tool = "run_command".into();
            r.class = "EXECUTE".into();
            (r.decision, r.answer) = ("ask".into(), Some("allow".into()));
            (r.outcome, r.latency_us, r.waited_ms) = (Some("ok".into()), Some(138), Some(2_100));
            r.answered_by = Some("telegram:bob".into());
        }
        _ => {}
    }
    r
}

fn with_pending(items: &[PendingItem]) -> App {
    let mut app = connected(items, &mut SyntheticLog::new(0));
    app.handle(Input::Tick, NOW);
    app
}

#[test]
fn pending_with_a_long_command_marks_what_is_below() {
    let app = with_pending(&[dangerous_command(), review_comment()]);
    snap("pending_long_command", &app);
    // At 80×24 the end of the command is off screen: the mark says so.
    assert!(render(&app, 80, 24).contains("more below"));
    // At 200×50 it all fits: no mark.
    assert!(!render(&app, 200, 50).contains("more below"));
}

#[test]
fn live_with_long_names_and_answered_calls() {
    let mut app = connected(&[], &mut SyntheticLog::new(0));
    let n = 80;
    for id in 1..=n {
        app.handle(event(Event::Call { row: live_row(id, n) }), NOW - 1_000);
    }
    app.handle(key('2'), NOW);
    app.handle(Input::Tick, NOW);
    snap("live_long_names", &app);
    let small = render(&app, 80, 24);
    // Cut names carry the mark; a person's answer is never `? ask`.
    assert!(small.contains('…'), "{small}");
    assert!(small.contains("✗ denied") && small.contains("✓ approved"), "{small}");
    // At 200 wide the tool column is as wide as its longest name, not more.
    let wide = render(&app, 200, 50);
    assert!(wide.contains("create_pull_request_review_comment SUBMIT"), "{wide}");
    assert!(wide.contains("denied") && wide.contains("alice in the console"), "{wide}");
}

/// A log where shims come and go between calls, as agents restart them.
struct Restarts;

impl PageSource for Restarts {
    fn page(&mut self, limit: u32, before: Option<i64>, _filter: &AuditFilter) -> Vec<AuditRow> {
        let top = before.map_or(300, |b| b - 1);
        (1..=top)
            .rev()
            .take(limit as usize)
            .map(|id| {
                let mut r = live_row(id, 300);
                if id % 6 < 4 {
                    r.kind = if id % 2 == 0 { "shim_connect" } else { "shim_disconnect" }.into();
                    (r.tool, r.class, r.decision, r.answer) = (String::new(), String::new(), String::new(), None);
                    (r.outcome, r.latency_us, r.waited_ms, r.answered_by) = (None, None, None, None);
                }
                r
            })
            .collect()
    }
}

#[test]
fn history_folds_shims_coming_and_going() {
    let mut log = SyntheticLog::new(0);
    let mut app = connected(&[], &mut log);
    let out = app.handle(key('3'), NOW);
    for reply in latch_tui::pages::serve(&mut Restarts, &out) {
        app.handle(Input::Daemon(Box::new(reply)), NOW);
    }
    app.handle(Input::Tick, NOW);
    snap("history_restarts", &app);
    let rows = &app.history.rows;
    // Runs of four fold into one row; only the runs the page's two ends cut
    // may be left with one.
    let single = rows.iter().filter(|r| r.kind == "shim_connect" || r.kind == "shim_disconnect").count();
    assert!(single <= 2, "{single} connection rows left unfolded");
    assert!(rows.iter().filter(|r| r.kind == "connections").count() >= 10);
}
