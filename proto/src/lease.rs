//! The lease (issue 16): what the daemon tells a shim so that it may decide
//! a plain allow itself, without a round trip, and the row such a call
//! leaves. See ARCHITECTURE.md, "The lease".

use serde::{Deserialize, Serialize};

/// What a shim needs to decide a call exactly as the daemon would, for the
/// tools listed, while the epoch file still holds `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Valid while the epoch file (`epoch_file`, whose device and inode
    /// are `epoch_dev`/`epoch_ino`) holds this number.
    pub epoch: u64,
    pub epoch_file: String,
    pub epoch_dev: u64,
    pub epoch_ino: u64,
    /// The shim's call ids are `PREFIX-N`; its journal files are
    /// `journal_dir/PREFIX.SEGMENT.jsonl`.
    pub prefix: String,
    pub journal_dir: String,
    /// The server's name and the session, as the daemon records them.
    pub server: String,
    pub session: String,
    /// The policy text in force, and whether the built-in defaults bound
    /// it (`floor`).
    pub policy: String,
    pub floor: bool,
    pub protected: LeaseProtected,
    /// The server's working directory as the daemon reads it: argument
    /// keys are read as paths relative to it.
    #[serde(default)]
    pub cwd: Option<String>,
    /// The tools that may be decided in the shim, with the hash of the
    /// definition the daemon holds for each.
    pub tools: Vec<LeaseTool>,
}

/// The protected set of self-protection, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseProtected {
    pub paths: Vec<String>,
    pub home: Option<String>,
    pub configs: Vec<String>,
    pub binary: Vec<String>,
    pub pids: Vec<u32>,
    pub case_insensitive: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTool {
    pub name: String,
    pub def_hash: String,
}

/// The audit row of a call a shim allowed under a lease: appended to the
/// shim's journal before the call is forwarded, and sent to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRow {
    /// `PREFIX-N`.
    pub call_id: String,
    /// `N`: increasing per prefix.
    pub n: u64,
    pub epoch: u64,
    /// The shim's server name and session (the daemon uses its own for
    /// rows that come over the socket).
    pub server: String,
    pub session: String,
    pub time_ms: i64,
    pub tool: String,
    pub class: String,
    pub reasons: Vec<String>,
    /// Redacted arguments, JSON text.
    pub args: String,
    pub args_hash: String,
    #[serde(default)]
    pub rule: Option<String>,
}
