//! `latch daemon`: the one place that decides.
//!
//! An async shell around the pure core (`latch-core`): it listens on the
//! local socket, keeps the tool definitions each shim has seen, runs the
//! classifier and the policy, holds approvals, and writes the audit log
//! through one writer thread ([`audit`]).

mod accepted;
mod always;
mod answers;
pub mod audit;
mod background;
pub mod channel;
mod clock;
mod connection;
mod daemon;
mod decide;
pub mod desktop;
mod dispatch;
mod driver;
mod enforce;
mod engine;
mod export;
mod findings;
mod hold_key;
mod hook;
pub mod identity;
mod in_client;
pub mod judge;
mod known;
mod lease;
mod limits;
mod lock;
pub mod log;
pub mod managed;
mod managed_reload;
mod memstats;
mod outbox;
mod pending_replay;
pub mod pin;
mod pins;
mod placed;
mod policy_file;
mod registry;
mod reload;
mod results;
mod reveal;
mod rules;
pub mod runtime;
mod shared;
mod stop;
mod system_mode;
mod taint;
mod telegram;
mod threats;
mod waiting;
pub mod wire;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use latch_proto::paths::Paths;

pub use daemon::{Daemon, Options, run, run_with};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("a latch daemon is already running for {home} (pid {pid}) — use it, or stop it first")]
    AlreadyRunning { home: String, pid: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} belongs to user id {owner}, not to you ({me}) — set LATCH_HOME to a folder of your own")]
    NotOurs { path: PathBuf, owner: u32, me: u32 },
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io { path: path.to_owned(), source }
}

/// Creates `dir` (and parents) and makes it private: ours, mode 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), DaemonError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    let me = audit::current_uid();
    if meta.uid() != me {
        return Err(DaemonError::NotOurs { path: dir.to_owned(), owner: meta.uid(), me });
    }
    if meta.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Who answers from this machine (the CLI, the desktop buttons): the login
/// name, else the user id.
pub fn login_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("uid {}", audit::current_uid()))
}

/// Paths of everything the daemon owns, for self-protection and status.
pub fn describe(paths: &Paths) -> String {
    format!(
        "socket {}, database {}, policy {}",
        paths.socket.display(),
        paths.database.display(),
        paths.policy.display()
    )
}
