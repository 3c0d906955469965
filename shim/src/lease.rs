//! A lease in the shim (issue 16): deciding a plain allow without asking
//! the daemon, exactly as the daemon would, and recording it first.
//!
//! A call is decided here only when all hold, else it goes to the daemon:
//! the epoch file still holds the lease's epoch; the tool is leased and
//! the definition this shim relays is the one the daemon holds (same
//! hash); the arguments are at most [`MAX_ARGS`] bytes and their canonical
//! hash needs no raw digits; the core, with the policy text in force (and
//! the built-in floor when the daemon bounds it), evaluates it allow and
//! [`latch_core::Policy::lease_allows`] says no state of the daemon could
//! change that; the row is appended to the journal; and the epoch is
//! still the lease's after the append.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};

use latch_core::policy::{Facts, Place, Protected};
use latch_core::redact::{bounded, redact_text, redact_value};
use latch_core::{Call, Policy, ToolDef, Verdict};
use latch_proto::lease::{Lease, LeaseProtected, LocalRow};
use serde_json::Value;

use crate::journal::Journal;

/// Largest arguments decided in the shim.
pub(crate) const MAX_ARGS: usize = 64 << 10;

pub(crate) struct Leased {
    epoch: u64,
    epoch_file: File,
    /// Leased tools: name → the daemon's definition hash.
    tools: HashMap<String, String>,
    /// This shim's definitions, read once per listing.
    defs: HashMap<String, Option<ToolDef>>,
    policy: Policy,
    floor: Option<Policy>,
    /// What `policy` and `floor` were made from: a lease that brings the
    /// same is not parsed again.
    made_from: (String, bool, LeaseProtected),
    /// The server's working directory, for argument keys read as paths.
    cwd: Option<String>,
    journal: Journal,
    next: u64,
    server: String,
    session: String,
}

/// Why a lease could not be taken up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LeaseError {
    #[error("the epoch file {0}: {1}")]
    Epoch(String, std::io::Error),
    #[error("the epoch file {0} is not the daemon's")]
    NotTheDaemons(String),
    #[error("the policy text does not parse")]
    Policy,
}

impl Leased {
    /// Takes up `lease`; the journal and row numbers of `previous` carry on
    /// when its prefix is the same.
    pub(crate) fn new(lease: Lease, previous: Option<Leased>) -> Result<Leased, LeaseError> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lease.epoch_file)
            .map_err(|e| LeaseError::Epoch(lease.epoch_file.clone(), e))?;
        let m = f.metadata().map_err(|e| LeaseError::Epoch(lease.epoch_file.clone(), e))?;
        if m.dev() != lease.epoch_dev || m.ino() != lease.epoch_ino {
            return Err(LeaseError::NotTheDaemons(lease.epoch_file));
        }
        let made_from = (lease.policy, lease.floor, lease.protected);
        // Parsing a policy takes a while: the previous lease's is kept when
        // it was made from the same.
        let (policy, floor, previous) = match previous {
            Some(p) if p.made_from == made_from => (p.policy, p.floor, Some((p.journal, p.next))),
            p => {
                let (policy, floor) = parse(&made_from)?;
                (policy, floor, p.map(|p| (p.journal, p.next)))
            }
        };
        let (journal, next) = match previous {
            Some((journal, next)) if journal.prefix() == lease.prefix => (journal, next),
            _ => (Journal::new(std::path::Path::new(&lease.journal_dir), &lease.prefix), 0),
        };
        Ok(Leased {
            epoch: lease.epoch,
            epoch_file: f,
            tools: lease.tools.into_iter().map(|t| (t.name, t.def_hash)).collect(),
            defs: HashMap::new(),
            policy,
            floor,
            made_from,
            cwd: lease.cwd,
            journal,
            next,
            server: lease.server,
            session: lease.session,
        })
    }

    /// The lease is still good: the epoch file holds its epoch.
    pub(crate) fn valid(&self) -> bool {
        let mut b = [0u8; 8];
        matches!(self.epoch_file.read_at(&mut b, 0), Ok(8)) && u64::from_le_bytes(b) == self.epoch
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The server listed its tools again: definitions are read anew.
    pub(crate) fn tools_listed(&mut self) {
        self.defs.clear();
    }

    pub(crate) fn acked(&mut self, upto: u64) {
        self.journal.acked(upto);
    }

    /// Decides a call of `tool` (arguments `args`, raw JSON; `def`: the
    /// definition this shim relayed) under the lease: the row, journaled,
    /// when it is a plain allow; `None`: the daemon decides.
    pub(crate) fn decide(&mut self, tool: &str, def: Option<&Value>, args: &str) -> Option<LocalRow> {
        if args.len() > MAX_ARGS || !self.journal.has_room() || !self.valid() {
            return None;
        }
        let leased = self.tools.get(tool)?;
        let def = self.defs.entry(tool.to_owned()).or_insert_with(|| def.and_then(ToolDef::from_value)).as_ref()?;
        if def.hash != *leased {
            return None;
        }
        let args: Value = serde_json::from_str(args).ok()?;
        if latch_core::canonical::lossy(&args) {
            return None;
        }
        let call = Call { server: &self.server, tool, args: &args };
        let verdict = evaluate(&self.policy, self.floor.as_ref(), self.cwd.as_deref(), &call, def)?;
        // The file system only for a call the shim would decide.
        if self.cwd.as_deref().is_some_and(|cwd| keys_linked(cwd, &args, 0)) {
            return None;
        }
        let n = self.next + 1;
        let call_id = format!("{}-{n}", self.journal.prefix());
        let reasons = verdict
            .classification
            .reasons
            .iter()
            .chain(&verdict.evaluation.reasons)
            .map(|r| redact_text(r).into_owned())
            .collect();
        let row = LocalRow {
            call_id,
            n,
            epoch: self.epoch,
            server: self.server.clone(),
            session: self.session.clone(),
            time_ms: now_ms(),
            tool: tool.to_owned(),
            class: verdict.classification.class.as_str().to_owned(),
            reasons,
            args: redact_value(&bounded(&args)).to_string(),
            args_hash: latch_core::canonical::hash(&args),
            rule: verdict.evaluation.rule,
        };
        let mut line = serde_json::to_vec(&row).ok()?;
        line.push(b'\n');
        self.journal.append(&line, n).ok()?;
        self.next = n;
        // A change that began while the row was written: the daemon
        // decides, and the row is void.
        if !self.valid() {
            let mut void = serde_json::to_vec(&serde_json::json!({ "void": row.call_id })).ok()?;
            void.push(b'\n');
            let _ = self.journal.append(&void, n);
            return None;
        }
        Some(row)
    }
}

