//! `latch shim --name NAME -- CMD [ARGS...]`
//!
//! One process per MCP server, started by the agent in place of the server.
//! It spawns the real server and relays newline-delimited JSON-RPC both
//! ways, byte for byte, stopping only `tools/call` requests to ask the
//! daemon. It holds no policy and no database.
//!
//! **Its stdout carries MCP frames only**; its own messages go to stderr.
//!
//! Tasks (one current-thread runtime, so a shim stays a few MB):
//! readers for the client's stdin and the server's stdout, writers for the
//! client's stdout and the server's stdin, the daemon link, and the relay
//! loop that owns all state.

#[doc(hidden)] // For `benches/results.rs` only.
pub mod bench;
mod child;
mod continuation;
#[doc(hidden)] // For the fuzz targets (fuzz/targets.rs) only.
pub mod envelope;
pub mod exec;
mod fold;
mod io;
mod journal;
mod lease;
mod link;
mod peek;
mod progress;
mod relay;
mod results;
mod splice;
mod text;

use std::time::Duration;

use latch_proto::paths::Paths;

pub use link::start_daemon;

/// How the shim runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server's name, as the user knows it (`--name`).
    pub name: String,
    /// The server's command line.
    pub command: Vec<String>,
    pub paths: Paths,
    /// After the client closes stdin: how long the server gets to exit on
    /// its own, and again after SIGTERM, before SIGKILL.
    pub grace: Duration,
    /// Longest line relayed; longer ones are refused without being
    /// buffered.
    pub max_message: usize,
    /// Start a daemon when none answers.
    pub autostart: bool,
    /// Let READ calls through while no daemon answers (off by default:
    /// fail closed).
    pub allow_reads_offline: bool,
}

impl Options {
    pub fn new(name: String, command: Vec<String>, paths: Paths) -> Options {
        Options {
            name,
            command,
            paths,
            grace: Duration::from_secs(2),
            max_message: 256 * 1024 * 1024,
            autostart: true,
            allow_reads_offline: false,
        }
    }
}

/// Runs the shim to completion; returns the process exit code (the
/// server's own, or 128 + the signal that ended it).
pub fn run(opts: Options) -> i32 {
    reuse_message_buffers();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latch shim: cannot start: {e}");
            return 70;
        }
    };
    let code = rt.block_on(relay::run(opts));
    // Do not wait for blocked stdin reads: the relay is finished.
    rt.shutdown_background();
    code
}

/// Large buffers get mappings of their own, returned when freed. A long
/// line's buffer then grows by remapping (no copy, and no second buffer
/// alive while it grows), and after a large message the shim keeps only
/// the one buffer [`io::Spare`] holds for reuse, not whatever the heap
/// grew to. The thresholds are set, not left to glibc's sliding default,
/// which after the first large message would keep such buffers in the heap.
fn reuse_message_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before the shim
    // starts any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 10);
        // The result checks run on threads of their own: two arenas, not
        // one per thread that ever ran one.
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
