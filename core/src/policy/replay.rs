//! "What would this policy have done?": a candidate policy run over
//! recorded calls, and every call whose decision would change, grouped by
//! what decides it now.
//!
//! A recorded call has its *redacted* arguments and no tool definition
//! (the audit log keeps neither the secrets nor the definitions), so a
//! replay is approximate for a call whose arguments were redacted (a rule
//! on a masked value cannot see it) or whose class comes out different
//! without the definition (the description and annotations counted when
//! it was decided). Such calls are marked, never left out.

use serde_json::Value;

use super::Policy;
use crate::Call;
use crate::class::Decision;

/// One call as the audit log recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub id: i64,
    pub time_ms: i64,
    pub server: String,
    pub tool: String,
    pub class: String,
    /// What the policy decided then: `allow`, `ask` or `deny`.
    pub decision: String,
    /// Redacted.
    pub args: Value,
}

/// A call whose decision would change.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    pub call: Recorded,
    /// Why the replay may differ from what the daemon would decide.
    pub approximate: Option<String>,
}

/// The changed calls that go the same way by the same rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub from: String,
    pub to: Decision,
    /// The rule that decides now, or `None` for a class default.
    pub rule: Option<String>,
    pub calls: Vec<Changed>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Calls replayed.
    pub calls: usize,
    /// Of them, approximate (changed or not).
    pub approximate: usize,
    /// Biggest group first.
    pub groups: Vec<Group>,
}

impl Report {
    pub fn changed(&self) -> usize {
        self.groups.iter().map(|g| g.calls.len()).sum()
    }
}

fn redacted(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(crate::redact::MASK) || s.contains("[REDACTED"),
        Value::Array(a) => a.iter().any(redacted),
        Value::Object(o) => o.values().any(redacted),
        _ => false,
    }
}

/// Runs `policy` over `calls`.
pub fn replay(policy: &Policy, calls: &[Recorded]) -> Report {
    let mut report = Report { calls: calls.len(), ..Report::default() };
    for c in calls {
        let v = crate::decide(policy, &Call { server: &c.server, tool: &c.tool, args: &c.args }, None);
        let class = v.classification.class.as_str();
        let approximate = if redacted(&c.args) {
            Some("its arguments were redacted".to_owned())
        } else if !c.class.is_empty() && !class.eq_ignore_ascii_case(&c.class) {
            Some(format!("classified {class} without the tool's definition (recorded {})", c.class))
        } else {
            None
        };
        if approximate.is_some() {
            report.approximate += 1;
        }
        let to = v.evaluation.decision;
        if to.as_str().eq_ignore_ascii_case(&c.decision) {
            continue;
        }
        let rule = v.evaluation.rule;
        let changed = Changed { call: c.clone(), approximate };
        match report.groups.iter_mut().find(|g| g.from == c.decision && g.to == to && g.rule == rule) {
            Some(g) => g.calls.push(changed),
            None => report.groups.push(Group { from: c.decision.clone(), to, rule, calls: vec![changed] }),
        }
    }
    report.groups.sort_by_key(|g| std::cmp::Reverse(g.calls.len()));
    report
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(id: i64, command: &str, decision: &str) -> Recorded {
        Recorded {
            id,
            time_ms: id,
            server: "dev".into(),
            tool: "run_command".into(),
            class: "EXECUTE".into(),
            decision: decision.into(),
            args: json!({ "command": command }),
        }
    }

    #[test]
    fn changes_are_grouped_by_rule_and_direction() {
        let p = Policy::parse(
            "[[rule]]\nname = \"tests\"\ntool = \"run_command\"\nargs = [{ path = \"command\", command = [\"npm\", \"run\", \"test\"] }]\neffect = \"allow\"\n",
        )
        .unwrap();
        let calls = [
            call(1, "npm run test", "ask"),
            call(2, "npm run test -- -w", "ask"),
            call(3, "npm run test; rm -rf /tmp/x", "ask"),
            call(4, "ls", "allow"),
            call(5, "curl -H 'Authorization: Bearer [REDACTED]' x.io", "ask"),
        ];
        let r = replay(&p, &calls);
        assert_eq!(r.calls, 5);
        assert_eq!(r.changed(), 3, "{r:#?}");
        assert_eq!(r.groups[0].rule.as_deref(), Some("tests"));
        assert_eq!((r.groups[0].from.as_str(), r.groups[0].to), ("ask", Decision::Allow));
        assert_eq!(r.groups[0].calls.iter().map(|c| c.call.id).collect::<Vec<_>>(), [1, 2]);
        // `ls` was allowed by a grant or an older policy; now the default asks.
        assert_eq!(
            (r.groups[1].from.as_str(), r.groups[1].to, r.groups[1].rule.as_deref()),
            ("allow", Decision::Ask, None)
        );
        assert_eq!(r.approximate, 1);
    }
}
