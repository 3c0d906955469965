//! The person's side: keys, moving between panes and rows, filters and
//! answers.

use latch_proto::{ClientMsg, PendingItem, Scope};

use super::state::{
    AfterUnlock, App, CLASSES, Confirm, DECISIONS, DetailItem, Level, Mode, PAGE_STEP, Pane, Req, Window,
};
use crate::keymap::{self, Action, Key};

impl App {
    // ---- keys ----

    pub(super) fn key(&mut self, key: Key, now: i64, out: &mut Vec<ClientMsg>) {
        let chain = self.key_chain();
        let action = keymap::lookup(&chain, key);
        if matches!(self.mode, Mode::Pin { .. } | Mode::NewPin { .. }) {
            self.pin_key(key, action, now, out);
            return;
        }
        if let Mode::Search { input } = &mut self.mode {
            match action {
                Some(Action::Confirm) => {
                    let text = input.trim().to_owned();
                    self.history.text = (!text.is_empty()).then_some(text);
                    self.mode = Mode::Normal;
                    self.history_reset(now, out);
                }
                Some(Action::Cancel) => self.mode = Mode::Normal,
                _ => match key.code {
                    ratatui::crossterm::event::KeyCode::Char(c) if !key.ctrl => input.push(c),
                    ratatui::crossterm::event::KeyCode::Backspace => {
                        input.pop();
                    }
                    _ => {}
                },
            }
            return;
        }
        if let Mode::DenyReason { item, input } = &mut self.mode {
            match action {
                Some(Action::Confirm) => {
                    let (item, reason) = (item.clone(), input.trim().to_owned());
                    self.mode = Mode::Normal;
                    let reason = (!reason.is_empty()).then_some(reason);
                    out.extend(self.send_answer_because(&item, false, Scope::Once, reason, now));
                }
                Some(Action::Cancel) => {
                    self.mode = Mode::Normal;
                    self.say(Level::Info, "not denied: nothing was sent", now);
                }
                _ => match key.code {
                    ratatui::crossterm::event::KeyCode::Char(c) if !key.ctrl && input.chars().count() < 500 => {
                        input.push(c)
                    }
                    ratatui::crossterm::event::KeyCode::Backspace => {
                        input.pop();
                    }
                    _ => {}
                },
            }
            return;
        }
        let Some(action) = action else { return };
        if matches!(self.mode, Mode::Findings { .. }) {
            self.findings_key(action, now, out);
            return;
        }
        match &mut self.mode {
            Mode::Help { scroll } => {
                match action {
                    Action::Up => *scroll = scroll.saturating_sub(1),
                    Action::Down => *scroll = scroll.saturating_add(1),
                    _ => self.mode = Mode::Normal,
                }
                return;
            }
            Mode::Always(_) => return self.always_key(action, now, out),
            Mode::Rules(_) => return self.rules_key(action, now, out),
            Mode::Confirm(c) => {
                let c = c.clone();
                self.mode = Mode::Normal;
                if action == Action::Confirm {
                    out.extend(self.send_answer(&c.item, c.approve, c.scope, now));
                }
                return;
            }
            Mode::Detail { item, scroll } => {
                match action {
                    Action::Up => *scroll = scroll.saturating_sub(1),
                    Action::Down => *scroll = scroll.saturating_add(1),
                    Action::PageUp => *scroll = scroll.saturating_sub(PAGE_STEP as u16),
                    Action::PageDown => *scroll = scroll.saturating_add(PAGE_STEP as u16),
                    Action::Top => *scroll = 0,
                    Action::Back => self.mode = Mode::Normal,
                    Action::Reveal => match item {
                        DetailItem::Pending(p) => {
                            let p = p.clone();
                            self.toggle_reveal(p, now, out);
                        }
                        DetailItem::Row(_) => {
                            self.say(Level::Info, "only a pending approval's arguments can be revealed", now)
                        }
                    },
                    a if a.is_answer() => {
                        if let DetailItem::Pending(p) = item {
                            let id = p.id.clone();
                            if !self.pending.iter().any(|p| p.id == id) {
                                self.say(Level::Warn, "that approval is no longer pending", now);
                                return;
                            }
                            self.mode = Mode::Normal;
                            self.pending_sel = Some(id);
                            self.answer(a, now, out);
                        }
                    }
                    _ => {}
                }
                return;
            }
            Mode::Search { .. }
            | Mode::Pin { .. }
            | Mode::NewPin { .. }
            | Mode::Findings { .. }
            | Mode::DenyReason { .. }
            | Mode::Normal => {}
        }
        self.pane_action(action, now, out);
    }

