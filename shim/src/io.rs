//! Line readers and frame writers. Memory is bounded by the message being
//! relayed: a line longer than the limit is skipped as it streams by, never
//! buffered whole.

use std::os::fd::AsFd;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

pub enum Input {
    Line(Vec<u8>),
    /// A line longer than the limit, skipped; its length.
    Oversized(usize),
    /// End of stream (or a read error, which ends the stream the same way).
    Eof,
}

/// Reads lines into `tx` until end of stream.
pub async fn read_lines<R: AsyncBufRead + Unpin>(mut r: R, max: usize, tx: mpsc::Sender<Input>) {
    loop {
        let mut line = Vec::new();
        let mut skipped = 0usize;
        loop {
            let buf = match r.fill_buf().await {
                Ok(b) => b,
                Err(_) => {
                    let _ = tx.send(Input::Eof).await;
                    return;
                }
            };
            if buf.is_empty() {
                // EOF: a last line without newline still counts.
                if skipped > 0 {
                    let _ = tx.send(Input::Oversized(skipped)).await;
                } else if !line.is_empty() {
                    let _ = tx.send(Input::Line(line)).await;
                }
                let _ = tx.send(Input::Eof).await;
                return;
            }
            let (chunk, done) = match memchr(buf) {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            let n = chunk.len();
            if skipped > 0 || line.len() + n > max {
                skipped += line.len() + n;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
            r.consume(n);
            if done {
                break;
            }
        }
        let msg = if skipped > 0 { Input::Oversized(skipped) } else { Input::Line(line) };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', buf)
}

/// Writes frames from `rx`, flushing whenever the queue runs dry. Ends
/// (closing the stream) when every sender is gone or a write fails.
pub async fn write_frames<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() {
            return;
        }
        while let Ok(more) = rx.try_recv() {
            if w.write_all(&more).await.is_err() {
                return;
            }
        }
        if w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// Ensures a frame ends with exactly one newline.
pub fn with_newline(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() != Some(&b'\n') {
        line.push(b'\n');
    }
    line
}

/// The shim's stdin. MCP clients give it a pipe, which is driven by epoll
/// like any socket; tokio's own `stdin()` would run every read on its
/// blocking thread pool, a thread hop per message. Anything else (a file, a
/// terminal) falls back to that.
pub fn stdin() -> Box<dyn AsyncRead + Unpin + Send> {
    let pipe = std::io::stdin().as_fd().try_clone_to_owned().and_then(tokio::net::unix::pipe::Receiver::from_owned_fd);
    match pipe {
        Ok(p) => {
            grow(&p);
            Box::new(p)
        }
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// The shim's stdout, likewise.
pub fn stdout() -> Box<dyn AsyncWrite + Unpin + Send> {
    let pipe = std::io::stdout().as_fd().try_clone_to_owned().and_then(tokio::net::unix::pipe::Sender::from_owned_fd);
    match pipe {
        Ok(p) => {
            grow(&p);
            Box::new(p)
        }
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

/// The client's pipes get the server pipes' size ([`crate::child`]): a
/// 1 MiB result then crosses in two fills instead of sixteen.
fn grow(pipe: &impl std::os::fd::AsRawFd) {
    #[cfg(target_os = "linux")]
    crate::child::grow_pipe(pipe.as_raw_fd());
}
