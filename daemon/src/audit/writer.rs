//! What the writer thread commits: [`Cmd`]s in one transaction per group,
//! the hash chain, the rows' hashes and seals (its loop is
//! [`super::run`]).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::damage;
use super::event::{AuditError, Conclusion, NewEvent};
use super::journal::{Entry, Journal};

/// Most commands committed in one transaction.
pub(super) const MAX_BATCH: usize = 1024;

pub(super) enum Cmd {
    /// A journaled row, its id, and its latency once its outcome joined it
    /// (see [`merge_outcomes`]).
    Insert(Box<NewEvent>, i64, Option<i64>),
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
    /// A `Finish` already written with its row (only inside a commit).
    Merged,
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

/// Who assigns row ids and appends to the journal, behind one lock so that
/// the journal, the ids and the writer's queue share one order.
pub(super) struct Seq {
    /// None for a log that refuses every row (it stands in memory).
    pub(super) journal: Option<Journal>,
    pub(super) next_id: i64,
}

/// What the writer thread owns.
pub(super) struct Store {
    pub(super) conn: Connection,
    /// The hash of the last committed row.
    pub(super) chain: String,
    /// Commands taken from the queue and not yet committed.
    pub(super) batch: Vec<Cmd>,
    /// Commands of a batch that failed to commit, tried again first.
    pub(super) retry: Vec<Cmd>,
    pub(super) path: PathBuf,
    pub(super) damage: damage::Shared,
}

impl Store {
    /// Commits the commands to retry and the batch; returns the newest row
    /// id committed, or the error.
    pub(super) fn commit(&mut self) -> Result<Option<i64>, rusqlite::Error> {
        if !self.retry.is_empty() {
            let mut all = std::mem::take(&mut self.retry);
            all.append(&mut self.batch);
            self.batch = all;
        }
        match commit(&mut self.conn, &mut self.batch, &mut self.chain, &self.path) {
            Ok(newest) => Ok(newest),
            Err((e, kept)) => {
                if damage::is_damage(&e) {
                    damage::note(&self.damage, &self.path, &e.to_string());
                }
                self.retry = kept;
                Err(e)
            }
        }
    }
}

impl Cmd {
    /// Someone waits for this: commit as soon as it is in.
    pub(super) fn urgent(&self) -> bool {
        matches!(self, Cmd::Flush(_) | Cmd::Prune { .. })
    }
}

/// The fields of a row as inserted.
pub(super) struct Row<'a> {
    pub(super) content: Content<'a>,
    pub(super) approval_id: Option<&'a str>,
    pub(super) outcome: Option<&'a str>,
    pub(super) latency_us: Option<i64>,
    pub(super) answered_by: Option<&'a str>,
}

impl<'a> Row<'a> {
    fn of_event(ev: &'a NewEvent, latency_us: Option<i64>, reasons: &'a str) -> Row<'a> {
        Row {
            content: Content {
                time_ms: ev.time_ms,
                kind: ev.kind,
                server: &ev.server,
                session: &ev.session,
                tool: &ev.tool,
                class: &ev.class,
                decision: &ev.decision,
                reasons,
                args: &ev.args,
                args_hash: &ev.args_hash,
                rule: ev.rule.as_deref(),
                detail: ev.detail.as_deref(),
            },
            approval_id: ev.approval_id.as_deref(),
            outcome: ev.outcome,
            latency_us,
            answered_by: ev.answered_by.as_deref(),
        }
    }

    pub(super) fn of_entry(e: &'a Entry, reasons: &'a str) -> Row<'a> {
        Row {
            content: Content {
                time_ms: e.time_ms,
                kind: &e.kind,
                server: &e.server,
                session: &e.session,
                tool: &e.tool,
                class: &e.class,
                decision: &e.decision,
                reasons,
                args: &e.args,
                args_hash: &e.args_hash,
                rule: e.rule.as_deref(),
                detail: e.detail.as_deref(),
            },
            approval_id: e.approval_id.as_deref(),
            outcome: e.outcome.as_deref(),
            latency_us: None,
            answered_by: e.answered_by.as_deref(),
        }
    }
}

