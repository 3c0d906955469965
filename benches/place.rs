//! Decisions in the server's place: a call whose arguments name paths is
//! decided with the file system's answers (self-protection, the workspace,
//! the sensitive places and `under` rules each read its paths).
//!
//! `cargo bench --bench place` prints, per decision of a `write_file` of
//! one path seven folders deep under the built-in policy, the time with a
//! per-decision memo of the resolver's answers (as the daemon decides)
//! beside the plain resolver, which walks the path again for each reader,
//! in alternating rounds of the same run. `LATCH_BENCH_CALLS=N` sets the
//! decisions per round (default 2,000).

use std::time::Instant;

use latch_core::classify::Call;
use latch_core::policy::{DEFAULT_POLICY, Facts, Place, Policy};
use latch_daemon::identity;
use serde_json::json;

fn main() {
    let n: usize = std::env::var("LATCH_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let dir = std::env::temp_dir().join(format!("latch-bench-place-{}", std::process::id()));
    let deep = dir.join("proj/src/a/b/c");
    std::fs::create_dir_all(&deep).expect("bench folder");
    let paths = latch_proto::paths::Paths::resolve(Some(dir.join("latch")), Some(dir.clone())).expect("paths");
    let mut policy = Policy::parse(DEFAULT_POLICY).expect("built-in policy");
    policy.set_protected(identity::protected(&paths));
    let env = identity::server_env(Some(std::process::id()));
    let args = json!({"path": deep.join("main.rs"), "content": "fn main() {}\n"});
    let call = Call { server: "fs", tool: "write_file", args: &args };
    let per_call = |memo: bool| {
        let t = Instant::now();
        for _ in 0..n {
            let m = identity::Memo::default();
            let place = if memo { identity::place(&env, &m) } else { Place::new(&env, Some(&identity::FS)) };
            std::hint::black_box(latch_core::decide_with(&policy, &call, None, &[], place, Facts::default()));
        }
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    per_call(true);
    let (mut with_memo, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        with_memo.push(per_call(true));
        plain.push(per_call(false));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m, p) = (median(&mut with_memo), median(&mut plain));
    println!("write_file of one path, built-in policy, {n} decisions x 5 rounds (median):");
    println!("  memo per decision   {m:8.1} µs");
    println!("  each reader walks   {p:8.1} µs   (memo: {:.2}x)", m / p);
    crafted(&policy, &env, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The worst a call can ask of the resolver: 300 distinct paths, each
/// through a link whose target walks 250 steps (`x/..` pairs). Every
/// reader's budget is spent; the decision asks.
fn crafted(policy: &Policy, env: &latch_core::path::PathEnv, dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("x")).expect("x");
    let long: Vec<&str> = std::iter::repeat_n(["x", ".."], 125).flatten().collect();
    std::os::unix::fs::symlink(format!("{}/f", long.join("/")), dir.join("l")).expect("link");
    let paths: Vec<String> = (0..300).map(|i| format!("{}/l/p{i}", dir.display())).collect();
    let args = json!({ "paths": paths, "content": "x" });
    let call = Call { server: "fs", tool: "write_file", args: &args };
    let mut took = Vec::new();
    let mut decision = None;
    for _ in 0..7 {
        let memo = identity::Memo::default();
        let t = Instant::now();
        let v = latch_core::decide_with(policy, &call, None, &[], identity::place(env, &memo), Facts::default());
        took.push(t.elapsed().as_secs_f64() * 1e3);
        decision = Some(v.evaluation.decision);
    }
    took.sort_by(f64::total_cmp);
    println!(
        "crafted call, 300 paths through a 250-step link: {:.1} ms median, {:.1} ms worst of 7 ({:?})",
        took[3],
        took[6],
        decision.expect("decided")
    );
}
