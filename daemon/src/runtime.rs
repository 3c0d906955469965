//! The daemon's runtime and allocator settings, shared by `latch daemon`
//! and `latch daemon --system`.
//!
//! One thread for the async shell: a decision is microseconds of work and
//! crossing between workers would cost more than it saves. Slow work (file
//! IO, large frames, hashing, key derivation) goes to the blocking pool,
//! which is bounded: many shims connecting at once each read their
//! server's environment there, and without a bound the pool grew to one
//! thread per concurrent task (86 under the 50-shim load) and kept them,
//! since a steady trickle of tasks keeps waking the idle ones. Each thread
//! also took an allocator arena of its own; the arenas are bounded too.
//! Measured in docs/reliability.md (the soak, fifth round).

/// Threads of the blocking pool at most. Work beyond them waits its turn;
/// no decision of a small call runs there.
pub const BLOCKING_THREADS: usize = 16;

/// glibc allocator arenas at most (its default is eight per core).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// The runtime `latch daemon` runs on, after bounding the allocator's arenas.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; called before
    // the runtime starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
    tokio::runtime::Builder::new_current_thread().max_blocking_threads(BLOCKING_THREADS).enable_all().build()
}
