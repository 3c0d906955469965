//! Frame time of the history view over a log of 1,000,000 rows.
//!
//! The daemon side is a synthetic page source (`tests/support`) that makes
//! any page on demand, so the log costs nothing until asked for; the console
//! holds one page of `PAGE` rows whatever the log's size. Each frame is: one
//! key (scrolling row by row, page by page, searching), the console's
//! handling of it and of the daemon's reply, and a full draw into ratatui's
//! `TestBackend` (the same buffer diffing a real terminal gets).
//!
//! Run: `cargo bench -p latch-tui --bench history_render`. It prints the
//! frame times (wall clock: median, p99, max; and the most CPU time one
//! frame used) and exits non-zero if, in the optimised build, the p99 wall
//! time or any frame's CPU time exceeds 16 ms. The wall-clock max is shown
//! but not judged: on a shared machine it measures the scheduler.
//! `cargo test --benches` runs it too, in a debug build whose figures (5-20x
//! slower) are printed but not judged.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use latch_tui::app::{App, Input, PAGE};
use latch_tui::pages::serve;
use latch_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use support::*;

const BUDGET: Duration = Duration::from_millis(16);

struct Run {
    /// Wall time of each frame.
    frames: Vec<Duration>,
    /// CPU time of this thread for each frame: the console's own work,
    /// without the time a busy machine keeps it waiting.
    cpu: Vec<Duration>,
    source: Duration,
}

/// CPU time used by the calling thread so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill in.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One frame: the key, the daemon's reply (timed apart: that is SQLite's
/// work in real life, not the console's), the draw.
fn frame(app: &mut App, term: &mut Terminal<TestBackend>, log: &mut SyntheticLog, input: Input, run: &mut Run) {
    let (t0, c0) = (Instant::now(), thread_cpu());
    let out = app.handle(input, NOW);
    let (console, console_cpu) = (t0.elapsed(), thread_cpu() - c0);
    let t1 = Instant::now();
    let replies = serve(log, &out);
    run.source += t1.elapsed();
    let (t2, c2) = (Instant::now(), thread_cpu());
    for r in replies {
        app.handle(Input::Daemon(Box::new(r)), NOW);
    }
    term.draw(|f| ui::draw(f, app, NOW)).expect("draw");
    run.frames.push(console + t2.elapsed());
    run.cpu.push(console_cpu + (thread_cpu() - c2));
    assert!(app.history.rows.len() <= PAGE as usize, "more than one page in memory");
}

fn scenario(log_len: i64, w: u16, h: u16) -> (Run, Duration, u64) {
    let mut log = SyntheticLog::new(log_len);
    let mut app = connected(&[], &mut log);
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    let mut run = Run { frames: Vec::new(), cpu: Vec::new(), source: Duration::ZERO };
    term.draw(|f| ui::draw(f, &app, NOW)).expect("draw");

    // Opening the history: the first frame with rows in it.
    frame(&mut app, &mut term, &mut log, key('3'), &mut run);
    let open = run.frames[0];

    // Scroll row by row through three pages, page by page through fifty,
    // back up ten, search, filter, clear.
    for _ in 0..(3 * PAGE) {
        frame(&mut app, &mut term, &mut log, key('j'), &mut run);
    }
    for _ in 0..50 {
        frame(&mut app, &mut term, &mut log, code(KeyCode::PageDown), &mut run);
    }
    for _ in 0..10 {
        frame(&mut app, &mut term, &mut log, code(KeyCode::PageUp), &mut run);
    }
    frame(&mut app, &mut term, &mut log, key('/'), &mut run);
    for c in "file99".chars() {
        frame(&mut app, &mut term, &mut log, key(c), &mut run);
    }
    frame(&mut app, &mut term, &mut log, code(KeyCode::Enter), &mut run);
    for k in ['v', 'c', 't', 'x'] {
        frame(&mut app, &mut term, &mut log, key(k), &mut run);
    }
    (run, open, log.produced)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let (mut worst_p99, mut worst_cpu) = (Duration::ZERO, Duration::ZERO);
    println!("history view, frame = key + console handling + full draw (TestBackend)");
    println!(
        "{:>9} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "log rows", "size", "frames", "open", "median", "p99", "max", "cpu max", "rows made", "source"
    );
    for log_len in [0, 1_000_000] {
        for (w, h) in [(80, 24), (120, 40), (240, 70)] {
            let (run, open, produced) = scenario(log_len, w, h);
            let mut sorted = run.frames.clone();
            sorted.sort();
            let max = *sorted.last().expect("frames");
            let cpu_max = run.cpu.iter().copied().max().unwrap_or_default();
            worst_p99 = worst_p99.max(pct(&sorted, 0.99));
            worst_cpu = worst_cpu.max(cpu_max);
            println!(
                "{:>9} {:>7} {:>6} {:>9.2?} {:>9.2?} {:>9.2?} {:>9.2?} {:>9.2?} {:>9} {:>10.2?}",
                log_len,
                format!("{w}x{h}"),
                sorted.len(),
                open,
                pct(&sorted, 0.5),
                pct(&sorted, 0.99),
                max,
                cpu_max,
                produced,
                run.source,
            );
        }
    }
    println!(
        "worst p99 frame: {worst_p99:.2?}; most CPU in one frame: {worst_cpu:.2?} (budget {BUDGET:?}); \
         `source` is the synthetic daemon's time, not the console's"
    );
    if cfg!(debug_assertions) {
        println!("(debug build: figures not judged; use `cargo bench`)");
    } else if worst_p99 > BUDGET || worst_cpu > BUDGET {
        eprintln!("a frame took longer than {BUDGET:?}");
        std::process::exit(1);
    }
}
