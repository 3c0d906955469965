//! The driver: the terminal, the daemon connection, and the loop between
//! them and [`App`].
//!
//! * Terminal: `ratatui::try_init` (raw mode, alternate screen, a panic hook
//!   that restores the terminal) and a guard that restores it on every other
//!   exit path. SIGTERM, SIGHUP and SIGINT quit cleanly too.
//! * Keys: a thread blocked in `crossterm::event::read` feeds a channel, so
//!   an idle console does not wake up at all.
//! * Daemon: a task connects, says `Hello` as a console, and relays lines
//!   both ways. When the connection drops it reports it and retries with a
//!   backoff from 250 ms doubling to 5 s; the console keeps running.
//! * Drawing: only after something happened (a key, a daemon message, a
//!   resize, or a tick asked for by [`App::next_wake`]); a burst of daemon
//!   messages is handled in full before the next frame.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latch_proto::paths::Paths;
use latch_proto::{ClientMsg, DaemonMsg, PROTOCOL_VERSION, Role, frame};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::TuiError;
use crate::app::{App, Input};
use crate::ui;

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Daemon messages handled at most between two frames.
const BURST: usize = 4096;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Offset of local time from UTC now, in seconds.
fn local_offset_s() -> i32 {
    let t = (now_ms() / 1000) as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i32
    }
}

/// Restores the terminal when dropped, whatever the exit path.
struct TerminalGuard(DefaultTerminal);

