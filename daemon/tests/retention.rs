//! Retention removes exactly the old rows, leaves a chained checkpoint that
//! `verify` accepts, and never lets a log cut by hand pass as pruned.

mod common;

use common::TempHome;
use latch_core::policy::AuditSettings;
use latch_daemon::audit::retention::{self, BATCH, Checkpoint};
use latch_daemon::audit::{Audit, ExportFormat, NewEvent, Verified, export, verify};
use rusqlite::Connection;

const DAY: i64 = 86_400_000;
/// "Now" in these tests: day 100.
const NOW: i64 = 100 * DAY;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn call(time_ms: i64, i: usize) -> NewEvent {
    NewEvent {
        time_ms,
        kind: "call",
        server: "fs".into(),
        tool: format!("tool{i}"),
        class: "READ".into(),
        decision: "allow".into(),
        args: format!(r#"{{"n":{i}}}"#),
        ..Default::default()
    }
}

/// One row a day for `days` days, the last one yesterday; every row
/// completed, so each has a seal beyond its hash.
fn daily_rows(audit: &Audit, days: i64) {
    rt().block_on(async {
        for d in 0..days {
            let id = audit.insert(call(NOW - (days - d) * DAY, d as usize)).await.unwrap();
            audit.finish(id, "ok", 10).await;
        }
        audit.flush().await;
    });
}

fn ids(home: &TempHome) -> Vec<i64> {
    let conn = Connection::open(home.db()).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM events ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn checkpoint(home: &TempHome) -> Checkpoint {
    let conn = Connection::open(home.db()).unwrap();
    let mut all = retention::checkpoints(&conn).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.pop().unwrap()
}

fn keep_days(d: u64) -> AuditSettings {
    AuditSettings { keep_days: Some(d), max_rows: None }
}

fn max_rows(n: u64) -> AuditSettings {
    AuditSettings { keep_days: None, max_rows: Some(n) }
}

fn sql(home: &TempHome, q: &str) {
    Connection::open(home.db()).unwrap().execute_batch(q).unwrap();
}

#[test]
fn keep_days_removes_exactly_the_rows_older_than_that() {
    let home = TempHome::new("ret-age");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30); // ids 1..=30, from day 70 to day 99
    let pruned = rt().block_on(audit.prune(keep_days(10), NOW)).unwrap();
    // Older than day 90: days 70..=89, ids 1..=20. Day 90 itself stays.
    assert_eq!(pruned.deleted, 20);
    let plan = pruned.plan.clone().unwrap();
    assert_eq!((plan.rows, plan.first_row, plan.checkpoint.through_id), (20, 1, 20));
    assert_eq!(ids(&home), (21..=31).collect::<Vec<_>>(), "rows 21..30 and the checkpoint row 31");
    let c = checkpoint(&home);
    assert_eq!((c.id, c.from_id, c.through_id, c.removed), (31, 1, 20, 20));
    assert_eq!(c.reason, "keep_days = 10");
    assert_eq!(c.through_time_ms, NOW - 11 * DAY);
    assert!(!c.through_hash.is_empty() && !c.through_prev_hash.is_empty());
    // A second run at the same time finds nothing more.
    assert_eq!(rt().block_on(audit.prune(keep_days(10), NOW)).unwrap().deleted, 0);
    assert_eq!(ids(&home).len(), 11);
}

#[test]
fn max_rows_keeps_the_newest_rows_the_checkpoint_included() {
    let home = TempHome::new("ret-count");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 250);
    let pruned = rt().block_on(audit.prune(max_rows(100), NOW)).unwrap();
    assert_eq!(pruned.deleted, 151);
    assert_eq!(ids(&home), (152..=251).collect::<Vec<_>>());
    assert_eq!(checkpoint(&home).through_id, 151);
    // Stable: at the limit, nothing more goes.
    assert_eq!(rt().block_on(audit.prune(max_rows(100), NOW)).unwrap().deleted, 0);
}

#[test]
fn the_default_settings_remove_nothing() {
    let home = TempHome::new("ret-off");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 20);
    let pruned = rt().block_on(audit.prune(AuditSettings::default(), NOW + 1_000 * DAY)).unwrap();
    assert_eq!(pruned, retention::Pruned::default());
    assert_eq!(ids(&home).len(), 20);
}

