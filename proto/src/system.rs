//! System mode (issue 20): Latch's daemon runs as a dedicated system user,
//! set up by `sudo latch setup --system`, and root's
//! `/etc/latch/system.toml` tells every client where it listens and as
//! which user id:
//!
//! ```toml
//! socket = "/run/latch/daemon/latch.sock"
//! daemon_uid = 998
//! user = "latch"
//! group = "latch"
//! state = "/var/lib/latch"
//! ```
//!
//! With the file in place, shims, consoles, hooks and the CLI connect only
//! to that socket (whatever `LATCH_HOME` says) and accept only a daemon
//! whose peer user id (`SO_PEERCRED`) is `daemon_uid`; they never start a
//! daemon themselves. A daemon the agent starts as the user is refused. A
//! file that is not root's or is writable by others is refused too, and
//! then no daemon is accepted at all (fail closed).
//!
//! Every system path is fixed in release builds. Debug builds (the test
//! suite's) put `LATCH_SYSTEM_PREFIX` in front of each when it is set; the
//! code reading it is compiled out of release builds.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Root's file naming the system daemon.
pub const SYSTEM_CONFIG: &str = "/etc/latch/system.toml";
/// Where the system daemon's socket folder lives.
pub const RUN_DIR: &str = "/run/latch";
/// The system daemon's own state (database, journal, PIN, its policy).
pub const STATE_DIR: &str = "/var/lib/latch";

/// Debug builds only: a folder every system path is placed under (tests).
#[cfg(debug_assertions)]
pub const PREFIX_ENV: &str = "LATCH_SYSTEM_PREFIX";

/// `path` (absolute) under the debug-only prefix, or as it is.
pub fn place(path: &str) -> PathBuf {
    #[cfg(debug_assertions)]
    if let Some(p) = std::env::var_os(PREFIX_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join(path.trim_start_matches('/'));
    }
    PathBuf::from(path)
}

/// The system daemon, as root's file names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemConfig {
    pub socket: PathBuf,
    pub daemon_uid: u32,
    pub user: String,
    pub group: String,
    pub state: PathBuf,
}

/// Why the system file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(
        "{path} is not root's or is writable by others ({detail}), so Latch's system daemon cannot be told from an \
         impostor and none is trusted: a person must fix it (root, mode 644)"
    )]
    Untrusted { path: String, detail: String },
    #[error("{path} cannot be read ({detail}); a person must fix it")]
    Unreadable { path: String, detail: String },
    #[error("{path} line {line}: {detail}")]
    Invalid { path: String, line: usize, detail: String },
}

impl SystemConfig {
    /// The file's text.
    pub fn render(&self) -> String {
        format!(
            "# Written by `latch setup --system`: where Latch's system daemon listens and as which user.\n\
             socket = {:?}\ndaemon_uid = {}\nuser = {:?}\ngroup = {:?}\nstate = {:?}\n",
            self.socket.display().to_string(),
            self.daemon_uid,
            self.user,
            self.group,
            self.state.display().to_string()
        )
    }

    /// Parses the file's text (`key = "string"` or `key = number` lines).
    pub fn parse(text: &str, shown: &str) -> Result<SystemConfig, SystemError> {
        let bad = |line: usize, detail: String| SystemError::Invalid { path: shown.to_owned(), line, detail };
        let (mut socket, mut uid, mut user, mut group, mut state) = (None, None, None, None, None);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(bad(i + 1, "expected `key = value`".into()));
            };
            let v = v.trim();
            let string = || {
                v.strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .filter(|s| !s.contains('"') && !s.contains('\\'))
                    .map(str::to_owned)
                    .ok_or_else(|| bad(i + 1, format!("{} must be a plain quoted string", k.trim())))
            };
            match k.trim() {
                "socket" => socket = Some(PathBuf::from(string()?)),
                "daemon_uid" => {
                    uid = Some(v.parse::<u32>().map_err(|_| bad(i + 1, "daemon_uid must be a number".into()))?)
                }
                "user" => user = Some(string()?),
                "group" => group = Some(string()?),
                "state" => state = Some(PathBuf::from(string()?)),
                other => return Err(bad(i + 1, format!("unknown key `{other}`"))),
            }
        }
        let missing = |k: &str| bad(0, format!("`{k}` is missing"));
        let socket = socket.ok_or_else(|| missing("socket"))?;
        if !socket.is_absolute() {
            return Err(bad(0, "socket must be an absolute path".into()));
        }
        Ok(SystemConfig {
            socket,
            daemon_uid: uid.ok_or_else(|| missing("daemon_uid"))?,
            user: user.ok_or_else(|| missing("user"))?,
            group: group.ok_or_else(|| missing("group"))?,
            state: state.ok_or_else(|| missing("state"))?,
        })
    }
}

/// The system file's path.
pub fn config_path() -> PathBuf {
    place(SYSTEM_CONFIG)
}

/// Root's system file: `None` when there is none (per-user mode).
pub fn load() -> Result<Option<SystemConfig>, SystemError> {
    let path = config_path();
    let shown = path.display().to_string();
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SystemError::Unreadable { path: shown, detail: e.to_string() }),
        Ok(_) => {}
    }
    let real = std::fs::canonicalize(&path)
        .map_err(|e| SystemError::Unreadable { path: shown.clone(), detail: e.to_string() })?;
    for p in real.ancestors() {
        root_only(p).map_err(|detail| SystemError::Untrusted { path: shown.clone(), detail })?;
    }
    let text = std::fs::read_to_string(&real)
        .map_err(|e| SystemError::Unreadable { path: shown.clone(), detail: e.to_string() })?;
    SystemConfig::parse(&text, &shown).map(Some)
}

/// `p` is root's and writable by nobody else (a sticky folder may be).
pub fn root_only(p: &Path) -> Result<(), String> {
    let m = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if m.uid() != 0 {
        return Err(format!("{} is owned by uid {}", p.display(), m.uid()));
    }
    let mode = m.permissions().mode();
    if mode & 0o022 != 0 && !(m.is_dir() && mode & 0o1000 != 0) {
        return Err(format!("{} has mode {:o}", p.display(), mode & 0o7777));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_back() {
        let c = SystemConfig {
            socket: "/run/latch/daemon/latch.sock".into(),
            daemon_uid: 998,
            user: "latch".into(),
            group: "latch".into(),
            state: "/var/lib/latch".into(),
        };
        assert_eq!(SystemConfig::parse(&c.render(), "t").unwrap(), c);
        let e = SystemConfig::parse("socket = \"/x\"\ndaemon_uid = nope\n", "t").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(SystemConfig::parse("sokcet = \"/x\"\n", "t").is_err());
    }
}
