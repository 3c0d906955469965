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

/// Every reader of rows (`latch audit`, the console's history pages, the
/// search and filter paths, policy replay) goes through `query_rows`.
fn listed(home: &TempHome, filter: &latch_proto::AuditFilter, before: Option<i64>) -> Vec<latch_proto::AuditRow> {
    latch_daemon::audit::query_rows(&home.db(), filter, before, 50).expect("the listing goes on past a damaged row")
}

#[test]
fn fault_corrupted_cell_not_utf8_does_not_stop_the_listing() {
    let home = TempHome::new("list-not-utf8");
    three_calls(&home);
    tamper(&home, "UPDATE events SET tool = CAST(X'74ff6f6c' AS TEXT) WHERE id = 2");
    let all = listed(&home, &Default::default(), None);
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2, 1]);
    let damage = all[1].damaged.as_deref().expect("the row is marked damaged");
    assert!(damage.contains("tool"), "{damage}");
    assert_eq!(all[1].tool, "t\u{fffd}ol", "the bad byte shows as a replacement character");
    assert_eq!(all[1].args, serde_json::json!({"path": "/tmp/1"}), "its other cells are read");
    assert!(all[0].damaged.is_none() && all[2].damaged.is_none(), "{all:?}");
}

#[test]
fn fault_corrupted_cell_does_not_stop_the_search_filter_and_paging_paths() {
    use latch_proto::AuditFilter;
    let home = TempHome::new("search-not-utf8");
    three_calls(&home);
    tamper(&home, "UPDATE events SET args = CAST(X'7b22ff227d' AS TEXT), decision = X'00' WHERE id = 2");
    let ids = |rows: Vec<latch_proto::AuditRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    // The console's history: a page below a row, and the next one.
    assert_eq!(ids(listed(&home, &AuditFilter::default(), Some(3))), [2, 1]);
    // Search over tool, server and arguments.
    let text = AuditFilter { text: Some("fs".into()), ..Default::default() };
    assert_eq!(ids(listed(&home, &text, None)), [3, 2, 1]);
    let class = AuditFilter { class: Some("READ".into()), ..Default::default() };
    let rows = listed(&home, &class, None);
    assert_eq!(ids(rows.clone()), [3, 2, 1]);
    let damage = rows[1].damaged.as_deref().unwrap();
    assert!(damage.contains("args") && damage.contains("decision"), "{damage}");
    assert_eq!(rows[1].args, serde_json::Value::String("{\"\u{fffd}\"}".into()), "damaged arguments show as text");
}

#[test]
fn fault_corrupted_cell_of_another_type_does_not_stop_the_listing() {
    let home = TempHome::new("list-other-type");
    three_calls(&home);
    tamper(&home, "UPDATE events SET time_ms = 'soon', latency_us = 1.5, server = X'6673' WHERE id = 2");
    let all = listed(&home, &Default::default(), None);
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2, 1]);
    let damage = all[1].damaged.as_deref().unwrap();
    for column in ["time_ms", "latency_us", "server"] {
        assert!(damage.contains(column), "{damage}");
    }
    assert_eq!(all[1].server, "fs", "a blob is read as its bytes");
}

#[test]
fn fault_corrupted_cell_is_left_out_of_a_policy_replay() {
    let home = TempHome::new("replay-not-utf8");
    three_calls(&home);
    tamper(&home, "UPDATE events SET class = CAST(X'52ff' AS TEXT) WHERE id = 2");
    let calls = latch_daemon::audit::recorded::calls_since(&home.db(), 0, 100).unwrap();
    assert_eq!(calls.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 3]);
}
