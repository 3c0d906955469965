//! One connection's outbound queue, bounded.
//!
//! The connection's own replies wait for room ([`Outbox::send`]): a client
//! that sends faster than it reads is slowed down (backpressure), and only
//! its own reading stops. Everything another task sends to it (an answer
//! to a held call, a console event) never waits ([`Outbox::push`]): a peer
//! whose queue is full has fallen too far behind and is dropped, so that a
//! peer that never reads cannot stall the hold timers, the approval driver
//! or any other connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, mpsc};

/// Frames queued per connection before it counts as too far behind.
pub(crate) const QUEUE: usize = 4096;

#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Vec<u8>>,
    dropped: Arc<Dropped>,
}

#[derive(Debug, Default)]
struct Dropped {
    set: AtomicBool,
    notify: Notify,
}

impl Outbox {
    /// A queue of `capacity` frames and its receiving end.
    pub(crate) fn new(capacity: usize) -> (Outbox, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Outbox { tx, dropped: Arc::default() }, rx)
    }

    /// Queues a frame, waiting for room: for the connection's own replies.
    /// False once the connection is gone.
    pub(crate) async fn send(&self, line: Vec<u8>) -> bool {
        if self.is_dropped() {
            return false;
        }
        tokio::select! {
            sent = self.tx.send(line) => sent.is_ok(),
            _ = self.dropped() => false,
        }
    }

    /// Queues a frame without waiting; a full queue drops the peer.
    pub(crate) fn push(&self, line: Vec<u8>) {
        if self.is_dropped() {
            return;
        }
        match self.tx.try_send(line) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.drop_peer(),
        }
    }

    /// Marks the peer as too far behind: its connection closes.
    pub(crate) fn drop_peer(&self) {
        if !self.dropped.set.swap(true, Ordering::SeqCst) {
            tracing::warn!("a peer stopped reading its socket ({QUEUE} frames queued): dropping it");
        }
        self.dropped.notify.notify_waiters();
        self.dropped.notify.notify_one();
    }

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.set.load(Ordering::SeqCst)
    }

    /// Resolves once the peer is dropped.
    pub(crate) async fn dropped(&self) {
        loop {
            let notified = self.dropped.notify.notified();
            if self.is_dropped() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_the_peer_instead_of_waiting() {
        let (out, mut rx) = Outbox::new(2);
        out.push(b"1\n".to_vec());
        out.push(b"2\n".to_vec());
        assert!(!out.is_dropped());
        out.push(b"3\n".to_vec());
        assert!(out.is_dropped());
        out.dropped().await;
        assert_eq!(rx.recv().await.unwrap(), b"1\n");
    }
}
