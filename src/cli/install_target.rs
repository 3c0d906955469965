//! One file `latch install` rewrites: an MCP client's config, a coding
//! agent's hook settings, or both in one file (Gemini CLI's
//! `settings.json`, Codex's `config.toml`): one plan, one backup, one write.

use std::io::Write;
use std::path::{Path, PathBuf};

use latch_install::clients::Location;
use latch_install::hooks::{self, HookAgent};
use latch_install::{Action, Plan, PlanError};

use super::install::{describe, pretty, verb, write_back};

pub(crate) struct Target {
    pub path: PathBuf,
    /// The MCP client config this file is, if any.
    pub servers: Option<Location>,
    /// The agent whose hook settings this file is, if any.
    pub hook: Option<HookAgent>,
}

impl Target {
    pub fn heading(&self) -> String {
        match (&self.servers, self.hook) {
            (Some(l), _) => format!("{} ({}): {}", l.client.title(), l.scope, pretty(&self.path)),
            (None, Some(agent)) => format!("{} hook: {}", agent.title(), pretty(&self.path)),
            (None, None) => pretty(&self.path),
        }
    }
}

/// The files of LOCATIONS and of the hooks of AGENTS, a file named by both
/// once (compared by its real path).
pub(crate) fn targets(locations: Vec<Location>, agents: &[HookAgent], home: &Path) -> Vec<Target> {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out: Vec<Target> =
        locations.into_iter().map(|l| Target { path: l.path.clone(), servers: Some(l), hook: None }).collect();
    for &agent in agents {
        let path = agent.settings(home);
        let same = real(&path);
        match out.iter_mut().find(|t| t.hook.is_none() && real(&t.path) == same) {
            Some(t) => t.hook = Some(agent),
            None => out.push(Target { path, servers: None, hook: Some(agent) }),
        }
    }
    out
}

/// Rewrites one file; `Ok(Ok(true))` when it changed (or would), `Ok(Err)`
/// the message that names the file and why it was left untouched, `Err` a
/// failure to print.
pub(crate) fn process(
    t: &Target,
    action: Action,
    latch: &str,
    dry_run: bool,
    out: &mut impl Write,
) -> std::io::Result<Result<bool, String>> {
    let shown = pretty(&t.path);
    let (text, exists) = match std::fs::read(&t.path) {
        // A hook settings file that does not exist yet is created.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && t.servers.is_none() => (String::new(), false),
        Err(e) => return Ok(Err(format!("{shown}: cannot read it ({e}); left untouched"))),
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => (t, true),
            Err(_) => return Ok(Err(format!("{shown}: not UTF-8 text; left untouched"))),
        },
    };
    let path = t.path.to_string_lossy();
    let planned = match (&t.servers, t.hook) {
        (Some(l), Some(agent)) => latch_install::combined::plan(&text, l.format, l.layout, agent, action, latch, &path),
        (Some(l), None) => latch_install::plan(&text, l.format, l.layout, action, latch),
        (None, Some(agent)) => hooks::plan(&text, agent, action, latch, &path),
        (None, None) => Ok(Plan { text: text.clone(), edits: Vec::new(), reports: Vec::new() }),
    };
    let plan = match planned {
        Ok(p) => p,
        Err(PlanError::Malformed(m)) => {
            return Ok(Err(format!(
                "{shown}:{}:{}: {} — the file was left untouched; fix it and run again",
                m.line, m.column, m.message
            )));
        }
        Err(e) => return Ok(Err(format!("{shown}: {e}"))),
    };
    for r in &plan.reports {
        writeln!(out, "{}", describe(&r.name, &r.place, &r.outcome, dry_run))?;
    }
    if t.servers.is_some() && plan.reports.iter().all(|r| r.name == "pre-tool hook") {
        writeln!(out, "  no servers")?;
    }
    if t.hook == Some(HookAgent::Codex)
        && action == Action::Install
        && hooks::codex_trust::trusted(&plan.text, &path, HookAgent::Codex) == Some(false)
    {
        // Another trust already sits at the hook's key (or the hook was
        // added by hand): Codex would skip the hook without a word.
        let why = ": Codex already records another trust for its place; trust it in Codex (/hooks), or Codex skips it";
        writeln!(out, "{}", super::install::line("NOT trusted", "pre-tool hook", "", why))?;
    }
    if plan.edits.is_empty() {
        return Ok(Ok(false));
    }
    if dry_run {
        let after = format!("{shown} (after latch {})", verb(action));
        write!(out, "{}", latch_install::diff::unified(&text, &plan.edits, &shown, &after))?;
        return Ok(Ok(true));
    }
    let written = if !exists {
        create(&t.path, &plan.text)
    } else if plan.text.is_empty() && action == Action::Uninstall && t.servers.is_none() {
        // Install created it: it goes (there is no backup to keep: it was nothing).
        std::fs::remove_file(&t.path)
    } else {
        write_back(&t.path, &text, &plan, action)
    };
    Ok(written.map(|()| true).map_err(|e| format!("{shown}: could not write it ({e}); left untouched")))
}

fn create(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
