//! The daemon's state behind one lock: policy, learned tool definitions,
//! connected shims, calls in flight and approvals. Everything here is
//! synchronous and quick; nothing awaits while holding the lock.

use std::collections::{BTreeMap, HashMap, HashSet};

use latch_core::approval::{Approvals, Pending};
use latch_core::{Policy, ToolDef};
use latch_proto::{ChannelState, ClientInfo, PendingItem, ShimInfo};
use serde_json::Value;

/// A connected shim.
pub struct Shim {
    pub info: ShimInfo,
    pub tx: crate::outbox::Outbox,
    /// The client's MCP roots as the shim last reported them (the
    /// workspace of this connection's calls); `None` when unknown.
    pub roots: Option<Vec<String>>,
    /// Where the peer runs (its working directory and environment), read
    /// once when it connected ([`crate::identity::place_of`]).
    pub place: std::sync::Arc<latch_core::path::PathEnv>,
}

/// The tools one shim connection listed.
#[derive(Default)]
pub struct Listed {
    pub server: String,
    pub defs: HashMap<String, ToolDef>,
}

/// A tool name described two different ways under one server name.
#[derive(Clone, Debug)]
pub struct Conflict {
    /// How many different descriptions were seen.
    pub descriptions: usize,
    /// Two or more connected shims still describe it differently (or one
    /// listing did): calls to it ask.
    pub live: bool,
}

/// What a `tools/list` page taught: definitions new to the server, ones
/// that changed, and names now described two ways.
#[derive(Debug, Default)]
pub struct Learned {
    pub seen: Vec<(String, String)>,
    pub changed: Vec<(String, String)>,
    pub conflicts: Vec<String>,
}

/// What is known of a whole `tools/list` page before its definitions are
/// learnt (computed off the runtime, in one pass).
#[derive(Debug, Default)]
pub struct Page {
    /// The first page: it replaces what the connection listed.
    pub first: bool,
    /// Names the page itself describes two different ways.
    pub doubled: HashSet<String>,
}

impl Page {
    pub fn of(defs: &[ToolDef], first: bool) -> Page {
        let mut hashes: HashMap<&str, &str> = HashMap::with_capacity(defs.len());
        let mut doubled = HashSet::new();
        for d in defs {
            match hashes.insert(&d.name, &d.hash) {
                Some(h) if h != d.hash => {
                    doubled.insert(d.name.clone());
                }
                _ => {}
            }
        }
        Page { first, doubled }
    }
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
    /// The managed policy layered above the user's (issue 20).
    pub managed: crate::managed::State,
    /// The version of the managed file last read.
    pub managed_stamp: Option<crate::managed::Stamp>,
    /// What status says of the managed layer in force (set once it is).
    pub managed_note: Option<String>,
    /// Tool definitions per shim connection, as that shim relayed them: a
    /// second server started under the same name cannot re-describe the
    /// first one's tools.
    pub tools: HashMap<u64, Listed>,
    /// Tools that two connections (or one listing) of one server name
    /// describe differently, by (server, tool).
    pub conflicts: BTreeMap<(String, String), Conflict>,
    pub shims: HashMap<u64, Shim>,
    /// Which of `shims` are `latch hook` connections, with their calls'
    /// audit detail (see `hook.rs`).
    pub hooks: HashMap<u64, String>,
    /// The hook connections that answer an agent's own permission prompt
    /// (Claude Code's `PermissionRequest`; see `hook.rs`), with the tool
    /// they asked about once they asked.
    pub prompts: HashMap<u64, String>,
    pub consoles: u32,
    pub calls: HashMap<String, Call>,
    pub held: HashMap<String, Held>,
    pub approvals: Approvals,
    /// Approvals whose call row is not committed yet: nobody hears of them
    /// until they would survive a crash.
    pub unsaved: HashSet<String>,
    /// The unredacted arguments of pending approvals, in memory only
    /// ([`crate::reveal`]).
    pub reveal: crate::reveal::Kept,
    /// Approval channels beyond the socket and their health, by name.
    pub channels: BTreeMap<String, ChannelState>,
    /// The OpenTelemetry export's state (`crate::export`), for status.
    pub export: Option<latch_proto::msg::ExportStatus>,
    /// The model judge's client and answer cache.
    pub judge: crate::judge::Judge,
    /// Tool definitions a person approved a `no_evidence` call of.
    pub known: crate::known::Known,
    /// The kill switch is on since this time (Unix ms): every call is
    /// denied ([`crate::stop`]).
    pub stopped: Option<i64>,
    /// Rate limits and money budgets, in memory only ([`crate::threats`]).
    pub threats: crate::threats::Counters,
    /// Each configured server's pinned tools ([`crate::pins`]).
    pub pins: crate::pins::Pins,
    /// The lethal trifecta per agent session, in memory only ([`crate::taint`]).
    pub taint: crate::taint::Sessions,
    /// The narrower rule an "always" answer chose, by approval id, from
    /// the answer until the driver writes it.
    pub narrow: HashMap<String, crate::placed::Placed>,
    /// The shims' leases ([`crate::lease`]).
    pub lease: crate::lease::state::State,
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
            managed: crate::managed::State::Absent,
            managed_stamp: None,
            managed_note: None,
            tools: HashMap::new(),
            conflicts: BTreeMap::new(),
            shims: HashMap::new(),
            hooks: HashMap::new(),
            prompts: HashMap::new(),
            consoles: 0,
            calls: HashMap::new(),
            held: HashMap::new(),
            approvals,
            unsaved: HashSet::new(),
            reveal: Default::default(),
            channels: BTreeMap::new(),
            export: None,
            judge: Default::default(),
            known: Default::default(),
            stopped: None,
            threats: Default::default(),
            pins: Default::default(),
            taint: Default::default(),
            narrow: HashMap::new(),
            lease: Default::default(),
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

