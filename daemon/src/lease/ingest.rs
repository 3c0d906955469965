//! Reading shims' lease journals back: at start-up (whatever the last
//! daemon left) and when a shim's connection closes. Rows not in the log
//! are recorded; the files are then removed. A line that is not a row (a
//! torn write, another process's garbage) is skipped and counted.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use latch_proto::lease::LocalRow;

use crate::shared::{Shared, event_now};

/// Most of one journal file read.
const MAX_FILE: u64 = 64 << 20;
/// Longest line read as a row.
const MAX_LINE: usize = 1 << 20;

/// Which rows to record.
pub(crate) type Want = Box<dyn Fn(&LocalRow) -> bool + Send>;

/// What a journal file holds.
#[derive(Default)]
struct Journaled {
    rows: Vec<LocalRow>,
    voided: HashSet<String>,
    skipped: usize,
}

/// The journal files in `dir` (of `prefix` only, when given).
fn journal_files(dir: &Path, prefix: Option<&str>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".jsonl") && prefix.is_none_or(|x| name.starts_with(&format!("{x}.")))
        })
        .collect();
    out.sort();
    out
}

fn read_file(path: &Path, out: &mut Journaled) {
    let Ok(f) = std::fs::File::open(path) else { return };
    let mut r = BufReader::new(f.take(MAX_FILE));
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE || !line.ends_with(b"\n") {
            out.skipped += 1;
            // The rest of an over-long line.
            if line.len() > MAX_LINE {
                let mut rest = Vec::new();
                let _ = r.read_until(b'\n', &mut rest);
            }
            continue;
        }
        #[derive(serde::Deserialize)]
        struct Void {
            void: String,
        }
        if let Ok(row) = serde_json::from_slice::<LocalRow>(&line) {
            out.rows.push(row);
        } else if let Ok(v) = serde_json::from_slice::<Void>(&line) {
            out.voided.insert(v.void);
        } else {
            out.skipped += 1;
        }
    }
}

/// Records the rows of the journal files in `dir` that `want`, then
/// removes the files. Rows are checked: the call id must be the file's
/// prefix and the row's number.
pub(crate) async fn files(shared: &Arc<Shared>, dir: PathBuf, prefix: Option<String>, want: Want) {
    let read = tokio::task::spawn_blocking(move || {
        let files = journal_files(&dir, prefix.as_deref());
        let mut all = Journaled::default();
        for f in &files {
            let mut one = Journaled::default();
            read_file(f, &mut one);
            let file_prefix = f.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('.').next()).unwrap_or("");
            all.skipped += one.skipped;
            for row in one.rows {
                if row.call_id == format!("{file_prefix}-{}", row.n) {
                    all.rows.push(row);
                } else {
                    all.skipped += 1;
                }
            }
            all.voided.extend(one.voided);
        }
        (files, all)
    })
    .await;
    let Ok((files, mut all)) = read else { return };
    all.rows.retain(|r| !all.voided.contains(&r.call_id) && want(r));
    let mut ok = true;
    for row in &all.rows {
        let server = row_server(row);
        if let Err(e) = shared.audit.insert(crate::lease::event_of(row, &server.0, &server.1)).await {
            tracing::error!("could not record the shim's row {} from its journal: {e}", row.call_id);
            ok = false;
        }
    }
    if all.skipped > 0 {
        let detail = Some(format!("{} line(s) of shim lease journals were not rows and were skipped", all.skipped));
        shared.record(crate::audit::NewEvent { kind: "journal", detail, ..event_now() }).await;
    }
    // Kept when a row could not be recorded: read again next time.
    if ok {
        tokio::task::spawn_blocking(move || {
            for f in files {
                let _ = std::fs::remove_file(f);
            }
        });
    }
}

fn row_server(row: &LocalRow) -> (String, String) {
    (row.server.clone(), row.session.clone())
}

/// At start-up, before the socket opens: the rows the last daemon's shims
/// journaled that are not in the log (found by their call id in the
/// rows' detail).
pub(crate) async fn at_start(shared: &Arc<Shared>) {
    let dir = crate::lease::dir(&shared.paths.data_dir);
    let db = shared.paths.database.clone();
    let dir2 = dir.clone();
    let known = tokio::task::spawn_blocking(move || recorded_ids(&db, &dir2)).await.unwrap_or_default();
    let want = move |row: &LocalRow| !known.contains(&row.call_id);
    files(shared, dir, None, Box::new(want)).await;
}

/// Call ids of lease rows already in the log, from the earliest row time
/// of the journals on.
fn recorded_ids(db: &Path, dir: &Path) -> HashSet<String> {
    let mut earliest = i64::MAX;
    for f in journal_files(dir, None) {
        let mut one = Journaled::default();
        read_file(&f, &mut one);
        earliest = one.rows.iter().map(|r| r.time_ms).fold(earliest, i64::min);
    }
    if earliest == i64::MAX {
        return HashSet::new();
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, flags) else { return HashSet::new() };
    let Ok(mut st) =
        conn.prepare("SELECT detail FROM events WHERE time_ms >= ?1 AND kind = 'call' AND detail LIKE 'lease call %'")
    else {
        return HashSet::new();
    };
    // A minute of slack for clocks.
    let rows = st.query_map([earliest.saturating_sub(60_000)], |r| r.get::<_, Option<String>>(0));
    match rows {
        Ok(rows) => rows
            .filter_map(|r| r.ok().flatten())
            .filter_map(|d| d.strip_prefix("lease call ").map(str::to_owned))
            .collect(),
        Err(_) => HashSet::new(),
    }
}
