//! Who answers at the daemon's socket.
//!
//! Any process of the user can bind a socket at the daemon's path once the
//! daemon is gone (killed, crashed, not started yet) and answer every shim
//! with "allow". A client therefore accepts a daemon only when the process
//! at the other end of the *connected* socket runs as the same user and
//! runs Latch: the same file as the client's own executable.
//!
//! The process is named by the kernel, not by the peer: `SO_PEERPIDFD`
//! (Linux 6.5+) gives a pidfd of the process that listens, which cannot be
//! recycled; the checks read `/proc/PID/exe` and then confirm through the
//! pidfd that the process is still alive, so the PID still names it. On an
//! older kernel the PID comes from `SO_PEERCRED` and is pinned with
//! `pidfd_open` right away; a PID recycled between the listener's exit and
//! that call is the remaining (narrow) race. A listener that has exited is
//! refused: the socket may have been handed to another process.
//!
//! "The same file" is, in order: the same device and inode; or, after an
//! upgrade replaced the binary while the daemon ran, a daemon whose
//! executable was deleted from exactly the path the client runs from (only
//! whoever can write Latch's own binary can arrange that, and they could
//! change the client too); or a byte-for-byte copy (the same build
//! installed at two paths).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the daemon peer turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// The very same executable file (or a byte-for-byte copy).
    Same,
    /// A daemon started from the binary at our path before it was replaced.
    Upgraded { pid: i32 },
    /// Latch's system daemon: its peer user id is the one root's
    /// [`crate::system`] file names.
    System { uid: u32 },
}

/// A peer that is not Latch's daemon, or could not be shown to be.
#[derive(Debug, thiserror::Error)]
#[error("pid {pid}, executable {exe}: {why}")]
pub struct Impostor {
    pub pid: i32,
    /// The peer's executable as `/proc/PID/exe` names it ("?" if unknown).
    pub exe: String,
    pub why: String,
}

const DELETED: &str = " (deleted)";
/// `SO_PEERPIDFD` (asm-generic): a pidfd of the peer, Linux 6.5+.
const SO_PEERPIDFD: libc::c_int = 77;

/// Checks that the process at the other end of `sock` is Latch's daemon.
pub fn verify_daemon(sock: BorrowedFd<'_>) -> Result<Verified, Impostor> {
    let cred =
        peer_cred(sock).map_err(|e| Impostor { pid: 0, exe: "?".into(), why: format!("no peer credentials: {e}") })?;
    let pid = cred.pid;
    let refuse = |exe: &str, why: String| Impostor { pid, exe: exe.to_owned(), why };
    // System mode: only the user id root's file names (its executable is
    // not ours to read).
    match crate::system::load() {
        Err(e) => return Err(refuse("?", e.to_string())),
        Ok(Some(system)) if cred.uid != system.daemon_uid => {
            return Err(refuse(
                &exe_name(pid),
                format!(
                    "runs as user id {}, not as Latch's system daemon (user id {}); a person must start Latch's \
                     system daemon",
                    cred.uid, system.daemon_uid
                ),
            ));
        }
        Ok(Some(system)) => return Ok(Verified::System { uid: system.daemon_uid }),
        Ok(None) => {}
    }
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if cred.uid != me {
        return Err(refuse(&exe_name(pid), format!("runs as user id {}, not {me}", cred.uid)));
    }
    if pid <= 0 {
        return Err(refuse("?", "the kernel names no process for it".into()));
    }
    let pidfd = match peer_pidfd(sock) {
        Ok(Some(fd)) => fd,
        Ok(None) => pidfd_open(pid).map_err(|e| refuse("?", format!("its process is gone ({e})")))?,
        Err(e) => return Err(refuse("?", format!("the process that opened the socket is gone ({e})"))),
    };
    if !alive(&pidfd) || zombie(pid) {
        return Err(refuse("?", "the process that opened the socket has exited; another process holds it".into()));
    }
    let verdict = compare_exe(pid);
    // The PID still names the process the pidfd holds: what was read from
    // /proc/PID was that process's.
    if !alive(&pidfd) {
        return Err(refuse("?", "its process exited while it was being checked".into()));
    }
    verdict.map_err(|why| refuse(&exe_name(pid), why))
}

