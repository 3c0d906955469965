//! The managed policy file (issue 20): `/etc/latch/managed.toml`, written
//! by whoever manages Latch on the machine and layered above the user's
//! policy ([`latch_core::Policy::layered`]: the stricter layer decides).
//!
//! Only root may own it: the file and every folder above it must belong
//! to root and be writable by nobody else (a folder with the sticky bit,
//! such as `/tmp`, may be writable by others: they cannot replace a file
//! of root's there). A managed file that breaks this, cannot be read, or
//! does not validate is **refused, failing closed**: the managed layer
//! becomes [`latch_core::Policy::lockdown`], which denies every call with
//! the reason, until it is fixed. No managed file at all means no managed
//! layer.
//!
//! The path is fixed in release builds. Debug builds (the test suite's)
//! read `LATCH_MANAGED_POLICY` instead when it is set; the variable is
//! compiled out of release builds, so an agent that starts the daemon
//! cannot point it at a file of its own.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use latch_core::Policy;

/// Where the managed policy lives: the platform's place for settings an
/// administrator sets for every user (as Claude Code's managed settings).
#[cfg(not(target_os = "macos"))]
pub const MANAGED_PATH: &str = "/etc/latch/managed.toml";
/// Where the managed policy lives: the platform's place for settings an
/// administrator sets for every user (as Claude Code's managed settings).
#[cfg(target_os = "macos")]
pub const MANAGED_PATH: &str = "/Library/Application Support/Latch/managed.toml";

/// Debug builds only: another managed policy path, for tests.
#[cfg(debug_assertions)]
pub const MANAGED_PATH_ENV: &str = "LATCH_MANAGED_POLICY";

/// The managed policy's path: [`MANAGED_PATH`] (or, in debug builds,
/// `LATCH_MANAGED_POLICY`).
pub fn path() -> PathBuf {
    #[cfg(debug_assertions)]
    if let Some(p) = std::env::var_os(MANAGED_PATH_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from(MANAGED_PATH)
}

/// Why a managed file is refused.
#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error("{path} is owned by uid {uid}, not root: only root may own the managed policy and the folders above it")]
    NotRoot { path: String, uid: u32 },
    #[error(
        "{path} is writable by {who} (mode {mode:o}): the managed policy and the folders above it must be writable by \
         root only (chmod go-w)"
    )]
    Writable { path: String, who: &'static str, mode: u32 },
    #[error("cannot read {path}: {source} (it must be readable by everyone: chmod 644)")]
    Unreadable { path: String, source: std::io::Error },
    #[error("{report}")]
    Invalid { report: String },
}

/// What the managed file gives.
#[derive(Clone, Debug, Default)]
pub enum State {
    /// There is no managed file: the user's policy alone.
    #[default]
    Absent,
    /// In force above the user's.
    InForce { path: PathBuf, policy: Box<Policy> },
    /// There is a file but it cannot be used: every call is denied.
    Refused { path: PathBuf, why: String },
}

impl State {
    /// The layer to put above the user's policy, if any.
    pub fn layer(&self) -> Option<Policy> {
        match self {
            State::Absent => None,
            State::InForce { policy, .. } => Some((**policy).clone()),
            State::Refused { why, .. } => Some(Policy::lockdown(why)),
        }
    }

    /// For `latch status` and `doctor`: `None` without a managed file.
    pub fn describe(&self) -> Option<String> {
        match self {
            State::Absent => None,
            State::InForce { path, policy } => {
                let n = policy.rule_count();
                Some(format!(
                    "in force: {} ({n} rule{}), layered above your policy; your file can only tighten it",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                ))
            }
            State::Refused { path, why } => Some(format!(
                "REFUSED: {} cannot be used, so every call is denied until whoever manages Latch here fixes it: {why}",
                path.display()
            )),
        }
    }
}

/// What identifies one version of the file, its owner and mode included
/// (a `chmod g+w` is noticed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    mtime: Option<SystemTime>,
    ctime: (i64, i64),
    len: u64,
    ino: u64,
    mode: u32,
    uid: u32,
    /// Owner, mode and identity of every folder above it.
    folders: u64,
}

