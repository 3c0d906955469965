//! A Unix stream that is watched for reading only.
//!
//! Tokio registers a socket with epoll for reading *and* writing, edge
//! triggered. On a Unix stream socket every read by the peer frees send
//! space, and the kernel then wakes whoever is registered for writing on
//! the other end: each frame the daemon reads woke the shim's thread for
//! nothing, and each answer the shim read woke the daemon's. On a 2-vCPU
//! machine such a wake-up of an idle vCPU costs tens of µs, on both sides.
//!
//! [`Stream`] registers its socket for reading only. Writes go straight to
//! the socket; only when one would block (a full send buffer: a large frame
//! or a peer that does not read) does it register a second descriptor of
//! the same socket for writing, and drops that registration again at the
//! next flush.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

pub struct Stream {
    read: AsyncFd<OwnedFd>,
    /// A registration for writing, while a write waits for send space.
    write: Option<AsyncFd<OwnedFd>>,
}

impl Stream {
    /// Takes over a connected Unix stream socket (made non-blocking here).
    pub fn new(fd: OwnedFd) -> io::Result<Stream> {
        set_nonblocking(&fd)?;
        Ok(Stream { read: watch(fd, Interest::READABLE)?, write: None })
    }

    /// Takes over an interprocess local-socket stream.
    pub fn from_local(stream: interprocess::local_socket::tokio::Stream) -> io::Result<Stream> {
        use interprocess::local_socket::tokio::Stream as Local;
        let fd: OwnedFd = match stream {
            Local::UdSocket(s) => s.try_into()?,
        };
        Stream::new(fd)
    }

    fn raw_write(&self, data: &[u8]) -> io::Result<usize> {
        // SAFETY: send reads at most `data.len()` bytes from `data`.
        // MSG_NOSIGNAL: a closed peer is an error, not a SIGPIPE.
        let n = unsafe { libc::send(self.read.as_raw_fd(), data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }
}

fn watch(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open, and its raw descriptor the same, for
    // as long as the AsyncFd that owns it.
    Ok(unsafe { AsyncFd::register_with_interest(fd, interest) }?)
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; no memory is passed.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.read.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let read = guard.try_io(|fd| {
                // SAFETY: recv writes at most `unfilled.len()` bytes into it.
                let n = unsafe { libc::recv(fd.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len(), 0) };
                if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
            });
            match read {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // Not readable after all: readiness was cleared, wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            if self.write.is_none() {
                match self.raw_write(data) {
                    Ok(n) => return Poll::Ready(Ok(n)),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Registered after the failed write, so the state
                        // epoll reports first already counts any space
                        // freed since: no wake-up is lost.
                        let dup = self.read.get_ref().as_fd().try_clone_to_owned()?;
                        self.write = Some(watch(dup, Interest::WRITABLE)?);
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let this = &*self;
            let Some(write) = &this.write else { continue };
            let mut guard = ready!(write.poll_write_ready(cx))?;
            match guard.try_io(|_| this.raw_write(data)) {
                Ok(Ok(n)) => return Poll::Ready(Ok(n)),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Everything was handed to the kernel: stop watching for space.
        self.write = None;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: shutdown on a socket we own.
        if unsafe { libc::shutdown(self.read.as_raw_fd(), libc::SHUT_WR) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::NotConnected {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair() -> (Stream, Stream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        (Stream::new(a.into()).unwrap(), Stream::new(b.into()).unwrap())
    }

    #[tokio::test]
    async fn frames_larger_than_the_send_buffer_arrive_whole() {
        let (mut a, mut b) = pair();
        let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = tokio::spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.flush().await.unwrap();
            a.shutdown().await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert!(got == big, "{} bytes back of {}", got.len(), big.len());
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_peer_is_an_error_not_a_signal() {
        let (mut a, b) = pair();
        drop(b);
        let mut err = None;
        for _ in 0..4 {
            if let Err(e) = a.write_all(&[0u8; 64 * 1024]).await {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err.expect("writes to a closed peer fail").kind(), io::ErrorKind::BrokenPipe);
    }
}
