//! Where Latch keeps its state.
//!
//! Agents start shims with a bare environment (often only `HOME`, `PATH`,
//! `USER`, `SHELL`, `TERM`, `LOGNAME`), and a shim may start the daemon
//! itself. So every path is derived from `LATCH_HOME` or `HOME` alone;
//! `XDG_*` variables are deliberately ignored, or a daemon started from a
//! desktop terminal and a shim started by an agent would look in different
//! places.
//!
//! | what     | with `LATCH_HOME=D`  | otherwise                                  |
//! |----------|----------------------|--------------------------------------------|
//! | policy   | `D/policy.toml`      | `~/.config/latch/policy.toml`              |
//! | database | `D/audit.db`         | `~/.local/share/latch/audit.db`            |
//! | socket   | `D/run/latch.sock`   | `~/.local/share/latch/run/latch.sock`      |
//! | log      | `D/daemon.log`       | `~/.local/share/latch/daemon.log`          |
//!
//! On macOS the data folder is `~/Library/Application Support/latch`. The
//! socket's folder is created 0700; a socket path too long for `sun_path`
//! falls back to `/tmp/latch-<uid>/latch.sock`, checked to be ours.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub policy: PathBuf,
    pub database: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// Folder of the daemon's lock file (one daemon per user and home).
    pub data_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("neither LATCH_HOME nor HOME is set: set LATCH_HOME to the folder Latch should use")]
    NoHome,
    /// Root's system file exists but cannot be used (fail closed).
    #[error(transparent)]
    System(#[from] crate::system::SystemError),
}

/// `sun_path` is 108 bytes on Linux, 104 on macOS; keep a margin.
const MAX_SOCKET_PATH: usize = 100;

impl Paths {
    /// Paths from the process environment. In system mode (root's
    /// [`crate::system`] file) the socket is the system daemon's, whatever
    /// `LATCH_HOME` says.
    pub fn from_env() -> Result<Paths, PathsError> {
        let mut p = Self::resolve(
            std::env::var_os("LATCH_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )?;
        if let Some(system) = crate::system::load()? {
            p.socket = system.socket;
        }
        Ok(p)
    }

    pub fn resolve(latch_home: Option<PathBuf>, home: Option<PathBuf>) -> Result<Paths, PathsError> {
        let latch_home = latch_home.filter(|p| !p.as_os_str().is_empty());
        let (policy, data_dir) = match latch_home {
            Some(d) => (d.join("policy.toml"), d),
            None => {
                let home = home.filter(|p| !p.as_os_str().is_empty()).ok_or(PathsError::NoHome)?;
                let data = if cfg!(target_os = "macos") {
                    home.join("Library/Application Support/latch")
                } else {
                    home.join(".local/share/latch")
                };
                let config = if cfg!(target_os = "macos") { data.clone() } else { home.join(".config/latch") };
                (config.join("policy.toml"), data)
            }
        };
        let mut socket = data_dir.join("run").join("latch.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            socket = short_socket_dir().join("latch.sock");
        }
        Ok(Paths { policy, database: data_dir.join("audit.db"), socket, log: data_dir.join("daemon.log"), data_dir })
    }

    /// The private folder that holds the socket.
    pub fn socket_dir(&self) -> &Path {
        self.socket.parent().unwrap_or(Path::new("/"))
    }
}

fn short_socket_dir() -> PathBuf {
    // SAFETY: getuid never fails and touches no memory.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/latch-{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latch_home_puts_everything_in_one_folder() {
        let p = Paths::resolve(Some("/x/l".into()), Some("/home/u".into())).unwrap();
        assert_eq!(p.policy, PathBuf::from("/x/l/policy.toml"));
        assert_eq!(p.database, PathBuf::from("/x/l/audit.db"));
        assert_eq!(p.socket, PathBuf::from("/x/l/run/latch.sock"));
    }

    #[test]
    fn home_alone_is_enough() {
        let p = Paths::resolve(None, Some("/home/u".into())).unwrap();
        assert!(p.socket.starts_with("/home/u"));
        assert!(Paths::resolve(None, None).is_err());
    }

    #[test]
    fn long_paths_fall_back_to_a_short_socket() {
        let long = "/x".repeat(80);
        let p = Paths::resolve(Some(long.into()), None).unwrap();
        assert!(p.socket.to_string_lossy().starts_with("/tmp/latch-"), "{:?}", p.socket);
    }
}
