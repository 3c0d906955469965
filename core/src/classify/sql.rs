//! What a SQL text does, judged from its statements' tokens.
//!
//! The text is lexed under several dialects' quoting rules
//! ([`lex::READINGS`]): comments (`--`, `#`, nested `/* */`, MySQL's
//! executable `/*! */`), strings with `''`, backslash escapes where a
//! dialect has them, `E'…'`, dollar quotes, quoted identifiers. Each
//! reading splits the text into statements on `;` outside those, and the
//! most consequential statement of the most dangerous reading wins: text a
//! dialect would run cannot hide inside what another reading takes for a
//! string or comment.
//!
//! A plain `SELECT` (or `WITH … SELECT`, `SHOW`, `EXPLAIN`, `DESCRIBE`,
//! read-only `PRAGMA`) is READ; anything that changes data or schema is
//! WRITE (DELETE, DROP, TRUNCATE, UPDATE, REPLACE, MERGE, and statements
//! that run other code such as `EXECUTE`, `CALL`, `DO` also destructive);
//! `COPY … PROGRAM`, `xp_cmdshell` and `load_extension` run programs:
//! EXECUTE. A read statement that holds a statement keyword (`WITH d AS
//! (DELETE …)`, SQL Server's `SELECT 1 DROP TABLE t` without `;`), `SELECT
//! … INTO`, or calls a function with effects (`pg_terminate_backend`,
//! `pg_read_file`, `lo_export`, `dblink_exec` …) is not READ. A statement
//! that cannot be read (an unterminated string, comment or quote) or that
//! starts with an unknown word counts as destructive WRITE, and so does a
//! text over 256 KiB.

mod lex;

use crate::class::Class;
use lex::{Statement, Tok};

/// Longest SQL text read; a longer one counts as unreadable. Lexing is
/// linear: about 40 ms for this much (25,000 statements, five readings)
/// in a release build.
const MAX_SQL_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SqlVerdict {
    pub class: Class,
    pub destructive: bool,
    /// The deciding statement's first keyword, upper-case, or what made
    /// it count (`unreadable`, `unknown`, a function's name).
    pub keyword: &'static str,
    /// The dialect reading under which the text says this.
    pub reading: &'static str,
}

impl SqlVerdict {
    fn new(class: Class, destructive: bool, keyword: &'static str) -> Self {
        SqlVerdict { class, destructive, keyword, reading: "" }
    }

    fn worse_than(&self, other: &SqlVerdict) -> bool {
        (self.class, self.destructive) > (other.class, other.destructive)
    }
}

const UNREADABLE: SqlVerdict =
    SqlVerdict { class: Class::Write, destructive: true, keyword: "unreadable", reading: "" };
const UNKNOWN: SqlVerdict = SqlVerdict { class: Class::Write, destructive: true, keyword: "unknown", reading: "" };

const READ_KEYWORDS: &[&str] = &["SELECT", "WITH", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "PRAGMA", "VALUES", "TABLE"];
const WRITE_KEYWORDS: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "UPSERT",
    "REPLACE",
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "RENAME",
    "GRANT",
    "REVOKE",
    "COMMENT",
    "VACUUM",
    "ANALYZE",
    "ANALYSE",
    "REINDEX",
    "CLUSTER",
    "REFRESH",
    "SET",
    "RESET",
    "LOCK",
    "ATTACH",
    "DETACH",
    "COPY",
    "CALL",
    "EXEC",
    "EXECUTE",
    "DO",
    "LOAD",
    "IMPORT",
    "UNLOAD",
    "DECLARE",
    "PREPARE",
    "KILL",
    "SHUTDOWN",
    "FLUSH",
    "OPTIMIZE",
    "REPAIR",
    "INSTALL",
    "UNINSTALL",
    "HANDLER",
    "LISTEN",
    "NOTIFY",
    "UNLISTEN",
    "DISCARD",
    "CHECKPOINT",
    "SECURITY",
    "FETCH",
    "MOVE",
    "CLOSE",
    "OPEN",
    "BACKUP",
    "RESTORE",
    "DBCC",
    "PUT",
    "REMOVE",
    "UNDROP",
];
/// Transaction control and the like: no effect of their own.
const NEUTRAL_KEYWORDS: &[&str] =
    &["BEGIN", "COMMIT", "ROLLBACK", "START", "END", "SAVEPOINT", "RELEASE", "USE", "DEALLOCATE", "ABORT"];
