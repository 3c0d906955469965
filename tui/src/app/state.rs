//! What the console's state is made of: the [`App`] and its panes, modes,
//! history page and connection. Data only; what changes it is in the
//! sibling modules.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use latch_proto::{AuditFilter, AuditRow, DaemonMsg, PendingItem, Scope, StatusReport, ToolFinding};
use ratatui::crossterm::event::KeyEvent;
use serde_json::Value;

use crate::keymap::Context;

/// Audit rows per history page.
pub const PAGE: u32 = 100;
/// Live calls kept in memory (newest first).
pub const LIVE_KEEP: usize = 500;
/// A new approval takes focus only after this long without a key.
pub const QUIET_MS: i64 = 1_000;
/// After focus moved by itself, answer keys are held this long.
pub const ARM_MS: i64 = 500;
/// How long a message in the footer stays.
pub const TOAST_MS: i64 = 4_000;
/// Rows moved by PgUp/PgDn in lists.
pub const PAGE_STEP: usize = 10;

/// Everything the console reacts to.
#[derive(Debug)]
pub enum Input {
    Key(KeyEvent),
    Daemon(Box<DaemonMsg>),
    /// The connection to the daemon is up (handshake done).
    Connected,
    /// The connection is down; the driver retries at `retry_at` (Unix ms).
    Disconnected {
        error: String,
        retry_at: i64,
    },
    /// A timer asked for by [`App::next_wake`] fired.
    Tick,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Pending,
    Live,
    History,
    Health,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Pending, Pane::Live, Pane::History, Pane::Health];

    pub(super) fn context(self) -> Context {
        match self {
            Pane::Pending => Context::Pending,
            Pane::Live => Context::Live,
            Pane::History => Context::History,
            Pane::Health => Context::Health,
        }
    }
}

/// What a detail popup shows (a copy: it stays readable after the row
/// scrolls away or the approval is answered elsewhere).
#[derive(Clone, Debug, PartialEq)]
pub enum DetailItem {
    Pending(PendingItem),
    Row(AuditRow),
}

/// An answer waiting for "are you sure?".
#[derive(Clone, Debug, PartialEq)]
pub struct Confirm {
    pub item: PendingItem,
    pub approve: bool,
    pub scope: Scope,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    Help {
        scroll: u16,
    },
    Detail {
        item: DetailItem,
        scroll: u16,
    },
    Confirm(Confirm),
    /// Choosing how far an "always" approval reaches ([`super::always`]).
    Always(super::views::AlwaysPick),
    /// The policy's rules ([`super::rules`]).
    Rules(super::views::RulesView),
    Search {
        input: String,
    },
    /// Typing the approval PIN (shown masked).
    Pin {
        input: String,
    },
    /// Choosing the first approval PIN: typed, then typed again (`first`).
    NewPin {
        input: String,
        first: Option<String>,
    },
    /// The tool findings: the selected one's reasons and diff scrolled by
    /// `scroll`.
    Findings {
        sel: usize,
        scroll: u16,
    },
    /// Denying once: the reason the agent will read, typed (may be empty).
    DenyReason {
        item: PendingItem,
        input: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Conn {
    Connecting,
    Up { since: i64 },
    Down { error: String, retry_at: i64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    pub text: String,
    pub level: Level,
    pub until: i64,
}

/// The history time filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Window {
    #[default]
    All,
    Hour,
    Day,
    Week,
}

impl Window {
    pub(super) fn next(self) -> Window {
        match self {
            Window::All => Window::Hour,
            Window::Hour => Window::Day,
            Window::Day => Window::Week,
            Window::Week => Window::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Window::All => "all",
            Window::Hour => "1h",
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }

    pub(super) fn ms(self) -> Option<i64> {
        match self {
            Window::All => None,
            Window::Hour => Some(3_600_000),
            Window::Day => Some(86_400_000),
            Window::Week => Some(7 * 86_400_000),
        }
    }
}

pub const DECISIONS: [&str; 3] = ["allow", "ask", "deny"];
pub const CLASSES: [&str; 6] = ["READ", "WRITE", "SEND", "EXECUTE", "SUBMIT", "TRANSFER_VALUE"];

/// Where the selection lands when a requested page arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Land {
    First,
    Last,
}

/// The history pane: one page of the audit log and how to get the others.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub text: Option<String>,
    pub decision: Option<&'static str>,
    pub class: Option<&'static str>,
    pub server: Option<String>,
    pub window: Window,
    /// `before` of each page visited; `cursors[0]` is `None` (newest).
    pub(super) cursors: Vec<Option<i64>>,
    /// Index of the page shown.
    pub page: usize,
    pub rows: Vec<AuditRow>,
    pub sel: usize,
    /// The request in flight, if any.
    pub loading: Option<u64>,
    /// The page shown is the oldest one.
    pub at_end: bool,
    /// Calls that arrived since the newest page was loaded.
    pub new_rows: u32,
    /// Opened at least once (the first page is loaded lazily).
    pub opened: bool,
}

impl History {
    /// The filter sent to the daemon, with the time window measured from `now`.
    pub fn filter(&self, now: i64) -> AuditFilter {
        AuditFilter {
            text: self.text.clone(),
            server: self.server.clone(),
            tool: None,
            class: self.class.map(str::to_owned),
            decision: self.decision.map(str::to_owned),
            since: self.window.ms().map(|w| now - w),
            until: None,
        }
    }

