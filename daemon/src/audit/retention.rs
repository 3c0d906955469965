//! Retention: removing the log's oldest rows without breaking its chain.
//!
//! The policy's `[audit]` section (`keep_days`, `max_rows`; off by default:
//! a security tool does not delete its evidence unless asked) says which
//! rows may go. A run removes a *prefix* of the log, rows `from..=through`,
//! so the remaining rows still chain to one another; where the chain now
//! starts is recorded first, in a **checkpoint row** (`kind = "retention"`)
//! appended to the chain like any other row, whose `detail` names the last
//! removed row (id, hash, prev_hash), how many rows went, and why. `verify`
//! accepts a log whose first row chains to that named row, and nothing else:
//! rows cut by hand still show as tampering, and a checkpoint that was
//! edited fails its own hash.
//!
//! Steps of a run, each committed on its own:
//! 1. plan on a reader connection (never on the writer): which prefix goes;
//! 2. the checkpoint row, through the writer like any row;
//! 3. deletes of at most [`BATCH`] rows each, one writer command at a time,
//!    so calls queued meanwhile are committed between two batches and the
//!    database is never locked for long.
//!
//! A crash between 2 and 3 leaves a checkpoint whose rows are partly still
//! there: `verify` accepts it (the rows left lead to the named row's hash)
//! and the next run finishes the deletes first. A run refuses to start on a
//! log whose first rows were already cut without a checkpoint, so retention
//! never covers up tampering.
//!
//! The daemon runs it at start-up and hourly ([`every_hour`]);
//! `latch audit prune` runs it on demand ([`prune_offline`] when no daemon
//! runs, so two writers never race for the chain's end).

use std::path::Path;
use std::time::Duration;

use latch_core::policy::AuditSettings;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::Audit;
use super::event::{AuditError, NewEvent, sql};
use super::open::open_reader;
use super::writer::Cmd;

/// Most rows one delete removes (one writer transaction of a few
/// milliseconds; see `benches/history.rs`).
pub const BATCH: u32 = 250;
/// How often the daemon looks for rows to remove.
pub const PERIOD: Duration = Duration::from_secs(3_600);

/// A checkpoint row: what one retention run removed, as stored in its
/// `detail` (the row's hash covers it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint row's own id (not stored in `detail`).
    #[serde(skip)]
    pub id: i64,
    /// When it was written (the row's `time_ms`; not stored in `detail`).
    #[serde(skip)]
    pub time_ms: i64,
    /// The oldest row removed, counting earlier runs whose checkpoints this
    /// one continues.
    pub from_id: i64,
    /// The last (newest) row removed: the chain starts after it.
    pub through_id: i64,
    pub through_hash: String,
    pub through_prev_hash: String,
    /// Time of the last removed row.
    pub through_time_ms: i64,
    /// Rows removed in `from_id..=through_id`, earlier runs included.
    pub removed: u64,
    /// The settings that removed them, e.g. `keep_days = 90`.
    pub reason: String,
}

/// A verified log's start after retention: the checkpoint and the first row
/// the chain was checked from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retained {
    pub checkpoint: Checkpoint,
    pub first_row: i64,
}

impl Retained {
    /// "rows 1..9000 (9000 rows, up to 2026-08-26 10:00 UTC) removed by
    /// retention on 2026-11-24 19:00 UTC (keep_days = 90); chain verified
    /// from row 9001".
    pub fn describe(&self) -> String {
        let c = &self.checkpoint;
        let mut s = format!(
            "rows {}..{} ({} rows, up to {}) removed by retention on {} ({}); chain verified from row {}",
            c.from_id,
            c.through_id,
            c.removed,
            utc(c.through_time_ms),
            utc(c.time_ms),
            c.reason,
            self.first_row
        );
        if self.first_row <= c.through_id {
            s.push_str(&format!(
                " (removal still under way: rows {}..{} are still here)",
                self.first_row, c.through_id
            ));
        }
        s
    }
}

