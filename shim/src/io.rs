//! Line readers and frame writers. Memory is bounded by the message being
//! relayed: a line longer than the limit is skipped as it streams by, never
//! buffered whole.
//!
//! Short lines are cut out of a small read buffer. A line that outgrows it
//! is read from then on straight into its own buffer (no second copy), and
//! that buffer is handed on whole; once written, the writer gives it back
//! ([`Spare`]) for the next long line, so a stream of large messages reuses
//! one buffer instead of faulting in fresh pages for each.

use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

pub enum Input {
    Line(Vec<u8>),
    /// A line longer than the limit, skipped; its length.
    Oversized(usize),
    /// End of stream (or a read error, which ends the stream the same way).
    Eof,
}

/// The small read buffer: lines shorter than this are copied out of it
/// (one copy, exact size); a longer one moves to a buffer of its own.
const READ: usize = 64 * 1024;

/// Most bytes a long line's buffer asks for ahead of one read: the server
/// pipe's size, what one read can return.
const READ_LONG: usize = 512 * 1024;

/// Largest buffer kept for reuse; a longer line's buffer is freed, so the
/// memory kept after a large message stays bounded.
const KEEP: usize = 4 << 20;

/// One long-line buffer kept between messages: the writers give back what
/// they wrote, the readers take it for their next long line. A sequence of
/// 1 MiB messages then reuses pages already mapped instead of a fresh
/// mapping per message (a page fault per 4 KiB), and what the shim keeps
/// is at most one buffer, of the longest recent line's size.
#[derive(Clone, Default)]
pub struct Spare(Arc<Mutex<Option<Vec<u8>>>>);

impl Spare {
    /// Keeps `buf` if it is a long line's buffer and larger than the one
    /// kept.
    pub fn give(&self, mut buf: Vec<u8>) {
        if !(READ..=KEEP).contains(&buf.capacity()) {
            return;
        }
        buf.clear();
        if let Ok(mut slot) = self.0.lock()
            && slot.as_ref().is_none_or(|kept| kept.capacity() < buf.capacity())
        {
            *slot = Some(buf);
        }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().ok()?.take()
    }
}

/// Reads lines from `r` into `tx` until end of stream.
pub async fn read_lines<R: AsyncRead + Unpin>(r: R, max: usize, spare: Spare, tx: mpsc::Sender<Input>) {
    let mut lines = Lines { r, buf: Vec::with_capacity(READ), start: 0, max, spare };
    loop {
        let input = lines.next().await;
        let end = matches!(input, Input::Eof);
        if tx.send(input).await.is_err() || end {
            return;
        }
    }
}

/// A line reader over `r`.
struct Lines<R> {
    r: R,
    /// Bytes read and not yet handed on: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    max: usize,
    spare: Spare,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    async fn next(&mut self) -> Input {
        loop {
            let pending = &self.buf[self.start..];
            if let Some(i) = memchr(pending) {
                let n = i + 1;
                let input = if n > self.max { Input::Oversized(n) } else { Input::Line(pending[..n].to_vec()) };
                self.start += n;
                return input;
            }
            // No newline yet: the start of a line is kept at the front.
            self.buf.drain(..self.start);
            self.start = 0;
            if self.buf.capacity() > 2 * READ && self.buf.len() < READ {
                self.buf.shrink_to(READ);
            }
            if self.buf.len() >= READ.min(self.max) {
                return self.long().await;
            }
            self.buf.reserve(READ - self.buf.len().min(READ));
            match self.r.read_buf(&mut self.buf).await {
                Ok(0) => return self.last(),
                Ok(_) => {}
                Err(_) => return Input::Eof,
            }
        }
    }

    /// End of stream: a last line without newline still counts.
    fn last(&mut self) -> Input {
        match std::mem::take(&mut self.buf) {
            rest if rest.is_empty() => Input::Eof,
            rest if rest.len() > self.max => Input::Oversized(rest.len()),
            rest => Input::Line(rest),
        }
    }

    /// A line that outgrew the read buffer (all of `buf`, no newline in
    /// it): read on into a buffer of its own.
    async fn long(&mut self) -> Input {
        let mut line = self.spare.take().unwrap_or_default();
        line.reserve(self.buf.len() + READ_LONG);
        line.extend_from_slice(&self.buf);
        self.buf.clear();
        let mut searched = line.len();
        loop {
            if line.len() > self.max {
                return self.skip(line.len()).await;
            }
            line.reserve(READ_LONG);
            match self.r.read_buf(&mut line).await {
                Ok(0) => {
                    self.buf = line;
                    return self.last();
                }
                Ok(_) => {}
                Err(_) => return Input::Eof,
            }
            if let Some(i) = memchr(&line[searched..]) {
                let end = searched + i + 1;
                // What came after the newline starts the next line.
                self.buf.extend_from_slice(&line[end..]);
                line.truncate(end);
                if end > self.max {
                    return Input::Oversized(end);
                }
                return Input::Line(line);
            }
            searched = line.len();
        }
    }

    /// Skips the rest of a line over the limit, `seen` bytes of it read.
    async fn skip(&mut self, mut seen: usize) -> Input {
        loop {
            self.buf.clear();
            self.buf.reserve(READ);
            match self.r.read_buf(&mut self.buf).await {
                Ok(0) => return Input::Oversized(seen),
                Ok(_) => {}
                Err(_) => return Input::Eof,
            }
            if let Some(i) = memchr(&self.buf) {
                self.start = i + 1;
                return Input::Oversized(seen + i + 1);
            }
            seen += self.buf.len();
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', buf)
}

/// A frame for a writer: its own buffer, or one shared with a check that
/// reads it while it is written (a result in `record` mode). Whoever is
/// done with a buffer last gives it to [`Spare`].
#[derive(Debug)]
pub enum Frame {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Frame {
    fn bytes(&self) -> &[u8] {
        match self {
            Frame::Owned(v) => v,
            Frame::Shared(v) => v,
        }
    }

    fn written(self, spare: &Spare) {
        match self {
            Frame::Owned(v) => spare.give(v),
            Frame::Shared(v) => spare.give_shared(v),
        }
    }
}

impl From<Vec<u8>> for Frame {
    fn from(v: Vec<u8>) -> Frame {
        Frame::Owned(v)
    }
}

impl Spare {
    /// [`Spare::give`] for a buffer that may still be shared: kept when
    /// this was the last holder.
    pub fn give_shared(&self, buf: Arc<Vec<u8>>) {
        if let Ok(buf) = Arc::try_unwrap(buf) {
            self.give(buf);
        }
    }
}

/// Writes frames from `rx`, flushing whenever the queue runs dry; gives
/// each written frame's buffer to `spare`. Ends (closing the stream) when
/// every sender is gone or a write fails.
pub async fn write_frames<W: AsyncWrite + Unpin>(mut w: W, spare: Spare, mut rx: mpsc::Receiver<Frame>) {
    while let Some(frame) = rx.recv().await {
        if w.write_all(frame.bytes()).await.is_err() {
            return;
        }
        frame.written(&spare);
        while let Ok(more) = rx.try_recv() {
            if w.write_all(more.bytes()).await.is_err() {
                return;
            }
            more.written(&spare);
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

#[cfg(test)]
mod tests;
