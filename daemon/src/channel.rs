//! The daemon as seen by an approval channel that is not a socket client:
//! desktop notifications and the Telegram bot.
//!
//! A channel learns of approvals from the same events consoles receive
//! ([`Hub::subscribe`]), answers through the same state machine as `latch
//! approve` ([`Hub::answer`], recorded with its channel name and who
//! answered), and reports its own health for `latch status` and the console
//! ([`Hub::set_status`]). It never sees anything the audit would redact:
//! pending items carry redacted arguments and reasons only.

use std::sync::Arc;

use latch_core::Policy;
use latch_core::approval;
use latch_proto::msg::{ChannelState, Event, PendingItem, Scope};
use latch_proto::paths::Paths;
use tokio::sync::broadcast;

use crate::now_ms;
use crate::shared::Shared;

/// A cheap handle on the daemon for one channel.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

impl Hub {
    pub(crate) fn new(shared: Arc<Shared>) -> Hub {
        Hub { shared }
    }

    /// Events from now on: `PendingAdded` when a channel should speak up,
    /// `PendingRemoved` when it should close or edit what it showed.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// The pending approvals, as `latch pending` lists them.
    pub fn pending(&self) -> Vec<PendingItem> {
        self.shared.engine().pending_items()
    }

    /// Whether approval `id` still waits for an answer.
    pub fn is_pending(&self, id: &str) -> bool {
        self.shared.engine().approvals.pending().any(|p| p.id == id)
    }

    /// Consoles (`latch tui`) attached right now.
    pub fn consoles(&self) -> u32 {
        self.shared.engine().consoles
    }

    /// The policy in force (channel settings live in it).
    pub fn policy(&self) -> Policy {
        self.shared.engine().policy.clone()
    }

    pub fn paths(&self) -> &Paths {
        &self.shared.paths
    }

    /// Answers approval `approval_id` as `who` on `channel` ("desktop",
    /// "telegram"). Returns whether this answer decided it: false when the
    /// approval was no longer pending (answered elsewhere first, expired).
    pub async fn answer(
        &self,
        approval_id: &str,
        approve: bool,
        scope: Scope,
        channel: &str,
        who: &str,
        reason: Option<String>,
    ) -> bool {
        let id = approval::normalize_id(approval_id);
        if !self.is_pending(&id) {
            return false;
        }
        let effects = self.shared.engine().approvals.handle(approval::Event::Answer(approval::Answer {
            approval_id: id.clone(),
            approve,
            scope: crate::wire::scope(scope),
            channel: channel.to_owned(),
            who: who.to_owned(),
            reason,
            now_ms: now_ms(),
        }));
        crate::driver::apply(&self.shared, effects, None).await;
        !self.is_pending(&id)
    }

    /// Records, as an audit row of kind `answer_refused`, an attempt to
    /// answer approval `approval_id` that the channel refused (a button
    /// pressed by someone not allowed to answer): a security event, kept
    /// with the evidence, not only in the daemon's log.
    pub async fn record_refused(&self, channel: &str, who: &str, approval_id: Option<&str>, why: &str) {
        self.shared
            .audit
            .record(crate::audit::NewEvent {
                time_ms: now_ms(),
                kind: "answer_refused",
                decision: "deny".into(),
                approval_id: approval_id.map(str::to_owned),
                answered_by: Some(format!("{channel}:{who}")),
                detail: Some(why.to_owned()),
                ..Default::default()
            })
            .await;
    }

    /// Saves channel `name`'s own state (what it sent, to take back after
    /// a restart) in the audit database's state table, which is private to
    /// the user. Written with the next commit.
    pub async fn save_state(&self, name: &str, value: String) {
        self.shared.audit.set_state(&format!("channel:{name}"), value).await;
    }

    /// What channel `name` saved last, if anything (None also when it
    /// cannot be read: a channel then starts afresh).
    pub async fn load_state(&self, name: &str) -> Option<String> {
        let (audit, key) = (self.shared.audit.clone(), format!("channel:{name}"));
        match tokio::task::spawn_blocking(move || audit.get_state(&key)).await {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => {
                tracing::warn!("{name}: cannot read what it saved before a restart: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// Records channel `name`'s health: `problem` None means working.
    /// Shown by `latch status` and in the console.
    pub fn set_status(&self, name: &str, enabled: bool, problem: Option<String>) {
        let mut eng = self.shared.engine();
        eng.channels.insert(name.to_owned(), ChannelState { name: name.to_owned(), enabled, problem });
    }
}
