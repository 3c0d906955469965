//! Rate limits per server, tool and class: calls per minute and per hour
//! over a sliding window, with the reason for the deny text.
//!
//! Each `[[limits]]` entry counts the calls it selects together (write one
//! entry per server for per-server limits). The windows are rings of
//! buckets (60 one-second buckets for a minute, 60 one-minute buckets for
//! an hour), so memory is fixed per limit whatever the call rate, and the
//! count is exact to the bucket. Only admitted calls count: a refused call
//! does not extend its own lock-out.

use crate::class::Decision;

use super::taint::{CallFacts, Selector};

/// One `[[limits]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    pub select: Selector,
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    /// `deny` (default) or `ask`.
    pub effect: Decision,
    /// `limit "NAME"`, or `limits #N (line L)`.
    pub label: String,
}

/// A limit a call would exceed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// Index of the limit in the policy's list.
    pub limit: usize,
    pub effect: Decision,
    /// "30 calls in the last minute already (limit 30 a minute, set by
    /// limits #1 (line 12))".
    pub reason: String,
}

/// A ring of `N` buckets of `width` seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ring {
    width: u64,
    /// (bucket number, count), indexed by bucket number modulo the length.
    buckets: Vec<(u64, u32)>,
}

const BUCKETS: usize = 60;

impl Ring {
    fn new(width: u64) -> Ring {
        Ring { width, buckets: vec![(u64::MAX, 0); BUCKETS] }
    }

    /// Calls in the window that ends at `now` (inclusive of `now`'s bucket).
    fn count(&self, now: u64) -> u32 {
        let b = now / self.width;
        let oldest = b.saturating_sub(BUCKETS as u64 - 1);
        self.buckets.iter().filter(|(n, _)| *n != u64::MAX && *n >= oldest && *n <= b).map(|(_, c)| c).sum()
    }

    fn add(&mut self, now: u64) {
        let b = now / self.width;
        let slot = &mut self.buckets[(b % BUCKETS as u64) as usize];
        if slot.0 != b {
            *slot = (b, 0);
        }
        slot.1 = slot.1.saturating_add(1);
    }
}

/// The counters of one policy's limits (the daemon keeps one, and makes a
/// new one when the limits change).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    rings: Vec<(Ring, Ring)>,
}

impl Rates {
    pub fn new(limits: &[Limit]) -> Rates {
        Rates { rings: limits.iter().map(|_| (Ring::new(1), Ring::new(60))).collect() }
    }

    /// Admits the call and counts it against every limit that selects it,
    /// or returns the first limit it would exceed (and counts nothing).
    /// `ask` limits come after `deny` ones only in file order: the first
    /// exceeded decides.
    pub fn admit(&mut self, limits: &[Limit], c: &CallFacts<'_>) -> Result<(), Exceeded> {
        if self.rings.len() != limits.len() {
            *self = Rates::new(limits);
        }
        let now = c.at;
        for (i, l) in limits.iter().enumerate() {
            if !l.select.matches(c) {
                continue;
            }
            let (minute, hour) = &self.rings[i];
            let checks = [
                (l.per_minute, minute.count(now), "minute", "a minute"),
                (l.per_hour, hour.count(now), "hour", "an hour"),
            ];
            for (max, n, unit, per) in checks {
                if let Some(max) = max.filter(|&m| n >= m) {
                    return Err(Exceeded {
                        limit: i,
                        effect: l.effect,
                        reason: format!(
                            "{n} call{} in the last {unit} already (limit {max} {per}, set by {})",
                            if n == 1 { "" } else { "s" },
                            l.label
                        ),
                    });
                }
            }
        }
        for (i, l) in limits.iter().enumerate() {
            if l.select.matches(c) {
                self.rings[i].0.add(now);
                self.rings[i].1.add(now);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::{Class, Flags};
    use crate::glob::Glob;

    fn limit(server: &str, per_minute: Option<u32>, per_hour: Option<u32>) -> Limit {
        Limit {
            select: Selector { class: None, flags: vec![], server: Some(Glob::new(server).unwrap()), tool: None },
            per_minute,
            per_hour,
            effect: Decision::Deny,
            label: "limits #1 (line 3)".into(),
        }
    }

    fn call<'a>(server: &'a str, flags: &'a Flags, at: u64) -> CallFacts<'a> {
        CallFacts { server, tool: "t", class: Class::Read, flags, target: None, at }
    }

    #[test]
    fn per_minute_slides() {
        let f = Flags::new();
        let limits = [limit("github", Some(3), None)];
        let mut r = Rates::new(&limits);
        let t0 = 1_000_000;
        for i in 0..3 {
            r.admit(&limits, &call("github", &f, t0 + i * 10)).unwrap();
        }
        let e = r.admit(&limits, &call("github", &f, t0 + 30)).unwrap_err();
        assert_eq!(e.reason, "3 calls in the last minute already (limit 3 a minute, set by limits #1 (line 3))");
        assert_eq!(e.effect, Decision::Deny);
        // Other servers are not counted.
        r.admit(&limits, &call("slack", &f, t0 + 30)).unwrap();
        // Refused calls do not count; at t0+60 the first call left the window.
        assert!(r.admit(&limits, &call("github", &f, t0 + 59)).is_err());
        r.admit(&limits, &call("github", &f, t0 + 60)).unwrap();
        assert!(r.admit(&limits, &call("github", &f, t0 + 61)).is_err());
    }

    #[test]
    fn per_hour_and_memory_stay_bounded() {
        let f = Flags::new();
        let limits = [limit("*", None, Some(100))];
        let mut r = Rates::new(&limits);
        let t0 = 5_000_000;
        for i in 0..100 {
            r.admit(&limits, &call("a", &f, t0 + i * 30)).unwrap();
        }
        let e = r.admit(&limits, &call("b", &f, t0 + 3000)).unwrap_err();
        assert!(e.reason.contains("limit 100 an hour"), "{}", e.reason);
        // An hour after the first calls, they have left the window.
        r.admit(&limits, &call("b", &f, t0 + 3600)).unwrap();
        // A flood costs no memory.
        for i in 0..100_000u64 {
            let _ = r.admit(&limits, &call("a", &f, t0 + 10_000 + i));
        }
        assert_eq!(r.rings[0].0.buckets.len(), BUCKETS);
        assert_eq!(r.rings[0].1.buckets.len(), BUCKETS);
    }

    #[test]
    fn a_time_jump_backwards_does_not_panic_or_free_calls() {
        let f = Flags::new();
        let limits = [limit("*", Some(1), None)];
        let mut r = Rates::new(&limits);
        r.admit(&limits, &call("a", &f, 10_000)).unwrap();
        assert!(r.admit(&limits, &call("a", &f, 10_000)).is_err());
        let _ = r.admit(&limits, &call("a", &f, 5));
        let _ = r.admit(&limits, &call("a", &f, 0));
    }
}