impl TerminalGuard {
    fn new() -> Result<TerminalGuard, TuiError> {
        match ratatui::try_init() {
            Ok(t) => Ok(TerminalGuard(t)),
            Err(e) => {
                ratatui::restore();
                Err(TuiError::Terminal(e))
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

pub async fn run(paths: Paths) -> Result<(), TuiError> {
    use tokio::signal::unix::{SignalKind, signal};
    let who = std::env::var("USER").unwrap_or_default();
    let mut app = App::new(who, local_offset_s());

    let (in_tx, mut in_rx) = mpsc::channel::<Input>(1024);
    let (out_tx, out_rx) = mpsc::unbounded_channel::<ClientMsg>();
    let daemon = tokio::spawn(daemon_task(paths, in_tx, out_rx));

    let mut term = TerminalGuard::new()?;
    let (key_tx, mut key_rx) = mpsc::channel::<std::io::Result<TermEvent>>(64);
    std::thread::Builder::new()
        .name("latch-tui-keys".into())
        .spawn(move || {
            loop {
                let ev = event::read();
                let failed = ev.is_err();
                if key_tx.blocking_send(ev).is_err() || failed {
                    break;
                }
            }
        })
        .map_err(TuiError::Terminal)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(TuiError::Terminal)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(TuiError::Terminal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(TuiError::Terminal)?;

    let mut dirty = true;
    let result = loop {
        if dirty {
            let now = now_ms();
            if let Err(e) = term.0.draw(|f| ui::draw(f, &app, now)) {
                break Err(TuiError::Draw(e));
            }
            dirty = false;
        }
        let now = now_ms();
        let wake = app.next_wake(now);
        let timer = async {
            match wake {
                Some(t) => tokio::time::sleep(Duration::from_millis((t - now).max(0) as u64)).await,
                None => std::future::pending().await,
            }
        };
        let input = tokio::select! {
            ev = key_rx.recv() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => Some(Input::Key(k)),
                Some(Ok(TermEvent::Resize(..))) => {
                    dirty = true;
                    None
                }
                Some(Ok(_)) => None,
                Some(Err(e)) => break Err(TuiError::Input(e.to_string())),
                None => break Err(TuiError::Input("the key reader stopped".into())),
            },
            Some(i) = in_rx.recv() => Some(i),
            _ = timer => Some(Input::Tick),
            _ = sigterm.recv() => break Ok(()),
            _ = sighup.recv() => break Ok(()),
            _ = sigint.recv() => break Ok(()),
        };
        if let Some(input) = input {
            dirty = true;
            feed(&mut app, input, &out_tx);
            for _ in 0..BURST {
                match in_rx.try_recv() {
                    Ok(i) => feed(&mut app, i, &out_tx),
                    Err(_) => break,
                }
            }
        }
        if app.should_quit() {
            break Ok(());
        }
    };
    daemon.abort();
    drop(term);
    result
}

fn feed(app: &mut App, input: Input, out: &mpsc::UnboundedSender<ClientMsg>) {
    for msg in app.handle(input, now_ms()) {
        // The daemon task drops what arrives while it is disconnected; the
        // app knows the connection state and says so to the user.
        let _ = out.send(msg);
    }
}

/// Connects, relays, reconnects. Ends when the app's side closes.
async fn daemon_task(
    paths: Paths,
    to_app: mpsc::Sender<Input>,
    mut from_app: mpsc::UnboundedReceiver<ClientMsg>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let error = match connect(&paths).await {
            Ok((reader, writer)) => {
                backoff = MIN_BACKOFF;
                // Whatever the app sent while disconnected is stale.
                while from_app.try_recv().is_ok() {}
                if to_app.send(Input::Connected).await.is_err() {
                    return;
                }
                match relay(reader, writer, &to_app, &mut from_app).await {
                    Some(e) => e,
                    None => return,
                }
            }
            Err(e) => e,
        };
        let retry_at = now_ms() + backoff.as_millis() as i64;
        if to_app
            .send(Input::Disconnected { error, retry_at })
            .await
            .is_err()
        {
            return;
        }
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                m = from_app.recv() => if m.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

type Reader = BufReader<OwnedReadHalf>;

/// Opens the socket and does the handshake.
// TODO(lead): replace with `latch_proto::client::Client::connect` once it lands.
async fn connect(paths: &Paths) -> Result<(Reader, OwnedWriteHalf), String> {
    let stream = UnixStream::connect(&paths.socket)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                format!("no daemon at {}", paths.socket.display())
            }
            _ => format!("{}: {e}", paths.socket.display()),
        })?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let hello = ClientMsg::Hello {
        protocol: PROTOCOL_VERSION,
        role: Role::Console,
        name: "tui".into(),
        pid: std::process::id(),
        session: String::new(),
        command: Vec::new(),
    };
    w.write_all(&frame::encode(&hello))
        .await
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)
        .await
        .map_err(|e| e.to_string())?
        == 0
    {
        return Err("the daemon closed the connection during the handshake".into());
    }
    match frame::decode::<DaemonMsg>(&line).map_err(|e| e.to_string())? {
        DaemonMsg::Welcome { .. } => Ok((r, w)),
        DaemonMsg::Refused { reason } => Err(format!("refused: {reason}")),
        other => Err(format!("unexpected handshake reply: {other:?}")),
    }
}

/// Relays until the connection fails (`Some(why)`) or the app is gone (`None`).
async fn relay(
    mut reader: Reader,
    mut writer: OwnedWriteHalf,
    to_app: &mpsc::Sender<Input>,
    from_app: &mut mpsc::UnboundedReceiver<ClientMsg>,
) -> Option<String> {
    // `read_until` appends what it has read so far to `line` even when the
    // select drops it for the other branch, so no byte is lost.
    let mut line = Vec::new();
    loop {
        tokio::select! {
            n = reader.read_until(b'\n', &mut line) => {
                match n {
                    Ok(0) => return Some("the daemon closed the connection".into()),
                    Err(e) => return Some(format!("connection lost: {e}")),
                    Ok(_) if !line.ends_with(b"\n") => return Some("the daemon closed the connection".into()),
                    Ok(_) => {}
                }
                // A line this console does not understand (a newer daemon)
                // is skipped rather than ending the connection.
                if let Ok(msg) = frame::decode::<DaemonMsg>(&line)
                    && to_app.send(Input::Daemon(Box::new(msg))).await.is_err()
                {
                    return None;
                }
                line.clear();
            }
            m = from_app.recv() => {
                let msg = m?;
                if let Err(e) = writer.write_all(&frame::encode(&msg)).await {
                    return Some(format!("connection lost: {e}"));
                }
            }
        }
    }
}
