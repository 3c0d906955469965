//! The kill switch from the console (`X` twice stops every tool call; `U`
//! resumes, with the PIN like any loosening) and the sessions' taint (the
//! lethal trifecta) as the daemon reports it.

use latch_proto::{ClientMsg, TaintReport};

use super::state::{AfterUnlock, App, Level, Req};

/// How long after a first `X` a second one stops.
pub const STOP_ARM_MS: i64 = 3_000;
/// Sessions kept for the console.
const MAX_TAINTS: usize = 200;

impl App {
    /// Whether the daemon said every call is denied.
    pub fn stopped_since(&self) -> Option<i64> {
        self.status.as_ref().and_then(|s| s.stopped_since)
    }

    /// `X`: the first press arms, the second (within [`STOP_ARM_MS`]) stops.
    pub(super) fn stop_key(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon: nothing was sent", now);
            return;
        }
        match self.stop_armed.take() {
            Some(at) if now - at <= STOP_ARM_MS => {
                let r = self.req(Req::Stop);
                out.push(ClientMsg::Stop { req: r });
            }
            _ => {
                self.stop_armed = Some(now);
                self.say(Level::Warn, "press X again to STOP every tool call of every agent", now);
            }
        }
    }

    /// `U`: resume, with the PIN when one is set and not given yet.
    pub(super) fn resume_key(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        self.stop_armed = None;
        if !self.connected() {
            self.say(Level::Error, "not connected to the daemon: nothing was sent", now);
        } else if self.stopped_since().is_none() {
            self.say(Level::Info, "Latch is not stopped", now);
        } else if self.needs_pin() {
            self.ask_pin(AfterUnlock::Resume);
        } else {
            self.send_resume(out);
        }
    }

    pub(super) fn send_resume(&mut self, out: &mut Vec<ClientMsg>) {
        let r = self.req(Req::Resume);
        out.push(ClientMsg::Resume { req: r, pin: None });
    }

    /// The daemon's reply to `Stop` or `Resume`.
    pub(super) fn stop_done(&mut self, ok: bool, message: String, now: i64) {
        self.say(if ok { Level::Warn } else { Level::Error }, message, now);
    }

    pub(super) fn stopped_changed(&mut self, since: Option<i64>, now: i64) {
        if let Some(st) = &mut self.status {
            st.stopped_since = since;
        }
        let text =
            if since.is_some() { "STOPPED: every tool call is denied" } else { "resumed: calls are decided again" };
        self.say(Level::Warn, text, now);
    }

    pub(super) fn taint_changed(&mut self, session: TaintReport, now: i64) {
        if session.tainted {
            self.say(Level::Warn, format!("{}: read untrusted content and private data", session.label), now);
        }
        self.taints.retain(|t| t.key != session.key);
        self.taints.insert(0, session);
        self.taints.truncate(MAX_TAINTS);
    }

    /// Sessions that read both: their sends ask.
    pub fn tainted(&self) -> usize {
        self.taints.iter().filter(|t| t.tainted).count()
    }
}

#[cfg(test)]
mod tests {
    use latch_proto::{ClientMsg, DaemonMsg, Event};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::app::Input;

    const NOW: i64 = 1_780_000_000_000;

    fn key(c: char) -> Input {
        Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT))
    }

    fn connected() -> App {
        let mut app = App::new("ann", 0);
        app.handle(Input::Connected, NOW);
        app
    }

    #[test]
    fn x_stops_only_when_pressed_twice_within_the_window() {
        let mut app = connected();
        assert!(app.handle(key('X'), NOW).is_empty());
        // Too late: arms again instead.
        assert!(app.handle(key('X'), NOW + STOP_ARM_MS + 1).is_empty());
        let out = app.handle(key('X'), NOW + STOP_ARM_MS + 500);
        assert!(matches!(out.as_slice(), [ClientMsg::Stop { .. }]), "{out:?}");
    }

    #[test]
    fn taint_events_keep_the_latest_first_and_count_tainted_sessions() {
        let mut app = connected();
        let report = |key: &str, tainted: bool| TaintReport {
            key: key.into(),
            label: key.into(),
            untrusted: Some((NOW, "https://x.example/".into())),
            private: tainted.then(|| (NOW, "~/.aws/credentials".into())),
            tainted,
        };
        let ev = |r| Input::Daemon(Box::new(DaemonMsg::Event { event: Event::Taint { session: r } }));
        app.handle(ev(report("a", false)), NOW);
        app.handle(ev(report("b", false)), NOW);
        assert_eq!(app.tainted(), 0);
        app.handle(ev(report("a", true)), NOW);
        assert_eq!(app.tainted(), 1);
        assert_eq!(app.taints.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(app.toast.as_ref().unwrap().text.contains("read untrusted content and private data"));
    }
}
