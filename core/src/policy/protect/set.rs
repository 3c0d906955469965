//! What self-protection protects: Latch's own files, the `latch` binary,
//! client configs and hook settings, and the daemon's processes.

use std::path::{Path, PathBuf};

use crate::path::FileId;

/// How a protected path is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Latch's own: any access is denied.
    Latch,
    /// The `latch` binary: any access is denied, and running it is
    /// running `latch`.
    Binary,
    /// A client config or hook settings file: writes are denied.
    Config,
}

/// What the daemon tells the policy about the files to protect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protected {
    /// Latch's own paths, absolute: policy file, database, socket, data
    /// folder, binary (and their symlink-resolved forms).
    pub paths: Vec<String>,
    /// The user's home folder, for `~/…` and `$HOME/…` spellings.
    pub home: Option<String>,
    /// Client config and hook settings files, absolute (writes denied).
    pub configs: Vec<String>,
    /// The `latch` binary's paths (also in `paths`), to recognise it run
    /// through a symlink or its full path.
    pub binary: Vec<String>,
    /// Identities of the protected files that exist (hard links).
    pub files: Vec<(FileId, Kind)>,
    /// The daemon's process ids (a `kill` aimed at one stops Latch).
    pub pids: Vec<u32>,
    /// The file system compares names case-insensitively.
    pub case_insensitive: bool,
}

/// Where Latch keeps its own files, as plain paths: the daemon fills this
/// from its configuration (the wire crate's `Paths`), so the core never
/// sees how they are found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatchPaths {
    pub policy: PathBuf,
    pub database: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub data_dir: PathBuf,
}

impl Protected {
    /// Latch's own files from its [`LatchPaths`]: policy file, database,
    /// socket, log and data folder, plus the `latch` binary when given
    /// (`std::env::current_exe()`), and the home folder for `~/…` spellings
    /// (`$HOME`). No IO.
    pub fn from_paths(paths: &LatchPaths, home: Option<&Path>, binary: Option<&Path>) -> Protected {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let mut out: Vec<String> =
            [&paths.policy, &paths.database, &paths.socket, &paths.log, &paths.data_dir].iter().map(|p| s(p)).collect();
        if let Some(dir) = paths.policy.parent() {
            // The policy's folder: an editor's swap file or a `mv` over it.
            out.push(s(dir));
        }
        if let Some(dir) = paths.socket.parent() {
            out.push(s(dir));
        }
        out.extend(binary.map(s));
        out.dedup();
        Protected { paths: out, home: home.map(s), binary: binary.map(s).into_iter().collect(), ..Protected::default() }
    }
}