#[test]
fn verify_passes_after_retention_and_names_the_checkpoint() {
    let home = TempHome::new("ret-verify");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30);
    rt().block_on(audit.prune(keep_days(10), NOW)).unwrap();
    // The log goes on after the checkpoint, and a second run chains on.
    daily_rows(&audit, 3);
    match verify(&home.db()).unwrap() {
        Verified::Intact { rows, retained: Some(r) } => {
            assert_eq!(rows, 14, "rows 21..30, the checkpoint, three more");
            assert_eq!(r.first_row, 21);
            let text = r.describe();
            assert!(text.starts_with("rows 1..20 (20 rows"), "{text}");
            assert!(text.contains("removed by retention on 1970-04-11"), "{text}");
            assert!(text.contains("chain verified from row 21"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let pruned = rt().block_on(audit.prune(max_rows(100), NOW)).unwrap();
    assert_eq!(pruned.deleted, 0, "14 rows are under the limit");
    let pruned = rt().block_on(audit.prune(keep_days(5), NOW)).unwrap();
    assert_eq!(pruned.plan.as_ref().unwrap().checkpoint.from_id, 1, "the second checkpoint continues the first");
    match verify(&home.db()).unwrap() {
        Verified::Intact { retained: Some(r), .. } => {
            assert_eq!(r.checkpoint.removed, 20 + pruned.deleted, "{r:?}");
            assert!(r.describe().starts_with("rows 1.."), "{}", r.describe());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_altered_checkpoint_fails_verify() {
    let home = TempHome::new("ret-forged");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30);
    rt().block_on(audit.prune(keep_days(10), NOW)).unwrap();
    drop(audit);
    // Claiming more rows went than did: the checkpoint's own hash fails.
    sql(&home, "UPDATE events SET detail = replace(detail, '\"removed\":20', '\"removed\":2') WHERE id = 31");
    match verify(&home.db()).unwrap() {
        Verified::Broken { row: 31, problem } => assert!(problem.contains("content was changed"), "{problem}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_checkpoint_pointed_elsewhere_fails_verify() {
    let home = TempHome::new("ret-pointed");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30);
    rt().block_on(audit.prune(keep_days(10), NOW)).unwrap();
    drop(audit);
    // Rows 21..24 cut by hand, and the checkpoint made to name row 24 as
    // the last removed: the row after it no longer chains.
    let c = checkpoint(&home);
    let conn = Connection::open(home.db()).unwrap();
    let h24: String = conn.query_row("SELECT hash FROM events WHERE id = 24", [], |r| r.get(0)).unwrap();
    let detail = serde_json::json!({
        "from_id": 1, "through_id": 24, "through_hash": h24, "through_prev_hash": "",
        "through_time_ms": c.through_time_ms, "removed": 24, "reason": c.reason,
    });
    conn.execute("UPDATE events SET detail = ?1 WHERE id = 31", [detail.to_string()]).unwrap();
    conn.execute("DELETE FROM events WHERE id <= 24", []).unwrap();
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Broken { row: 31, .. }));
}

#[test]
fn rows_cut_by_hand_fail_verify_and_stop_retention() {
    let home = TempHome::new("ret-cut");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30);
    sql(&home, "DELETE FROM events WHERE id <= 3");
    match verify(&home.db()).unwrap() {
        Verified::Broken { row: 4, problem } => assert!(problem.contains("no retention checkpoint"), "{problem}"),
        other => panic!("{other:?}"),
    }
    // Retention would hide the cut: it refuses, and removes nothing.
    let err = rt().block_on(audit.prune(keep_days(10), NOW)).unwrap_err().to_string();
    assert!(err.contains("without a retention checkpoint") && err.contains("latch audit verify"), "{err}");
    assert_eq!(ids(&home).len(), 27);
}

#[test]
fn rows_cut_by_hand_after_a_checkpoint_fail_verify() {
    let home = TempHome::new("ret-cut-after");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30);
    rt().block_on(audit.prune(keep_days(10), NOW)).unwrap();
    sql(&home, "DELETE FROM events WHERE id IN (21, 22)");
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Broken { row: 23, .. }));
    // Deleting the checkpoint itself (the newest row) leaves the cut bare.
    let home = TempHome::new("ret-no-checkpoint");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30);
    rt().block_on(audit.prune(keep_days(10), NOW)).unwrap();
    sql(&home, "DELETE FROM events WHERE kind = 'retention'");
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Broken { row: 21, .. }));
}

