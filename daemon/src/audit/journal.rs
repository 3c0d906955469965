//! The journal: an append-only file of rows that are recorded but perhaps
//! not yet committed to SQLite.
//!
//! A row is appended with one `write(2)` and is then durable against the
//! death of any process (it is in the kernel's page cache, as a committed
//! WAL frame is with `synchronous = NORMAL`); the writer thread commits it to
//! SQLite in a group behind, and a daemon that starts ingests whatever the
//! journal holds beyond the newest committed row before it decides anything.
//! Rows carry their id, fixed when they are appended, so the order of the
//! log (and so its hash chain, computed when rows are committed) is the
//! order of the journal.
//!
//! A line that cannot be read (a torn end after a crash of the machine or a
//! short write on a full disk that could not be cut back) is skipped and
//! noted; every other line is ingested.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::event::NewEvent;

/// The journal's path beside the database (not SQLite's own `-journal`).
pub fn path_of(database: &Path) -> PathBuf {
    PathBuf::from(format!("{}.journal", database.display()))
}

/// One journal line: a row and its id.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Entry {
    pub(super) id: i64,
    pub(super) time_ms: i64,
    pub(super) kind: String,
    pub(super) server: String,
    pub(super) session: String,
    pub(super) tool: String,
    pub(super) class: String,
    pub(super) decision: String,
    pub(super) reasons: Vec<String>,
    pub(super) args: String,
    pub(super) args_hash: String,
    pub(super) rule: Option<String>,
    pub(super) approval_id: Option<String>,
    pub(super) outcome: Option<String>,
    pub(super) answered_by: Option<String>,
    pub(super) detail: Option<String>,
}

/// The line for `ev` with id `id` (newline included), written without
/// copying the row.
pub(super) fn line(id: i64, ev: &NewEvent) -> Vec<u8> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        id: i64,
        time_ms: i64,
        kind: &'a str,
        server: &'a str,
        session: &'a str,
        tool: &'a str,
        class: &'a str,
        decision: &'a str,
        reasons: &'a [String],
        args: &'a str,
        args_hash: &'a str,
        rule: Option<&'a str>,
        approval_id: Option<&'a str>,
        outcome: Option<&'a str>,
        answered_by: Option<&'a str>,
        detail: Option<&'a str>,
    }
    let b = Borrowed {
        id,
        time_ms: ev.time_ms,
        kind: ev.kind,
        server: &ev.server,
        session: &ev.session,
        tool: &ev.tool,
        class: &ev.class,
        decision: &ev.decision,
        reasons: &ev.reasons,
        args: &ev.args,
        args_hash: &ev.args_hash,
        rule: ev.rule.as_deref(),
        approval_id: ev.approval_id.as_deref(),
        outcome: ev.outcome,
        answered_by: ev.answered_by.as_deref(),
        detail: ev.detail.as_deref(),
    };
    let mut out = Vec::with_capacity(256 + ev.args.len());
    // Serialising plain strings and numbers cannot fail.
    let _ = serde_json::to_writer(&mut out, &b);
    out.push(b'\n');
    out
}

/// The open journal: appends, and cuts back what a failed append left.
pub(super) struct Journal {
    file: File,
    /// Bytes in the file that hold whole lines.
    len: u64,
}

impl Journal {
    /// Opens (creating, private) the journal for appending. Refuses a
    /// symbolic link.
    pub(super) fn open(path: &Path) -> std::io::Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(Journal { file, len })
    }

    /// Appends one line (one `write(2)` unless the kernel takes less). On
    /// failure the file is cut back to its last whole line, so a torn line
    /// never stays behind one that follows.
    pub(super) fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self.file.write_all(line) {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Err(cut) = self.file.set_len(self.len) {
                    tracing::error!("the audit journal could not be cut back after a failed write: {cut}");
                }
                Err(e)
            }
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Empties the journal: every row in it is committed.
    pub(super) fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }
}

/// What a journal held: its rows in order, and the lines that could not be
/// read (their line numbers and lengths).
#[derive(Debug, Default)]
pub(super) struct Read {
    pub(super) entries: Vec<Entry>,
    pub(super) skipped: Vec<(usize, usize)>,
}

/// Reads the journal at `path` (none: empty).
pub(super) fn read(path: &Path) -> std::io::Result<Read> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read::default()),
        Err(e) => return Err(e),
    };
    let mut out = Read::default();
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        n += 1;
        // A line without its newline was cut short.
        let whole = buf.last() == Some(&b'\n');
        match serde_json::from_slice::<Entry>(&buf) {
            Ok(e) if whole => out.entries.push(e),
            _ => out.skipped.push((n, buf.len())),
        }
    }
    Ok(out)
}
