//! History benchmark on a REAL audit database: 1,000,000 call rows written
//! through `latch_daemon::audit::Audit` (the daemon's own writer thread and
//! group commits), then the console's history pane paging through them.
//!
//! `cargo bench --bench history` prints:
//! * fill throughput: rows/s with `record` (fire and forget, the writer
//!   commits up to 1024 rows per transaction) and with `insert` (each caller
//!   waits for its row's commit, as the daemon does before forwarding a call,
//!   with 256 callers in flight): the figure to hold against issue 9's
//!   20,000 decided calls/s;
//! * per-frame time of the history pane at 80x24, a frame being one key
//!   handled by the console's `App`, the daemon's `Audit::query` for the page
//!   it asks for (if any) and a full draw by `latch_tui::ui::draw` into
//!   ratatui's `TestBackend`: p50, p99 and max against the 16 ms budget, per
//!   scenario (newest page, paging back, text search, decision filter);
//! * the first page (opening the history) on the 1M-row log vs an empty log;
//! * retention: `Audit::prune` cutting the log to a tenth (`max_rows`), in
//!   rows removed per second, with a call inserted every millisecond
//!   meanwhile and the longest it waited for its commit; then `verify`.
//!
//! The console is driven through its public state machine (`App::handle`)
//! and its page requests are answered by `latch_tui::pages::serve` over a
//! [`PageSource`] that calls the real `Audit::query` (a fresh read-only
//! connection per query, as the daemon does). Nothing here goes through the
//! socket: framing and the socket add a constant per page, not measured.
//!
//! `LATCH_BENCH_ROWS=N` changes the log size (default 1,000,000).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use latch_daemon::audit::{Audit, NewEvent};
use latch_proto::{AuditFilter, AuditRow, ClientMsg, DaemonMsg, StatusReport};
use latch_tui::app::{App, Input};
use latch_tui::pages::{PageSource, serve};
use latch_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::runtime::Runtime;

const BUDGET: Duration = Duration::from_millis(16);
const SERVERS: [(&str, &str, &str, &str); 5] = [
    ("fs", "read_file", "READ", "allow"),
    ("github", "create_pull_request", "SUBMIT", "ask"),
    ("shell", "run_command", "EXECUTE", "ask"),
    ("stripe", "create_refund", "TRANSFER_VALUE", "deny"),
    ("slack", "send_message", "SEND", "allow"),
];

/// Call number `i` of a log whose newest call is at `now`, one a second.
fn event(i: i64, n: i64, now: i64) -> NewEvent {
    let (server, tool, class, decision) = SERVERS[(i % 5) as usize];
    let done = i % 7 != 0;
    NewEvent {
        time_ms: now - (n - i) * 1000,
        kind: "call",
        server: server.into(),
        session: format!("s-{}", i / 10_000),
        tool: tool.into(),
        class: class.into(),
        decision: decision.into(),
        reasons: vec![format!("tool name word '{}'", tool.split('_').next().unwrap_or(tool))],
        args: format!(r#"{{"limit":{},"path":"/home/me/project/src/file{i}.rs"}}"#, i % 100),
        args_hash: format!("{:064x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        rule: None,
        approval_id: (decision == "ask").then(|| format!("ap-{i}")),
        outcome: done.then_some(if i % 13 == 0 { "is_error" } else { "ok" }),
        answered_by: (decision == "ask" && done).then(|| "tui:alice".to_owned()),
        detail: None,
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latch-bench-history-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Fills `audit` with calls `from..to` using `record`; returns the time
/// until everything is committed.
fn fill_record(rt: &Runtime, audit: &Audit, from: i64, to: i64, n: i64, now: i64) -> Duration {
    let t = Instant::now();
    rt.block_on(async {
        for i in from..to {
            audit.record(event(i, n, now)).await;
        }
        audit.flush().await;
    });
    t.elapsed()
}

/// Fills calls `from..to` with `insert`, `callers` of them waiting for their
/// commit at once (the daemon's pattern: each decided call waits for its row).
fn fill_insert(rt: &Runtime, audit: &Audit, from: i64, to: i64, n: i64, now: i64, callers: i64) -> Duration {
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..callers {
            let audit = audit.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = from + c;
                while i < to {
                    audit.insert(event(i, n, now)).await.expect("insert");
                    i += callers;
                }
            }));
        }
        for t in tasks {
            t.await.expect("caller");
        }
    });
    t.elapsed()
}