const DESTRUCTIVE_KEYWORDS: &[&str] = &[
    "DELETE", "DROP", "TRUNCATE", "UPDATE", "REPLACE", "MERGE", "UPSERT", "CALL", "EXEC", "EXECUTE", "DO", "PREPARE",
    "KILL", "SHUTDOWN", "RESTORE", "REMOVE", "DECLARE",
];
/// Statement keywords that, met inside a read statement, make it one that
/// writes (SQL Server runs `SELECT 1 DROP TABLE t` as two statements).
const EMBEDDED_KEYWORDS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "DROP", "TRUNCATE", "ALTER", "CREATE", "GRANT", "REVOKE", "EXEC", "EXECUTE",
    "COPY", "CALL", "ATTACH", "DETACH", "VACUUM", "RENAME", "SHUTDOWN", "KILL", "DECLARE",
];

/// Functions and procedures with effects, by what they do.
const FUNCTIONS: &[(&str, Class, bool)] = &[
    ("xp_cmdshell", Class::Execute, true),
    ("load_extension", Class::Execute, true),
    ("sys_exec", Class::Execute, true),
    ("sys_eval", Class::Execute, true),
    ("sp_oacreate", Class::Execute, true),
    ("sp_oamethod", Class::Execute, true),
    ("sp_execute_external_script", Class::Execute, true),
    ("dblink_exec", Class::Write, true),
    ("dblink", Class::Write, true),
    ("query_to_xml", Class::Write, true),
    ("query_to_xml_and_xmlschema", Class::Write, true),
    ("sp_executesql", Class::Write, true),
    ("openquery", Class::Write, true),
    ("openrowset", Class::Write, true),
    ("opendatasource", Class::Write, true),
    ("lo_unlink", Class::Write, true),
    ("lo_export", Class::Write, true),
    ("pg_file_write", Class::Write, true),
    ("pg_terminate_backend", Class::Write, true),
    ("pg_drop_replication_slot", Class::Write, true),
    ("writefile", Class::Write, true),
    ("pg_cancel_backend", Class::Write, false),
    ("pg_reload_conf", Class::Write, false),
    ("pg_rotate_logfile", Class::Write, false),
    ("pg_switch_wal", Class::Write, false),
    ("pg_promote", Class::Write, false),
    ("pg_create_restore_point", Class::Write, false),
    ("pg_logical_emit_message", Class::Write, false),
    ("pg_create_logical_replication_slot", Class::Write, false),
    ("pg_read_file", Class::Write, false),
    ("pg_read_binary_file", Class::Write, false),
    ("pg_ls_dir", Class::Write, false),
    ("pg_stat_file", Class::Write, false),
    ("pg_sleep", Class::Write, false),
    ("set_config", Class::Write, false),
    ("nextval", Class::Write, false),
    ("setval", Class::Write, false),
    ("lo_import", Class::Write, false),
    ("lo_get", Class::Write, false),
    ("lo_put", Class::Write, false),
    ("lo_create", Class::Write, false),
    ("lo_from_bytea", Class::Write, false),
    ("pg_advisory_lock", Class::Write, false),
    ("load_file", Class::Write, false),
    ("readfile", Class::Write, false),
    ("xp_dirtree", Class::Write, false),
    ("xp_fileexist", Class::Write, false),
    ("sp_configure", Class::Write, false),
    ("benchmark", Class::Write, false),
    ("sleep", Class::Write, false),
];
/// Names that run programs wherever they appear, called or not
/// (`EXEC xp_cmdshell 'dir'`).
const PROGRAM_MARKERS: &[&str] = &["xp_cmdshell", "load_extension", "sys_exec", "sys_eval", "sp_oacreate"];

