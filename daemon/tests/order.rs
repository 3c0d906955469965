//! An insert is journaled at once and committed in order with everything
//! sent before it; a flush after it waits for that commit. The daemon relies
//! on this: the approvals' saved state is committed with the call row that
//! created the approval before anyone hears of it.

mod common;

use common::TempHome;
use latch_daemon::audit::{Audit, NewEvent, Verified, verify};

fn call(i: i64) -> NewEvent {
    NewEvent {
        time_ms: 1_000 + i,
        kind: "call",
        server: "fs".into(),
        tool: "read_file".into(),
        class: "READ".into(),
        decision: "allow".into(),
        args: "{}".into(),
        args_hash: format!("{i:064}"),
        ..Default::default()
    }
}

#[test]
fn what_was_sent_before_an_insert_is_committed_with_it_by_a_flush() {
    let home = TempHome::new("order");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let audit = rt.block_on(async {
        let audit = Audit::open(&home.db()).unwrap();
        for i in 0..300 {
            audit.set_state("approvals", format!("v{i}")).await;
            if i % 3 == 0 {
                // A row nobody waits for, also ahead of the insert.
                audit.record(NewEvent { kind: "shim_connect", ..call(i) }).await;
            }
            let id = audit.insert(call(i)).await.unwrap();
            audit.flush().await;
            audit.finish(id, "ok", 10).await;
            // Read by another connection, as after a crash.
            assert_eq!(audit.get_state("approvals").unwrap().as_deref(), Some(format!("v{i}").as_str()), "call {i}");
            if i % 50 == 0 {
                // Let the writer go idle again.
                tokio::time::sleep(std::time::Duration::from_millis(6)).await;
            }
        }
        audit.flush().await;
        audit
    });
    drop(audit);
    assert_eq!(verify(&home.db()).unwrap(), Verified::Intact { rows: 400, retained: None });
}

#[test]
fn inserts_from_many_threads_all_commit_in_one_chain() {
    let home = TempHome::new("threads");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let audit = Audit::open(&home.db()).unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let audit = audit.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100 {
                    let id = audit.insert(call(t * 1000 + i)).await.unwrap();
                    audit.finish(id, "ok", 1).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        audit.flush().await;
    });
    assert_eq!(verify(&home.db()).unwrap(), Verified::Intact { rows: 800, retained: None });
    // Outcomes that met their row in one commit were written with it.
    let conn = rusqlite::Connection::open(home.db()).unwrap();
    let done: i64 = conn
        .query_row("SELECT COUNT(*) FROM events WHERE outcome = 'ok' AND latency_us = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(done, 800);
}
