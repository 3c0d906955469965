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
use crate::outbox::Outbox;
use crate::shared::{Shared, send};

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
