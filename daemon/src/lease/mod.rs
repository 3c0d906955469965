//! The lease (issue 16): the daemon tells each shim which plain allows it
//! may decide itself, and takes the rows of the calls it did.
//!
//! The authority is one number, the **epoch**, kept in a file of 8 bytes
//! (`<data dir>/lease/epoch`) that the daemon writes and every leased shim
//! reads before each call it decides: a lease is good only while the file
//! holds the epoch it was issued under. The daemon bumps it before and
//! after every change that could change a call's outcome (the policy or its
//! floor, the kill switch, any tool listing or a shim going away, a tool
//! accepted), so a change takes effect for every shim at once, whatever
//! the shims have read from their sockets; new leases follow by message.
//! See ARCHITECTURE.md, "The lease".

pub(crate) mod ingest;
pub(crate) mod state;

pub(crate) use state::{detail, dir};

use std::collections::HashSet;
use std::sync::Arc;

use latch_proto::lease::{Lease, LeaseProtected, LeaseTool, LocalRow};
use latch_proto::{AuditRow, DaemonMsg, Event, frame};
use serde_json::Value;

use crate::audit::NewEvent;
use crate::shared::Shared;

/// A local row is acknowledged (the shim may drop its journal up to it)
/// every this many rows.
const ACK_EVERY: u64 = 64;
/// A connection listing more tools has none leased.
const MAX_TOOLS: usize = 512;

/// Bumps the epoch and sends every shim a lease for what is in force now.
pub(crate) fn reissue_all(shared: &Arc<Shared>) {
    let conns: Vec<u64> = {
        let mut eng = shared.engine();
        eng.lease.bump();
        eng.shims.keys().copied().filter(|c| !eng.hooks.contains_key(c)).collect()
    };
    for conn in conns {
        let shared = shared.clone();
        tokio::spawn(async move { issue(&shared, conn).await });
    }
}

fn log_broken(shared: &Shared) -> bool {
    shared.audit.stuck().is_some() || shared.audit.finding().is_some()
}

/// The log refused a row: every lease ends now, and none is issued until
/// a row is recorded again ([`log_accepted`]). While leases are held back
/// every call goes to the daemon, so the first one recorded brings them
/// back.
pub(crate) fn log_refused(shared: &Arc<Shared>) {
    let first = !std::mem::replace(&mut shared.engine().lease.withheld, true);
    if first {
        reissue_all(shared);
    }
}

/// A row was recorded (under the engine lock the caller holds): true when
/// leases held back because the log refused rows are to be issued again
/// ([`reissue_all`], once the lock is released).
pub(crate) fn log_accepted(shared: &Shared, eng: &mut crate::engine::Engine) -> bool {
    let again = eng.lease.withheld && !log_broken(shared);
    if again {
        eng.lease.withheld = false;
        tracing::info!("the audit log records rows again: leases are issued again");
    }
    again
}

/// Sends shim connection `conn` the lease for what is in force now (or
/// none). The epoch is read before anything else: a change that starts
/// while this runs bumps it, and the lease is never good.
pub(crate) async fn issue(shared: &Arc<Shared>, conn: u64) {
    let taken = {
        let mut eng = shared.engine();
        let eng = &mut *eng;
        let Some(shim) = eng.shims.get(&conn) else { return };
        let tx = shim.tx.clone();
        let server = shim.info.server.clone();
        let session = shim.info.session.clone();
        // A log that cannot be written refuses every call the daemon
        // decides: no shim decides any either.
        eng.lease.withheld |= log_broken(shared);
        let log_broken = eng.lease.withheld;
        // A managed layer decides beside the user's policy, and the lease
        // carries the user's text only; in system mode the shim cannot
        // write beside the daemon's log: no lease in either case.
        let layered = !matches!(eng.managed, crate::managed::State::Absent) || shared.system;
        if !eng.lease.enabled || layered || log_broken || eng.stopped.is_some() || eng.hooks.contains_key(&conn) {
            None.zip(Some(tx))
        } else {
            // A long tool list is not leased: the work stays short under
            // the lock (and under the pins' lock), whatever a server lists.
            let tools: Vec<LeaseTool> = eng
                .tools
                .get(&conn)
                .filter(|l| l.defs.len() <= MAX_TOOLS)
                .map(|l| {
                    l.defs
                        .values()
                        .filter(|d| !eng.conflicts.contains_key(&(server.clone(), d.name.clone())))
                        .map(|d| LeaseTool { name: d.name.clone(), def_hash: d.hash.clone() })
                        .collect()
                })
                .unwrap_or_default();
            let (file, dev, ino) = match &eng.lease.file {
                Some((_, dev, ino)) => (eng.lease.dir.join("epoch"), *dev, *ino),
                None => return,
            };
            let lease = Lease {
                epoch: eng.lease.epoch,
                epoch_file: file.display().to_string(),
                epoch_dev: dev,
                epoch_ino: ino,
                prefix: eng.lease.prefix(conn),
                journal_dir: eng.lease.dir.display().to_string(),
                server: server.clone(),
                session,
                policy: eng.lease.policy_text.clone(),
                floor: eng.floor.is_some(),
                protected: LeaseProtected::default(),
                cwd: None,
                tools,
            };
            let pins = eng.pins.get(&server);
            let effects = crate::pins::Effects::of(&eng.policy, eng.floor.as_ref());
            // The place read when the shim connected, from the observed
            // peer (never the pid it claims).
            let cwd = shim.place.cwd.clone();
            Some((lease, pins, effects, cwd)).zip(Some(tx))
        }
    };
    let (lease, tx) = match taken {
        Some(((mut lease, pins, effects, cwd), tx)) => {
            // Only tools whose pins say nothing (not changed, not suspect);
            // a server with no pins has no tool leased.
            match pins {
                Some(p) => {
                    let p = p.lock().await;
                    lease.tools.retain(|t| crate::pins::say(&p, effects, &t.name).is_empty() && p.is_pinned(&t.name));
                }
                None => lease.tools.clear(),
            }
            let paths = shared.paths.clone();
            let known = shared.engine().lease.protected.clone();
            let read = tokio::task::spawn_blocking(move || {
                known.unwrap_or_else(|| {
                    let p = crate::policy_file::protected(&paths);
                    LeaseProtected {
                        paths: p.paths,
                        home: p.home,
                        configs: p.configs,
                        binary: p.binary,
                        pids: p.pids,
                        case_insensitive: p.case_insensitive,
                    }
                })
            })
            .await;
            let Ok(protected) = read else { return };
            shared.engine().lease.protected.get_or_insert_with(|| protected.clone());
            lease.cwd = cwd;
            lease.protected = protected;
            (Some(Box::new(lease)), tx)
        }
        None => {
            let eng = shared.engine();
            match eng.shims.get(&conn) {
                Some(s) => (None, s.tx.clone()),
                None => return,
            }
        }
    };
    tx.push(frame::encode(&DaemonMsg::Lease(lease)));
}

