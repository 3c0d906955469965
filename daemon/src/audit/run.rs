//! The writer thread's loop: takes [`Cmd`]s from the [`Queue`], commits
//! them ([`Store::commit`]), and empties the journal once it holds nothing
//! uncommitted.

use std::sync::Mutex;

use super::queue::Queue;
#[cfg(doc)]
use super::writer::Cmd;
use super::writer::{Seq, Store};

/// A journal at least this long is emptied as soon as everything in it is
/// committed (shorter ones wait, to spare a system call per commit).
pub(super) const CLEAR_AT: u64 = 64 * 1024;

pub(super) fn writer(store: &mut Store, queue: &Queue, seq: &Mutex<Seq>) {
    loop {
        let (cmds, closed) = queue.take(!store.retry.is_empty());
        let hold = held();
        if !hold.is_zero() && !closed {
            std::thread::sleep(hold);
        }
        store.batch.extend(cmds);
        match store.commit() {
            Ok(newest) => {
                if let Some(id) = newest {
                    queue.committed.fetch_max(id, std::sync::atomic::Ordering::AcqRel);
                }
                queue.set_stuck(None);
                clear_if_committed(queue, seq, CLEAR_AT);
            }
            Err(e) => queue.set_stuck(Some(e.to_string())),
        }
        if closed && queue.lock().cmds.is_empty() {
            if store.retry.is_empty() {
                clear_if_committed(queue, seq, 0);
            }
            return;
        }
    }
}

/// Tests only: how long the writer waits before each commit, so that rows
/// stay in the journal alone (as when a daemon is killed before its writer
/// commits). Set by [`super::hold_commits_for_tests`], or in debug builds
/// by `LATCH_TEST_AUDIT_HOLD_MS`.
pub(super) static HOLD_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn held() -> std::time::Duration {
    let mut ms = HOLD_MS.load(std::sync::atomic::Ordering::Relaxed);
    if cfg!(debug_assertions) {
        static ENV: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        ms =
            ms.max(*ENV.get_or_init(|| {
                std::env::var("LATCH_TEST_AUDIT_HOLD_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
            }));
    }
    std::time::Duration::from_millis(ms)
}

/// Empties the journal when every row appended to it is committed and it
/// holds at least `at` bytes.
pub(super) fn clear_if_committed(queue: &Queue, seq: &Mutex<Seq>, at: u64) {
    let mut seq = seq.lock().unwrap_or_else(|e| e.into_inner());
    let caught_up = seq.next_id - 1 <= queue.committed.load(std::sync::atomic::Ordering::Acquire);
    if let Some(j) = seq.journal.as_mut()
        && caught_up
        && j.len() > 0
        && j.len() >= at
        && let Err(e) = j.clear()
    {
        tracing::warn!("the audit journal could not be emptied: {e}");
    }
}
