//! The writer thread's inbox: commands in order, bounded, and a wake-up
//! only when the writer must act now.
//!
//! Rows are durable once journaled, so nobody waits for most commands: the
//! writer gathers them for [`DEFER`] and commits them in one transaction.
//! A sender wakes the writer only when the inbox was empty (the writer is
//! asleep without a timer) or when someone waits ([`Cmd::urgent`]): under
//! load, calls cost no thread wake-up at all.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::event::AuditError;
use super::writer::Cmd;

/// Commands queued before senders wait.
pub(super) const QUEUE: usize = 16 * 1024;

/// Work nobody waits for (journaled rows, outcomes, saved state) is held at
/// most this long, so that it joins one commit with the rest.
pub(super) const DEFER: Duration = Duration::from_millis(5);

/// How often a writer that could not commit tries again on its own.
pub(super) const RETRY: Duration = Duration::from_millis(500);

#[derive(Default)]
pub(super) struct Inbox {
    pub(super) cmds: Vec<Cmd>,
    /// Someone waits for a command in `cmds`.
    pub(super) urgent: bool,
    /// Every handle is gone: commit what is left and stop.
    pub(super) closed: bool,
}

pub(super) struct Queue {
    inbox: Mutex<Inbox>,
    wake: Condvar,
    room: Semaphore,
    /// Why the last commit failed, while rows wait to be committed again.
    stuck: Mutex<Option<String>>,
    stuck_flag: AtomicBool,
    /// The newest row id committed.
    pub(super) committed: AtomicI64,
}

impl Queue {
    pub(super) fn new(committed: i64) -> Queue {
        Queue {
            inbox: Mutex::default(),
            wake: Condvar::new(),
            room: Semaphore::new(QUEUE),
            stuck: Mutex::default(),
            stuck_flag: AtomicBool::new(false),
            committed: AtomicI64::new(committed),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for room for one command.
    pub(super) async fn reserve(&self) -> Result<(), AuditError> {
        let permit = self.room.acquire().await.map_err(|_| AuditError::WriterGone)?;
        permit.forget();
        Ok(())
    }

    /// Gives back room reserved for a command that was not sent.
    pub(super) fn unreserve(&self) {
        self.room.add_permits(1);
    }

    /// Queues `cmd` (room reserved first), waking the writer if it must act.
    pub(super) fn push(&self, cmd: Cmd) {
        let mut inbox = self.lock();
        let was_empty = inbox.cmds.is_empty();
        let urgent = cmd.urgent();
        inbox.cmds.push(cmd);
        inbox.urgent |= urgent;
        let wake = was_empty || urgent || inbox.cmds.len() >= super::writer::MAX_BATCH;
        drop(inbox);
        if wake {
            self.wake.notify_one();
        }
    }

    /// No more commands will come.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Takes the commands to commit: waits for one, then gathers more for
    /// [`DEFER`] unless someone waits. `retrying` makes the writer wake up
    /// every [`RETRY`] on its own. Returns the commands and whether the
    /// queue is closed.
    pub(super) fn take(&self, retrying: bool) -> (Vec<Cmd>, bool) {
        let mut inbox = self.lock();
        while inbox.cmds.is_empty() && !inbox.closed {
            if retrying {
                let (g, timeout) = self.wake.wait_timeout(inbox, RETRY).unwrap_or_else(|e| e.into_inner());
                inbox = g;
                if timeout.timed_out() {
                    break;
                }
            } else {
                inbox = self.wake.wait(inbox).unwrap_or_else(|e| e.into_inner());
            }
        }
        let until = std::time::Instant::now() + DEFER;
        while !inbox.closed && !inbox.urgent && inbox.cmds.len() < super::writer::MAX_BATCH && !inbox.cmds.is_empty() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            inbox = self.wake.wait_timeout(inbox, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        inbox.urgent = false;
        let cmds = std::mem::take(&mut inbox.cmds);
        let closed = inbox.closed;
        drop(inbox);
        self.room.add_permits(cmds.len());
        (cmds, closed)
    }

    /// Notes that rows wait to be committed again (`why`), or, with none,
    /// that the log is writable.
    pub(super) fn set_stuck(&self, why: Option<String>) {
        self.stuck_flag.store(why.is_some(), Ordering::Release);
        *self.stuck.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// Why rows wait to be committed again, if they do.
    pub(super) fn stuck(&self) -> Option<String> {
        if !self.stuck_flag.load(Ordering::Acquire) {
            return None;
        }
        self.stuck.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
