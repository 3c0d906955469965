//! The approval state machine: [`Approvals::handle`] takes one event and
//! returns the effects (see the module documentation of
//! [`approval`](super)).

use std::collections::{BTreeSet, HashMap, VecDeque};

use serde_json::Value;

use super::config::{ANSWERING_CHANNELS, Config, IN_CLIENT, SNAPSHOT_VERSION};
use super::effect::{AnswerRecord, AnswerResult, Closure, Effect, Outcome, Reply, Withdrawal, by};
use super::event::{Answer, Ask, CallKey, Event, Scope};
use super::id;
use super::state::{Closed, Grant, Pending, Recent, RestoreError, State, Waiter};
use crate::class::Decision;

/// The approval state machine.
#[derive(Clone, Debug)]
pub struct Approvals {
    config: Config,
    state: State,
    /// Held call id → approval id. Not persisted.
    held: HashMap<String, String>,
}

impl Approvals {
    /// An empty machine. `id_salt` shuffles the approval ids (the daemon
    /// picks it at random once; it is persisted with the state).
    pub fn new(config: Config, id_salt: u64) -> Approvals {
        Approvals {
            config,
            state: State {
                version: SNAPSHOT_VERSION,
                id_salt,
                next_seq: 0,
                pending: Vec::new(),
                grants: Vec::new(),
                recent: VecDeque::new(),
                closed: VecDeque::new(),
            },
            held: HashMap::new(),
        }
    }

    /// The persistable state: pending approvals (without waiters), grants,
    /// recent retries, closed approvals, the id counter.
    pub fn snapshot(&self) -> Value {
        serde_json::to_value(&self.state).expect("approval state has only string map keys")
    }

    /// A machine from a [`snapshot`](Self::snapshot). Restored approvals
    /// have no waiters.
    pub fn restore(config: Config, snapshot: Value) -> Result<Approvals, RestoreError> {
        let found = snapshot.get("version").and_then(Value::as_u64).unwrap_or(0);
        if found != u64::from(SNAPSHOT_VERSION) {
            return Err(RestoreError::Version { found: u32::try_from(found).unwrap_or(u32::MAX) });
        }
        let state: State = serde_json::from_value(snapshot)?;
        Ok(Approvals { config, state, held: HashMap::new() })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Pending approvals, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.state.pending.iter()
    }

    /// One pending approval, by id as typed.
    pub fn get(&self, approval_id: &str) -> Option<&Pending> {
        let id = id::normalize(approval_id);
        self.state.pending.iter().find(|p| p.id == id)
    }

