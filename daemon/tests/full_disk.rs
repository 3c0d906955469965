//! With the audit log unable to grow (a full disk; here a file-size limit on
//! this process, which is what a small full filesystem looks like to
//! SQLite), every call is still answered: denied, saying the log cannot be
//! written. Once there is room again, calls are decided as before.
//!
//! Alone in its own test binary: the limit applies to the whole process.

mod common;

use common::daemon::{decide, quiet, shim, start};
use latch_proto::{DaemonMsg, Decision};
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

        // Room again: calls are decided (allowed) again.
        let mut allowed = false;
        for i in 0..50u64 {
            let (msg, _) = decide(&mut r, &mut w, 1_000 + i, "ping", json!({"again": i})).await;
            if matches!(msg, DaemonMsg::Decision { decision: Decision::Allow, .. }) {
                allowed = true;
                break;
            }
        }
        assert!(allowed, "calls stayed denied after the disk had room again");
    });
}