/// What a run removes, found before anything is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The checkpoint this run will write.
    pub checkpoint: Checkpoint,
    /// Rows this run removes (the checkpoint's `removed` counts earlier runs
    /// too), the oldest of them first.
    pub rows: u64,
    pub first_row: i64,
    /// Time of the oldest row this run removes.
    pub oldest_ms: i64,
}

/// What [`Audit::prune`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The plan carried out (`None`: nothing was old enough).
    pub plan: Option<Plan>,
    /// The checkpoint row written.
    pub checkpoint_row: Option<i64>,
    /// Rows deleted by this run, leftovers of an interrupted run included.
    pub deleted: u64,
    /// Writer transactions the deletes took.
    pub batches: u32,
}

impl Pruned {
    pub fn describe(&self) -> String {
        match &self.plan {
            None if self.deleted == 0 => "nothing to remove".to_owned(),
            None => format!("finished an interrupted run: {} rows removed", self.deleted),
            Some(p) => format!(
                "removed rows {}..{} ({} rows, {} to {}) because of {}; checkpoint row {}",
                p.first_row,
                p.checkpoint.through_id,
                p.rows,
                utc(p.oldest_ms),
                utc(p.checkpoint.through_time_ms),
                p.checkpoint.reason,
                self.checkpoint_row.map(|r| r.to_string()).unwrap_or_default()
            ),
        }
    }
}

/// Every checkpoint row, oldest first (through the partial index of
/// migration 0004: no scan of the log).
pub fn checkpoints(conn: &Connection) -> rusqlite::Result<Vec<Checkpoint>> {
    let mut stmt = conn.prepare("SELECT id, time_ms, detail FROM events WHERE kind = 'retention' ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        let detail: Option<String> = r.get(2)?;
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, detail))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, time_ms, detail) = row?;
        // A checkpoint whose detail does not parse accounts for nothing
        // (and fails its hash if it was edited).
        if let Some(c) = detail.and_then(|d| serde_json::from_str::<Checkpoint>(&d).ok()) {
            out.push(Checkpoint { id, time_ms, ..c });
        }
    }
    Ok(out)
}

/// The checkpoint that accounts for a log whose first chained row is
/// `first_id` with `prev_hash`: the one naming that row's predecessor, or
/// one whose removal is still under way past `first_id`.
pub fn covering<'c>(checkpoints: &'c [Checkpoint], first_id: i64, prev_hash: &str) -> Option<&'c Checkpoint> {
    if prev_hash.is_empty() {
        return None;
    }
    checkpoints
        .iter()
        .rev()
        .find(|c| c.through_hash == prev_hash && c.through_id < first_id)
        .or_else(|| checkpoints.iter().filter(|c| c.through_id >= first_id).min_by_key(|c| c.through_id))
}

/// Which prefix of the log `settings` remove at `now_ms`, read on its own
/// connection. `None` when nothing is old enough. Refuses a log whose
/// first rows were cut without a checkpoint.
pub fn plan(path: &Path, settings: &AuditSettings, now_ms: i64) -> Result<Option<Plan>, AuditError> {
    let conn = open_reader(path)?;
    plan_on(&conn, settings, now_ms).map_err(|e| match e {
        PlanError::Sql(e) => sql(path, e),
        PlanError::Cut(row) => AuditError::Unusable {
            path: path.to_owned(),
            why: format!(
                "its rows before row {row} were removed without a retention checkpoint, so retention will not \
                 remove more"
            ),
            fix: "run `latch audit verify` and keep a copy of the file as evidence; then move it away to start a \
                  new log"
                .into(),
        },
    })
}

enum PlanError {
    Sql(rusqlite::Error),
    Cut(i64),
}

impl From<rusqlite::Error> for PlanError {
    fn from(e: rusqlite::Error) -> Self {
        PlanError::Sql(e)
    }
}

