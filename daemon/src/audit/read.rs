//! Reading the log: verifying the chain, queries, export.

use std::path::{Path, PathBuf};

use latch_proto::{AuditFilter, AuditRow};

use super::cells::Cells;
use super::event::{AuditError, sql};
use super::open::open_reader;
use super::writer::{Content, seal_answered};
use super::{damage, retention};

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Every chained row checks out. `retained`: the log's first rows were
    /// removed by retention, and the checkpoint that says so.
    Intact { rows: u64, retained: Option<retention::Retained> },
    /// The first row where the chain breaks, and how.
    Broken { row: i64, problem: String },
    /// SQLite cannot read all of the file: which pages and rows.
    Damaged(damage::Damage),
}

/// Walks the chain from the oldest row, streaming (a million rows use no
/// more memory than ten), and names the first row that was changed, or next
/// to which a row was removed or inserted. Deleting the newest rows leaves
/// no trace here: nothing after them points back.
///
/// A log whose first rows are gone verifies only when a retention
/// checkpoint ([`retention`]) accounts for them: the first row must chain
/// to the last removed row the checkpoint names or, while a retention run
/// is still under way, the rows up to it must lead to that row's hash. The
/// checkpoint is a chained row itself, checked by the same walk.
///
/// A file SQLite cannot read completely is [`Verified::Damaged`], checked
/// first ([`damage::inspect`]) and also when the walk meets damage.
pub fn verify(path: &Path) -> Result<Verified, AuditError> {
    if let Some(d) = damage::inspect(path) {
        return Ok(Verified::Damaged(d));
    }
    let mut at = None;
    match verify_chain(path, &mut at) {
        // Overwritten bytes SQLite's check cannot see: text that is not
        // UTF-8, or a cell of a type the log never writes there.
        Err(AuditError::Sqlite { source, .. }) if not_as_written(&source) && at.is_some() => Ok(Verified::Broken {
            row: at.unwrap_or_default(),
            problem: "a field holds what the log never writes (text that is not UTF-8, or a value of another type): \
                      its content was changed"
                .to_owned(),
        }),
        Err(AuditError::Sqlite { source, .. }) if damage::is_damage(&source) => {
            Ok(Verified::Damaged(damage::inspect(path).unwrap_or_else(|| damage::Damage {
                problems: vec![source.to_string()],
                readable_rows: 0,
                last_readable_id: None,
                rows_stopped: true,
            })))
        }
        other => other,
    }
}

/// A cell that cannot be read as the type the log writes into it.
fn not_as_written(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::Utf8Error(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
    )
}

/// `at`: the id of the row being read, for errors met inside it.
fn verify_chain(path: &Path, at: &mut Option<i64>) -> Result<Verified, AuditError> {
    let conn = open_reader(path)?;
    let checkpoints = retention::checkpoints(&conn).map_err(|e| sql(path, e))?;
    let mut retained: Option<retention::Retained> = None;
    // While a retention run is under way: the row it removes up to, and
    // that row's hash, which the walk must reach.
    let mut must_reach: Option<(i64, String, i64)> = None;
    let mut stmt = conn
        .prepare(
            "SELECT id, prev_hash, hash, seal, time_ms, kind, server, session, tool, class, decision, reasons, \
             args, args_hash, rule, detail, outcome, latency_us, approval_id, answered_by, answer, answered_ms FROM events \
             ORDER BY id",
        )
        .map_err(|e| sql(path, e))?;
    let mut rows = stmt.query([]).map_err(|e| sql(path, e))?;
    let mut expected: Option<String> = None;
    let mut count = 0u64;
    while let Some(r) = rows.next().map_err(|e| sql(path, e))? {
        let get = |i: usize| -> rusqlite::Result<Option<String>> { r.get(i) };
        let id: i64 = r.get(0).map_err(|e| sql(path, e))?;
        *at = Some(id);
        let broken = |problem: &str| Ok(Verified::Broken { row: id, problem: problem.to_owned() });
        let (prev, hash, stored_seal) =
            (get(1).map_err(|e| sql(path, e))?, get(2).map_err(|e| sql(path, e))?, get(3).map_err(|e| sql(path, e))?);
        let Some(hash) = hash else {
            if expected.is_some() {
                return broken("it has no hash: it was inserted into the log by hand");
            }
            continue; // written before the chain existed
        };
        let prev = prev.unwrap_or_default();
        match &expected {
            Some(e) if *e != prev => {
                return broken("it does not follow the row before it: a row was removed or inserted just before it");
            }
            None if !prev.is_empty() => match retention::covering(&checkpoints, id, &prev) {
                Some(c) => {
                    if c.through_id >= id {
                        must_reach = Some((c.through_id, c.through_hash.clone(), c.id));
                    }
                    retained = Some(retention::Retained { checkpoint: c.clone(), first_row: id });
                }
                None => {
                    return broken(
                        "the rows before it were removed, and no retention checkpoint accounts for them: the log \
                         was cut by hand",
                    );
                }
            },
            _ => {}
        }
        let text =
            |i: usize| -> Result<String, AuditError> { Ok(get(i).map_err(|e| sql(path, e))?.unwrap_or_default()) };
        let (kind, server, session, tool, class, decision, reasons, args, args_hash) =
            (text(5)?, text(6)?, text(7)?, text(8)?, text(9)?, text(10)?, text(11)?, text(12)?, text(13)?);
        let (rule, detail) = (get(14).map_err(|e| sql(path, e))?, get(15).map_err(|e| sql(path, e))?);
        let content = Content {
            time_ms: r.get(4).map_err(|e| sql(path, e))?,
            kind: &kind,
            server: &server,
            session: &session,
            tool: &tool,
            class: &class,
            decision: &decision,
            reasons: &reasons,
            args: &args,
            args_hash: &args_hash,
            rule: rule.as_deref(),
            detail: detail.as_deref(),
        };
        if content.hash(&prev) != hash {
            return broken("its content was changed");
        }
        let latency: Option<i64> = r.get(17).map_err(|e| sql(path, e))?;
        let (outcome, approval, by) = (
            get(16).map_err(|e| sql(path, e))?,
            get(18).map_err(|e| sql(path, e))?,
            get(19).map_err(|e| sql(path, e))?,
        );
        let answer = get(20).map_err(|e| sql(path, e))?;
        let answered_ms: Option<i64> = r.get(21).map_err(|e| sql(path, e))?;
        let sealed = seal_answered(
            &hash,
            outcome.as_deref(),
            latency,
            approval.as_deref(),
            by.as_deref(),
            answer.as_deref(),
            answered_ms,
        );
        if stored_seal.as_deref() != Some(&sealed) {
            return broken("its outcome, approval or answer was changed");
        }
        if let Some((through, through_hash, checkpoint)) = &must_reach {
            if id > *through {
                return broken(&format!(
                    "the retention checkpoint (row {checkpoint}) names row {through} as the last row it removes, and \
                     that row is missing"
                ));
            }
            if id == *through {
                if hash != *through_hash {
                    return broken(&format!("it is not the row the retention checkpoint (row {checkpoint}) names"));
                }
                must_reach = None;
            }
        }
        expected = Some(hash);
        count += 1;
    }
    if let Some((through, _, checkpoint)) = must_reach {
        return Ok(Verified::Broken {
            row: checkpoint,
            problem: format!("it names row {through} as the last row it removes, and the log never reaches it"),
        });
    }
    Ok(Verified::Intact { rows: count, retained })
}

