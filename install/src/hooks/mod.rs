//! The coding agents' pre-tool hooks: `latch install` makes each agent ask
//! `latch hook AGENT` before every tool call, `latch uninstall` takes it
//! out again, byte for byte (a file that also holds MCP servers goes
//! through [`crate::combined`]). Pure, like the rest of the
//! crate: text in, [`Plan`] out.
//!
//! | agent | file | where | timeout |
//! |---|---|---|---|
//! | Claude Code | `~/.claude/settings.json` (JSON) | `hooks.PreToolUse[]`: `{matcher: "*", hooks: [{type, command, timeout}]}`; the same in `hooks.PermissionRequest[]` (its own permission prompt, answered from Latch) and `hooks.PostToolUse[]` (withdraws a prompt its own dialog answered) | 60 s; 300 s for the prompt |
//! | Codex | `~/.codex/config.toml` | a marked `[[hooks.PreToolUse]]` block at the end | 120 s |
//! | Gemini CLI | `~/.gemini/settings.json` (JSONC) | `hooks.BeforeTool[]`, timeout in ms | 60 s |
//! | Copilot CLI | `~/.copilot/settings.json` (JSONC) | `hooks.preToolUse[]`: `{type, bash, timeoutSec}` | 30 s |
//!
//! The command carries the same timeout (`--timeout`), so Latch answers
//! before the agent gives up (an agent runs the tool when its hook times
//! out). JSON files get one entry appended (and the `hooks` object or the
//! event's list created when missing); uninstall removes that entry, then
//! a list or object left exactly as install creates it. A missing file is
//! created, and uninstalling what install created gives an empty text
//! (the caller removes the file). Every install is checked: uninstalling
//! its result must give back the original bytes, or nothing is written.
//!
//! Codex skips hooks nobody trusted: its block records the trust the way
//! Codex does ([`codex_trust`]).

pub mod codex_trust;
mod json;
mod toml_block;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::plan::{Action, Outcome, Plan, PlanError, Report};

/// An agent whose pre-tool hook Latch can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookAgent {
    ClaudeCode,
    Codex,
    Gemini,
    Copilot,
}

impl HookAgent {
    pub const ALL: [HookAgent; 4] = [HookAgent::ClaudeCode, HookAgent::Codex, HookAgent::Gemini, HookAgent::Copilot];

    /// The name `latch hook` takes.
    pub fn id(self) -> &'static str {
        match self {
            HookAgent::ClaudeCode => "claude-code",
            HookAgent::Codex => "codex",
            HookAgent::Gemini => "gemini",
            HookAgent::Copilot => "copilot",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            HookAgent::ClaudeCode => "Claude Code",
            HookAgent::Codex => "Codex",
            HookAgent::Gemini => "Gemini CLI",
            HookAgent::Copilot => "Copilot CLI",
        }
    }

    /// The agent's own folder under the home folder: it is installed when
    /// this exists.
    pub fn folder(self, home: &Path) -> PathBuf {
        home.join(match self {
            HookAgent::ClaudeCode => ".claude",
            HookAgent::Codex => ".codex",
            HookAgent::Gemini => ".gemini",
            HookAgent::Copilot => ".copilot",
        })
    }

    /// The settings file that holds its hooks.
    pub fn settings(self, home: &Path) -> PathBuf {
        self.folder(home).join(match self {
            HookAgent::Codex => "config.toml",
            _ => "settings.json",
        })
    }

    /// Seconds the agent is told to wait for the hook; the hook answers
    /// before.
    pub fn timeout_secs(self) -> u64 {
        match self {
            HookAgent::ClaudeCode | HookAgent::Gemini => 60,
            HookAgent::Codex => 120,
            HookAgent::Copilot => 30,
        }
    }

    /// The event the pre-tool hook is registered under.
    fn event(self) -> &'static str {
        match self {
            HookAgent::ClaudeCode | HookAgent::Codex => "PreToolUse",
            HookAgent::Gemini => "BeforeTool",
            HookAgent::Copilot => "preToolUse",
        }
    }

    /// Every event Latch's hook is registered under, the pre-tool one
    /// first: Claude Code also hands Latch its own permission prompt, and
    /// says when a tool ran (a prompt answered in its own dialog).
    fn events(self) -> &'static [&'static str] {
        match self {
            HookAgent::ClaudeCode => &["PreToolUse", PROMPT_EVENT, RAN_EVENT],
            HookAgent::Codex => &["PreToolUse"],
            HookAgent::Gemini => &["BeforeTool"],
            HookAgent::Copilot => &["preToolUse"],
        }
    }
}

/// Claude Code's permission-prompt event.
pub const PROMPT_EVENT: &str = "PermissionRequest";
/// Claude Code's event after a tool ran: Latch withdraws the prompt its
/// own dialog answered first.
pub const RAN_EVENT: &str = "PostToolUse";

/// Seconds Claude Code waits for Latch on its permission prompt: a person
/// answering from a phone needs longer than a pre-tool check, and Claude
/// Code's own dialog is on screen meanwhile.
pub const PROMPT_TIMEOUT_SECS: u64 = 300;

