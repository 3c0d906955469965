//! The journal in front of the audit log: a row is recorded once it is
//! journaled, and a daemon killed before its writer committed loses none of
//! them. "Killed" here is a copy of the files at that moment (what the page
//! cache holds when a process dies), taken while the writer is held back.
//!
//! Alone in its own test binary: holding the writer back applies to the
//! whole process.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::TempHome;
use latch_daemon::audit::{Audit, NewEvent, Verified, hold_commits_for_tests, journal_path, verify};
use rusqlite::Connection;

fn call(i: i64) -> NewEvent {
    NewEvent {
        time_ms: 1_000 + i,
        kind: "call",
        server: "fs".into(),
        tool: "read_file".into(),
        class: "READ".into(),
        decision: "allow".into(),
        reasons: vec![format!("reason {i}")],
        args: format!("{{\"n\":{i}}}"),
        args_hash: format!("{i:064}"),
        ..Default::default()
    }
}

/// The files of `from`'s log as they are now, in a new home.
fn killed_copy(from: &TempHome, name: &str) -> TempHome {
    let to = TempHome::new(name);
    std::fs::set_permissions(&to.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = from.db().display().to_string();
    let to_db = to.db().display().to_string();
    for suffix in ["", "-wal", ".journal"] {
        let src = format!("{db}{suffix}");
        if std::path::Path::new(&src).exists() {
            std::fs::copy(&src, format!("{to_db}{suffix}")).unwrap();
        }
    }
    to
}

fn rows(home: &TempHome) -> Vec<(i64, String, String)> {
    let conn = Connection::open(home.db()).unwrap();
    let mut stmt = conn.prepare("SELECT id, kind, args FROM events ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

#[test]
fn rows_only_in_the_journal_are_committed_by_the_next_daemon_and_a_torn_end_is_noted() {
    let home = TempHome::new("journal");
    std::fs::set_permissions(&home.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let audit = Audit::open(&home.db()).unwrap();
    // Ten rows committed as usual.
    rt.block_on(async {
        for i in 0..10 {
            audit.insert(call(i)).await.unwrap();
        }
        audit.flush().await;
    });
    // Then the writer stops committing; five more are recorded (the daemon
    // would have answered their calls) and the process dies.
    hold_commits_for_tests(600_000);
    let ids: Vec<i64> = rt.block_on(async {
        let mut ids = Vec::new();
        for i in 10..15 {
            ids.push(audit.insert(call(i)).await.unwrap());
        }
        ids
    });
    assert_eq!(ids, vec![11, 12, 13, 14, 15]);
    let killed = killed_copy(&home, "journal-killed");
    let torn = killed_copy(&home, "journal-torn");
    hold_commits_for_tests(0);
    assert_eq!(rows(&killed).len(), 10, "the five rows are in the journal only");

    // The next daemon commits them before anything else, chained.
    let next = Audit::open(&killed.db()).unwrap();
    let after = rows(&killed);
    assert_eq!(after.len(), 15);
    assert_eq!(after[14], (15, "call".to_owned(), "{\"n\":14}".to_owned()));
    assert_eq!(verify(&killed.db()).unwrap(), Verified::Intact { rows: 15, retained: None });
    // The journal is empty again, and new rows follow on.
    assert_eq!(std::fs::metadata(journal_path(&killed.db())).unwrap().len(), 0);
    rt.block_on(async {
        assert_eq!(next.insert(call(99)).await.unwrap(), 16);
        next.flush().await;
    });
    drop(next);
    assert_eq!(verify(&killed.db()).unwrap(), Verified::Intact { rows: 16, retained: None });

    // A torn last line (the machine stopped mid-write) is skipped with a
    // note; the whole lines before it are committed (the journal still
    // holds the ten committed rows too, skipped: the torn line is its 16th).
    let journal = journal_path(&torn.db());
    let mut text = std::fs::read(&journal).unwrap();
    text.extend_from_slice(b"{\"id\":16,\"time_ms\":5,\"kind\":\"call\",\"server\":\"fs\",\"ar");
    std::fs::write(&journal, text).unwrap();
    drop(Audit::open(&torn.db()).unwrap());
    let after = rows(&torn);
    assert_eq!(after.len(), 16, "{after:?}");
    assert_eq!(after[14].0, 15);
    assert_eq!(after[15].1, "journal");
    let conn = Connection::open(torn.db()).unwrap();
    let note: String = conn.query_row("SELECT detail FROM events WHERE id = 16", [], |r| r.get(0)).unwrap();
    assert!(note.contains("unreadable record") && note.contains("line 16"), "{note}");
    assert_eq!(verify(&torn.db()).unwrap(), Verified::Intact { rows: 16, retained: None });
    drop(audit);
}