/// The daemon's side of history paging: the real store.
struct Store<'a> {
    rt: &'a Runtime,
    audit: &'a Audit,
    queries: Vec<Duration>,
}

impl PageSource for Store<'_> {
    fn page(&mut self, limit: u32, before: Option<i64>, filter: &AuditFilter) -> Vec<AuditRow> {
        let t = Instant::now();
        let rows = self.rt.block_on(self.audit.query(filter.clone(), before, limit)).expect("query");
        self.queries.push(t.elapsed());
        rows
    }
}

fn key(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Input {
    Input::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// A console just connected to a daemon with nothing pending.
fn connected(now: i64, db: &Path) -> App {
    let mut app = App::new("alice", 0);
    for m in app.handle(Input::Connected, now) {
        let reply = match m {
            ClientMsg::Subscribe { req } => DaemonMsg::Subscribed { req },
            ClientMsg::ListPending { req } => DaemonMsg::Pending { req, items: Vec::new() },
            ClientMsg::Status { req } => DaemonMsg::Status {
                req,
                status: StatusReport {
                    export: None,
                    daemon_pid: std::process::id(),
                    version: "bench".into(),
                    socket: "/tmp/latch.sock".into(),
                    database: db.display().to_string(),
                    policy: "/tmp/policy.toml".into(),
                    policy_error: None,
                    shims: Vec::new(),
                    consoles: 1,
                    pending: 0,
                    channels: Vec::new(),
                    findings: Vec::new(),
                    pin_set: true,
                    policy_pending: None,
                    policy_note: None,
                    stopped_since: None,
                    managed: None,
                },
            },
            _ => continue,
        };
        app.handle(Input::Daemon(Box::new(reply)), now);
    }
    app
}

/// Frame times of one scenario: wall time of key + query + draw, and the
/// query part alone.
#[derive(Default)]
struct Frames {
    total: Vec<Duration>,
    query: Vec<Duration>,
}

struct Console<'a> {
    app: App,
    term: Terminal<TestBackend>,
    store: Store<'a>,
    now: i64,
}

impl Console<'_> {
    fn frame(&mut self, input: Input, into: &mut Frames) -> Duration {
        let t = Instant::now();
        let before = self.store.queries.len();
        let out = self.app.handle(input, self.now);
        for reply in serve(&mut self.store, &out) {
            self.app.handle(Input::Daemon(Box::new(reply)), self.now);
        }
        let (app, now) = (&self.app, self.now);
        self.term.draw(|f| ui::draw(f, app, now)).expect("draw");
        let total = t.elapsed();
        into.total.push(total);
        into.query.push(self.store.queries[before..].iter().sum());
        total
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(name: &str, f: &Frames) -> Duration {
    let mut total = f.total.clone();
    total.sort();
    let mut query = f.query.clone();
    query.sort();
    let max = total.last().copied().unwrap_or_default();
    println!(
        "{name:<34} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>11.2} {:>11.2}",
        total.len(),
        ms(pct(&total, 0.5)),
        ms(pct(&total, 0.99)),
        ms(max),
        ms(pct(&query, 0.5)),
        ms(query.last().copied().unwrap_or_default()),
    );
    pct(&total, 0.99)
}

fn open_console<'a>(rt: &'a Runtime, audit: &'a Audit, now: i64) -> Console<'a> {
    let app = connected(now, audit.path());
    let term = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    Console { app, term, store: Store { rt, audit, queries: Vec::new() }, now }
}

fn main() {
    let n: i64 = std::env::var("LATCH_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let now = now_ms();
    let dir = temp_dir("full");
    let empty_dir = temp_dir("empty");
    let audit = Audit::open(&dir.join("audit.db")).expect("open audit");

    // ---- fill
    let by_insert = (n / 10).min(100_000);
    let recorded = n - by_insert;
    let t_record = fill_record(&rt, &audit, 1, recorded + 1, n, now);
    let t_insert = fill_insert(&rt, &audit, recorded + 1, n + 1, n, now, 256);
    let db_size = std::fs::metadata(dir.join("audit.db")).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.join("audit.db-wal")).map(|m| m.len()).unwrap_or(0);
    println!("audit fill through latch_daemon::audit::Audit ({n} call rows, {:.0} MB on disk)", db_size as f64 / 1e6);
    println!(
        "  record (no wait, group commit ≤1024): {recorded:>8} rows in {:>7.2?} = {:>9.0} rows/s",
        t_record,
        recorded as f64 / t_record.as_secs_f64()
    );
    println!(
        "  insert (256 callers wait for commit): {by_insert:>8} rows in {:>7.2?} = {:>9.0} rows/s (issue 9 target: 20,000 decided calls/s)",
        t_insert,
        by_insert as f64 / t_insert.as_secs_f64()
    );

    // ---- paging, 80x24
    println!("\nhistory pane at 80x24, frame = key + Audit::query (when the console asks) + full draw; ms");
    println!(
        "{:<34} {:>6} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "scenario", "frames", "p50", "p99", "max", "query p50", "query max"
    );
    let mut worst = Duration::ZERO;
    let mut c = open_console(&rt, &audit, now);

    let mut open = Frames::default();
    let first_full = c.frame(key('3'), &mut open);
    assert_eq!(c.app.history.rows.len(), 100, "first page");
    assert_eq!(c.app.history.rows[0].id, n, "newest first");

    let mut scroll = Frames::default();
    for _ in 0..120 {
        c.frame(key('j'), &mut scroll);
    }
    worst = worst.max(report("scroll row by row (j x120)", &scroll));

    let mut back = Frames::default();
    for _ in 0..200 {
        c.frame(code(KeyCode::PageDown), &mut back);
    }
    let deepest = c.app.history.rows.last().map(|r| r.id).unwrap_or_default();
    for _ in 0..20 {
        c.frame(code(KeyCode::PageUp), &mut back);
    }
    worst = worst.max(report("page back x200, forward x20", &back));
    assert!(deepest <= n - 200 * 100, "paged back 200 pages: oldest id seen {deepest}");
    c.frame(key('g'), &mut Frames::default());

    let mut search = Frames::default();
    c.frame(key('/'), &mut search);
    for ch in "file99".chars() {
        c.frame(key(ch), &mut search);
    }
    c.frame(code(KeyCode::Enter), &mut search);
    let hits = c.app.history.rows.len();
    for _ in 0..10 {
        c.frame(code(KeyCode::PageDown), &mut search);
    }
    worst = worst.max(report("search \"file99\" + 10 pages", &search));
    assert!(hits > 0, "the search found rows");

    let mut rare = Frames::default();
    c.frame(key('x'), &mut rare);
    c.frame(key('/'), &mut rare);
    for ch in "file7.rs".chars() {
        c.frame(key(ch), &mut rare);
    }
    c.frame(code(KeyCode::Enter), &mut rare);
    let rare_hits = c.app.history.rows.len();
    let rare_p99 = report("search \"file7.rs\" (1 hit: full scan)", &rare);

    let mut decision = Frames::default();
    c.frame(key('x'), &mut decision);
    for _ in 0..3 {
        // any -> allow -> ask -> deny
        c.frame(key('v'), &mut decision);
        for _ in 0..10 {
            c.frame(code(KeyCode::PageDown), &mut decision);
        }
    }
    let denied = c.app.history.rows.iter().all(|r| r.decision == "deny");
    worst = worst.max(report("decision filter v x3, 10 pages each", &decision));
    assert!(denied, "the decision filter ends on deny");

    let mut server = Frames::default();
    c.frame(key('x'), &mut server);
    c.frame(key('e'), &mut server); // the first server seen: "fs"
    let server_name = c.app.history.server.clone().unwrap_or_default();
    for _ in 0..10 {
        c.frame(code(KeyCode::PageDown), &mut server);
    }
    let server_p99 = report(&format!("server filter \"{server_name}\", 10 pages"), &server);
    assert!(c.app.history.rows.iter().all(|r| r.server == server_name), "the server filter holds");

    let mut window = Frames::default();
    c.frame(key('x'), &mut window);
    for _ in 0..3 {
        // all -> last hour -> last day -> last week
        c.frame(key('t'), &mut window);
        for _ in 0..3 {
            c.frame(code(KeyCode::PageDown), &mut window);
        }
    }
    let window_p99 = report("time filter t x3, 3 pages each", &window);
    c.frame(key('x'), &mut Frames::default());

    // ---- first page: full vs empty log
    let empty = Audit::open(&empty_dir.join("audit.db")).expect("open empty audit");
    let mut e = open_console(&rt, &empty, now);
    let first_empty = e.frame(key('3'), &mut Frames::default());
    // Again, warm (the OS cache and SQLite's schema parse are paid once).
    let mut c2 = open_console(&rt, &audit, now);
    let first_full_warm = c2.frame(key('3'), &mut Frames::default());
    let mut e2 = open_console(&rt, &empty, now);
    let first_empty_warm = e2.frame(key('3'), &mut Frames::default());
    println!(
        "\nfirst page (open history, key '3'): {n} rows {:.2} ms (again {:.2} ms); empty log {:.2} ms (again {:.2} ms)",
        ms(first_full),
        ms(first_full_warm),
        ms(first_empty),
        ms(first_empty_warm)
    );
    println!(
        "worst p99 frame (scroll, paging, search \"file99\", decision filter): {:.2} ms, budget {BUDGET:?}{}",
        ms(worst),
        if worst <= BUDGET { ": within" } else { ": OVER" }
    );
    println!(
        "a search with few hits scans the whole log: {rare_hits} row(s), p99 {:.2} ms{}",
        ms(rare_p99),
        if rare_p99 <= BUDGET { "" } else { " (over budget: LIKE '%…%' cannot use an index)" }
    );
    println!(
        "server filter p99 {:.2} ms, time filter p99 {:.2} ms{}",
        ms(server_p99),
        ms(window_p99),
        if server_p99.max(window_p99) <= BUDGET { "" } else { " (over budget)" }
    );

    // ---- retention: cut the log to a tenth while calls go on
    let keep = (n / 10).max(100) as u64;
    let settings = latch_core::policy::AuditSettings { keep_days: None, max_rows: Some(keep) };
    let (pruned, took, (waited, calls)) = rt.block_on(async {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let probe = {
            let (audit, stop) = (audit.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut worst, mut calls) = (Duration::ZERO, 0i64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    audit.insert(event(n + 1 + calls, n, now)).await.expect("insert during prune");
                    worst = worst.max(t.elapsed());
                    calls += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                (worst, calls)
            })
        };
        let t = Instant::now();
        let pruned = audit.prune(settings, now).await.expect("prune");
        let took = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (pruned, took, probe.await.expect("probe"))
    });
    println!(
        "\nretention through Audit::prune (max_rows = {keep}): {} rows removed in {:.2?} = {:.0} rows/s, {} \
         batches of <= {}; a call inserted every ms meanwhile ({calls} calls) waited at most {:.2} ms for its commit",
        pruned.deleted,
        took,
        pruned.deleted as f64 / took.as_secs_f64(),
        pruned.batches,
        latch_daemon::audit::retention::BATCH,
        ms(waited)
    );
    let t = Instant::now();
    let verified = latch_daemon::audit::verify(&dir.join("audit.db")).expect("verify");
    match verified {
        latch_daemon::audit::Verified::Intact { rows, retained: Some(r) } => {
            println!("verify after retention: {rows} rows intact in {:.2?}; {}", t.elapsed(), r.describe())
        }
        other => panic!("the log does not verify after retention: {other:?}"),
    }

    if cfg!(debug_assertions) {
        println!("(debug build: figures are not representative; use `cargo bench --bench history`)");
    }

    drop((c, c2, e, e2));
    drop((audit, empty));
    rt.shutdown_timeout(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty_dir);
}
