//! The data of the "always" scope picker and the rules view: what
//! [`super::state::Mode`] holds. A leaf: it imports nothing of the app.

use latch_core::Decision;
use latch_core::policy::narrow::{self, Offer};
use latch_core::policy::{NewRule, origin, rule_block};
use latch_proto::{PendingItem, RuleInfo};

/// The scope picker of an "always" approval.
#[derive(Clone, Debug, PartialEq)]
pub struct AlwaysPick {
    pub item: PendingItem,
    pub offers: Vec<Offer>,
    /// Index into `offers`.
    pub sel: usize,
    /// The calls of this tool asked in the last week (as the log keeps
    /// them), once the daemon answered: how many, and per offer how many
    /// it would have allowed (`None` where the log cannot tell: domains).
    pub asked: Option<(usize, Vec<Option<usize>>)>,
    /// The request that fetches them.
    pub(super) asked_req: Option<u64>,
}

impl AlwaysPick {
    pub fn new(item: PendingItem) -> AlwaysPick {
        let offers = narrow::offers(&item.server, &item.tool, &item.args);
        AlwaysPick { item, offers, sel: 0, asked: None, asked_req: None }
    }

    pub fn chosen(&self) -> &Offer {
        &self.offers[self.sel.min(self.offers.len() - 1)]
    }

    /// The rule text the chosen scope writes, as the daemon will write it
    /// (the time is the moment it is saved).
    pub fn rule_text(&self, who: &str, now_ms: i64) -> String {
        let rule = NewRule {
            server: self.item.server.clone(),
            tool: self.item.tool.clone(),
            effect: Decision::Allow,
            comment: origin::comment(Some(&format!("tui:{who}")), &self.item.id, &utc(now_ms)),
            insert_before: None,
            narrow: self.chosen().narrowing.clone(),
        };
        rule_block(&rule)
    }
}

pub(super) const WEEK_MS: i64 = 7 * 86_400_000;
/// Most rows read for the count.
pub(super) const ASKED_LIMIT: u32 = 1_000;

/// `2026-11-24 15:30 UTC`.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = latch_proto::civil::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3_600, rem % 3_600 / 60)
}

/// The rules view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RulesView {
    /// `None` until the daemon answered.
    pub rules: Option<Vec<RuleInfo>>,
    pub error: Option<String>,
    pub sel: usize,
    /// `d` was pressed: `y` deletes the selected rule.
    pub confirm: bool,
}

impl RulesView {
    pub fn selected(&self) -> Option<&RuleInfo> {
        self.rules.as_ref()?.get(self.sel)
    }
}
