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

#[cfg(test)]
mod tests {
    use latch_core::Class;
    use latch_core::approval::{Approvals, Ask, Config, Event};

    use super::*;

    fn ask(n: u64, session: &str, server: &str) -> Ask {
        Ask {
            call_id: format!("c{session}{server}{n}"),
            session: session.into(),
            server: server.into(),
            tool: "t".into(),
            args_hash: format!("h{n}"),
            def_hash: None,
            class: Class::Write,
            retry: false,
            summary: serde_json::Value::Null,
            now_ms: 1,
            hold_ms: Some(10),
        }
    }

    #[test]
    fn an_agent_may_not_open_more_than_its_share_but_may_join_what_waits() {
        let mut a = Approvals::new(Config::default(), 1);
        for n in 0..PER_SHIM as u64 {
            assert_eq!(refuse_new(&a, &ask(n, "s1", "srv").key(), "s1", 1), None);
            a.handle(Event::Ask(ask(n, "s1", "srv")));
        }
        let why = refuse_new(&a, &ask(999, "s1", "srv").key(), "s1", 1).expect("over the shim's share");
        assert!(why.contains("A person must answer or dismiss some in Latch"), "{why}");
        // The same call again joins the approval that waits.
        assert_eq!(refuse_new(&a, &ask(3, "s1", "srv").key(), "s1", 1), None);
        // Another server of the agent, and another agent, still may ask.
        assert_eq!(refuse_new(&a, &ask(999, "s1", "other").key(), "s1", 1), None);
        assert_eq!(refuse_new(&a, &ask(999, "s2", "srv").key(), "s2", 1), None);
        for n in 0..(PER_AGENT - PER_SHIM) as u64 {
            a.handle(Event::Ask(ask(n, "s1", "other")));
        }
        assert!(refuse_new(&a, &ask(999, "s1", "third").key(), "s1", 1).is_some(), "over the agent's share");
    }
}