/// The `latch` a program that is part of Latch but not that binary (the
/// small shim, `latch-shim`) speaks for: the daemon must run it.
static SPEAKS_FOR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Says that this process is part of the `latch` at `latch` (its path,
/// beside this executable): a daemon is accepted when it runs that file,
/// not this one. Set once, at start.
pub fn speak_for(latch: PathBuf) {
    let _ = SPEAKS_FOR.set(latch);
}

fn compare_exe(pid: i32) -> Result<Verified, String> {
    let theirs = PathBuf::from(format!("/proc/{pid}/exe"));
    let ours = SPEAKS_FOR.get().map(PathBuf::as_path).unwrap_or(Path::new("/proc/self/exe"));
    let their_meta = std::fs::metadata(&theirs).map_err(|e| format!("cannot read its executable ({e})"))?;
    let our_meta = std::fs::metadata(ours).map_err(|e| format!("cannot read our own executable ({e})"))?;
    if (their_meta.dev(), their_meta.ino()) == (our_meta.dev(), our_meta.ino()) {
        return Ok(Verified::Same);
    }
    let their_name = exe_name(pid);
    let our_name = match SPEAKS_FOR.get() {
        Some(latch) => latch.display().to_string(),
        None => std::fs::read_link(ours).map(|p| p.display().to_string()).unwrap_or_default(),
    };
    let (their_path, their_gone) = strip_deleted(&their_name);
    let (our_path, our_gone) = strip_deleted(&our_name);
    if (their_gone || our_gone) && !their_path.is_empty() && their_path == our_path {
        return Ok(Verified::Upgraded { pid });
    }
    if their_meta.len() == our_meta.len() && same_bytes(&theirs, ours).unwrap_or(false) {
        return Ok(Verified::Same);
    }
    Err(format!("it does not run Latch (this program is {our_name})"))
}

fn strip_deleted(name: &str) -> (&str, bool) {
    match name.strip_suffix(DELETED) {
        Some(p) => (p, true),
        None => (name, false),
    }
}

/// The peer's executable as `/proc/PID/exe` names it.
fn exe_name(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.display().to_string()).unwrap_or_else(|_| "?".into())
}

fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (File::open(a)?, File::open(b)?);
    let (mut x, mut y) = (vec![0u8; 256 * 1024], vec![0u8; 256 * 1024]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

struct Cred {
    pid: i32,
    uid: u32,
}

fn peer_cred(sock: BorrowedFd<'_>) -> io::Result<Cred> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Cred { pid: cred.pid, uid: cred.uid })
}

/// The peer's pidfd; `None` when the kernel does not know `SO_PEERPIDFD`.
fn peer_pidfd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `fd`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOPROTOOPT) | Some(libc::EINVAL) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the kernel gave us this new descriptor.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel gave us this new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Exited but not yet reaped: it answers signal 0, yet holds nothing.
fn zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    // "PID (COMM) STATE …", where COMM may hold anything, parentheses too.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some(Some('Z' | 'X')) | None)
}

fn alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), 0, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn a_socket_of_our_own_process_is_the_same_latch() {
        let dir = std::env::temp_dir().join(format!("latch-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).unwrap();
        assert_eq!(verify_daemon(client.as_fd()).unwrap(), Verified::Same);
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_program_is_an_impostor_named_by_pid_and_executable() {
        // `sleep` holds one end of a socket pair: it is not Latch.
        let (ours, theirs) = UnixStream::pair().unwrap();
        let theirs: OwnedFd = theirs.into();
        let mut child =
            std::process::Command::new("sleep").arg("30").stdin(std::process::Stdio::from(theirs)).spawn().unwrap();
        // A pair's credentials are the creator's (us); pass the check the
        // way a daemon socket is seen: through the child's pid.
        let verdict = compare_exe(child.id() as i32);
        let _ = child.kill();
        let _ = child.wait();
        let why = verdict.unwrap_err();
        assert!(why.contains("does not run Latch"), "{why}");
        drop(ours);
    }

    #[test]
    fn an_upgrade_is_recognised_by_the_deleted_path() {
        assert_eq!(strip_deleted("/usr/bin/latch (deleted)"), ("/usr/bin/latch", true));
        assert_eq!(strip_deleted("/usr/bin/latch"), ("/usr/bin/latch", false));
    }
}
