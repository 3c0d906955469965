//! The approval PIN in the console: asked once per session, at the first
//! approval (or when accepting a policy change), then the daemon remembers
//! this connection as unlocked. A deny never asks: it only tightens.

use latch_proto::{ClientMsg, PendingItem, Pin, Scope};
use ratatui::crossterm::event::KeyCode;

use super::{App, Level, Mode, Req};
use crate::keymap::{Action, Key};

/// What waits for the PIN.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AfterUnlock {
    Answer { item: PendingItem, scope: Scope },
    AcceptPolicy,
}

impl App {
    /// A PIN is set and this session has not given it yet.
    pub(super) fn needs_pin(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.pin_set) && !self.unlocked
    }

    pub(super) fn ask_pin(&mut self, then: AfterUnlock) {
        self.after_unlock = Some(then);
        self.mode = Mode::Pin { input: String::new() };
    }

    pub(super) fn pin_key(&mut self, key: Key, action: Option<Action>, out: &mut Vec<ClientMsg>) {
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
            _ => match key.code {
                KeyCode::Char(c) if !key.ctrl => input.push(c),
                KeyCode::Backspace => {
                    input.pop();
                }
                _ => {}
            },
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
                    None => self.say(Level::Info, message, now),
                }
            }
            Some(Req::Unlock) => {
                self.after_unlock = None;
                self.say(Level::Error, format!("PIN refused: {message}"), now);
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