#[test]
fn an_interrupted_run_verifies_and_the_next_run_finishes_it() {
    let home = TempHome::new("ret-interrupted");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30);
    // The checkpoint is written, then the daemon dies after one batch.
    let plan = retention::plan(&home.db(), &keep_days(10), NOW).unwrap().unwrap();
    let detail = serde_json::to_value(&plan.checkpoint).unwrap();
    rt().block_on(async {
        let row = NewEvent { time_ms: NOW, kind: "retention", detail: Some(detail.to_string()), ..Default::default() };
        audit.insert(row).await.unwrap();
        // Journaled; committed before the file is read directly.
        audit.flush().await;
    });
    sql(&home, "DELETE FROM events WHERE id <= 7");
    match verify(&home.db()).unwrap() {
        Verified::Intact { retained: Some(r), .. } => {
            assert_eq!(r.first_row, 8);
            assert!(r.describe().contains("still under way: rows 8..20"), "{}", r.describe());
        }
        other => panic!("{other:?}"),
    }
    // A row the checkpoint names must be reached: cutting it is caught.
    let copy = TempHome::new("ret-interrupted-cut");
    std::fs::copy(home.db(), copy.db()).unwrap();
    let _ = std::fs::copy(format!("{}-wal", home.db().display()), format!("{}-wal", copy.db().display()));
    sql(&copy, "DELETE FROM events WHERE id = 20");
    assert!(matches!(verify(&copy.db()).unwrap(), Verified::Broken { .. }));
    // The next run removes the rest first, then finds nothing more to do.
    let pruned = rt().block_on(audit.prune(keep_days(10), NOW)).unwrap();
    assert_eq!((pruned.deleted, pruned.plan.is_none()), (13, true));
    assert_eq!(ids(&home).first(), Some(&21));
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Intact { retained: Some(_), .. }));
}

#[test]
fn export_after_retention_starts_with_the_checkpoint_rows_successors() {
    let home = TempHome::new("ret-export");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 30);
    rt().block_on(audit.prune(keep_days(10), NOW)).unwrap();
    let mut out = Vec::new();
    assert_eq!(export(&home.db(), None, None, ExportFormat::Jsonl, &mut out).unwrap(), 11);
    let rows: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows[0]["id"], 21);
    let last = &rows[10];
    assert_eq!(last["kind"], "retention");
    let detail: Checkpoint = serde_json::from_str(last["detail"].as_str().unwrap()).unwrap();
    assert_eq!((detail.from_id, detail.through_id, detail.removed), (1, 20, 20));
}

#[test]
fn a_call_finished_after_its_row_was_removed_loses_nothing() {
    let home = TempHome::new("ret-late-finish");
    let audit = Audit::open(&home.db()).unwrap();
    daily_rows(&audit, 150);
    rt().block_on(async {
        audit.prune(max_rows(100), NOW).await.unwrap();
        // Row 1 is gone; its outcome arrives with a new call in one commit.
        audit.finish(1, "ok", 5).await;
        let id = audit.insert(call(NOW, 999)).await.unwrap();
        assert_eq!(id, 152);
    });
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Intact { .. }));
}

#[test]
fn pruning_many_rows_runs_in_bounded_batches_while_calls_go_on() {
    let home = TempHome::new("ret-batches");
    let audit = Audit::open(&home.db()).unwrap();
    let rows = 5 * BATCH as i64 + 123;
    rt().block_on(async {
        for i in 0..rows {
            audit.record(call(i, i as usize)).await;
        }
        audit.flush().await;
    });
    let (pruned, inserted) = rt().block_on(async {
        let a = audit.clone();
        // A call arrives while the run is under way; it is not held up
        // behind the whole run (each batch is a commit of its own).
        let during = async move {
            tokio::task::yield_now().await;
            a.insert(call(rows, 0)).await.unwrap()
        };
        tokio::join!(audit.prune(max_rows(100), NOW), during)
    });
    let pruned = pruned.unwrap();
    // The call's row counts among the newest 99 if it came before the plan;
    // if it came after, it is kept on top of them.
    let late = pruned.deleted as i64 == rows - 99;
    assert!(late || pruned.deleted as i64 == rows - 98, "{pruned:?}");
    assert!(inserted > rows);
    assert_eq!(pruned.batches as u64, pruned.deleted / BATCH as u64 + 1, "{pruned:?}");
    let left = ids(&home).len() as u64;
    assert_eq!(left, 100 + u64::from(late), "the newest 99 rows, the checkpoint (and a late call)");
    assert!(matches!(verify(&home.db()).unwrap(), Verified::Intact { rows, retained: Some(_) } if rows == left));
}