    pub fn filtered(&self) -> bool {
        self.text.is_some()
            || self.decision.is_some()
            || self.class.is_some()
            || self.server.is_some()
            || self.window != Window::All
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Req {
    Pending,
    Status,
    Subscribe,
    Audit {
        page: usize,
        land: Land,
    },
    Answer,
    Unlock,
    AcceptPolicy,
    SetPin,
    Reveal,
    Findings,
    AcceptTool,
    Stop,
    Resume,
    Taints,
    Rules,
    DeleteRule,
    /// The calls of a tool asked lately, for the "always" picker.
    AlwaysAsked,
}

/// The whole console state.
#[derive(Debug)]
pub struct App {
    /// Who answers (recorded by the daemon with each answer).
    pub who: String,
    /// Offset of local time from UTC, seconds (0 in tests).
    pub tz_offset_s: i32,
    pub pane: Pane,
    pub mode: Mode,
    pub conn: Conn,
    pub pending: Vec<PendingItem>,
    pub pending_sel: Option<String>,
    /// Approvals answered from here whose reply has not arrived yet.
    pub answering: HashSet<String>,
    pub live: VecDeque<AuditRow>,
    /// Selected live row by audit id; `None` follows the newest.
    pub live_sel: Option<i64>,
    pub history: History,
    pub status: Option<StatusReport>,
    pub toast: Option<Toast>,
    /// Servers seen in status, live calls and history (for the filter).
    pub servers: BTreeSet<String>,
    pub(super) quit: bool,
    pub(super) next_req: u64,
    pub(super) inflight: HashMap<u64, Req>,
    pub(super) last_key_at: i64,
    /// A new approval waiting for an idle moment to take focus.
    pub(super) focus_wanted: Option<String>,
    /// Answer keys are held until this time (after an automatic focus move).
    pub(super) armed_at: i64,
    /// The PIN was accepted on this connection: approvals need no more.
    pub unlocked: bool,
    /// What to do once the PIN typed now is accepted.
    pub(super) after_unlock: Option<AfterUnlock>,
    /// The unredacted arguments of the approval whose detail is open, after
    /// `r` (never stored anywhere else).
    pub revealed: Option<Revealed>,
    /// Tools with findings, as the daemon last listed them.
    pub findings: Vec<ToolFinding>,
    /// Agent sessions with an untrusted or private read (the lethal
    /// trifecta), the latest first.
    pub taints: Vec<latch_proto::TaintReport>,
    /// `X` was pressed once at this time: a second press stops.
    pub(super) stop_armed: Option<i64>,
}

/// What waits for the PIN.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AfterUnlock {
    Answer {
        item: PendingItem,
        scope: Scope,
    },
    AcceptPolicy,
    /// A narrowed "always" ([`super::always`]).
    AnswerNarrow {
        item: PendingItem,
        offer: String,
    },
    /// `r` in a pending approval's detail: the detail opens again.
    Reveal {
        item: PendingItem,
    },
    /// `a` in the findings: accept the definition shown.
    AcceptTool {
        finding: ToolFinding,
    },
    /// `U`: resume after the kill switch.
    Resume,
}

/// One approval's unredacted arguments. Its `Debug` never shows them.
#[derive(Clone, PartialEq)]
pub struct Revealed {
    pub approval_id: String,
    pub args: Value,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Revealed({}, …)", self.approval_id)
    }
}

impl App {
    pub fn new(who: impl Into<String>, tz_offset_s: i32) -> App {
        App {
            who: who.into(),
            tz_offset_s,
            pane: Pane::Live,
            mode: Mode::Normal,
            conn: Conn::Connecting,
            pending: Vec::new(),
            pending_sel: None,
            answering: HashSet::new(),
            live: VecDeque::new(),
            live_sel: None,
            history: History { cursors: vec![None], ..History::default() },
            status: None,
            toast: None,
            servers: BTreeSet::new(),
            quit: false,
            next_req: 1,
            inflight: HashMap::new(),
            last_key_at: i64::MIN / 2,
            focus_wanted: None,
            armed_at: i64::MIN,
            unlocked: false,
            after_unlock: None,
            revealed: None,
            findings: Vec::new(),
            taints: Vec::new(),
            stop_armed: None,
        }
    }
}
