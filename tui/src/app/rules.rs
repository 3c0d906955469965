//! `R`: the rules of the policy file, with who added each, when and from
//! which approval; `d` then `y` deletes the selected one (the undo of an
//! "always"). The daemon reads and edits the file; a deletion that
//! loosens waits for the person like any looser policy.

use latch_proto::{ClientMsg, RuleInfo};

use super::state::{App, Level, Mode, Req};
use super::views::RulesView;
use crate::keymap::Action;

impl App {
    /// Opens the view and asks the daemon for the rules.
    pub(super) fn open_rules(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon", now);
            return;
        }
        self.mode = Mode::Rules(RulesView::default());
        self.list_rules(out);
    }

    fn list_rules(&mut self, out: &mut Vec<ClientMsg>) {
        let r = self.req(Req::Rules);
        out.push(ClientMsg::ListRules { req: r });
    }

    /// The daemon's list.
    pub(super) fn rules_listed(&mut self, rules: Vec<RuleInfo>, error: Option<String>) {
        if let Mode::Rules(v) = &mut self.mode {
            v.sel = v.sel.min(rules.len().saturating_sub(1));
            v.rules = Some(rules);
            v.error = error;
            v.confirm = false;
        }
    }

    /// The reply to `DeleteRule`.
    pub(super) fn rule_deleted(&mut self, ok: bool, message: String, now: i64, out: &mut Vec<ClientMsg>) {
        self.say(if ok { Level::Info } else { Level::Error }, message, now);
        if matches!(self.mode, Mode::Rules(_)) {
            self.list_rules(out);
        }
    }

    /// A key while the view is open.
    pub(super) fn rules_key(&mut self, action: Action, now: i64, out: &mut Vec<ClientMsg>) {
        let Mode::Rules(v) = &mut self.mode else { return };
        let len = v.rules.as_ref().map_or(0, Vec::len);
        if v.confirm {
            v.confirm = false;
            if action == Action::Confirm
                && let Some(rule) = v.selected()
            {
                let (number, line) = (rule.number, rule.line);
                let r = self.req(Req::DeleteRule);
                out.push(ClientMsg::DeleteRule { req: r, number, line });
            } else {
                self.say(Level::Info, "nothing was deleted", now);
            }
            return;
        }
        match action {
            Action::Up => v.sel = v.sel.saturating_sub(1),
            Action::Down => v.sel = (v.sel + 1).min(len.saturating_sub(1)),
            Action::Deny | Action::DeleteRule if v.selected().is_some() => v.confirm = true,
            Action::Reload => self.list_rules(out),
            Action::Back | Action::Cancel | Action::Quit | Action::Rules => self.mode = Mode::Normal,
            _ => {}
        }
    }
}
