//! `latch doctor`: is this machine protected? Which client servers start
//! through Latch and which do not, which wrapped servers' `env` blocks
//! change what Latch does (`LATCH_HOME`, `HOME`, `XDG_*`, `PATH`, `LD_*`),
//! whether the daemon runs, whether a
//! console is attached, and whether the approval channels beyond the console
//! (desktop notifications, Telegram) are configured.
//!
//! It only reads: the client configs (through the same planner as `latch
//! install`, whose edits are discarded), the daemon's `Status` reply, and,
//! when no daemon runs, the policy file's `[notify]` / `[telegram]` tables.

use std::io::Write;
use std::path::Path;

use latch_install::{Action, Outcome, PlanError};
use latch_proto::client::{self, ClientError};
use latch_proto::{ClientMsg, DaemonMsg, Role, StatusReport};

use super::install::{existing_locations, latch_exe, line, pretty, remote_detail};

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The project whose `.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json`
    /// and `.gemini/settings.json` are checked (default: the current folder).
    #[arg(long)]
    project: Option<std::path::PathBuf>,
    /// One JSON object instead of text: every server's state, the hooks,
    /// the daemon's report, and `ok` (the exit code is the same).
    #[arg(long)]
    json: bool,
}

/// Where doctor's findings go: printed as they come, or gathered for
/// `--json`.
struct Sink {
    json: bool,
    section: &'static str,
    sections: serde_json::Map<String, serde_json::Value>,
    servers: Vec<serde_json::Value>,
}

impl Sink {
    fn new(json: bool) -> Sink {
        Sink { json, section: "clients", sections: serde_json::Map::new(), servers: Vec::new() }
    }

    fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        if !self.json {
            // A closed pipe (`| head`) ends the output, quietly.
            let _ = writeln!(std::io::stdout(), "{line}");
            return;
        }
        if line.is_empty() {
            return;
        }
        let lines = self.sections.entry(self.section).or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(a) = lines {
            a.push(line.trim_start().into());
        }
    }
}

