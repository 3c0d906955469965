//! The state every component of the daemon shares: the engine (tables and
//! the approval state machine), the audit writer, the event bus, the PIN
//! gate and the accepted policy; and the few small acts every component
//! does with it (record a row, emit an event, save the approvals).
//!
//! It imports no component: components import it.

use std::sync::{Mutex, MutexGuard};

use latch_core::approval::{self, Approvals};
use latch_core::policy::NewRule;
use latch_proto::paths::Paths;
use latch_proto::{DaemonMsg, Event, frame};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::accepted::Guard;
use crate::audit::{Audit, NewEvent};
use crate::engine::Engine;
use crate::now_ms;
use crate::outbox::Outbox;

/// The state key under which approvals and grants survive a restart.
const APPROVALS_STATE: &str = "approvals";

/// An "always" rule for the policy component to write; the answer is what
/// the audit row says about it.
pub(crate) struct RuleJob {
    pub rule: NewRule,
    pub done: oneshot::Sender<String>,
}

pub(crate) struct Shared {
    pub(crate) paths: Paths,
    pub(crate) audit: Audit,
    engine: Mutex<Engine>,
    pub(crate) events: broadcast::Sender<Event>,
    /// `LATCH_HOLD_MS`: one hold limit for every client (tests, scripts).
    pub(crate) hold_override: Option<u64>,
    /// Holds that ran out (call id, the hold's end), for the approval driver.
    pub(crate) expired: mpsc::UnboundedSender<(String, i64)>,
    /// "Always" rules for the policy component to write.
    pub(crate) rules: mpsc::UnboundedSender<RuleJob>,
    /// The approval PIN and which connections are unlocked.
    pub(crate) pin: crate::pin::Gate,
    /// The accepted policy and what waits for the person.
    guard: Mutex<Guard>,
    /// System mode: peers of other user ids may connect ([`crate::Options::system`]).
    pub(crate) system: bool,
    /// The wall clock watched against elapsed time, for the approvals.
    clock: crate::clock::JumpWatch,
}

/// What [`Shared::new`] takes besides the tables.
pub(crate) struct Parts {
    pub paths: Paths,
    pub audit: Audit,
    pub engine: Engine,
    pub pin: crate::pin::Gate,
    pub guard: Guard,
    pub hold_override: Option<u64>,
    pub expired: mpsc::UnboundedSender<(String, i64)>,
    pub rules: mpsc::UnboundedSender<RuleJob>,
    pub system: bool,
}

impl Shared {
    pub(crate) fn new(p: Parts) -> Shared {
        let (events, _) = broadcast::channel(1024);
        Shared {
            paths: p.paths,
            audit: p.audit,
            engine: Mutex::new(p.engine),
            events,
            hold_override: p.hold_override,
            expired: p.expired,
            rules: p.rules,
            pin: p.pin,
            guard: Mutex::new(p.guard),
            system: p.system,
            clock: crate::clock::JumpWatch::new(),
        }
    }

    pub(crate) fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock must not wedge the daemon: the
        // state is still consistent enough to answer and shut down.
        let mut eng = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        // The wall clock was set since the last look: grants and holds move
        // with it before anything reads them, so they last their elapsed
        // time (see crate::clock).
        if let Some(by_ms) = self.clock.jumped() {
            tracing::warn!("the wall clock was set by {by_ms} ms; grants and holds keep their elapsed time");
            eng.approvals.handle(approval::Event::ClockJumped { by_ms });
        }
        eng
    }

    pub(crate) fn guard(&self) -> MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    pub(crate) async fn record(&self, ev: NewEvent) {
        self.audit.record(ev).await;
    }

    /// Saves pending approvals and grants (with the next commit).
    pub(crate) async fn persist(&self) {
        let snapshot = self.engine().approvals.snapshot();
        self.audit.set_state(APPROVALS_STATE, snapshot.to_string()).await;
    }
}

/// An audit row stamped now.
pub(crate) fn event_now() -> NewEvent {
    NewEvent { time_ms: now_ms(), ..Default::default() }
}

/// Queues `msg` for one connection.
pub(crate) async fn send(tx: &Outbox, msg: &DaemonMsg) {
    let _ = tx.send(frame::encode(msg)).await;
}

/// The approvals and grants saved by the last daemon, or none.
pub(crate) fn restore_approvals(audit: &Audit, salt: u64, grant_ttl_seconds: u64) -> Approvals {
    let config =
        approval::Config { once_ttl_ms: (grant_ttl_seconds as i64).saturating_mul(1000), ..Default::default() };
    match audit.get_state(APPROVALS_STATE) {
        Ok(Some(text)) => match serde_json::from_str(&text).map(|v| Approvals::restore(config.clone(), v)) {
            Ok(Ok(mut a)) => {
                // The clock may have been set back while no daemon watched
                // it: no grant lasts longer than its TTL from now.
                a.handle(approval::Event::Restarted { now_ms: now_ms() });
                return a;
            }
            Ok(Err(e)) => {
                tracing::warn!("saved approvals could not be restored ({e}); starting with none")
            }
            Err(e) => tracing::warn!("saved approvals are not JSON ({e}); starting with none"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!("could not read saved approvals ({e}); starting with none"),
    }
    Approvals::new(config, salt)
}
