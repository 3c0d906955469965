//! Messages on the local socket. Every line is one JSON object whose only
//! key names the message: `{"decide": {"req": 1, …}}`. Requests that expect a reply carry a `req` number chosen by the
//! sender; the reply carries the same number.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

pub use crate::items::{AuditRow, PendingItem, RuleInfo, TaintReport};
pub use crate::status::{ChannelState, ExportStatus, ShimInfo, StatusReport};

/// Who is on the other end of a connection. Only consoles may answer
/// approvals; a shim or hook that tries is refused and recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `latch shim`: asks for decisions, reports outcomes.
    Shim,
    /// `latch tui` or another interactive console: may answer approvals.
    Console,
    /// One-shot commands (`latch status`, `latch approve` …). May answer
    /// approvals: they are typed by the user at a terminal.
    Cli,
    /// `latch hook AGENT`: one coding agent's built-in tool call, asked
    /// like a shim's. `Hello.name` is the agent (or the MCP server of a
    /// call no shim guards), `session` the agent's session id, `command`
    /// `[agent, cwd, tool_use_id]`. Never answers approvals.
    Hook,
}

impl Role {
    /// Shims and hooks speak for the agent: they may never answer for the
    /// person (approve, unlock, set the PIN, accept a policy, prune).
    pub fn speaks_for_agent(self) -> bool {
        matches!(self, Role::Shim | Role::Hook)
    }
}

/// The decision the daemon gives for one tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Ask,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

/// What became of a call after it was forwarded (or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The server answered with a result that is not an error.
    Ok,
    /// The server answered with a result carrying `isError: true`.
    IsError,
    /// The server answered with a JSON-RPC error.
    RpcError,
    /// The client cancelled the request.
    Cancelled,
    /// The server exited before answering.
    ServerDied,
    /// The shim answered itself (deny, hold limit, daemon gone).
    Blocked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::IsError => "is_error",
            Outcome::RpcError => "rpc_error",
            Outcome::Cancelled => "cancelled",
            Outcome::ServerDied => "server_died",
            Outcome::Blocked => "blocked",
        }
    }
}

/// How far an answer to an approval reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// This call only (a single-use grant for an identical retry).
    #[default]
    Once,
    /// Calls with these exact arguments, for the rest of this shim session.
    SessionArgs,
    /// Any call of this tool, for the rest of this shim session.
    SessionTool,
    /// Forever: a rule is written to the policy file.
    Always,
}

/// The MCP client behind a shim, from `initialize` or a request's `_meta`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub name: String,
    #[serde(default)]
    pub version: String,
    /// The MCP protocol version the client asked for.
    #[serde(default)]
    pub protocol_version: String,
}

