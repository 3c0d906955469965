//! Subcommand implementations; `main` only dispatches.
//!
//! Exit codes: 0 success; 1 a check failed (policy errors, a test case,
//! an approval that was not pending); 2 usage errors (clap); 3 no daemon
//! is running; 70 internal error; the shim exits with its server's code.

pub mod client;
pub mod policy;
pub mod shim;

use latch_proto::paths::Paths;

/// Something went wrong that is not a failed check.
pub const EXIT_ERROR: u8 = 70;
/// The daemon is not running.
pub const EXIT_NO_DAEMON: i32 = 3;

pub fn paths() -> anyhow::Result<Paths> {
    Ok(Paths::from_env()?)
}

/// `latch daemon`.
pub fn daemon() -> anyhow::Result<i32> {
    let paths = paths()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(latch_daemon::run(paths))?;
    Ok(0)
}