    /// Grants, oldest first (expired ones too, until pruned).
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.state.grants.iter()
    }

    /// How an approval closed, while the machine remembers it.
    pub fn closure(&self, approval_id: &str) -> Option<&Closure> {
        let id = id::normalize(approval_id);
        self.state.closed.iter().find(|c| c.approval_id == id).map(|c| &c.closure)
    }

    /// The approval a call is held on.
    pub fn held_on(&self, call_id: &str) -> Option<&str> {
        self.held.get(call_id).map(String::as_str)
    }

    /// Feeds one event; returns what the daemon must do, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Ask(ask) => self.on_ask(ask, &mut fx),
            Event::HoldExpired { call_id } => self.on_hold_expired(&call_id, &mut fx),
            Event::Answer(answer) => self.on_answer(answer, false, &mut fx),
            Event::AnswerNarrow(answer) => self.on_answer(answer, true, &mut fx),
            Event::Cancelled { call_id, now_ms } => self.on_cancelled(&call_id, now_ms, &mut fx),
            Event::ToolDefChanged { server, tool, new_def_hash, now_ms } => {
                self.on_def_changed(&server, &tool, &new_def_hash, now_ms, &mut fx)
            }
            Event::ToolDefSeen { server, tool, def_hash } => self.on_def_seen(&server, &tool, &def_hash),
            Event::SessionEnded { session } => self.on_session_ended(&session, &mut fx),
            Event::PolicyReloaded => self.state.grants.retain(|g| g.scope != Scope::Always),
            Event::Tick { now_ms } => self.on_tick(now_ms, &mut fx),
            Event::ClockJumped { by_ms } => super::clock::shift(&mut self.state, by_ms),
            Event::Restarted { now_ms } => super::clock::restarted(&mut self.state, now_ms),
        }
        fx
    }

    // ---- Ask ----

    fn on_ask(&mut self, ask: Ask, fx: &mut Vec<Effect>) {
        let now = ask.now_ms;
        if let Some(approval_id) = self.held.get(&ask.call_id) {
            // The daemon's call ids are unique; fail closed if they are not.
            let reason = format!("duplicate call id {} (already held on approval {approval_id})", ask.call_id);
            fx.push(resolve(&ask.call_id, Outcome::Deny { reason, approval_id: None }));
            return;
        }
        let key = ask.key();
        self.prune_grants(now);

        if let Some(g) = self.take_grant(&key, &ask.session, Decision::Deny) {
            let reason = format!("denied {} by an earlier answer (approval {})", g.scope.describe(), g.approval_id);
            fx.push(resolve(&ask.call_id, Outcome::Deny { reason, approval_id: Some(g.approval_id) }));
            return;
        }
        if ask.retry && self.recent_hit(&key, &ask.session, now) {
            self.remember(&ask.session, &key, now);
            let reason = "retry of a call allowed moments ago in this session".to_owned();
            fx.push(resolve(&ask.call_id, Outcome::Allow { reason, approval_id: None }));
            return;
        }
        if let Some(g) = self.take_grant(&key, &ask.session, Decision::Allow) {
            self.remember(&ask.session, &key, now);
            let reason = format!("approved {} (approval {})", g.scope.describe(), g.approval_id);
            fx.push(resolve(&ask.call_id, Outcome::Allow { reason, approval_id: Some(g.approval_id) }));
            return;
        }

        let hold_until = now.saturating_add(ask.hold_ms.unwrap_or(self.config.hold_ms).max(0));
        let waiter = Waiter { call_id: ask.call_id.clone(), session: ask.session.clone(), hold_until };
        if let Some(p) = self.state.pending.iter_mut().find(|p| p.key == key) {
            let approval_id = p.id.clone();
            if p.waiters.len() >= self.config.max_waiters {
                fx.push(resolve(&ask.call_id, Outcome::AwaitingApproval { approval_id }));
                return;
            }
            p.sessions.insert(ask.session.clone());
            p.waiters.push(waiter);
            self.held.insert(ask.call_id.clone(), approval_id.clone());
            fx.push(Effect::Hold { call_id: ask.call_id, approval_id: approval_id.clone(), hold_until });
            fx.push(Effect::PendingUpdated { approval_id });
            return;
        }

        if self.state.pending.len() >= self.config.max_pending {
            let reason = format!(
                "too many approvals are pending ({}): a person must answer some in Latch first; retry later",
                self.state.pending.len()
            );
            fx.push(resolve(&ask.call_id, Outcome::Deny { reason, approval_id: None }));
            return;
        }

        let approval_id = self.next_id();
        self.held.insert(ask.call_id.clone(), approval_id.clone());
        self.state.pending.push(Pending {
            id: approval_id.clone(),
            key,
            class: ask.class,
            summary: ask.summary,
            created_at: now,
            sessions: BTreeSet::from([ask.session]),
            waiters: vec![waiter],
        });
        fx.push(Effect::Hold { call_id: ask.call_id, approval_id: approval_id.clone(), hold_until });
        fx.push(Effect::PendingAdded { approval_id });
    }

    /// The best matching unexpired grant with this decision; a single-use one
    /// is removed in the same step. Standing grants are preferred.
    fn take_grant(&mut self, key: &CallKey, session: &str, decision: Decision) -> Option<Grant> {
        let matching = |g: &&Grant| g.decision == decision && g.covers(key, session);
        let grants = &mut self.state.grants;
        if let Some(g) = grants.iter().filter(matching).find(|g| !g.single_use()) {
            return Some(g.clone());
        }
        let at = grants.iter().position(|g| matching(&g))?;
        Some(grants.remove(at))
    }

    fn prune_grants(&mut self, now: i64) {
        self.state.grants.retain(|g| !g.expired(now));
    }

    // ---- holds ----

    fn on_hold_expired(&mut self, call_id: &str, fx: &mut Vec<Effect>) {
        let Some(approval_id) = self.held.remove(call_id) else {
            return;
        };
        if let Some(p) = self.state.pending.iter_mut().find(|p| p.id == approval_id) {
            p.waiters.retain(|w| w.call_id != call_id);
        }
        fx.push(resolve(call_id, Outcome::AwaitingApproval { approval_id: approval_id.clone() }));
        fx.push(Effect::PendingUpdated { approval_id });
    }

    // ---- answers ----

    fn on_answer(&mut self, a: Answer, narrow: bool, fx: &mut Vec<Effect>) {
        let approval_id = id::normalize(&a.approval_id);
        let decision = if a.approve { Decision::Allow } else { Decision::Deny };
        let (server, tool) = match self.state.pending.iter().find(|p| p.id == approval_id) {
            Some(p) => (p.key.server.clone(), p.key.tool.clone()),
            None => Default::default(),
        };
        let record = |result| {
            Effect::Record(AnswerRecord {
                approval_id: approval_id.clone(),
                decision,
                scope: a.scope,
                channel: a.channel.clone(),
                who: a.who.clone(),
                reason: a.reason.clone(),
                at: a.now_ms,
                result,
                server: server.clone(),
                tool: tool.clone(),
            })
        };

        if !ANSWERING_CHANNELS.contains(&a.channel.as_str()) {
            fx.push(record(AnswerResult::Refused));
            let reason = format!(
                "channel `{}` may not answer approvals: answer in `latch tui`, with `latch approve`, \
                 or from a notification or Telegram",
                a.channel
            );
            fx.push(Effect::Reply(Reply::Refused { reason }));
            return;
        }

        if a.channel == IN_CLIENT && a.scope != Scope::Once {
            fx.push(record(AnswerResult::Refused));
            let reason = format!("an answer in the client covers this call only, never {}", a.scope.describe());
            fx.push(Effect::Reply(Reply::Refused { reason }));
            return;
        }

        if let Some(at) = self.state.pending.iter().position(|p| p.id == approval_id) {
            fx.push(record(AnswerResult::Decided));
            let pending = self.state.pending.remove(at);
            let released = self.decide(pending, decision, &a, narrow, fx);
            fx.push(Effect::Reply(Reply::Decided { approval_id, decision, scope: a.scope, released }));
            return;
        }

        let reply = match self.state.closed.iter().find(|c| c.approval_id == approval_id) {
            Some(Closed { closure: Closure::Decided { decision, scope, channel, who, at }, .. }) => {
                fx.push(record(AnswerResult::AlreadyDecided));
                Reply::AlreadyDecided {
                    approval_id: approval_id.clone(),
                    decision: *decision,
                    scope: *scope,
                    channel: channel.clone(),
                    who: who.clone(),
                    at: *at,
                }
            }
            Some(Closed { closure: Closure::Withdrawn { cause, at }, .. }) => {
                fx.push(record(AnswerResult::Withdrawn));
                Reply::Withdrawn { approval_id: approval_id.clone(), cause: *cause, at: *at }
            }
            None => {
                fx.push(record(AnswerResult::Unknown));
                Reply::Unknown { approval_id: approval_id.clone() }
            }
        };
        fx.push(Effect::Reply(reply));
    }

    /// Applies a decision to a pending approval already taken out of the
    /// list. Returns how many held calls it answered.
    fn decide(&mut self, p: Pending, decision: Decision, a: &Answer, narrow: bool, fx: &mut Vec<Effect>) -> usize {
        let now = a.now_ms;
        for w in &p.waiters {
            self.held.remove(&w.call_id);
        }
        let closure =
            Closure::Decided { decision, scope: a.scope, channel: a.channel.clone(), who: a.who.clone(), at: now };
        self.close(&p.id, closure.clone());
        fx.push(Effect::PendingRemoved { approval_id: p.id.clone(), closure });

        let verb = if decision == Decision::Allow { "approved" } else { "denied" };
        // The person's own words first, when they gave any: that is what
        // the agent needs.
        let reason = match a.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            Some(why) => format!("{verb} by a person: {why} (approval {})", p.id),
            None => format!("{verb} {} by {} (approval {})", a.scope.describe(), by(&a.channel, &a.who), p.id),
        };
        let outcome = |reason: &str| match decision {
            Decision::Allow => Outcome::Allow { reason: reason.to_owned(), approval_id: Some(p.id.clone()) },
            _ => Outcome::Deny { reason: reason.to_owned(), approval_id: Some(p.id.clone()) },
        };

        // Grants.
        let grant = |scope: Scope, args: bool, session: Option<String>, ttl: i64| Grant {
            decision,
            scope,
            server: p.key.server.clone(),
            tool: p.key.tool.clone(),
            args_hash: args.then(|| p.key.args_hash.clone()),
            session,
            def_hash: p.key.def_hash.clone(),
            approval_id: p.id.clone(),
            created_at: now,
            expires_at: now.saturating_add(ttl),
        };
        let once = grant(Scope::Once, true, None, self.config.once_ttl_ms);
        match a.scope {
            Scope::Once => {
                if p.waiters.is_empty() {
                    self.add_grant(once, now);
                }
            }
            Scope::SessionArgs | Scope::SessionTool => {
                if p.sessions.is_empty() {
                    self.add_grant(once, now);
                }
                let args = a.scope == Scope::SessionArgs;
                for s in &p.sessions {
                    self.add_grant(grant(a.scope, args, Some(s.clone()), self.config.session_ttl_ms), now);
                }
            }
            Scope::Always => {
                self.add_grant(grant(Scope::Always, narrow, None, self.config.always_ttl_ms), now);
                fx.push(Effect::WriteRule {
                    approval_id: p.id.clone(),
                    server: p.key.server.clone(),
                    tool: p.key.tool.clone(),
                    decision,
                    def_hash: p.key.def_hash.clone(),
                });
            }
        }

        // Held calls.
        let single = decision == Decision::Allow && a.scope == Scope::Once;
        let mut waiters = p.waiters.iter();
        let mut released = 0;
        for w in waiters.by_ref().take(if single { 1 } else { usize::MAX }) {
            if decision == Decision::Allow {
                self.remember(&w.session, &p.key, now);
            }
            fx.push(resolve(&w.call_id, outcome(&reason)));
            released += 1;
        }
        let rest: Vec<Waiter> = waiters.cloned().collect();
        if !rest.is_empty() {
            // Identical calls beyond the one approved once: nobody approved
            // them; they wait, still held, on a fresh approval.
            let approval_id = self.next_id();
            for w in &rest {
                self.held.insert(w.call_id.clone(), approval_id.clone());
            }
            self.state.pending.push(Pending {
                id: approval_id.clone(),
                key: p.key.clone(),
                class: p.class,
                summary: p.summary.clone(),
                created_at: now,
                sessions: rest.iter().map(|w| w.session.clone()).collect(),
                waiters: rest.clone(),
            });
            for w in rest {
                fx.push(Effect::Hold {
                    call_id: w.call_id,
                    approval_id: approval_id.clone(),
                    hold_until: w.hold_until,
                });
            }
            fx.push(Effect::PendingAdded { approval_id });
        }
        released
    }

    fn add_grant(&mut self, g: Grant, now: i64) {
        let grants = &mut self.state.grants;
        if !g.single_use() {
            // A standing grant replaces an identical one (fresh expiry).
            grants.retain(|o| {
                !(o.decision == g.decision
                    && o.scope == g.scope
                    && o.server == g.server
                    && o.tool == g.tool
                    && o.args_hash == g.args_hash
                    && o.session == g.session
                    && o.def_hash == g.def_hash)
            });
        }
        if grants.len() >= self.config.max_grants {
            grants.retain(|o| !o.expired(now));
        }
        if grants.len() >= self.config.max_grants {
            // Losing a grant only means asking again.
            let excess = grants.len() + 1 - self.config.max_grants.max(1);
            grants.drain(..excess.min(grants.len()));
        }
        grants.push(g);
    }

    // ---- withdrawals ----

    fn on_cancelled(&mut self, call_id: &str, now: i64, fx: &mut Vec<Effect>) {
        let Some(approval_id) = self.held.remove(call_id) else {
            return;
        };
        fx.push(resolve(call_id, Outcome::Dropped { reason: "cancelled by the client".to_owned() }));
        if let Some(at) = self.state.pending.iter().position(|p| p.id == approval_id) {
            let mut p = self.state.pending.remove(at);
            p.waiters.retain(|w| w.call_id != call_id);
            self.withdraw(p, Withdrawal::Cancelled, now, fx);
        }
    }

    fn on_def_seen(&mut self, server: &str, tool: &str, def: &str) {
        let unbound = |s: &str, t: &str, d: &Option<String>| s == server && t == tool && d.is_none();
        let bind = Some(def.to_owned());
        for g in self.state.grants.iter_mut().filter(|g| unbound(&g.server, &g.tool, &g.def_hash)) {
            g.def_hash = bind.clone();
        }
        for r in self.state.recent.iter_mut().filter(|r| unbound(&r.key.server, &r.key.tool, &r.key.def_hash)) {
            r.key.def_hash = bind.clone();
        }
        for p in self.state.pending.iter_mut().filter(|p| unbound(&p.key.server, &p.key.tool, &p.key.def_hash)) {
            p.key.def_hash = bind.clone();
        }
    }

    fn on_def_changed(&mut self, server: &str, tool: &str, new_def: &str, now: i64, fx: &mut Vec<Effect>) {
        let stale = |s: &str, t: &str, d: &Option<String>| s == server && t == tool && d.as_deref() != Some(new_def);
        self.state.grants.retain(|g| !stale(&g.server, &g.tool, &g.def_hash));
        self.state.recent.retain(|r| !stale(&r.key.server, &r.key.tool, &r.key.def_hash));
        let (gone, kept) = std::mem::take(&mut self.state.pending)
            .into_iter()
            .partition(|p| stale(&p.key.server, &p.key.tool, &p.key.def_hash));
        self.state.pending = kept;
        for p in gone {
            self.withdraw(p, Withdrawal::ToolDefChanged, now, fx);
        }
    }

    fn on_tick(&mut self, now: i64, fx: &mut Vec<Effect>) {
        self.prune_grants(now);
        let ttl = self.config.retry_ttl_ms;
        self.state.recent.retain(|r| now.saturating_sub(r.at) < ttl);
        let ttl = self.config.pending_ttl_ms;
        let (gone, kept) =
            std::mem::take(&mut self.state.pending).into_iter().partition(|p| now.saturating_sub(p.created_at) >= ttl);
        self.state.pending = kept;
        for p in gone {
            self.withdraw(p, Withdrawal::Expired, now, fx);
        }
    }

    /// Closes a pending approval (already out of the list) without an
    /// answer; its remaining waiters are denied.
    fn withdraw(&mut self, p: Pending, cause: Withdrawal, now: i64, fx: &mut Vec<Effect>) {
        let closure = Closure::Withdrawn { cause, at: now };
        self.close(&p.id, closure.clone());
        fx.push(Effect::PendingRemoved { approval_id: p.id.clone(), closure });
        let reason = match cause {
            Withdrawal::ToolDefChanged => format!(
                "approval {} withdrawn: the tool's definition changed while the call waited; \
                 retry the call to ask again",
                p.id
            ),
            cause => format!("approval {} withdrawn: {}", p.id, cause.describe()),
        };
        for w in p.waiters {
            self.held.remove(&w.call_id);
            fx.push(resolve(&w.call_id, Outcome::Deny { reason: reason.clone(), approval_id: Some(p.id.clone()) }));
        }
    }

    fn on_session_ended(&mut self, session: &str, fx: &mut Vec<Effect>) {
        self.state.grants.retain(|g| g.session.as_deref() != Some(session));
        self.state.recent.retain(|r| r.session != session);
        for p in &mut self.state.pending {
            p.sessions.remove(session);
            let before = p.waiters.len();
            p.waiters.retain(|w| {
                if w.session != session {
                    return true;
                }
                self.held.remove(&w.call_id);
                fx.push(resolve(&w.call_id, Outcome::Dropped { reason: "the session ended".to_owned() }));
                false
            });
            if p.waiters.len() != before {
                fx.push(Effect::PendingUpdated { approval_id: p.id.clone() });
            }
        }
    }

    // ---- bookkeeping ----

    fn close(&mut self, approval_id: &str, closure: Closure) {
        let closed = &mut self.state.closed;
        while closed.len() >= self.config.max_closed.max(1) {
            closed.pop_front();
        }
        closed.push_back(Closed { approval_id: approval_id.to_owned(), closure });
    }

    fn next_id(&mut self) -> String {
        loop {
            let id = id::make(self.state.next_seq, self.state.id_salt);
            self.state.next_seq = self.state.next_seq.wrapping_add(1);
            let taken =
                self.state.pending.iter().any(|p| p.id == id) || self.state.closed.iter().any(|c| c.approval_id == id);
            if !taken {
                return id;
            }
        }
    }

    fn recent_hit(&mut self, key: &CallKey, session: &str, now: i64) -> bool {
        let ttl = self.config.retry_ttl_ms;
        self.state.recent.retain(|r| now.saturating_sub(r.at) < ttl);
        self.state.recent.iter().any(|r| r.session == session && r.key == *key)
    }

    fn remember(&mut self, session: &str, key: &CallKey, now: i64) {
        let recent = &mut self.state.recent;
        recent.retain(|r| !(r.session == session && r.key == *key));
        let cap = self.config.max_recent_per_session.max(1);
        let mut mine = recent.iter().filter(|r| r.session == session).count();
        while mine >= cap {
            let Some(at) = recent.iter().position(|r| r.session == session) else {
                break;
            };
            recent.remove(at);
            mine -= 1;
        }
        while recent.len() >= self.config.max_recent.max(1) {
            recent.pop_front();
        }
        recent.push_back(Recent { session: session.to_owned(), key: key.clone(), at: now });
    }
}

fn resolve(call_id: &str, outcome: Outcome) -> Effect {
    Effect::Resolve { call_id: call_id.to_owned(), outcome }
}
