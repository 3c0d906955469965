//! The coding agents' pre-tool hooks on this machine: which agents are
//! installed, and `latch doctor`'s view of their hooks. The files are
//! rewritten by `install_target` (the edits are `latch_install::hooks`,
//! pure). A settings file that does not exist yet is created (0600), and
//! removed again when uninstalling leaves it empty.

use std::path::{Path, PathBuf};

use latch_install::hooks::{self, HookAgent};

use super::install::pretty;

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

/// `latch doctor`'s lines: per agent found, whether its hook is installed,
/// trusted (Codex) and answering; and whether any agent's tools are not
/// guarded (missing hook) or run unchecked (untrusted, silent).
pub(crate) struct HookReport {
    pub lines: Vec<String>,
    pub missing: bool,
    pub failing: bool,
}

pub(crate) fn doctor_lines(latch: &str) -> anyhow::Result<HookReport> {
    use super::hook_probe::{Probe, probe};
    let home = home()?;
    let agents = agents_found(&home, None);
    // The probes run side by side: each may take up to its timeout.
    let probes: Vec<_> = agents
        .iter()
        .map(|&agent| {
            let path = agent.settings(&home);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let installed = hooks::installed(&text, agent);
            let latch = latch.to_owned();
            let probe = installed.then(|| std::thread::spawn(move || probe(agent, &latch)));
            (agent, path, text, probe)
        })
        .collect();
    let mut report = HookReport { lines: Vec::new(), missing: false, failing: false };
    for (agent, path, text, probe) in probes {
        let mut state = match probe {
            None => {
                report.missing = true;
                "NOT installed".to_owned()
            }
            Some(_) if !text.contains(&hooks::command(agent, latch)) => {
                "installed, but for another latch binary or timeout: `latch install` again".into()
            }
            Some(_) if agent == HookAgent::ClaudeCode && !hooks::prompt_installed(&text) => {
                report.missing = true;
                "installed, but not on its permission prompt: `latch install` again".into()
            }
            Some(_) => "installed".to_owned(),
        };
        if agent == HookAgent::Codex && probe.is_some() {
            let trusted = hooks::codex_trust::trusted(&text, &path.to_string_lossy(), agent);
            if trusted == Some(true) {
                state.push_str(", trusted");
            } else {
                report.failing = true;
                state.push_str(
                    ", NOT trusted (Codex skips it): `latch install` again records the trust, or trust it in Codex's /hooks",
                );
            }
        }
        if let Some(p) = probe {
            match p.join() {
                Ok(Probe::Allows(took)) => state.push_str(&format!(", answering ({} ms)", took.as_millis())),
                Ok(Probe::Denies(why)) => {
                    let why: String = why.chars().take(160).collect();
                    state.push_str(&format!(", answering, but denies a harmless read: {why}"));
                }
                Ok(Probe::Silent(why)) => {
                    report.failing = true;
                    state.push_str(&format!(", NOT answering ({why}): the agent would run its tools unchecked"));
                }
                Err(_) => {
                    report.failing = true;
                    state.push_str(", NOT answering (the check itself failed)");
                }
            }
        }
        report.lines.push(format!("  {:<12} {state} ({})", agent.title(), pretty(&path)));
    }
    if report.lines.is_empty() {
        report.lines.push("  no coding agent found (~/.claude, ~/.codex, ~/.gemini, ~/.copilot)".into());
    }
    Ok(report)
}
