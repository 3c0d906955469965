//! Who a connection speaks for, as the trifecta counts sessions: the IO
//! part (`/proc`), run before the engine's lock is taken.
//!
//! * A shim's agent is the process that started it: its parent, skipping
//!   shells and launchers (`sh -c`, `env`, `npx`) a client configuration
//!   may put between. Every MCP server of one agent process is one
//!   session, whatever each shim's own session id says.
//! * A hook is one process per call; the agent's own session id (Claude
//!   Code's `session_id`) names its session, and its ancestors are read so
//!   that the daemon can see it was started by an agent process whose
//!   shims it knows: then the hook's session and the agent's are one.
//!
//! Processes are named by pid *and* start time, so a reused pid is another
//! process. Where `/proc` cannot be read (not Linux, another user's
//! process), a shim is a session of its own and a hook its agent's session
//! id alone.

/// One process: pid, start time (clock ticks since boot) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Proc {
    pub pid: u32,
    pub start: u64,
}

impl Proc {
    /// The session key of an agent process.
    pub fn key(&self) -> String {
        format!("agent:{}:{}", self.pid, self.start)
    }
}

/// Who one connection speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// A shim: the agent process that started it, if readable, and the
    /// shim's own session id.
    Shim { agent: Option<(Proc, String)>, session: String },
    /// A hook: the agent's session id and the hook's ancestors, nearest
    /// first.
    Hook { session: String, ancestors: Vec<Proc> },
}

/// Ancestors read at most.
const MAX_DEPTH: usize = 32;
/// Processes skipped between a shim and its agent.
const LAUNCHERS: &[&str] = &["sh", "bash", "dash", "zsh", "fish", "env", "npx", "npm", "uvx", "timeout", "nice"];

/// What `/proc/PID/stat` says: (name, parent pid, start time).
fn stat(pid: u32) -> Option<(String, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((name, ppid, start))
}

/// The agent process that started the shim `pid`, and its name.
pub(crate) fn agent_of(pid: Option<i32>) -> Option<(Proc, String)> {
    let mut pid = u32::try_from(pid?).ok()?;
    for _ in 0..MAX_DEPTH {
        let (_, ppid, _) = stat(pid)?;
        if ppid <= 1 {
            return None;
        }
        let (name, _, start) = stat(ppid)?;
        if !LAUNCHERS.contains(&name.as_str()) {
            return Some((Proc { pid: ppid, start }, name));
        }
        pid = ppid;
    }
    None
}

/// The ancestors of the hook `pid`, nearest first (init excluded).
pub(crate) fn ancestors(pid: Option<i32>) -> Vec<Proc> {
    let mut out = Vec::new();
    let Some(mut pid) = pid.and_then(|p| u32::try_from(p).ok()) else { return out };
    for _ in 0..MAX_DEPTH {
        let Some((_, ppid, _)) = stat(pid) else { break };
        if ppid <= 1 {
            break;
        }
        let Some((_, _, start)) = stat(ppid) else { break };
        out.push(Proc { pid: ppid, start });
        pid = ppid;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_readable_parent() {
        let me = std::process::id() as i32;
        let a = ancestors(Some(me));
        assert!(!a.is_empty(), "the test runner has a parent");
        let (_, ppid, _) = stat(std::process::id()).unwrap();
        assert_eq!(a[0].pid, ppid);
        assert_eq!(ancestors(None), Vec::new());
    }
}
