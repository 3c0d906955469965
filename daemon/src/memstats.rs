//! A debugging aid for memory investigations (docs/reliability.md, the
//! soak): with `LATCH_DEBUG_MEMORY_SECONDS=N` in its environment the daemon
//! logs, every N seconds, what glibc's allocator holds (all arenas: taken
//! from the system, in use, free, mapped on their own) and what SQLite
//! has allocated. Off unless asked; nothing else reads it.

use std::time::Duration;

/// Starts the logging thread when the environment asks for it.
pub(crate) fn start_if_asked() {
    let Some(every) = std::env::var("LATCH_DEBUG_MEMORY_SECONDS").ok().and_then(|s| s.parse::<u64>().ok()) else {
        return;
    };
    let every = Duration::from_secs(every.max(1));
    let _ = std::thread::Builder::new().name("latch-memstats".into()).spawn(move || {
        loop {
            log_once();
            std::thread::sleep(every);
        }
    });
}

fn log_once() {
    // SAFETY: both calls only read the allocators' counters.
    let sqlite = unsafe { rusqlite::ffi::sqlite3_memory_used() };
    let sqlite_peak = unsafe { rusqlite::ffi::sqlite3_memory_highwater(0) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and returns plain counters.
        let m = unsafe { libc::mallinfo2() };
        tracing::info!(
            target: "latch::memstats",
            "memory: malloc from system {} (mapped alone {}), in use {}, free {} (at the top {}); sqlite {} (peak {})",
            m.arena,
            m.hblkhd,
            m.uordblks,
            m.fordblks,
            m.keepcost,
            sqlite,
            sqlite_peak
        );
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    tracing::info!(target: "latch::memstats", "memory: sqlite {sqlite} (peak {sqlite_peak})");
}