/// A message to the daemon.
///
/// Externally tagged (`{"decide": {...}}`): `Decide` and `ToolsListed`
/// carry raw JSON, which serde cannot buffer through an internally tagged
/// enum.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMsg {
    /// First message on every connection.
    Hello {
        protocol: u32,
        role: Role,
        /// Shim: the server's name (`--name`). Console/CLI: a label.
        name: String,
        pid: u32,
        /// Shim: a session id of its own choosing, kept across reconnects,
        /// so session grants survive a daemon restart.
        #[serde(default)]
        session: String,
        /// Shim: the wrapped command line (the daemon redacts it).
        #[serde(default)]
        command: Vec<String>,
    },

    // ---- from shims ----
    /// Decide one `tools/call`. Answered by [`DaemonMsg::Decision`].
    Decide {
        req: u64,
        tool: String,
        /// The call's `arguments`. Parsed straight into a value: the daemon
        /// needs them as one (to classify, hash and redact), and a second
        /// pass over a large argument is what a raw value would cost.
        args: Value,
        /// True when the call is a retry carrying `inputResponses` /
        /// `requestState` (2026-07-28 form).
        #[serde(default)]
        retry: bool,
    },
    /// The client named itself (handshake or per-request `_meta`).
    Client { info: ClientInfo },
    /// A page of a `tools/list` result, as the server sent it.
    ToolsListed {
        tools: Box<RawValue>,
        /// True for the first page (no cursor in the request).
        first_page: bool,
    },
    /// A decided call has finished.
    Finished {
        call_id: String,
        outcome: Outcome,
        /// Time between forwarding the call and the server's answer.
        latency_us: u64,
    },
    /// The client cancelled a call that was held or forwarded.
    Cancelled { call_id: String },
    /// The shim stopped holding an `ask` call (its hold limit passed) and
    /// told the client the call awaits approval. Also sent when a
    /// `Resolved` arrives for a call the shim no longer holds, so a
    /// single-use grant is not spent on a call that never ran.
    HoldExpired { call_id: String },
    /// The person answered the question the shim asked inside the MCP
    /// client (elicitation) about call `call_id`, which this shim holds.
    /// Accepted only for a client the policy names in `[approvals]
    /// in_client`, for this call alone (scope once), and recorded as channel
    /// `in-client` with the client's name. Never answered: the call's
    /// `Resolved` says how it ended.
    InClientAnswer { call_id: String, approve: bool },
    /// A line the shim refused (unparseable or ambiguous envelope).
    Malformed {
        /// "client" or "server".
        from: String,
        reason: String,
        bytes: u64,
    },

    // ---- from consoles and the CLI ----
    /// List pending approvals. Answered by [`DaemonMsg::Pending`].
    ListPending { req: u64 },
    /// Answer a pending approval. Answered by [`DaemonMsg::Answered`].
    Answer {
        req: u64,
        approval_id: String,
        approve: bool,
        #[serde(default)]
        scope: Scope,
        #[serde(default)]
        reason: Option<String>,
        /// Ignored: who answered is what the daemon observes (the
        /// connection's role and the peer's login), never a client's claim.
        /// Kept so older clients' lines still parse.
        #[serde(default)]
        who: String,
        /// The approval PIN, when one is set and this connection is not
        /// unlocked (`Unlock`). An approval needs it; a deny does not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin: Option<Pin>,
    },
    /// A console proves the person once per session: every answer on this
    /// connection counts as the person's afterwards. Answered by
    /// [`DaemonMsg::Done`].
    Unlock { req: u64, pin: Pin },
    /// Set the approval PIN (`old` must be the current one when one is
    /// set). Answered by [`DaemonMsg::Done`].
    SetPin {
        req: u64,
        #[serde(default)]
        old: Option<Pin>,
        new: Pin,
    },
    /// Accept the policy change that waits because it loosens the policy
    /// (`latch policy accept`). Answered by [`DaemonMsg::Done`].
    PolicyAccept {
        req: u64,
        #[serde(default)]
        pin: Option<Pin>,
    },
    /// Daemon health. Answered by [`DaemonMsg::Status`].
    Status { req: u64 },
    /// Recent audit rows, newest first. Answered by [`DaemonMsg::AuditRows`].
    Audit {
        req: u64,
        limit: u32,
        /// Only rows with an id below this one (paging backwards).
        #[serde(default)]
        before: Option<i64>,
        #[serde(default)]
        filter: AuditFilter,
    },
    /// Receive [`DaemonMsg::Event`]s from now on.
    Subscribe { req: u64 },
    /// Remove the audit rows the policy's `[audit]` retention allows now
    /// (`latch audit prune`; consoles and the CLI only). Answered by
    /// [`DaemonMsg::AuditPruned`].
    AuditPrune { req: u64 },
    /// Ask for the unredacted arguments of one pending approval, to show
    /// on this console's screen only. Served only to a console connection
    /// unlocked with the PIN; anything else is refused and recorded.
    /// Answered by [`DaemonMsg::Revealed`].
    Reveal { req: u64, approval_id: String },

    // ---- from shims, added later ----
    /// The client's MCP roots, from its answer to the server's
    /// `roots/list` (`file://` URIs as sent); `None` when they became
    /// unknown (the client said they changed, or answered with an error).
    ClientRoots { roots: Option<Vec<String>> },

    // ---- from consoles and the CLI, added later ----
    /// The kill switch (`latch stop`): every call of every shim and hook is
    /// denied from now on, pending approvals are denied, until a person
    /// resumes. Tightens only, so no PIN. Answered by [`DaemonMsg::Done`].
    Stop { req: u64 },
    /// Lift the kill switch (`latch resume`): a loosening, so the PIN is
    /// needed when one is set. Answered by [`DaemonMsg::Done`].
    Resume {
        req: u64,
        #[serde(default)]
        pin: Option<Pin>,
    },

    // ---- from shims, added later (issue 18: poisoned results) ----
    /// What the shim does with a result that has findings: answered by
    /// [`DaemonMsg::ResultsMode`] (sent again after each policy reload).
    ResultsModeQuery {},
    /// A result of the shim's server had findings (injection, hidden text,
    /// a live-looking secret, or it could not be read whole). Recorded as
    /// an audit row tied to the call; with `hold`, also a pending approval,
    /// answered by [`DaemonMsg::ResultHeld`].
    ResultFound(ResultReport),
    /// The tools with findings (changed since pinned, suspect text,
    /// shadowing). Answered by [`DaemonMsg::ToolFindings`].
    ToolFindings { req: u64 },
    /// Accept definition `hash` of a tool with findings (`latch tools
    /// accept`): it becomes the pin and its findings stop applying. A
    /// loosening, so the PIN is needed when one is set. Answered by
    /// [`DaemonMsg::Done`].
    ToolAccept {
        req: u64,
        server: String,
        tool: String,
        hash: String,
        #[serde(default)]
        pin: Option<Pin>,
    },
    /// The lethal trifecta's state of each agent session (consoles).
    /// Answered by [`DaemonMsg::Taints`].
    Taints { req: u64 },
    /// Approve "always" with a narrower scope than the whole tool: `offer`
    /// is the id of one of the scopes `latch_core::policy::narrow` offers
    /// for the approval's (redacted) arguments; the daemon computes them
    /// again and writes the one with that id. Needs the PIN like any
    /// approval. Answered by [`DaemonMsg::Answered`].
    AnswerNarrow {
        req: u64,
        approval_id: String,
        offer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin: Option<Pin>,
    },
    /// The rules of the policy file. Answered by [`DaemonMsg::Rules`].
    ListRules { req: u64 },
    /// Remove rule `number` from the policy file, if it is still the rule
    /// whose header is on `line` (the file may have changed since it was
    /// listed). Consoles and the CLI only. Answered by [`DaemonMsg::Done`].
    DeleteRule { req: u64, number: u32, line: u32 },
    /// A call this shim allowed under its lease ([`crate::lease`]): the
    /// row to record (it rides along like an outcome report).
    LocalCall(crate::lease::LocalRow),
}

