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

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use latch_proto::paths::Paths;
use latch_proto::{AuditFilter, ClientMsg, DaemonMsg, PendingItem, Role};
use serde_json::{Value, json};

use super::install::which;

/// How long a held call waits for a person in the demo.
const HOLD: Duration = Duration::from_secs(300);
/// How long a server gets to answer `initialize` (npx may download first).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// The key Latch's verdict sits under in a blocked call's `_meta`.
const VERDICT_KEY: &str = "dev.latch/decision";

/// Set by SIGINT/SIGTERM/SIGHUP: stop, clean up, exit.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

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
    if temporary {
        let _ = std::fs::remove_dir_all(&root);
    }
    if let Some(tui) = demo.transcript_path()
        && !a.headless
    {
        // The console owned the terminal: show what the agent saw now.
        if let Ok(text) = std::fs::read_to_string(tui) {
            let _ = write!(std::io::stdout(), "{text}");
        }
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

/// The approval PIN of the demo's throw-away home.
pub const DEMO_PIN: &str = "2468";

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

/// One expected decision and what happened.
struct Step {
    what: String,
    expected: &'static str,
    got: String,
}

struct Demo {
    exe: PathBuf,
    test_server: PathBuf,
    root: PathBuf,
    latch_home: PathBuf,
    files: PathBuf,
    paths: Paths,
    headless: bool,
    rt: tokio::runtime::Runtime,
    daemon: Option<Child>,
    console: Option<Child>,
    agents: Vec<Agent>,
    /// Where the agent's narration goes: stdout (headless) or a file the
    /// console mode prints after the console closed.
    out: Box<dyn Write>,
    transcript: Option<PathBuf>,
    steps: Vec<Step>,
}

impl Demo {
    fn new(exe: PathBuf, test_server: PathBuf, root: PathBuf, headless: bool) -> anyhow::Result<Demo> {
        let latch_home = root.join("latch");
        std::fs::create_dir_all(&latch_home)?;
        // The agent's files live beside LATCH_HOME: Latch denies any call
        // that touches its own home (self-protection).
        let files = root.join("demo-files");
        std::fs::create_dir_all(&files)?;
        std::fs::write(
            files.join("notes.txt"),
            "Welcome to the Latch demo.\nThis file was read by an agent through `latch shim`.\n",
        )?;
        let paths = Paths::resolve(Some(latch_home.clone()), None)?;
        let (out, transcript): (Box<dyn Write>, _) = if headless {
            (Box::new(std::io::stdout()), None)
        } else {
            let path = root.join("agent.log");
            (Box::new(std::fs::File::create(&path)?), Some(path))
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Demo {
            exe,
            test_server,
            root,
            latch_home,
            files,
            paths,
            headless,
            rt,
            daemon: None,
            console: None,
            agents: Vec::new(),
            out,
            transcript,
            steps: Vec::new(),
        })
    }

    fn transcript_path(&self) -> Option<&Path> {
        self.transcript.as_deref()
    }

    fn latch_home(&self) -> &Path {
        &self.latch_home
    }

    fn say(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", line.as_ref());
        let _ = self.out.flush();
    }

    fn log_file(&self, name: &str) -> anyhow::Result<std::fs::File> {
        Ok(std::fs::OpenOptions::new().create(true).append(true).open(self.root.join(name))?)
    }

    fn ask_daemon(&self, msg: ClientMsg) -> anyhow::Result<DaemonMsg> {
        Ok(self.rt.block_on(latch_proto::client::request(&self.paths, Role::Cli, msg))?)
    }

    fn start_daemon(&mut self) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt;
        let log = self.log_file("daemon.log")?;
        let child = Command::new(&self.exe)
            .arg("daemon")
            .env("LATCH_HOME", self.latch_home())
            .env("LATCH_HOLD_MS", HOLD.as_millis().to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("cannot start `latch daemon`")?;
        let pid = child.id();
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(DaemonMsg::Status { .. }) = self.ask_daemon(ClientMsg::Status { req: 1 }) {
                break;
            }
            if let Some(status) = self.daemon.as_mut().and_then(|d| d.try_wait().ok().flatten()) {
                bail!("the demo's daemon exited ({status}); see {}", self.root.join("daemon.log").display());
            }
            if Instant::now() > deadline || stopping() {
                bail!("the demo's daemon did not answer within 15 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.say(format!("daemon    started (pid {pid}), LATCH_HOME={}", self.latch_home().display()));
        // Approvals need a PIN; this throw-away home gets a known one.
        let set = ClientMsg::SetPin { req: 2, old: None, new: latch_proto::Pin(DEMO_PIN.into()) };
        match self.ask_daemon(set)? {
            DaemonMsg::Done { ok: true, .. } => {
                self.say(format!("PIN       {DEMO_PIN} (this demo's approval PIN: the console asks for it once)"))
            }
            other => bail!("the demo's daemon did not take its PIN: {other:?}"),
        }
        Ok(())
    }

    fn start_console(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.exe)
            .arg("tui")
            .env("LATCH_HOME", self.latch_home())
            .spawn()
            .context("cannot start `latch tui`")?;
        self.console = Some(child);
        Ok(())
    }

    /// Starts SERVER through `latch shim --name NAME` and initializes it.
    fn connect(&mut self, name: &str, server: &[String]) -> anyhow::Result<usize> {
        let log = self.log_file("servers.log")?;
        let agent = Agent::start(&self.exe, name, server, self.latch_home(), &self.files, log)?;
        self.agents.push(agent);
        let i = self.agents.len() - 1;
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "latch-demo-agent", "version": env!("CARGO_PKG_VERSION")},
        });
        self.agents[i].request("initialize", params, START_TIMEOUT, &mut |_| true)?;
        self.agents[i].notify("notifications/initialized", json!({}))?;
        Ok(i)
    }

    fn tool_names(&mut self, agent: usize) -> anyhow::Result<Vec<String>> {
        let r = self.agents[agent].request("tools/list", json!({}), Duration::from_secs(30), &mut |_| true)?;
        Ok(r["tools"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect())
    }

    fn run(&mut self, npx: bool) -> anyhow::Result<bool> {
        self.say("Latch demo: a scripted agent uses two MCP servers, every call through `latch shim`.");
        self.start_daemon()?;
        if !self.headless {
            let mut term = std::io::stdout();
            // A terminal that went away (SIGHUP) must not panic the demo.
            let _ = writeln!(
                term,
                "\nLatch demo. A scripted agent is about to use two MCP servers through Latch, and the console\n\
                 will show every call:\n\
                 \x20 1. read a file            allowed (READ)\n\
                 \x20 2. write a file           allowed (WRITE)\n\
                 \x20 3. run a shell command    held for you: press `a` to approve it (or `d` to deny)\n\
                 \x20 4. send a payment         denied (TRANSFER_VALUE): it never reaches the server\n\
                 Press `q` in the console when the agent is done; everything is cleaned up after."
            );
            if std::io::stdin().is_terminal() {
                let _ = write!(term, "Press Enter to open the console… ");
                let _ = term.flush();
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            }
            if stopping() {
                bail!("interrupted");
            }
            self.start_console()?;
            std::thread::sleep(Duration::from_secs(2));
        }

        let files = self.files.display().to_string();
        let test_server = self.test_server.display().to_string();
        let mut files_agent = None;
        if npx && which("npx").is_some() {
            self.say(format!("files     @modelcontextprotocol/server-filesystem via npx, serving {files} (the first run downloads it)"));
            let cmd: Vec<String> =
                ["npx", "-y", "@modelcontextprotocol/server-filesystem", &files].map(str::to_owned).into();
            match self.connect("files", &cmd) {
                Ok(i) => files_agent = Some(i),
                Err(e) if !stopping() => {
                    self.say(format!(
                        "files     server-filesystem did not start ({e:#}); using latch-test-server instead"
                    ));
                    if let Some(mut a) = self.agents.pop() {
                        a.close();
                    }
                }
                Err(e) => return Err(e),
            }
        } else if npx {
            self.say("files     npx is not installed: using latch-test-server for the files");
        }
        let files_agent = match files_agent {
            Some(i) => i,
            None => {
                self.say(format!("files     latch-test-server, files in {files}"));
                self.connect("files", std::slice::from_ref(&test_server))?
            }
        };
        let names = self.tool_names(files_agent)?;
        self.say(format!("files     {} tools: {}", names.len(), names.join(", ")));
        let ops = self.connect("ops", std::slice::from_ref(&test_server))?;
        let names = self.tool_names(ops)?;
        self.say(format!("ops       latch-test-server, {} tools (simulated: nothing is run or paid)", names.len()));
        self.say("");

        let read_tool = if self.tool_names(files_agent)?.iter().any(|n| n == "read_text_file") {
            "read_text_file"
        } else {
            "read_file"
        };
        let notes = self.files.join("notes.txt").display().to_string();
        self.pace()?;
        self.call(1, files_agent, "files", read_tool, json!({"path": notes}), "allow")?;
        self.pace()?;
        let report = self.files.join("report.txt").display().to_string();
        let content = "Report written by the Latch demo agent.\n";
        self.call(2, files_agent, "files", "write_file", json!({"path": report, "content": content}), "allow")?;
        self.pace()?;
        self.call(3, ops, "ops", "run_command", json!({"command": format!("ls -la {files}")}), "ask")?;
        self.pace()?;
        let payment = json!({"amount": 4999, "currency": "USD", "recipient": "acct-8841-unknown-vendor"});
        self.call(4, ops, "ops", "create_payment", payment, "deny")?;

        self.say("");
        self.summary();
        let ok = self.steps.iter().all(|s| s.got.starts_with(s.expected));
        if ok {
            self.say(
                "Every decision was the expected one. `latch install` puts your own agents' servers behind Latch.",
            );
        } else {
            let wrong: Vec<String> = self
                .steps
                .iter()
                .filter(|s| !s.got.starts_with(s.expected))
                .map(|s| format!("UNEXPECTED: {} was {}, expected {}", s.what, s.got, s.expected))
                .collect();
            for line in wrong {
                self.say(line);
            }
        }
        while self.console.is_some() && !console_closed(&mut self.console) && !stopping() {
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(ok)
    }

    /// A pause a person can follow; stops early when the console closed.
    fn pace(&mut self) -> anyhow::Result<()> {
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            if stopping() {
                bail!("interrupted");
            }
            if console_closed(&mut self.console) {
                bail!(ConsoleClosed);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// One tool call, narrated; records the decision seen.
    fn call(
        &mut self,
        n: usize,
        agent: usize,
        server: &str,
        tool: &str,
        args: Value,
        expected: &'static str,
    ) -> anyhow::Result<()> {
        let shown = short_args(&args);
        self.say(format!("{n}. {server}/{tool} {shown}"));
        let params = json!({"name": tool, "arguments": args});
        let mut held: Option<PendingItem> = None;
        let mut told = false;
        let headless = self.headless;
        let latch_home = self.latch_home().to_path_buf();
        // What to type: `latch` when it is this executable, else its path.
        let latch_cmd = match which("latch") {
            Some(p) if std::fs::canonicalize(&p).ok() == std::fs::canonicalize(&self.exe).ok() => "latch".to_owned(),
            _ => self.exe.display().to_string(),
        };
        let paths = self.paths.clone();
        let rt = &self.rt;
        let out = &mut self.out;
        let console = &mut self.console;
        let mut last_poll = Instant::now() - Duration::from_secs(1);
        let result = self.agents[agent].request("tools/call", params, HOLD + Duration::from_secs(30), &mut |_| {
            if console_closed(console) {
                return false;
            }
            if told || last_poll.elapsed() < Duration::from_millis(300) {
                return true;
            }
            last_poll = Instant::now();
            let Ok(DaemonMsg::Pending { items, .. }) =
                rt.block_on(latch_proto::client::request(&paths, Role::Cli, ClientMsg::ListPending { req: 1 }))
            else {
                return true;
            };
            if let Some(item) = items.into_iter().find(|i| i.server == server && i.tool == tool) {
                let _ = writeln!(out, "   → ASK ({}): held until a person answers, approval {}", item.class, item.id);
                if headless {
                    let home = latch_home.display();
                    let _ = writeln!(out, "     approve: LATCH_HOME={home} {latch_cmd} approve {}", item.id);
                    let _ = writeln!(out, "     deny:    LATCH_HOME={home} {latch_cmd} deny {}", item.id);
                    let _ = writeln!(out, "     waiting up to {} s…", HOLD.as_secs());
                } else {
                    let _ = writeln!(out, "     press `a` in the console to approve it, `d` to deny");
                }
                let _ = out.flush();
                held = Some(item);
                told = true;
            }
            true
        })?;
        let verdict = result.get("_meta").and_then(|m| m.get(VERDICT_KEY));
        let text = result["content"][0]["text"].as_str().unwrap_or("").to_owned();
        let decision = verdict.and_then(|v| v["decision"].as_str()).unwrap_or("allow");
        let class = verdict.and_then(|v| v["class"].as_str()).unwrap_or("");
        // The audit row says whether the call was held, even when a person
        // answered before the poll above saw it.
        let row = self.last_row(server, tool);
        let was_held = held.is_some() || row.as_ref().is_some_and(|r| r.decision == "ask");
        if was_held && held.is_none() {
            let (class, id) =
                row.as_ref().map_or(("", ""), |r| (r.class.as_str(), r.approval_id.as_deref().unwrap_or("")));
            self.say(format!("   → ASK ({class}): held until a person answered, approval {id}"));
        }
        let got = match (was_held, decision) {
            (true, "allow") => {
                self.say(format!("   → APPROVED by a person; the server answered: {}", first_line(&text)));
                "ask, approved".to_owned()
            }
            (true, "deny") => {
                self.say(format!("   → DENIED by a person: {}", first_line(&text)));
                "ask, denied".to_owned()
            }
            (_, "ask") => {
                self.say("   → nobody answered in time; the call did not run");
                "ask, unanswered".to_owned()
            }
            (false, "deny") => {
                self.say(format!("   → DENY ({class}): {}", first_line(&text)));
                "deny".to_owned()
            }
            (false, _) => {
                self.say(format!("   → ALLOW: {}", first_line(&text)));
                "allow".to_owned()
            }
            (true, other) => other.to_owned(),
        };
        self.steps.push(Step { what: format!("{server}/{tool}"), expected, got });
        Ok(())
    }

    /// The newest audit row of SERVER/TOOL.
    fn last_row(&self, server: &str, tool: &str) -> Option<latch_proto::AuditRow> {
        let filter = AuditFilter { server: Some(server.into()), tool: Some(tool.into()), ..AuditFilter::default() };
        match self.ask_daemon(ClientMsg::Audit { req: 1, limit: 1, before: None, filter }) {
            Ok(DaemonMsg::AuditRows { mut rows, .. }) => rows.drain(..).next(),
            _ => None,
        }
    }

    /// The audit rows of the demo, oldest first.
    fn summary(&mut self) {
        let msg = ClientMsg::Audit { req: 1, limit: 50, before: None, filter: AuditFilter::default() };
        let Ok(DaemonMsg::AuditRows { rows, .. }) = self.ask_daemon(msg) else { return };
        self.say("The audit log (`latch audit`):");
        for r in rows.iter().rev().filter(|r| !r.tool.is_empty()) {
            let by = r.answered_by.as_deref().map(|b| format!(" (answered by {b})")).unwrap_or_default();
            self.say(format!(
                "  {:<6} {:<16} {:<15} {:<6} {}{by}",
                r.server,
                r.tool,
                r.class,
                r.decision,
                r.outcome.as_deref().unwrap_or("")
            ));
        }
        self.say("");
    }

    /// Stops everything the demo started, in order; safe to call twice
    /// (and called again on drop, so a panic cleans up too).
    fn cleanup(&mut self) {
        for mut a in self.agents.drain(..) {
            a.close();
        }
        if let Some(mut console) = self.console.take() {
            // It quits on `q`; after a Ctrl-C it gets SIGTERM.
            stop(&mut console, Duration::from_secs(3));
        }
        if let Some(mut daemon) = self.daemon.take() {
            stop(&mut daemon, Duration::from_secs(5));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The person closed the console before the agent was done.
#[derive(Debug)]
struct ConsoleClosed;

impl std::fmt::Display for ConsoleClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the console was closed before the agent was done")
    }
}

impl std::error::Error for ConsoleClosed {}

/// Whether the console ran and has exited (reaped here).
fn console_closed(console: &mut Option<Child>) -> bool {
    console.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
}

/// SIGTERM, wait up to GRACE, SIGKILL; always reaped.
fn stop(child: &mut Child, grace: Duration) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: kill(2) on the pid of a child we have not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if line.chars().count() > 100 {
        format!("{}…", line.chars().take(100).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn short_args(args: &Value) -> String {
    let text = args.to_string();
    if text.chars().count() > 110 { format!("{}…", text.chars().take(110).collect::<String>()) } else { text }
}

/// The scripted agent's connection to one server through `latch shim`.
struct Agent {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    inbox: Receiver<Value>,
    next_id: u64,
}

impl Agent {
    fn start(
        exe: &Path,
        name: &str,
        server: &[String],
        latch_home: &Path,
        workspace: &Path,
        log: std::fs::File,
    ) -> anyhow::Result<Agent> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(exe)
            .args(["shim", "--name", name, "--no-autostart", "--"])
            .args(server)
            .env("LATCH_HOME", latch_home)
            // The demo agent's project: its writes there are inside the workspace.
            .current_dir(workspace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start `latch shim` for {name}"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, inbox) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Agent { name: name.to_owned(), child, stdin, inbox, next_id: 1 })
    }

    fn send(&mut self, msg: &Value) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("{} is closed", self.name))?;
        let mut line = serde_json::to_string(msg)?;
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .with_context(|| format!("the {} server went away; see servers.log", self.name))
    }

    fn notify(&mut self, method: &str, params: Value) -> anyhow::Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    /// Sends a request and waits for its result; TICK runs about every
    /// 100 ms meanwhile. Requests from the server are answered "not
    /// supported": this agent offers no roots, sampling or elicitation.
    fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
        tick: &mut dyn FnMut(Duration) -> bool,
    ) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let started = Instant::now();
        loop {
            if stopping() {
                bail!("interrupted");
            }
            if started.elapsed() > timeout {
                bail!("{} did not answer {method} within {} s", self.name, timeout.as_secs());
            }
            if !tick(started.elapsed()) {
                bail!(ConsoleClosed);
            }
            let msg = match self.inbox.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("the {} server closed its output; see servers.log", self.name)
                }
            };
            if msg.get("method").is_some() {
                if let Some(req_id) = msg.get("id") {
                    let error = json!({"code": -32601, "message": "the demo agent does not support this"});
                    self.send(&json!({"jsonrpc": "2.0", "id": req_id, "error": error}))?;
                }
                continue;
            }
            if msg.get("id") != Some(&json!(id)) {
                continue;
            }
            if let Some(e) = msg.get("error") {
                bail!("{} answered {method} with an error: {e}", self.name);
            }
            return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// Closes stdin (the shim then stops its server and exits), waits, and
    /// escalates like an MCP client would.
    fn close(&mut self) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stop(&mut self.child, Duration::from_secs(3));
    }
}
