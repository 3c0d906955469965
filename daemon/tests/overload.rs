//! Overload: one client pipelines many calls and their outcomes without
//! waiting. The daemon slows it down (backpressure) instead of dropping
//! anything: every call gets its decision, and every row its outcome.

mod common;

use std::time::Instant;

use common::daemon::{quiet, shim, start};
use latch_proto::{ClientMsg, DaemonMsg, Decision, Outcome, frame};
use serde_json::json;

const POLICY: &str = "[[rule]]\nserver = \"*\"\ntool = \"*\"\neffect = \"allow\"\n";
/// Calls pipelined (the issue measured 100,000 against a release build;
/// a debug build decides about a thousand a second here).
const CALLS: u64 = 20_000;

#[test]
fn pipelined_calls_all_get_a_decision_and_every_row_its_outcome() {
    let d = start("overload", Some(POLICY), quiet());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (mut r, mut w) = shim(&d.paths, "srv", "s").await;
        let (finish_tx, mut finish_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let t = Instant::now();
        // One writer: every call first, outcomes as their decisions arrive.
        let writer = tokio::spawn(async move {
            let mut calls = Vec::new();
            for i in 0..CALLS {
                calls.extend(frame::encode(&ClientMsg::Decide {
                    req: i + 1,
                    tool: "ping".into(),
                    args: json!({"i": i}),
                    retry: false,
                }));
            }
            w.send_raw(&calls).await.unwrap();
            while let Some(call_id) = finish_rx.recv().await {
                let msg = ClientMsg::Finished { call_id, outcome: Outcome::Ok, latency_us: 1 };
                w.send(&msg).await.unwrap();
            }
            w.send(&ClientMsg::Audit { req: 0, limit: 1, before: None, filter: Default::default() }).await.unwrap();
        });
        let mut decided = 0u64;
        while decided < CALLS {
            match r.recv().await.unwrap() {
                DaemonMsg::Decision { decision: Decision::Allow, call_id, .. } => {
                    decided += 1;
                    finish_tx.send(call_id).unwrap();
                }
                other => panic!("after {decided} decisions: {other:?}"),
            }
        }
        drop(finish_tx);
        // The audit question flushes what was sent before it.
        loop {
            if let DaemonMsg::AuditRows { .. } = r.recv().await.unwrap() {
                break;
            }
        }
        writer.await.unwrap();
        println!("{CALLS} pipelined calls decided and finished in {:?}", t.elapsed());
    });
    let db = rusqlite::Connection::open(&d.paths.database).unwrap();
    let (calls, open): (i64, i64) = db
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE outcome IS NULL) FROM events WHERE kind = 'call'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((calls, open), (CALLS as i64, 0), "rows recorded, rows without their outcome");
}
