//! How many approvals one agent, and one shim of it, may have waiting.
//!
//! The approval state machine bounds pending approvals for everyone
//! together (1,000); on their own, one agent with 1,001 distinct held
//! calls would fill that and every other agent's asks would be denied
//! until a person answered. So an ask that would open a new approval is
//! refused (denied, with a message) once its agent, or its shim, has this
//! many waiting. A call that a grant covers, or that joins an approval
//! already waiting, is never refused here.

use latch_core::approval::{Approvals, CallKey};

/// Approvals one agent session may have waiting.
pub(crate) const PER_AGENT: usize = 200;
/// Approvals one shim (one server in one session) may have waiting.
pub(crate) const PER_SHIM: usize = 100;

/// Why an ask for `key` from `session` may not open a new approval, if so.
pub(crate) fn refuse_new(approvals: &Approvals, key: &CallKey, session: &str, now_ms: i64) -> Option<String> {
    if approvals.pending().any(|p| &p.key == key) {
        return None;
    }
    if approvals.grants().any(|g| !g.expired(now_ms) && g.covers(key, session)) {
        return None;
    }
    let mut of_agent = 0;
    let mut of_shim = 0;
    for p in approvals.pending().filter(|p| p.sessions.contains(session)) {
        of_agent += 1;
        if p.key.server == key.server {
            of_shim += 1;
        }
    }
    if of_shim >= PER_SHIM {
        return Some(format!(
            "{of_shim} approvals of server {:?} in this agent session wait for a person already (at most {PER_SHIM}): \
             the call did not run. A person must answer or dismiss some in Latch first",
            key.server
        ));
    }
    if of_agent >= PER_AGENT {
        return Some(format!(
            "{of_agent} approvals of this agent session wait for a person already (at most {PER_AGENT}): the call \
             did not run. A person must answer or dismiss some in Latch first"
        ));
    }
    None
}
