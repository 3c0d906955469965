//! The shim and tool registry: which shims are connected, what their
//! clients said about themselves, and the tool definitions each has
//! listed (whose changes the approval state machine hears of).

use std::sync::Arc;

use latch_core::ToolDef;
use latch_core::approval;
use latch_core::redact::redact_value;
use latch_proto::{ClientInfo, Event, ShimInfo};
use serde_json::Value;

use crate::audit::NewEvent;
use crate::engine;
use crate::now_ms;
use crate::outbox::Outbox;
use crate::shared::{Shared, event_now};

/// Client roots kept per shim connection.
const MAX_CLIENT_ROOTS: usize = 64;

/// Registers shim connection `conn` for server `name`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn shim_connected(
    shared: &Shared,
    conn: u64,
    name: &str,
    pid: u32,
    session: String,
    command: Vec<String>,
    tx: Outbox,
    place: Arc<latch_core::path::PathEnv>,
) {
    let info = ShimInfo { server: name.to_owned(), pid, session: session.clone(), since: now_ms(), client: None };
    shared.engine().shims.insert(conn, engine::Shim { info: info.clone(), tx, roots: None, place });
    let cmd = redact_value(&Value::from(command));
    shared
        .record(NewEvent {
            kind: "shim_connect",
            server: name.to_owned(),
            session,
            args: cmd.to_string(),
            detail: Some(format!("pid {pid}")),
            ..event_now()
        })
        .await;
    shared.emit(Event::ShimConnected { shim: info });
}

/// What the shim's client said it is.
pub(crate) fn set_client(shared: &Shared, conn: u64, info: ClientInfo) {
    if let Some(s) = shared.engine().shims.get_mut(&conn) {
        s.info.client = Some(info);
    }
}

/// The roots the shim's client declared (bounded).
pub(crate) fn set_roots(shared: &Shared, conn: u64, mut roots: Option<Vec<String>>) {
    if let Some(r) = roots.as_mut() {
        r.truncate(MAX_CLIENT_ROOTS);
    }
    if let Some(s) = shared.engine().shims.get_mut(&conn) {
        s.roots = roots;
    }
}

/// Definitions learnt per hold of the engine lock: a long list is taken in
/// pieces, other connections' decisions running in between.
const TOOLS_PER_TURN: usize = 128;

/// A page of `tools/list` the shim relayed (`tools` is its JSON text).
/// Linear in the page, and never long on the runtime: parsing and hashing
/// run on the blocking pool, learning in pieces.
pub(crate) async fn tools_listed(shared: &Arc<Shared>, conn: u64, name: &str, tools: &str, first_page: bool) {
    let text = tools.to_owned();
    let parsed = tokio::task::spawn_blocking(move || {
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let defs = ToolDef::list_from_value(&parsed);
        let page = engine::Page::of(&defs, first_page);
        (defs, page, parsed)
    })
    .await;
    let Ok((defs, page, parsed)) = parsed else { return };
    // Leases end while a listing is learnt (pins, conflicts, shadowing).
    shared.engine().lease.bump();
    // Pinned per configured server name, off the engine's lock; changes
    // recorded. A hook's definitions are Latch's own description of the
    // agent's built-in tools, not a server's: nothing to pin.
    let (server_pins, names) = {
        let mut eng = shared.engine();
        if eng.hooks.contains_key(&conn) { (None, None) } else { eng.pins.server(name) }
    };
    if let Some(server_pins) = server_pins {
        let guard = server_pins.lock_owned().await;
        let server = name.to_owned();
        let work = tokio::task::spawn_blocking(move || {
            let mut guard = guard;
            let out = crate::pins::observe(&mut guard, &server, &parsed, now_ms());
            drop(parsed);
            out
        });
        let (rows, state) = work.await.unwrap_or_default();
        let changed = !rows.is_empty() || state.is_some();
        crate::pins::save(&shared.audit, name, names, state).await;
        for row in rows {
            shared.record(row).await;
        }
        // A new or changed tool may shadow another server's, or be shadowed.
        if changed {
            crate::findings::reshadow(shared, true).await;
            shared.emit(latch_proto::Event::FindingsChanged);
        }
    }
    let previous = shared.engine().begin_page(conn, name, &page);
    let mut defs = defs.into_iter();
    loop {
        let piece: Vec<ToolDef> = defs.by_ref().take(TOOLS_PER_TURN).collect();
        if piece.is_empty() {
            break;
        }
        let learned = shared.engine().learn_tools(conn, name, piece, &page, &previous);
        learn(shared, conn, name, learned).await;
        tokio::task::yield_now().await;
    }
    // Dropping a long list takes a while too.
    tokio::task::spawn_blocking(move || drop(previous));
    crate::lease::reissue_all(shared);
}

/// Tells the approval state machine what a piece of a page taught, and
/// records names described two ways.
async fn learn(shared: &Arc<Shared>, conn: u64, name: &str, learned: engine::Learned) {
    let now = now_ms();
    let engine::Learned { seen, changed, conflicts } = learned;
    let effects = {
        let mut eng = shared.engine();
        let mut effects = Vec::new();
        for (tool, def_hash) in seen {
            effects.extend(eng.approvals.handle(approval::Event::ToolDefSeen {
                server: name.to_owned(),
                tool,
                def_hash,
            }));
        }
        for (tool, new_def_hash) in changed {
            effects.extend(eng.approvals.handle(approval::Event::ToolDefChanged {
                server: name.to_owned(),
                tool,
                new_def_hash,
                now_ms: now,
            }));
        }
        effects
    };
    for tool in conflicts {
        let session = shared.engine().session_of(conn).unwrap_or_default();
        let why = format!("tool {tool:?} of server {name:?} is described two different ways; its calls ask");
        shared
            .record(NewEvent {
                kind: "tool_conflict",
                server: name.to_owned(),
                session,
                tool,
                reasons: vec![why],
                ..event_now()
            })
            .await;
    }
    crate::driver::apply(shared, effects, None).await;
}

/// Shim connection `conn` closed: its calls, holds and tools go; its
/// session's approvals end unless another shim of the session is there.
pub(crate) async fn shim_closed(shared: &Arc<Shared>, conn: u64) {
    crate::lease::closed(shared, conn).await;
    let (info, effects) = {
        let mut eng = shared.engine();
        eng.calls.retain(|_, c| c.conn != conn);
        eng.held.retain(|_, h| h.conn != conn);
        eng.forget_tools(conn);
        let info = eng.shims.remove(&conn).map(|s| s.info);
        // Another shim of the same session (a reconnect) keeps it alive.
        let effects = match &info {
            Some(i) if !eng.shims.values().any(|s| s.info.session == i.session) => {
                eng.approvals.handle(approval::Event::SessionEnded { session: i.session.clone() })
            }
            _ => Vec::new(),
        };
        (info, effects)
    };
    crate::driver::apply(shared, effects, None).await;
    if let Some(info) = info {
        shared
            .record(NewEvent {
                kind: "shim_disconnect",
                server: info.server.clone(),
                session: info.session.clone(),
                ..event_now()
            })
            .await;
        shared.emit(Event::ShimDisconnected { server: info.server, session: info.session });
    }
    crate::lease::reissue_all(shared);
}
