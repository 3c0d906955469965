//! Background threads yield to the decision path.
//!
//! The audit writer's group commits, the WAL checkpoints, retention's
//! reading and the damage check do work nobody waits for. On one vCPU a
//! group commit that starts while a call is being decided delays its answer
//! by the commit's length. These threads run under `SCHED_BATCH` (per
//! thread, on Linux): when one wakes up it does not preempt the thread that
//! runs, so the call being decided finishes first.
//!
//! Their share of the CPU is not lowered. A lower nice value (10 was
//! tried) lets a busy competitor (a 200 MiB call classified on the blocking
//! pool) starve the writer, its bounded inbox fills, and every other shim's
//! calls wait seconds for room (`daemon/tests/stall.rs` failed). Never
//! `SCHED_IDLE`, for the same reason.

use std::future::Future;

/// Marks the calling thread as background work (`SCHED_BATCH`). Only the
/// calling thread, on Linux; elsewhere nothing. A thread this is called on
/// stays so: pool threads shared with the decision path must never call it.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and sched_setscheduler take plain integers and a
        // parameter that lives for the call.
        unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(libc::gettid(), libc::SCHED_BATCH, &param);
        }
    }
}

/// The calling thread's scheduling policy (Linux; `None` elsewhere).
#[cfg(test)]
pub fn this_threads_policy() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as above.
        Some(unsafe { libc::sched_getscheduler(libc::gettid()) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// A named thread of background work.
pub fn spawn<F>(name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        lower_this_thread();
        f()
    })
}

/// Runs `f` on a thread of its own as background work (not on the
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

    #[cfg(target_os = "linux")]
    const BATCH: Option<i32> = Some(libc::SCHED_BATCH);
    #[cfg(not(target_os = "linux"))]
    const BATCH: Option<i32> = None;

    #[test]
    fn a_background_thread_is_batch_work_and_the_caller_is_not() {
        let before = this_threads_policy();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn("latch-test-bg", move || tx.send(this_threads_policy()).unwrap()).unwrap().join().unwrap();
        assert_eq!(rx.recv().unwrap(), BATCH);
        assert_eq!(this_threads_policy(), before, "only the background thread is lowered");
    }

    #[tokio::test]
    async fn run_gives_back_the_result_and_none_for_a_panic() {
        assert_eq!(run("latch-test-bg", this_threads_policy).await, Some(BATCH));
        assert_eq!(run("latch-test-bg", || -> u8 { panic!("on purpose") }).await, None);
    }
}
