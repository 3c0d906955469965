//! What the test server says about itself: its info, capabilities,
//! instructions and the definitions of its tools (one per action class).

use serde_json::{Value, json};

use super::{BIG_MAX_BYTES, SERVER_NAME, SLOW_MAX_MS};

pub(crate) fn server_info() -> Value {
    json!({"name": SERVER_NAME, "title": "Latch test server", "version": env!("CARGO_PKG_VERSION")})
}

pub(crate) fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

pub(crate) const INSTRUCTIONS: &str = "A test server for Latch: one tool per action class \
(read, write, send, execute, submit, transfer value) plus tools that echo, \
answer big or slow, fail, crash, or ask the client for its roots.";

/// The tools, in the order `tools/list` returns them.
pub(crate) fn tool_definitions() -> Vec<Value> {
    vec![
        json!({
            "name": "read_file",
            "title": "Read file",
            "description": "Read the complete contents of a text file from disk and return them.",
            "inputSchema": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Path of the file to read"}},
                "required": ["path"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }),
        json!({
            "name": "write_file",
            "title": "Write file",
            "description": "Create a file or overwrite an existing file with the given text content.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path of the file to write"},
                    "content": {"type": "string", "description": "Text to write into the file"}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false}
        }),
        json!({
            "name": "send_email",
            "title": "Send email",
            "description": "Send an email message to one or more recipients.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "to": {"type": "string", "description": "Recipient email address"},
                    "cc": {"type": "array", "items": {"type": "string"}, "description": "Addresses to copy"},
                    "subject": {"type": "string", "description": "Subject line"},
                    "body": {"type": "string", "description": "Plain-text body of the message"}
                },
                "required": ["to", "subject", "body"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true}
        }),
        json!({
            "name": "run_command",
            "title": "Run shell command",
            "description": "Execute a shell command on the host and return its output and exit status.",
            "inputSchema": {
                "type": "object",
                "properties": {"command": {"type": "string", "description": "The shell command line to execute"}},
                "required": ["command"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true}
        }),
        json!({
            "name": "create_pull_request",
            "title": "Create pull request",
            "description": "Open a pull request on a hosted git repository, proposing to merge the head branch into the base branch.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "repo": {"type": "string", "description": "Repository as owner/name"},
                    "title": {"type": "string", "description": "Title of the pull request"},
                    "head": {"type": "string", "description": "Branch with the changes"},
                    "base": {"type": "string", "description": "Branch to merge into"}
                },
                "required": ["repo", "title", "head", "base"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true}
        }),
        json!({
            "name": "create_payment",
            "title": "Create payment",
            "description": "Transfer money: create a payment of the given amount to a recipient and charge the account.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "amount": {"type": "number", "description": "Amount to pay, in the currency's main unit"},
                    "currency": {"type": "string", "description": "ISO 4217 currency code, e.g. EUR"},
                    "recipient": {"type": "string", "description": "Account or address that receives the money"}
                },
                "required": ["amount", "currency", "recipient"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true}
        }),
        json!({
            "name": "echo",
            "title": "Echo",
            "description": "Return the arguments it was given, as JSON text. Reads nothing and changes nothing.",
            "inputSchema": {"type": "object", "additionalProperties": true},
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }),
        json!({
            "name": "big",
            "title": "Big answer",
            "description": "Return a generated text of exactly the requested number of bytes. Reads nothing and changes nothing.",
            "inputSchema": {
                "type": "object",
                "properties": {"bytes": {"type": "integer", "minimum": 0, "maximum": BIG_MAX_BYTES, "description": "Size of the text in bytes"}},
                "required": ["bytes"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }),
        json!({
            "name": "slow",
            "title": "Slow answer",
            "description": "Wait the given number of milliseconds, reporting progress, then return. Reads nothing and changes nothing.",
            "inputSchema": {
                "type": "object",
                "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": SLOW_MAX_MS, "description": "How long to wait, in milliseconds"}},
                "required": ["ms"],
                "additionalProperties": false
            },
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }),
        json!({
            "name": "fail",
            "title": "Fail",
            "description": "Return a tool error result. Reads nothing and changes nothing.",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }),
        json!({
            "name": "crash",
            "title": "Crash",
            "description": "Make the server process exit at once without answering. Reads nothing and changes nothing.",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }),
        json!({
            "name": "ask_roots",
            "title": "Ask roots",
            "description": "Get the client's list of roots (roots/list) and return it as JSON text.",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }),
    ]
}
