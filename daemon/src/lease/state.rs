//! The daemon's lease state, behind the engine's lock: the epoch file,
//! the prefixes of the leased connections, and the rows seen of each. A
//! leaf: it imports no component.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The folder of the epoch file and the shims' journals.
pub(crate) fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("lease")
}

/// The audit detail of a row a shim decided: how its call id is found
/// again (deduplication after a crash).
pub(crate) fn detail(call_id: &str) -> String {
    format!("lease call {call_id}")
}

/// The daemon's side of the leases.
#[derive(Default)]
pub(crate) struct State {
    /// Off: `LATCH_LEASE=0`, or the epoch file could not be made.
    pub(crate) enabled: bool,
    pub(crate) epoch: u64,
    pub(crate) file: Option<(File, u64, u64)>,
    pub(crate) dir: PathBuf,
    /// The policy text in force (what shims parse).
    pub(crate) policy_text: String,
    /// The call-id prefix of each leased connection.
    pub(crate) conns: HashMap<u64, String>,
    /// Highest row number recorded per prefix.
    pub(crate) seen: HashMap<String, u64>,
    /// Rows a shim sent that could not be recorded: its journal is read
    /// for them when it goes away.
    pub(crate) missed: HashSet<String>,
    /// The protected set as leases carry it, made once (it is read from
    /// the file system).
    pub(crate) protected: Option<latch_proto::lease::LeaseProtected>,
    /// The audit log refused a row: no lease is issued until it records
    /// one again ([`super::log_accepted`]).
    pub(crate) withheld: bool,
    /// Makes this daemon's prefixes its own.
    origin: u64,
}

impl State {
    /// Creates the folder and the epoch file, with a first epoch no
    /// earlier daemon used (so no lease of theirs is good).
    pub(crate) fn open(data_dir: &Path, policy_text: String) -> State {
        let origin = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let mut s = State { dir: dir(data_dir), policy_text, origin, epoch: origin, ..State::default() };
        if std::env::var("LATCH_LEASE").is_ok_and(|v| v == "0") {
            return s;
        }
        match open_epoch(&s.dir) {
            Ok(f) => {
                s.file = Some(f);
                s.enabled = true;
                s.bump();
            }
            Err(e) => tracing::warn!("no leases (every call asks the daemon): {}: {e}", s.dir.display()),
        }
        s
    }

    /// Ends every lease now: the epoch file holds a new number before this
    /// returns. A file that cannot be written is emptied, which ends them
    /// too (a shim reads fewer than 8 bytes), and leases stop until a
    /// later bump writes it again (a full disk that has room again): the
    /// new number is above every one issued before, so no earlier lease is
    /// good again.
    pub(crate) fn bump(&mut self) {
        self.epoch += 1;
        let Some((f, _, _)) = &self.file else { return };
        let ok = matches!(f.write_at(&self.epoch.to_le_bytes(), 0), Ok(8));
        if !ok && self.enabled {
            tracing::error!("the lease epoch file cannot be written; leases end until it can");
        } else if ok && !self.enabled {
            tracing::info!("the lease epoch file can be written again; leases resume");
        }
        if !ok {
            let _ = f.set_len(0);
        }
        self.enabled = ok;
    }

    pub(crate) fn prefix(&mut self, conn: u64) -> String {
        let origin = self.origin;
        self.conns.entry(conn).or_insert_with(|| format!("{origin:x}x{conn}")).clone()
    }
}

fn open_epoch(dir: &Path) -> std::io::Result<(File, u64, u64)> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let path = dir.join("epoch");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    let m = f.metadata()?;
    Ok((f, m.dev(), m.ino()))
}