/// A row shim connection `conn` (of server `server`) recorded for a call it
/// allowed under its lease: recorded here too, like the daemon's own.
pub(crate) async fn local_call(shared: &Arc<Shared>, conn: u64, server: &str, row: LocalRow) {
    let (session, consoles, tx) = {
        let mut eng = shared.engine();
        let eng = &mut *eng;
        let Some(prefix) = eng.lease.conns.get(&conn) else { return };
        // Only this connection's own ids, each once, in order.
        if row.call_id != format!("{prefix}-{}", row.n) || eng.lease.seen.get(prefix).is_some_and(|n| *n >= row.n) {
            return;
        }
        eng.lease.seen.insert(prefix.clone(), row.n);
        let Some(shim) = eng.shims.get(&conn) else { return };
        (shim.info.session.clone(), eng.consoles, shim.tx.clone())
    };
    let ev = event_of(&row, server, &session);
    let shown = (consoles > 0).then(|| ev.shown(0, &serde_json::from_str(&row.args).unwrap_or(Value::Null)));
    match shared.audit.insert(ev).await {
        Ok(audit_id) => {
            shared.engine().calls.insert(row.call_id.clone(), crate::engine::Call { audit_id, conn });
            if row.n.is_multiple_of(ACK_EVERY) {
                tx.push(frame::encode(&DaemonMsg::LeaseAck { upto: row.n }));
            }
            if let Some(r) = shown {
                shared.emit(Event::Call { row: AuditRow { id: audit_id, ..r } });
            }
        }
        Err(e) => {
            // Still in the shim's journal: read from there when it goes.
            // The log refuses the daemon's own calls now: every lease ends.
            tracing::error!("could not record the shim's row {}: {e}", row.call_id);
            shared.engine().lease.missed.insert(row.call_id);
            log_refused(shared);
        }
    }
}

/// Shim connection `conn` closed: its lease ends everywhere (the epoch),
/// then what its journal holds that is not recorded is recorded, and its
/// journal removed.
pub(crate) async fn closed(shared: &Arc<Shared>, conn: u64) {
    let (prefix, seen, missed) = {
        let mut eng = shared.engine();
        eng.lease.bump();
        let Some(prefix) = eng.lease.conns.remove(&conn) else { return };
        let seen = eng.lease.seen.remove(&prefix).unwrap_or(0);
        let missed: HashSet<String> =
            eng.lease.missed.iter().filter(|c| c.starts_with(&format!("{prefix}-"))).cloned().collect();
        eng.lease.missed.retain(|c| !missed.contains(c));
        (prefix, seen, missed)
    };
    let dir = dir(&shared.paths.data_dir);
    let want = move |row: &LocalRow| row.n > seen || missed.contains(&row.call_id);
    ingest::files(shared, dir, Some(prefix), Box::new(want)).await;
}

/// The audit row of a local call.
pub(crate) fn event_of(row: &LocalRow, server: &str, session: &str) -> NewEvent {
    NewEvent {
        time_ms: row.time_ms,
        kind: "call",
        server: server.to_owned(),
        session: session.to_owned(),
        tool: row.tool.clone(),
        class: row.class.clone(),
        decision: "allow".into(),
        reasons: row.reasons.clone(),
        args: row.args.clone(),
        args_hash: row.args_hash.clone(),
        rule: row.rule.clone(),
        detail: Some(detail(&row.call_id)),
        ..Default::default()
    }
}
