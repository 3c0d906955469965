//! The scripted agent's run: read, write, a command a person must approve,
//! a payment that is denied, and the summary of what was decided.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::bail;
use latch_proto::{AuditFilter, ClientMsg, DaemonMsg, PendingItem, Role};
use serde_json::{Value, json};

use super::process::{ConsoleClosed, console_closed, stopping};
use super::stage::{Demo, HOLD, Step, VERDICT_KEY};
use crate::cli::install::which;

impl Demo {
    pub(super) fn run(&mut self, npx: bool) -> anyhow::Result<bool> {
        self.say("Latch demo: a scripted agent uses two MCP servers, each through `latch shim`.");
        self.start_daemon()?;
        if !self.headless {
            let mut term = std::io::stdout();
            // A terminal that went away (SIGHUP) must not panic the demo.
            let _ = writeln!(
                term,
                // Every line fits an 80-column terminal.
                "\nLatch demo. A scripted agent is about to use two MCP servers through Latch;\n\
                 the console will show every call:\n\
                 \x20 1. read a file          allowed (READ)\n\
                 \x20 2. write a file         allowed (WRITE)\n\
                 \x20 3. run a shell command  held for you: `a` approves it, `d` denies it\n\
                 \x20 4. send a payment       denied (TRANSFER_VALUE): never reaches the server\n\
                 Press `q` in the console when the agent is done; everything is cleaned up."
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
    pub(super) fn pace(&mut self) -> anyhow::Result<()> {
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
    pub(super) fn call(
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
    pub(super) fn last_row(&self, server: &str, tool: &str) -> Option<latch_proto::AuditRow> {
        let filter = AuditFilter { server: Some(server.into()), tool: Some(tool.into()), ..AuditFilter::default() };
        match self.ask_daemon(ClientMsg::Audit { req: 1, limit: 1, before: None, filter }) {
            Ok(DaemonMsg::AuditRows { mut rows, .. }) => rows.drain(..).next(),
            _ => None,
        }
    }

    /// The audit rows of the demo, oldest first.
    pub(super) fn summary(&mut self) {
        let msg = ClientMsg::Audit { req: 1, limit: 50, before: None, filter: AuditFilter::default() };
        let Ok(DaemonMsg::AuditRows { rows, .. }) = self.ask_daemon(msg) else { return };
        self.say("The audit log (`latch audit`):");
        for r in rows.iter().rev().filter(|r| !r.tool.is_empty()) {
            let by = r
                .answered_by
                .as_deref()
                .map(|b| format!(" (answered by {})", latch_proto::words::who_answered(b)))
                .unwrap_or_default();
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
