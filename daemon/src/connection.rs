//! The connections component: accepts on the socket, checks who connects,
//! shakes hands, reads frames and hands each to [`crate::dispatch`], and
//! cleans up when a connection ends.
//!
//! Each connection writes through its own bounded queue
//! ([`crate::outbox`]); a frame too large to decode in a moment is decoded
//! on the blocking pool, so one connection's big call never holds up
//! another's.

use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::Listener;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use latch_proto::quiet;
use latch_proto::{ClientMsg, DaemonMsg, PROTOCOL_VERSION, Role, frame};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::audit::NewEvent;
use crate::dispatch::LARGE_FRAME;
use crate::outbox::{self, Outbox};
use crate::shared::{Shared, event_now};

/// The accept loop and the connections it started.
pub(crate) struct Connections {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Connections {
    /// Starts accepting on `listener`.
    pub(crate) fn start(shared: Arc<Shared>, listener: Listener) -> Connections {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(shared, listener, stop_rx));
        Connections { stop, task }
    }

    /// Stops accepting, ends every connection, and waits (up to `grace`)
    /// for them to close.
    pub(crate) async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: Listener, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut next_conn = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    next_conn += 1;
                    conns.spawn(connection(shared.clone(), stream, next_conn, stop.clone()));
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Writes what is queued for one connection, flushing once per burst.
fn writer(
    mut w: impl tokio::io::AsyncWrite + Unpin + Send + 'static,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if w.write_all(&line).await.is_err() {
                break;
            }
            // Write everything queued before flushing once.
            while let Ok(more) = rx.try_recv() {
                if w.write_all(&more).await.is_err() {
                    return;
                }
            }
            if w.flush().await.is_err() {
                break;
            }
        }
    })
}

/// Decodes one frame; a large one on the blocking pool. Gives the buffer
/// back for reuse.
/// None if decoding panicked.
async fn decode(buf: Vec<u8>) -> Option<(Vec<u8>, Result<ClientMsg, frame::FrameError>)> {
    if buf.len() < LARGE_FRAME {
        let msg = frame::decode::<ClientMsg>(&buf);
        return Some((buf, msg));
    }
    tokio::task::spawn_blocking(move || {
        let msg = frame::decode::<ClientMsg>(&buf);
        (buf, msg)
    })
    .await
    .ok()
}

async fn connection(shared: Arc<Shared>, stream: Stream, conn: u64, mut stop: watch::Receiver<bool>) {
    let me = crate::audit::current_uid();
    let creds = stream.peer_creds().ok();
    let peer = creds.as_ref().and_then(|c| c.euid());
    let peer_pid = creds.as_ref().and_then(|c| c.pid());
    // Watched for reading only: see `latch_proto::quiet`.
    let stream = match quiet::Stream::from_local(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot use a new connection: {e}");
            return;
        }
    };
    let (r, mut w) = tokio::io::split(stream);
    // System mode: the socket's group decides who connects; the uid is
    // recorded with everything the peer does, and answers need the PIN.
    if peer != Some(me) && !(shared.system && peer.is_some()) {
        let reason = format!("peer user id {peer:?} is not the daemon's ({me})");
        let _ = w.write_all(&frame::encode(&DaemonMsg::Refused { reason: reason.clone() })).await;
        shared.record(NewEvent { kind: "refused", detail: Some(reason), ..event_now() }).await;
        return;
    }
    let (tx, rx) = Outbox::new(outbox::QUEUE);
    let writer = writer(w, rx);
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut buf = Vec::with_capacity(4096);

    let hello = match tokio::time::timeout(Duration::from_secs(10), reader.read_until(b'\n', &mut buf)).await {
        Ok(Ok(n)) if n > 0 => frame::decode::<ClientMsg>(&buf),
        _ => return,
    };
    let refuse = |reason: String| frame::encode(&DaemonMsg::Refused { reason });
    let (role, name) = match hello {
        Ok(ClientMsg::Hello { protocol, role, name, pid, session, command }) => {
            if protocol != PROTOCOL_VERSION {
                let reason = format!(
                    "protocol {protocol} is not the daemon's {PROTOCOL_VERSION}: restart the daemon (`latch daemon`) \
                     after upgrading, so shim and daemon are the same version"
                );
                tx.send(refuse(reason)).await;
                drop(tx);
                let _ = writer.await;
                return;
            }
            tx.send(frame::encode(&DaemonMsg::Welcome { protocol, daemon_pid: std::process::id() })).await;
            shared.pin.connected(conn, crate::pin::login_of(me), peer_pid);
            match role {
                Role::Shim => {
                    let place = crate::identity::place_of(peer_pid).await;
                    crate::registry::shim_connected(&shared, conn, &name, pid, session, command, tx.clone(), place)
                        .await;
                }
                Role::Console => shared.engine().consoles += 1,
                Role::Cli => {}
                Role::Hook => {
                    let place = crate::identity::place_of(peer_pid).await;
                    crate::hook::connected(&shared, conn, &name, pid, &session, &command, tx.clone(), place).await;
                }
            }
            (role, name)
        }
        _ => {
            tx.send(refuse("the first message must be a hello".into())).await;
            drop(tx);
            let _ = writer.await;
            return;
        }
    };

    loop {
        buf.clear();
        let n = tokio::select! {
            n = reader.read_until(b'\n', &mut buf) => n,
            _ = stop.changed() => break,
            _ = tx.dropped() => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Some((back, msg)) = decode(std::mem::take(&mut buf)).await else { break };
        buf = back;
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                // Answer the request it was meant to be, so a shim waiting on
                // it fails closed instead of waiting forever.
                let (kind, req) = frame::envelope_of(&buf);
                let message = match e {
                    // Only a call's arguments can hold what the shim let
                    // through and the daemon cannot read: a number beyond
                    // any machine's range, which JSON itself allows.
                    frame::FrameError::Json(e) if kind == "decide" => {
                        format!("its arguments are JSON that Latch cannot read: {e}")
                    }
                    e => e.to_string(),
                };
                tx.send(frame::encode(&DaemonMsg::Error { req, message })).await;
                continue;
            }
        };
        crate::dispatch::handle(&shared, conn, role, &name, &tx, msg, &mut buf).await;
    }

    match role {
        Role::Shim => {
            crate::results::shim_closed(&shared, conn).await;
            crate::registry::shim_closed(&shared, conn).await;
        }
        Role::Console => shared.engine().consoles -= 1,
        Role::Cli => {}
        Role::Hook => crate::hook::closed(&shared, conn).await,
    }
    shared.pin.disconnected(conn);
    if tx.is_dropped() {
        // It stopped reading: what is queued will not reach it.
        writer.abort();
    } else {
        drop(tx);
        let _ = writer.await;
    }
}
