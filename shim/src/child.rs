//! The wrapped MCP server: spawned in its own process group, signalled as a
//! group, always reaped. On Linux it also gets SIGKILL if the shim itself
//! dies without a chance to clean up (`PR_SET_PDEATHSIG`).

use std::io;
use std::process::{ExitStatus, Stdio};

use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub struct Server {
    pub child: Child,
    pub pgid: i32,
}

pub fn spawn(cmd: &[String]) -> io::Result<(Server, ChildStdin, ChildStdout)> {
    let (program, args) = cmd.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
    let mut c = Command::new(program);
    c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and only sets a flag on the new
    // process; no allocation happens between fork and exec here.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = c.spawn()?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        grow_pipe(stdin.as_raw_fd());
        grow_pipe(stdout.as_raw_fd());
    }
    Ok((Server { child, pgid }, stdin, stdout))
}

/// Pipe buffer for the server's stdin and stdout. The kernel's 64 KiB
/// default makes a 1 MiB message a ping-pong of sixteen fills and drains,
/// each a wake-up on both sides; 512 KiB carries most messages in one or
/// two. Pages are only used while data sits in the pipe, and two pipes of
/// this size per shim stay well inside the per-user pipe allowance
/// (`/proc/sys/fs/pipe-user-pages-soft`, 64 MiB by default).
#[cfg(target_os = "linux")]
const PIPE_BYTES: libc::c_int = 512 * 1024;

/// Best effort: a system with a lower `pipe-max-size` keeps its default.
#[cfg(target_os = "linux")]
pub(crate) fn grow_pipe(fd: std::os::fd::RawFd) {
    // SAFETY: fcntl on a pipe descriptor we own; no memory is passed.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES) };
}

impl Server {
    /// Sends a signal to the server's whole process group (npx, node …).
    pub fn signal(&self, sig: i32) {
        if self.pgid > 0 {
            // SAFETY: kill with a negative pid signals a process group we
            // created; no memory is involved.
            unsafe {
                libc::kill(-self.pgid, sig);
            }
        }
    }

    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }
}

/// The shim's exit code for a server's exit status: its code, or 128 plus
/// the signal that ended it (as shells report it).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
