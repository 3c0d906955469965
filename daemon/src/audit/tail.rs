//! Reading the committed log in chain order from a row on: what the OTLP
//! exporter sends on. On a reader connection of its own (blocking: call
//! from the blocking pool).

use std::path::Path;

use rusqlite::Connection;

use super::event::{AuditError, sql};
use super::open::open_reader;

/// A committed row as stored (already redacted), with its place in the
/// hash chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredRow {
    pub id: i64,
    pub prev_hash: String,
    pub hash: String,
    pub time_ms: i64,
    pub kind: String,
    pub server: String,
    pub session: String,
    pub tool: String,
    pub class: String,
    pub decision: String,
    /// JSON array of strings.
    pub reasons: String,
    /// Redacted JSON.
    pub args: String,
    pub args_hash: String,
    pub rule: Option<String>,
    pub approval_id: Option<String>,
    pub outcome: Option<String>,
    pub latency_us: Option<i64>,
    pub answered_by: Option<String>,
    pub answer: Option<String>,
    pub detail: Option<String>,
}

/// A reader of the log's tail.
pub struct Tail {
    conn: Connection,
}

impl Tail {
    pub fn open(path: &Path) -> Result<Tail, AuditError> {
        Ok(Tail { conn: open_reader(path)? })
    }

    /// The newest committed row's id (0 for none).
    pub fn newest(&self, path: &Path) -> Result<i64, AuditError> {
        self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0)).map_err(|e| sql(path, e))
    }

    /// The newest committed row of `kind`, if any.
    pub fn last_of_kind(&self, path: &Path, kind: &str) -> Result<Option<i64>, AuditError> {
        self.conn
            .query_row("SELECT MAX(id) FROM events WHERE kind = ?1", [kind], |r| r.get(0))
            .map_err(|e| sql(path, e))
    }

    /// Up to `limit` committed rows with `id >= from`, oldest first, and no
    /// more than about `max_bytes` of text (always at least one row).
    pub fn rows_from(
        &self,
        path: &Path,
        from: i64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<StoredRow>, AuditError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, prev_hash, hash, time_ms, kind, server, session, tool, class, decision, reasons, args, \
                 args_hash, rule, approval_id, outcome, latency_us, answered_by, answer, detail FROM events WHERE id \
                 >= ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| sql(path, e))?;
        let rows = stmt
            .query_map(rusqlite::params![from, limit], |r| {
                // Bytes that are not UTF-8 (an edited file) come out with
                // replacement characters rather than stopping the export.
                let opt = |i: usize| -> rusqlite::Result<Option<String>> {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                        rusqlite::types::ValueRef::Real(f) => Some(f.to_string()),
                        rusqlite::types::ValueRef::Blob(_) => None,
                    })
                };
                let text = |i: usize| -> rusqlite::Result<String> { Ok(opt(i)?.unwrap_or_default()) };
                Ok(StoredRow {
                    id: r.get(0)?,
                    prev_hash: text(1)?,
                    hash: text(2)?,
                    time_ms: r.get::<_, Option<i64>>(3).ok().flatten().unwrap_or_default(),
                    kind: text(4)?,
                    server: text(5)?,
                    session: text(6)?,
                    tool: text(7)?,
                    class: text(8)?,
                    decision: text(9)?,
                    reasons: text(10)?,
                    args: text(11)?,
                    args_hash: text(12)?,
                    rule: opt(13)?,
                    approval_id: opt(14)?,
                    outcome: opt(15)?,
                    latency_us: r.get(16).ok().flatten(),
                    answered_by: opt(17)?,
                    answer: opt(18)?,
                    detail: opt(19)?,
                })
            })
            .map_err(|e| sql(path, e))?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for row in rows {
            let row = row.map_err(|e| sql(path, e))?;
            bytes += row.args.len() + row.reasons.len() + row.detail.as_ref().map_or(0, String::len) + 512;
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(row);
        }
        Ok(out)
    }
}
