//! The answer an agent obeys, in its own format.
//!
//! | agent | allow, no decision | deny |
//! |---|---|---|
//! | Claude Code | exit 0, no output: its own permission rules stay in charge | `hookSpecificOutput.permissionDecision: "deny"`, exit 0 |
//! | Codex | exit 0, no output | exit 2, the reason on stderr (Codex obeys only deny) |
//! | Gemini CLI | exit 0, no output | `{"decision": "deny", "reason": …}`, exit 0 |
//! | Copilot CLI | exit 0, no output | `{"permissionDecision": "deny", …}`, exit 0 |
//!
//! Claude Code's `PermissionRequest` (its own permission prompt, answered
//! from Latch): [`Verdict::PromptAllow`] and [`Verdict::PromptDeny`] become
//! `hookSpecificOutput.decision.behavior` `allow` / `deny`; anything else
//! (no answer in time, an error) writes nothing, so Claude Code's own
//! dialog stands.
//!
//! Latch never answers `allow` in the agent's format: Claude Code would
//! then run the tool even where its own rules would ask. Nor `ask`: Codex
//! treats it as a failed hook and runs the tool, Gemini CLI hangs a
//! headless run. [`Verdict::AgentAsk`] exists only for Claude Code, when
//! the user chose to hand Latch's asks to Claude Code's own prompt.

use serde_json::json;

use super::agent::Agent;

/// What Latch answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Latch does not object: the agent's own rules decide.
    Allow,
    /// Latch stays out of the way (a Latch shim decides this MCP call).
    Pass,
    /// The tool must not run; the text is for the model.
    Deny(String),
    /// Claude Code only: let Claude Code ask its user (interactive runs).
    AgentAsk(String),
    /// Claude Code's `PermissionRequest` (its own prompt), answered by a
    /// person in Latch: allow. Only ever from a person's answer or grant.
    PromptAllow,
    /// Claude Code's `PermissionRequest`, denied in Latch; the text is for
    /// the model.
    PromptDeny(String),
}

/// Bytes for stdout and stderr, and the exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub stdout: String,
    pub stderr: String,
    pub exit: i32,
}

impl Reply {
    fn silent() -> Reply {
        Reply { stdout: String::new(), stderr: String::new(), exit: 0 }
    }
}

/// The agent's answer for a verdict.
pub fn reply(agent: Agent, verdict: &Verdict) -> Reply {
    match verdict {
        Verdict::Allow | Verdict::Pass => Reply::silent(),
        Verdict::AgentAsk(reason) if agent == Agent::ClaudeCode => Reply {
            stdout: json!({"hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "ask",
                "permissionDecisionReason": reason,
            }})
            .to_string(),
            stderr: String::new(),
            exit: 0,
        },
        Verdict::PromptAllow | Verdict::PromptDeny(_) if agent == Agent::ClaudeCode => prompt(verdict),
        // No other agent has the event: nothing that allows.
        Verdict::PromptAllow => Reply::silent(),
        // Any other agent: an ask it cannot hold is a deny.
        Verdict::AgentAsk(reason) | Verdict::Deny(reason) | Verdict::PromptDeny(reason) => deny(agent, reason),
    }
}

/// Claude Code's answer to its `PermissionRequest` hook: the decision its
/// own permission dialog would have given.
fn prompt(verdict: &Verdict) -> Reply {
    let decision = match verdict {
        Verdict::PromptAllow => json!({"behavior": "allow"}),
        Verdict::PromptDeny(message) => json!({"behavior": "deny", "message": message}),
        _ => return Reply::silent(),
    };
    let stdout = json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}});
    Reply { stdout: stdout.to_string(), stderr: String::new(), exit: 0 }
}

fn deny(agent: Agent, reason: &str) -> Reply {
    let stdout = match agent {
        Agent::ClaudeCode => json!({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }}),
        Agent::Codex => {
            return Reply { stdout: String::new(), stderr: format!("{reason}\n"), exit: 2 };
        }
        Agent::Gemini => json!({"decision": "deny", "reason": reason}),
        Agent::Copilot => json!({"permissionDecision": "deny", "permissionDecisionReason": reason}),
    };
    Reply { stdout: stdout.to_string(), stderr: String::new(), exit: 0 }
}
