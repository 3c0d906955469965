//! The approval PIN on the command line: `latch pin set`, and reading the
//! PIN for `latch approve` and `latch policy accept`.
//!
//! A PIN is typed on the terminal (`/dev/tty`, echo off), never taken from
//! argv or the environment (an agent can set both for a process it
//! starts). `--pin-stdin` reads it from standard input instead, one per
//! line, for the user's own scripts.

use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;

use latch_proto::client::{self, ClientError, Hello};
use latch_proto::{ClientMsg, DaemonMsg, Pin, Role};

use super::EXIT_NO_DAEMON;

#[derive(clap::Subcommand)]
pub enum PinCmd {
    /// Set the approval PIN, or change it (the old one is asked first).
    /// Approvals and accepting a looser policy then need it.
    Set {
        /// Read the PIN(s) from standard input, one per line (the old one
        /// first when changing) instead of the terminal.
        #[arg(long)]
        pin_stdin: bool,
    },
}

/// Where PINs come from for one command.
pub struct PinSource {
    stdin: Option<std::io::StdinLock<'static>>,
}

impl PinSource {
    pub fn new(pin_stdin: bool) -> PinSource {
        PinSource { stdin: pin_stdin.then(|| std::io::stdin().lock()) }
    }

    /// One PIN: the next line of stdin, or typed on the terminal.
    pub fn read(&mut self, prompt: &str) -> anyhow::Result<String> {
        match &mut self.stdin {
            Some(input) => {
                let mut line = String::new();
                if input.read_line(&mut line)? == 0 {
                    anyhow::bail!("--pin-stdin: standard input ended before the PIN");
                }
                Ok(line.trim_end_matches(['\n', '\r']).to_owned())
            }
            None => read_tty(prompt, false),
        }
    }
}

/// Reads a line from the controlling terminal, with echo off unless `echo`.
fn read_tty(prompt: &str, echo: bool) -> anyhow::Result<String> {
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(|e| {
        anyhow::anyhow!(
            "no terminal to type the PIN on ({e}); a person types it, or a script of yours uses --pin-stdin"
        )
    })?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        (!echo && libc::tcgetattr(fd, &mut t) == 0).then_some(t)
    };
    if let Some(mut t) = saved {
        t.c_lflag &= !libc::ECHO;
        // SAFETY: fd is open; t is a valid termios from tcgetattr.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    let mut out = &tty;
    write!(out, "{prompt}")?;
    out.flush()?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: as above; puts the terminal back as it was.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    if !echo {
        let _ = writeln!(out);
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Sends `first`, then the message `then` builds from the reply, on one
/// connection. `Ok(None)` when no daemon runs (already reported).
pub fn exchange(
    first: ClientMsg,
    then: impl FnOnce(&DaemonMsg) -> anyhow::Result<Option<ClientMsg>>,
) -> anyhow::Result<Option<DaemonMsg>> {
    let paths = super::paths()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let hello = Hello::new(Role::Cli, "cli");
    let (mut r, mut w) = match rt.block_on(client::connect(&paths, &hello)) {
        Ok(c) => c,
        Err(e @ ClientError::NoDaemon(_)) => {
            eprintln!("latch: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let mut roundtrip = |msg: ClientMsg| -> anyhow::Result<DaemonMsg> {
        rt.block_on(async {
            w.send(&msg).await?;
            loop {
                let reply = r.recv().await?;
                if client::reply_req(&reply).is_some() {
                    return Ok::<_, ClientError>(reply);
                }
            }
        })
        .map_err(Into::into)
    };
    let reply = roundtrip(first)?;
    match then(&reply)? {
        Some(next) => Ok(Some(roundtrip(next)?)),
        None => Ok(Some(reply)),
    }
}

/// Whether the daemon has a PIN set (from a `Status` reply).
pub fn pin_set(reply: &DaemonMsg) -> anyhow::Result<bool> {
    match reply {
        DaemonMsg::Status { status, .. } => Ok(status.pin_set),
        other => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
    }
}

/// `latch pin set`.
pub fn run(cmd: PinCmd) -> anyhow::Result<i32> {
    let PinCmd::Set { pin_stdin } = cmd;
    let paths = super::paths()?;
    {
        // A PIN is the daemon's to keep: start one if none runs.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        if let Err(ClientError::NoDaemon(_)) = rt.block_on(client::connect(&paths, &Hello::new(Role::Cli, "pin"))) {
            latch_shim::start_daemon(&paths)?;
        }
    }
    let mut source = PinSource::new(pin_stdin);
    let reply = exchange(ClientMsg::Status { req: 1 }, |status| {
        let old = if pin_set(status)? { Some(Pin(source.read("Current PIN: ")?)) } else { None };
        let new = source.read("New PIN (4 or more characters; a passphrase is better): ")?;
        if !pin_stdin && source.read("The new PIN again: ")? != new {
            anyhow::bail!("the two PINs differ; nothing changed");
        }
        Ok(Some(ClientMsg::SetPin { req: 2, old, new: Pin(new) }))
    })?;
    done(reply)
}

/// After `latch install`, at a terminal only: offers to set the PIN when
/// none is set yet.
pub fn offer() -> anyhow::Result<()> {
    // SAFETY: isatty only inspects the descriptors.
    let interactive = unsafe { libc::isatty(0) == 1 && libc::isatty(1) == 1 };
    let paths = super::paths()?;
    if !interactive || paths.data_dir.join("pin.json").exists() {
        return Ok(());
    }
    println!();
    println!("Approvals are not protected by a PIN yet: any program running as you can approve.");
    let answer = read_tty("Set an approval PIN now? [Y/n] ", true)?;
    if answer.trim().is_empty() || answer.trim().eq_ignore_ascii_case("y") {
        if run(PinCmd::Set { pin_stdin: false })? != 0 {
            println!("no PIN was set; run `latch pin set` later");
        }
    } else {
        println!("no PIN set; run `latch pin set` when you want one");
    }
    Ok(())
}

/// Prints a `Done` reply; the exit code.
pub fn done(reply: Option<DaemonMsg>) -> anyhow::Result<i32> {
    match reply {
        Some(DaemonMsg::Done { ok: true, message, .. }) => {
            println!("{message}");
            Ok(0)
        }
        Some(DaemonMsg::Done { ok: false, message, .. }) => {
            eprintln!("latch: {message}");
            Ok(1)
        }
        Some(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        None => Ok(EXIT_NO_DAEMON),
    }
}

/// `latch policy accept`: shows what waits, asks for the PIN, accepts.
pub fn accept(pin_stdin: bool) -> anyhow::Result<i32> {
    let mut source = PinSource::new(pin_stdin);
    let reply = exchange(ClientMsg::Status { req: 1 }, |status| {
        let DaemonMsg::Status { status, .. } = status else {
            anyhow::bail!("unexpected answer from the daemon: {status:?}");
        };
        let Some(p) = &status.policy_pending else {
            println!("no policy change is waiting");
            return Ok(None);
        };
        println!("policy change pending: {} rules loosen", p.loosen);
        for line in &p.diff {
            println!("  {line}");
        }
        let pin = if status.pin_set { Some(Pin(source.read("PIN to accept it: ")?)) } else { None };
        Ok(Some(ClientMsg::PolicyAccept { req: 2, pin }))
    })?;
    match reply {
        Some(DaemonMsg::Status { .. }) => Ok(0),
        other => done(other),
    }
}