pub(super) const INSERT_SQL: &str = "INSERT INTO events (id, time_ms, kind, server, session, tool, class, decision, \
     reasons, args, args_hash, rule, approval_id, outcome, answered_by, detail, prev_hash, hash, seal, latency_us) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

/// Inserts `row` as `id`, chained to `tip` (which moves on to its hash).
pub(super) fn insert_row(
    ins: &mut rusqlite::CachedStatement<'_>,
    id: i64,
    row: &Row<'_>,
    tip: &mut String,
) -> rusqlite::Result<()> {
    let c = &row.content;
    let hash = c.hash(tip);
    let seal = seal(&hash, row.outcome, row.latency_us, row.approval_id, row.answered_by);
    let prev = std::mem::replace(tip, hash);
    ins.execute(params![
        id,
        c.time_ms,
        c.kind,
        c.server,
        c.session,
        c.tool,
        c.class,
        c.decision,
        c.reasons,
        c.args,
        c.args_hash,
        c.rule,
        row.approval_id,
        row.outcome,
        row.answered_by,
        c.detail,
        prev,
        tip.as_str(),
        seal,
        row.latency_us,
    ])?;
    Ok(())
}

/// Runs a batch in one transaction and answers whoever waits on it.
/// Returns the newest row id inserted; on failure the error and the
/// commands to try again (every command but the answered ones).
#[allow(clippy::type_complexity)]
fn commit(
    conn: &mut Connection,
    batch: &mut Vec<Cmd>,
    chain: &mut String,
    path: &Path,
) -> Result<Option<i64>, (rusqlite::Error, Vec<Cmd>)> {
    if batch.is_empty() {
        return Ok(None);
    }
    merge_outcomes(batch);
    let mut flushes = Vec::new();
    let mut pruned: Vec<u64> = Vec::new();
    let mut newest = None;
    // The chain moves on only if the transaction commits.
    let mut tip = chain.clone();
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(INSERT_SQL)?;
            for cmd in batch.iter() {
                match cmd {
                    Cmd::Insert(ev, id, latency) => {
                        let reasons = serde_json::to_string(&ev.reasons).unwrap_or_else(|_| "[]".into());
                        insert_row(&mut ins, *id, &Row::of_event(ev, *latency, &reasons), &mut tip)?;
                        newest = Some(*id);
                    }
                    Cmd::Finish { id, outcome, latency_us } => finish_row(&tx, *id, outcome, *latency_us)?,
                    Cmd::SetState { key, value } => {
                        tx.prepare_cached(
                            "INSERT INTO state (key, value) VALUES (?1, ?2) \
                             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        )?
                        .execute(params![key, value])?;
                    }
                    Cmd::Flush(_) | Cmd::Merged => {}
                    Cmd::Prune { through, max, .. } => {
                        pruned.push(delete_oldest(&tx, *through, *max)?);
                    }
                    Cmd::Concluded(c) => conclude(&tx, c)?,
                }
            }
        }
        tx.commit()
    })();
    let mut kept = Vec::new();
    let mut counts = pruned.into_iter();
    let failed = result.err();
    for cmd in batch.drain(..) {
        match cmd {
            Cmd::Flush(done) => flushes.push(done),
            Cmd::Prune { reply, .. } => {
                let _ = reply.send(match &failed {
                    None => Ok(counts.next().unwrap_or(0)),
                    Some(e) => Err(AuditError::Write(e.to_string())),
                });
            }
            other if failed.is_some() => kept.push(other),
            _ => {}
        }
    }
    for f in flushes {
        let _ = f.send(());
    }
    match failed {
        None => {
            *chain = tip;
            Ok(newest)
        }
        Some(e) => {
            tracing::error!("audit write to {} failed: {e}", path.display());
            Err((e, kept))
        }
    }
}