fn keyword_of(word: &str) -> Option<&'static str> {
    READ_KEYWORDS.iter().chain(WRITE_KEYWORDS).chain(NEUTRAL_KEYWORDS).find(|k| k.eq_ignore_ascii_case(word)).copied()
}

fn is(tok: Option<&Tok<'_>>, word: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
}

/// The statement's first keyword and where it is, after opening brackets.
fn first_keyword(toks: &[Tok<'_>]) -> Option<(usize, &'static str)> {
    let at = toks.iter().position(|t| *t != Tok::Punct(b'('))?;
    match toks[at] {
        Tok::Word(w) => keyword_of(w).map(|k| (at, k)),
        _ => None,
    }
}

fn starts_like_sql(toks: &[Tok<'_>]) -> bool {
    first_keyword(toks).is_some_and(|(at, _)| toks.len() > at + 1)
}

/// Judges a SQL text. `None` when no statement of any reading looks like
/// SQL (prose in a search box); with `strict` (a key named for SQL), such
/// text counts as an unknown statement instead.
pub(crate) fn judge_text(text: &str, strict: bool) -> Option<SqlVerdict> {
    if text.len() > MAX_SQL_BYTES {
        return Some(UNREADABLE);
    }
    let mut best: Option<SqlVerdict> = None;
    for r in lex::READINGS {
        let stmts = lex::statements(text, r);
        if !stmts.iter().any(|s| starts_like_sql(&s.toks)) {
            continue;
        }
        for s in &stmts {
            if let Some(v) = judge_statement(s)
                && best.is_none_or(|b| v.worse_than(&b))
            {
                best = Some(SqlVerdict { reading: r.name, ..v });
            }
        }
    }
    match best {
        None if strict && !text.trim().is_empty() => Some(UNKNOWN),
        None if looks_read(text) => Some(SqlVerdict::new(Class::Read, false, "SELECT")),
        other => other,
    }
}

/// Text with only neutral statements (`BEGIN; COMMIT`) is SQL that reads.
fn looks_read(text: &str) -> bool {
    lex::READINGS.iter().all(|r| {
        let stmts = lex::statements(text, r);
        !stmts.is_empty()
            && stmts
                .iter()
                .all(|s| !s.broken && first_keyword(&s.toks).is_some_and(|(_, k)| NEUTRAL_KEYWORDS.contains(&k)))
    })
}

fn judge_statement(s: &Statement<'_>) -> Option<SqlVerdict> {
    if s.broken {
        return Some(UNREADABLE);
    }
    let Some((at, kw)) = first_keyword(&s.toks) else {
        return Some(UNKNOWN);
    };
    let toks = &s.toks[at..];
    let own = judge_from(kw, toks);
    let called = functions(toks);
    match (own, called) {
        (Some(a), Some(b)) => Some(if b.worse_than(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The worst function with effects the statement names.
fn functions(toks: &[Tok<'_>]) -> Option<SqlVerdict> {
    let mut best: Option<SqlVerdict> = None;
    for (i, t) in toks.iter().enumerate() {
        let name = match t {
            Tok::Word(w) | Tok::Quoted(w) => *w,
            _ => continue,
        };
        let called = toks.get(i + 1) == Some(&Tok::Punct(b'('));
        let marker = PROGRAM_MARKERS.iter().any(|m| m.eq_ignore_ascii_case(name));
        if !called && !marker {
            continue;
        }
        if let Some(&(f, class, destructive)) = FUNCTIONS.iter().find(|(f, ..)| f.eq_ignore_ascii_case(name)) {
            let v = SqlVerdict::new(class, destructive, f);
            if best.is_none_or(|b| v.worse_than(&b)) {
                best = Some(v);
            }
        }
    }
    best
}

/// Judges a statement whose first keyword is `kw` at `toks[0]`.
fn judge_from(kw: &'static str, toks: &[Tok<'_>]) -> Option<SqlVerdict> {
    let has = |w: &str| toks.iter().any(|t| is(Some(t), w));
    if kw == "COPY" && has("PROGRAM") {
        return Some(SqlVerdict::new(Class::Execute, true, kw));
    }
    if NEUTRAL_KEYWORDS.contains(&kw) {
        // `BEGIN DROP TABLE t END` (SQL Server blocks need no `;`).
        return toks[1..].iter().enumerate().find_map(|(i, t)| match t {
            Tok::Word(w) => keyword_of(w)
                .filter(|k| WRITE_KEYWORDS.contains(k) || READ_KEYWORDS.contains(k))
                .and_then(|k| judge_from(k, &toks[i + 1..])),
            _ => None,
        });
    }
    if kw == "EXPLAIN" {
        // EXPLAIN ANALYZE (in any spelling of its options) runs the
        // statement it explains.
        let inner = toks[1..].iter().enumerate().find_map(|(i, t)| match t {
            Tok::Word(w) => keyword_of(w)
                .filter(|k| !["ANALYZE", "ANALYSE", "EXPLAIN"].contains(k))
                .filter(|k| READ_KEYWORDS.contains(k) || WRITE_KEYWORDS.contains(k))
                .map(|k| (i + 1, k)),
            _ => None,
        });
        let analyze = has("ANALYZE") || has("ANALYSE");
        if let (true, Some((at, k))) = (analyze, inner) {
            return judge_from(k, &toks[at..]);
        }
        return Some(SqlVerdict::new(Class::Read, false, kw));
    }
    if kw == "PRAGMA" {
        let sets = toks.contains(&Tok::Punct(b'='));
        let class = if sets { Class::Write } else { Class::Read };
        return Some(SqlVerdict::new(class, false, kw));
    }
    if READ_KEYWORDS.contains(&kw) {
        // Statements without `;` between them run only in SQL Server,
        // which has no SHOW or DESCRIBE (`SHOW CREATE TABLE t` reads).
        if !["SHOW", "DESCRIBE", "DESC"].contains(&kw)
            && let Some(v) = embedded(toks)
        {
            return Some(v);
        }
        if (kw == "SELECT" || kw == "WITH") && has("INTO") {
            let file = has("OUTFILE") || has("DUMPFILE");
            return Some(SqlVerdict::new(Class::Write, file, kw));
        }
        return Some(SqlVerdict::new(Class::Read, false, kw));
    }
    Some(SqlVerdict::new(Class::Write, DESTRUCTIVE_KEYWORDS.contains(&kw), kw))
}

/// A statement keyword inside a read statement, as a statement of its own
/// (not `FOR UPDATE`, `ON DELETE`, `t.update` or a function `replace(…)`).
fn embedded(toks: &[Tok<'_>]) -> Option<SqlVerdict> {
    let program = toks.iter().any(|t| is(Some(t), "PROGRAM"));
    let mut best: Option<SqlVerdict> = None;
    for i in 1..toks.len() {
        let Tok::Word(w) = toks[i] else { continue };
        let Some(k) = EMBEDDED_KEYWORDS.iter().find(|k| k.eq_ignore_ascii_case(w)).copied() else {
            continue;
        };
        let prev = &toks[i - 1];
        let qualifier = ["FOR", "KEY", "ON", "OF"].iter().any(|p| is(Some(prev), p));
        if *prev == Tok::Punct(b'.') || qualifier || toks.get(i + 1) == Some(&Tok::Punct(b'(')) {
            continue;
        }
        // Judged by its keyword alone: looking further for each of many
        // keywords would be quadratic.
        let v = if k == "COPY" && program {
            SqlVerdict::new(Class::Execute, true, k)
        } else {
            SqlVerdict::new(Class::Write, DESTRUCTIVE_KEYWORDS.contains(&k), k)
        };
        if best.is_none_or(|b| v.worse_than(&b)) {
            best = Some(v);
        }
    }
    best
}

/// Judges a SQL text under a key that may hold SQL or prose.
#[cfg(test)]
fn judge(text: &str) -> Option<SqlVerdict> {
    judge_text(text, false)
}

#[cfg(test)]
mod tests;
