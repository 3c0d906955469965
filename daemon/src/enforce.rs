//! Putting a policy in force: what the guard ([`crate::accepted`]) settles
//! from the file, the PIN and the accepted record becomes the engine's
//! policy, with an audit row and an event for every change.

use std::sync::Arc;

use latch_core::Policy;
use latch_proto::Event;

use crate::accepted::Settled;
use crate::audit::NewEvent;
use crate::now_ms;
use crate::pin::Key;
use crate::shared::Shared;

/// The policy file's text when it is there and valid (read off the runtime).
async fn file_text(shared: &Shared) -> Option<String> {
    let paths = shared.paths.clone();
    tokio::task::spawn_blocking(move || crate::policy_file::load_text(&paths).ok().map(|(text, _)| text))
        .await
        .ok()
        .flatten()
}

/// What the guard settles for `file`, computed off the runtime.
async fn settled(
    shared: &Arc<Shared>,
    file: Option<String>,
    pin_set: bool,
    key: Option<Key>,
) -> (Settled, Vec<String>) {
    let shared = shared.clone();
    let work = tokio::task::spawn_blocking(move || shared.guard().settle(file.as_deref(), pin_set, key.as_ref()));
    match work.await {
        Ok(done) => done,
        // The guard panicked: the built-in defaults bound whatever is in force.
        Err(_) => (Settled { text: latch_core::policy::DEFAULT_POLICY.to_owned(), floor: true }, Vec::new()),
    }
}

/// Settles the guard again for the file's text `file` and puts the result
/// in force. `key`: the PIN's key when someone just typed it, else the one
/// the daemon knows.
pub(crate) async fn settle(shared: &Arc<Shared>, file: Option<String>, key: Option<Key>) {
    let key = key.or_else(|| shared.pin.key());
    let pin_set = key.is_some() || shared.pin.is_set();
    let (settled, notes) = settled(shared, file, pin_set, key).await;
    enforce(shared, settled, notes).await;
}

/// Puts what the guard settled in force and tells everyone.
pub(crate) async fn enforce(shared: &Arc<Shared>, settled: Settled, notes: Vec<String>) {
    let (before, managed) = {
        let eng = shared.engine();
        (eng.policy.clone(), eng.managed.clone())
    };
    // Parsing a policy can take a while: not on the runtime.
    let paths = shared.paths.clone();
    let text = settled.text.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let mut policy = Policy::parse(&settled.text).unwrap_or_else(|_| Policy::builtin());
        policy.set_protected(crate::policy_file::protected(&paths));
        let policy = crate::managed::apply(policy, &managed, crate::policy_file::protected(&paths));
        let floor = settled.floor.then(|| crate::policy_file::builtin(&paths));
        (policy, floor)
    })
    .await;
    let Ok((policy, floor)) = parsed else { return };
    let (policy, pending, pending_text) = {
        let (pending, pending_text) = {
            let g = shared.guard();
            (g.pending(), g.pending_text())
        };
        let mut eng = shared.engine();
        // Every lease ends before the new policy is in force.
        eng.lease.bump();
        eng.lease.policy_text = text;
        // The protected set was read again with the policy.
        eng.lease.protected = None;
        eng.policy = policy;
        eng.floor = floor;
        (eng.policy.clone(), pending, pending_text)
    };
    // Every shim hears what to do with results under what is now in force.
    crate::results::policy_changed(shared);
    crate::lease::reissue_all(shared);
    for n in notes {
        tracing::warn!("{n}");
        shared
            .audit
            .record(NewEvent { time_ms: now_ms(), kind: "policy_guard", detail: Some(n), ..Default::default() })
            .await;
    }
    let was = shared.engine().policy_pending.clone();
    // The same change as before keeps its replay; a new one is replayed.
    let same =
        |a: &latch_proto::PolicyPending, b: &latch_proto::PolicyPending| a.loosen == b.loosen && a.diff == b.diff;
    let unchanged = match (&was, &pending) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    };
    if !unchanged {
        let mut pending = pending;
        if let (Some(p), Some(text)) = (pending.as_mut(), pending_text) {
            crate::pending_replay::attach(shared, text, p).await;
        }
        if let Some(p) = &pending {
            tracing::warn!("policy change pending: {} rules loosen; a person must accept it", p.loosen);
            shared
                .audit
                .record(NewEvent {
                    time_ms: now_ms(),
                    kind: "policy_pending",
                    decision: "ask".into(),
                    detail: Some(p.diff.join("\n")),
                    ..Default::default()
                })
                .await;
        }
        shared.engine().policy_pending = pending.clone();
        let _ = shared.events.send(Event::PolicyPending { pending });
    }
    if before != policy {
        let effects = shared.engine().approvals.handle(latch_core::approval::Event::PolicyReloaded);
        Box::pin(crate::driver::apply(shared, effects, None)).await;
    }
}

/// The managed layer changed: settle the user's file again under it.
pub(crate) async fn managed_changed(shared: &Arc<Shared>) {
    settle(shared, file_text(shared).await, None).await;
}

/// Someone typed the right PIN: verify the record and settle again.
pub(crate) async fn key_known(shared: &Arc<Shared>, key: Key) {
    settle(shared, file_text(shared).await, Some(key)).await;
}

/// The PIN was set or changed.
pub(crate) async fn pin_changed(shared: &Arc<Shared>, key: Key, old: Option<Key>) {
    let notes = shared.guard().rekey(&key, old.as_ref());
    let file = file_text(shared).await;
    let (settled, more) = settled(shared, file, true, Some(key)).await;
    enforce(shared, settled, notes.into_iter().chain(more).collect()).await;
}

/// `latch policy accept`: `key` is `None` when no PIN is set.
pub(crate) async fn accept(shared: &Arc<Shared>, key: Option<Key>, by: &str) -> Result<String, String> {
    let Some(key) = key else {
        return Err("no PIN is set, so policy changes apply as they come: nothing waits".into());
    };
    key_known(shared, key).await;
    let result = shared.guard().accept(&key);
    if let Ok(message) = &result {
        shared
            .audit
            .record(NewEvent {
                time_ms: now_ms(),
                kind: "policy_accepted",
                answered_by: Some(by.to_owned()),
                detail: Some(message.clone()),
                ..Default::default()
            })
            .await;
        let text = shared.guard().in_force.clone();
        enforce(shared, Settled { text, floor: false }, Vec::new()).await;
    }
    result
}
