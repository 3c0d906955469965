//! Watching and reloading the policy file. What the file says reaches the
//! policy in force through [`crate::accepted`]: at once when no PIN is set
//! or when it only tightens, otherwise once a person accepts it.

use std::sync::Arc;
use std::time::Duration;

use latch_proto::Event;

use crate::audit::NewEvent;
use crate::now_ms;
use crate::policy_file;
use crate::server::Shared;

/// Polls the policy file twice a second (a `stat`; nothing is read unless
/// it changed) and reloads it when it did.
pub(crate) async fn watch_policy(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        let now = policy_file::stamp(&shared.paths.policy);
        if now != shared.engine().policy_stamp {
            reload_policy(&shared).await;
        }
    }
}

/// The policy file's text when it is there and valid.
pub(crate) fn file_text(shared: &Shared) -> Option<String> {
    policy_file::load_text(&shared.paths).ok().map(|(text, _)| text)
}

/// Reloads the policy file; a file that does not validate keeps the policy
/// in force and says why.
pub(crate) async fn reload_policy(shared: &Arc<Shared>) {
    let stamp = policy_file::stamp(&shared.paths.policy);
    let loaded = if stamp.is_none() {
        Err(format!(
            "{} is missing; the policy in force stays. Restore it, or run `latch policy default` to see the defaults",
            shared.paths.policy.display()
        ))
    } else {
        policy_file::load_text(&shared.paths).map(|(text, _)| text)
    };
    let (error, text) = match loaded {
        Ok(t) => (None, Some(t)),
        Err(report) => (Some(report), None),
    };
    {
        let mut eng = shared.engine();
        eng.policy_stamp = stamp;
        eng.policy_error = error.clone();
    }
    match &error {
        None => eprintln!("latch daemon: policy reloaded from {}", shared.paths.policy.display()),
        Some(e) => eprintln!("latch daemon: the changed policy is not in force:\n{e}"),
    }
    record_reload(shared, error.clone()).await;
    let (settled, notes) = shared.guard().settle(text.as_deref(), shared.pin.is_set(), shared.pin.key().as_ref());
    crate::accepted::enforce(shared, settled, notes).await;
    let _ = shared.events.send(Event::PolicyReloaded { error });
}

pub(crate) async fn record_reload(shared: &Shared, error: Option<String>) {
    shared
        .audit
        .record(NewEvent { time_ms: now_ms(), kind: "policy_reload", detail: error, ..Default::default() })
        .await;
}
