//! `latch demo`: the whole product in a minute, in a throw-away home.
//!
//! It starts a daemon with `LATCH_HOME` in a temporary folder, opens the
//! console (`latch tui`, skipped with `--headless`), and runs a scripted
//! agent — our own code speaking MCP over stdio — against two real servers,
//! each started through `latch shim` exactly as an installed client would:
//!
//! - `files`: `@modelcontextprotocol/server-filesystem` through `npx -y`
//!   serving a folder of sample files (or `latch-test-server`, found beside
//!   this executable, when npx is missing or fails to start);
//! - `ops`: `latch-test-server`, whose `run_command` and `create_payment`
//!   tools server-filesystem does not have (both are simulated: nothing is
//!   executed or paid).
//!
//! The agent reads a file (allowed), writes one (allowed), runs a shell
//! command (held until someone answers: `a` in the console, or `latch
//! approve ID` with the printed `LATCH_HOME`), and tries a payment (denied).
//! The daemon gets `LATCH_HOLD_MS` so a held call waits five minutes
//! instead of a client's usual 50 s. The exit status says whether every
//! decision was the expected one, so CI can run `latch demo --headless`.
//!
//! Clean-up happens on every path, Ctrl-C included: the shims are closed
//! (they stop their servers), the daemon gets SIGTERM (then SIGKILL), the
//! console is waited for, and the temporary folder is removed. Children run
//! in process groups of their own so a Ctrl-C reaches the demo alone, which
//! then stops them in order.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};

mod agent;
mod process;
mod script;
mod stage;

use process::{ConsoleClosed, on_signal, stopping};
use stage::Demo;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// No console: print what happens; approvals are answered elsewhere
    /// (`latch approve ID` with the printed LATCH_HOME).
    #[arg(long)]
    headless: bool,
    /// Serve the files with latch-test-server even when npx is there.
    #[arg(long)]
    no_npx: bool,
    /// Use this existing folder instead of a temporary one (LATCH_HOME is
    /// DIR/latch); it is left in place afterwards.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(a: DemoArgs) -> anyhow::Result<i32> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    if !a.headless && !std::io::stdout().is_terminal() {
        eprintln!("latch demo: the console needs a terminal; in scripts and CI run `latch demo --headless`");
        return Ok(2);
    }
    let exe = std::env::current_exe().context("cannot find the latch executable")?;
    let test_server = exe.with_file_name("latch-test-server");
    if !test_server.is_file() {
        bail!(
            "latch-test-server is not beside latch ({}): build it with `cargo build --bin latch-test-server` (or install both with `cargo install --path .`)",
            test_server.display()
        );
    }
    let (root, temporary) = match &a.dir {
        Some(d) => (std::fs::canonicalize(d).with_context(|| format!("--dir {}", d.display()))?, false),
        None => (make_temp_dir()?, true),
    };
    let mut demo = Demo::new(exe, test_server, root.clone(), a.headless)?;
    let result = demo.run(!a.no_npx);
    demo.cleanup();
    // The console owned the terminal: show what the agent saw now (read
    // before the temporary folder that holds it goes).
    let transcript = demo.transcript_path().filter(|_| !a.headless).and_then(|p| std::fs::read_to_string(p).ok());
    if temporary {
        let _ = std::fs::remove_dir_all(&root);
    }
    if let Some(text) = transcript {
        let _ = write!(std::io::stdout(), "{text}");
    }
    let code = match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) if e.is::<ConsoleClosed>() => {
            let _ = writeln!(
                std::io::stdout(),
                "The console was closed before the agent was done: the demo stopped there and cleaned up."
            );
            0
        }
        Err(e) if stopping() => {
            eprintln!("latch demo: stopped ({e:#}); everything it started is gone");
            130
        }
        Err(e) => return Err(e),
    };
    Ok(code)
}

fn make_temp_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for n in 0..100u32 {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("latch-demo-{}-{:x}", std::process::id(), nanos.wrapping_add(n)));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(anyhow!("cannot create a folder in {}: {e}", base.display())),
        }
    }
    bail!("cannot create a fresh folder in {}", base.display())
}
