//! The coding agents' own tools under the same guard: `latch hook AGENT`
//! reads the JSON an agent gives its pre-tool hook, turns the built-in tool
//! into a call the decision core understands, and writes the answer the
//! agent obeys. Everything here is pure; `src/cli/hook.rs` does the IO.
//!
//! * [`payload`]: the hook's stdin per agent → [`HookInput`].
//! * [`tools`]: a built-in tool → a tool definition and arguments
//!   ([`Target`]): shell tools are EXECUTE (the command is a shell
//!   argument), file writers and `apply_patch` WRITE with every path they
//!   touch, readers and searches READ with their paths, web fetch and
//!   search READ and open-world. MCP calls that pass the hook are named
//!   by server and tool.
//! * [`patch`]: every path an `apply_patch` text adds, updates, moves or
//!   deletes.
//! * [`answer`]: allow, deny or no decision in the agent's own format.

mod agent;
pub mod answer;
pub mod patch;
pub mod payload;
pub mod tools;

#[cfg(test)]
mod tests;

pub use agent::Agent;
pub use answer::{Reply, Verdict, reply};
pub use payload::{HookInput, PERMISSION_REQUEST, PayloadError, read};
pub use tools::{Kind, Mapped, Target, map};

/// The agents' own settings files under HOME, where their hooks live: an
/// agent that could edit them could take Latch out of its loop, so they
/// are protected like Latch's own files (see `policy::Protected`).
/// Project-level settings (`.claude/settings.json` in a repository) are
/// not covered: their folder is not known here.
pub fn settings_files(home: &str) -> Vec<String> {
    let home = home.trim_end_matches('/');
    [
        ".claude/settings.json",
        ".claude/settings.local.json",
        ".codex/config.toml",
        ".gemini/settings.json",
        ".copilot/settings.json",
    ]
    .iter()
    .map(|rel| format!("{home}/{rel}"))
    .collect()
}
