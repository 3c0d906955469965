//! `latch-shim`: the shim alone, which `latch shim` runs in its place when
//! it sits beside `latch` (see `latch_shim::exec`). It links the shim, the
//! protocol and the core only, so a shim's memory is its own work, not
//! pages of the whole `latch` binary. Not for people: `latch shim` is the
//! command, and it starts this with its options.

use std::process::ExitCode;

use latch_proto::paths::Paths;
use latch_shim::exec::{self, Start};

/// As `latch`: a usage error.
const EXIT_USAGE: u8 = 2;
/// As `latch`: an internal error.
const EXIT_ERROR: u8 = 70;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, command, grace, max_mib, autostart, reads) = match exec::from_args(&args) {
        Ok(Start::Run { name, command, grace, max_mib, autostart, reads }) => {
            (name, command, grace, max_mib, autostart, reads)
        }
        Ok(Start::OtherBuild(args)) => {
            let err = exec::hand_back(args);
            eprintln!("latch: {} is from another build than latch, which could not be started: {err}", exec::BINARY);
            return ExitCode::from(EXIT_ERROR);
        }
        Err(usage) => {
            eprintln!("latch: {usage}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(e) = exec::as_small_binary() {
        eprintln!("latch: cannot find the latch beside {}: {e}", exec::BINARY);
        return ExitCode::from(EXIT_ERROR);
    }
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("latch: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let mut opts = latch_shim::Options::new(name, command, paths);
    opts.grace = grace;
    opts.max_message = max_mib.saturating_mul(1024 * 1024);
    opts.autostart = autostart;
    opts.allow_reads_offline = reads;
    ExitCode::from(latch_shim::run(opts).clamp(0, 255) as u8)
}
