//! Fixtures shared by the tests and the bench: a fixed clock, approvals,
//! audit rows, a status report, a synthetic audit log of any size, and a
//! small stand-in for the daemon's broadcast to several consoles.
#![allow(dead_code)]

use latch_proto::{
    AuditFilter, AuditRow, ChannelState, ClientInfo, ClientMsg, DaemonMsg, Event, PendingItem, ShimInfo, StatusReport,
};
use latch_tui::app::{App, Input};
use latch_tui::pages::PageSource;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

/// 2026-11-29 15:00:00 UTC: "now" in every test.
pub const NOW: i64 = 1_795_964_400_000;

pub fn key(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

pub fn code(c: KeyCode) -> Input {
    Input::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

pub fn pending(id: &str, server: &str, tool: &str, class: &str, hold_in_ms: i64) -> PendingItem {
    PendingItem {
        id: id.into(),
        server: server.into(),
        tool: tool.into(),
        class: class.into(),
        args: json!({ "path": "/home/me/project/deploy.sh", "token": "[REDACTED]", "dry_run": false }),
        reasons: vec![
            format!("tool name word '{}'", tool.split('_').next().unwrap_or(tool)),
            format!("class {class} defaults to ask"),
        ],
        created_at: NOW - 12_000,
        hold_until: NOW + hold_in_ms,
        waiting: 1,
    }
}

pub fn transfer(id: &str) -> PendingItem {
    let mut p = pending(id, "stripe", "create_refund", "TRANSFER_VALUE", 42_000);
    p.args = json!({ "charge": "ch_3Qx", "amount": 4200, "currency": "eur" });
    p.reasons = vec!["tool name word 'refund'".into(), "rule stripe-refunds: ask".into()];
    p
}

const SERVERS: [(&str, &str, &str, &str); 5] = [
    ("fs", "read_file", "READ", "allow"),
    ("github", "create_pull_request", "SUBMIT", "ask"),
    ("shell", "run_command", "EXECUTE", "ask"),
    ("stripe", "create_refund", "TRANSFER_VALUE", "deny"),
    ("slack", "send_message", "SEND", "allow"),
];

/// Audit row number `id` of a synthetic log whose newest row is `newest`,
/// one call per second up to `NOW`.
pub fn row(id: i64, newest: i64) -> AuditRow {
    let (server, tool, class, decision) = SERVERS[(id % 5) as usize];
    let done = id % 7 != 0;
    let mut r = AuditRow {
        id,
        time: NOW - (newest - id) * 1000,
        kind: "call".into(),
        server: server.into(),
        tool: tool.into(),
        class: class.into(),
        decision: decision.into(),
        reasons: vec![format!("tool name word '{}'", tool.split('_').next().unwrap_or(tool))],
        args: json!({ "path": format!("/home/me/project/src/file{id}.rs"), "limit": id % 100 }),
        args_hash: format!("{:064x}", id as u128 * 0x9e37_79b9_7f4a_7c15),
        outcome: done.then(|| if id % 13 == 0 { "is_error" } else { "ok" }.to_string()),
        latency_us: done.then_some(id % 997 * 137),
        approval_id: (decision == "ask").then(|| format!("ap-{id}")),
        answered_by: (decision == "ask" && done).then(|| "tui:alice".to_string()),
        rule: (id % 3 == 0).then(|| "no-secrets-out".to_string()),
        answer: (decision == "ask" && done).then(|| "allow".to_string()),
        waited_ms: (decision == "ask" && done).then_some(id % 61 * 1000),
        damaged: None,
    };
    // Every 50th row is not a call but another kind of log row.
    if id % 50 == 0 {
        r.kind = "answer".into();
        r.class = String::new();
        r.args = serde_json::Value::Null;
        (r.outcome, r.latency_us) = (None, None);
        r.answered_by = Some("tui:alice".into());
    }
    r
}

/// An audit log of `len` rows (ids 1..=len) that exists only as a formula:
/// any page is produced on demand, so a million rows cost nothing until
/// asked for. Filters are applied the way the daemon's SQL would.
pub struct SyntheticLog {
    pub len: i64,
    /// Rows produced so far (to show how little is ever read).
    pub produced: u64,
}

impl SyntheticLog {
    pub fn new(len: i64) -> SyntheticLog {
        SyntheticLog { len, produced: 0 }
    }
}

fn matches(r: &AuditRow, f: &AuditFilter) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    eq(&f.server, &r.server)
        && eq(&f.tool, &r.tool)
        && eq(&f.class, &r.class)
        && eq(&f.decision, &r.decision)
        && f.since.is_none_or(|s| r.time >= s)
        && f.until.is_none_or(|u| r.time < u)
        && f.text
            .as_deref()
            .is_none_or(|t| r.tool.contains(t) || r.server.contains(t) || r.args.to_string().contains(t))
}

impl PageSource for SyntheticLog {
    fn page(&mut self, limit: u32, before: Option<i64>, filter: &AuditFilter) -> Vec<AuditRow> {
        let mut out = Vec::with_capacity(limit as usize);
        let mut id = before.map_or(self.len, |b| (b - 1).min(self.len));
        while id >= 1 && out.len() < limit as usize {
            let r = row(id, self.len);
            self.produced += 1;
            if filter.since.is_some_and(|s| r.time < s) {
                break;
            }
            if matches(&r, filter) {
                out.push(r);
            }
            id -= 1;
        }
        out
    }
}

pub fn status() -> StatusReport {
    StatusReport {
        export: None,
        daemon_pid: 4242,
        version: "0.1.0".into(),
        socket: "/home/me/.local/share/latch/run/latch.sock".into(),
        database: "/home/me/.local/share/latch/audit.db".into(),
        policy: "/home/me/.config/latch/policy.toml".into(),
        policy_error: None,
        shims: vec![
            ShimInfo {
                server: "fs".into(),
                pid: 3101,
                session: "s-fs".into(),
                since: NOW - 3_600_000,
                client: Some(ClientInfo {
                    name: "claude-code".into(),
                    version: "2.1.0".into(),
                    protocol_version: "2025-11-25".into(),
                }),
            },
            ShimInfo { server: "github".into(), pid: 3102, session: "s-gh".into(), since: NOW - 600_000, client: None },
        ],
        consoles: 2,
        pending: 0,
        channels: vec![
            ChannelState { name: "desktop".into(), enabled: true, problem: None },
            ChannelState {
                name: "telegram".into(),
                enabled: true,
                problem: Some("the Bot API refused the bot token (401 Unauthorized)".into()),
            },
        ],
        findings: Vec::new(),
        pin_set: true,
        policy_pending: None,
        policy_note: None,
        stopped_since: None,
        managed: None,
    }
}

/// Feeds the replies a daemon would give to `msgs` (subscribe, pending
/// list, status, audit pages) back into `app`.
pub fn answer(
    app: &mut App,
    msgs: Vec<ClientMsg>,
    pending: &[PendingItem],
    log: &mut SyntheticLog,
    now: i64,
) -> Vec<ClientMsg> {
    let mut more = Vec::new();
    for m in &msgs {
        let reply = match m {
            ClientMsg::Subscribe { req } => DaemonMsg::Subscribed { req: *req },
            ClientMsg::ListPending { req } => DaemonMsg::Pending { req: *req, items: pending.to_vec() },
            ClientMsg::Status { req } => DaemonMsg::Status { req: *req, status: status() },
            ClientMsg::Audit { .. } => continue,
            _ => continue,
        };
        more.extend(app.handle(Input::Daemon(Box::new(reply)), now));
    }
    for reply in latch_tui::pages::serve(log, &msgs) {
        more.extend(app.handle(Input::Daemon(Box::new(reply)), now));
    }
    more
}

/// A console connected to a daemon that has `pending` waiting and `log`
/// in its audit store.
/// The daemon has a PIN set and this console gave it already (the PIN
/// prompt itself is tested from [`locked`]).
pub fn connected(pending: &[PendingItem], log: &mut SyntheticLog) -> App {
    let mut app = locked(pending, log);
    app.unlocked = true;
    app
}

/// [`connected`], before the PIN was typed.
pub fn locked(pending: &[PendingItem], log: &mut SyntheticLog) -> App {
    let mut app = App::new("alice", 0);
    let msgs = app.handle(Input::Connected, NOW - 60_000);
    let rest = answer(&mut app, msgs, pending, log, NOW - 60_000);
    assert!(rest.is_empty());
    app
}

pub fn event(e: Event) -> Input {
    Input::Daemon(Box::new(DaemonMsg::Event { event: e }))
}
