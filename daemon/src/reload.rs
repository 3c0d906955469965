//! The policy component: watches and reloads the policy file, and writes
//! the "always" rules people answer. What the file says reaches the policy
//! in force through [`crate::enforce`]: at once when no PIN is set or when
//! it only tightens, otherwise once a person accepts it.
//!
//! Reading, parsing and writing the file (with its fsync) run on the
//! blocking pool, never where they would delay a decision.

use std::sync::Arc;
use std::time::Duration;

use latch_proto::Event;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::audit::NewEvent;
use crate::now_ms;
use crate::policy_file;
use crate::shared::{RuleJob, Shared};

/// Starts the watcher and the rule writer.
pub(crate) fn start(tasks: &mut JoinSet<()>, shared: &Arc<Shared>, rules: mpsc::UnboundedReceiver<RuleJob>) {
    tasks.spawn(watch_policy(shared.clone()));
    tasks.spawn(write_rules(shared.clone(), rules));
}

/// Polls the policy file twice a second (a `stat`; nothing is read unless
/// it changed) and reloads it when it did.
async fn watch_policy(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        let path = shared.paths.policy.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || policy_file::stamp(&path)).await else { continue };
        if now != shared.engine().policy_stamp {
            reload_policy(&shared).await;
        }
        crate::managed_reload::check(&shared).await;
    }
}

/// Writes each "always" rule, then reloads, then says what happened.
async fn write_rules(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<RuleJob>) {
    while let Some(RuleJob { rule, done }) = jobs.recv().await {
        // Answered with the PIN: the rule is accepted with it.
        shared.guard().accept_rule(&rule, shared.pin.key().as_ref());
        let path = shared.paths.policy.clone();
        let written = {
            let rule = rule.clone();
            tokio::task::spawn_blocking(move || policy_file::write_rule(&path, &rule))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        };
        let detail = match written {
            Ok(()) => {
                reload_policy(&shared).await;
                format!(
                    "{} {}/{} written to {}",
                    rule.effect.as_str(),
                    rule.server,
                    rule.tool,
                    shared.paths.policy.display()
                )
            }
            Err(e) => {
                tracing::error!("could not write the \"always\" rule to {}: {e}", shared.paths.policy.display());
                format!("could not write the rule: {e}")
            }
        };
        let _ = done.send(detail);
    }
}

/// Reloads the policy file; a file that does not validate keeps the policy
/// in force and says why.
pub(crate) async fn reload_policy(shared: &Arc<Shared>) {
    let paths = shared.paths.clone();
    let read = tokio::task::spawn_blocking(move || {
        let stamp = policy_file::stamp(&paths.policy);
        let loaded = if stamp.is_none() {
            Err(format!(
                "{} is missing; the policy in force stays. Restore it, or run `latch policy default` to see the defaults",
                paths.policy.display()
            ))
        } else {
            policy_file::load_text(&paths).map(|(text, _)| text)
        };
        (stamp, loaded)
    })
    .await;
    let Ok((stamp, loaded)) = read else { return };
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
        None => tracing::info!("policy reloaded from {}", shared.paths.policy.display()),
        Some(e) => tracing::warn!("the changed policy is not in force:\n{e}"),
    }
    record_reload(shared, error.clone()).await;
    crate::enforce::settle(shared, text, None).await;
    let _ = shared.events.send(Event::PolicyReloaded { error });
}

pub(crate) async fn record_reload(shared: &Shared, error: Option<String>) {
    shared
        .audit
        .record(NewEvent { time_ms: now_ms(), kind: "policy_reload", detail: error, ..Default::default() })
        .await;
}
