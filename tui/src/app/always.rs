//! `A` on a pending approval: how far "always" reaches. The scopes Latch
//! offers (`latch_core::policy::narrow`), narrowest first, the whole tool
//! last, with the exact rule that will be written; `j`/`k` choose, `y`
//! saves (with the PIN when one is set), `Esc` sends nothing.

use latch_core::policy::narrow::{self, WHOLE_TOOL};
use latch_proto::{ClientMsg, PendingItem, Scope};

use super::state::{AfterUnlock, App, Level, Mode, Req};
use super::views::{ASKED_LIMIT, AlwaysPick, WEEK_MS};
use crate::keymap::Action;

impl App {
    /// Opens the picker for `item`, and asks the log for the calls of
    /// that tool asked in the last week.
    pub(super) fn pick_always(&mut self, item: PendingItem, now: i64, out: &mut Vec<ClientMsg>) {
        let filter = latch_proto::AuditFilter {
            server: Some(item.server.clone()),
            tool: Some(item.tool.clone()),
            decision: Some("ask".into()),
            since: Some(now - WEEK_MS),
            ..Default::default()
        };
        let mut pick = AlwaysPick::new(item);
        if self.connected() {
            let r = self.req(Req::AlwaysAsked);
            pick.asked_req = Some(r);
            out.push(ClientMsg::Audit { req: r, limit: ASKED_LIMIT, before: None, filter });
        }
        self.mode = Mode::Always(pick);
    }

    /// The log's answer: what each scope would have allowed.
    pub(super) fn always_asked(&mut self, req: u64, rows: &[latch_proto::AuditRow]) {
        let Mode::Always(pick) = &mut self.mode else { return };
        if pick.asked_req != Some(req) {
            return;
        }
        let calls: Vec<&latch_proto::AuditRow> = rows.iter().filter(|r| r.kind == "call").collect();
        let counts = pick
            .offers
            .iter()
            .map(|o| match &o.narrowing {
                None => Some(calls.len()),
                Some(narrow::Narrowing::Domains(_)) => None,
                Some(n) => Some(calls.iter().filter(|r| n.holds(&r.args, &[])).count()),
            })
            .collect();
        pick.asked = Some((calls.len(), counts));
    }

    /// A key while the picker is open.
    pub(super) fn always_key(&mut self, action: Action, now: i64, out: &mut Vec<ClientMsg>) {
        let Mode::Always(pick) = &mut self.mode else { return };
        match action {
            Action::Up => pick.sel = pick.sel.saturating_sub(1),
            Action::Down => pick.sel = (pick.sel + 1).min(pick.offers.len() - 1),
            Action::Confirm => {
                let item = pick.item.clone();
                let offer = pick.chosen().id.clone();
                self.mode = Mode::Normal;
                if offer == WHOLE_TOOL {
                    out.extend(self.send_answer(&item, true, Scope::Always, now));
                } else {
                    out.extend(self.send_narrow(&item, &offer, now));
                }
            }
            _ => {
                self.mode = Mode::Normal;
                self.say(Level::Info, "nothing was sent", now);
            }
        }
    }

    /// Approves `item` "always" with the scope `offer`.
    pub(super) fn send_narrow(&mut self, item: &PendingItem, offer: &str, now: i64) -> Option<ClientMsg> {
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon: nothing was sent", now);
            return None;
        }
        if !self.pending.iter().any(|p| p.id == item.id) {
            self.say(Level::Warn, "that approval is no longer pending", now);
            return None;
        }
        if self.needs_pin() {
            self.ask_pin(AfterUnlock::AnswerNarrow { item: item.clone(), offer: offer.to_owned() });
            return None;
        }
        if !self.answering.insert(item.id.clone()) {
            self.say(Level::Info, "already answering that one", now);
            return None;
        }
        let r = self.req(Req::Answer);
        self.say(Level::Info, format!("approve {}/{} (always, narrowed) sent", item.server, item.tool), now);
        Some(ClientMsg::AnswerNarrow { req: r, approval_id: item.id.clone(), offer: offer.to_owned(), pin: None })
    }
}
