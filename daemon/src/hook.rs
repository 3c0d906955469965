//! Connections from `latch hook AGENT`: one process, one connection, one
//! call. A hook asks for a decision like a shim (and is answered the same
//! way, `Resolved` included), but it is not a session of its own:
//!
//! * no `shim_connect` / `shim_disconnect` rows or console events (one
//!   row per call, the call's);
//! * its end does not end the agent's session (the next tool call is a
//!   new process with the same session id), so session grants survive;
//! * it is never listed as a connected shim (`latch hook` asks whether a
//!   shim guards an MCP server, and must not see other hooks);
//! * the call row's `detail` carries the agent's working folder and the
//!   tool-use id the hook sent in `Hello.command`.
//!
//! A hook whose `Hello.command` names the event `PermissionRequest` answers
//! Claude Code's own permission prompt (a *prompt* connection): Claude Code
//! asks its user, so the call always becomes a pending approval (a policy
//! allow turns into an ask; a deny stays a deny), held for as long as the
//! hook waits. Claude Code's dialog and Latch race: when the hook's
//! connection closes before a person answered in Latch (Claude Code's
//! dialog was answered first and the hook was ended, or the hook gave up),
//! its held calls are cancelled and their approvals withdrawn. Claude Code
//! does not end the hook when its dialog is answered "yes" (checked with
//! 2.1.197): the tool runs, and its `PostToolUse` hook (a connection whose
//! `Hello.command` names that event and the tool) withdraws the prompts of
//! that session and tool instead. A forged `PostToolUse` can only withdraw,
//! which leaves Claude Code's own dialog in charge.

use std::sync::Arc;

use latch_core::approval::{self, Effect};
use latch_proto::{DaemonMsg, Decision, ShimInfo};

use crate::shared::Shared;
use crate::{engine, now_ms};

/// The hook event of an agent's own permission prompt.
const PROMPT_EVENT: &str = "PermissionRequest";
/// The hook event after a tool ran.
const RAN_EVENT: &str = "PostToolUse";

/// How long a prompt's call is held: the hook's own deadline (the agent's
/// timeout) ends it first, and its closing withdraws the approval.
pub(crate) const PROMPT_HOLD_MS: u64 = 3_600_000;

/// Registers a hook connection; a `PostToolUse` one withdraws the prompts
/// its tool run settled.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn connected(
    shared: &Arc<Shared>,
    conn: u64,
    name: &str,
    pid: u32,
    session: &str,
    command: &[String],
    tx: crate::outbox::Outbox,
    place: Arc<latch_core::path::PathEnv>,
) {
    register(shared, conn, name, pid, session, command, tx, place);
    if command.get(3).is_some_and(|e| e == RAN_EVENT) {
        let tool = command.get(4).map(String::as_str).unwrap_or("");
        let mut notices = Vec::new();
        let effects = {
            let mut eng = shared.engine();
            let conns: Vec<u64> = eng
                .prompts
                .iter()
                .filter(|(c, t)| t.as_str() == tool && eng.shims.get(c).is_some_and(|s| s.info.session == session))
                .map(|(c, _)| *c)
                .collect();
            let mut effects = Vec::new();
            for c in conns {
                // The prompt's hook is told, so it ends now, writing nothing.
                let calls: Vec<String> =
                    eng.held.iter().filter(|(_, h)| h.conn == c).map(|(id, _)| id.clone()).collect();
                // The agent's dialog let the tool run: its reads count.
                for call_id in &calls {
                    crate::taint::calls::settled(shared, &mut eng, call_id, true);
                }
                if let Some(shim) = eng.shims.get(&c) {
                    notices.extend(calls.into_iter().map(|call_id| (shim.tx.clone(), call_id)));
                }
                effects.extend(withdraw(&mut eng, c));
            }
            effects
        };
        crate::driver::apply(shared, effects, None).await;
        for (tx, call_id) in notices {
            let msg = DaemonMsg::Resolved {
                call_id,
                approval_id: String::new(),
                decision: Decision::Ask,
                reason: "withdrawn: answered in the agent's own dialog".into(),
            };
            tx.push(latch_proto::frame::encode(&msg));
        }
    }
}

