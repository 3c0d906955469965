//! "This change would have allowed 14 calls that were asked last week": a
//! pending policy change ([`crate::accepted`]) replayed over the calls the
//! log recorded in the last days ([`latch_core::policy::replay`]), summed
//! up for `latch status` and the console's Health pane. Read off the
//! runtime and bounded to the newest calls.

use std::sync::Arc;

use latch_core::Policy;
use latch_core::policy::replay::{Report, replay};
use latch_proto::PolicyPending;

use crate::now_ms;
use crate::shared::Shared;

/// How far back the replay looks.
const DAYS: i64 = 7;
/// At most this many of the newest calls are replayed.
const MAX_CALLS: usize = 10_000;
/// Groups listed; the rest are counted on one line.
const GROUPS: usize = 6;

fn participle(decision: &str) -> String {
    match decision.to_ascii_lowercase().as_str() {
        "allow" => "allowed".into(),
        "ask" => "asked".into(),
        "deny" => "denied".into(),
        other => other.into(),
    }
}

fn verb(decision: &str) -> &str {
    match decision {
        "allow" => "allow",
        "ask" => "ask about",
        "deny" => "deny",
        other => other,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One line per group of changed calls, biggest first, then how many of
/// them replay only approximately. Empty when nothing would change.
pub(crate) fn summary(report: &Report, days: i64, bounded: bool) -> Vec<String> {
    let when = if bounded {
        format!("among the newest {} calls of the last {days} days", report.calls)
    } else {
        format!("in the last {days} days")
    };
    let mut lines: Vec<String> = report
        .groups
        .iter()
        .take(GROUPS)
        .map(|g| {
            let n = g.calls.len();
            let by = match &g.rule {
                Some(r) => format!("rule \"{r}\""),
                None => "the class default".to_owned(),
            };
            format!(
                "would {} {n} call{} that {} {} {when} ({by})",
                verb(g.to.as_str()),
                plural(n),
                if n == 1 { "was" } else { "were" },
                participle(&g.from)
            )
        })
        .collect();
    let rest: usize = report.groups.iter().skip(GROUPS).map(|g| g.calls.len()).sum();
    if rest > 0 {
        lines.push(format!("… and {rest} more call{} decided differently by other rules", plural(rest)));
    }
    let approximate = report.groups.iter().flat_map(|g| &g.calls).filter(|c| c.approximate.is_some()).count();
    if approximate > 0 {
        lines.push(format!(
            "{approximate} of these calls {} approximately (arguments redacted in the log, or no tool definition)",
            if approximate == 1 { "replays" } else { "replay" }
        ));
    }
    lines
}

/// Fills `pending.replay` with what the pending policy `text` would have
/// decided differently. Leaves it empty when the log cannot be read.
pub(crate) async fn attach(shared: &Arc<Shared>, text: String, pending: &mut PolicyPending) {
    let database = shared.audit.path().to_owned();
    let paths = shared.paths.clone();
    // Under the managed layer in force, as the daemon would enforce it.
    let managed = shared.engine().managed.clone();
    let since = now_ms() - DAYS * 86_400_000;
    let work = tokio::task::spawn_blocking(move || {
        let mut policy = Policy::parse(&text).ok()?;
        policy.set_protected(crate::policy_file::protected(&paths));
        let policy = crate::managed::apply(policy, &managed, crate::policy_file::protected(&paths));
        let calls = match crate::audit::recorded::calls_since(&database, since, MAX_CALLS) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("could not replay the pending policy over the log: {e}");
                return None;
            }
        };
        let report = replay(&policy, &calls);
        Some(summary(&report, DAYS, calls.len() >= MAX_CALLS))
    });
    pending.replay = work.await.ok().flatten().unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use latch_core::class::Decision;
    use latch_core::policy::replay::{Changed, Group, Recorded};
    use serde_json::json;

    use super::*;

    fn changed(id: i64, approximate: bool) -> Changed {
        Changed {
            call: Recorded {
                id,
                time_ms: id,
                server: "dev".into(),
                tool: "run_command".into(),
                class: "EXECUTE".into(),
                decision: "ask".into(),
                args: json!({}),
            },
            approximate: approximate.then(|| "its arguments were redacted".to_owned()),
        }
    }

    #[test]
    fn one_line_per_group_then_the_approximate_ones() {
        let report = Report {
            calls: 20,
            approximate: 1,
            groups: vec![
                Group {
                    from: "ask".into(),
                    to: Decision::Allow,
                    rule: Some("tests".into()),
                    calls: (0..14).map(|i| changed(i, i == 0)).collect(),
                },
                Group { from: "allow".into(), to: Decision::Ask, rule: None, calls: vec![changed(20, false)] },
            ],
        };
        assert_eq!(
            summary(&report, 7, false),
            vec![
                "would allow 14 calls that were asked in the last 7 days (rule \"tests\")",
                "would ask about 1 call that was allowed in the last 7 days (the class default)",
                "1 of these calls replays approximately (arguments redacted in the log, or no tool definition)",
            ]
        );
        assert!(summary(&Report::default(), 7, false).is_empty());
    }
}
