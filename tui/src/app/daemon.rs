//! The daemon's side: the connection coming and going, its replies and
//! events, and the pending list they keep.

use std::collections::HashSet;

use latch_proto::{ClientMsg, DaemonMsg, Event, PendingItem};

use super::state::{ARM_MS, App, Conn, LIVE_KEEP, Land, Level, Mode, Pane, QUIET_MS, Req};

impl App {
    // ---- connection ----

    pub(super) fn on_connected(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        let was_down = matches!(self.conn, Conn::Down { .. });
        self.conn = Conn::Up { since: now };
        self.inflight.clear();
        self.answering.clear();
        // A new connection is a new session: the PIN is asked again.
        self.unlocked = false;
        // Subscribe first: the pending list that follows is then complete,
        // and every change after it arrives as an event.
        let r = self.req(Req::Subscribe);
        out.push(ClientMsg::Subscribe { req: r });
        let r = self.req(Req::Pending);
        out.push(ClientMsg::ListPending { req: r });
        let r = self.req(Req::Status);
        out.push(ClientMsg::Status { req: r });
        self.request_findings(out);
        let r = self.req(Req::Taints);
        out.push(ClientMsg::Taints { req: r });
        if self.history.opened {
            self.history.loading = None;
            out.extend(self.load_page(0, Land::First, now));
        }
        if was_down {
            self.say(Level::Info, "reconnected to the daemon", now);
        }
    }

    pub(super) fn on_disconnected(&mut self, error: String, retry_at: i64) {
        self.conn = Conn::Down { error, retry_at };
        self.inflight.clear();
        self.answering.clear();
        self.history.loading = None;
        self.unlocked = false;
        self.after_unlock = None;
        if matches!(
            self.mode,
            Mode::Confirm(_) | Mode::Always(_) | Mode::Rules(_) | Mode::Pin { .. } | Mode::NewPin { .. }
        ) {
            self.mode = Mode::Normal;
        }
    }

    // ---- daemon messages ----

    pub(super) fn daemon(&mut self, msg: DaemonMsg, now: i64, out: &mut Vec<ClientMsg>) {
        match msg {
            DaemonMsg::Pending { req, items } => {
                if let Some(Req::Pending) = self.inflight.remove(&req) {
                    self.set_pending(items);
                }
            }
            DaemonMsg::Status { req, status } => {
                self.inflight.remove(&req);
                for s in &status.shims {
                    self.servers.insert(s.server.clone());
                }
                // Without a PIN, the warning line over every pane offers one (`p`).
                self.status = Some(status);
            }
            DaemonMsg::AuditRows { req, rows } => match self.inflight.remove(&req) {
                Some(Req::Audit { page, land }) if self.history.loading == Some(req) => {
                    self.history.loading = None;
                    self.page_arrived(page, land, rows, now);
                }
                Some(Req::AlwaysAsked) => self.always_asked(req, &rows),
                _ => {}
            },
            DaemonMsg::Answered { req, ok, message } => {
                self.inflight.remove(&req);
                // The reply does not name the approval: the one we answered
                // leaves `answering` when it leaves the list (PendingRemoved);
                // on failure, every answer in flight is released.
                if !ok {
                    self.answering.clear();
                    self.say(Level::Error, format!("answer refused: {message}"), now);
                }
            }
            DaemonMsg::Subscribed { req } => {
                self.inflight.remove(&req);
            }
            DaemonMsg::Event { event } => self.event(event, now, out),
            DaemonMsg::Error { req, message } => {
                if let Some(Req::Audit { .. }) = self.inflight.remove(&req)
                    && self.history.loading == Some(req)
                {
                    self.history.loading = None;
                }
                self.say(Level::Error, format!("daemon: {message}"), now);
            }
            DaemonMsg::Refused { reason } => {
                self.say(Level::Error, format!("daemon refused the console: {reason}"), now);
            }
            DaemonMsg::Done { req, ok, message } => match self.inflight.remove(&req) {
                Some(Req::DeleteRule) => self.rule_deleted(ok, message, now, out),
                kind => self.done(kind, ok, message, now, out),
            },
            DaemonMsg::Rules { req, rules, error } => {
                if let Some(Req::Rules) = self.inflight.remove(&req) {
                    self.rules_listed(rules, error);
                }
            }
            DaemonMsg::Revealed { req, ok, approval_id, args, message } => {
                if let Some(Req::Reveal) = self.inflight.remove(&req) {
                    self.revealed_reply(ok, approval_id, args, message, now);
                }
            }
            DaemonMsg::Taints { req, sessions } => {
                self.inflight.remove(&req);
                self.taints = sessions;
            }
            DaemonMsg::Welcome { .. }
            | DaemonMsg::Decision { .. }
            | DaemonMsg::Resolved { .. }
            | DaemonMsg::AuditPruned { .. }
            | DaemonMsg::ResultsMode { .. }
            | DaemonMsg::ResultHeld { .. }
            | DaemonMsg::Lease(_)
            | DaemonMsg::LeaseAck { .. } => {}
            DaemonMsg::ToolFindings { req, items, .. } => {
                if let Some(Req::Findings) = self.inflight.remove(&req) {
                    self.findings_arrived(items);
                }
            }
        }
    }

