//! The approval PIN in the console: asked once per session, at the first
//! approval (or when accepting a policy change), then the daemon remembers
//! this connection as unlocked. A deny never asks: it only tightens.

use latch_proto::{ClientMsg, Pin};
use ratatui::crossterm::event::KeyCode;

use super::state::{AfterUnlock, App, DetailItem, Level, Mode, Req};
use crate::keymap::{Action, Key};

impl App {
    /// A PIN is set and this session has not given it yet.
    pub(super) fn needs_pin(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.pin_set) && !self.unlocked
    }

    pub(super) fn ask_pin(&mut self, then: AfterUnlock) {
        self.after_unlock = Some(then);
        self.mode = Mode::Pin { input: String::new() };
    }

    /// `p`: choose the first PIN (a change needs the old one: `latch pin set`).
    pub(super) fn start_new_pin(&mut self, now: i64) {
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon", now);
        } else if self.status.as_ref().is_some_and(|s| s.pin_set) {
            self.say(Level::Info, "a PIN is set; change it with `latch pin set` (it asks for the old one)", now);
        } else {
            self.mode = Mode::NewPin { input: String::new(), first: None };
        }
    }

    pub(super) fn pin_key(&mut self, key: Key, action: Option<Action>, now: i64, out: &mut Vec<ClientMsg>) {
        if let Mode::NewPin { input, first } = &mut self.mode {
            match action {
                Some(Action::Confirm) => match first.take() {
                    None => *first = Some(std::mem::take(input)),
                    Some(f) if f == *input => {
                        let new = std::mem::take(input);
                        self.mode = Mode::Normal;
                        let r = self.req(Req::SetPin);
                        out.push(ClientMsg::SetPin { req: r, old: None, new: Pin(new) });
                    }
                    Some(_) => {
                        self.mode = Mode::Normal;
                        self.say(Level::Error, "the two PINs differ; nothing was set", now);
                    }
                },
                Some(Action::Cancel) => self.mode = Mode::Normal,
                _ => edit(input, key),
            }
            return;
        }
        let Mode::Pin { input } = &mut self.mode else { return };
        match action {
            Some(Action::Confirm) => {
                let pin = std::mem::take(input);
                self.mode = Mode::Normal;
                let r = self.req(Req::Unlock);
                out.push(ClientMsg::Unlock { req: r, pin: Pin(pin) });
            }
            Some(Action::Cancel) => {
                input.clear();
                self.mode = Mode::Normal;
                self.after_unlock = None;
            }
            _ => edit(input, key),
        }
    }

    /// `P`: accept the waiting policy change.
    pub(super) fn accept_policy(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon: nothing was sent", now);
            return;
        }
        if self.status.as_ref().and_then(|s| s.policy_pending.as_ref()).is_none() {
            self.say(Level::Info, "no policy change is waiting", now);
            return;
        }
        if self.needs_pin() {
            self.ask_pin(AfterUnlock::AcceptPolicy);
            return;
        }
        let r = self.req(Req::AcceptPolicy);
        out.push(ClientMsg::PolicyAccept { req: r, pin: None });
    }

    /// The reply to `Unlock` or `PolicyAccept`.
    pub(super) fn done(&mut self, kind: Option<Req>, ok: bool, message: String, now: i64, out: &mut Vec<ClientMsg>) {
        match kind {
            Some(Req::Unlock) if ok => {
                self.unlocked = true;
                match self.after_unlock.take() {
                    Some(AfterUnlock::Answer { item, scope }) => out.extend(self.send_answer(&item, true, scope, now)),
                    Some(AfterUnlock::AcceptPolicy) => {
                        let r = self.req(Req::AcceptPolicy);
                        out.push(ClientMsg::PolicyAccept { req: r, pin: None });
                    }
                    Some(AfterUnlock::Resume) => self.send_resume(out),
                    Some(AfterUnlock::Reveal { item }) => {
                        let id = item.id.clone();
                        self.mode = Mode::Detail { item: DetailItem::Pending(item), scroll: 0 };
                        self.send_reveal(&id, out);
                    }
                    None => self.say(Level::Info, message, now),
                }
            }
            Some(Req::Unlock) => {
                self.after_unlock = None;
                self.say(Level::Error, format!("PIN refused: {message}"), now);
            }
            Some(Req::Stop | Req::Resume) => self.stop_done(ok, message, now),
            Some(Req::SetPin) => {
                if ok {
                    // The daemon unlocks the connection that set it.
                    self.unlocked = true;
                    if let Some(st) = &mut self.status {
                        st.pin_set = true;
                    }
                }
                self.say(if ok { Level::Info } else { Level::Error }, message, now);
            }
            _ => {
                if ok && let Some(st) = &mut self.status {
                    st.policy_pending = None;
                }
                self.say(if ok { Level::Info } else { Level::Error }, message, now);
            }
        }
    }
}

/// A character typed into a PIN input, or Backspace.
fn edit(input: &mut String, key: Key) {
    match key.code {
        KeyCode::Char(c) if !key.ctrl => input.push(c),
        KeyCode::Backspace => {
            input.pop();
        }
        _ => {}
    }
}