/// Exit 1 when a server is not covered (not wrapped, or remote and not
/// wrapped), something is broken, or the daemon names a finding.
pub fn run(a: DoctorArgs) -> anyhow::Result<i32> {
    let latch = latch_exe()?;
    let o = &mut Sink::new(a.json);
    let mut failed = false;
    let (mut wrapped, mut unwrapped, mut remote) = (0, 0, 0);
    o.say("MCP clients");
    let locations = existing_locations(None, a.project)?;
    if locations.is_empty() {
        o.say("  no client config found (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, Codex, Gemini CLI)");
    }
    for l in &locations {
        o.say(format!("{} ({}): {}", l.client.title(), l.scope, pretty(&l.path)));
        let text = match std::fs::read_to_string(&l.path) {
            Ok(t) => t,
            Err(e) => {
                o.say(format!("  cannot read it: {e}"));
                failed = true;
                continue;
            }
        };
        // Each server's `env` block: on a wrapped server it is the shim's
        // environment.
        let envs = latch_install::servers(&text, l.format, l.layout).unwrap_or_default();
        match latch_install::plan(&text, l.format, l.layout, Action::Install, &latch) {
            Ok(plan) => {
                for r in &plan.reports {
                    let is_wrapped = matches!(r.outcome, Outcome::AlreadyWrapped | Outcome::Unwrapped);
                    let text = match &r.outcome {
                        Outcome::AlreadyWrapped | Outcome::Unwrapped => {
                            wrapped += 1;
                            match r.command.as_deref().filter(|c| c.starts_with('/') && !Path::new(c).exists()) {
                                Some(gone) => {
                                    failed = true;
                                    let fix = format!(
                                        ": BROKEN, {gone} does not exist (latch moved?); `latch uninstall` then `latch install` fixes it"
                                    );
                                    line("wrapped", &r.name, &r.place, &fix)
                                }
                                None => line("wrapped", &r.name, &r.place, ""),
                            }
                        }
                        Outcome::Wrapped | Outcome::NotWrapped => {
                            unwrapped += 1;
                            line("NOT wrapped", &r.name, &r.place, "")
                        }
                        Outcome::Remote(url) => {
                            remote += 1;
                            line("not covered", &r.name, &r.place, &remote_detail(url))
                        }
                        Outcome::Skipped(why) => line("skipped", &r.name, &r.place, &format!(": {why}")),
                    };
                    let state = match &r.outcome {
                        Outcome::AlreadyWrapped | Outcome::Unwrapped if text.contains("BROKEN") => "broken",
                        Outcome::AlreadyWrapped | Outcome::Unwrapped => "wrapped",
                        Outcome::Wrapped | Outcome::NotWrapped => "not_wrapped",
                        Outcome::Remote(_) => "remote_not_covered",
                        Outcome::Skipped(_) => "skipped",
                    };
                    o.servers.push(serde_json::json!({
                        "client": l.client.id(),
                        "scope": l.scope,
                        "config": l.path,
                        "name": r.name,
                        "place": r.place,
                        "state": state,
                        "line": text.trim_start(),
                    }));
                    o.say(text);
                    let server = envs.iter().find(|s| s.name == r.name && s.place == r.place);
                    if is_wrapped && let Some(server) = server {
                        failed |= report_env(o, &server.env);
                    }
                }
                if plan.reports.is_empty() {
                    o.say("  no servers");
                }
            }
            Err(PlanError::Malformed(m)) => {
                failed = true;
                o.say(format!("  {}:{}:{}: {} — fix the file", pretty(&l.path), m.line, m.column, m.message));
            }
            Err(e) => {
                failed = true;
                o.say(format!("  {e}"));
            }
        }
    }
    o.say(format!("  {wrapped} wrapped, {unwrapped} not wrapped, {remote} remote not covered"));
    failed |= unwrapped > 0 || remote > 0;
    if unwrapped > 0 {
        o.say("  → `latch install` wraps the servers that are not wrapped (`--dry-run` shows the change first)");
    }

    o.say("");
    o.section = "hooks";
    o.say("Coding agents' own tools (pre-tool hooks)");
    let hooks = super::install_hooks::doctor_lines(&latch)?;
    for l in &hooks.lines {
        o.say(l.clone());
    }
    if hooks.missing {
        o.say("  → `latch install --hooks` puts the agents' own tools under the same guard");
    }
    failed |= hooks.failing;

    o.say("");
    o.section = "daemon";
    let paths = super::paths()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let status = match rt.block_on(client::request(&paths, Role::Cli, ClientMsg::Status { req: 1 })) {
        Ok(DaemonMsg::Status { status, .. }) => Some(status),
        Ok(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        Err(ClientError::NoDaemon(_)) => None,
        Err(e) => {
            o.say(format!("daemon    does not answer properly: {e}"));
            failed = true;
            None
        }
    };
    match &status {
        Some(s) => failed |= report_daemon(o, s),
        None => {
            o.say("daemon    not running — a wrapped server starts one on demand, or run `latch daemon`");
            o.say("console   none (no daemon) — `latch tui` starts the daemon and opens the console");
            let policy = std::fs::read_to_string(&paths.policy).ok().and_then(|t| t.parse::<toml::Table>().ok());
            for table in ["notify", "telegram"] {
                let state = match policy.as_ref().and_then(|p| p.get(table)).and_then(toml::Value::as_table) {
                    None => "not configured in the policy (the daemon's defaults apply when it runs)".to_owned(),
                    Some(t) if t.get("desktop").and_then(toml::Value::as_bool) == Some(false) => {
                        format!("off ([{table}] desktop = false in {})", pretty(&paths.policy))
                    }
                    Some(_) => format!("configured in {} (checked when the daemon runs)", pretty(&paths.policy)),
                };
                o.say(format!("{table:<9} {state}"));
            }
        }
    }
    let code = if failed { 1 } else { 0 };
    if a.json {
        let report = serde_json::json!({
            "ok": !failed,
            "exit": code,
            "counts": {"wrapped": wrapped, "not_wrapped": unwrapped, "remote_not_covered": remote},
            "servers": o.servers,
            "daemon": status,
            "lines": o.sections,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(code)
}

/// Flags the variables of a wrapped server's `env` block that change what
/// Latch does; true when there is one.
fn report_env(o: &mut Sink, env: &[latch_install::env::EnvVar]) -> bool {
    let risks = latch_install::env::risks(env);
    for r in &risks {
        let value = r.value.as_deref().map(|v| format!("={v}")).unwrap_or_default();
        o.say(format!(
            "    ! its env sets {}{value}: this {} — remove it from the server's env block unless you set it yourself",
            r.key, r.why
        ));
    }
    // An env file cannot be read through: a warning, not a failure.
    risks.iter().any(|r| r.key != latch_install::env::ENV_FILE)
}

/// The daemon's report; true when it names a security finding.
fn report_daemon(o: &mut Sink, s: &StatusReport) -> bool {
    o.say(format!("daemon    running (pid {}, version {})", s.daemon_pid, s.version));
    if let Some(since) = s.stopped_since {
        o.say(format!(
            "STOPPED   every tool call is denied since {} — `latch resume` (with the PIN) lets the policy decide again",
            super::audit_list::when(
                since,
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
            )
        ));
    }
    for f in &s.findings {
        o.say(format!("FINDING   {f}"));
    }
    match &s.policy_error {
        None => o.say(format!("policy    {}", s.policy)),
        Some(e) => o.say(format!("policy    {} — NOT IN FORCE: {e}", s.policy)),
    }
    if let Some(m) = &s.managed {
        o.say(format!("managed   {m}"));
    }
    if s.pin_set {
        o.say("PIN       set: approvals and looser policies need the person");
    } else {
        o.say("PIN       NONE — approvals are UNPROTECTED: any program running as you can approve; set one with `latch pin set`");
    }
    if let Some(p) = &s.policy_pending {
        o.say(format!(
            "policy    change pending: {} rules loosen — not in force until accepted (`latch policy accept`)",
            p.loosen
        ));
    }
    o.say(format!("shims     {} connected", s.shims.len()));
    if s.consoles == 0 {
        o.say("console   none attached — open one with `latch tui` to answer approvals");
    } else {
        o.say(format!("console   {} attached", s.consoles));
    }
    let find = |words: &[&str]| s.channels.iter().find(|c| words.iter().any(|w| c.name.to_lowercase().contains(w)));
    for (label, words) in [("notify", &["notif", "desktop"][..]), ("telegram", &["telegram"][..])] {
        let state = match find(words) {
            None => "not configured".to_owned(),
            Some(c) if !c.enabled => "configured, disabled".to_owned(),
            Some(c) => match &c.problem {
                None => "working".to_owned(),
                Some(p) => format!("NOT working: {p}"),
            },
        };
        o.say(format!("{label:<9} {state}"));
    }
    for c in s.channels.iter().filter(|c| {
        let n = c.name.to_lowercase();
        !["notif", "desktop", "telegram"].iter().any(|w| n.contains(w))
    }) {
        let state = c.problem.as_deref().unwrap_or(if c.enabled { "working" } else { "disabled" });
        o.say(format!("{:<9} {state}", c.name));
    }
    !s.findings.is_empty() || s.managed.as_deref().is_some_and(|m| m.starts_with("REFUSED"))
}
