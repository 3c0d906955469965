//! Finds of the storage-fault script (tests/reliability/faults.py
//! `corrupted`): bytes overwritten inside a row can leave a text cell that
//! is not UTF-8, or a cell of another type, which SQLite's own check does
//! not see. `audit verify` must still name the row, and `audit export`
//! must still stream every row it can read.

mod common;

use common::TempHome;
use latch_daemon::audit::{Audit, ExportFormat, NewEvent, Verified, export, verify};
use rusqlite::Connection;

fn three_calls(home: &TempHome) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let audit = Audit::open(&home.db()).unwrap();
        for i in 0..3 {
            audit
                .insert(NewEvent {
                    time_ms: 1_000 + i,
                    kind: "call",
                    server: "fs".into(),
                    tool: format!("tool{i}"),
                    class: "READ".into(),
                    decision: "allow".into(),
                    args: format!(r#"{{"path":"/tmp/{i}"}}"#),
                    args_hash: format!("{i:064}"),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        audit.flush().await;
    });
}

fn tamper(home: &TempHome, sql: &str) {
    Connection::open(home.db()).unwrap().execute_batch(sql).unwrap();
}

#[test]
fn fault_corrupted_cell_not_utf8_is_named_by_verify() {
    let home = TempHome::new("not-utf8");
    three_calls(&home);
    // "t\xffol": what one overwritten byte inside the row's text leaves.
    tamper(&home, "UPDATE events SET tool = CAST(X'74ff6f6c' AS TEXT) WHERE id = 2");
    match verify(&home.db()).unwrap() {
        Verified::Broken { row: 2, problem } => assert!(problem.contains("changed"), "{problem}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fault_corrupted_cell_of_another_type_is_named_by_verify() {
    let home = TempHome::new("other-type");
    three_calls(&home);
    tamper(&home, "UPDATE events SET args = X'00ff' WHERE id = 3");
    match verify(&home.db()).unwrap() {
        Verified::Broken { row: 3, problem } => assert!(problem.contains("changed"), "{problem}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fault_corrupted_cell_not_utf8_does_not_stop_export() {
    let home = TempHome::new("export-not-utf8");
    three_calls(&home);
    tamper(&home, "UPDATE events SET args = CAST(X'7b22ff227d' AS TEXT) WHERE id = 2");
    for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
        let mut out = Vec::new();
        assert_eq!(export(&home.db(), None, None, format, &mut out).unwrap(), 3, "{format:?}");
        let text = String::from_utf8(out).expect("export writes UTF-8");
        assert!(text.contains("tool2"), "the rows after the damaged one come out: {text}");
        assert!(text.contains('\u{fffd}'), "the bad bytes show as replacement characters: {text}");
    }
}
