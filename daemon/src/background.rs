//! Background threads yield to the decision path.
//!
//! The audit writer's group commits, the WAL checkpoints, retention's
//! reading and the damage check do work nobody waits for. On one vCPU a
//! group commit that runs while a call is being decided delays its answer
//! by the commit's length: that was most of the added p99. These threads
//! run at a lower priority (nice [`NICE`], per thread on Linux), so the
//! scheduler gives a runnable decision the CPU first. Not `SCHED_IDLE`: a
//! nice thread still gets its share (about a tenth of a busy CPU against
//! one thread at nice 0), so under sustained load the writer keeps
//! committing, and its bounded inbox (`audit::queue`) slows senders down
//! before anything is lost.

use std::future::Future;

/// The nice value of background threads (0 is the default, 19 the lowest).
pub const NICE: i32 = 10;

/// Lowers the calling thread's priority to [`NICE`] (never raises it).
/// Only the calling thread on Linux; elsewhere nothing (macOS has no
/// per-thread nice). A thread this is called on stays lowered: an
/// unprivileged process cannot raise a priority again, so pool threads
/// shared with the decision path must never call it.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and getpriority/setpriority take plain integers
        // and touch no memory of ours.
        unsafe {
            let tid = libc::gettid() as libc::id_t;
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            if now < NICE {
                libc::setpriority(libc::PRIO_PROCESS, tid, NICE);
            }
        }
    }
}

/// The nice value of the calling thread (Linux; 0 elsewhere).
#[cfg(test)]
pub fn this_threads_nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as above.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// A named thread at background priority.
pub fn spawn<F>(name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        lower_this_thread();
        f()
    })
}

/// Runs `f` on a thread of its own at background priority (not on the
/// runtime's blocking pool, whose threads also decode and decide large
/// calls); `None` if the thread could not start or `f` panicked.
pub fn run<T, F>(name: &str, f: F) -> impl Future<Output = Option<T>> + use<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = spawn(name, move || {
        let _ = tx.send(f());
    });
    async move {
        started.ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_thread_is_lowered_and_the_caller_is_not() {
        let before = this_threads_nice();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn("latch-test-bg", move || tx.send(this_threads_nice()).unwrap()).unwrap().join().unwrap();
        let nice = rx.recv().unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(nice, NICE.max(before));
        }
        assert_eq!(this_threads_nice(), before, "only the background thread is lowered");
    }

    #[tokio::test]
    async fn run_gives_back_the_result_and_none_for_a_panic() {
        assert_eq!(
            run("latch-test-bg", this_threads_nice).await,
            Some(if cfg!(target_os = "linux") { NICE } else { 0 })
        );
        assert_eq!(run("latch-test-bg", || -> u8 { panic!("on purpose") }).await, None);
    }
}
