//! What the threat checks say about one call, as an effect and a reason
//! ready for the deny text, the approval and the log — so that wiring them
//! in is one call per check and [`strictest`] to combine them with the
//! policy's own decision.
//!
//! Reasons never name a command the agent could run: a person decides in
//! Latch. This module takes effects as arguments (from
//! [`crate::policy::ThreatPolicy`]) rather than the policy itself, so that
//! `threat` does not depend on `policy`.

use serde::Serialize;

use super::pin::Change;
use super::taint::Chain;
use super::{Finding, FindingKind};
use crate::class::Decision;

/// Which check spoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    ChangedTool,
    PoisonedTool,
    Trifecta,
    RateLimit,
    Budget,
}

/// One check's say on a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Say {
    pub check: Check,
    pub effect: Decision,
    pub reason: String,
}

/// Most parts named in one reason.
const MAX_NAMED: usize = 4;

/// A call to a tool whose definition differs from its pin.
pub fn changed_tool(effect: Decision, tool: &str, changes: &[Change]) -> Say {
    let mut parts: Vec<String> = changes
        .iter()
        .take(MAX_NAMED)
        .map(|c| if c.less_cautious { format!("{} (less cautious)", c.detail) } else { c.detail.clone() })
        .collect();
    if changes.len() > MAX_NAMED {
        parts.push(format!("{} more", changes.len() - MAX_NAMED));
    }
    let what = if parts.is_empty() { "it changed".to_owned() } else { parts.join("; ") };
    Say {
        check: Check::ChangedTool,
        effect,
        reason: format!(
            "the definition of tool {tool:?} changed since it was first seen ({what}); a person must accept the new \
             definition in Latch"
        ),
    }
}

/// A call to a tool whose definition has findings ([`super::describe`]).
/// `None` when there are none or the policy allows such tools.
pub fn poisoned_tool(effect: Decision, tool: &str, findings: &[Finding]) -> Option<Say> {
    if findings.is_empty() || effect == Decision::Allow {
        return None;
    }
    let mut reasons: Vec<String> = Vec::new();
    for f in findings {
        let r = match f.kind {
            FindingKind::SameName | FindingKind::NamesOtherTool => f.reason.clone(),
            _ => format!("{} ({})", f.reason, f.place),
        };
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    let more = reasons.len().saturating_sub(MAX_NAMED);
    reasons.truncate(MAX_NAMED);
    if more > 0 {
        reasons.push(format!("{more} more"));
    }
    Some(Say {
        check: Check::PoisonedTool,
        effect,
        reason: format!(
            "the definition of tool {tool:?} is suspect: {}; a person must decide in Latch",
            reasons.join("; ")
        ),
    })
}

/// A sink call in a tainted session ([`super::taint::Taint::check`]).
pub fn trifecta(chain: &Chain, utc_offset: i64) -> Say {
    Say {
        check: Check::Trifecta,
        effect: chain.effect,
        reason: format!(
            "this could carry private data out after untrusted content was read: {}; a person must decide in Latch",
            chain.render(utc_offset)
        ),
    }
}

/// A call over a rate limit ([`super::limits::Rates::admit`]).
pub fn rate_limit(e: &super::limits::Exceeded) -> Say {
    Say { check: Check::RateLimit, effect: e.effect, reason: format!("rate limit: {}", e.reason) }
}

/// A payment over budget or not countable ([`super::budget::Spend::check`]).
pub fn budget(check: &super::budget::Check) -> Option<Say> {
    match check {
        super::budget::Check::Within(_) => None,
        super::budget::Check::Refused { effect, reason, .. } => {
            Some(Say { check: Check::Budget, effect: *effect, reason: format!("budget: {reason}") })
        }
    }
}

/// The strictest say (deny over ask; the first of equals), or `None` when
/// every check allows. The caller combines it with the policy's decision
/// the same way: the stricter wins.
pub fn strictest(says: impl IntoIterator<Item = Say>) -> Option<Say> {
    let mut best: Option<Say> = None;
    for s in says {
        if s.effect == Decision::Allow {
            continue;
        }
        if best.as_ref().is_none_or(|b| s.effect > b.effect) {
            best = Some(s);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threat::pin::Part;

    fn change(detail: &str, less_cautious: bool) -> Change {
        Change { part: Part::Annotation, less_cautious, detail: detail.to_owned() }
    }

    #[test]
    fn changed_tool_names_the_changes_and_no_command() {
        let s = changed_tool(
            Decision::Ask,
            "fact",
            &[change("description changed (10 → 80 characters)", false), change("readOnlyHint false → true", true)],
        );
        assert_eq!(
            s.reason,
            "the definition of tool \"fact\" changed since it was first seen (description changed (10 → 80 characters); \
             readOnlyHint false → true (less cautious)); a person must accept the new definition in Latch"
        );
        assert!(!s.reason.contains("latch "), "no command: {}", s.reason);
    }

    #[test]
    fn poisoned_tool_lists_distinct_reasons_and_respects_allow() {
        let f = |reason: &str| Finding {
            kind: FindingKind::Injection,
            place: "description".into(),
            reason: reason.into(),
            excerpt: String::new(),
        };
        let many: Vec<Finding> = (0..7).map(|i| f(&format!("r{i}"))).chain([f("r0")]).collect();
        let s = poisoned_tool(Decision::Deny, "add", &many).unwrap();
        assert!(
            s.reason.contains("r0 (description); r1 (description); r2 (description); r3 (description); 3 more"),
            "{}",
            s.reason
        );
        assert_eq!(s.effect, Decision::Deny);
        assert_eq!(poisoned_tool(Decision::Allow, "add", &many), None);
        assert_eq!(poisoned_tool(Decision::Ask, "add", &[]), None);
    }

    #[test]
    fn strictest_wins() {
        let say = |check, effect| Say { check, effect, reason: String::new() };
        let s = strictest([
            say(Check::Trifecta, Decision::Ask),
            say(Check::RateLimit, Decision::Deny),
            say(Check::Budget, Decision::Deny),
        ]);
        assert_eq!(s.map(|s| s.check), Some(Check::RateLimit));
        assert_eq!(strictest([say(Check::Budget, Decision::Allow)]), None);
        assert_eq!(strictest([]), None);
    }
}
