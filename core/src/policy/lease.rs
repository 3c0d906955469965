//! Which calls a shim may decide under a lease (issue 16): the policy
//! allows them from its own text, and nothing of the call depends on what
//! only the daemon knows (the file system, the server's place, counters,
//! sessions, a model).

use crate::class::{Class, Decision};
use crate::classify::{Call, Classification};
use crate::threat::taint::CallFacts;

use super::{Evaluation, Policy};

impl Policy {
    /// True when `verdict` of `call`, evaluated with no answers and no
    /// facts, is an allow the daemon would give too whatever its state:
    /// - the policy allows it, asking no model ([`Evaluation::questions`]);
    /// - the classification has no flag, found no host, and the call is
    ///   neither a WRITE nor an EXECUTE (whose arguments are read for the
    ///   workspace and for commands);
    /// - self-protection reads nothing of the arguments as a path or a
    ///   command ([`super::protect`]);
    /// - no rate limit selects it, no budget counts it, and it plays no
    ///   part in the lethal trifecta (not untrusted, private or a sink), so
    ///   no counter or session state of the daemon changes or decides it.
    pub fn lease_allows(&self, call: &Call<'_>, cls: &Classification, ev: &Evaluation) -> bool {
        if ev.decision != Decision::Allow || !ev.questions.is_empty() {
            return false;
        }
        if !cls.flags.is_empty() || !cls.domains.is_empty() || matches!(cls.class, Class::Write | Class::Execute) {
            return false;
        }
        let t = self.threats();
        let facts = CallFacts {
            server: call.server,
            tool: call.tool,
            class: cls.class,
            flags: &cls.flags,
            target: None,
            at: 0,
        };
        if t.limits.iter().any(|l| l.select.matches(&facts)) {
            return false;
        }
        if t.budget.is_some() && cls.class == Class::TransferValue {
            return false;
        }
        let taint = &t.taint;
        if taint.effect != Decision::Allow
            && taint.untrusted.iter().chain(&taint.private).chain(&taint.sinks).any(|s| s.matches(&facts))
        {
            return false;
        }
        self.guard.place_free(call.args)
    }
}
