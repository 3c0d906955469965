//! With the audit log unable to grow (a full disk; here a file-size limit on
//! this process, which is what a small full filesystem looks like to
//! SQLite), every call is still answered: denied, saying the log cannot be
//! written. Once there is room again, calls are decided as before.
//!
//! Alone in its own test binary: the limit applies to the whole process.

mod common;

use common::daemon::{decide, quiet, shim, start};
use latch_proto::{ClientMsg, DaemonMsg, Decision};
use serde_json::json;

const POLICY: &str = "[[rule]]\nserver = \"*\"\ntool = \"*\"\neffect = \"allow\"\n";

fn set_file_limit(bytes: libc::rlim_t) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

#[test]
fn a_full_disk_denies_calls_with_a_message_and_they_are_decided_again_once_there_is_room() {
    // Past the limit a write fails (EFBIG) instead of killing the process.
    // SAFETY: ignoring a signal.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let d = start("full-disk", Some(POLICY), quiet());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (mut r, mut w) = shim(&d.paths, "srv", "s").await;
        // The shim lists its tool: it is given a lease (the plain allows
        // it may decide itself).
        let tools =
            serde_json::value::to_raw_value(&json!([{"name": "ping", "inputSchema": {"type": "object"}}])).unwrap();
        w.send(&ClientMsg::ToolsListed { tools, first_page: true }).await.unwrap();
        assert!(next_lease(&mut r).await.is_some(), "no lease at the start");
        let (msg, _) = decide(&mut r, &mut w, 1, "ping", json!({})).await;
        assert!(matches!(msg, DaemonMsg::Decision { decision: Decision::Allow, .. }), "{msg:?}");

        set_file_limit(1);
        let mut denied = None;
        for i in 0..500u64 {
            let args = json!({"i": i, "pad": "y".repeat(4000)});
            let answer =
                tokio::time::timeout(std::time::Duration::from_secs(10), decide(&mut r, &mut w, 10 + i, "ping", args))
                    .await;
            let (msg, _) = answer.unwrap_or_else(|_| panic!("call {i} got no answer with the disk full"));
            if let DaemonMsg::Decision { decision: Decision::Deny, reason, .. } = msg {
                denied = Some(reason);
                break;
            }
        }
        set_file_limit(libc::RLIM_INFINITY);
        let reason = denied.expect("no call was denied with the log unable to grow");
        println!("denied: {reason}");
        assert!(reason.contains("audit log could not record") && reason.contains("make room on the disk"), "{reason}");
        assert!(reason.contains(&d.paths.database.display().to_string()), "{reason}");

        // Room again: calls are decided (allowed) again. The lease ended
        // while the log refused rows, and comes back by itself once it
        // takes them again (no policy or tool change needed).
        let mut allowed = false;
        let mut lease = None;
        for i in 0..50u64 {
            let req = 1_000 + i;
            w.send(&ClientMsg::Decide { req, tool: "ping".into(), args: json!({"again": i}), retry: false })
                .await
                .unwrap();
            let msg = loop {
                match r.recv().await.unwrap() {
                    DaemonMsg::Lease(l) => lease = l,
                    m if latch_proto::client::reply_req(&m) == Some(req) => break m,
                    _ => {}
                }
            };
            if matches!(msg, DaemonMsg::Decision { decision: Decision::Allow, .. }) {
                allowed = true;
                break;
            }
        }
        assert!(allowed, "calls stayed denied after the disk had room again");
        let lease = match lease {
            Some(l) => l,
            None => tokio::time::timeout(std::time::Duration::from_secs(5), async {
                loop {
                    if let Some(l) = next_lease(&mut r).await {
                        break l;
                    }
                }
            })
            .await
            .expect("no lease came back once the log could be written again"),
        };
        assert!(lease.tools.iter().any(|t| t.name == "ping"), "{:?}", lease.tools);
    });
}

/// The next lease message: `Some` lease, or `None` for "no lease now".
async fn next_lease(r: &mut latch_proto::client::Reader) -> Option<Box<latch_proto::lease::Lease>> {
    loop {
        if let DaemonMsg::Lease(l) = r.recv().await.unwrap() {
            return l;
        }
    }
}
