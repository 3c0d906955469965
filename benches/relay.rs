//! Relay benchmark: the same MCP traffic direct to a minimal echo server and
//! through `latch shim` + `latch daemon` (decision, audit row committed
//! before forwarding), in one run.
//!
//! `cargo bench --bench relay` prints:
//! * latency per allowed `tools/call` (p50, p99) over 10,000 sequential
//!   calls, and what Latch adds to direct, beside a null relay's (below);
//!   twice: with the processes wherever the kernel places them (target:
//!   added p50 ≤ 1.5× the null relay's), and with every one of them moved
//!   onto one vCPU, where no hand-off has to wake another vCPU (targets:
//!   added p50 ≤ 60 µs, p99 ≤ 250 µs); with the CPU time the shim and the
//!   daemon spend per call;
//! * this machine's price of a hand-off between two processes, on one vCPU
//!   and across two (a one-byte ping-pong through pipes);
//! * 1 MiB messages relayed both ways, as a share of direct: `echo` calls
//!   with 1 MiB arguments (each one decided: parsed, hashed and recorded by
//!   the daemon; target ≥ 80 %) and 1 MiB results (`read_file` of a 1 MiB
//!   file: a small call, a large answer; target ≥ 90 %); beside them, the
//!   same traffic through a null relay, a process that copies the bytes
//!   through the same pipes and looks at none of them: the ceiling for any
//!   relay that sits between two stdio processes;
//! * the shim's memory, peak included (target: VmHWM ≤ 6 MiB).
//!
//! `LATCH_BENCH_CALLS=N` changes the number of calls;
//! `LATCH_BENCH_LATCH=PATH` runs another build of `latch`;
//! `LATCH_BASELINE_BIN=PATH` also runs an older `latch` (its own daemon and
//! home), in turns with this one, and prints both side by side.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const BUILT: &str = env!("CARGO_BIN_EXE_latch");
const SERVER: &str = env!("CARGO_BIN_EXE_latch-test-server");

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
    next_id: u64,
}

impl Peer {
    fn spawn(cmd: &[&str], home: &Path) -> Peer {
        let mut child = Command::new(cmd[0])
            .args(&cmd[1..])
            .env("LATCH_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
        let mut p = Peer { child, stdin, stdout, line: String::new(), next_id: 0 };
        p.request(
            "initialize",
            r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"latch-bench","version":"1"}}"#,
        );
        p.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        p.request("tools/list", "{}");
        p
    }

    fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and reads until its response; returns the response
    /// length.
    fn request(&mut self, method: &str, params: &str) -> usize {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#));
        loop {
            self.line.clear();
            let n = self.stdout.read_line(&mut self.line).unwrap();
            assert!(n > 0, "peer closed its stdout");
            // The client reads only the head of a large answer (the id
            // comes first), so its own work does not flatter the ratios.
            let head = &self.line[..self.line.floor_char_boundary(100)];
            if head.contains(&format!(r#""id":{id},"#)) || head.contains(&format!(r#""id":{id}}}"#)) {
                // Refusals are short.
                assert!(
                    n > 65536 || !self.line.contains(r#""isError":true"#),
                    "call was not allowed: {}",
                    &self.line[..self.line.floor_char_boundary(200)]
                );
                return n;
            }
        }
    }

    fn rss_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// CPU time the process has used (user + system), in seconds.
    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.child.id())
    }

    fn close(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// CPU time process `pid` has used (user + system, all threads), seconds.
fn cpu_seconds(pid: u32) -> f64 {
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which ends with the last ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<f64>().ok()).sum();
        // SAFETY: sysconf has no preconditions.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Sorted call times of one path, and the CPU time its relay and daemon
/// spent per call (µs).
#[derive(Default)]
struct Series {
    times: Vec<Duration>,
    relay_cpu_us: f64,
    daemon_cpu_us: f64,
}

/// A way to the test server: direct, through the null relay, or through a
/// shim (whose daemon's CPU time is counted).
struct Route {
    peer: Peer,
    daemon: Option<u32>,
}

/// Call times of every route, measured in alternating blocks so that drift
/// on the machine hits them alike.
fn latency(routes: &mut [Route], calls: usize) -> Vec<Series> {
    let mut out: Vec<Series> = routes.iter().map(|_| Series::default()).collect();
    let block = 1000.min(calls);
    let mut done = 0;
    while done < calls {
        let n = block.min(calls - done);
        for (r, s) in routes.iter_mut().zip(out.iter_mut()) {
            let before = (r.peer.cpu_seconds(), r.daemon.map_or(0.0, cpu_seconds));
            s.times.extend(time_calls(&mut r.peer, n));
            s.relay_cpu_us += r.peer.cpu_seconds() - before.0;
            s.daemon_cpu_us += r.daemon.map_or(0.0, cpu_seconds) - before.1;
        }
        done += n;
    }
    // CPU time per call, which the machine's load moves far less than the
    // wall-clock figures.
    for s in &mut out {
        s.relay_cpu_us *= 1e6 / calls as f64;
        s.daemon_cpu_us *= 1e6 / calls as f64;
        s.times.sort();
    }
    out
}

fn time_calls(peer: &mut Peer, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let params = format!(r#"{{"name":"echo","arguments":{{"text":"hello {i}"}}}}"#);
        let t = Instant::now();
        peer.request("tools/call", &params);
        out.push(t.elapsed());
    }
    out.sort();
    out
}

/// MiB/s of `tools/call` with `params` (request and response bytes).
fn throughput(peer: &mut Peer, params: &str, rounds: usize) -> f64 {
    let t = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..rounds {
        bytes += params.len();
        bytes += peer.request("tools/call", params);
    }
    bytes as f64 / t.elapsed().as_secs_f64() / (1024.0 * 1024.0)
}

/// Sets the CPUs process `pid`, all its threads and all its descendants may
/// run on (`None`: every CPU). Moving tasks onto one vCPU shows what the
/// relay costs when no hand-off has to wake another vCPU.
fn place_tree(pid: u32, cpu: Option<usize>) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<i32>().ok()) else { continue };
        // SAFETY: a zeroed cpu_set_t is a valid empty set; the CPU_* macros
        // and sched_setaffinity only read and write that set.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            match cpu {
                Some(c) => libc::CPU_SET(c, &mut set),
                None => (0..libc::CPU_SETSIZE as usize).for_each(|c| libc::CPU_SET(c, &mut set)),
            }
            libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            place_tree(child, cpu);
        }
    }
}

