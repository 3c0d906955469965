//! The daemon refuses to start on an audit database it cannot use safely,
//! and its message names the fix; a database it cannot use at all (not
//! SQLite, a newer schema) lets it start refusing every call. Each test runs the real entry point
//! (`latch_daemon::run`) on a Latch home prepared to be wrong in one way.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::TempHome;
use latch_daemon::audit::Audit;
use latch_proto::paths::Paths;

/// Runs the daemon on `home` and returns its refusal.
fn refusal(home: &TempHome) -> String {
    let paths = Paths::resolve(Some(home.0.clone()), None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = rt.block_on(async {
        // A daemon that does start is a failure; it must not run forever.
        tokio::time::timeout(std::time::Duration::from_secs(5), latch_daemon::run(paths)).await
    });
    match result {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => panic!("the daemon started and stopped"),
        Err(_) => panic!("the daemon started on an unsafe home"),
    }
}

/// A home holding a real log, closed again.
fn home_with_log(name: &str) -> TempHome {
    let home = TempHome::new(name);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let audit = Audit::open(&home.db()).unwrap();
        audit.insert(Default::default()).await.unwrap();
        audit.flush().await;
    });
    home
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_database_others_may_read_is_refused() {
    let home = home_with_log("refuse-readable");
    chmod(&home.db(), 0o644);
    let e = refusal(&home);
    assert!(e.contains("others may read it") && e.contains(&format!("chmod 600 {}", home.db().display())), "{e}");
    assert_eq!(std::fs::metadata(home.db()).unwrap().mode() & 0o777, 0o644, "nothing is changed behind the user");
}

#[test]
fn a_database_others_may_write_is_refused() {
    let home = home_with_log("refuse-writable");
    chmod(&home.db(), 0o666);
    let e = refusal(&home);
    assert!(e.contains("others may write it"), "{e}");
}

#[test]
fn a_write_ahead_log_others_may_read_is_refused() {
    let home = home_with_log("refuse-wal");
    let wal = format!("{}-wal", home.db().display());
    std::fs::write(&wal, b"").unwrap();
    chmod(Path::new(&wal), 0o644);
    let e = refusal(&home);
    assert!(e.contains("its write-ahead log") && e.contains("chmod 600"), "{e}");
}

#[test]
fn a_database_of_another_user_is_refused() {
    let home = home_with_log("refuse-owner");
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a file to another user");
        return;
    }
    std::os::unix::fs::chown(home.db(), Some(65534), Some(65534)).unwrap();
    let e = refusal(&home);
    assert!(e.contains("belongs to user id 65534") && e.contains("move"), "{e}");
}

#[test]
fn a_folder_of_another_user_is_refused() {
    let home = TempHome::new("refuse-folder-owner");
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a folder to another user");
        return;
    }
    std::os::unix::fs::chown(&home.0, Some(65534), Some(65534)).unwrap();
    let e = refusal(&home);
    assert!(e.contains("belongs to user id 65534") && e.contains("LATCH_HOME"), "{e}");
}

#[test]
fn a_folder_others_may_read_is_refused_once_it_holds_a_log() {
    let home = home_with_log("refuse-folder-755");
    chmod(&home.0, 0o755);
    let e = refusal(&home);
    assert!(e.contains("mode 755") && e.contains(&format!("chmod 700 {}", home.0.display())), "{e}");
    assert_eq!(std::fs::metadata(&home.0).unwrap().mode() & 0o777, 0o755);
}

#[test]
fn a_new_folder_made_with_mkdir_is_made_private_not_refused() {
    let home = TempHome::new("fresh-folder-755");
    chmod(&home.0, 0o755);
    drop(Audit::open(&home.db()).unwrap());
    assert_eq!(std::fs::metadata(&home.0).unwrap().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(home.db()).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn a_folder_others_may_write_is_refused() {
    let home = TempHome::new("refuse-folder-777");
    chmod(&home.0, 0o777);
    let e = refusal(&home);
    assert!(e.contains("others may write to its folder") && e.contains("chmod 700"), "{e}");
}

/// A log that cannot be used does not stop the daemon (it starts so that
/// it can say what is wrong), but every insert, and so every call, is
/// refused with the reason and the fix.
fn refusing(home: &TempHome) -> (String, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let audit = Audit::open_or_refusing(&home.db()).unwrap();
        let refused = audit.insert(Default::default()).await.unwrap_err().to_string();
        (refused, audit.finding().expect("a finding for the person"))
    })
}

#[test]
fn a_file_that_is_not_sqlite_is_not_used_and_calls_are_refused() {
    let home = TempHome::new("refuse-not-sqlite");
    chmod(&home.0, 0o700);
    std::fs::write(home.db(), "these are my notes, not a database\n").unwrap();
    chmod(&home.db(), 0o600);
    let e = Audit::open(&home.db()).err().expect("open refuses it").to_string();
    assert!(e.contains("not an SQLite database") && e.contains("move"), "{e}");
    let (refused, finding) = refusing(&home);
    assert!(refused.contains("not an SQLite database") && refused.contains("refuses calls"), "{refused}");
    assert!(finding.contains("move") && finding.contains("every call is refused"), "{finding}");
    assert_eq!(std::fs::read_to_string(home.db()).unwrap(), "these are my notes, not a database\n");
}

#[test]
fn a_database_from_a_newer_latch_is_not_used_and_calls_are_refused() {
    let home = home_with_log("refuse-newer");
    rusqlite::Connection::open(home.db()).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let e = Audit::open(&home.db()).err().expect("open refuses it").to_string();
    assert!(e.contains("a newer Latch wrote it (schema version 99") && e.contains("run the newer latch"), "{e}");
    let (refused, finding) = refusing(&home);
    assert!(refused.contains("schema version 99"), "{refused}");
    assert!(finding.contains("run the newer latch"), "{finding}");
}

#[test]
fn a_symbolic_link_is_refused() {
    let home = home_with_log("refuse-symlink");
    let real = home.0.join("elsewhere.db");
    std::fs::rename(home.db(), &real).unwrap();
    std::os::unix::fs::symlink(&real, home.db()).unwrap();
    let e = refusal(&home);
    assert!(e.contains("symbolic link"), "{e}");
}
