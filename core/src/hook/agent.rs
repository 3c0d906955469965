//! The coding agents whose pre-tool hook Latch answers.

/// The agents whose pre-tool hook Latch answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Agent {
    ClaudeCode,
    Codex,
    Gemini,
    Copilot,
}

impl Agent {
    pub const ALL: [Agent; 4] = [Agent::ClaudeCode, Agent::Codex, Agent::Gemini, Agent::Copilot];

    /// The name on the command line, and the server name in the policy and
    /// the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "claude-code",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
            Agent::Copilot => "copilot",
        }
    }

    pub fn from_name(name: &str) -> Option<Agent> {
        Agent::ALL.into_iter().find(|a| a.name() == name)
    }

    /// How long the agent waits for its hook when the settings name no
    /// timeout. A hook that takes longer is treated as failed, and the
    /// tool runs: the hook must answer before.
    pub fn default_timeout_ms(self) -> u64 {
        match self {
            Agent::ClaudeCode => 60_000,
            Agent::Codex => 600_000,
            Agent::Gemini => 60_000,
            Agent::Copilot => 30_000,
        }
    }
}
