//! The audit log's hash chain catches a row that was changed, removed or
//! inserted in the SQLite file behind the daemon's back.

mod common;

use common::TempHome;
use latch_daemon::audit::{Audit, Conclusion, NewEvent, Verified, verify};
use rusqlite::Connection;

/// A log of five calls, three of them completed, one answered.
fn five_calls(home: &TempHome) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let audit = Audit::open(&home.db()).unwrap();
        for i in 0..5 {
            let id = audit
                .insert(NewEvent {
                    time_ms: 1_000 + i,
                    kind: "call",
                    server: "fs".into(),
                    tool: format!("tool{i}"),
                    class: "READ".into(),
                    decision: "allow".into(),
                    reasons: vec![format!("reason {i}")],
                    args: format!(r#"{{"path":"/tmp/{i}"}}"#),
                    args_hash: format!("{i:064}"),
                    ..Default::default()
                })
                .await
                .unwrap();
            if i % 2 == 0 {
                audit.finish(id, "ok", 100 + i).await;
            }
            if i == 3 {
                audit
                    .concluded(Conclusion {
                        ids: vec![id],
                        approval_id: "abc123".into(),
                        answer: "deny",
                        answered_by: "cli:alice".into(),
                        at_ms: 9_000,
                        earlier: false,
                    })
                    .await;
            }
        }
        audit.flush().await;
    });
}

fn tamper(home: &TempHome, sql: &str) {
    Connection::open(home.db()).unwrap().execute_batch(sql).unwrap();
}

#[test]
fn an_untouched_log_verifies() {
    let home = TempHome::new("intact");
    five_calls(&home);
    assert_eq!(verify(&home.db()).unwrap(), Verified::Intact { rows: 5, retained: None });
}

#[test]
fn a_changed_row_is_named() {
    let home = TempHome::new("changed");
    five_calls(&home);
    tamper(&home, r#"UPDATE events SET args = '{"path":"/etc/shadow"}' WHERE id = 3"#);
    match verify(&home.db()).unwrap() {
        Verified::Broken { row: 3, problem } => assert!(problem.contains("content was changed"), "{problem}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_changed_outcome_is_named() {
    let home = TempHome::new("outcome");
    five_calls(&home);
    tamper(&home, "UPDATE events SET outcome = 'is_error' WHERE id = 1");
    match verify(&home.db()).unwrap() {
        Verified::Broken { row: 1, problem } => assert!(problem.contains("outcome"), "{problem}"),
        other => panic!("{other:?}"),
    }
    let home = TempHome::new("answer");
    five_calls(&home);
    tamper(&home, "UPDATE events SET answered_by = 'cli:mallory' WHERE id = 4");
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Broken { row: 4, .. }));
}

#[test]
fn a_changed_answer_or_its_time_is_named() {
    // A person denied call 4: turning the denial into an approval, moving
    // when it came, or wiping it, breaks its seal.
    for (name, sql) in [
        ("answer", "UPDATE events SET answer = 'allow' WHERE id = 4"),
        ("answered_ms", "UPDATE events SET answered_ms = 1 WHERE id = 4"),
        ("wiped", "UPDATE events SET answer = NULL, answered_ms = NULL WHERE id = 4"),
    ] {
        // A name of its own: tests run side by side in one process.
        let home = TempHome::new(&format!("sealed-{name}"));
        five_calls(&home);
        tamper(&home, sql);
        match verify(&home.db()).unwrap() {
            Verified::Broken { row: 4, problem } => assert!(problem.contains("answer"), "{name}: {problem}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_removed_row_is_named_by_the_row_after_it() {
    let home = TempHome::new("removed");
    five_calls(&home);
    tamper(&home, "DELETE FROM events WHERE id = 2");
    match verify(&home.db()).unwrap() {
        Verified::Broken { row: 3, problem } => assert!(problem.contains("removed or inserted"), "{problem}"),
        other => panic!("{other:?}"),
    }
    let home = TempHome::new("removed-first");
    five_calls(&home);
    tamper(&home, "DELETE FROM events WHERE id = 1");
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Broken { row: 2, .. }));
}

#[test]
fn an_inserted_row_is_named() {
    let home = TempHome::new("inserted");
    five_calls(&home);
    // A forged row copying a real row's hashes, slipped in at the end.
    tamper(
        &home,
        "INSERT INTO events (id, time_ms, kind, server, tool, class, decision, prev_hash, hash, seal) \
         SELECT 9, time_ms, kind, server, 'transfer', class, 'allow', prev_hash, hash, seal FROM events WHERE id = 5",
    );
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Broken { row: 9, .. }));
    let home = TempHome::new("inserted-bare");
    five_calls(&home);
    tamper(&home, "INSERT INTO events (id, time_ms, kind) VALUES (7, 1, 'call')");
    match verify(&home.db()).unwrap() {
        Verified::Broken { row: 7, problem } => assert!(problem.contains("no hash"), "{problem}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn export_streams_every_row_as_jsonl_and_csv() {
    use latch_daemon::audit::{ExportFormat, export};
    let home = TempHome::new("export");
    five_calls(&home);
    let mut jsonl = Vec::new();
    assert_eq!(export(&home.db(), None, None, ExportFormat::Jsonl, &mut jsonl).unwrap(), 5);
    let rows: Vec<serde_json::Value> =
        String::from_utf8(jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["tool"], "tool0");
    assert_eq!(rows[0]["args"]["path"], "/tmp/0", "args are JSON, not a string");
    assert_eq!(rows[3]["answered_by"], "cli:alice");
    assert_eq!(rows[2]["outcome"], "ok");
    let mut csv = Vec::new();
    export(&home.db(), Some(1_003), None, ExportFormat::Csv, &mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("id,time_ms,kind,server"), "{}", lines[0]);
    assert_eq!(lines.len(), 3, "header and the rows from time 1003 on: {text}");
    assert!(lines[1].contains(r#""{""path"":""/tmp/3""}""#), "JSON is quoted as one cell: {}", lines[1]);
}

#[test]
fn export_keeps_the_rows_between_since_and_until() {
    use latch_daemon::audit::{ExportFormat, export};
    let home = TempHome::new("export-until");
    five_calls(&home);
    let mut out = Vec::new();
    // Times are 1000..=1004: since is inclusive, until exclusive.
    assert_eq!(export(&home.db(), Some(1_001), Some(1_003), ExportFormat::Jsonl, &mut out).unwrap(), 2);
    let tools: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["tool"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tools, ["tool1", "tool2"]);
}
