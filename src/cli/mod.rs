//! Subcommand implementations; `main` only dispatches.
//!
//! Exit codes: 0 success; 1 a check failed (policy errors, a test case,
//! an approval that was not pending); 2 usage errors (clap); 3 no daemon
//! is running; 70 internal error; the shim exits with its server's code.

pub mod audit_list;
pub mod auth;
pub mod bridge;
pub mod client;
pub mod demo;
pub mod doctor;
pub mod hook;
mod hook_probe;
pub mod install;
mod install_hooks;
mod install_target;
pub mod pin;
pub mod policy;
mod policy_replay;
pub mod rules;
mod rules_always;
pub mod shim;
pub mod stop;
pub mod system;
pub mod tools;

use latch_proto::paths::Paths;

/// Something went wrong that is not a failed check.
pub const EXIT_ERROR: u8 = 70;
/// A mistake in the command line that clap cannot see (bad `--args` JSON,
/// a file named that does not exist): exit 2, with the fix in the text.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The daemon is not running.
pub const EXIT_NO_DAEMON: i32 = 3;

pub fn paths() -> anyhow::Result<Paths> {
    Ok(Paths::from_env()?)
}

/// `latch daemon` options.
#[derive(clap::Args, Debug)]
pub struct DaemonArgs {
    /// Run as Latch's system daemon (set up by `sudo latch setup --system`):
    /// the socket and state folder root's /etc/latch/system.toml names.
    #[arg(long)]
    pub system: bool,
}

/// `latch daemon`.
pub fn daemon(a: DaemonArgs) -> anyhow::Result<i32> {
    latch_daemon::log::init();
    if a.system {
        return system::daemon();
    }
    let paths = paths()?;
    // One thread for the async shell, a bounded blocking pool (see the
    // daemon's `runtime`). SQLite has its own threads (see its `audit`).
    let rt = latch_daemon::runtime::build()?;
    rt.block_on(latch_daemon::run(paths))?;
    Ok(0)
}

/// `latch tui`. Starts a daemon first when none answers, so one command
/// gets a newcomer to a running Latch.
pub fn tui() -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    // Without a terminal the console would only write escape codes into a
    // pipe or a file: one plain line instead, before anything is started.
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        eprintln!(
            "latch tui: the console needs a terminal; open it in a terminal window (`latch status` and `latch pending` work without one)"
        );
        return Ok(2);
    }
    let paths = paths()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let hello = latch_proto::client::Hello::new(latch_proto::Role::Cli, "tui-probe");
    if let Err(latch_proto::client::ClientError::NoDaemon(_)) =
        rt.block_on(latch_proto::client::connect(&paths, &hello))
    {
        latch_shim::start_daemon(&paths)?;
    }
    drop(rt);
    latch_tui::run(paths)?;
    Ok(0)
}
