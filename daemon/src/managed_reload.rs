//! Watching the managed policy file: a change (its text, owner or mode)
//! is read off the runtime and the policy in force is layered again, at
//! once (root wrote it: no PIN is asked), with an audit row.

use std::sync::Arc;

use latch_proto::Event;

use crate::audit::NewEvent;
use crate::now_ms;
use crate::shared::Shared;

/// Reloads the managed file when its stamp changed since it was last read.
pub(crate) async fn check(shared: &Arc<Shared>) {
    let path = crate::managed::path();
    let probe = path.clone();
    let Ok(now) = tokio::task::spawn_blocking(move || crate::managed::stamp(&probe)).await else { return };
    if now == shared.engine().managed_stamp {
        return;
    }
    let Ok(state) = tokio::task::spawn_blocking(move || crate::managed::load(&path)).await else { return };
    let described = state.describe();
    {
        let mut eng = shared.engine();
        eng.managed_stamp = now;
        eng.managed = state;
    }
    let detail = match &described {
        Some(d) => format!("managed policy {d}"),
        None => "managed policy removed: your policy alone is in force".to_owned(),
    };
    tracing::warn!("{detail}");
    shared
        .audit
        .record(NewEvent { time_ms: now_ms(), kind: "managed_policy", detail: Some(detail), ..Default::default() })
        .await;
    crate::enforce::managed_changed(shared).await;
    shared.engine().managed_note = described.clone();
    let error = described.filter(|d| d.starts_with("REFUSED"));
    let _ = shared.events.send(Event::PolicyReloaded { error });
}
