//! The lethal trifecta on live traffic (issue 18): one
//! [`latch_core::threat::taint::Taint`] per agent session, fed by the calls
//! that ran (allowed, or approved by a person), and checked on every call
//! the policy did not deny.
//!
//! **Sessions.** MCP calls and hooked built-in tools of one agent count
//! together ([`agent`]): a shim's session is the agent process that started
//! it (all of its MCP servers together); a hook's is the agent's own
//! session id, joined to that agent process when the hook's ancestors
//! include it — then whatever either recorded counts for both. Taint is
//! kept in the daemon's memory only: a restarted daemon starts every
//! session clean (the agent's context still holds what it read; see
//! docs/security/threats.md).
//!
//! **Sources** are the policy's `[threats.taint]` untrusted and private
//! selectors (open-world reads; `secret_read`); they count once the call
//! ran: at once when allowed, when a person approves it when it asked.
//! **Sinks** get the policy's effect (ask by default) with the chain as the
//! reason, the stricter of it and the policy's decision.

mod agent;
pub(crate) mod calls;
mod target;

use std::collections::HashMap;
use std::sync::Arc;

use latch_core::Flags;
use latch_core::class::{Class, Decision};
use latch_core::threat::gate;
use latch_core::threat::taint::{CallFacts, Chain, Source, Taint, TaintPolicy};
use latch_proto::{Event, TaintReport};
use serde_json::Value;

use crate::waiting::Waiting;

pub(crate) use agent::Who;

/// Sessions kept; the one used longest ago is forgotten beyond this.
const MAX_SESSIONS: usize = 4096;
/// Calls waiting for a person whose reads count if approved.
const MAX_WAITING: usize = 4096;
/// Shim connections whose agent is remembered (a cache).
const MAX_CONNS: usize = 4096;

/// One session's taint, and what the console calls it.
struct Entry {
    taint: Taint,
    label: String,
    used: i64,
}

/// A call's reads, to record once it runs.
pub(crate) struct Ran {
    key: String,
    label: String,
    server: String,
    tool: String,
    class: Class,
    flags: Flags,
    target: Option<String>,
    at: u64,
}

/// Every session's taint, per daemon, in memory.
#[derive(Default)]
pub(crate) struct Sessions {
    taints: HashMap<String, Entry>,
    /// Agent processes shims were started by (their session keys).
    agents: HashMap<String, i64>,
    /// Hook sessions found to be an agent process's: hook key → agent key.
    links: HashMap<String, String>,
    /// Hook sessions not joined yet, with their ancestors' keys.
    unlinked: HashMap<String, Vec<String>>,
    waiting: Waiting<Ran, MAX_WAITING>,
    conns: HashMap<u64, Arc<Who>>,
}

/// One call as the check needs it.
pub(crate) struct Call<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub args: &'a Value,
    pub class: Class,
    pub flags: &'a Flags,
    pub now_ms: i64,
}

/// What the check says: the trifecta's say, if the call is a sink in a
/// tainted session, and the reads to record if the call runs.
pub(crate) struct Checked {
    pub say: Option<gate::Say>,
    pub ran: Option<Ran>,
}

