//! The judge's answers by call, and the client they came from.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use latch_core::policy::JudgeConf;

/// What identifies one answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub rule: String,
    pub condition: String,
    pub server: String,
    pub tool: String,
    pub args_hash: String,
}

struct Entry {
    holds: bool,
    reason: String,
    at: Instant,
    seq: u64,
}

/// Answers by [`Key`], bounded in number (the oldest goes first) and in
/// age. Time comes in as an argument.
pub struct Cache {
    map: HashMap<Key, Entry>,
    order: VecDeque<(Key, u64)>,
    seq: u64,
    capacity: usize,
    ttl: Duration,
}

impl Cache {
    pub fn new(capacity: usize, ttl: Duration) -> Cache {
        Cache { map: HashMap::new(), order: VecDeque::new(), seq: 0, capacity, ttl }
    }

    /// A fresh answer: (holds, reason).
    pub fn get(&mut self, key: &Key, now: Instant) -> Option<(bool, String)> {
        let e = self.map.get(key)?;
        if now.saturating_duration_since(e.at) >= self.ttl {
            self.map.remove(key);
            return None;
        }
        Some((e.holds, e.reason.clone()))
    }

    pub fn insert(&mut self, key: Key, holds: bool, reason: String, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        self.map.insert(key.clone(), Entry { holds, reason, at: now, seq });
        self.order.push_back((key, seq));
        while self.map.len() > self.capacity {
            let Some((old, s)) = self.order.pop_front() else { break };
            // Only the latest insertion of a key evicts it.
            if self.map.get(&old).is_some_and(|e| e.seq == s) {
                self.map.remove(&old);
            }
        }
        // Stale queue entries (keys inserted again) are dropped lazily.
        if self.order.len() > 2 * self.capacity.max(16) {
            let map = &self.map;
            self.order.retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The daemon's judge: an HTTP client and a cache for the `[judge]`
/// section in force (both are rebuilt when that section changes).
pub struct Judge {
    pub(super) conf: Option<JudgeConf>,
    http: Option<reqwest::Client>,
    pub(super) cache: Cache,
}

impl Default for Judge {
    fn default() -> Self {
        Judge { conf: None, http: None, cache: Cache::new(0, Duration::ZERO) }
    }
}

impl Judge {
    /// Makes the client and cache fit `conf`; returns a client handle.
    pub(super) fn prepare(&mut self, conf: &JudgeConf) -> Result<reqwest::Client, String> {
        if self.conf.as_ref() != Some(conf) || self.http.is_none() {
            self.http = Some(super::ask::client(conf)?);
            self.cache = Cache::new(conf.cache_size, Duration::from_secs(conf.cache_ttl_seconds));
            self.conf = Some(conf.clone());
        }
        Ok(self.http.clone().expect("just built"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> Key {
        Key { rule: "r".into(), condition: "c".into(), server: "s".into(), tool: "t".into(), args_hash: n.into() }
    }

    #[test]
    fn the_cache_returns_fresh_answers_and_forgets_old_ones() {
        let t0 = Instant::now();
        let mut c = Cache::new(10, Duration::from_secs(60));
        assert_eq!(c.get(&k("a"), t0), None);
        c.insert(k("a"), true, "why".into(), t0);
        assert_eq!(c.get(&k("a"), t0 + Duration::from_secs(59)), Some((true, "why".into())));
        assert_eq!(c.get(&k("b"), t0), None, "other arguments are another question");
        assert_eq!(c.get(&k("a"), t0 + Duration::from_secs(60)), None, "expired");
        assert!(c.is_empty(), "an expired answer is dropped");
    }

    #[test]
    fn the_cache_keeps_at_most_its_size_dropping_the_oldest() {
        let t0 = Instant::now();
        let mut c = Cache::new(2, Duration::from_secs(60));
        c.insert(k("a"), true, String::new(), t0);
        c.insert(k("b"), false, String::new(), t0);
        c.insert(k("a"), false, "again".into(), t0);
        c.insert(k("c"), true, String::new(), t0);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&k("b"), t0), None, "b is the oldest");
        assert_eq!(c.get(&k("a"), t0), Some((false, "again".into())));
        assert!(c.get(&k("c"), t0).is_some());
        for i in 0..1000 {
            c.insert(k(&i.to_string()), true, String::new(), t0);
        }
        assert_eq!(c.len(), 2);
        assert!(c.order.len() <= 2 * 16 + 1, "the queue stays bounded: {}", c.order.len());
        let mut off = Cache::new(0, Duration::from_secs(60));
        off.insert(k("a"), true, String::new(), t0);
        assert!(off.is_empty(), "cache_size = 0 keeps nothing");
    }
}
