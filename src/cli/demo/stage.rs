//! The demo's stage: a throw-away home, the daemon, the console and the
//! agents' shims, set up and taken down again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use latch_proto::paths::Paths;
use latch_proto::{ClientMsg, DaemonMsg, Role};
use serde_json::json;

use super::agent::Agent;
use super::process::{stop, stopping};

/// How long a held call waits for a person in the demo.
pub(super) const HOLD: Duration = Duration::from_secs(300);
/// How long a server gets to answer `initialize` (npx may download first).
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(120);
/// The key Latch's verdict sits under in a blocked call's `_meta`.
pub(super) const VERDICT_KEY: &str = "dev.latch/decision";

/// The approval PIN of the demo's throw-away home.
pub const DEMO_PIN: &str = "2468";

/// One expected decision and what happened.
pub(super) struct Step {
    pub(super) what: String,
    pub(super) expected: &'static str,
    pub(super) got: String,
}

pub(super) struct Demo {
    pub(super) exe: PathBuf,
    pub(super) test_server: PathBuf,
    pub(super) root: PathBuf,
    pub(super) latch_home: PathBuf,
    pub(super) files: PathBuf,
    pub(super) paths: Paths,
    pub(super) headless: bool,
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) daemon: Option<Child>,
    pub(super) console: Option<Child>,
    pub(super) agents: Vec<Agent>,
    /// Where the agent's narration goes: stdout (headless) or a file the
    /// console mode prints after the console closed.
    pub(super) out: Box<dyn Write>,
    pub(super) transcript: Option<PathBuf>,
    pub(super) steps: Vec<Step>,
}

impl Demo {
    pub(super) fn new(exe: PathBuf, test_server: PathBuf, root: PathBuf, headless: bool) -> anyhow::Result<Demo> {
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

    pub(super) fn transcript_path(&self) -> Option<&Path> {
        self.transcript.as_deref()
    }

    pub(super) fn latch_home(&self) -> &Path {
        &self.latch_home
    }

    pub(super) fn say(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", line.as_ref());
        let _ = self.out.flush();
    }

    pub(super) fn log_file(&self, name: &str) -> anyhow::Result<std::fs::File> {
        Ok(std::fs::OpenOptions::new().create(true).append(true).open(self.root.join(name))?)
    }

    pub(super) fn ask_daemon(&self, msg: ClientMsg) -> anyhow::Result<DaemonMsg> {
        Ok(self.rt.block_on(latch_proto::client::request(&self.paths, Role::Cli, msg))?)
    }

    pub(super) fn start_daemon(&mut self) -> anyhow::Result<()> {
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

    pub(super) fn start_console(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.exe)
            .arg("tui")
            .env("LATCH_HOME", self.latch_home())
            .spawn()
            .context("cannot start `latch tui`")?;
        self.console = Some(child);
        Ok(())
    }

    /// Starts SERVER through `latch shim --name NAME` and initializes it.
    pub(super) fn connect(&mut self, name: &str, server: &[String]) -> anyhow::Result<usize> {
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

    pub(super) fn tool_names(&mut self, agent: usize) -> anyhow::Result<Vec<String>> {
        let r = self.agents[agent].request("tools/list", json!({}), Duration::from_secs(30), &mut |_| true)?;
        Ok(r["tools"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect())
    }

    /// Stops everything the demo started, in order; safe to call twice
    /// (and called again on drop, so a panic cleans up too).
    pub(super) fn cleanup(&mut self) {
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
