//! Opening the database safely: who owns it, who may read it, what it is,
//! and its schema (migrations).

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::event::{AuditError, sql};

/// Numbered migrations, applied in order; `PRAGMA user_version` records how
/// many ran. Never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_events.sql"),
    include_str!("../../migrations/0002_server_index.sql"),
    include_str!("../../migrations/0003_hash_chain.sql"),
    include_str!("../../migrations/0004_retention.sql"),
    include_str!("../../migrations/0005_answers.sql"),
];

/// Refuses a place the audit log cannot be kept safely, changing nothing
/// (the daemon calls it before it tightens its folders, so a folder others
/// could read is reported, not quietly fixed over an exposed log):
/// - the folder, if it exists, must be ours and not writable by others; if
///   it already holds the database, not readable by them either;
/// - the database and its `-wal`/`-shm` files, if they exist, must be
///   regular files of ours that only we may read and write;
/// - the database must be SQLite (or empty).
///
/// A folder that does not exist yet, or holds no log yet, is fine: it is
/// created (or made) private when the log is opened.
pub fn check_place(path: &Path) -> Result<(), AuditError> {
    let uid = current_uid();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let refuse = |why: String, fix: String| Err(AuditError::Unsafe { path: path.to_owned(), why, fix });
    let has_log = std::fs::symlink_metadata(path).is_ok();
    if let Ok(meta) = std::fs::metadata(dir) {
        if meta.uid() != uid {
            return refuse(
                format!("its folder {} belongs to user id {}, not to you ({uid})", dir.display(), meta.uid()),
                "set LATCH_HOME to a folder of your own".into(),
            );
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o022 != 0 {
            return refuse(
                format!("others may write to its folder {} (mode {mode:o}) and could have replaced it", dir.display()),
                format!("if you trust its content run `chmod 700 {}`, else move the folder away", dir.display()),
            );
        }
        if has_log && mode & 0o077 != 0 {
            return refuse(
                format!("others may look into its folder {} (mode {mode:o})", dir.display()),
                format!("run `chmod 700 {}`", dir.display()),
            );
        }
    }
    for (file, what) in [
        (path.to_owned(), "it"),
        (PathBuf::from(format!("{}-wal", path.display())), "its write-ahead log"),
        (PathBuf::from(format!("{}-shm", path.display())), "its shared-memory file"),
        (super::journal::path_of(path), "its journal"),
    ] {
        let Ok(m) = std::fs::symlink_metadata(&file) else { continue };
        let name = file.display();
        if m.file_type().is_symlink() {
            return refuse(format!("{what} ({name}) is a symbolic link"), format!("move {name} away"));
        }
        if !m.file_type().is_file() {
            return refuse(format!("{what} ({name}) is not a regular file"), format!("move {name} away"));
        }
        if m.uid() != uid {
            return refuse(
                format!("{what} ({name}) belongs to user id {}, not to you ({uid})", m.uid()),
                format!("move {name} away; Latch starts a new log"),
            );
        }
        let mode = m.mode() & 0o777;
        if mode & 0o077 != 0 {
            let who = if mode & 0o022 != 0 { "write" } else { "read" };
            return refuse(
                format!("others may {who} {what} ({name}, mode {mode:o})"),
                format!("if only you had access, run `chmod 600 {name}`; else move it away"),
            );
        }
    }
    if has_log {
        let mut head = [0u8; 16];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| AuditError::Io { path: path.to_owned(), source: e })?;
        if n > 0 && head[..n] != b"SQLite format 3\0"[..] {
            return Err(AuditError::Unusable {
                path: path.to_owned(),
                why: "it is not an SQLite database".into(),
                fix: format!(
                    "move {} away (Latch then starts a new log), or point LATCH_HOME elsewhere",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Checks the place ([`check_place`]), creates the folder 0700 and the file
/// 0600, and runs the migrations.
pub(super) fn open_checked(path: &Path) -> Result<Connection, AuditError> {
    check_place(path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| AuditError::Io { path: dir.to_owned(), source: e })?;
    let meta = std::fs::metadata(dir).map_err(|e| AuditError::Io { path: dir.to_owned(), source: e })?;
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AuditError::Io { path: dir.to_owned(), source: e })?;
    }
    // Created private, so it is never readable by others, not even briefly.
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(AuditError::Io { path: path.to_owned(), source: e }),
    }
    let conn = Connection::open(path).map_err(|e| sql(path, e))?;
    // WAL must be switched on outside a transaction.
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| sql(path, e))?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| sql(path, e))?;
    // The checkpoint thread does this work; the writer never stalls on it.
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(|e| sql(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| sql(path, e))?;
    migrate(path, &conn)?;
    Ok(conn)
}

pub(super) fn migrate(path: &Path, conn: &Connection) -> Result<(), AuditError> {
    let done: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| sql(path, e))?;
    if done > MIGRATIONS.len() as i64 {
        return Err(AuditError::Unusable {
            path: path.to_owned(),
            why: format!(
                "a newer Latch wrote it (schema version {done}; this latch {} knows up to {})",
                env!("CARGO_PKG_VERSION"),
                MIGRATIONS.len()
            ),
            fix: "run the newer latch, or move the file away to start a new log with this one".into(),
        });
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
        conn.execute_batch(&format!("BEGIN; {m}\nPRAGMA user_version = {}; COMMIT;", i + 1))
            .map_err(|e| sql(path, e))?;
    }
    Ok(())
}

pub fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

pub(super) fn open_reader(path: &Path) -> Result<Connection, AuditError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| sql(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| sql(path, e))?;
    Ok(conn)
}
