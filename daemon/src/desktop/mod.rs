//! Desktop notifications for pending approvals.
//!
//! One task ([`spawn`]) listens to the [`Hub`]'s events. Each
//! `PendingAdded` raises a notification (server, tool, class, a redacted
//! one-line summary: [`text`]); a later `PendingAdded` for the same
//! approval (another call joined it) *replaces* it by reusing its
//! notification id, and `PendingRemoved` (answered in the console, the CLI,
//! Telegram, expired, withdrawn) closes it. Where the server shows actions,
//! the notification has Approve and Deny buttons, answered through
//! [`Hub::answer`] as channel "desktop" with the login name, scope once;
//! elsewhere its body says how to answer.
//!
//! Settings are read from [`Hub::policy`] at each approval (`[notify]`:
//! on/off, classes, quiet hours in local time), so a reload applies at
//! once. An approval that arrives during quiet hours is held back and
//! shown when they end (checked every [`HELD_BACK_CHECK`], and at a
//! reload) if it is still pending; a notification the user dismissed is
//! not raised again. Health goes to [`Hub::set_status`] under "desktop"; a problem is
//! logged once, not at every approval, and the bus is tried again at most
//! every [`RETRY`].
//!
//! This task is beside the decision path, never on it: it only reads the
//! broadcast events (a lag is answered by a resync from [`Hub::pending`]),
//! every D-Bus call is bounded ([`bus::CALL_TIMEOUT`]), and a failure only
//! changes the channel's status.

mod bus;
mod text;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use latch_proto::msg::{Event, PendingItem, Scope};
use tokio::sync::broadcast::error::RecvError;

use crate::channel::Hub;
use bus::{Bus, BusError, Signal};

/// The channel's name in `latch status`, the audit and answers.
pub const CHANNEL: &str = "desktop";
/// Shortest time between two attempts to reach a missing bus.
const RETRY: Duration = Duration::from_secs(30);
/// How often approvals held back by quiet hours are looked at again.
const HELD_BACK_CHECK: Duration = Duration::from_secs(30);

/// Starts the desktop channel on its own task.
pub fn spawn(tasks: &mut tokio::task::JoinSet<()>, hub: Hub) {
    tasks.spawn(run(hub));
}

async fn run(hub: Hub) {
    let mut events = hub.subscribe();
    let mut d = Desktop::new(hub);
    d.resync().await;
    let mut check = tokio::time::interval(HELD_BACK_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = check.tick(), if !d.held_back.is_empty() => d.release().await,
            ev = events.recv() => match ev {
                Ok(Event::PendingAdded { item }) => d.show(&item).await,
                Ok(Event::PendingRemoved { id, .. }) => d.close(&id).await,
                Ok(Event::PolicyReloaded { .. }) => {
                    d.settings_changed().await;
                    // Quiet hours may have been changed or removed.
                    d.release().await;
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => d.resync().await,
                Err(RecvError::Closed) => break,
            },
            sig = next_signal(&mut d.bus) => match sig {
                Some(s) => d.on_signal(s).await,
                None => d.lost(BusError::Closed),
            },
        }
    }
}

async fn next_signal(bus: &mut Option<Bus>) -> Option<Signal> {
    match bus {
        Some(b) => b.next_signal().await,
        None => std::future::pending().await,
    }
}

struct Desktop {
    hub: Hub,
    bus: Option<Bus>,
    /// Approval id → the notification showing it.
    shown: HashMap<String, u32>,
    /// Approvals that arrived during quiet hours, not shown yet.
    held_back: HashSet<String>,
    /// The problem last logged (logged again only when it changes).
    logged: Option<String>,
    /// When the bus may be tried again after a failure.
    next_try: Option<Instant>,
    who: String,
}

impl Desktop {
    fn new(hub: Hub) -> Desktop {
        Desktop {
            hub,
            bus: None,
            shown: HashMap::new(),
            held_back: HashSet::new(),
            logged: None,
            next_try: None,
            who: crate::login_name(),
        }
    }

    fn enabled(&self) -> bool {
        self.hub.policy().notify().desktop
    }

    /// The bus, connecting first if needed (and allowed by the retry pace).
    async fn bus(&mut self) -> Option<&Bus> {
        if self.bus.is_none() && self.next_try.is_none_or(|t| Instant::now() >= t) {
            let found = bus::session_address(|k| std::env::var(k).ok(), crate::audit::current_uid(), |p| p.exists());
            let connected = match found {
                Ok(address) => Bus::connect(&address).await,
                Err(e) => Err(e),
            };
            match connected {
                Ok(b) => {
                    self.bus = Some(b);
                    self.next_try = None;
                    if self.logged.take().is_some() {
                        tracing::info!("desktop notifications work again");
                    }
                    self.hub.set_status(CHANNEL, true, None);
                }
                Err(e) => self.lost(e),
            }
        }
        self.bus.as_ref()
    }

