//! Pending approvals and the grants their answers create.
//!
//! A call whose policy decision is `ask` gets an approval (or joins the one
//! already pending for the identical call). The first answer wins. An
//! approval answered while its call is still held lets that call run; one
//! answered after the hold passed leaves a single-use grant that the
//! identical retry consumes.

use std::collections::HashMap;

use latch_proto::{PendingItem, Scope};

/// Identifies "the same call": server, tool and canonical argument hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub server: String,
    pub tool: String,
    pub args_hash: String,
}

#[derive(Clone, Debug)]
pub struct Waiter {
    pub call_id: String,
    pub conn: u64,
}

struct Pending {
    item: PendingItem,
    key: Key,
    waiters: Vec<Waiter>,
}

struct Grant {
    key: Key,
    session: Option<String>,
    tool_wide: bool,
    approve: bool,
    single_use: bool,
    expires_ms: i64,
}

/// What became of an `ask`.
pub enum Asked {
    /// A grant decided it.
    Granted { approve: bool, reason: String },
    /// Held on this approval; `new` when it was just created.
    Held { approval_id: String, new: bool },
}

/// What an answer did.
pub enum Answered {
    Done { waiters: Vec<Waiter>, item: PendingItem },
    AlreadyDecided(String),
    Unknown,
}

#[derive(Default)]
pub struct Approvals {
    pending: HashMap<String, Pending>,
    by_call: HashMap<String, String>,
    grants: Vec<Grant>,
    decided: HashMap<String, String>,
    next: u64,
    salt: u64,
}

/// Most approvals pending at once; past it, asks are denied (fail closed).
pub const MAX_PENDING: usize = 1000;

impl Approvals {
    pub fn new(salt: u64) -> Approvals {
        Approvals { salt, ..Default::default() }
    }

    fn new_id(&mut self) -> String {
        self.next += 1;
        let mut x = self.next.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.salt;
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
        let mut id = String::with_capacity(6);
        for _ in 0..6 {
            id.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
            x /= ALPHABET.len() as u64;
        }
        id
    }

    pub fn ask(
        &mut self,
        key: Key,
        session: &str,
        waiter: Waiter,
        mut item: PendingItem,
        now_ms: i64,
    ) -> Result<Asked, String> {
        self.grants.retain(|g| g.expires_ms > now_ms);
        if let Some(i) = self.grants.iter().position(|g| {
            g.key.server == key.server
                && g.key.tool == key.tool
                && (g.tool_wide || g.key.args_hash == key.args_hash)
                && g.session.as_deref().is_none_or(|s| s == session)
        }) {
            let g = &self.grants[i];
            let approve = g.approve;
            let reason = if approve { "approved earlier (grant)" } else { "denied earlier (grant)" }.to_owned();
            if g.single_use {
                self.grants.swap_remove(i);
            }
            return Ok(Asked::Granted { approve, reason });
        }
        if let Some((id, p)) = self.pending.iter_mut().find(|(_, p)| p.key == key) {
            p.waiters.push(waiter.clone());
            p.item.waiting = p.waiters.len() as u32;
            p.item.hold_until = p.item.hold_until.max(item.hold_until);
            let id = id.clone();
            self.by_call.insert(waiter.call_id, id.clone());
            return Ok(Asked::Held { approval_id: id, new: false });
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(format!("{MAX_PENDING} approvals are already pending; answer some first"));
        }
        let id = self.new_id();
        item.id = id.clone();
        item.waiting = 1;
        self.by_call.insert(waiter.call_id.clone(), id.clone());
        self.pending.insert(id.clone(), Pending { item, key, waiters: vec![waiter] });
        Ok(Asked::Held { approval_id: id, new: true })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &mut self,
        id: &str,
        approve: bool,
        scope: Scope,
        session_of: impl Fn(u64) -> Option<String>,
        by: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Answered {
        let Some(p) = self.pending.remove(id) else {
            return match self.decided.get(id) {
                Some(how) => Answered::AlreadyDecided(how.clone()),
                None => Answered::Unknown,
            };
        };
        for w in &p.waiters {
            self.by_call.remove(&w.call_id);
        }
        let verb = if approve { "approved" } else { "denied" };
        self.decided.insert(id.to_owned(), format!("{verb} by {by}"));
        let session = p.waiters.first().and_then(|w| session_of(w.conn));
        let expires_ms = now_ms + ttl_ms;
        match scope {
            Scope::Once => {
                if p.waiters.is_empty() {
                    self.grants.push(Grant {
                        key: p.key.clone(),
                        session: None,
                        tool_wide: false,
                        approve,
                        single_use: true,
                        expires_ms,
                    });
                }
            }
            Scope::SessionArgs | Scope::SessionTool | Scope::Always => self.grants.push(Grant {
                key: p.key.clone(),
                session: if scope == Scope::Always { None } else { session },
                tool_wide: scope != Scope::SessionArgs,
                approve,
                single_use: false,
                expires_ms: if scope == Scope::Always { i64::MAX } else { expires_ms },
            }),
        }
        Answered::Done { waiters: p.waiters, item: p.item }
    }

    /// The shim stopped holding this call; the approval stays pending. If
    /// the approval was already answered for it (a race with the hold
    /// limit), the single-use grant comes back for the identical retry.
    pub fn hold_expired(&mut self, call_id: &str, key: Option<Key>, approved: bool, now_ms: i64, ttl_ms: i64) {
        if let Some(id) = self.by_call.remove(call_id) {
            if let Some(p) = self.pending.get_mut(&id) {
                p.waiters.retain(|w| w.call_id != call_id);
                p.item.waiting = p.waiters.len() as u32;
            }
        } else if let (Some(key), true) = (key, approved) {
            self.grants.push(Grant {
                key,
                session: None,
                tool_wide: false,
                approve: true,
                single_use: true,
                expires_ms: now_ms + ttl_ms,
            });
        }
    }

    /// The client cancelled a held call: its approval is withdrawn.
    /// Returns the withdrawn approval and its other waiters.
    pub fn cancel(&mut self, call_id: &str) -> Option<(PendingItem, Vec<Waiter>)> {
        let id = self.by_call.remove(call_id)?;
        let p = self.pending.remove(&id)?;
        self.decided.insert(id, "withdrawn: the client cancelled the call".into());
        let others: Vec<Waiter> = p.waiters.into_iter().filter(|w| w.call_id != call_id).collect();
        for w in &others {
            self.by_call.remove(&w.call_id);
        }
        Some((p.item, others))
    }

    /// A shim connection closed: its held calls stop waiting.
    pub fn conn_gone(&mut self, conn: u64) {
        for p in self.pending.values_mut() {
            p.waiters.retain(|w| {
                let keep = w.conn != conn;
                if !keep {
                    self.by_call.remove(&w.call_id);
                }
                keep
            });
            p.item.waiting = p.waiters.len() as u32;
        }
    }

    pub fn pending(&self) -> Vec<PendingItem> {
        let mut v: Vec<PendingItem> = self.pending.values().map(|p| p.item.clone()).collect();
        v.sort_by_key(|i| i.created_at);
        v
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Every held call, for shutdown.
    pub fn all_waiters(&self) -> Vec<(String, Waiter)> {
        self.pending.iter().flat_map(|(id, p)| p.waiters.iter().map(move |w| (id.clone(), w.clone()))).collect()
    }
}
