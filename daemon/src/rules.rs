//! The rules of the policy file for consoles: listed with who added each,
//! and deleted (the undo of an "always") as a text edit that keeps every
//! other line. A deletion is a change of the file like any other: the
//! policy component reloads it, and one that loosens (a `deny` or `ask`
//! rule removed) waits for the person when a PIN is set
//! ([`crate::enforce`]). Shims and hooks speak for the agent and may do
//! neither.

use std::sync::Arc;

use latch_core::policy::listing;
use latch_proto::{DaemonMsg, Role, RuleInfo};

use crate::outbox::Outbox;
use crate::shared::{Shared, send};

/// `ListRules`.
pub(crate) async fn list(shared: &Arc<Shared>, role: Role, tx: &Outbox, req: u64) {
    if role.speaks_for_agent() {
        let message = "the policy's rules are for people: a shim or hook cannot list them".to_owned();
        return send(tx, &DaemonMsg::Error { req, message }).await;
    }
    let path = shared.paths.policy.clone();
    let read = tokio::task::spawn_blocking(move || {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        listing::list(&text).map_err(|e| e.render(&path.display().to_string(), &text))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let reply = match read {
        Ok(rules) => DaemonMsg::Rules { req, rules: rules.iter().map(info).collect(), error: None },
        Err(error) => DaemonMsg::Rules { req, rules: Vec::new(), error: Some(error) },
    };
    send(tx, &reply).await;
}

fn info(r: &listing::RuleEntry) -> RuleInfo {
    RuleInfo {
        number: r.number as u32,
        line: r.line as u32,
        name: r.name.clone(),
        effect: r.effect.clone(),
        summary: r.summary.clone(),
        added: r.origin.as_ref().map_or_else(|| "by hand".to_owned(), |o| o.describe(crate::audit::retention::utc)),
        text: r.text.clone(),
    }
}

/// `DeleteRule`.
pub(crate) async fn delete(shared: &Arc<Shared>, role: Role, tx: &Outbox, req: u64, number: u32, line: u32) {
    if role.speaks_for_agent() {
        let message = "a shim or hook cannot change the policy".to_owned();
        return send(tx, &DaemonMsg::Done { req, ok: false, message }).await;
    }
    let path = shared.paths.policy.clone();
    let done = tokio::task::spawn_blocking(move || -> Result<listing::RuleEntry, String> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let rules = listing::list(&text).map_err(|_| format!("{shown} has mistakes: fix them first"))?;
        let Some(rule) = rules.into_iter().find(|r| r.number == number as usize && r.line == line as usize) else {
            return Err("the file changed since it was listed: nothing was deleted".to_owned());
        };
        let new = listing::delete(&text, rule.number)
            .ok()
            .flatten()
            .ok_or_else(|| "the rule could not be found again: nothing was deleted".to_owned())?;
        crate::policy_file::replace(&path, &new).map_err(|e| format!("cannot write {shown}: {e}"))?;
        Ok(rule)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let reply = match done {
        Ok(rule) => {
            crate::reload::reload_policy(shared).await;
            let waits = rule.effect != "allow" && shared.pin.is_set();
            let then = if waits { "; it loosens the policy, so it waits for a person to accept it" } else { "" };
            DaemonMsg::Done {
                req,
                ok: true,
                message: format!("rule {} (line {}) deleted{then}", rule.number, rule.line),
            }
        }
        Err(message) => DaemonMsg::Done { req, ok: false, message },
    };
    send(tx, &reply).await;
}