fn timeout_for(agent: HookAgent, event: &str) -> u64 {
    if event == PROMPT_EVENT { PROMPT_TIMEOUT_SECS } else { agent.timeout_secs() }
}

/// The command line the agent runs: `LATCH hook AGENT --timeout N`, the
/// path quoted for a shell when it needs it.
pub fn command(agent: HookAgent, latch: &str) -> String {
    command_for(agent, latch, agent.timeout_secs())
}

fn command_for(agent: HookAgent, latch: &str, timeout: u64) -> String {
    let plain = latch.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c));
    let exe = if plain && !latch.is_empty() { latch.to_owned() } else { format!("'{}'", latch.replace('\'', r"'\''")) };
    format!("{exe} hook {} --timeout {timeout}", agent.id())
}

/// Whether a hook command is Latch's for this agent (any path of `latch`).
pub fn is_ours(command: &str, agent: HookAgent) -> bool {
    let command = command.trim_start();
    let (exe, rest) = match command.chars().next() {
        Some(q @ ('\'' | '"')) => match command[1..].find(q) {
            Some(end) => (&command[1..1 + end], &command[2 + end..]),
            None => return false,
        },
        _ => command.split_at(command.find(char::is_whitespace).unwrap_or(command.len())),
    };
    let mut words = rest.split_whitespace();
    (exe == "latch" || exe.ends_with("/latch")) && words.next() == Some("hook") && words.next() == Some(agent.id())
}

/// Whether TEXT (the agent's settings) holds Latch's pre-tool hook.
pub fn installed(text: &str, agent: HookAgent) -> bool {
    match agent {
        HookAgent::Codex => toml_block::installed(text, agent),
        _ => json::find(text, agent, agent.event()).is_some(),
    }
}

/// Whether TEXT holds Latch's hook on Claude Code's permission prompt.
pub fn prompt_installed(text: &str) -> bool {
    [PROMPT_EVENT, RAN_EVENT].iter().all(|e| json::find(text, HookAgent::ClaudeCode, e).is_some())
}

/// Every missing event's entry added, in order, and the events added (an
/// earlier install may have added only the pre-tool hook).
fn install_json(text: &str, agent: HookAgent, latch: &str) -> Result<(String, Outcome, Vec<&'static str>), PlanError> {
    let mut text = text.to_owned();
    let mut added = Vec::new();
    for event in agent.events() {
        let (new, outcome) = json::install(&text, agent, event, latch)?;
        if matches!(outcome, Outcome::Skipped(_)) {
            return Ok((new, outcome, Vec::new()));
        }
        if new != text {
            added.push(*event);
        }
        text = new;
    }
    let outcome = if added.is_empty() { Outcome::AlreadyWrapped } else { done(Action::Install) };
    Ok((text, outcome, added))
}

/// The entries of EVENTS removed, the last added first.
fn uninstall_json(text: &str, agent: HookAgent, events: &[&str]) -> Result<(String, Outcome), PlanError> {
    let mut text = text.to_owned();
    let mut outcome = Outcome::NotWrapped;
    for event in events.iter().rev() {
        let (new, o) = json::uninstall(&text, agent, event)?;
        text = new;
        if o == done(Action::Uninstall) {
            outcome = o;
        }
    }
    Ok((text, outcome))
}

/// The edits that add (or remove) Latch's hook in TEXT, checked. PATH is
/// where the agent reads the file from (Codex's trust names it).
pub fn plan(text: &str, agent: HookAgent, action: Action, latch: &str, path: &str) -> Result<Plan, PlanError> {
    let mut added = agent.events().to_vec();
    let (new, outcome) = match (agent, action) {
        (HookAgent::Codex, Action::Install) => toml_block::install(text, agent, latch, path)?,
        (HookAgent::Codex, Action::Uninstall) => toml_block::uninstall(text, agent),
        (_, Action::Install) => {
            let (new, outcome, events) = install_json(text, agent, latch)?;
            added = events;
            (new, outcome)
        }
        (_, Action::Uninstall) => uninstall_json(text, agent, agent.events())?,
    };
    let edits = if new == text { Vec::new() } else { vec![crate::combined::one_edit(text, &new)] };
    let p = Plan {
        text: new,
        edits,
        reports: vec![Report { name: "pre-tool hook".into(), place: String::new(), outcome, command: None }],
    };
    if p.edits.is_empty() {
        return Ok(p);
    }
    match action {
        Action::Install => {
            let (back, _) = match agent {
                HookAgent::Codex => toml_block::uninstall(&p.text, agent),
                _ => uninstall_json(&p.text, agent, &added).map_err(|e| PlanError::Unchecked(e.to_string()))?,
            };
            if back != text {
                return Err(PlanError::Unchecked("uninstalling the hook would not give the original back".into()));
            }
        }
        Action::Uninstall => {
            if installed(&p.text, agent) || (agent == HookAgent::ClaudeCode && prompt_installed(&p.text)) {
                return Err(PlanError::Unchecked("the hook is still there after uninstalling".into()));
            }
        }
    }
    Ok(p)
}

/// Outcome names shared with the MCP rewrite.
fn done(action: Action) -> Outcome {
    if action == Action::Install { Outcome::Wrapped } else { Outcome::Unwrapped }
}