/// Cancels the calls a prompt connection holds: their approvals are
/// withdrawn, and the hook hears nothing (it writes nothing when it ends).
fn withdraw(eng: &mut engine::Engine, conn: u64) -> Vec<Effect> {
    let mut held: Vec<String> = eng.held.iter().filter(|(_, h)| h.conn == conn).map(|(id, _)| id.clone()).collect();
    held.sort();
    let mut effects = Vec::new();
    for call_id in held {
        eng.held.remove(&call_id);
        effects.extend(eng.approvals.handle(approval::Event::Cancelled { call_id, now_ms: now_ms() }));
    }
    effects
}

#[allow(clippy::too_many_arguments)]
fn register(
    shared: &Shared,
    conn: u64,
    name: &str,
    pid: u32,
    session: &str,
    command: &[String],
    tx: crate::outbox::Outbox,
    place: Arc<latch_core::path::PathEnv>,
) {
    let info = ShimInfo { server: name.to_owned(), pid, session: session.to_owned(), since: now_ms(), client: None };
    let detail = detail_of(command);
    let mut eng = shared.engine();
    eng.shims.insert(conn, engine::Shim { info, tx, roots: None, place });
    eng.hooks.insert(conn, detail);
    if command.get(3).is_some_and(|e| e == PROMPT_EVENT) {
        eng.prompts.insert(conn, String::new());
    }
}

/// Whether this connection answers an agent's own permission prompt; if
/// so, it now asks about TOOL.
pub(crate) fn prompt_asks(eng: &mut engine::Engine, conn: u64, tool: &str) -> bool {
    match eng.prompts.get_mut(&conn) {
        Some(t) => {
            *t = tool.to_owned();
            true
        }
        None => false,
    }
}

/// Forgets a hook connection and the calls it held. A pre-tool hook's
/// approvals stay pending (the identical call goes through once approved);
/// a prompt's are withdrawn: the prompt they answer is gone.
pub(crate) async fn closed(shared: &Arc<Shared>, conn: u64) {
    let effects = forget(&mut shared.engine(), conn);
    crate::driver::apply(shared, effects, None).await;
}

/// Everything the engine holds for hook connection `conn`, gone; the
/// prompts it answered withdrawn.
fn forget(eng: &mut engine::Engine, conn: u64) -> Vec<Effect> {
    let effects = if eng.prompts.remove(&conn).is_some() { withdraw(eng, conn) } else { Vec::new() };
    eng.calls.retain(|_, c| c.conn != conn);
    eng.held.retain(|_, h| h.conn != conn);
    // The definition of the tool the hook sent before its call (one
    // process, one connection, one call): kept, it grew the daemon by one
    // definition per hook run for good, and every later listing of the
    // agent's tools compared against all of them.
    eng.forget_tools(conn);
    eng.shims.remove(&conn);
    eng.hooks.remove(&conn);
    effects
}

/// The audit `detail` of a call from this connection, if it is a hook's.
pub(crate) fn detail(shared: &Shared, conn: u64) -> Option<String> {
    shared.engine().hooks.get(&conn).cloned()
}

/// `Hello.command` of a hook: `[agent, cwd, tool_use_id, event]`.
fn detail_of(command: &[String]) -> String {
    let part = |i: usize| command.get(i).map(String::as_str).unwrap_or("");
    let mut text = format!("hook {}; cwd {}; tool_use_id {}", part(0), part(1), part(2));
    if part(3) == PROMPT_EVENT {
        text.push_str("; the agent's own permission prompt");
    }
    latch_core::redact::redact_text(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use latch_core::approval::{Approvals, Config};
    use latch_core::tooldef::ToolDef;

    use super::*;
    use crate::engine::{Engine, Page};

    /// Found by the soak (docs/reliability.md): the daemon kept the tool
    /// definition of every hook run that had ended.
    #[test]
    fn soak_a_closed_hook_leaves_no_tool_definition_behind() {
        let mut eng = Engine::new(latch_core::Policy::builtin(), Approvals::new(Config::default(), 1), 1);
        for conn in 1..=100u64 {
            let def = ToolDef::from_value(&serde_json::json!({"name": "Read", "description": "reads a file"})).unwrap();
            let page = Page::of(std::slice::from_ref(&def), false);
            let previous = eng.begin_page(conn, "claude-code", &page);
            eng.learn_tools(conn, "claude-code", vec![def], &page, &previous);
            assert_eq!(eng.tools.len(), 1);
            forget(&mut eng, conn);
            assert!(eng.tools.is_empty(), "after {conn} hook runs: {} definitions kept", eng.tools.len());
        }
    }
}
