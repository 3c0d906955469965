//! The policy file on disk: created with commented defaults on first run,
//! loaded, watched for changes, and appended to when someone answers
//! "always".
//!
//! A file that fails to validate never replaces the policy in force: the
//! daemon keeps the previous one (the built-in defaults at start-up) and
//! reports exactly where the error is, in its log, `latch status` and the
//! console.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

use latch_core::Policy;
use latch_core::policy::{DEFAULT_POLICY, NewRule, Protected, append_rule};
use latch_proto::paths::Paths;

/// What identifies one version of the file, cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    ino: u64,
}

pub fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp { mtime: m.modified().ok(), len: m.len(), ino: m.ino() })
}

/// Writes the commented default policy if there is no file yet.
pub fn ensure_default(path: &Path) -> std::io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(DEFAULT_POLICY.as_bytes())?;
    Ok(true)
}

/// Reads and validates the file. The error is a ready-to-print report with
/// file, line, column and fix.
/// The text is returned too: it is what the accepted policy is compared
/// with.
pub fn load_text(paths: &Paths) -> Result<(String, Policy), String> {
    let path = &paths.policy;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut policy = Policy::parse(&text).map_err(|e| e.render(&path.display().to_string(), &text))?;
    policy.set_protected(protected(paths));
    Ok((text, policy))
}

/// The built-in policy, protecting Latch's own files.
pub fn builtin(paths: &Paths) -> Policy {
    let mut p = Policy::builtin();
    p.set_protected(protected(paths));
    p
}

pub(crate) fn protected(paths: &Paths) -> Protected {
    crate::identity::protected(paths)
}

/// Replaces the file's text, atomically (a temporary file renamed over
/// the old one), private to the user.
pub fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("toml.latch-edit-tmp");
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Appends an "always" rule, atomically (a temporary file renamed over the
/// old one), so a half-written policy is never read.
pub fn write_rule(path: &Path, rule: &NewRule) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| DEFAULT_POLICY.to_owned());
    let new = append_rule(&text, rule);
    let tmp = path.with_extension("toml.latch-tmp");
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(new.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
