//! Money budgets: amounts read from TRANSFER_VALUE calls ([`super::money`])
//! that the policy allowed or a person approved, summed per calendar day,
//! overall and per server; a call that would go over asks or is denied,
//! as the policy says, with the sums in the reason.
//!
//! A call whose amount cannot be read gets the policy's `unknown` effect
//! (ask by default): a budget that anything without an `amount` key could
//! bypass would be no budget. An amount in a currency the budget does not
//! name is unknown too, unless the budget says which currency to assume
//! for calls that name none.
//!
//! The day is an argument (the daemon's local calendar day number), and
//! spending older than the current day is dropped, so memory is bounded
//! by the servers and currencies of one day.

use std::collections::BTreeMap;

use crate::class::Decision;
use crate::glob::Glob;

use super::money::{self, Money};
use serde_json::Value;

/// `[budget]`.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetPolicy {
    /// Per currency, for all servers together.
    pub daily: Vec<Money>,
    /// Per server (glob), per currency.
    pub servers: Vec<(Glob, Vec<Money>)>,
    /// Currency assumed when a call names none (`None`: such a call is
    /// unknown).
    pub currency: Option<String>,
    /// Servers whose integer amounts are in hundredths (Stripe's cents).
    pub minor_units: Vec<Glob>,
    /// Over budget: `ask` (default) or `deny`.
    pub over: Decision,
    /// Amount not readable: `ask` (default), `deny` or `allow`.
    pub unknown: Decision,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy {
            daily: Vec::new(),
            servers: Vec::new(),
            currency: None,
            minor_units: vec![Glob::new("stripe*").expect("glob")],
            over: Decision::Ask,
            unknown: Decision::Ask,
        }
    }
}

/// What the budget says of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Within every budget; [`Spend::record`] these amounts once the call
    /// is allowed or approved.
    Within(Vec<Money>),
    /// Over a budget, or not readable: the effect and why.
    Refused { effect: Decision, reason: String, amounts: Vec<Money> },
}

/// One day's spending (the daemon keeps one, across policy reloads).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spend {
    day: u64,
    /// (server, currency) → millionths spent today.
    by_server: BTreeMap<(String, String), i128>,
}

impl Spend {
    fn roll(&mut self, day: u64) {
        if day != self.day {
            self.day = day;
            self.by_server.clear();
        }
    }

    /// Spent today on `server` (or on all servers matching `glob`).
    fn spent(&self, currency: &str, server: impl Fn(&str) -> bool) -> i128 {
        self.by_server.iter().filter(|((s, c), _)| c == currency && server(s)).map(|(_, m)| m).sum()
    }

    /// Checks a TRANSFER_VALUE call of `server` with `args` on `day`.
    pub fn check(&mut self, p: &BudgetPolicy, server: &str, args: &Value, day: u64) -> Check {
        self.roll(day);
        let minor = p.minor_units.iter().any(|g| g.is_match(server));
        let mut amounts = money::amounts(args, minor);
        for m in &mut amounts {
            if let (true, Some(c)) = (m.currency == "?", &p.currency) {
                m.currency = c.clone();
            }
        }
        let known = |c: &str| {
            p.daily.iter().any(|m| m.currency == c)
                || p.servers.iter().any(|(g, l)| g.is_match(server) && l.iter().any(|m| m.currency == c))
        };
        if amounts.is_empty() {
            return refuse(p.unknown, "the amount of this payment could not be read from its arguments", amounts);
        }
        if let Some(m) = amounts.iter().find(|m| !known(&m.currency)) {
            let reason = if m.currency == "?" {
                format!(
                    "the payment of {} names no currency, and the budget assumes none",
                    money::show(m.micros, "(no currency)")
                )
            } else {
                format!("the budget has no limit in {} for this server", m.currency)
            };
            return refuse(p.unknown, &reason, amounts);
        }
        for m in &amounts {
            if m.micros < 0 {
                return refuse(p.unknown, "a negative amount cannot be counted against the budget", amounts);
            }
            if let Some(limit) = p.daily.iter().find(|l| l.currency == m.currency) {
                let spent = self.spent(&m.currency, |_| true);
                if spent + m.micros > limit.micros {
                    let reason = over_reason(m, spent, limit, "the daily budget");
                    return refuse(p.over, &reason, amounts);
                }
            }
            for (g, limits) in &p.servers {
                if !g.is_match(server) {
                    continue;
                }
                if let Some(limit) = limits.iter().find(|l| l.currency == m.currency) {
                    let spent = self.spent(&m.currency, |s| g.is_match(s));
                    if spent + m.micros > limit.micros {
                        let reason = over_reason(m, spent, limit, &format!("the daily budget of {}", g.as_str()));
                        return refuse(p.over, &reason, amounts);
                    }
                }
            }
        }
        Check::Within(amounts)
    }

