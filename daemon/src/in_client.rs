//! Approvals asked inside the MCP client itself (elicitation), for the
//! clients the person named in `[approvals] in_client`.
//!
//! The daemon gives a shim the question with an `ask` decision when the
//! shim's client is named ([`question`]); the shim asks, and sends back what
//! the person chose ([`answer`]). That answer is narrow on purpose: it
//! decides only an approval this shim alone holds calls on, only with scope
//! once, and is recorded as channel `in-client` with the client's name. The
//! PIN is not asked for it: the person answered in a client they chose to
//! trust with this question (see `docs/security/elicit.md`).

use std::sync::Arc;

use latch_core::approval::{self, IN_CLIENT};
use latch_core::redact::redact_text;
use latch_proto::Role;
use serde_json::Value;

use crate::audit::NewEvent;
use crate::driver::apply;
use crate::engine::Engine;
use crate::now_ms;
use crate::shared::Shared;

/// Longest shown value of one argument, in characters.
const VALUE_CHARS: usize = 120;
/// Longest argument summary, in characters.
const SUMMARY_CHARS: usize = 600;

/// The name of the client behind shim connection `conn`, when the policy
/// in force (and the floor under it, while the accepted policy is not
/// verified) names it in `[approvals] in_client`.
fn named_client(eng: &Engine, conn: u64) -> Option<String> {
    let shim = eng.shims.get(&conn)?;
    let name = &shim.info.client.as_ref()?.name;
    let named = eng.policy.asks_in_client(name) && eng.floor.as_ref().is_none_or(|f| f.asks_in_client(name));
    named.then(|| name.clone())
}

/// The question a shim may ask inside its client about a held call, or
/// `None` when the client is not named. Built from the redacted
/// arguments; every value is JSON-quoted, so an argument cannot add lines
/// or fake a choice.
pub(crate) fn question(
    eng: &Engine,
    conn: u64,
    server: &str,
    tool: &str,
    redacted: &Value,
    approval_id: &str,
) -> Option<String> {
    named_client(eng, conn)?;
    let args = summary(redacted);
    let with = if args.is_empty() { String::new() } else { format!(" with {args}") };
    let tool = quoted(tool);
    let server = quoted(server);
    Some(format!(
        "Latch: allow {tool} of server {server}{with}? Approval {approval_id}. Choose once or deny; \
         wider answers are given in Latch itself."
    ))
}

fn quoted(s: &str) -> String {
    cut(&Value::from(s).to_string(), VALUE_CHARS)
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// `key=value, …` of the top-level arguments, values as JSON.
fn summary(args: &Value) -> String {
    let parts: Vec<String> = match args {
        Value::Object(m) => {
            m.iter().map(|(k, v)| format!("{}={}", quoted(k), cut(&v.to_string(), VALUE_CHARS))).collect()
        }
        Value::Null => Vec::new(),
        other => vec![cut(&other.to_string(), VALUE_CHARS)],
    };
    cut(&parts.join(", "), SUMMARY_CHARS)
}

/// Why an in-client answer is not taken.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("only a shim asks in its client")]
    NotShim,
    #[error("call {0} is not held by this shim")]
    NotHeld(String),
    #[error("the client is not named in [approvals] in_client")]
    NotNamed,
    #[error("approval {0} also holds calls of another shim; it is answered in Latch")]
    Shared(String),
}

/// The person answered inside the client: call `call_id`, held by this
/// shim, is approved once or denied.
pub(crate) async fn answer(shared: &Arc<Shared>, conn: u64, role: Role, call_id: String, approve: bool) {
    let checked = {
        let mut eng = shared.engine();
        check(&eng, conn, role, &call_id).map(|(approval_id, who)| {
            eng.approvals.handle(approval::Event::Answer(approval::Answer {
                approval_id,
                approve,
                scope: approval::Scope::Once,
                channel: IN_CLIENT.to_owned(),
                who,
                reason: None,
                now_ms: now_ms(),
            }))
        })
    };
    match checked {
        Ok(effects) => apply(shared, effects, None).await,
        Err(why) => {
            let (approval_id, who) = {
                let eng = shared.engine();
                let client = eng.shims.get(&conn).and_then(|s| s.info.client.as_ref()).map(|c| c.name.clone());
                (eng.approvals.held_on(&call_id).map(str::to_owned), client.unwrap_or_default())
            };
            tracing::warn!("refused an in-client answer from {who:?}: {why}");
            shared
                .audit
                .record(NewEvent {
                    time_ms: now_ms(),
                    kind: "answer_refused",
                    decision: "deny".into(),
                    approval_id,
                    answered_by: Some(format!("{IN_CLIENT}:{}", redact_text(&who))),
                    detail: Some(why.to_string()),
                    ..Default::default()
                })
                .await;
        }
    }
}

/// The approval the answer may decide and who answers, or why not.
fn check(eng: &Engine, conn: u64, role: Role, call_id: &str) -> Result<(String, String), Refusal> {
    if role != Role::Shim || eng.hooks.contains_key(&conn) {
        return Err(Refusal::NotShim);
    }
    let ours = |id: &str| eng.held.get(id).is_some_and(|h| h.conn == conn);
    if !ours(call_id) {
        return Err(Refusal::NotHeld(call_id.to_owned()));
    }
    let who = named_client(eng, conn).ok_or(Refusal::NotNamed)?;
    let approval_id = eng.approvals.held_on(call_id).ok_or_else(|| Refusal::NotHeld(call_id.to_owned()))?;
    let pending = eng.approvals.get(approval_id).ok_or_else(|| Refusal::NotHeld(call_id.to_owned()))?;
    if !pending.waiters().iter().all(|w| ours(&w.call_id)) {
        return Err(Refusal::Shared(approval_id.to_owned()));
    }
    Ok((approval_id.to_owned(), who))
}