/// The file's stamp; `None` when it is not there (a folder above it that
/// changes owner or mode changes the stamp too).
pub fn stamp(path: &Path) -> Option<Stamp> {
    use std::hash::{Hash, Hasher};
    let m = std::fs::metadata(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Ok(real) = std::fs::canonicalize(path) {
        for dir in real.ancestors().skip(1) {
            if let Ok(d) = std::fs::metadata(dir) {
                (d.ino(), d.uid(), d.gid(), d.mode()).hash(&mut h);
            }
        }
    }
    Some(Stamp {
        mtime: m.modified().ok(),
        ctime: (m.ctime(), m.ctime_nsec()),
        len: m.len(),
        ino: m.ino(),
        mode: m.mode(),
        uid: m.uid(),
        folders: h.finish(),
    })
}

/// Reads the managed file at `path`: absent, in force, or refused (with
/// why). Blocking IO: call it off the runtime.
pub fn load(path: &Path) -> State {
    match read(path) {
        Ok(None) => State::Absent,
        Ok(Some(policy)) => State::InForce { path: path.to_owned(), policy: Box::new(policy) },
        Err(e) => State::Refused { path: path.to_owned(), why: e.to_string() },
    }
}

/// The file's policy, `None` when there is no file.
pub fn read(path: &Path) -> Result<Option<Policy>, ManagedError> {
    let shown = path.display().to_string();
    let unreadable = |source| ManagedError::Unreadable { path: shown.clone(), source };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
        Ok(_) => {}
    }
    let real = std::fs::canonicalize(path).map_err(unreadable)?;
    // Every folder above it, then the file itself (symlinks resolved).
    for p in real.ancestors().collect::<Vec<_>>().into_iter().rev() {
        check_owner(p)?;
    }
    let text = std::fs::read_to_string(&real).map_err(unreadable)?;
    let policy = Policy::parse(&text).map_err(|e| ManagedError::Invalid { report: e.render(&shown, &text) })?;
    Ok(Some(policy))
}

fn check_owner(p: &Path) -> Result<(), ManagedError> {
    let shown = p.display().to_string();
    let m = std::fs::metadata(p).map_err(|source| ManagedError::Unreadable { path: shown.clone(), source })?;
    if m.uid() != 0 {
        return Err(ManagedError::NotRoot { path: shown, uid: m.uid() });
    }
    let mode = m.permissions().mode();
    let sticky_dir = m.is_dir() && mode & 0o1000 != 0;
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        _ if sticky_dir => return Ok(()),
        (true, true) => "its group and others",
        (true, false) => "its group",
        (false, true) => "others",
        (false, false) => return Ok(()),
    };
    Err(ManagedError::Writable { path: shown, who, mode: mode & 0o7777 })
}

/// `user` with the managed layer above it, both protecting `protected`
/// (the daemon's `identity::protected`).
pub fn apply(user: Policy, state: &State, protected: latch_core::policy::Protected) -> Policy {
    match state.layer() {
        None => user,
        Some(m) => {
            let mut p = Policy::layered(m, user);
            p.set_protected(protected);
            p
        }
    }
}

/// What a pending approval keeps to show: the redacted arguments, the
/// reasons, and whether the managed layer alone asks (an "always" answer
/// could not allow such a call: `answers::answer` refuses it).
pub(crate) fn summary_of(
    redacted: &serde_json::Value,
    reasons: &[String],
    managed: Option<latch_core::Decision>,
) -> serde_json::Value {
    let mut s = serde_json::json!({"args": redacted, "reasons": reasons});
    if managed.is_some_and(|d| d != latch_core::Decision::Allow) {
        s[MANAGED_ASKS] = serde_json::Value::Bool(true);
    }
    s
}

/// The summary's key saying that the managed layer alone asks.
pub(crate) const MANAGED_ASKS: &str = "managed_asks";

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("latch-managed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    fn root() -> bool {
        // SAFETY: getuid has no preconditions.
        unsafe { libc::getuid() == 0 }
    }

    #[test]
    fn no_file_is_no_layer_and_a_bad_one_is_refused() {
        let d = dir("states");
        let f = d.join("managed.toml");
        assert!(matches!(load(&f), State::Absent));
        std::fs::write(&f, "[defaults]\nexecute = \"deny\"\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let ok = load(&f);
        if root() {
            assert!(matches!(ok, State::InForce { .. }), "{ok:?}");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).unwrap();
            let s = load(&f);
            assert!(s.describe().unwrap().contains("writable by its group"), "{s:?}");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(&f, "[defaults]\nexecute = \"deny\"\n[[rule]]\nefect = \"allow\"\n").unwrap();
            let s = load(&f);
            assert!(s.describe().unwrap().contains(":4:"), "the line is named: {s:?}");
            assert!(s.layer().is_some(), "a refused file still layers: the lockdown");
        } else {
            assert!(matches!(ok, State::Refused { .. }), "not root's: {ok:?}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
