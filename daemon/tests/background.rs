//! The daemon's background threads (the audit writer, WAL checkpoints) run
//! as batch work (`SCHED_BATCH`), so their work does not preempt a call
//! being decided; the threads that decide keep the normal policy.

mod common;

use common::daemon;

/// (name, scheduling policy) of every thread of this process, the main
/// thread first.
fn threads() -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let (Ok(name), Ok(stat)) =
            (std::fs::read_to_string(path.join("comm")), std::fs::read_to_string(path.join("stat")))
        else {
            continue;
        };
        // Fields after the name (which may hold spaces): the policy is
        // field 41.
        let nice = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(38)?.parse().ok());
        let main = path.file_name().and_then(|t| t.to_str()) == Some(&std::process::id().to_string());
        let entry = (name.trim().to_owned(), nice.unwrap());
        if main { out.insert(0, entry) } else { out.push(entry) }
    }
    out
}

#[test]
#[cfg(target_os = "linux")]
fn the_writer_and_checkpoints_yield_to_the_decision_path() {
    let base = threads()[0].1;
    let d = daemon::start("background", None, daemon::quiet());
    let seen = threads();
    for name in ["latch-audit", "latch-checkpoint"] {
        // A thread's name is cut to 15 bytes.
        let nice: Vec<i64> = seen.iter().filter(|(n, _)| name.starts_with(n.as_str())).map(|(_, v)| *v).collect();
        assert!(!nice.is_empty(), "no {name} thread in {seen:?}");
        assert!(nice.iter().all(|v| *v == i64::from(libc::SCHED_BATCH)), "{name}: {nice:?}");
    }
    // The daemon's runtime thread (a test thread here) and the blocking
    // pool, which decide, keep the process's priority.
    let deciding: Vec<i64> = seen.iter().filter(|(n, _)| !n.starts_with("latch-")).map(|(_, v)| *v).collect();
    assert!(deciding.iter().all(|v| *v == base), "{seen:?}");
    drop(d);
}