impl Sessions {
    /// The session key of `who` and its label, joining a hook's session
    /// to its agent's when the hook descends from an agent process whose
    /// shims spoke (whichever of the two speaks first).
    fn key(&mut self, who: &Who, now_ms: i64) -> (String, String) {
        match who {
            Who::Shim { agent: Some((p, name)), .. } => {
                let key = p.key();
                if !self.agents.contains_key(&key) {
                    if self.agents.len() >= MAX_SESSIONS {
                        forget_oldest(&mut self.agents, |t| *t);
                    }
                    let hooks: Vec<String> =
                        self.unlinked.iter().filter(|(_, a)| a.contains(&key)).map(|(h, _)| h.clone()).collect();
                    for h in hooks {
                        self.unlinked.remove(&h);
                        self.link(&h, &key, now_ms);
                    }
                }
                self.agents.insert(key.clone(), now_ms);
                (key, format!("agent {name} (pid {})", p.pid))
            }
            Who::Shim { agent: None, session } => (format!("shim:{session}"), format!("shim session {session}")),
            Who::Hook { session, ancestors } => {
                let own = format!("hook:{session}");
                let label = format!("{session} (hook)");
                if let Some(k) = self.links.get(&own) {
                    return (k.clone(), label);
                }
                let keys: Vec<String> = ancestors.iter().map(|p| p.key()).collect();
                match keys.iter().find(|k| self.agents.contains_key(*k)) {
                    Some(agent) => {
                        let agent = agent.clone();
                        self.unlinked.remove(&own);
                        self.link(&own, &agent, now_ms);
                        (agent, label)
                    }
                    None => {
                        if self.unlinked.len() >= MAX_SESSIONS && !self.unlinked.contains_key(&own) {
                            self.unlinked.clear();
                        }
                        self.unlinked.insert(own.clone(), keys);
                        (own, label)
                    }
                }
            }
        }
    }

    /// Joins the hook session `hook` to the agent session `agent`: what
    /// the hook's session recorded counts for the agent's.
    fn link(&mut self, hook: &str, agent: &str, now_ms: i64) {
        if self.links.len() >= MAX_SESSIONS {
            self.links.clear();
        }
        self.links.insert(hook.to_owned(), agent.to_owned());
        if let Some(e) = self.taints.remove(hook) {
            let label = e.label.clone();
            self.entry(agent, &label, now_ms).taint.merge(e.taint);
        }
        for r in self.waiting.values_mut().filter(|r| r.key == hook) {
            r.key = agent.to_owned();
        }
    }

    fn entry(&mut self, key: &str, label: &str, now_ms: i64) -> &mut Entry {
        if !self.taints.contains_key(key) && self.taints.len() >= MAX_SESSIONS {
            // A session that read both is forgotten last: flooding sessions
            // must not wash a tainted one out.
            forget_oldest(&mut self.taints, |e| (e.taint.is_tainted(), e.used));
        }
        let e = self.taints.entry(key.to_owned()).or_insert_with(|| Entry {
            taint: Taint::default(),
            label: label.to_owned(),
            used: now_ms,
        });
        e.used = now_ms;
        e
    }

    /// Checks a call the policy did not deny (`deciding`), and notes its
    /// reads to record if it runs.
    pub(crate) fn check(&mut self, p: &TaintPolicy, who: &Who, c: &Call<'_>, deciding: bool) -> Checked {
        let (key, label) = self.key(who, c.now_ms);
        let at = (c.now_ms.max(0) / 1000) as u64;
        let bare = CallFacts { server: c.server, tool: c.tool, class: c.class, flags: c.flags, target: None, at };
        let source = p.untrusted.iter().chain(&p.private).any(|s| s.matches(&bare));
        let tainted = deciding && self.taints.get(&key).is_some_and(|e| e.taint.is_tainted());
        // The arguments are read only when it matters: most calls are
        // neither a source nor made in a tainted session.
        if !source && !tainted {
            return Checked { say: None, ran: None };
        }
        let home = std::env::var("HOME").ok();
        let target = target::of(c.args, home.as_deref());
        let facts = CallFacts { target: target.as_deref(), ..bare };
        let say = match self.taints.get(&key) {
            Some(e) if tainted => chain(&e.taint, p, &facts, c.args).map(|ch| gate::trifecta(&ch, utc_offset(at))),
            _ => None,
        };
        let ran = source.then(|| Ran {
            key,
            label,
            server: c.server.to_owned(),
            tool: c.tool.to_owned(),
            class: c.class,
            flags: c.flags.clone(),
            target,
            at,
        });
        Checked { say, ran }
    }