/// Rows matching a filter, newest first, below `before`; on its own reader
/// connection, so `latch audit` can read the log without a daemon.
pub fn query_rows(path: &Path, f: &AuditFilter, before: Option<i64>, limit: u32) -> Result<Vec<AuditRow>, AuditError> {
    let conn = open_reader(path)?;
    let mut where_ = vec!["id < ?1".to_owned()];
    let mut args: Vec<rusqlite::types::Value> = vec![before.unwrap_or(i64::MAX).into()];
    let mut push = |clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        where_.push(clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(t) = &f.text {
        let like = format!("%{}%", t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        // Every `?` of a clause becomes the same numbered parameter.
        push("(tool LIKE ? ESCAPE '\\' OR server LIKE ? ESCAPE '\\' OR args LIKE ? ESCAPE '\\')", like.into());
    }
    if let Some(v) = &f.server {
        push("server = ?", v.clone().into());
    }
    if let Some(v) = &f.tool {
        push("tool = ?", v.clone().into());
    }
    if let Some(v) = &f.class {
        push("class = ?", v.clone().into());
    }
    if let Some(v) = &f.decision {
        // A call a person answered is found by the answer too.
        push("(decision = ? OR answer = ?)", v.clone().into());
    }
    if let Some(v) = f.since {
        push("time_ms >= ?", v.into());
    }
    if let Some(v) = f.until {
        push("time_ms < ?", v.into());
    }
    let q = format!(
        "SELECT {} FROM events WHERE {} ORDER BY id DESC LIMIT {}",
        ROW_COLUMNS.join(", "),
        where_.join(" AND "),
        limit.min(10_000)
    );
    let mut stmt = conn.prepare(&q).map_err(|e| sql(path, e))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), row_of).map_err(|e| sql(path, e))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| sql(path, e))
}

/// The columns [`row_of`] reads, in order.
const ROW_COLUMNS: &[&str] = &[
    "id",
    "time_ms",
    "kind",
    "server",
    "tool",
    "class",
    "decision",
    "reasons",
    "args",
    "args_hash",
    "outcome",
    "latency_us",
    "approval_id",
    "answered_by",
    "rule",
    "answer",
    "answered_ms",
];

