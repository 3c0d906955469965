//! Start-up: the journal's rows that the last daemon did not commit are
//! committed before anything else happens, chained as they would have been.

use std::path::Path;

use rusqlite::Connection;

use super::event::{AuditError, sql};
use super::journal;
use super::writer::{INSERT_SQL, Row, insert_row};

/// What ingesting found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Ingested {
    /// Rows committed from the journal.
    pub(super) rows: usize,
    /// Lines that could not be read and were skipped.
    pub(super) skipped: usize,
}

/// The newest row id in the log (0 for none).
pub(super) fn newest_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))
}

/// Commits the rows of the journal at `journal` newer than the log's
/// newest, in one transaction, then a note row for any line skipped; moves
/// `chain` on. The journal is emptied by the caller once this commits.
pub(super) fn ingest(
    conn: &mut Connection,
    database: &Path,
    journal: &Path,
    chain: &mut String,
) -> Result<Ingested, AuditError> {
    let read = journal::read(journal).map_err(|e| AuditError::Io { path: journal.to_owned(), source: e })?;
    if read.entries.is_empty() && read.skipped.is_empty() {
        return Ok(Ingested::default());
    }
    let mut newest = newest_id(conn).map_err(|e| sql(database, e))?;
    let mut tip = chain.clone();
    let mut done = Ingested { rows: 0, skipped: read.skipped.len() };
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(INSERT_SQL)?;
            for e in &read.entries {
                // Committed before the last daemon stopped.
                if e.id <= newest {
                    continue;
                }
                let reasons = serde_json::to_string(&e.reasons).unwrap_or_else(|_| "[]".into());
                insert_row(&mut ins, e.id, &Row::of_entry(e, &reasons), &mut tip)?;
                newest = e.id;
                done.rows += 1;
            }
            if !read.skipped.is_empty() {
                let lines: Vec<String> =
                    read.skipped.iter().map(|(n, len)| format!("line {n} ({len} bytes)")).collect();
                let detail = format!(
                    "{} unreadable record(s) in the audit journal {} were skipped: {}. A record is cut short when \
                     the machine stops or the disk fills while it is written, before its call may run",
                    lines.len(),
                    journal.display(),
                    lines.join(", ")
                );
                tracing::warn!("{detail}");
                let note = journal::Entry {
                    id: newest + 1,
                    time_ms: crate::now_ms(),
                    kind: "journal".into(),
                    server: String::new(),
                    session: String::new(),
                    tool: String::new(),
                    class: String::new(),
                    decision: String::new(),
                    reasons: Vec::new(),
                    args: "null".into(),
                    args_hash: String::new(),
                    rule: None,
                    approval_id: None,
                    outcome: None,
                    answered_by: None,
                    detail: Some(detail),
                };
                insert_row(&mut ins, note.id, &Row::of_entry(&note, "[]"), &mut tip)?;
            }
        }
        tx.commit()
    })();
    result.map_err(|e| sql(database, e))?;
    *chain = tip;
    if done.rows > 0 {
        tracing::info!("{} audit row(s) recorded by the last daemon were committed from its journal", done.rows);
    }
    Ok(done)
}
