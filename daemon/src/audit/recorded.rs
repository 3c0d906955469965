//! The recorded calls of the log as a policy replay takes them
//! ([`latch_core::policy::replay`]): for `latch policy replay` and for the
//! daemon's replay of a pending policy change.

use std::path::Path;

use latch_core::policy::replay::Recorded;
use latch_proto::AuditFilter;

use super::AuditError;

/// Rows read per page of the log.
const PAGE: u32 = 5_000;

/// The decided calls recorded since `since` (ms), oldest first; at most the
/// newest `max` of them. A row whose cells were overwritten (marked
/// damaged) is left out: what it says was not what the log wrote.
pub fn calls_since(path: &Path, since: i64, max: usize) -> Result<Vec<Recorded>, AuditError> {
    let filter = AuditFilter { since: Some(since), ..AuditFilter::default() };
    let mut calls = Vec::new();
    let mut before = None;
    while calls.len() < max {
        let rows = super::query_rows(path, &filter, before, PAGE)?;
        let Some(last) = rows.last() else { break };
        before = Some(last.id);
        let n = rows.len();
        let room = max - calls.len();
        calls.extend(
            rows.into_iter()
                .filter(|r| r.kind == "call" && !r.decision.is_empty() && r.damaged.is_none())
                .take(room)
                .map(|r| Recorded {
                    id: r.id,
                    time_ms: r.time,
                    server: r.server,
                    tool: r.tool,
                    class: r.class,
                    decision: r.decision,
                    args: r.args,
                }),
        );
        if n < PAGE as usize {
            break;
        }
    }
    calls.reverse();
    Ok(calls)
}
