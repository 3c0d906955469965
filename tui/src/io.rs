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

use latch_proto::client::{self, ClientError, Hello, Reader, Writer};
use latch_proto::paths::Paths;
use latch_proto::{ClientMsg, Role};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use tokio::sync::mpsc;

use crate::app::{App, Input};
use crate::error::TuiError;
use crate::ui;

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Daemon messages handled at most between two frames.
const BURST: usize = 4096;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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
    // Recorded with each answer; the daemon falls back to the console's
    // name when it is empty.
    let who = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
    let mut app = App::new(who, local_offset_s());

    let (in_tx, mut in_rx) = mpsc::channel::<Input>(1024);
    let (out_tx, out_rx) = mpsc::unbounded_channel::<ClientMsg>();
    let mut daemon = tokio::spawn(daemon_task(paths, in_tx, out_rx));

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

    // https://no-color.org: any non-empty NO_COLOR turns colours off.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut dirty = true;
    let result = loop {
        if dirty {
            let now = now_ms();
            let drawn = term.0.draw(|f| {
                ui::draw(f, &app, now);
                if no_color {
                    ui::without_color(f.buffer_mut());
                }
            });
            if let Err(e) = drawn {
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
            // The connection task only ends on its own by panicking (the
            // panic hook has restored the terminal by then): stop too.
            r = &mut daemon => break Err(TuiError::Internal(match r {
                Err(e) => format!("the daemon connection failed: {e}"),
                Ok(()) => "the daemon connection stopped".into(),
            })),
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
async fn daemon_task(paths: Paths, to_app: mpsc::Sender<Input>, mut from_app: mpsc::UnboundedReceiver<ClientMsg>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let error = match client::connect(&paths, &Hello::new(Role::Console, "tui")).await {
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
            Err(e) => e.to_string(),
        };
        let retry_at = now_ms() + backoff.as_millis() as i64;
        if to_app.send(Input::Disconnected { error, retry_at }).await.is_err() {
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

/// Relays until the connection fails (`Some(why)`) or the app is gone
/// (`None`). Reading runs in a task of its own: a read is never cut short
/// by a message to send.
async fn relay(
    mut reader: Reader,
    mut writer: Writer,
    to_app: &mpsc::Sender<Input>,
    from_app: &mut mpsc::UnboundedReceiver<ClientMsg>,
) -> Option<String> {
    let to_app = to_app.clone();
    let mut reading = tokio::spawn(async move {
        loop {
            match reader.recv().await {
                Ok(msg) => {
                    if to_app.send(Input::Daemon(Box::new(msg))).await.is_err() {
                        return None;
                    }
                }
                // A line this console does not understand (a newer daemon)
                // is skipped rather than ending the connection.
                Err(ClientError::Frame(_)) => {}
                Err(e) => return Some(e.to_string()),
            }
        }
    });
    let result = loop {
        tokio::select! {
            r = &mut reading => break r.unwrap_or_else(|e| Some(format!("connection reader failed: {e}"))),
            m = from_app.recv() => {
                let Some(msg) = m else { break None };
                if let Err(e) = writer.send(&msg).await {
                    break Some(e.to_string());
                }
            }
        }
    };
    reading.abort();
    result
}