/// One row as the readers show it. A cell that does not hold what the log
/// writes there is read as best it can be and the row marked damaged
/// ([`AuditRow::damaged`]) rather than ending the listing: one overwritten
/// byte must not hide every older row.
fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    let mut c = Cells::new(r, ROW_COLUMNS);
    let id = c.int(0)?;
    let time = c.int(1)?;
    let (kind, server, tool, class, decision) = (c.text(2)?, c.text(3)?, c.text(4)?, c.text(5)?, c.text(6)?);
    let (reasons, args, args_hash) = (c.text(7)?, c.text(8)?, c.text(9)?);
    let outcome = c.opt_text(10)?;
    let latency_us = c.opt_int(11)?;
    let (approval_id, answered_by, rule, answer) = (c.opt_text(12)?, c.opt_text(13)?, c.opt_text(14)?, c.opt_text(15)?);
    let answered_ms = c.opt_int(16)?;
    // Damaged arguments are shown as the text they hold, not as nothing.
    let args_damaged = c.is_damaged(8);
    let args = serde_json::from_str(&args).unwrap_or(if args_damaged {
        serde_json::Value::String(args)
    } else {
        serde_json::Value::Null
    });
    Ok(AuditRow {
        id,
        time,
        kind,
        server,
        tool,
        class,
        decision,
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        args,
        args_hash,
        outcome,
        latency_us,
        approval_id,
        answered_by,
        rule,
        answer,
        // An answer given before the call (a standing one) kept it waiting not at all.
        waited_ms: answered_ms.filter(|&at| at >= time).map(|at| at - time),
        damaged: c.damage().map(Box::new),
    })
}

/// Formats [`export`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header line.
    Csv,
}

const EXPORT_COLUMNS: &[&str] = &[
    "id",
    "time_ms",
    "kind",
    "server",
    "session",
    "tool",
    "class",
    "decision",
    "reasons",
    "args",
    "args_hash",
    "rule",
    "approval_id",
    "outcome",
    "latency_us",
    "answered_by",
    "detail",
    "hash",
    "answer",
    "answered_ms",
];

/// Streams the log, oldest first, row by row into `out` (memory stays flat
/// whatever the log's size); rows from `since_ms` (inclusive) up to
/// `until_ms` (exclusive) when given. Returns the number of rows written. A
/// closed pipe (`| head`) ends the export quietly.
pub fn export(
    path: &Path,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    format: ExportFormat,
    out: &mut dyn std::io::Write,
) -> Result<u64, AuditError> {
    let conn = open_reader(path)?;
    let sql_text =
        format!("SELECT {} FROM events WHERE time_ms >= ?1 AND time_ms < ?2 ORDER BY id", EXPORT_COLUMNS.join(", "));
    let mut stmt = conn.prepare(&sql_text).map_err(|e| sql(path, e))?;
    let mut rows =
        stmt.query([since_ms.unwrap_or(i64::MIN), until_ms.unwrap_or(i64::MAX)]).map_err(|e| sql(path, e))?;
    let io = |e: std::io::Error| AuditError::Io { path: PathBuf::from("<output>"), source: e };
    let mut written = 0u64;
    let result = (|| -> Result<(), AuditError> {
        if format == ExportFormat::Csv {
            writeln!(out, "{}", EXPORT_COLUMNS.join(",")).map_err(io)?;
        }
        while let Some(r) = rows.next().map_err(|e| sql(path, e))? {
            let mut fields = Vec::with_capacity(EXPORT_COLUMNS.len());
            for i in 0..EXPORT_COLUMNS.len() {
                // Text that is not UTF-8 (overwritten bytes) comes out with
                // replacement characters rather than ending the export.
                use rusqlite::types::{Value, ValueRef};
                let v = match r.get_ref(i).map_err(|e| sql(path, e))? {
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Integer(n),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                };
                fields.push(v);
            }
            match format {
                ExportFormat::Jsonl => {
                    let mut obj = serde_json::Map::new();
                    for (name, v) in EXPORT_COLUMNS.iter().zip(fields) {
                        let json = match v {
                            rusqlite::types::Value::Null => serde_json::Value::Null,
                            rusqlite::types::Value::Integer(n) => n.into(),
                            rusqlite::types::Value::Real(f) => f.into(),
                            rusqlite::types::Value::Text(t) if matches!(*name, "reasons" | "args") => {
                                serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t))
                            }
                            rusqlite::types::Value::Text(t) => t.into(),
                            rusqlite::types::Value::Blob(_) => serde_json::Value::Null,
                        };
                        obj.insert((*name).to_owned(), json);
                    }
                    serde_json::to_writer(&mut *out, &obj).map_err(|e| io(e.into()))?;
                    out.write_all(b"\n").map_err(io)?;
                }
                ExportFormat::Csv => {
                    let cells: Vec<String> = fields
                        .into_iter()
                        .map(|v| match v {
                            rusqlite::types::Value::Null | rusqlite::types::Value::Blob(_) => String::new(),
                            rusqlite::types::Value::Integer(n) => n.to_string(),
                            rusqlite::types::Value::Real(f) => f.to_string(),
                            rusqlite::types::Value::Text(t) => csv_cell(&t),
                        })
                        .collect();
                    writeln!(out, "{}", cells.join(",")).map_err(io)?;
                }
            }
            written += 1;
        }
        out.flush().map_err(io)
    })();
    match result {
        Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(written),
        Err(e) => Err(e),
        Ok(()) => Ok(written),
    }
}

/// A CSV cell: quoted when it holds a comma, quote or line break.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}
