//! `latch rules scopes ID` and `latch rules always ID N`: the narrower
//! "always" from the command line, as the console's `A` offers it. The
//! scopes are computed from the approval's redacted arguments
//! (`latch_core::policy::narrow`); the daemon computes them again and
//! writes the one chosen, never a rule text sent to it.

use latch_core::Decision;
use latch_core::policy::narrow::{self, Offer};
use latch_core::policy::{NewRule, origin, rule_block};
use latch_proto::{ClientMsg, DaemonMsg, PendingItem, Role, client};

use super::{EXIT_NO_DAEMON, Usage};

fn pending(id: &str) -> anyhow::Result<Option<PendingItem>> {
    let paths = super::paths()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match rt.block_on(client::request(&paths, Role::Cli, ClientMsg::ListPending { req: 1 })) {
        Ok(DaemonMsg::Pending { items, .. }) => {
            let id = id.trim();
            match items.into_iter().find(|i| i.id.eq_ignore_ascii_case(id)) {
                Some(i) => Ok(Some(i)),
                None => Err(Usage(format!("approval {id} is not pending (`latch pending` lists them)")).into()),
            }
        }
        Ok(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        Err(e @ client::ClientError::NoDaemon(_)) => {
            eprintln!("latch: {e}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn rule_text(item: &PendingItem, o: &Offer) -> String {
    rule_block(&NewRule {
        server: item.server.clone(),
        tool: item.tool.clone(),
        effect: Decision::Allow,
        comment: origin::comment(Some("cli:you"), &item.id, "(the time it is saved)"),
        insert_before: None,
        narrow: o.narrowing.clone(),
    })
}

pub fn scopes(id: &str, json: bool) -> anyhow::Result<i32> {
    let Some(item) = pending(id)? else { return Ok(EXIT_NO_DAEMON) };
    let offers = narrow::offers(&item.server, &item.tool, &item.args);
    if json {
        let v: Vec<_> = offers
            .iter()
            .enumerate()
            .map(|(i, o)| {
                serde_json::json!({"number": i + 1, "id": o.id, "label": o.label, "rule": rule_text(&item, o)})
            })
            .collect();
        println!("{}", serde_json::json!({ "approval_id": item.id, "scopes": v }));
        return Ok(0);
    }
    println!("{} {}/{}: approve always with `latch rules always {} N`", item.id, item.server, item.tool, item.id);
    for (i, o) in offers.iter().enumerate() {
        println!("\n{:>2}. {}", i + 1, o.label);
        for l in rule_text(&item, o).lines().skip(1) {
            println!("      {l}");
        }
    }
    Ok(0)
}

pub fn always(id: &str, n: usize, pin_stdin: bool, json: bool) -> anyhow::Result<i32> {
    let Some(item) = pending(id)? else { return Ok(EXIT_NO_DAEMON) };
    let offers = narrow::offers(&item.server, &item.tool, &item.args);
    let Some(o) = n.checked_sub(1).and_then(|i| offers.get(i)) else {
        return Err(Usage(format!("no scope {n}: `latch rules scopes {id}` lists 1..={}", offers.len())).into());
    };
    let mut source = super::pin::PinSource::new(pin_stdin);
    let offer = o.id.clone();
    let approval_id = item.id.clone();
    let reply = super::pin::exchange(ClientMsg::Status { req: 1 }, |status| {
        let pin = if super::pin::pin_set(status)? {
            Some(latch_proto::Pin(source.read(&format!("PIN to approve {approval_id} always: "))?))
        } else {
            None
        };
        Ok(Some(ClientMsg::AnswerNarrow { req: 2, approval_id: approval_id.clone(), offer: offer.clone(), pin }))
    })?;
    match reply {
        Some(DaemonMsg::Answered { ok, message, .. }) => {
            if json {
                println!("{}", serde_json::json!({"ok": ok, "message": message}));
            } else if ok {
                println!("{message}");
            } else {
                eprintln!("latch: {message}");
            }
            Ok(if ok { 0 } else { 1 })
        }
        Some(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        None => Ok(EXIT_NO_DAEMON),
    }
}
