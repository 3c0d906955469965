//! A narrowed "always": the person picked one of the scopes
//! `latch_core::policy::narrow` offers for a pending approval. The daemon
//! computes the offers again from the approval's redacted arguments (never
//! from what the console sends) and writes the one with that id; an id it
//! does not offer is refused and nothing is written.

use std::sync::Arc;

use latch_core::approval;
use latch_core::policy::narrow;
use latch_proto::{DaemonMsg, Pin, Role, Scope};

use crate::answers::{AnswerReq, answer};
use crate::engine::Engine;
use crate::outbox::Outbox;
use crate::shared::{Shared, send};

/// Where an "always" rule goes and how far it reaches, from the answer
/// until the driver writes it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Placed {
    pub narrow: Option<narrow::Narrowing>,
    /// The line of the user's rule that decided the call: the new rule
    /// goes right before it, or that rule would still decide (an "always"
    /// appended after a rule that asks would never be reached).
    pub before: Option<usize>,
}

/// The `[[rule]]` line the "always" rule for this approval must precede:
/// the user rule that decides its call now (evaluated on the approval's
/// redacted arguments), when that rule's effect is not the answer's.
pub(crate) fn insert_before(eng: &Engine, approval_id: &str, approve: bool) -> Option<usize> {
    let p = eng.approvals.get(approval_id)?;
    let args = p.summary.get("args").cloned().unwrap_or_default();
    let call = latch_core::Call { server: &p.key.server, tool: &p.key.tool, args: &args };
    let ev = latch_core::decide(&eng.policy, &call, None).evaluation;
    let wanted = if approve { latch_core::Decision::Allow } else { latch_core::Decision::Deny };
    ev.rule_line.filter(|_| ev.decision != wanted)
}

/// `AnswerNarrow` from a console or the CLI.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn answer_narrow(
    shared: &Arc<Shared>,
    conn: u64,
    role: Role,
    tx: &Outbox,
    req: u64,
    approval_id: String,
    offer: String,
    pin: Option<Pin>,
) {
    let found = {
        let eng = shared.engine();
        eng.approvals.get(&approval::normalize_id(&approval_id)).map(|p| {
            let args = p.summary.get("args").cloned().unwrap_or_default();
            narrow::find(&p.key.server, &p.key.tool, &args, &offer)
        })
    };
    let narrowing = match found {
        Some(Some(o)) => o.narrowing,
        Some(None) => {
            let message = format!(
                "approval {approval_id} was not answered: that scope is not one Latch offers for this call; \
                 nothing was written"
            );
            return send(tx, &DaemonMsg::Answered { req, ok: false, message }).await;
        }
        None => {
            let message = format!("approval {approval_id} is not pending");
            return send(tx, &DaemonMsg::Answered { req, ok: false, message }).await;
        }
    };
    let a = AnswerReq { req, approval_id, approve: true, scope: Scope::Always, reason: None, pin, narrow: narrowing };
    answer(shared, conn, role, tx, a).await;
}