/// The policy and its floor, as the daemon made them from the same.
fn parse((text, floor, p): &(String, bool, LeaseProtected)) -> Result<(Policy, Option<Policy>), LeaseError> {
    let protected = Protected {
        paths: p.paths.clone(),
        home: p.home.clone(),
        configs: p.configs.clone(),
        binary: p.binary.clone(),
        files: Vec::new(),
        pids: p.pids.clone(),
        case_insensitive: p.case_insensitive,
    };
    let mut policy = Policy::parse(text).map_err(|_| LeaseError::Policy)?;
    policy.set_protected(protected.clone());
    let floor = floor.then(|| {
        let mut f = Policy::builtin();
        f.set_protected(protected);
        f
    });
    Ok((policy, floor))
}

/// As the daemon evaluates: the policy, bounded by the floor (the stricter
/// wins); `None` unless a plain allow under both.
fn evaluate(
    policy: &Policy,
    floor: Option<&Policy>,
    cwd: Option<&str>,
    call: &Call<'_>,
    def: &ToolDef,
) -> Option<Verdict> {
    let plain = |p: &Policy| {
        let env = latch_core::path::PathEnv { cwd: cwd.map(str::to_owned), ..p.default_path_env().clone() };
        let place = Place::new(&env, None);
        let v = latch_core::decide_with(p, call, Some(def), &[], place, Facts::default());
        p.lease_allows(call, &v.classification, &v.evaluation).then_some(v)
    };
    let verdict = plain(policy)?;
    if let Some(floor) = floor {
        plain(floor)?;
    }
    Some(verdict)
}

/// True when a key of `args` names, in the server's working directory, a
/// symlink or a file with more than one name. Keys are read as paths
/// against that folder (`{"files": {PATH: CONTENT}}`), and such a name may
/// be one of Latch's files under another name, which only the daemon (it
/// compares identities) can tell; the shim's evaluation compares names. A
/// plain file or folder there is what its name says. Keys the lease lets
/// the shim decide are plain names (no `/`), so one `lstat` each.
fn keys_linked(cwd: &str, v: &Value, depth: usize) -> bool {
    use std::os::unix::fs::MetadataExt;
    match v {
        Value::Array(a) if depth < 32 => a.iter().any(|x| keys_linked(cwd, x, depth + 1)),
        Value::Object(o) if depth < 32 => o.iter().any(|(k, x)| {
            let linked = !k.is_empty()
                && k != "."
                && k != ".."
                && std::fs::symlink_metadata(std::path::Path::new(cwd).join(k))
                    .is_ok_and(|m| m.file_type().is_symlink() || (!m.is_dir() && m.nlink() > 1));
            linked || keys_linked(cwd, x, depth + 1)
        }),
        Value::Array(_) | Value::Object(_) => true,
        _ => false,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::keys_linked;
    use serde_json::json;

    #[test]
    fn a_key_that_is_a_link_in_the_folder_is_seen_at_any_depth() {
        let dir = std::env::temp_dir().join(format!("latch-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plain"), "x").unwrap();
        std::fs::write(dir.join("target"), "x").unwrap();
        std::os::unix::fs::symlink(dir.join("target"), dir.join("soft")).unwrap();
        std::fs::hard_link(dir.join("target"), dir.join("hard")).unwrap();
        std::fs::create_dir(dir.join("folder")).unwrap();
        let cwd = dir.to_str().unwrap();
        for plain in [json!({"plain": 1, "folder": 2, "missing": 3}), json!([{"a": {"b": "soft"}}]), json!("hard")] {
            assert!(!keys_linked(cwd, &plain, 0), "{plain}");
        }
        for linked in [json!({"soft": 1}), json!({"a": [{"hard": 1}]}), json!({"plain": {"target": {"soft": 0}}})] {
            // `target` itself has two names once `hard` exists.
            assert!(keys_linked(cwd, &linked, 0), "{linked}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
