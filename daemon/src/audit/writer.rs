//! The writer thread: takes [`Cmd`]s, commits them in groups, keeps the
//! hash chain.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use super::damage;
use super::event::{AuditError, Conclusion, NewEvent};

/// Most commands committed in one transaction.
pub(super) const MAX_BATCH: usize = 1024;

pub(super) enum Cmd {
    Insert(Box<NewEvent>, Option<oneshot::Sender<Result<i64, AuditError>>>),
    Finish {
        id: i64,
        outcome: &'static str,
        latency_us: i64,
    },
    SetState {
        key: String,
        value: String,
    },
    Flush(oneshot::Sender<()>),
    /// Several commands that arrive together.
    Many(Vec<Cmd>),
    // Retention: delete up to `max` of the oldest rows with an id up to
    // `through`; answers how many went.
    Prune {
        through: i64,
        max: u32,
        reply: PruneReply,
    },
    /// A person's answer ends the rows of the calls it decided.
    Concluded(Box<Conclusion>),
}

pub(super) type PruneReply = oneshot::Sender<Result<u64, AuditError>>;

/// What the writer thread owns, behind a lock so an insert may commit on
/// its caller's thread when the writer is idle.
pub(super) struct Store {
    pub(super) conn: Connection,
    /// The hash of the last committed row.
    pub(super) chain: String,
    /// Commands taken from the channel and not yet committed.
    pub(super) batch: Vec<Cmd>,
    /// Messages taken from the channel. Equal to [`Audit::sent`] when
    /// nothing sent is still in flight, so committing now keeps the order.
    pub(super) taken: u64,
    pub(super) path: PathBuf,
    pub(super) damage: damage::Shared,
}

impl Store {
    pub(super) fn commit(&mut self) {
        if let Some(e) = commit(&mut self.conn, &mut self.batch, &mut self.chain, &self.path)
            && damage::is_damage(&e)
        {
            damage::note(&self.damage, &self.path, &e.to_string());
        }
    }
}

impl Cmd {
    /// Someone waits for this: commit as soon as it is in.
    fn urgent(&self) -> bool {
        matches!(self, Cmd::Insert(_, Some(_)) | Cmd::Flush(_) | Cmd::Prune { .. })
    }
}

/// Work nobody waits for (outcomes, connection rows, saved state) is held
/// at most this long, so it joins the next call's commit instead of costing
/// a commit of its own.
pub(super) const DEFER: std::time::Duration = std::time::Duration::from_millis(5);

pub(super) fn writer(store: &Mutex<Store>, mut rx: mpsc::Receiver<Cmd>) {
    // A clock for the deferral; nothing else runs on it.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("the audit writer cannot start: {e}");
            return;
        }
    };
    let lock = || store.lock().unwrap_or_else(|e| e.into_inner());
    let mut deferred_since: Option<std::time::Instant> = None;
    loop {
        let next = match deferred_since {
            Some(since) => match rt
                .block_on(async { tokio::time::timeout(DEFER.saturating_sub(since.elapsed()), rx.recv()).await })
            {
                Ok(next) => next.map(Some),
                Err(_) => Some(None),
            },
            None => rx.blocking_recv().map(Some),
        };
        let mut store = lock();
        let Some(next) = next else {
            // Every sender is gone: write what is left and stop.
            store.commit();
            return;
        };
        let timed_out = next.is_none();
        if let Some(cmd) = next {
            store.taken += 1;
            push(&mut store.batch, cmd);
            while store.batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => {
                        store.taken += 1;
                        push(&mut store.batch, c);
                    }
                    Err(_) => break,
                }
            }
        }
        if timed_out || store.batch.len() >= MAX_BATCH || store.batch.iter().any(Cmd::urgent) {
            store.commit();
        }
        // An insert on its caller's thread may have committed the batch.
        deferred_since =
            if store.batch.is_empty() { None } else { Some(deferred_since.unwrap_or_else(std::time::Instant::now)) };
    }
}

pub(super) fn push(batch: &mut Vec<Cmd>, cmd: Cmd) {
    match cmd {
        Cmd::Many(cmds) => batch.extend(cmds),
        cmd => batch.push(cmd),
    }
}

