//! What the machine holds: pending approvals and the calls waiting on
//! them, standing grants, and the persisted state.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::SNAPSHOT_VERSION;
use super::effect::Closure;
use super::event::{CallKey, Scope};
use crate::class::{Class, Decision};

/// A call held on a pending approval. Not persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub call_id: String,
    pub session: String,
    pub hold_until: i64,
}

/// An approval waiting for a human.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub key: CallKey,
    pub class: Class,
    /// The daemon's display data from the first `Ask`.
    pub summary: Value,
    pub created_at: i64,
    /// Sessions that asked (first call and identical calls attached since),
    /// less those that ended. Session-scoped answers grant these.
    pub sessions: BTreeSet<String>,
    #[serde(skip)]
    pub(super) waiters: Vec<Waiter>,
}

impl Pending {
    /// Calls held on it right now.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    pub fn waiters(&self) -> &[Waiter] {
        &self.waiters
    }

    /// The latest hold deadline among its waiters.
    pub fn hold_until(&self) -> Option<i64> {
        self.waiters.iter().map(|w| w.hold_until).max()
    }
}

/// A standing answer: allows or denies matching calls without asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub decision: Decision,
    /// `Once` grants are single-use.
    pub scope: Scope,
    pub server: String,
    pub tool: String,
    /// `None`: any arguments.
    pub args_hash: Option<String>,
    /// `None`: any session.
    pub session: Option<String>,
    pub def_hash: Option<String>,
    /// The approval whose answer made it.
    pub approval_id: String,
    pub created_at: i64,
    /// Unusable from this instant on.
    pub expires_at: i64,
}

impl Grant {
    pub fn single_use(&self) -> bool {
        self.scope == Scope::Once
    }

    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at
    }

    /// Whether it applies to a call (expiry aside).
    pub fn covers(&self, key: &CallKey, session: &str) -> bool {
        self.server == key.server
            && self.tool == key.tool
            && self.def_hash == key.def_hash
            && self.args_hash.as_ref().is_none_or(|h| *h == key.args_hash)
            && self.session.as_deref().is_none_or(|s| s == session)
    }
}

/// A call allowed recently, for `retry: true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Recent {
    pub(super) session: String,
    pub(super) key: CallKey,
    pub(super) at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Closed {
    pub(super) approval_id: String,
    pub(super) closure: Closure,
}

/// Everything persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) version: u32,
    pub(super) id_salt: u64,
    pub(super) next_seq: u64,
    /// In creation order.
    pub(super) pending: Vec<Pending>,
    /// In creation order.
    pub(super) grants: Vec<Grant>,
    pub(super) recent: VecDeque<Recent>,
    pub(super) closed: VecDeque<Closed>,
}

/// A snapshot that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("approval state is not in the expected form: {0}")]
    Format(#[from] serde_json::Error),
    #[error("approval state has version {found}, this build reads version {SNAPSHOT_VERSION}")]
    Version { found: u32 },
}