    /// A person answered approval `id`: the calls that waited on it end
    /// with the answer, who gave it and the wait.
    fn conclude(&mut self, id: &str, decision: &str, by: &str, now: i64) {
        if decision != "allow" && decision != "deny" {
            return;
        }
        let rows = self.live.iter_mut().chain(self.history.rows.iter_mut());
        for r in rows.filter(|r| r.kind == "call" && r.decision == "ask" && r.answer.is_none()) {
            if r.approval_id.as_deref() == Some(id) {
                r.answer = Some(decision.to_owned());
                r.answered_by = Some(by.to_owned());
                r.waited_ms = Some((now - r.time).max(0));
            }
        }
    }

    pub(super) fn event(&mut self, event: Event, now: i64, out: &mut Vec<ClientMsg>) {
        match event {
            Event::Call { row } => {
                self.servers.insert(row.server.clone());
                if self.history.page == 0 && self.history.opened {
                    self.history.new_rows += 1;
                }
                self.live.push_front(row);
                if self.live.len() > LIVE_KEEP {
                    let gone = self.live.pop_back();
                    if gone.is_some_and(|g| Some(g.id) == self.live_sel) {
                        self.live_sel = self.live.back().map(|r| r.id);
                    }
                }
            }
            Event::Finished { audit_id, outcome, latency_us } => {
                let rows = self.live.iter_mut().chain(self.history.rows.iter_mut());
                for r in rows.filter(|r| r.id == audit_id) {
                    r.outcome = Some(outcome.clone());
                    r.latency_us = Some(latency_us as i64);
                }
            }
            Event::PendingAdded { item } => self.add_pending(item),
            Event::PendingRemoved { id, decision, by } => {
                self.conclude(&id, &decision, &by, now);
                let Some(pos) = self.pending.iter().position(|p| p.id == id) else {
                    return;
                };
                let item = self.pending.remove(pos);
                let ours = self.answering.remove(&id);
                if self.pending_sel.as_deref() == Some(id.as_str()) {
                    let next = pos.min(self.pending.len().saturating_sub(1));
                    self.pending_sel = self.pending.get(next).map(|p| p.id.clone());
                }
                if self.focus_wanted.as_deref() == Some(id.as_str()) {
                    self.focus_wanted = None;
                }
                let verb = match decision.as_str() {
                    "allow" => "approved",
                    "deny" => "denied",
                    _ => "withdrawn",
                };
                let who = match decision.as_str() {
                    "allow" | "deny" if !by.is_empty() => format!(" by {}", crate::ui::who_words(&by)),
                    _ if !by.is_empty() => format!(": {by}"),
                    _ => String::new(),
                };
                let text = format!("{}/{}: {verb}{who}", item.server, item.tool);
                if let Mode::Confirm(c) = &self.mode
                    && c.item.id == id
                {
                    self.mode = Mode::Normal;
                    self.say(Level::Warn, format!("answered elsewhere — {text}"), now);
                    return;
                }
                let level = if ours { Level::Info } else { Level::Warn };
                self.say(level, text, now);
            }
            Event::ShimConnected { shim } => {
                self.servers.insert(shim.server.clone());
                if let Some(st) = &mut self.status {
                    st.shims.retain(|s| s.session != shim.session || s.server != shim.server);
                    st.shims.push(shim);
                }
            }
            Event::ShimDisconnected { server, session } => {
                if let Some(st) = &mut self.status {
                    st.shims.retain(|s| s.session != session || s.server != server);
                }
            }
            Event::PolicyReloaded { error } => {
                match &error {
                    None => self.say(Level::Info, "policy reloaded", now),
                    Some(e) => self.say(Level::Error, format!("policy not reloaded: {e}"), now),
                }
                if let Some(st) = &mut self.status {
                    st.policy_error = error;
                }
            }
            Event::FindingsChanged => self.request_findings(out),
            Event::PinSet => {
                if let Some(st) = &mut self.status {
                    st.pin_set = true;
                }
            }
            Event::Taint { session } => self.taint_changed(session, now),
            Event::Stopped { since } => self.stopped_changed(since, now),
            Event::PolicyPending { pending } => {
                if let Some(p) = &pending {
                    self.say(Level::Warn, format!("policy change pending: {} rules loosen", p.loosen), now);
                }
                if let Some(st) = &mut self.status {
                    st.policy_pending = pending;
                }
            }
        }
    }