    /// The call was decided: its reads count now when it runs, when a
    /// person approves it when it waits.
    pub(crate) fn decided(
        &mut self,
        p: &TaintPolicy,
        call_id: &str,
        decision: latch_proto::Decision,
        ran: Option<Ran>,
    ) -> Option<Event> {
        let ran = ran?;
        match decision {
            latch_proto::Decision::Allow => self.record(p, ran),
            latch_proto::Decision::Ask => {
                self.waiting.insert(call_id, ran);
                None
            }
            latch_proto::Decision::Deny => None,
        }
    }

    /// A waiting call was answered (or ran by the agent's own dialog).
    pub(crate) fn settled(&mut self, p: &TaintPolicy, call_id: &str, ran: bool) -> Option<Event> {
        let r = self.waiting.remove(call_id)?;
        if ran { self.record(p, r) } else { None }
    }

    /// Records the reads of a call that ran; the console's event when the
    /// session's taint changed.
    fn record(&mut self, p: &TaintPolicy, r: Ran) -> Option<Event> {
        let facts = CallFacts {
            server: &r.server,
            tool: &r.tool,
            class: r.class,
            flags: &r.flags,
            target: r.target.as_deref(),
            at: r.at,
        };
        let key = r.key.clone();
        let e = self.entry(&key, &r.label, (r.at as i64) * 1000);
        let before = (e.taint.untrusted().is_some(), e.taint.private().is_some());
        let got = e.taint.observe(p, &facts);
        let after = (e.taint.untrusted().is_some(), e.taint.private().is_some());
        if got.is_empty() || before == after {
            return None;
        }
        debug_assert!(got.iter().all(|s| matches!(s, Source::Untrusted | Source::Private)));
        Some(Event::Taint { session: report(&key, e) })
    }

    /// Every session with a read recorded, the latest used first.
    pub(crate) fn reports(&self) -> Vec<TaintReport> {
        let mut v: Vec<(&String, &Entry)> =
            self.taints.iter().filter(|(_, e)| e.taint.untrusted().is_some() || e.taint.private().is_some()).collect();
        v.sort_by(|a, b| b.1.used.cmp(&a.1.used).then(a.0.cmp(b.0)));
        v.into_iter().map(|(k, e)| report(k, e)).collect()
    }
}

fn report(key: &str, e: &Entry) -> TaintReport {
    let ev = |x: Option<&latch_core::threat::taint::Event>| x.map(|x| (x.at as i64 * 1000, x.label.clone()));
    TaintReport {
        key: key.to_owned(),
        label: e.label.clone(),
        untrusted: ev(e.taint.untrusted()),
        private: ev(e.taint.private()),
        tainted: e.taint.is_tainted(),
    }
}

/// The chain for a sink: the call's target first, then every URL in its
/// arguments (a fetch leaks by any of them).
fn chain(t: &Taint, p: &TaintPolicy, facts: &CallFacts<'_>, args: &Value) -> Option<Chain> {
    if p.effect == Decision::Allow {
        return None;
    }
    if let Some(c) = t.check(p, facts) {
        return Some(c);
    }
    if let Some(c) = target::urls(args).iter().find_map(|u| t.check(p, &CallFacts { target: Some(u), ..*facts })) {
        return Some(c);
    }
    // An untrusted read with more text in one argument than is read for
    // URLs (4 KiB): what was not read may carry data.
    let (untrusted, private) = (t.untrusted()?.clone(), t.private()?.clone());
    let n = target::longest_unread(args).filter(|_| p.untrusted.iter().any(|s| s.matches(facts)))?;
    let now = format!("reads with {} {} and {n} bytes in one argument, which can carry data", facts.server, facts.tool);
    Some(Chain { untrusted, private, now, effect: p.effect })
}

fn forget_oldest<V, K: Ord>(map: &mut HashMap<String, V>, used: impl Fn(&V) -> K) {
    if let Some(k) = map.iter().min_by_key(|(_, v)| used(v)).map(|(k, _)| k.clone()) {
        map.remove(&k);
    }
}

/// The local time's offset from UTC at `secs`, for the chain's times.
fn utc_offset(secs: u64) -> i64 {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() { 0 } else { tm.tm_gmtoff }
    }
}

#[cfg(test)]
mod tests;
