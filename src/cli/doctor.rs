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
}

/// Exit 1 when a server is not covered (not wrapped, or remote and not
/// wrapped), something is broken, or the daemon names a finding.
pub fn run(a: DoctorArgs) -> anyhow::Result<i32> {
    let latch = latch_exe()?;
    let mut failed = false;
    let (mut wrapped, mut unwrapped, mut remote) = (0, 0, 0);
    println!("MCP clients");
    let locations = existing_locations(None, a.project)?;
    if locations.is_empty() {
        println!(
            "  no client config found (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, Codex, Gemini CLI)"
        );
    }
    for l in &locations {
        println!("{} ({}): {}", l.client.title(), l.scope, pretty(&l.path));
        let text = match std::fs::read_to_string(&l.path) {
            Ok(t) => t,
            Err(e) => {
                println!("  cannot read it: {e}");
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
                    println!("{text}");
                    let server = envs.iter().find(|s| s.name == r.name && s.place == r.place);
                    if is_wrapped && let Some(server) = server {
                        failed |= report_env(&server.env);
                    }
                }
                if plan.reports.is_empty() {
                    println!("  no servers");
                }
            }
            Err(PlanError::Malformed(m)) => {
                failed = true;
                println!("  {}:{}:{}: {} — fix the file", pretty(&l.path), m.line, m.column, m.message);
            }
            Err(e) => {
                failed = true;
                println!("  {e}");
            }
        }
    }
    println!("  {wrapped} wrapped, {unwrapped} not wrapped, {remote} remote not covered");
    failed |= unwrapped > 0 || remote > 0;
    if unwrapped > 0 {
        println!("  → `latch install` wraps the servers that are not wrapped (`--dry-run` shows the change first)");
    }

    println!();
    println!("Coding agents' own tools (pre-tool hooks)");
    let hooks = super::install_hooks::doctor_lines(&latch)?;
    for l in &hooks.lines {
        println!("{l}");
    }
    if hooks.missing {
        println!("  → `latch install --hooks` puts the agents' own tools under the same guard");
    }
    failed |= hooks.failing;

    println!();
    let paths = super::paths()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let status = match rt.block_on(client::request(&paths, Role::Cli, ClientMsg::Status { req: 1 })) {
        Ok(DaemonMsg::Status { status, .. }) => Some(status),
        Ok(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        Err(ClientError::NoDaemon(_)) => None,
        Err(e) => {
            println!("daemon    does not answer properly: {e}");
            failed = true;
            None
        }
    };
    match &status {
        Some(s) => failed |= report_daemon(s),
        None => {
            println!("daemon    not running — a wrapped server starts one on demand, or run `latch daemon`");
            println!("console   none (no daemon) — `latch tui` starts the daemon and opens the console");
            let policy = std::fs::read_to_string(&paths.policy).ok().and_then(|t| t.parse::<toml::Table>().ok());
            for table in ["notify", "telegram"] {
                let state = match policy.as_ref().and_then(|p| p.get(table)).and_then(toml::Value::as_table) {
                    None => "not configured in the policy (the daemon's defaults apply when it runs)".to_owned(),
                    Some(t) if t.get("desktop").and_then(toml::Value::as_bool) == Some(false) => {
                        format!("off ([{table}] desktop = false in {})", pretty(&paths.policy))
                    }
                    Some(_) => format!("configured in {} (checked when the daemon runs)", pretty(&paths.policy)),
                };
                println!("{table:<9} {state}");
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Flags the variables of a wrapped server's `env` block that change what
/// Latch does; true when there is one.
fn report_env(env: &[latch_install::env::EnvVar]) -> bool {
    let risks = latch_install::env::risks(env);
    for r in &risks {
        let value = r.value.as_deref().map(|v| format!("={v}")).unwrap_or_default();
        println!(
            "    ! its env sets {}{value}: this {} — remove it from the server's env block unless you set it yourself",
            r.key, r.why
        );
    }
    // An env file cannot be read through: a warning, not a failure.
    risks.iter().any(|r| r.key != latch_install::env::ENV_FILE)
}

/// The daemon's report; true when it names a security finding.
fn report_daemon(s: &StatusReport) -> bool {
    println!("daemon    running (pid {}, version {})", s.daemon_pid, s.version);
    if let Some(since) = s.stopped_since {
        println!(
            "STOPPED   every tool call is denied since {} — `latch resume` (with the PIN) lets the policy decide again",
            super::audit_list::when(
                since,
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
            )
        );
    }
    for f in &s.findings {
        println!("FINDING   {f}");
    }
    match &s.policy_error {
        None => println!("policy    {}", s.policy),
        Some(e) => println!("policy    {} — NOT IN FORCE: {e}", s.policy),
    }
    if s.pin_set {
        println!("PIN       set: approvals and looser policies need the person");
    } else {
        println!(
            "PIN       NONE — approvals are UNPROTECTED: any program running as you can approve; set one with `latch pin set`"
        );
    }
    if let Some(p) = &s.policy_pending {
        println!(
            "policy    change pending: {} rules loosen — not in force until accepted (`latch policy accept`)",
            p.loosen
        );
    }
    println!("shims     {} connected", s.shims.len());
    if s.consoles == 0 {
        println!("console   none attached — open one with `latch tui` to answer approvals");
    } else {
        println!("console   {} attached", s.consoles);
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
        println!("{label:<9} {state}");
    }
    for c in s.channels.iter().filter(|c| {
        let n = c.name.to_lowercase();
        !["notif", "desktop", "telegram"].iter().any(|w| n.contains(w))
    }) {
        let state = c.problem.as_deref().unwrap_or(if c.enabled { "working" } else { "disabled" });
        println!("{:<9} {state}", c.name);
    }
    !s.findings.is_empty()
}
