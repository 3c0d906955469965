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

use latch_proto::ShimInfo;
use tokio::sync::mpsc;

use crate::server::Shared;
use crate::{engine, now_ms};

/// Registers a hook connection.
pub(crate) fn connected(
    shared: &Shared,
    conn: u64,
    name: &str,
    pid: u32,
    session: &str,
    command: &[String],
    tx: mpsc::Sender<Vec<u8>>,
) {
    let info = ShimInfo { server: name.to_owned(), pid, session: session.to_owned(), since: now_ms(), client: None };
    let detail = detail_of(command);
    let mut eng = shared.engine();
    eng.shims.insert(conn, engine::Shim { info, tx, roots: None });
    eng.hooks.insert(conn, detail);
}

/// Forgets a hook connection and the calls it held.
pub(crate) fn closed(shared: &Shared, conn: u64) {
    let mut eng = shared.engine();
    eng.calls.retain(|_, c| c.conn != conn);
    eng.held.retain(|_, h| h.conn != conn);
    eng.shims.remove(&conn);
    eng.hooks.remove(&conn);
}

/// The audit `detail` of a call from this connection, if it is a hook's.
pub(crate) fn detail(shared: &Shared, conn: u64) -> Option<String> {
    shared.engine().hooks.get(&conn).cloned()
}

/// `Hello.command` of a hook: `[agent, cwd, tool_use_id]`.
fn detail_of(command: &[String]) -> String {
    let part = |i: usize| command.get(i).map(String::as_str).unwrap_or("");
    let text = format!("hook {}; cwd {}; tool_use_id {}", part(0), part(1), part(2));
    latch_core::redact::redact_text(&text).into_owned()
}
