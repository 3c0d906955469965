//! The JSON an agent writes to its pre-tool hook's stdin, read into one
//! shape. Field names per agent:
//!
//! | agent | session | cwd | tool | input | tool-use id |
//! |---|---|---|---|---|---|
//! | Claude Code, Codex | `session_id` | `cwd` | `tool_name` | `tool_input` | `tool_use_id` |
//! | Gemini CLI | `session_id` | `cwd` | `tool_name` | `tool_input` (+ `mcp_context.server_name`) | — |
//! | Copilot CLI | `sessionId` | `cwd` | `toolName` | `toolArgs` (an object, or JSON text) | — |
//!
//! Only the tool name is required: a payload without one cannot be
//! decided and is denied by the caller.

use serde_json::{Map, Value};

use super::agent::Agent;

/// One pre-tool hook call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HookInput {
    pub session: String,
    pub cwd: String,
    /// The tool's name as the agent reports it (`Bash`, `mcp__fs__read`).
    pub tool: String,
    /// The tool's input; an object (anything else is wrapped as `{"input": …}`).
    pub input: Value,
    pub tool_use_id: String,
    /// Gemini CLI names an MCP call's server itself (`mcp_context`).
    pub mcp_server: Option<String>,
    /// Gemini CLI: the MCP tool's own name.
    pub mcp_tool: Option<String>,
    /// `hook_event_name`, when given (`PreToolUse`, `BeforeTool`).
    pub event: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the hook input is not JSON: {0}")]
    NotJson(String),
    #[error("the hook input is not a JSON object")]
    NotObject,
    #[error("the hook input names no tool (`{0}` missing or not text)")]
    NoTool(&'static str),
}

fn text(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn object(v: Value) -> Value {
    match v {
        Value::Object(_) => v,
        Value::Null => Value::Object(Map::new()),
        // Copilot CLI sends its tool's arguments as JSON text.
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(o @ Value::Object(_)) => o,
            _ => serde_json::json!({ "input": s }),
        },
        other => serde_json::json!({ "input": other }),
    }
}

impl HookInput {
    /// Claude Code's `PermissionRequest`: Claude Code is about to ask its
    /// user (interactive sessions only), not a pre-tool check.
    pub fn is_permission_request(&self) -> bool {
        self.event == PERMISSION_REQUEST
    }
}

/// The event name of Claude Code's permission-prompt hook.
pub const PERMISSION_REQUEST: &str = "PermissionRequest";

/// Reads one hook payload.
pub fn read(agent: Agent, bytes: &[u8]) -> Result<HookInput, PayloadError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    let Value::Object(mut obj) = v else { return Err(PayloadError::NotObject) };
    let (session_key, tool_key, input_key) = match agent {
        Agent::Copilot => ("sessionId", "toolName", "toolArgs"),
        _ => ("session_id", "tool_name", "tool_input"),
    };
    let tool = match obj.get(tool_key).and_then(Value::as_str) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => return Err(PayloadError::NoTool(tool_key)),
    };
    let input = object(obj.remove(input_key).unwrap_or(Value::Null));
    let mcp = obj.get("mcp_context").and_then(Value::as_object);
    let mcp_text = |k: &str| mcp.and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_owned);
    Ok(HookInput {
        session: text(&obj, session_key),
        cwd: text(&obj, "cwd"),
        tool,
        input,
        tool_use_id: text(&obj, "tool_use_id"),
        mcp_server: if agent == Agent::Gemini { mcp_text("server_name") } else { None },
        mcp_tool: if agent == Agent::Gemini { mcp_text("tool_name") } else { None },
        event: text(&obj, "hook_event_name"),
    })
}