    pub(super) fn go(&mut self, pane: Pane, now: i64, out: &mut Vec<ClientMsg>) {
        self.pane = pane;
        match pane {
            Pane::Pending => {
                self.focus_wanted = None;
                if self.selected_pending().is_none() {
                    self.pending_sel = self.pending.first().map(|p| p.id.clone());
                }
            }
            Pane::History if !self.history.opened => {
                self.history.opened = true;
                self.history_reset(now, out);
            }
            Pane::Health if self.connected() => {
                let r = self.req(Req::Status);
                out.push(ClientMsg::Status { req: r });
            }
            _ => {}
        }
    }

    pub(super) fn pane_action(&mut self, action: Action, now: i64, out: &mut Vec<ClientMsg>) {
        let idx = Pane::ALL.iter().position(|p| *p == self.pane).unwrap_or(0);
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.mode = Mode::Help { scroll: 0 },
            Action::NextPane => self.go(Pane::ALL[(idx + 1) % 4], now, out),
            Action::PrevPane => self.go(Pane::ALL[(idx + 3) % 4], now, out),
            Action::GoPending => self.go(Pane::Pending, now, out),
            Action::GoLive => self.go(Pane::Live, now, out),
            Action::GoHistory => self.go(Pane::History, now, out),
            Action::GoHealth => self.go(Pane::Health, now, out),
            Action::Open => {
                let item = match self.pane {
                    Pane::Pending => self.selected_pending().cloned().map(DetailItem::Pending),
                    Pane::Live => self.live.get(self.live_index()).cloned().map(DetailItem::Row),
                    Pane::History => self.history.rows.get(self.history.sel).cloned().map(DetailItem::Row),
                    Pane::Health => None,
                };
                if let Some(item) = item {
                    self.mode = Mode::Detail { item, scroll: 0 };
                }
            }
            a if a.is_answer() && self.pane == Pane::Pending => self.answer(a, now, out),
            Action::AcceptPolicy => self.accept_policy(now, out),
            Action::SetPin => self.start_new_pin(now),
            Action::Findings => self.open_findings(now, out),
            Action::Stop => self.stop_key(now, out),
            Action::Resume => self.resume_key(now, out),
            Action::Rules => self.open_rules(now, out),
            Action::Search => self.mode = Mode::Search { input: self.history.text.clone().unwrap_or_default() },
            Action::FilterDecision => {
                self.history.decision = cycle(&DECISIONS, self.history.decision);
                self.history_reset(now, out);
            }
            Action::FilterClass => {
                self.history.class = cycle(&CLASSES, self.history.class);
                self.history_reset(now, out);
            }
            Action::FilterServer => {
                // Rows of no server (policy reloads, PIN changes) are no filter value.
                let servers: Vec<&str> = self.servers.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
                self.history.server = cycle(&servers, self.history.server.as_deref()).map(str::to_owned);
                self.history_reset(now, out);
            }
            Action::FilterTime => {
                self.history.window = self.history.window.next();
                self.history_reset(now, out);
            }
            Action::ClearFilters => {
                let h = &mut self.history;
                (h.text, h.decision, h.class, h.server, h.window) = (None, None, None, None, Window::All);
                self.history_reset(now, out);
            }
            Action::Reload => match self.pane {
                Pane::History => self.history_reset(now, out),
                Pane::Health if self.connected() => {
                    let r = self.req(Req::Status);
                    out.push(ClientMsg::Status { req: r });
                }
                _ => {}
            },
            Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => {
                self.movement(action, now, out)
            }
            _ => {}
        }
    }

    pub(super) fn movement(&mut self, action: Action, now: i64, out: &mut Vec<ClientMsg>) {
        match self.pane {
            Pane::Pending => {
                let len = self.pending.len();
                if len == 0 {
                    return;
                }
                let i = self.pending_index();
                let j = step(i.unwrap_or(0), len, action, i.is_none());
                self.pending_sel = Some(self.pending[j].id.clone());
            }
            Pane::Live => {
                let len = self.live.len();
                if len == 0 {
                    return;
                }
                let j = step(self.live_index(), len, action, false);
                // The newest row selected means "follow new calls".
                self.live_sel = (j > 0).then(|| self.live[j].id);
            }
            Pane::History => match action {
                Action::Up => self.history_up(1, now, out),
                Action::Down => self.history_down(1, now, out),
                Action::PageDown => self.history_page_down(now, out),
                Action::PageUp => self.history_page_up(now, out),
                Action::Top => {
                    if self.history.page == 0 && self.history.new_rows == 0 {
                        self.history.sel = 0;
                    } else {
                        self.history_reset(now, out);
                    }
                }
                Action::Bottom => self.history.sel = self.history.rows.len().saturating_sub(1),
                _ => {}
            },
            Pane::Health => {}
        }
    }

    pub(super) fn answer(&mut self, action: Action, now: i64, out: &mut Vec<ClientMsg>) {
        let (approve, scope) = match action {
            Action::ApproveOnce => (true, Scope::Once),
            Action::ApproveSessionArgs => (true, Scope::SessionArgs),
            Action::ApproveSessionTool => (true, Scope::SessionTool),
            Action::ApproveAlways => (true, Scope::Always),
            Action::Deny => (false, Scope::Once),
            Action::DenyAlways => (false, Scope::Always),
            _ => return,
        };
        let Some(item) = self.selected_pending().cloned() else {
            if !self.pending.is_empty() {
                self.say(Level::Warn, "select an approval first (j/k)", now);
            }
            return;
        };
        if now < self.armed_at {
            self.armed_at = now;
            self.say(Level::Warn, "a new approval just took focus — read it, then press again", now);
            return;
        }
        if approve && scope == Scope::Always {
            self.pick_always(item, now, out);
            return;
        }
        if scope == Scope::Always || (approve && item.class.eq_ignore_ascii_case("TRANSFER_VALUE")) {
            self.mode = Mode::Confirm(Confirm { item, approve, scope });
            return;
        }
        if !approve {
            // A deny can tell the agent why (as `latch deny --reason`).
            self.mode = Mode::DenyReason { item, input: String::new() };
            return;
        }
        out.extend(self.send_answer(&item, approve, scope, now));
    }

    pub(super) fn send_answer(
        &mut self,
        item: &PendingItem,
        approve: bool,
        scope: Scope,
        now: i64,
    ) -> Option<ClientMsg> {
        self.send_answer_because(item, approve, scope, None, now)
    }

    /// [`App::send_answer`] with the person's reason, which reaches the agent.
    pub(super) fn send_answer_because(
        &mut self,
        item: &PendingItem,
        approve: bool,
        scope: Scope,
        reason: Option<String>,
        now: i64,
    ) -> Option<ClientMsg> {
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon: nothing was sent", now);
            return None;
        }
        if !self.pending.iter().any(|p| p.id == item.id) {
            self.say(Level::Warn, "that approval is no longer pending", now);
            return None;
        }
        if approve && self.needs_pin() {
            self.ask_pin(AfterUnlock::Answer { item: item.clone(), scope });
            return None;
        }
        if !self.answering.insert(item.id.clone()) {
            self.say(Level::Info, "already answering that one", now);
            return None;
        }
        let r = self.req(Req::Answer);
        let verb = if approve { "approve" } else { "deny" };
        self.say(Level::Info, format!("{verb} {}/{} ({}) sent", item.server, item.tool, scope_label(scope)), now);
        Some(ClientMsg::Answer {
            req: r,
            approval_id: item.id.clone(),
            approve,
            scope,
            reason,
            who: self.who.clone(),
            pin: None,
        })
    }
}

/// How far an answer reaches, for the footer.
pub fn scope_label(scope: Scope) -> &'static str {
    match scope {
        Scope::Once => "once",
        Scope::SessionArgs => "session, these arguments",
        Scope::SessionTool => "session, this tool",
        Scope::Always => "always",
    }
}

/// any → first → … → last → any.
fn cycle<'a>(all: &[&'a str], cur: Option<&str>) -> Option<&'a str> {
    match cur {
        None => all.first().copied(),
        Some(c) => {
            let i = all.iter().position(|x| *x == c)?;
            all.get(i + 1).copied()
        }
    }
}

fn step(i: usize, len: usize, action: Action, unselected: bool) -> usize {
    let last = len - 1;
    if unselected && matches!(action, Action::Up | Action::Down) {
        return 0;
    }
    match action {
        Action::Up => i.saturating_sub(1),
        Action::Down => (i + 1).min(last),
        Action::PageUp => i.saturating_sub(PAGE_STEP),
        Action::PageDown => (i + PAGE_STEP).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        _ => i,
    }
}
