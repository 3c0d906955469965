//! `latch doctor`'s "answering" check: runs `latch hook AGENT` the way the
//! agent would, with a harmless read (`/dev/null`, session `latch-doctor`),
//! and sees whether and how it answers before the agent would give up.
//! The call is decided by the daemon like any other and leaves its audit
//! row.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latch_install::hooks::HookAgent;

/// What the hook said; shown after the agent's name.
pub(crate) enum Probe {
    /// Let the read through, in this time.
    Allows(Duration),
    /// Answered, with a deny (the agent would not run the read): why.
    Denies(String),
    /// No answer in time, or could not be run: the agent would run the tool.
    Silent(String),
}

/// The seconds `latch hook` gets; it answers itself a little before.
const HOOK_TIMEOUT_SECS: u64 = 5;

fn payload(agent: HookAgent) -> String {
    let (tool, input) = match agent {
        HookAgent::ClaudeCode | HookAgent::Codex => ("Read", serde_json::json!({"file_path": "/dev/null"})),
        HookAgent::Gemini => ("read_file", serde_json::json!({"file_path": "/dev/null"})),
        HookAgent::Copilot => ("view", serde_json::json!({"path": "/dev/null"})),
    };
    let body = match agent {
        HookAgent::Copilot => serde_json::json!({
            "sessionId": "latch-doctor", "timestamp": 0, "cwd": "/", "toolName": tool, "toolArgs": input.to_string()
        }),
        HookAgent::Gemini => serde_json::json!({
            "session_id": "latch-doctor", "cwd": "/", "hook_event_name": "BeforeTool",
            "tool_name": tool, "tool_input": input
        }),
        HookAgent::ClaudeCode | HookAgent::Codex => serde_json::json!({
            "session_id": "latch-doctor", "cwd": "/", "hook_event_name": "PreToolUse", "tool_name": tool,
            "tool_input": input, "tool_use_id": "latch-doctor", "permission_mode": "default"
        }),
    };
    body.to_string()
}

/// Runs the hook of AGENT through LATCH and waits for its answer.
pub(crate) fn probe(agent: HookAgent, latch: &str) -> Probe {
    let start = Instant::now();
    let child = Command::new(latch)
        .args(["hook", agent.id(), "--timeout", &HOOK_TIMEOUT_SECS.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Probe::Silent(format!("cannot run {latch}: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload(agent).as_bytes());
    }
    // The agent's own limit: an answer after it is no answer.
    let limit = Duration::from_secs(HOOK_TIMEOUT_SECS);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Probe::Silent(format!("no answer within {HOOK_TIMEOUT_SECS} s"));
            }
            Err(e) => return Probe::Silent(e.to_string()),
        }
    };
    let took = start.elapsed();
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    match status.code() {
        Some(0) if out.trim().is_empty() => Probe::Allows(took),
        Some(0 | 2) => Probe::Denies(reason(&out).unwrap_or_else(|| err.trim().to_owned())),
        // Any other end is "hook failed" to the agents: they run the tool.
        other => Probe::Silent(format!("it ended with {other:?}, which the agent treats as \"run the tool\"")),
    }
}

/// The deny's reason, from any agent's answer format.
fn reason(out: &str) -> Option<String> {
    fn find(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| match v {
                serde_json::Value::String(s) if k.to_ascii_lowercase().contains("reason") => Some(s.clone()),
                other => find(other),
            }),
            _ => None,
        }
    }
    find(&serde_json::from_str(out.trim()).ok()?)
}