/// Findings in one result, as the shim reports them. Excerpts are redacted
/// by the shim (and again by the daemon): never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultReport {
    /// The decided call the result answers (`None` for `resources/read`).
    #[serde(default)]
    pub call_id: Option<String>,
    /// `tools/call` or `resources/read`.
    pub method: String,
    /// The tool, or the resource's URI (redacted by the daemon).
    pub subject: String,
    /// The client's request id, raw JSON.
    pub request_id: String,
    /// What the shim did: `record`, `mask`, `hold`, or `withheld`.
    pub handling: String,
    pub findings: Vec<ResultFinding>,
    /// The result's size in bytes.
    pub bytes: u64,
    /// With `hold`: the shim's key for the held result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

/// One finding in a result: what, where, why, and the text around it with
/// secrets masked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultFinding {
    pub kind: String,
    pub place: String,
    pub reason: String,
    pub excerpt: String,
}

/// A PIN or passphrase on its way to the daemon. Its `Debug` never shows
/// it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pin(pub String);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(…)")
    }
}

/// A policy change that waits for the person because it loosens the
/// policy in force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPending {
    /// How many of the changes loosen.
    pub loosen: u32,
    /// One line per change, loosening ones first (`- `/`+ ` marked).
    pub diff: Vec<String>,
    /// What the pending policy would have decided differently over the
    /// calls of the last days: one line per group, biggest first, then how
    /// many replay only approximately. Empty when nothing would change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replay: Vec<String>,
}

