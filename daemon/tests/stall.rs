//! The daemon never stalls: while one shim makes it do something big, a
//! third shim's allowed call is still answered at once. Each test runs an
//! in-process daemon on a current-thread runtime (as `latch daemon` does)
//! over a socket in a temporary home, with real protocol clients.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{decide, quiet, shim, start};
use latch_proto::{ClientMsg, DaemonMsg, Decision, frame};
use serde_json::json;

/// Every call of server "fast" is allowed.
const POLICY: &str = "[[rule]]\nserver = \"fast\"\ntool = \"*\"\neffect = \"allow\"\n";
/// How long a third shim's allowed call may take while the big work runs.
/// The goal is 50 ms in a release build; a debug build on a busy shared
/// machine gets room (before the fixes these waits were 20 s and more).
const LIMIT: Duration = Duration::from_millis(1000);

/// Decides allowed calls as shim "fast" until `done` resolves; returns the
/// slowest answer (the call in flight when `done` resolved included) and
/// how many there were.
async fn probe_until<F: std::future::Future>(paths: &latch_proto::paths::Paths, done: F) -> (Duration, u32, F::Output) {
    let (mut r, mut w) = shim(paths, "fast", "probe").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let probe = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        let mut n = 0u32;
        while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
            let (msg, took) = decide(&mut r, &mut w, 1_000 + n as u64, "ping", json!({})).await;
            match msg {
                DaemonMsg::Decision { decision: Decision::Allow, .. } => {}
                other => panic!("the probe's call was not allowed: {other:?}"),
            }
            worst = worst.max(took);
            n += 1;
        }
        (worst, n)
    });
    let out = done.await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (worst, n) = probe.await.unwrap();
    (worst, n, out)
}

/// A `tools/list` page of `n` tools.
fn tools(n: usize, tag: &str) -> String {
    let list: Vec<_> = (0..n)
        .map(|i| json!({"name": format!("tool_{i}"), "description": format!("tool {i} {tag}"), "inputSchema": {"type": "object"}}))
        .collect();
    serde_json::to_string(&list).unwrap()
}

/// The `ToolsListed` frame for `list`, encoded before any timing starts.
fn tools_listed(list: String) -> Vec<u8> {
    let raw = serde_json::value::RawValue::from_string(list).unwrap();
    frame::encode(&ClientMsg::ToolsListed { tools: raw, first_page: true })
}

#[test]
fn a_hundred_thousand_tools_and_their_relisting_do_not_stall_another_shim() {
    let d = start("stall-tools", Some(POLICY), quiet());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let first = tools_listed(tools(100_000, "a"));
        let second = tools_listed(tools(100_000, "b"));
        let (mut br, mut bw) = shim(&d.paths, "big", "big").await;
        // On a task of its own, so that nothing it does delays the probe.
        let big = tokio::spawn(async move {
            let t = Instant::now();
            // A list, then the same server listing again (`list_changed`),
            // then a question whose answer comes after both are handled.
            bw.send_raw(&first).await.unwrap();
            bw.send_raw(&second).await.unwrap();
            bw.send(&ClientMsg::Status { req: 7 }).await.unwrap();
            loop {
                if let DaemonMsg::Status { .. } = br.recv().await.unwrap() {
                    return t.elapsed();
                }
            }
        });
        let (worst, n, took) = probe_until(&d.paths, big).await;
        let took = took.unwrap();
        println!("100,000 tools listed twice in {took:?}; {n} probe calls meanwhile, the slowest {worst:?}");
        assert!(n > 0, "no probe call was answered while the lists were handled");
        assert!(worst < LIMIT, "a probe call waited {worst:?} behind the tool lists");
    });
}

#[test]
fn a_call_with_200_mib_of_arguments_does_not_stall_another_shim() {
    let d = start("stall-large", Some(POLICY), quiet());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (mut br, mut bw) = shim(&d.paths, "fast", "large").await;
        let text = "a".repeat(200 << 20);
        let line = {
            let mut l = serde_json::to_vec(&ClientMsg::Decide {
                req: 9,
                tool: "upload".into(),
                args: json!({"body": text}),
                retry: false,
            })
            .unwrap();
            l.push(b'\n');
            l
        };
        drop(text);
        let big = tokio::spawn(async move {
            let t = Instant::now();
            bw.send_raw(&line).await.unwrap();
            loop {
                if let DaemonMsg::Decision { req: 9, decision, .. } = br.recv().await.unwrap() {
                    return (t.elapsed(), decision);
                }
            }
        });
        let (worst, n, done) = probe_until(&d.paths, big).await;
        let (took, decision) = done.unwrap();
        println!("a 200 MiB call decided ({decision:?}) in {took:?}; {n} probe calls meanwhile, the slowest {worst:?}");
        assert!(n > 0, "no probe call was answered while the large call was decided");
        assert!(worst < LIMIT, "a probe call waited {worst:?} behind the large call");
    });
}

#[test]
fn a_large_call_under_a_policy_with_conditions_does_not_stall_another_shim() {
    // A condition makes the judge evaluate the call before it is decided;
    // the model is unreachable (port 9), so its rule asks.
    let policy = "[judge]\nprovider = \"openai\"\nurl = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\ntimeout_ms = 1000\n\n\
                  [[rule]]\nserver = \"fast\"\ntool = \"upload\"\ncondition = \"the upload is private\"\neffect = \"deny\"\n\n"
        .to_owned()
        + POLICY;
    let d = start("stall-judged", Some(&policy), quiet());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (mut br, mut bw) = shim(&d.paths, "fast", "large").await;
        let line = frame::encode(&ClientMsg::Decide {
            req: 9,
            tool: "upload".into(),
            args: json!({"body": "a".repeat(64 << 20)}),
            retry: false,
        });
        let big = tokio::spawn(async move {
            let t = Instant::now();
            bw.send_raw(&line).await.unwrap();
            loop {
                if let DaemonMsg::Decision { req: 9, decision, .. } = br.recv().await.unwrap() {
                    return (t.elapsed(), decision);
                }
            }
        });
        let (worst, n, done) = probe_until(&d.paths, big).await;
        let (took, decision) = done.unwrap();
        println!("a judged 64 MiB call decided ({decision:?}) in {took:?}; {n} probe calls, the slowest {worst:?}");
        assert_ne!(decision, Decision::Allow, "an unanswered condition never allows");
        assert!(n > 0 && worst < LIMIT, "a probe call waited {worst:?} behind the judged call");
    });
}
