//! Revealing what redaction masked, on this screen only: `r` in the detail
//! of a pending approval asks the daemon for the approval's unredacted
//! arguments (served only to a console unlocked with the PIN) and toggles
//! between them and the redacted ones. The revealed value lives only in
//! [`Revealed`], dropped when the detail closes, the approval closes or the
//! connection drops; it never goes into a footer message.

use latch_proto::{ClientMsg, PendingItem};
use serde_json::Value;

use super::state::{AfterUnlock, App, DetailItem, Level, Mode, Req, Revealed};

impl App {
    /// The unredacted arguments of approval `id`, when revealed now.
    pub fn revealed_args(&self, id: &str) -> Option<&Value> {
        self.revealed.as_ref().filter(|r| r.approval_id == id).map(|r| &r.args)
    }

    /// `r` in the detail of a pending approval.
    pub(super) fn toggle_reveal(&mut self, item: PendingItem, now: i64, out: &mut Vec<ClientMsg>) {
        if self.revealed_args(&item.id).is_some() {
            self.revealed = None;
            self.say(Level::Info, "masked again", now);
            return;
        }
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon", now);
            return;
        }
        if !self.pending.iter().any(|p| p.id == item.id) {
            self.say(Level::Warn, "that approval is no longer pending", now);
            return;
        }
        if !self.status.as_ref().is_some_and(|s| s.pin_set) {
            self.say(Level::Warn, "revealing needs an approval PIN: set one first (p)", now);
            return;
        }
        if self.needs_pin() {
            self.ask_pin(AfterUnlock::Reveal { item });
            return;
        }
        self.send_reveal(&item.id, out);
    }

    pub(super) fn send_reveal(&mut self, approval_id: &str, out: &mut Vec<ClientMsg>) {
        let r = self.req(Req::Reveal);
        out.push(ClientMsg::Reveal { req: r, approval_id: approval_id.to_owned() });
    }

    /// The reply to `Reveal`: shown only while that approval's detail is.
    pub(super) fn revealed_reply(
        &mut self,
        ok: bool,
        approval_id: String,
        args: Option<Value>,
        message: String,
        now: i64,
    ) {
        match args {
            Some(args) if ok && self.detail_of() == Some(approval_id.as_str()) => {
                self.revealed = Some(Revealed { approval_id, args });
                self.say(Level::Warn, "revealed on this screen only — r masks again", now);
            }
            Some(_) if ok => {}
            _ => self.say(Level::Error, format!("not revealed: {message}"), now),
        }
    }

    /// The pending approval whose detail is open.
    fn detail_of(&self) -> Option<&str> {
        match &self.mode {
            Mode::Detail { item: DetailItem::Pending(p), .. } => Some(p.id.as_str()),
            _ => None,
        }
    }

    /// Revealed values go as soon as their detail is not on screen or the
    /// approval is no longer pending.
    pub(super) fn drop_stale_reveal(&mut self) {
        let Some(r) = &self.revealed else { return };
        let shown = self.detail_of() == Some(r.approval_id.as_str());
        let pending = self.pending.iter().any(|p| p.id == r.approval_id);
        if !shown || !pending || !self.connected() {
            self.revealed = None;
        }
    }
}
