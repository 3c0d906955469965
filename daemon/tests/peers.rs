//! Peers that misbehave on their own connection do not hold up anyone
//! else: one that never reads its socket, one agent with many held calls.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{decide, quiet, shim, start};
use latch_daemon::Options;
use latch_proto::{ClientMsg, DaemonMsg, Decision, frame};
use serde_json::json;

/// Tool "hold" asks (and is held); everything else is allowed.
const POLICY: &str = "[[rule]]\nserver = \"*\"\ntool = \"hold\"\neffect = \"ask\"\n\n\
                      [[rule]]\nserver = \"*\"\ntool = \"*\"\neffect = \"allow\"\n";

#[test]
fn a_peer_that_never_reads_does_not_stall_the_hold_timers_of_others() {
    // Long enough for the deaf peer's queue to fill before its hold ends.
    let hold = Duration::from_millis(6000);
    let d = start("peer-deaf", Some(POLICY), Options { hold_ms: Some(hold.as_millis() as u64), ..quiet() });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // The deaf peer: one held call, then a flood of calls whose
        // answers it never reads, so its queue and socket fill up before
        // its hold ends.
        let (deaf_r, mut deaf_w) = shim(&d.paths, "mixed", "deaf").await;
        let held =
            frame::encode(&ClientMsg::Decide { req: 1, tool: "hold".into(), args: json!({"n": 0}), retry: false });
        deaf_w.send_raw(&held).await.unwrap();
        let mut flood = Vec::new();
        for i in 0..12_000u64 {
            let pad = "x".repeat(256);
            flood.extend(frame::encode(&ClientMsg::Decide {
                req: 10 + i,
                tool: "ping".into(),
                args: json!({"i": i, "pad": pad}),
                retry: false,
            }));
        }
        let flooding = tokio::spawn(async move {
            let _ = deaf_w.send_raw(&flood).await;
            // Kept open, never read.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(deaf_r);
        });

        // Another agent's held call: its hold must end on time.
        let (mut r, mut w) = shim(&d.paths, "mixed", "other").await;
        let t = Instant::now();
        let (first, _) = decide(&mut r, &mut w, 1, "hold", json!({"n": 1})).await;
        let DaemonMsg::Decision { decision: Decision::Ask, call_id, .. } = first else { panic!("{first:?}") };
        let resolved = tokio::time::timeout(hold + Duration::from_secs(5), async {
            loop {
                if let DaemonMsg::Resolved { call_id: c, decision, .. } = r.recv().await.unwrap()
                    && c == call_id
                {
                    return decision;
                }
            }
        })
        .await;
        let took = t.elapsed();
        println!("the other agent's hold of {hold:?} ended after {took:?}");
        assert_eq!(resolved.expect("the other agent's hold never ended"), Decision::Ask);

        // And a third shim is answered at once.
        let (mut pr, mut pw) = shim(&d.paths, "fast", "probe").await;
        let (msg, took) = decide(&mut pr, &mut pw, 5, "ping", json!({})).await;
        assert!(matches!(msg, DaemonMsg::Decision { decision: Decision::Allow, .. }), "{msg:?}");
        println!("a third shim's allowed call took {took:?}");
        flooding.abort();
    });
}

#[test]
fn one_agent_with_a_thousand_held_calls_does_not_deny_another_agents_asks() {
    let d = start("peer-greedy", Some(POLICY), Options { hold_ms: Some(50), ..quiet() });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (mut r, mut w) = shim(&d.paths, "mixed", "greedy").await;
        let mut lines = Vec::new();
        for i in 0..1_001u64 {
            lines.extend(frame::encode(&ClientMsg::Decide {
                req: 100 + i,
                tool: "hold".into(),
                args: json!({"n": i}),
                retry: false,
            }));
        }
        w.send_raw(&lines).await.unwrap();
        let (mut asked, mut refused) = (0, Vec::new());
        while asked + refused.len() < 1_001 {
            match r.recv().await.unwrap() {
                DaemonMsg::Decision { decision: Decision::Ask, .. } => asked += 1,
                DaemonMsg::Decision { decision: Decision::Deny, reason, .. } => refused.push(reason),
                DaemonMsg::Decision { decision, reason, .. } => panic!("{decision:?}: {reason}"),
                _ => {}
            }
        }
        println!("one agent: {asked} calls wait for a person, {} refused", refused.len());
        assert!(asked <= 200 && !refused.is_empty(), "{asked} asked");
        assert!(
            refused.iter().all(|r| r.contains("wait for a person already") && r.contains("in Latch")),
            "{refused:?}"
        );
        assert!(refused.iter().all(|r| !r.contains("latch approve")), "a deny must not name a command to run");

        // Another agent still gets its question to a person.
        let (mut r2, mut w2) = shim(&d.paths, "mixed", "other").await;
        let (msg, _) = decide(&mut r2, &mut w2, 1, "hold", json!({"n": "other"})).await;
        assert!(matches!(msg, DaemonMsg::Decision { decision: Decision::Ask, .. }), "{msg:?}");
    });
}
