//! A damaged audit database: telling damage from other errors, naming it
//! (which pages and rows), and saying what a person should do.
//!
//! A log Latch cannot trust or extend must not let calls run: the daemon
//! still starts, so that `latch status`, the console and the daemon's log
//! can say what is wrong, but every call is refused until the file is
//! repaired or moved aside ([`super::Audit::insert`] fails).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, ErrorCode, OpenFlags};

/// Most `quick_check` lines kept.
const MAX_PROBLEMS: usize = 20;

/// What is wrong with a database file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// SQLite's words, as `quick_check` or the failing statement gave them
    /// ("database disk image is malformed", "Tree 2 page 5 cell 0: …").
    pub problems: Vec<String>,
    /// Rows that could still be read in order, and the last one's id,
    /// before the first that could not.
    pub readable_rows: u64,
    pub last_readable_id: Option<i64>,
    /// Reading the rows in order stopped at an error.
    pub rows_stopped: bool,
}

/// The damage a running daemon found (SQLite's words), shared by its
/// handles.
pub(crate) type Shared = Arc<Mutex<Option<String>>>;

/// True for errors that mean the file itself is damaged (as opposed to
/// busy, full or missing).
pub fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase))
}

/// What a person should do with a damaged log at `path`.
pub fn what_to_do(path: &Path) -> String {
    format!(
        "stop the daemon, keep a copy of {p} for inspection (rows that can still be read come out with `latch audit \
         export --database COPY`), move {p} aside and start the daemon again: a new log begins",
        p = path.display()
    )
}

/// The finding a daemon shows for damage it met.
pub(crate) fn finding(path: &Path, why: &str) -> String {
    format!(
        "the audit log {} is damaged or unusable ({why}): every call is refused until it is repaired. To repair: {}. \
         `latch audit verify` names the damage",
        path.display(),
        what_to_do(path)
    )
}

/// Records damage met at run time (the first is kept), and says so once.
pub(crate) fn note(shared: &Shared, path: &Path, why: &str) {
    let mut d = shared.lock().unwrap_or_else(|e| e.into_inner());
    if d.is_none() {
        tracing::warn!("{}", finding(path, why));
        *d = Some(why.to_owned());
    }
}

/// The damage noted so far, in SQLite's words.
pub(crate) fn noted(shared: &Shared) -> Option<String> {
    shared.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Checks the file at `path` read-only: `None` when SQLite finds nothing
/// wrong. Runs `PRAGMA quick_check` (every page, no index cross-check) and
/// reads the rows in order to say how far they can be read.
pub fn inspect(path: &Path) -> Option<Damage> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(path, flags) {
        Ok(c) => c,
        Err(e) if is_damage(&e) => return Some(damage(vec![e.to_string()], (0, None, true))),
        Err(_) => return None,
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    let mut problems = match quick_check(&conn) {
        Ok(lines) => lines,
        Err(e) if is_damage(&e) => vec![e.to_string()],
        Err(_) => return None,
    };
    let (rows, last, error) = readable_rows(&conn);
    let stopped = error.is_some();
    if let Some(e) = error {
        let text = e.to_string();
        if is_damage(&e) && !problems.contains(&text) {
            problems.push(text);
        }
    }
    (!problems.is_empty()).then(|| damage(problems, (rows, last, stopped)))
}

fn damage(problems: Vec<String>, (readable_rows, last_readable_id, rows_stopped): (u64, Option<i64>, bool)) -> Damage {
    Damage { problems, readable_rows, last_readable_id, rows_stopped }
}

/// `quick_check`'s complaints; empty when it says `ok`.
fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA quick_check({MAX_PROBLEMS})"))?;
    let lines: Vec<String> = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(if lines.len() == 1 && lines[0] == "ok" { Vec::new() } else { lines })
}

/// Reads `events` in id order until the end or the first error.
fn readable_rows(conn: &Connection) -> (u64, Option<i64>, Option<rusqlite::Error>) {
    let (mut n, mut last) = (0u64, None);
    let mut stmt = match conn.prepare("SELECT id FROM events ORDER BY id") {
        Ok(s) => s,
        Err(e) => return (0, None, Some(e)),
    };
    let mut rows = match stmt.query([]) {
        Ok(r) => r,
        Err(e) => return (0, None, Some(e)),
    };
    loop {
        match rows.next() {
            Ok(Some(r)) => {
                last = r.get(0).ok();
                n += 1;
            }
            Ok(None) => return (n, last, None),
            Err(e) => return (n, last, Some(e)),
        }
    }
}

impl Damage {
    /// The damage in words, one line each, for `latch audit verify`.
    pub fn describe(&self, path: &Path) -> Vec<String> {
        let mut out = vec![format!("{}: DAMAGED: SQLite cannot read all of it", path.display())];
        for p in &self.problems {
            let meaning = if p.contains("malformed") {
                " (the file's pages are not what SQLite wrote: it was overwritten, truncated or damaged on disk)"
            } else if p.contains("not a database") {
                " (its header is not SQLite's: it was overwritten)"
            } else {
                ""
            };
            out.push(format!("  {p}{meaning}"));
        }
        out.push(match (self.last_readable_id, self.rows_stopped) {
            (Some(id), true) => {
                format!(
                    "  rows readable in order: {} (up to row {id}); the row after it cannot be read",
                    self.readable_rows
                )
            }
            (None, true) => "  no row can be read".to_owned(),
            (_, false) => format!(
                "  all {} rows can be read in order; the damage is elsewhere in the file (an index or unused pages)",
                self.readable_rows
            ),
        });
        out.push(format!("What to do: {}.", what_to_do(path)));
        out
    }
}
