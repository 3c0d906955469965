//! An async client of the daemon: connect, say hello, then exchange lines.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

use crate::frame::{self, FrameError};
use crate::paths::Paths;
use crate::peer;
use crate::quiet;
use crate::{ClientMsg, DaemonMsg, PROTOCOL_VERSION, Role};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no daemon is running (socket {0}) — start it with `latch daemon`")]
    NoDaemon(String),
    #[error("lost the connection to the daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the daemon closed the connection")]
    Closed,
    #[error("the daemon refused this connection: {0}")]
    Refused(String),
    #[error(
        "the process answering at {socket} is not Latch's daemon ({impostor}); nothing was sent to it and tool calls \
         are refused. Stop that process (pid {pid}), then start Latch's daemon with `latch daemon`",
        pid = impostor.pid
    )]
    Impostor { socket: String, impostor: peer::Impostor },
    #[error(
        "Latch's system daemon is not running (socket {0}); tool calls are refused until a person starts Latch's \
         system daemon"
    )]
    NoSystemDaemon(String),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the daemon answered something unexpected: {0}")]
    Unexpected(String),
}

/// What identifies this peer to the daemon.
#[derive(Clone, Debug)]
pub struct Hello {
    pub role: Role,
    pub name: String,
    pub session: String,
    pub command: Vec<String>,
}

impl Hello {
    pub fn new(role: Role, name: impl Into<String>) -> Hello {
        Hello { role, name: name.into(), session: String::new(), command: Vec::new() }
    }
}

/// The reading half of a connection.
pub struct Reader {
    inner: BufReader<ReadHalf<quiet::Stream>>,
    buf: Vec<u8>,
}

/// The writing half of a connection.
pub struct Writer {
    inner: WriteHalf<quiet::Stream>,
}

/// Connects to the daemon at `paths.socket` and completes the handshake.
///
/// Before a byte is sent, the process at the other end must be Latch's
/// daemon: the user's own, running the same executable as this client
/// ([`peer`]). Anything else is [`ClientError::Impostor`].
pub async fn connect(paths: &Paths, hello: &Hello) -> Result<(Reader, Writer), ClientError> {
    let name = paths.socket.as_path().to_fs_name::<GenericFilePath>()?;
    let stream = match Stream::connect(name).await {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
            let socket = paths.socket.display().to_string();
            // System mode: never "start one yourself".
            if matches!(crate::system::load(), Ok(Some(_))) {
                return Err(ClientError::NoSystemDaemon(socket));
            }
            return Err(ClientError::NoDaemon(socket));
        }
        Err(e) => return Err(e.into()),
    };
    let fd: OwnedFd = match stream {
        Stream::UdSocket(s) => s.try_into()?,
    };
    // Checked on the connected socket itself, so the answer is about the
    // process this connection talks to.
    if let Err(impostor) = peer::verify_daemon(fd.as_fd()) {
        return Err(ClientError::Impostor { socket: paths.socket.display().to_string(), impostor });
    }
    let (r, w) = tokio::io::split(quiet::Stream::new(fd)?);
    let mut reader = Reader { inner: BufReader::with_capacity(64 * 1024, r), buf: Vec::new() };
    let mut writer = Writer { inner: w };
    writer
        .send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            role: hello.role,
            name: hello.name.clone(),
            pid: std::process::id(),
            session: hello.session.clone(),
            command: hello.command.clone(),
        })
        .await?;
    match reader.recv().await? {
        DaemonMsg::Welcome { .. } => Ok((reader, writer)),
        DaemonMsg::Refused { reason } => Err(ClientError::Refused(reason)),
        other => Err(ClientError::Unexpected(format!("{other:?}"))),
    }
}

impl Reader {
    /// The next message; `Closed` at end of stream.
    pub async fn recv(&mut self) -> Result<DaemonMsg, ClientError> {
        self.buf.clear();
        let n = self.inner.read_until(b'\n', &mut self.buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        Ok(frame::decode(&self.buf)?)
    }
}

impl Writer {
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), ClientError> {
        self.send_raw(&frame::encode(msg)).await
    }

    /// Sends an already encoded line (newline included).
    pub async fn send_raw(&mut self, line: &[u8]) -> Result<(), ClientError> {
        self.inner.write_all(line).await?;
        self.inner.flush().await?;
        Ok(())
    }
}

/// One request, one reply: for the CLI. Replies are matched by `req`;
/// anything else that arrives in between is skipped.
pub async fn request(paths: &Paths, role: Role, msg: ClientMsg) -> Result<DaemonMsg, ClientError> {
    let (mut r, mut w) = connect(paths, &Hello::new(role, "cli")).await?;
    w.send(&msg).await?;
    loop {
        let reply = r.recv().await?;
        if reply_req(&reply).is_some() {
            return Ok(reply);
        }
    }
}

/// The `req` a reply answers, if it is a reply.
pub fn reply_req(msg: &DaemonMsg) -> Option<u64> {
    match msg {
        DaemonMsg::Decision { req, .. }
        | DaemonMsg::Pending { req, .. }
        | DaemonMsg::Answered { req, .. }
        | DaemonMsg::Status { req, .. }
        | DaemonMsg::AuditRows { req, .. }
        | DaemonMsg::AuditPruned { req, .. }
        | DaemonMsg::Subscribed { req }
        | DaemonMsg::Done { req, .. }
        | DaemonMsg::Error { req, .. }
        | DaemonMsg::Revealed { req, .. }
        | DaemonMsg::ToolFindings { req, .. } => Some(*req),
        _ => None,
    }
}