/// Runs a batch in one transaction and answers whoever waits on it.
/// Commits the batch; returns the error when the transaction failed.
fn commit(conn: &mut Connection, batch: &mut Vec<Cmd>, chain: &mut String, path: &Path) -> Option<rusqlite::Error> {
    if batch.is_empty() {
        return None;
    }
    let mut replies: Vec<(oneshot::Sender<Result<i64, AuditError>>, i64)> = Vec::new();
    let mut flushes = Vec::new();
    let mut pruned: Vec<(oneshot::Sender<Result<u64, AuditError>>, u64)> = Vec::new();
    // The chain moves on only if the transaction commits.
    let mut tip = chain.clone();
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO events (time_ms, kind, server, session, tool, class, decision, reasons, args, \
                 args_hash, rule, approval_id, outcome, answered_by, detail, prev_hash, hash, seal) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )?;
            for cmd in batch.drain(..) {
                match cmd {
                    Cmd::Insert(ev, reply) => {
                        let reasons = serde_json::to_string(&ev.reasons).unwrap_or_else(|_| "[]".into());
                        let content = Content {
                            time_ms: ev.time_ms,
                            kind: ev.kind,
                            server: &ev.server,
                            session: &ev.session,
                            tool: &ev.tool,
                            class: &ev.class,
                            decision: &ev.decision,
                            reasons: &reasons,
                            args: &ev.args,
                            args_hash: &ev.args_hash,
                            rule: ev.rule.as_deref(),
                            detail: ev.detail.as_deref(),
                        };
                        let hash = content.hash(&tip);
                        let seal = seal(&hash, ev.outcome, None, ev.approval_id.as_deref(), ev.answered_by.as_deref());
                        let prev = std::mem::replace(&mut tip, hash.clone());
                        ins.execute(params![
                            ev.time_ms,
                            ev.kind,
                            ev.server,
                            ev.session,
                            ev.tool,
                            ev.class,
                            ev.decision,
                            reasons,
                            ev.args,
                            ev.args_hash,
                            ev.rule,
                            ev.approval_id,
                            ev.outcome,
                            ev.answered_by,
                            ev.detail,
                            prev,
                            hash,
                            seal,
                        ])?;
                        if let Some(reply) = reply {
                            replies.push((reply, tx.last_insert_rowid()));
                        }
                    }
                    Cmd::Finish { id, outcome, latency_us } => finish_row(&tx, id, outcome, latency_us)?,
                    Cmd::SetState { key, value } => {
                        tx.prepare_cached(
                            "INSERT INTO state (key, value) VALUES (?1, ?2) \
                             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        )?
                        .execute(params![key, value])?;
                    }
                    // Flattened by `push` before a batch is committed.
                    Cmd::Many(_) => unreachable!("nested commands reach commit"),
                    Cmd::Flush(done) => flushes.push(done),
                    Cmd::Prune { through, max, reply } => {
                        pruned.push((reply, delete_oldest(&tx, through, max)?));
                    }
                    Cmd::Concluded(c) => conclude(&tx, &c)?,
                }
            }
        }
        tx.commit()
    })();
    let failed = match result {
        Ok(()) => {
            *chain = tip;
            for (reply, id) in replies {
                let _ = reply.send(Ok(id));
            }
            for (reply, n) in pruned {
                let _ = reply.send(Ok(n));
            }
            None
        }
        Err(e) => {
            tracing::error!("audit write to {} failed: {e}", path.display());
            batch.clear();
            for (reply, _) in replies {
                let _ = reply.send(Err(AuditError::Write(e.to_string())));
            }
            for (reply, _) in pruned {
                let _ = reply.send(Err(AuditError::Write(e.to_string())));
            }
            Some(e)
        }
    };
    for f in flushes {
        let _ = f.send(());
    }
    failed
}

/// The fields of a row fixed when it is written, which its `hash` covers.
pub(super) struct Content<'a> {
    pub(super) time_ms: i64,
    pub(super) kind: &'a str,
    pub(super) server: &'a str,
    pub(super) session: &'a str,
    pub(super) tool: &'a str,
    pub(super) class: &'a str,
    pub(super) decision: &'a str,
    /// JSON text, as stored.
    pub(super) reasons: &'a str,
    pub(super) args: &'a str,
    pub(super) args_hash: &'a str,
    pub(super) rule: Option<&'a str>,
    pub(super) detail: Option<&'a str>,
}

impl Content<'_> {
    /// SHA-256 of the previous row's hash and this content, in canonical
    /// JSON (so the encoding is unambiguous).
    pub(super) fn hash(&self, prev: &str) -> String {
        latch_core::canonical::hash(&serde_json::json!([
            prev,
            self.time_ms,
            self.kind,
            self.server,
            self.session,
            self.tool,
            self.class,
            self.decision,
            self.reasons,
            self.args,
            self.args_hash,
            self.rule,
            self.detail,
        ]))
    }
}

/// SHA-256 of a row's hash and the fields completed after it was written.
pub(super) fn seal(
    hash: &str,
    outcome: Option<&str>,
    latency_us: Option<i64>,
    approval_id: Option<&str>,
    answered_by: Option<&str>,
) -> String {
    latch_core::canonical::hash(&serde_json::json!([hash, outcome, latency_us, approval_id, answered_by]))
}