    /// Counts an allowed or approved payment.
    pub fn record(&mut self, server: &str, amounts: &[Money], day: u64) {
        self.roll(day);
        for m in amounts {
            *self.by_server.entry((server.to_owned(), m.currency.clone())).or_insert(0) += m.micros.max(0);
        }
    }
}

fn refuse(effect: Decision, reason: &str, amounts: Vec<Money>) -> Check {
    Check::Refused { effect, reason: reason.to_owned(), amounts }
}

fn over_reason(m: &Money, spent: i128, limit: &Money, which: &str) -> String {
    format!(
        "this payment of {} would bring today's spending to {}, over {which} of {}",
        m.show(),
        money::show(spent + m.micros, &m.currency),
        limit.show()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usd(units: i128) -> Money {
        Money { currency: "USD".into(), micros: units * money::SCALE }
    }

    fn policy() -> BudgetPolicy {
        BudgetPolicy {
            daily: vec![usd(100)],
            servers: vec![(Glob::new("shop").unwrap(), vec![usd(30)])],
            ..BudgetPolicy::default()
        }
    }

    #[test]
    fn sums_per_day_and_server() {
        let p = policy();
        let mut s = Spend::default();
        let pay = |n: i64| json!({"amount": n, "currency": "USD"});
        let Check::Within(a) = s.check(&p, "shop", &pay(20), 1) else { panic!() };
        s.record("shop", &a, 1);
        match s.check(&p, "shop", &pay(15), 1) {
            Check::Refused { effect, reason, .. } => {
                assert_eq!(effect, Decision::Ask);
                assert_eq!(
                    reason,
                    "this payment of 15.00 USD would bring today's spending to 35.00 USD, over the daily budget of shop of 30.00 USD"
                );
            }
            c => panic!("{c:?}"),
        }
        // Another server still has the overall budget.
        let Check::Within(a) = s.check(&p, "bank", &pay(70), 1) else { panic!() };
        s.record("bank", &a, 1);
        assert!(matches!(s.check(&p, "bank", &pay(11), 1), Check::Refused { .. }));
        // A new day starts from zero.
        assert!(matches!(s.check(&p, "shop", &pay(30), 2), Check::Within(_)));
    }

    #[test]
    fn unreadable_or_foreign_amounts_are_unknown() {
        let p = policy();
        let mut s = Spend::default();
        for args in [
            json!({"payment_intent": "pi_1"}),
            json!({"amount": 5}),
            json!({"amount": 5, "currency": "EUR"}),
            json!({"amount": -5, "currency": "USD"}),
        ] {
            match s.check(&p, "shop", &args, 1) {
                Check::Refused { effect, .. } => assert_eq!(effect, Decision::Ask, "{args}"),
                c => panic!("{args}: {c:?}"),
            }
        }
        // An assumed currency makes a bare amount count.
        let p = BudgetPolicy { currency: Some("USD".into()), ..policy() };
        assert!(matches!(s.check(&p, "shop", &json!({"amount": 5}), 1), Check::Within(_)));
    }

    #[test]
    fn stripe_counts_cents_and_deny_is_honoured() {
        let p = BudgetPolicy { over: Decision::Deny, ..policy() };
        let mut s = Spend::default();
        let Check::Within(a) = s.check(&p, "stripe", &json!({"amount": 9000, "currency": "usd"}), 1) else { panic!() };
        assert_eq!(a, vec![usd(90)]);
        s.record("stripe", &a, 1);
        match s.check(&p, "stripe", &json!({"amount": 1001, "currency": "usd"}), 1) {
            Check::Refused { effect: Decision::Deny, .. } => {}
            c => panic!("{c:?}"),
        }
    }
}
