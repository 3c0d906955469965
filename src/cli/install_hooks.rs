//! `latch install --hooks` / `latch uninstall --hooks`: the coding agents'
//! pre-tool hooks (the edits are `latch_install::hooks`, pure; this is the
//! IO, with the same backups and atomic writes as the MCP configs). A
//! settings file that does not exist yet is created (0600), and removed
//! again when uninstalling leaves it empty.

use std::io::Write;
use std::path::{Path, PathBuf};

use latch_install::hooks::{self, HookAgent};
use latch_install::{Action, PlanError};

use super::install::{describe, pretty, verb, write_back};

pub(crate) fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("HOME is not set: Latch looks for the agents' settings under it"))
}

/// The agents installed here (their folder exists), or only AGENT.
pub(crate) fn agents_found(home: &Path, agent: Option<HookAgent>) -> Vec<HookAgent> {
    HookAgent::ALL.into_iter().filter(|g| agent.is_none_or(|a| a == *g)).filter(|g| g.folder(home).is_dir()).collect()
}

pub fn run(agent: Option<&str>, dry_run: bool, action: Action, latch: &str) -> anyhow::Result<i32> {
    let agent = match agent.map(|id| (id, HookAgent::ALL.into_iter().find(|g| g.id() == id))) {
        None => None,
        Some((_, Some(g))) => Some(g),
        Some((id, None)) => {
            eprintln!(
                "error: invalid value for '[CLIENT]': unknown agent `{id}` for --hooks: use one of claude-code, codex, gemini, copilot"
            );
            return Ok(2);
        }
    };
    let home = home()?;
    let agents = agents_found(&home, agent);
    let mut out = std::io::stdout().lock();
    if agents.is_empty() {
        writeln!(
            out,
            "no coding agent found (~/.claude, ~/.codex, ~/.gemini, ~/.copilot); nothing to {}",
            verb(action)
        )?;
        return Ok(0);
    }
    let (mut failed, mut changed) = (false, 0);
    for agent in agents {
        let path = agent.settings(&home);
        writeln!(out, "{} hook: {}", agent.title(), pretty(&path))?;
        let (text, exists) = match std::fs::read_to_string(&path) {
            Ok(t) => (t, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
            Err(e) => {
                failed = true;
                writeln!(out, "  cannot read it ({e}); left untouched")?;
                continue;
            }
        };
        let plan = match hooks::plan(&text, agent, action, latch) {
            Ok(p) => p,
            Err(PlanError::Malformed(m)) => {
                failed = true;
                writeln!(
                    out,
                    "  {}:{}:{}: {} — left untouched; fix it and run again",
                    pretty(&path),
                    m.line,
                    m.column,
                    m.message
                )?;
                continue;
            }
            Err(e) => {
                failed = true;
                writeln!(out, "  {e}")?;
                continue;
            }
        };
        for r in &plan.reports {
            writeln!(out, "{}", describe(&r.name, &r.place, &r.outcome, dry_run))?;
        }
        if plan.edits.is_empty() {
            continue;
        }
        changed += 1;
        if dry_run {
            let shown = pretty(&path);
            let after = format!("{shown} (after latch {} --hooks)", verb(action));
            write!(out, "{}", latch_install::diff::unified(&text, &plan.edits, &shown, &after))?;
            continue;
        }
        let written = if !exists {
            create(&path, &plan.text)
        } else if plan.text.is_empty() && action == Action::Uninstall {
            // Install created it: it goes, with a backup equal to nothing.
            std::fs::remove_file(&path)
        } else {
            write_back(&path, &text, &plan, action)
        };
        if let Err(e) = written {
            failed = true;
            writeln!(out, "  could not write it ({e}); left untouched")?;
        }
    }
    match (dry_run, changed) {
        (true, 0) => writeln!(out, "dry run: nothing would change")?,
        (true, n) => writeln!(out, "dry run: {n} settings file(s) would change; nothing was written")?,
        (false, 0) => writeln!(out, "nothing to change")?,
        (false, n) if action == Action::Install => writeln!(
            out,
            "{n} settings file(s) changed; the agents ask Latch before each tool call from their next start \
             (Codex runs a hook only once you trust it)"
        )?,
        (false, n) => writeln!(out, "{n} settings file(s) restored")?,
    }
    Ok(if failed { 1 } else { 0 })
}

fn create(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// `latch doctor`'s lines: per agent found, whether its hook is installed.
pub(crate) fn doctor_lines(latch: &str) -> anyhow::Result<(Vec<String>, bool)> {
    let home = home()?;
    let mut lines = Vec::new();
    let mut missing = false;
    for agent in agents_found(&home, None) {
        let path = agent.settings(&home);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let state = if hooks::installed(&text, agent) {
            let stale = !text.contains(&hooks::command(agent, latch));
            match (agent, stale) {
                (HookAgent::ClaudeCode, false) if !hooks::prompt_installed(&text) => {
                    "installed, but not on its permission prompt: `latch install --hooks` again".into()
                }
                (_, true) => "installed, but for another latch binary or timeout: `latch install --hooks` again".into(),
                (HookAgent::Codex, false) => "installed (Codex skips it until you trust it in Codex)".into(),
                _ => "installed".to_owned(),
            }
        } else {
            missing = true;
            "NOT installed".to_owned()
        };
        lines.push(format!("  {:<12} {state} ({})", agent.title(), pretty(&path)));
    }
    if lines.is_empty() {
        lines.push("  no coding agent found (~/.claude, ~/.codex, ~/.gemini, ~/.copilot)".into());
    }
    Ok((lines, missing))
}
