//! Throughput benchmark: 50 concurrent shims through one daemon.
//!
//! `cargo bench --bench throughput` starts one `latch daemon` and 50
//! `latch shim`s, each in front of its own test server, and sends every shim
//! a stream of allowed `tools/call`s (pipelined: a client writes them all,
//! and reads the answers as they come). It prints the decided calls per
//! second, checks that every call was answered as allowed and that the audit
//! log holds one row per call with its outcome, and prints the daemon's RSS
//! (peak and at the end). Target: ≥ 20,000 decided calls/s.
//!
//! `LATCH_BENCH_SHIMS=N` (default 50) and `LATCH_BENCH_CALLS=N` (per shim,
//! default 1,000) change the load; `LATCH_BENCH_LATCH=PATH` runs another
//! build of `latch`; `LATCH_BENCH_SETTLE_MS=N` waits N ms between starting
//! the shims and the calls.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BUILT: &str = env!("CARGO_BIN_EXE_latch");
const SERVER: &str = env!("CARGO_BIN_EXE_latch-test-server");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of a process so far, in µs.
fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the
    // 14th field of the line, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    // SAFETY: a plain query of a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000 / hz
}

struct Shim {
    child: Child,
}

impl Shim {
    /// Starts a shim and completes the MCP handshake.
    fn start(
        latch: &str,
        home: &Path,
        n: usize,
    ) -> (Shim, std::process::ChildStdin, BufReader<std::process::ChildStdout>) {
        let mut child = Command::new(latch)
            .args(["shim", "--name", &format!("t{n}"), "--", SERVER])
            .env("LATCH_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn shim");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::with_capacity(1 << 16, child.stdout.take().unwrap());
        stdin
            .write_all(
                b"{\"jsonrpc\":\"2.0\",\"id\":\"init\",\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\
                  \"capabilities\":{},\"clientInfo\":{\"name\":\"latch-bench\",\"version\":\"1\"}}}\n\
                  {\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n\
                  {\"jsonrpc\":\"2.0\",\"id\":\"tools\",\"method\":\"tools/list\"}\n",
            )
            .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("\"init\""), "no answer to initialize: {line}");
        // Clients list the tools before calling them (the daemon pins them,
        // and leases them to the shim: issue 16).
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("\"tools\""), "no answer to tools/list: {line}");
        (Shim { child }, stdin, stdout)
    }
}

fn main() {
    let latch = std::env::var("LATCH_BENCH_LATCH").unwrap_or_else(|_| BUILT.to_owned());
    let shims = env_usize("LATCH_BENCH_SHIMS", 50);
    let calls = env_usize("LATCH_BENCH_CALLS", 1000);
    let home = std::env::temp_dir().join(format!("latch-bench-tp-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let mut daemon =
        Command::new(&latch).arg("daemon").env("LATCH_HOME", &home).stderr(Stdio::null()).spawn().expect("daemon");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Command::new(&latch).arg("status").env("LATCH_HOME", &home).output().is_ok_and(|o| o.status.success()) {
        assert!(Instant::now() < deadline, "daemon did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss_idle = rss_kb(daemon.id(), "VmRSS:");

    let mut started = Vec::new();
    for n in 0..shims {
        started.push(Shim::start(&latch, &home, n));
    }
    // `LATCH_BENCH_SETTLE_MS`: a pause before the calls (the daemon pins
    // every shim's tools and hands out leases meanwhile); default none.
    std::thread::sleep(Duration::from_millis(env_usize("LATCH_BENCH_SETTLE_MS", 0) as u64));
    let shim_pids: Vec<u32> = started.iter().map(|(s, _, _)| s.child.id()).collect();
    let cpu_before = (cpu_us(daemon.id()), shim_pids.iter().map(|&p| cpu_us(p)).sum::<u64>());
    let t = Instant::now();
    let mut threads = Vec::new();
    let mut children = Vec::new();
    for (shim, mut stdin, mut stdout) in started {
        children.push(shim);
        let writer = std::thread::spawn(move || {
            let mut buf = Vec::with_capacity(calls * 100);
            for i in 0..calls {
                writeln!(
                    buf,
                    r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"call {i}"}}}}}}"#
                )
                .unwrap();
            }
            stdin.write_all(&buf).unwrap();
            stdin.flush().unwrap();
            stdin
        });
        threads.push(std::thread::spawn(move || {
            let (mut line, mut refused) = (String::new(), 0usize);
            for _ in 0..calls {
                line.clear();
                assert!(stdout.read_line(&mut line).unwrap() > 0, "shim closed its stdout");
                if line.contains(r#""isError":true"#) || line.contains(r#""error""#) {
                    refused += 1;
                }
            }
            (writer.join().unwrap(), refused)
        }));
    }
    let mut refused = 0;
    let mut stdins = Vec::new();
    for th in threads {
        let (stdin, r) = th.join().unwrap();
        refused += r;
        stdins.push(stdin);
    }
    let elapsed = t.elapsed().as_secs_f64();
    let total = shims * calls;
    let cpu_after = (cpu_us(daemon.id()), shim_pids.iter().map(|&p| cpu_us(p)).sum::<u64>());
    let rss_peak = rss_kb(daemon.id(), "VmHWM:");
    let rss_end = rss_kb(daemon.id(), "VmRSS:");

    // Every call has its row, with its outcome: the shims report outcomes
    // shortly after the results.
    drop(stdins);
    for mut shim in children {
        let _ = shim.child.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let (rows, with_outcome) = loop {
        let counts = audit_counts(&latch, &home);
        if counts.1 >= total || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    let ok = |b: bool| if b { "ok" } else { "MISSED" };
    let rate = total as f64 / elapsed;
    println!("latch throughput benchmark: {shims} shims through one daemon, {calls} pipelined allowed calls each");
    println!(
        "  {total} calls decided and answered in {elapsed:.2} s: {rate:.0} calls/s (target ≥ 20,000: {})",
        ok(rate >= 20_000.0)
    );
    println!("  refused: {refused} (expected 0: {})", ok(refused == 0));
    println!(
        "  CPU per call: daemon {:.1} µs, shims {:.1} µs (from /proc, while the calls ran)",
        (cpu_after.0 - cpu_before.0) as f64 / total as f64,
        (cpu_after.1 - cpu_before.1) as f64 / total as f64
    );
    println!(
        "  audit rows: {rows} calls, {with_outcome} with their outcome (expected {total}: {})",
        ok(rows == total && with_outcome == total)
    );
    println!(
        "  daemon RSS: {:.1} MB idle, {:.1} MB at the end, peak {:.1} MB",
        rss_idle as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );

    // SAFETY: signalling our own child process.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&home);
}

/// Rows of `echo` calls in the audit log, and how many of them have an
/// outcome.
fn audit_counts(latch: &str, home: &Path) -> (usize, usize) {
    let out = Command::new(latch).args(["audit", "export"]).env("LATCH_HOME", home).output().expect("audit export");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = 0;
    let mut with_outcome = 0;
    for line in text.lines().filter(|l| l.contains(r#""tool":"echo""#)) {
        rows += 1;
        if line.contains(r#""outcome":"ok""#) {
            with_outcome += 1;
        }
    }
    (rows, with_outcome)
}
