//! Hook benchmark: a coding agent starts `latch hook AGENT` for every tool
//! call, so its whole cost is one process: start, read the payload, ask
//! the daemon (hello, tool definition and call in one write; the audit row
//! committed before the answer), answer, exit.
//!
//! `cargo bench --bench hook` prints, for an allowed Claude Code `Read`,
//! process start to answer (the child's exit) over N runs (p50, p99),
//! beside a no-op hook measured in the same run, in alternating turns: this
//! bench binary itself started with `--noop`, which reads the payload and
//! exits. Target: `latch hook` p50 ≤ 3 ms.
//!
//! `LATCH_BENCH_CALLS=N` changes the number of runs (default 500);
//! `LATCH_BENCH_LATCH=PATH` runs another build of `latch`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUILT: &str = env!("CARGO_BIN_EXE_latch");

fn run_once(cmd: &[&str], home: &Path, payload: &[u8]) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(cmd[0])
        .args(&cmd[1..])
        .env("LATCH_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hook");
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert!(status.success() && out.is_empty(), "not an allow: {status} {out}");
    took
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

struct Daemon(std::process::Child, std::path::PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we own; SIGTERM lets it close the database.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--noop") {
        let mut sink = Vec::new();
        std::io::stdin().read_to_end(&mut sink).unwrap();
        std::process::exit(0);
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let latch = std::env::var("LATCH_BENCH_LATCH").unwrap_or_else(|_| BUILT.to_owned());
    let latch = latch.as_str();
    let runs: usize = std::env::var("LATCH_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let home = std::env::temp_dir().join(format!("latch-hook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let daemon = Command::new(latch)
        .arg("daemon")
        .env("LATCH_HOME", &home)
        .stderr(Stdio::null())
        .spawn()
        .expect("start latch daemon");
    let daemon = Daemon(daemon, home.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Command::new(latch).arg("status").env("LATCH_HOME", &home).output().is_ok_and(|o| o.status.success()) {
        assert!(Instant::now() < deadline, "daemon did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let work = std::env::temp_dir();
    let payload = format!(
        r#"{{"session_id":"bench","cwd":"{}","hook_event_name":"PreToolUse","tool_name":"Read","tool_input":{{"file_path":"notes.txt"}},"tool_use_id":"toolu_bench"}}"#,
        work.display()
    );
    let me = std::env::current_exe().expect("own path");
    let me = me.to_str().expect("utf-8 path");
    let hook = [latch, "hook", "claude-code"];
    let noop = [me, "--noop"];
    for _ in 0..20 {
        run_once(&hook, &home, payload.as_bytes());
        run_once(&noop, &home, payload.as_bytes());
    }
    let (mut h, mut n) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        h.push(run_once(&hook, &home, payload.as_bytes()));
        n.push(run_once(&noop, &home, payload.as_bytes()));
    }
    let (h50, h99, n50, n99) = (pct(&mut h, 0.5), pct(&mut h, 0.99), pct(&mut n, 0.5), pct(&mut n, 0.99));
    println!("latch hook claude-code, allowed Read, process start to answer, {runs} runs each, alternating:");
    println!("  no-op hook   p50 {n50:6.2} ms   p99 {n99:6.2} ms");
    println!("  latch hook   p50 {h50:6.2} ms   p99 {h99:6.2} ms   (target p50 <= 3 ms)");
    println!("  latch's own  p50 {:6.2} ms   (difference of the p50s)", h50 - n50);
    drop(daemon);
}