    pub(super) fn set_pending(&mut self, items: Vec<PendingItem>) {
        let known: HashSet<String> = self.pending.iter().map(|p| p.id.clone()).collect();
        self.pending.clear();
        for item in items {
            let new = !known.contains(&item.id);
            let id = item.id.clone();
            self.insert_pending(item);
            if new {
                self.want_focus(id);
            }
        }
        if self.selected_pending().is_none() && self.pending_sel.is_some() {
            self.pending_sel = self.pending.first().map(|p| p.id.clone());
        }
    }

    pub(super) fn add_pending(&mut self, item: PendingItem) {
        let id = item.id.clone();
        let new = !self.pending.iter().any(|p| p.id == id);
        self.pending.retain(|p| p.id != id);
        self.insert_pending(item);
        if new {
            self.want_focus(id);
        }
    }

    /// Keeps the list ordered by hold limit (the most urgent first); ties
    /// keep arrival order.
    pub(super) fn insert_pending(&mut self, item: PendingItem) {
        self.servers.insert(item.server.clone());
        let at = self.pending.partition_point(|p| p.hold_until <= item.hold_until);
        self.pending.insert(at, item);
    }

    pub(super) fn want_focus(&mut self, id: String) {
        // Looking at another approval already: leave the selection alone.
        if self.pane == Pane::Pending && self.selected_pending().is_some() {
            return;
        }
        if self.focus_wanted.is_none() {
            self.focus_wanted = Some(id);
        }
    }

    pub(super) fn maybe_take_focus(&mut self, now: i64) {
        let Some(id) = self.focus_wanted.clone() else {
            return;
        };
        if !self.pending.iter().any(|p| p.id == id) {
            self.focus_wanted = None;
            return;
        }
        if self.pane == Pane::Pending && self.selected_pending().is_some() {
            self.focus_wanted = None;
            return;
        }
        if self.mode != Mode::Normal || now - self.last_key_at < QUIET_MS {
            return;
        }
        self.focus_wanted = None;
        self.pane = Pane::Pending;
        self.pending_sel = Some(id);
        self.armed_at = now + ARM_MS;
    }
}
