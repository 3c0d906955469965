//! The daemon's state behind one lock: policy, learned tool definitions,
//! connected shims, calls in flight and approvals. Everything here is
//! synchronous and quick; nothing awaits while holding the lock.

use std::collections::{BTreeMap, HashMap, HashSet};

use latch_core::approval::{Approvals, Pending};
use latch_core::{Policy, ToolDef};
use latch_proto::{ChannelState, ClientInfo, PendingItem, ShimInfo};
use serde_json::Value;
use tokio::sync::mpsc;

/// A connected shim.
pub struct Shim {
    pub info: ShimInfo,
    pub tx: mpsc::Sender<Vec<u8>>,
}

/// A decided call that has not finished yet.
pub struct Call {
    pub audit_id: i64,
    pub conn: u64,
}

/// A call held on an approval: whose shim holds it, until when.
pub struct Held {
    pub conn: u64,
    pub hold_until: i64,
}

pub struct Engine {
    pub policy: Policy,
    /// Evaluated beside `policy`, the stricter decision wins: the built-in
    /// defaults while the accepted policy is not verified ([`crate::accepted`]).
    pub floor: Option<Policy>,
    /// A loosening policy change waiting for the person.
    pub policy_pending: Option<latch_proto::PolicyPending>,
    /// Why the file on disk is not the policy in force, if it is not.
    pub policy_error: Option<String>,
    /// The version of the file last read.
    pub policy_stamp: Option<crate::policy_file::Stamp>,
    /// Tool definitions per server, as the shims relayed them.
    pub tools: HashMap<String, HashMap<String, ToolDef>>,
    pub shims: HashMap<u64, Shim>,
    pub consoles: u32,
    pub calls: HashMap<String, Call>,
    pub held: HashMap<String, Held>,
    pub approvals: Approvals,
    /// Approvals whose call row is not committed yet: nobody hears of them
    /// until they would survive a crash.
    pub unsaved: HashSet<String>,
    /// Approval channels beyond the socket and their health, by name.
    pub channels: BTreeMap<String, ChannelState>,
    /// The model judge's client and answer cache.
    pub judge: crate::judge::Judge,
    next_call: u64,
    salt: u64,
}

/// Longest time a held call waits when nothing says otherwise: under the
/// 60 s that clients on the TypeScript SDK (and Claude Desktop) wait.
pub const DEFAULT_HOLD_MS: u64 = 50_000;

/// Hold limits by `clientInfo.name`, kept under each client's own request
/// timeout. Claude Code resets its watchdog on progress, which the shim
/// sends while holding, so it can wait much longer.
pub const CLIENT_HOLDS: &[(&str, u64)] = &[
    ("claude-code", 600_000),
    ("claude-ai", 50_000),
    ("cursor-vscode", 50_000),
    ("Visual Studio Code", 50_000),
    ("codex-mcp-client", 50_000),
    ("gemini-cli-mcp-client", 50_000),
    ("mcp", 300_000),
    ("rmcp", 300_000),
];

impl Engine {
    pub fn new(policy: Policy, approvals: Approvals, salt: u64) -> Engine {
        Engine {
            policy,
            floor: None,
            policy_pending: None,
            policy_error: None,
            policy_stamp: None,
            tools: HashMap::new(),
            shims: HashMap::new(),
            consoles: 0,
            calls: HashMap::new(),
            held: HashMap::new(),
            approvals,
            unsaved: HashSet::new(),
            channels: BTreeMap::new(),
            judge: Default::default(),
            next_call: 0,
            salt,
        }
    }

    /// A pending approval as consoles see it.
    pub fn pending_item(p: &Pending) -> PendingItem {
        PendingItem {
            id: p.id.clone(),
            server: p.key.server.clone(),
            tool: p.key.tool.clone(),
            class: p.class.as_str().to_owned(),
            args: p.summary.get("args").cloned().unwrap_or(Value::Null),
            reasons: p.summary.get("reasons").and_then(|r| serde_json::from_value(r.clone()).ok()).unwrap_or_default(),
            created_at: p.created_at,
            hold_until: p.hold_until().unwrap_or(0),
            waiting: p.waiting() as u32,
        }
    }

    pub fn pending_items(&self) -> Vec<PendingItem> {
        self.approvals.pending().filter(|p| !self.unsaved.contains(&p.id)).map(Engine::pending_item).collect()
    }

    pub fn next_call_id(&mut self) -> String {
        self.next_call += 1;
        format!("c{:x}-{}", self.salt & 0xffff, self.next_call)
    }

    pub fn tool_def(&self, server: &str, tool: &str) -> Option<&ToolDef> {
        self.tools.get(server)?.get(tool)
    }

    /// How long a shim holds an `ask` call: `LATCH_HOLD_MS`, else the
    /// policy's `hold_seconds` for the server (or all servers), else the
    /// client table by `clientInfo.name`, else [`DEFAULT_HOLD_MS`].
    pub fn hold_ms(&self, env_override: Option<u64>, server: &str, client: Option<&ClientInfo>) -> u64 {
        if let Some(ms) = env_override {
            return ms;
        }
        if let Some(s) = self.policy.hold_seconds(server) {
            return s.saturating_mul(1000);
        }
        client
            .and_then(|c| CLIENT_HOLDS.iter().find(|(n, _)| *n == c.name))
            .map(|(_, ms)| *ms)
            .unwrap_or(DEFAULT_HOLD_MS)
    }

    pub fn session_of(&self, conn: u64) -> Option<String> {
        self.shims.get(&conn).map(|s| s.info.session.clone())
    }

    /// The shim connection holding a call, if it still does.
    pub fn conn_of(&self, call_id: &str) -> Option<u64> {
        self.held.get(call_id).map(|h| h.conn).or_else(|| self.calls.get(call_id).map(|c| c.conn))
    }
}