fn plan_on(conn: &Connection, settings: &AuditSettings, now_ms: i64) -> Result<Option<Plan>, PlanError> {
    if settings.keeps_everything() {
        return Ok(None);
    }
    // One read transaction: every query below sees the same log.
    conn.execute_batch("BEGIN")?;
    let result = plan_in(conn, settings, now_ms);
    let _ = conn.execute_batch("COMMIT");
    result
}

fn plan_in(conn: &Connection, settings: &AuditSettings, now_ms: i64) -> Result<Option<Plan>, PlanError> {
    let one = |q: &str, p: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<Option<i64>> {
        conn.query_row(q, p, |r| r.get::<_, Option<i64>>(0)).optional().map(Option::flatten)
    };
    let Some(first) = one("SELECT min(id) FROM events", &[])? else {
        return Ok(None);
    };
    // Where the chain starts now, and the checkpoint that accounts for it.
    let start: Option<(i64, Option<String>)> = conn
        .query_row("SELECT id, prev_hash FROM events WHERE hash IS NOT NULL ORDER BY id LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let cps = checkpoints(conn)?;
    let before = match &start {
        Some((id, Some(prev))) if !prev.is_empty() => match covering(&cps, *id, prev) {
            Some(c) => Some(c.clone()),
            None => return Err(PlanError::Cut(*id)),
        },
        _ => None,
    };
    // Rows up to here are already accounted for by an earlier checkpoint.
    let done = before.as_ref().map_or(first - 1, |c| c.through_id.max(first - 1));

    let mut through: Option<i64> = None;
    if let Some(days) = settings.keep_days {
        let cutoff = now_ms.saturating_sub((days as i64).saturating_mul(86_400_000));
        // The prefix of rows older than the cutoff: stop at the first
        // young one, even if an older-stamped row follows it.
        let young =
            one("SELECT id FROM events WHERE id > ?1 AND time_ms >= ?2 ORDER BY id LIMIT 1", &[&done, &cutoff])?;
        let last_old = match young {
            Some(y) => one("SELECT max(id) FROM events WHERE id < ?1", &[&y])?,
            None => one("SELECT max(id) FROM events", &[])?,
        };
        through = through.max(last_old);
    }
    if let Some(max_rows) = settings.max_rows {
        // Only a log over the limit is cut, down to max_rows - 1 rows: the
        // checkpoint makes max_rows (so a log at the limit stays as it is).
        let limit = max_rows.min(i64::MAX as u64) as i64;
        let nth = |offset: i64| one("SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1", &[&offset]);
        if nth(limit)?.is_some() {
            through = through.max(nth(limit - 1)?);
        }
    }
    let Some(through) = through.filter(|t| *t > done) else {
        return Ok(None);
    };
    let (through_hash, through_prev_hash, through_time_ms): (Option<String>, Option<String>, i64) =
        conn.query_row("SELECT hash, prev_hash, time_ms FROM events WHERE id = ?1", [through], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let (rows, oldest_ms, first_row): (i64, Option<i64>, Option<i64>) = conn.query_row(
        "SELECT count(*), min(time_ms), min(id) FROM events WHERE id > ?1 AND id <= ?2",
        [done, through],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (from_id, removed_before) = match &before {
        Some(c) => (c.from_id, c.removed),
        None => (first, 0),
    };
    Ok(Some(Plan {
        checkpoint: Checkpoint {
            id: 0,
            time_ms: now_ms,
            from_id,
            through_id: through,
            through_hash: through_hash.unwrap_or_default(),
            through_prev_hash: through_prev_hash.unwrap_or_default(),
            through_time_ms,
            removed: removed_before + rows as u64,
            reason: settings.describe(),
        },
        rows: rows as u64,
        first_row: first_row.unwrap_or(through),
        oldest_ms: oldest_ms.unwrap_or(through_time_ms),
    }))
}

impl Audit {
    /// One retention run: finishes an interrupted one, then plans, writes
    /// the checkpoint and deletes in batches of [`BATCH`], each its own
    /// writer transaction. Runs never overlap.
    pub async fn prune(&self, settings: AuditSettings, now_ms: i64) -> Result<Pruned, AuditError> {
        let _one_at_a_time = self.pruning.lock().await;
        let mut out = Pruned::default();
        // Leftovers of a run that stopped half way (crash, shutdown).
        let path = self.path.clone();
        // Retention's reading yields to the decision path ([`crate::background`]).
        let leftover = crate::background::run("latch-retention", move || -> Result<Option<i64>, AuditError> {
            let conn = open_reader(&path)?;
            let last = checkpoints(&conn).map_err(|e| sql(&path, e))?.pop();
            let first: Option<i64> =
                conn.query_row("SELECT min(id) FROM events", [], |r| r.get(0)).map_err(|e| sql(&path, e))?;
            Ok(last.filter(|c| first.is_some_and(|f| f <= c.through_id)).map(|c| c.through_id))
        })
        .await
        .ok_or_else(|| AuditError::Write("retention's reading stopped".into()))??;
        if let Some(through) = leftover {
            self.delete_through(through, &mut out).await?;
        }
        let path = self.path.clone();
        let plan = crate::background::run("latch-retention", move || plan(&path, &settings, now_ms))
            .await
            .ok_or_else(|| AuditError::Write("retention's reading stopped".into()))??;
        let Some(plan) = plan else {
            return Ok(out);
        };
        let detail = serde_json::to_string(&plan.checkpoint).map_err(|e| AuditError::Write(e.to_string()))?;
        let row = self
            .insert(NewEvent {
                time_ms: now_ms,
                kind: "retention",
                reasons: vec![format!("{} rows removed because of {}", plan.rows, plan.checkpoint.reason)],
                detail: Some(detail),
                ..Default::default()
            })
            .await?;
        out.checkpoint_row = Some(row);
        self.delete_through(plan.checkpoint.through_id, &mut out).await?;
        out.plan = Some(plan);
        Ok(out)
    }

    async fn delete_through(&self, through: i64, out: &mut Pruned) -> Result<(), AuditError> {
        loop {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.send(Cmd::Prune { through, max: BATCH, reply: tx }).await?;
            let n = rx.await.map_err(|_| AuditError::WriterGone)??;
            out.deleted += n;
            out.batches += 1;
            if n < BATCH as u64 {
                return Ok(());
            }
            // Let whatever queued meanwhile reach the writer first.
            tokio::task::yield_now().await;
        }
    }
}

/// The daemon's timer: a run at start-up, then every [`PERIOD`], with the
/// settings of the policy in force at that moment.
pub async fn every_hour(audit: Audit, settings: impl Fn() -> AuditSettings) {
    let mut every = tokio::time::interval(PERIOD);
    loop {
        every.tick().await;
        match audit.prune(settings(), crate::now_ms()).await {
            Ok(p) if p.deleted > 0 => tracing::info!("retention: {}", p.describe()),
            Ok(_) => {}
            Err(e) => tracing::warn!("retention did not run: {e}"),
        }
    }
}

/// `latch audit prune` with no daemon running: holds the daemon's lock for
/// the run, so only one writer ever appends to the chain (a daemon started
/// meanwhile finds the lock taken and exits; a shim that needed it fails
/// closed, as with no daemon).
pub fn prune_offline(
    paths: &latch_proto::paths::Paths,
    settings: AuditSettings,
    now_ms: i64,
) -> Result<Pruned, crate::DaemonError> {
    let _lock = crate::lock::Lock::acquire(&paths.data_dir)?;
    let audit = Audit::open(&paths.database)?;
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(crate::io_err(&paths.database))?;
    let pruned = rt.block_on(async {
        let p = audit.prune(settings, now_ms).await;
        audit.flush().await;
        p
    })?;
    Ok(pruned)
}

/// "2026-11-24 19:05 UTC" from Unix milliseconds.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = latch_proto::civil::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3_600, rem % 3_600 / 60)
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_000_000_000), "2026-11-18 11:06 UTC");
    }
}
