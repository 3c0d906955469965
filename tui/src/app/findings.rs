//! The tool findings in the console (issue 18): tools whose definition
//! changed since their server first listed it, or holds text aimed at the
//! model, or takes another server's tool name. `F` lists them with the
//! description's diff; `a` accepts the definition shown, with the PIN like
//! any loosening (the daemon accepts only that definition, by its hash).

use latch_proto::{ClientMsg, ToolFinding};

use super::state::{AfterUnlock, App, Level, Mode, PAGE_STEP, Req};
use crate::keymap::Action;

impl App {
    /// `F`: the findings popup, asked for afresh.
    pub(super) fn open_findings(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon", now);
            return;
        }
        self.mode = Mode::Findings { sel: 0, scroll: 0 };
        self.request_findings(out);
    }

    pub(super) fn request_findings(&mut self, out: &mut Vec<ClientMsg>) {
        if self.connected() {
            let r = self.req(Req::Findings);
            out.push(ClientMsg::ToolFindings { req: r });
        }
    }

    pub(super) fn findings_arrived(&mut self, items: Vec<ToolFinding>) {
        // The selection stays on the same tool when it is still listed.
        let was = self.selected_finding().map(|f| (f.server.clone(), f.tool.clone()));
        self.findings = items;
        if let Mode::Findings { sel, scroll } = &mut self.mode {
            let at = was.and_then(|(s, t)| self.findings.iter().position(|f| f.server == s && f.tool == t));
            if at != Some(*sel) {
                *scroll = 0;
            }
            *sel = at.unwrap_or(*sel).min(self.findings.len().saturating_sub(1));
        }
    }

    /// The finding selected in the popup.
    pub fn selected_finding(&self) -> Option<&ToolFinding> {
        match &self.mode {
            Mode::Findings { sel, .. } => self.findings.get(*sel),
            _ => None,
        }
    }

    pub(super) fn findings_key(&mut self, action: Action, now: i64, out: &mut Vec<ClientMsg>) {
        let len = self.findings.len();
        let Mode::Findings { sel, scroll } = &mut self.mode else { return };
        match action {
            Action::Up => {
                *sel = sel.saturating_sub(1);
                *scroll = 0;
            }
            Action::Down => {
                *sel = (*sel + 1).min(len.saturating_sub(1));
                *scroll = 0;
            }
            Action::PageUp => *scroll = scroll.saturating_sub(PAGE_STEP as u16),
            Action::PageDown => *scroll = scroll.saturating_add(PAGE_STEP as u16),
            Action::Back => self.mode = Mode::Normal,
            Action::Reload => self.request_findings(out),
            Action::AcceptTool => self.accept_tool(now, out),
            _ => {}
        }
    }

    fn accept_tool(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon: nothing was sent", now);
            return;
        }
        let Some(finding) = self.selected_finding().cloned() else {
            self.say(Level::Info, "no tool has findings", now);
            return;
        };
        if self.needs_pin() {
            self.ask_pin(AfterUnlock::AcceptTool { finding });
            return;
        }
        self.send_accept_tool(&finding, now, out);
    }

    pub(super) fn send_accept_tool(&mut self, f: &ToolFinding, now: i64, out: &mut Vec<ClientMsg>) {
        let r = self.req(Req::AcceptTool);
        self.say(Level::Info, format!("accepting {}/{} …", f.server, f.tool), now);
        out.push(ClientMsg::ToolAccept {
            req: r,
            server: f.server.clone(),
            tool: f.tool.clone(),
            hash: f.hash.clone(),
            pin: None,
        });
    }

    /// The reply to `ToolAccept`.
    pub(super) fn tool_accepted(&mut self, ok: bool, message: String, now: i64, out: &mut Vec<ClientMsg>) {
        self.say(if ok { Level::Info } else { Level::Error }, message, now);
        self.request_findings(out);
    }
}