/// Narrows an audit query. Empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Substring of tool, server or (redacted) arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Unix ms, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Unix ms, exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// A message from the daemon. Externally tagged, like [`ClientMsg`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonMsg {
    /// Reply to `Hello`.
    Welcome {
        protocol: u32,
        daemon_pid: u32,
    },
    /// The daemon cannot serve this connection; it closes after this.
    Refused {
        reason: String,
    },
    /// Reply to `Decide`.
    Decision {
        req: u64,
        call_id: String,
        decision: Decision,
        class: String,
        /// One line a person can read: why.
        reason: String,
        /// For `ask`: the approval to wait for.
        #[serde(default)]
        approval_id: Option<String>,
        /// For `ask`: how long the shim holds the call before it answers
        /// the client that the call awaits approval.
        #[serde(default)]
        hold_ms: Option<u64>,
        /// For `ask`, when the policy names the shim's client in
        /// `[approvals] in_client`: the question (redacted) the shim may
        /// also ask the person inside the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ask_in_client: Option<String>,
    },
    /// A held call's approval was answered (or withdrawn).
    Resolved {
        call_id: String,
        approval_id: String,
        decision: Decision,
        reason: String,
    },
    /// Reply to `ListPending`.
    Pending {
        req: u64,
        items: Vec<PendingItem>,
    },
    /// Reply to `Answer`.
    Answered {
        req: u64,
        ok: bool,
        message: String,
    },
    /// Reply to `Status`.
    Status {
        req: u64,
        status: StatusReport,
    },
    /// Reply to `Audit`.
    AuditRows {
        req: u64,
        rows: Vec<AuditRow>,
    },
    /// Reply to `AuditPrune`: rows removed, and what was done in words.
    AuditPruned {
        req: u64,
        removed: u64,
        message: String,
    },
    /// Reply to `Subscribe`, then one `Event` per thing that happens.
    Subscribed {
        req: u64,
    },
    Event {
        event: Event,
    },
    /// Reply to `Unlock`, `SetPin` and `PolicyAccept`.
    Done {
        req: u64,
        ok: bool,
        message: String,
    },
    /// A request could not be served.
    Error {
        req: u64,
        message: String,
    },
    /// Reply to `Reveal`: the approval's arguments as the agent sent them
    /// (cut to the length shown), or why not. Never stored or forwarded.
    Revealed {
        req: u64,
        ok: bool,
        approval_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        args: Option<Value>,
        message: String,
    },
    /// To a shim: what to do with its server's results that have findings
    /// (`record`, `mask`, `hold`), after its `ResultsModeQuery` and after
    /// every policy reload.
    ResultsMode {
        mode: String,
    },
    /// To a shim: the answer to a `ResultFound` with `hold`. `ask`: the
    /// result waits for approval `approval_id`, whose `Resolved` comes for
    /// `hold_id` (like a held call's); `deny`: it is withheld now.
    ResultHeld {
        key: String,
        hold_id: String,
        decision: Decision,
        #[serde(default)]
        approval_id: Option<String>,
        reason: String,
        hold_ms: u64,
    },
    /// Reply to `ToolFindings`.
    ToolFindings {
        req: u64,
        items: Vec<crate::ToolFinding>,
        /// An approval PIN is set: accepting needs it.
        pin_set: bool,
    },
    /// Reply to `Taints`: sessions with an untrusted or private read, the
    /// latest used first.
    Taints {
        req: u64,
        sessions: Vec<TaintReport>,
    },
    /// Reply to `ListRules`; `error` when the file cannot be read or has
    /// mistakes (then `rules` is empty).
    Rules {
        req: u64,
        rules: Vec<RuleInfo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// To a shim: a new lease, or `None`: no call is decided in the shim.
    Lease(Option<Box<crate::lease::Lease>>),
    /// To a shim: its local rows up to `upto` are in the daemon's journal.
    LeaseAck {
        upto: u64,
    },
}

/// Something consoles may want to show as it happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Call {
        row: AuditRow,
    },
    Finished {
        audit_id: i64,
        outcome: String,
        latency_us: u64,
    },
    PendingAdded {
        item: PendingItem,
    },
    PendingRemoved {
        id: String,
        decision: String,
        by: String,
    },
    ShimConnected {
        shim: ShimInfo,
    },
    ShimDisconnected {
        server: String,
        session: String,
    },
    PolicyReloaded {
        error: Option<String>,
    },
    /// A loosening policy change now waits (or no longer does: `None`).
    PolicyPending {
        pending: Option<PolicyPending>,
    },
    /// An approval PIN was set or changed: approvals need it from now on.
    PinSet,
    /// The tools with findings changed (`ToolFindings` answers anew).
    FindingsChanged,
    /// An agent session read untrusted content or private data for the
    /// first time (the lethal trifecta).
    Taint {
        session: TaintReport,
    },
    /// The kill switch was turned on (`since`, Unix ms) or off (`None`).
    Stopped {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
    },
}
