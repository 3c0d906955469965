//! The threat checks of issue 18 that the decision path runs on each call
//! the policy did not deny: rate limits (`[[limits]]`) and money budgets
//! (`[budget]`), from `latch_core::threat`. Their counters live in the
//! daemon's memory only: a restart starts them from zero.
//!
//! A budget counts a payment only once it runs: at once when the call is
//! allowed, when a person approves it when it asks (see
//! [`crate::driver`]), never when it is denied.

use latch_core::threat::budget::{self, Spend};
use latch_core::threat::gate::{self, Say};
use latch_core::threat::limits::Rates;
use latch_core::threat::money::Money;
use latch_core::threat::taint::CallFacts;
use latch_core::{Class, Flags, Policy};
use serde_json::Value;

use crate::waiting::Waiting;

/// Most payments that wait for a person at once, to be counted if they
/// are approved; the oldest is forgotten beyond this.
const MAX_WAITING: usize = 4096;

/// The counters, per daemon.
#[derive(Default)]
pub(crate) struct Counters {
    rates: Rates,
    spend: Spend,
    /// Payments of calls that wait for a person: (server, amounts) by call id.
    waiting: Waiting<(String, Vec<Money>), MAX_WAITING>,
}

/// One call's facts for the checks.
pub(crate) struct Facts<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub args: &'a Value,
    pub class: Class,
    pub flags: &'a Flags,
    pub now_ms: i64,
}

/// What the checks say of a call, and the payment to count if it runs.
pub(crate) struct Verdict {
    pub say: Option<Say>,
    pub payment: Option<Vec<Money>>,
}

impl Counters {
    /// Runs the rate limits and, for a TRANSFER_VALUE call under a
    /// `[budget]`, the budget. A call within its limits is counted against
    /// them now.
    pub(crate) fn check(&mut self, policy: &Policy, f: &Facts<'_>) -> Verdict {
        let t = policy.threats();
        let at = (f.now_ms.max(0) / 1000) as u64;
        let facts = CallFacts { server: f.server, tool: f.tool, class: f.class, flags: f.flags, target: None, at };
        let rate = if t.limits.is_empty() {
            None
        } else {
            self.rates.admit(&t.limits, &facts).err().map(|e| gate::rate_limit(&e))
        };
        let (money, payment) = match (&t.budget, f.class) {
            (Some(b), Class::TransferValue) => {
                let check = self.spend.check(b, f.server, f.args, local_day(f.now_ms));
                let amounts = match &check {
                    budget::Check::Within(a) => a.clone(),
                    budget::Check::Refused { amounts, .. } => amounts.clone(),
                };
                (gate::budget(&check), Some(amounts))
            }
            _ => (None, None),
        };
        Verdict { say: gate::strictest(rate.into_iter().chain(money)), payment }
    }

    /// A payment that ran (allowed, or approved).
    pub(crate) fn spent(&mut self, server: &str, amounts: &[Money], now_ms: i64) {
        self.spend.record(server, amounts, local_day(now_ms));
    }

    /// A payment that waits for a person.
    pub(crate) fn wait(&mut self, call_id: &str, server: &str, amounts: Vec<Money>) {
        self.waiting.insert(call_id, (server.to_owned(), amounts));
    }

    /// A waiting call was answered: counted when `ran`, forgotten either way.
    pub(crate) fn settled(&mut self, call_id: &str, ran: bool, now_ms: i64) {
        if let Some((server, amounts)) = self.waiting.remove(call_id)
            && ran
        {
            self.spent(&server, &amounts, now_ms);
        }
    }
}

/// The local calendar day number of `now_ms` (UTC when the offset is
/// unknown).
fn local_day(now_ms: i64) -> u64 {
    let secs = now_ms.max(0) / 1000;
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the call.
    let offset = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() { 0 } else { tm.tm_gmtoff }
    };
    ((secs + offset).max(0) / 86_400) as u64
}