/// `relay --pong`: answers each byte on stdin with one byte on stdout.
fn pong() -> ! {
    use std::io::Read;
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut b = [0u8; 1];
    while input.read_exact(&mut b).is_ok() && output.write_all(&b).and_then(|()| output.flush()).is_ok() {}
    std::process::exit(0)
}

/// The machine's price of one hand-off between two processes: the p50
/// round trip of a byte through two pipes to a `--pong` process (two
/// hand-offs), both on one vCPU and on two different ones.
fn handoff_cost(me: &str) -> Option<(f64, f64)> {
    use std::io::Read;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return None;
    }
    let mut child = Command::new(me).arg("--pong").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().ok()?;
    let (mut to, mut from) = (child.stdin.take()?, child.stdout.take()?);
    let mut round_trip = |other_cpu: usize| {
        place_tree(std::process::id(), Some(0));
        place_tree(child.id(), Some(other_cpu));
        let mut times = Vec::with_capacity(3000);
        let mut b = [0u8; 1];
        for i in 0..3500 {
            let t = Instant::now();
            to.write_all(b"x").and_then(|()| from.read_exact(&mut b)).ok()?;
            // The first 500 warm up.
            if i >= 500 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        Some(percentile(&times, 0.5).as_secs_f64() * 1e6)
    };
    let result = round_trip(0).zip(round_trip(1));
    place_tree(std::process::id(), None);
    drop(to);
    let _ = child.wait();
    result
}