/// [`seal`], covering a person's answer and its time too once the row has
/// one (rows without one keep the seal they always had).
pub(super) fn seal_answered(
    hash: &str,
    outcome: Option<&str>,
    latency_us: Option<i64>,
    approval_id: Option<&str>,
    answered_by: Option<&str>,
    answer: Option<&str>,
    answered_ms: Option<i64>,
) -> String {
    if answer.is_none() && answered_ms.is_none() {
        return seal(hash, outcome, latency_us, approval_id, answered_by);
    }
    latch_core::canonical::hash(&serde_json::json!([
        hash,
        outcome,
        latency_us,
        approval_id,
        answered_by,
        answer,
        answered_ms
    ]))
}

/// Writes a person's answer onto the rows of the calls it decided and seals
/// them again. A row that already has an answer keeps it.
fn conclude(tx: &rusqlite::Transaction<'_>, c: &Conclusion) -> rusqlite::Result<()> {
    let mut ids = c.ids.clone();
    if c.earlier {
        // Calls whose hold ended before the answer: the agent was told they
        // wait; they did not run (outcome `blocked`), the retry does.
        let mut stmt = tx.prepare_cached(
            "SELECT id FROM events WHERE approval_id = ?1 AND kind = 'call' AND decision = 'ask' \
             AND answer IS NULL AND outcome IS NOT NULL",
        )?;
        let earlier = stmt.query_map([&c.approval_id], |r| r.get::<_, i64>(0))?;
        for id in earlier {
            let id = id?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let mut update = tx.prepare_cached(
        "UPDATE events SET approval_id = ?2, answered_by = ?3, answer = ?4, answered_ms = ?5 \
         WHERE id = ?1 AND answer IS NULL",
    )?;
    for id in ids {
        if update.execute(params![id, c.approval_id, c.answered_by, c.answer, c.at_ms])? > 0 {
            reseal(tx, id)?;
        }
    }
    Ok(())
}

fn reseal(tx: &rusqlite::Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    use rusqlite::OptionalExtension;
    // A row retention already removed has nothing left to seal.
    let Some((hash, seal_now)) = tx
        .prepare_cached(
            "SELECT hash, outcome, latency_us, approval_id, answered_by, answer, answered_ms FROM events WHERE id = ?1",
        )?
        .query_row([id], |r| {
            let hash: Option<String> = r.get(0)?;
            let outcome: Option<String> = r.get(1)?;
            let latency: Option<i64> = r.get(2)?;
            let approval: Option<String> = r.get(3)?;
            let by: Option<String> = r.get(4)?;
            let answer: Option<String> = r.get(5)?;
            let answered_ms: Option<i64> = r.get(6)?;
            let s = hash.as_deref().map(|h| {
                seal_answered(
                    h,
                    outcome.as_deref(),
                    latency,
                    approval.as_deref(),
                    by.as_deref(),
                    answer.as_deref(),
                    answered_ms,
                )
            });
            Ok((hash, s))
        })
        .optional()?
    else {
        return Ok(());
    };
    if let (Some(_), Some(s)) = (hash, seal_now) {
        tx.prepare_cached("UPDATE events SET seal = ?2 WHERE id = ?1")?.execute(params![id, s])?;
    }
    Ok(())
}

/// Completes a call's row with its outcome and seals it again, in one
/// read and one write (every call does this).
fn finish_row(tx: &rusqlite::Transaction<'_>, id: i64, outcome: &str, latency_us: i64) -> rusqlite::Result<()> {
    use rusqlite::OptionalExtension;
    let row = tx
        .prepare_cached("SELECT hash, approval_id, answered_by, answer, answered_ms FROM events WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .optional()?;
    // A row retention already removed has nothing left to complete.
    let Some((hash, approval, by, answer, answered_ms)) = row else { return Ok(()) };
    let s = hash.as_deref().map(|h| {
        seal_answered(
            h,
            Some(outcome),
            Some(latency_us),
            approval.as_deref(),
            by.as_deref(),
            answer.as_deref(),
            answered_ms,
        )
    });
    tx.prepare_cached("UPDATE events SET outcome = ?2, latency_us = ?3, seal = COALESCE(?4, seal) WHERE id = ?1")?
        .execute(params![id, outcome, latency_us, s])?;
    Ok(())
}

/// The hash the next row chains to: the newest row's, or "" for a log with
/// no chained row yet.
pub(super) fn chain_tip(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("SELECT hash FROM events WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).or_else(
        |e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(String::new()),
            e => Err(e),
        },
    )
}

/// Deletes up to `max` of the oldest rows with an id up to `through` (run by
/// the writer, inside its transaction).
fn delete_oldest(tx: &rusqlite::Transaction<'_>, through: i64, max: u32) -> rusqlite::Result<u64> {
    let n = tx.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ?1 ORDER BY id LIMIT ?2)",
        params![through, max],
    )?;
    Ok(n as u64)
}
