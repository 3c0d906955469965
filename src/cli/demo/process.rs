//! The demo's child processes: stopping them in order, and noticing a
//! Ctrl-C or a console the person closed.

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM/SIGHUP: stop, clean up, exit.
pub(super) static STOP: AtomicBool = AtomicBool::new(false);

pub(super) extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub(super) fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The person closed the console before the agent was done.
#[derive(Debug)]
pub(super) struct ConsoleClosed;

impl std::fmt::Display for ConsoleClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the console was closed before the agent was done")
    }
}

impl std::error::Error for ConsoleClosed {}

/// Whether the console ran and has exited (reaped here).
pub(super) fn console_closed(console: &mut Option<Child>) -> bool {
    console.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
}

/// SIGTERM, wait up to GRACE, SIGKILL; always reaped.
pub(super) fn stop(child: &mut Child, grace: Duration) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}