struct Daemon(Child, PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// `relay --null-relay CMD...`: copies stdin to CMD and CMD's stdout to
/// stdout through user space, 64 KiB at a time, without reading a byte.
fn null_relay(cmd: &[String]) -> ! {
    use std::io::Read;
    let mut child =
        Command::new(&cmd[0]).args(&cmd[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
    let mut to_child = child.stdin.take().unwrap();
    let mut from_child = child.stdout.take().unwrap();
    fn pump(from: &mut dyn Read, to: &mut dyn Write) {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                break;
            }
        }
    }
    std::thread::spawn(move || pump(&mut std::io::stdin().lock(), &mut to_child));
    pump(&mut from_child, &mut std::io::stdout().lock());
    std::process::exit(0)
}

fn main() {
    let latch = std::env::var("LATCH_BENCH_LATCH").unwrap_or_else(|_| BUILT.to_owned());
    let latch = latch.as_str();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--null-relay") {
        null_relay(&args[2..]);
    }
    if args.get(1).map(String::as_str) == Some("--pong") {
        pong();
    }
    let calls: usize = std::env::var("LATCH_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let baseline = std::env::var("LATCH_BASELINE_BIN").ok().filter(|b| !b.is_empty());
    let daemon = start_daemon(latch, "new");
    let base_daemon = baseline.as_deref().map(|b| start_daemon(b, "base"));

    let me = std::env::current_exe().expect("own path");
    let me = me.to_str().expect("utf-8 path");
    let home = daemon.1.clone();
    let mut routes = vec![
        Route { peer: Peer::spawn(&[SERVER], &home), daemon: None },
        Route { peer: Peer::spawn(&[me, "--null-relay", SERVER], &home), daemon: None },
        Route {
            peer: Peer::spawn(&[latch, "shim", "--name", "bench", "--", SERVER], &home),
            daemon: Some(daemon.0.id()),
        },
    ];
    if let (Some(b), Some(d)) = (baseline.as_deref(), &base_daemon) {
        routes.push(Route {
            peer: Peer::spawn(&[b, "shim", "--name", "bench", "--", SERVER], &d.1),
            daemon: Some(d.0.id()),
        });
    }
    let names = ["direct", "null relay", "through shim+daemon", "baseline shim+daemon"];

    // Warm the paths, then measure in alternating blocks: first wherever
    // the kernel places the processes, then with every one of them on one
    // vCPU.
    for r in &mut routes {
        time_calls(&mut r.peer, 500);
    }
    let free = latency(&mut routes, calls);
    let mut everyone: Vec<u32> = routes.iter().map(|r| r.peer.child.id()).collect();
    everyone.extend([std::process::id(), daemon.0.id()]);
    everyone.extend(base_daemon.iter().map(|d| d.0.id()));
    everyone.iter().for_each(|&pid| place_tree(pid, Some(0)));
    let one_cpu = latency(&mut routes, calls);
    everyone.iter().for_each(|&pid| place_tree(pid, None));
    let handoff = handoff_cost(me);
    let shims = routes.len() - 2;
    let rss_small: Vec<u64> = routes[2..].iter().map(|r| r.peer.rss_kb("VmRSS:")).collect();
    // RSS counts the pages of the `latch` binary the shim touched, which it
    // shares with the daemon; its own memory is the anonymous part.
    let anon_small: Vec<u64> = routes[2..].iter().map(|r| r.peer.rss_kb("RssAnon:")).collect();
    // The peak from here on: the 1 MiB messages' (start-up's is not).
    for r in &routes[2..] {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", r.peer.child.id()), "5");
    }

    let payload = "x".repeat(1024 * 1024);
    // Outside the Latch home: reading that would be self-protection's job.
    let work = std::env::temp_dir().join(format!("latch-bench-work-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let big_file = work.join("big.txt");
    std::fs::write(&big_file, &payload).unwrap();
    let read_params = format!(r#"{{"name":"read_file","arguments":{{"path":"{}"}}}}"#, big_file.display());
    let echo_params = format!(r#"{{"name":"echo","arguments":{{"text":"{payload}"}}}}"#);
    // MiB/s per route, interleaved.
    let mut echo = vec![0.0; routes.len()];
    let mut read = vec![0.0; routes.len()];
    let shim_cpu: Vec<f64> = routes.iter().map(|r| r.peer.cpu_seconds()).collect();
    for round in 0..4 {
        let n = if round == 0 { 3 } else { 20 };
        let e: Vec<f64> = routes.iter_mut().map(|r| throughput(&mut r.peer, &echo_params, n)).collect();
        let rd: Vec<f64> = routes.iter_mut().map(|r| throughput(&mut r.peer, &read_params, n)).collect();
        if round > 0 {
            echo.iter_mut().zip(e).for_each(|(a, b)| *a += b);
            read.iter_mut().zip(rd).for_each(|(a, b)| *a += b);
        }
    }
    let cpu_ms: Vec<f64> =
        routes.iter().zip(&shim_cpu).map(|(r, c)| (r.peer.cpu_seconds() - c) * 1000.0 / (2.0 * 63.0)).collect();
    let hwm: Vec<u64> = routes[2..].iter().map(|r| r.peer.rss_kb("VmHWM:")).collect();
    // Pages mapped from files (the `latch` binary and libraries, shared
    // with the daemon and every other shim): part of RSS, not the shim's
    // own memory.
    let file: Vec<u64> = routes[2..].iter().map(|r| r.peer.rss_kb("RssFile:")).collect();

    let us = |x: Duration| x.as_secs_f64() * 1e6;
    let ok = |b: bool| if b { "ok" } else { "MISSED" };
    println!("latch relay benchmark: {calls} sequential tools/call (echo), allow + audit row committed per call");
    if let Some(b) = &baseline {
        println!("baseline (measured in turns with this build): {b}");
    }
    for (title, l, pinned) in
        [("processes where the kernel puts them", &free, false), ("every process on one vCPU", &one_cpu, true)]
    {
        let p = |v: &[Duration]| (us(percentile(v, 0.50)), us(percentile(v, 0.99)));
        let (d50, d99) = p(&l[0].times);
        let (z50, _) = p(&l[1].times);
        println!("{title}:                 p50 µs    p99 µs    added p50 / p99   CPU µs per call (relay, daemon)");
        for (i, s) in l.iter().enumerate() {
            let (a, b) = p(&s.times);
            let added = if i == 0 { String::new() } else { format!("{:>8.1} / {:<8.1}", a - d50, b - d99) };
            let cpu = if i == 0 { String::new() } else { format!("{:.0}, {:.0}", s.relay_cpu_us, s.daemon_cpu_us) };
            println!("  {:<22}{a:>8.1}  {b:>8.1}   {added:<20} {cpu}", names[i]);
        }
        let (s50, s99) = p(&l[2].times);
        let (add50, add99) = (s50 - d50, s99 - d99);
        if pinned {
            println!(
                "  targets (this build): added p50 ≤ 60 µs: {}, added p99 ≤ 250 µs: {}",
                ok(add50 <= 60.0),
                ok(add99 <= 250.0)
            );
        } else {
            let null_added = z50 - d50;
            println!(
                "  target (this build): added p50 ≤ 1.5× the null relay's ({:.1} µs): {} ({:.1}×)",
                null_added,
                ok(add50 <= 1.5 * null_added),
                add50 / null_added
            );
        }
    }
    if let Some((same, apart)) = handoff {
        println!(
            "this machine: a byte's round trip to another process (two hand-offs), p50 {same:.1} µs on one vCPU, \
             {apart:.1} µs across two"
        );
    }
    println!("1 MiB messages (60 round trips each; MiB/s counts both directions), as a share of direct:");
    println!("                           direct   null relay   shim+daemon   baseline");
    for (what, v, target) in [("1 MiB arguments, decided", &echo, 0.8), ("small call, 1 MiB result", &read, 0.9)] {
        let share = |i: usize| v.get(i).map_or("      –".to_owned(), |x| format!("{:>6.1} %", x / v[0] * 100.0));
        println!(
            "  {what:<24} {:>5.0} MiB/s  {}     {}     {}   target ≥ {:.0} %: {}",
            v[0],
            share(1),
            share(2),
            share(3),
            target * 100.0,
            ok(v[2] / v[0] >= target)
        );
    }
    let cpu_line: Vec<String> = cpu_ms[2..].iter().map(|c| format!("{c:.2} ms")).collect();
    println!(
        "  CPU time per 1 MiB round trip: the shim's {} (this build, baseline); the null relay's {:.2} ms",
        cpu_line.join(", "),
        cpu_ms[1]
    );
    let mb = |kb: u64| kb as f64 / 1024.0;
    for (i, name) in ["this build", "baseline"].iter().enumerate().take(shims) {
        println!(
            "shim memory ({name}): {:.1} MB RSS after the small calls ({:.1} MB its own), peak (VmHWM) {:.1} MB \
             after 1 MiB messages, {:.1} MB of it mapped from files: its own at the peak {:.1} MB{}",
            mb(rss_small[i]),
            mb(anon_small[i]),
            mb(hwm[i]),
            mb(file[i]),
            mb(hwm[i].saturating_sub(file[i])),
            if i == 0 { format!("; target VmHWM ≤ 6 MiB: {}", ok(hwm[i] <= 6 * 1024)) } else { String::new() }
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    for r in routes {
        r.peer.close();
    }
    drop(daemon);
    drop(base_daemon);
}

/// Starts `latch daemon` from `latch` in a home of its own, and waits until
/// it answers.
fn start_daemon(latch: &str, which: &str) -> Daemon {
    let home = std::env::temp_dir().join(format!("latch-bench-{which}-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let child = Command::new(latch)
        .arg("daemon")
        .env("LATCH_HOME", &home)
        .stderr(Stdio::null())
        .spawn()
        .expect("start latch daemon");
    let daemon = Daemon(child, home.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Command::new(latch).arg("status").env("LATCH_HOME", &home).output().is_ok_and(|o| o.status.success()) {
        assert!(Instant::now() < deadline, "daemon did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}