    /// Records a bus failure: status, one log line, retry later.
    fn lost(&mut self, e: BusError) {
        self.bus = None;
        self.shown.clear();
        self.next_try = Some(Instant::now() + RETRY);
        let problem = e.to_string();
        if self.logged.as_deref() != Some(problem.as_str()) {
            tracing::warn!("desktop notifications: {problem}");
            self.logged = Some(problem.clone());
        }
        self.hub.set_status(CHANNEL, self.enabled(), Some(problem));
    }

    /// After a policy reload: report on/off, and connect if now on.
    async fn settings_changed(&mut self) {
        if self.enabled() {
            if self.bus.is_none() {
                self.next_try = None;
            }
            if self.bus().await.is_some() {
                self.hub.set_status(CHANNEL, true, None);
            }
        } else {
            self.hub.set_status(CHANNEL, false, None);
        }
    }

    /// Shows every pending approval (at start, and after missing events).
    async fn resync(&mut self) {
        self.settings_changed().await;
        let pending = self.hub.pending();
        let stale: Vec<String> =
            self.shown.keys().filter(|id| !pending.iter().any(|p| &p.id == *id)).cloned().collect();
        for id in stale {
            self.close(&id).await;
        }
        for item in &pending {
            self.show(item).await;
        }
    }

    /// Shows the approvals held back by quiet hours that are still
    /// pending, if the quiet hours are over.
    async fn release(&mut self) {
        if self.held_back.is_empty() {
            return;
        }
        let held: Vec<PendingItem> =
            self.hub.pending().into_iter().filter(|p| self.held_back.contains(&p.id)).collect();
        self.held_back.retain(|id| held.iter().any(|p| &p.id == id));
        for item in &held {
            self.show(item).await;
        }
    }

    async fn show(&mut self, item: &PendingItem) {
        let settings = self.hub.policy().notify().clone();
        let wanted = settings.desktop_wants(&item.class);
        if wanted && settings.quiet_at(local_minute_of_day()) {
            self.held_back.insert(item.id.clone());
            return;
        }
        self.held_back.remove(&item.id);
        if !wanted {
            return;
        }
        let replaces = self.shown.get(&item.id).copied().unwrap_or(0);
        let Some(bus) = self.bus().await else { return };
        let t = text::compose(item, bus.actions, bus.markup);
        match bus.notify(replaces, &t.summary, &t.body, bus.actions).await {
            Ok(id) => {
                self.shown.insert(item.id.clone(), id);
            }
            Err(e) => self.lost(e),
        }
    }

    async fn close(&mut self, approval_id: &str) {
        self.held_back.remove(approval_id);
        let Some(id) = self.shown.remove(approval_id) else { return };
        if let Some(bus) = &self.bus
            && let Err(e) = bus.close(id).await
        {
            self.lost(e);
        }
    }

    async fn on_signal(&mut self, s: Signal) {
        match s {
            Signal::Action { id, key } => {
                let approve = match key.as_str() {
                    "approve" => true,
                    "deny" => false,
                    _ => return,
                };
                let Some(approval) = self.shown.iter().find(|(_, n)| **n == id).map(|(a, _)| a.clone()) else {
                    return;
                };
                let decided = self.hub.answer(&approval, approve, Scope::Once, CHANNEL, &self.who, None).await;
                if !decided {
                    // Answered elsewhere first, or expired: the button is stale.
                    self.close(&approval).await;
                }
            }
            Signal::Closed { id } => self.shown.retain(|_, n| *n != id),
            Signal::Forged { id, sender } => {
                let approval = self.shown.iter().find(|(_, n)| **n == id).map(|(a, _)| a.clone());
                let why = format!(
                    "a button press for notification {id} came from bus peer {sender}, which does not own \
                     org.freedesktop.Notifications; ignored"
                );
                tracing::warn!("desktop: {why}");
                self.hub.record_refused(CHANNEL, &sender, approval.as_deref(), &why).await;
            }
        }
    }
}

/// Minutes since local midnight, now (0 when the local time is unknown).
fn local_minute_of_day() -> u16 {
    let t = (crate::now_ms() / 1000) as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        (tm.tm_hour * 60 + tm.tm_min) as u16
    }
}