    /// The definition of `tool` as the shim on `conn` listed it.
    pub fn tool_def(&self, conn: u64, tool: &str) -> Option<&ToolDef> {
        self.tools.get(&conn)?.defs.get(tool)
    }

    /// What the daemon knows of a call of `tool` on `conn` beyond it: its
    /// definition (as that shim listed it) is one a person approved a
    /// `no_evidence` call of.
    pub fn facts(&self, conn: u64, server: &str, tool: &str) -> latch_core::policy::Facts {
        let known = self.tool_def(conn, tool).is_some_and(|d| self.known.contains(server, tool, &d.hash));
        latch_core::policy::Facts { known_definition: known }
    }

    /// Starts learning a `tools/list` page relayed by the shim on `conn`
    /// for `server`. A first page replaces what the connection listed: the
    /// old definitions are taken out whole (returned, to be dropped outside
    /// the lock, and read as the connection's previous ones while the page
    /// is learnt). Then [`Engine::learn_tools`] takes the page's
    /// definitions, in as many pieces as the caller likes.
    pub fn begin_page(&mut self, conn: u64, server: &str, page: &Page) -> HashMap<String, ToolDef> {
        let listed = self.tools.entry(conn).or_default();
        listed.server = server.to_owned();
        if page.first { std::mem::take(&mut listed.defs) } else { HashMap::new() }
    }

    /// Learns definitions of a page begun with [`Engine::begin_page`]. A
    /// definition is new to the server when no connection of that name had
    /// the tool, changed when this connection had it otherwise or another
    /// one describes it otherwise; a name that a listing or two connections
    /// describe differently is a conflict. Linear in `defs`.
    pub fn learn_tools(
        &mut self,
        conn: u64,
        server: &str,
        defs: Vec<ToolDef>,
        page: &Page,
        previous: &HashMap<String, ToolDef>,
    ) -> Learned {
        let mut learned = Learned::default();
        let doubled = &page.doubled;
        let mut touched = Vec::new();
        for d in defs {
            let own = self
                .tools
                .get(&conn)
                .and_then(|l| l.defs.get(&d.name))
                .or_else(|| previous.get(&d.name))
                .map(|o| o.hash.clone());
            let others: Vec<&str> = self
                .tools
                .iter()
                .filter(|(c, l)| **c != conn && l.server == server)
                .filter_map(|(_, l)| l.defs.get(&d.name).map(|o| o.hash.as_str()))
                .collect();
            match own {
                Some(h) if h != d.hash => learned.changed.push((d.name.clone(), d.hash.clone())),
                Some(_) => {}
                None if others.iter().any(|h| *h != d.hash) => learned.changed.push((d.name.clone(), d.hash.clone())),
                None if others.is_empty() => learned.seen.push((d.name.clone(), d.hash.clone())),
                None => {}
            }
            touched.push(d.name.clone());
            self.tools.entry(conn).or_default().defs.insert(d.name.clone(), d);
        }
        for tool in touched {
            let doubled_here = doubled.contains(tool.as_str());
            let n = self.descriptions(server, &tool) + usize::from(doubled_here);
            let key = (server.to_owned(), tool.clone());
            if n > 1 {
                let c = self.conflicts.entry(key).or_insert_with(|| {
                    learned.conflicts.push(tool.clone());
                    Conflict { descriptions: 0, live: true }
                });
                if !c.live {
                    learned.conflicts.push(tool.clone());
                }
                c.descriptions = c.descriptions.max(n);
                c.live = true;
            } else if let Some(c) = self.conflicts.get_mut(&key) {
                c.live = false;
            }
        }
        learned
    }

    /// How many different definitions of `tool` the connections of
    /// `server` hold.
    fn descriptions(&self, server: &str, tool: &str) -> usize {
        let mut hashes: Vec<&str> = self
            .tools
            .values()
            .filter(|l| l.server == server)
            .filter_map(|l| l.defs.get(tool).map(|d| d.hash.as_str()))
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        hashes.len()
    }

    /// Forgets what a disconnected shim listed; a conflict whose other
    /// side is gone is no longer live (it stays listed as a finding).
    pub fn forget_tools(&mut self, conn: u64) {
        let Some(listed) = self.tools.remove(&conn) else { return };
        let keys: Vec<(String, String)> = self.conflicts.keys().filter(|(s, _)| *s == listed.server).cloned().collect();
        for (server, tool) in keys {
            let live = self.descriptions(&server, &tool) > 1;
            if let Some(c) = self.conflicts.get_mut(&(server, tool)) {
                c.live = live;
            }
        }
    }

    /// True while `tool` of `server` is described two ways: its calls ask.
    pub fn conflicted(&self, server: &str, tool: &str) -> bool {
        self.conflicts.get(&(server.to_owned(), tool.to_owned())).is_some_and(|c| c.live)
    }

    /// What a person should know about, in words that say what to do.
    pub fn findings(&self) -> Vec<String> {
        self.conflicts
            .iter()
            .map(|((server, tool), c)| {
                let state = if c.live { "its calls ask until only one description is left" } else { "no longer live" };
                format!(
                    "server name {server:?}: tool {tool:?} was described {} different ways (two servers under one \
                     name, or a server that lists it twice); {state}. Check which servers run as {server:?}",
                    c.descriptions
                )
            })
            .collect()
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
