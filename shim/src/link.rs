//! The shim's link to the daemon: connect, start a daemon when none
//! answers, reconnect when it comes back.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

use latch_proto::client::{self, ClientError, Hello};
use latch_proto::paths::Paths;
use latch_proto::{DaemonMsg, Role};
use tokio::sync::mpsc;

pub enum LinkEvent {
    /// Connected: frames for the daemon go into this sender.
    Up(mpsc::Sender<Vec<u8>>),
    Msg(Box<DaemonMsg>),
    /// The connection ended, or the first attempt (with a daemon started on
    /// demand) did not connect in time.
    Down(String),
    /// Something that is not Latch's daemon answers at the socket (its pid
    /// and executable): nothing is sent to it, and no daemon is started
    /// over it.
    Impostor(String),
    /// Every frame given to the link was written (its sender was dropped).
    Written,
}

/// How long the first connection may take, a daemon start included.
const FIRST_CONNECT: Duration = Duration::from_secs(5);
/// Between reconnection attempts.
const RETRY: Duration = Duration::from_millis(500);

pub async fn run(paths: Paths, hello: Hello, autostart: bool, tx: mpsc::Sender<LinkEvent>) {
    let started = Instant::now();
    let mut spawned = false;
    let mut first = true;
    let mut reported_down = false;
    let mut reported_impostor: Option<String> = None;
    loop {
        match client::connect(&paths, &hello).await {
            Ok((mut reader, mut writer)) => {
                first = false;
                reported_down = false;
                reported_impostor = None;
                let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(1024);
                let events = tx.clone();
                let writer_task = tokio::spawn(async move {
                    while let Some(line) = wrx.recv().await {
                        if writer.send_raw(&line).await.is_err() {
                            return;
                        }
                    }
                    let _ = events.send(LinkEvent::Written).await;
                });
                if tx.send(LinkEvent::Up(wtx)).await.is_err() {
                    return;
                }
                let why = loop {
                    match reader.recv().await {
                        Ok(msg) => {
                            if tx.send(LinkEvent::Msg(Box::new(msg))).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => break e.to_string(),
                    }
                };
                writer_task.abort();
                if tx.send(LinkEvent::Down(why)).await.is_err() {
                    return;
                }
            }
            Err(ClientError::NoDaemon(_)) if autostart && !spawned => {
                spawned = true;
                if let Err(e) = start_daemon(&paths) {
                    eprintln!("latch shim: could not start a daemon: {e}");
                }
            }
            Err(ClientError::Impostor { socket, impostor }) => {
                // Never a daemon started over it: the person must look.
                first = false;
                let who = impostor.to_string();
                if reported_impostor.as_deref() != Some(who.as_str()) {
                    eprintln!("latch shim: {}", ClientError::Impostor { socket, impostor });
                    reported_impostor = Some(who.clone());
                    reported_down = true;
                    if tx.send(LinkEvent::Impostor(who)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e @ ClientError::Refused(_)) => {
                eprintln!("latch shim: {e}");
                let _ = tx.send(LinkEvent::Down(e.to_string())).await;
                return;
            }
            Err(e) => {
                if first && started.elapsed() > FIRST_CONNECT {
                    first = false;
                }
                if !first && !reported_down {
                    reported_down = true;
                    eprintln!("latch shim: no daemon answers ({e}); tool calls are refused until it is back");
                    if tx.send(LinkEvent::Down(e.to_string())).await.is_err() {
                        return;
                    }
                }
            }
        }
        let pause = if first { Duration::from_millis(20) } else { RETRY };
        tokio::time::sleep(pause).await;
    }
}

/// Starts `latch daemon` in the background, in its own session, logging to
/// the daemon log file.
pub fn start_daemon(paths: &Paths) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&paths.data_dir)?;
    let log = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&paths.log)?;
    let exe = crate::exec::latch_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon").stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from the
    // agent's session so it outlives this shim.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    eprintln!("latch: started a daemon (pid {}), log {}", child.id(), paths.log.display());
    // The daemon outlives us; the init process reaps it.
    std::mem::forget(child);
    Ok(())
}

pub fn hello(name: &str, session: &str, command: &[String]) -> Hello {
    Hello { role: Role::Shim, name: name.to_owned(), session: session.to_owned(), command: command.to_vec() }
}