/// A call's outcome that arrives in the same batch as its row is written
/// with the row: one insert instead of an insert, a read and an update, and
/// one seal instead of two (the stored row is the same).
fn merge_outcomes(batch: &mut Vec<Cmd>) {
    let mut rows: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    let mut merged = false;
    for i in 0..batch.len() {
        match &batch[i] {
            Cmd::Insert(_, id, _) => {
                rows.insert(*id, i);
            }
            &Cmd::Finish { id, outcome, latency_us } => {
                if let Some(&at) = rows.get(&id)
                    && let Cmd::Insert(ev, _, latency) = &mut batch[at]
                    && ev.outcome.is_none()
                {
                    ev.outcome = Some(outcome);
                    *latency = Some(latency_us);
                    batch[i] = Cmd::Merged;
                    merged = true;
                }
            }
            _ => {}
        }
    }
    if merged {
        batch.retain(|c| !matches!(c, Cmd::Merged));
    }
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
    ///
    /// Written straight into the hash: an array of strings, integers and
    /// nulls serialises to its canonical form already (no spaces; strings
    /// escaped as RFC 8785 says, `\u00xx` in lower case), so no copy of the
    /// row is built (`content_hash_is_canonical` checks it against
    /// [`latch_core::canonical::hash`]).
    pub(super) fn hash(&self, prev: &str) -> String {
        sha256_of_json(&(
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
        ))
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
    sha256_of_json(&(hash, outcome, latency_us, approval_id, answered_by))
}

/// SHA-256 (hex) of a value's compact JSON, for tuples of strings, integers
/// and nulls only, whose compact JSON is their canonical form.
fn sha256_of_json<T: serde::Serialize>(value: &T) -> String {
    use sha2::Digest;
    struct Sink(sha2::Sha256);
    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Sink(sha2::Sha256::new());
    // Writing strings and numbers into a hash cannot fail.
    let _ = serde_json::to_writer(&mut sink, value);
    let digest = sink.0.finalize();
    let mut out = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
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
    sha256_of_json(&(hash, outcome, latency_us, approval_id, answered_by, answer, answered_ms))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_is_canonical() {
        let texts = [
            "",
            "plain",
            "quote \" backslash \\ slash / tab \t nl \n cr \r ff \u{c} bs \u{8}",
            "controls \u{0}\u{1}\u{1f} del \u{7f}",
            "unicode é ü 漢字 😀 \u{2028}\u{2029}",
            "{\"k\":[1,2,{\"x\":null}]}",
        ];
        for (i, t) in texts.iter().enumerate() {
            let c = Content {
                time_ms: -5 + i as i64 * 1_000_000_007,
                kind: t,
                server: t,
                session: "s",
                tool: t,
                class: "READ",
                decision: "allow",
                reasons: t,
                args: t,
                args_hash: "ab",
                rule: if i % 2 == 0 { None } else { Some(t) },
                detail: if i % 3 == 0 { Some(t) } else { None },
            };
            let old = latch_core::canonical::hash(&serde_json::json!([
                t,
                c.time_ms,
                c.kind,
                c.server,
                c.session,
                c.tool,
                c.class,
                c.decision,
                c.reasons,
                c.args,
                c.args_hash,
                c.rule,
                c.detail,
            ]));
            assert_eq!(c.hash(t), old, "{t:?}");
            let old_seal =
                latch_core::canonical::hash(&serde_json::json!([t, Some(*t), Some(7), None::<&str>, Some(*t)]));
            assert_eq!(seal(t, Some(t), Some(7), None, Some(t)), old_seal, "{t:?}");
            let ms = Some(c.time_ms);
            let old_answered = latch_core::canonical::hash(&serde_json::json!([
                t,
                None::<&str>,
                Some(7),
                Some(*t),
                Some(*t),
                Some(*t),
                ms
            ]));
            assert_eq!(seal_answered(t, None, Some(7), Some(t), Some(t), Some(t), ms), old_answered, "{t:?}");
        }
    }
}
