//! The OTLP exporter: every audit row, in chain order, sent on to an
//! OpenTelemetry collector as a log record (`[export] otlp_endpoint`).
//!
//! # Beside the decision path
//!
//! It is one task that reads the *committed* log on a reader connection of
//! its own (on the blocking pool) and posts batches over HTTP. Nothing on
//! the decision path waits for it or asks it anything: a dead, slow or
//! hostile collector changes its status and nothing else.
//!
//! # The queue is the log
//!
//! The rows owed to the collector are the log's rows from a saved position
//! on ([`position`]: the next id, and the counts), so nothing is copied and
//! a row is owed from the moment it is recorded: a daemon killed with `-9`
//! while the collector is away loses nothing (the journal's rows are
//! committed by the next daemon, which goes on from the saved position).
//! The queue is bounded by `max_queue_rows`: when more rows than that are
//! owed, the oldest are skipped, counted as dropped, and an
//! `export_dropped` row says so (itself exported, with the counts as
//! attributes). Rows that left the log before they were sent (retention,
//! or a journal line lost when the machine stopped) count as dropped too:
//! every id below the position was delivered, rejected or dropped.
//!
//! The first time export is configured it records an `export_started` row
//! and starts there (`latch audit export` covers the past). A position
//! that is lost (a deleted file) starts again at the last such row: rows
//! are sent twice rather than skipped unseen.
//!
//! # Delivery
//!
//! At least once: a batch is sent again when the collector's answer was
//! lost (a timeout after it took the records) or the daemon died between
//! the answer and saving the position. `latch.audit.id` tells duplicates
//! apart. No connection, a timeout, 429 and 5xx are retried with
//! exponential backoff and jitter (`Retry-After` honoured); any other
//! status refuses the batch for good: it is counted as rejected, logged with
//! the status, and not sent again.

mod headers;
mod otlp;
mod pb;
mod position;
mod record;
mod send;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use latch_core::policy::ExportConf;
use latch_proto::msg::ExportStatus;
use tokio::task::JoinSet;

use crate::audit::NewEvent;
use crate::audit::tail::{StoredRow, Tail};
use crate::now_ms;
use crate::shared::Shared;
use position::Position;
use send::{Backoff, Sent};

/// The audit row that says rows were dropped before export.
pub(crate) const DROPPED_KIND: &str = "export_dropped";
/// The audit row that says where the export began: the first row sent.
const STARTED_KIND: &str = "export_started";
/// About the most text one request carries (collectors refuse large
/// bodies; the OpenTelemetry Collector's default limit is 20 MiB).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// How often a policy without `[export]` is looked at again.
const IDLE: Duration = Duration::from_secs(1);

/// Starts the exporter; it follows the policy's `[export]` section.
pub(crate) fn spawn(tasks: &mut JoinSet<()>, shared: Arc<Shared>) {
    tasks.spawn(run(shared));
}

struct Exporter {
    shared: Arc<Shared>,
    db: PathBuf,
    pos_path: PathBuf,
    pos: Option<Position>,
    tail: Option<Tail>,
    source: otlp::Source,
    backoff: Backoff,
    problem: Option<String>,
    waiting: u64,
}

async fn run(shared: Arc<Shared>) {
    let headers = headers::from(|k| std::env::var(k).ok());
    let pos_path = position::path_in(&shared.paths.data_dir);
    let seed = (now_ms() as u64) ^ (u64::from(std::process::id()) << 32);
    let mut ex = Exporter {
        db: shared.paths.database.clone(),
        pos: position::load(&pos_path),
        pos_path,
        shared,
        tail: None,
        source: source(),
        backoff: Backoff::new(seed),
        problem: None,
        waiting: 0,
    };
    let mut current: Option<(ExportConf, reqwest::Client)> = None;
    loop {
        let conf = ex.shared.engine().policy.export().cloned();
        let Some(conf) = conf else {
            ex.shared.engine().export = None;
            current = None;
            tokio::time::sleep(IDLE).await;
            continue;
        };
        if current.as_ref().is_none_or(|(c, _)| *c != conf) {
            match send::client(Duration::from_secs(conf.timeout_seconds), conf.loopback) {
                Ok(client) => current = Some((conf.clone(), client)),
                Err(e) => {
                    ex.report(&conf, Some(format!("cannot set up the HTTP client: {e}")));
                    tokio::time::sleep(IDLE).await;
                    continue;
                }
            }
        }
        let Some((_, client)) = &current else { continue };
        let interval = Duration::from_millis(conf.interval_ms);
        let headers = match &headers {
            Ok(h) => h,
            Err(e) => {
                // Sending without the headers the person set would only be
                // refused (and the records lost): nothing goes until fixed.
                ex.report(&conf, Some(format!("{e}; fix the variable and restart the daemon")));
                tokio::time::sleep(interval).await;
                continue;
            }
        };
        match ex.step(&conf, client, headers).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(interval).await,
            Err(problem) => {
                ex.report(&conf, Some(problem));
                tokio::time::sleep(interval).await;
            }
        }
    }
}

/// The resource and scope every request names.
fn source() -> otlp::Source {
    use otlp::Value::Str;
    let version = env!("CARGO_PKG_VERSION").to_owned();
    otlp::Source {
        resource: vec![
            ("service.name".into(), Str("latch".into())),
            ("service.version".into(), Str(version.clone())),
            ("host.name".into(), Str(host_name())),
        ],
        scope_name: "latch".into(),
        scope_version: version,
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// What one look at the log found.
struct Read {
    newest: i64,
    rows: Vec<StoredRow>,
}

impl Exporter {
    /// Sends the next batch, if any. `Ok(true)`: look again at once (a full
    /// batch went, or rows were dropped).
    async fn step(
        &mut self,
        conf: &ExportConf,
        client: &reqwest::Client,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<bool, String> {
        let Some(pos) = self.pos.clone() else {
            self.begin(conf).await?;
            return Ok(true);
        };
        let mut read = self.read(pos.next_id, conf.batch_size).await?;
        if pos.next_id > read.newest + 1 {
            // Rows journaled and not yet committed are not seen here: look
            // again once everything recorded is committed.
            self.shared.audit.flush().await;
            read = self.read(pos.next_id, conf.batch_size).await?;
        }
        if pos.next_id > read.newest + 1 {
            // Only an edited file is ahead of the log: rows recorded from
            // now on would be skipped unseen. The log's end is where to go on.
            tracing::warn!(
                "the export position (row {}) is ahead of the audit log (row {}): it was edited; exporting from \
                 the log's end",
                pos.next_id,
                read.newest
            );
            self.pos = Some(Position { next_id: read.newest + 1, ..pos });
            self.save()?;
            return Ok(true);
        }
        let owed = read.newest - pos.next_id + 1;
        self.waiting = owed.max(0) as u64;
        if owed > conf.max_queue_rows as i64 {
            let next = read.newest - conf.max_queue_rows as i64 + 1;
            let why = format!(
                "more than max_queue_rows = {} rows were waiting for the collector; the oldest were skipped",
                conf.max_queue_rows
            );
            self.dropped(pos.next_id, next, &why).await?;
            return Ok(true);
        }
        let Some(last) = read.rows.last().map(|r| r.id) else {
            let problem = self.problem.clone();
            self.report(conf, problem);
            return Ok(false);
        };
        // Ids below the first row, or between two, that are not in the log.
        let mut expected = pos.next_id;
        let mut missing = Vec::new();
        for r in &read.rows {
            if r.id > expected {
                missing.push((expected, r.id));
            }
            expected = r.id + 1;
        }
        // Counted once the batch around them is answered, in the same save
        // as the position: a daemon killed before that counts them again
        // rather than skipping the rows before them.
        const GONE: &str = "they were removed from the log (retention) before they were sent";
        let gone: u64 = missing.iter().map(|(a, b)| (b - a) as u64).sum();
        let observed = now_ms();
        let records: Vec<otlp::Record> = read.rows.iter().map(|r| record::of_row(r, observed)).collect();
        let body = otlp::request(&self.source, &records);
        let n = records.len() as u64;
        let first = read.rows[0].id;
        loop {
            match send::post(client, &conf.logs_url, headers, body.clone()).await {
                Sent::Delivered { rejected } => {
                    self.backoff.reset();
                    let rejected = rejected.min(n);
                    if rejected > 0 {
                        tracing::warn!("the collector refused {rejected} of rows {first}..={last} (partial success)");
                    }
                    self.advance(last, n - rejected, rejected, gone)?;
                    for &(a, b) in &missing {
                        self.tell_dropped(a, b, GONE).await;
                    }
                    self.waiting = (read.newest - last).max(0) as u64;
                    self.report(conf, None);
                    return Ok(last < read.newest);
                }
                Sent::Refused { status, why } => {
                    tracing::warn!("{why}: audit rows {first}..={last} are not sent again (HTTP {status})");
                    self.advance(last, 0, n, gone)?;
                    for &(a, b) in &missing {
                        self.tell_dropped(a, b, GONE).await;
                    }
                    self.report(conf, Some(format!("{why}; rows {first}..={last} were not sent again")));
                    return Ok(true);
                }
                Sent::Retry { after, why } => {
                    let pause = self.backoff.next(after);
                    self.report(conf, Some(format!("{why}; trying again in {} ms", pause.as_millis())));
                    tokio::time::sleep(pause).await;
                    // A new policy, or the bound reached meanwhile, starts over.
                    if self.shared.engine().policy.export() != Some(conf) {
                        return Ok(true);
                    }
                    let now = self.read(i64::MAX, 1).await?;
                    self.waiting = (now.newest - pos.next_id + 1).max(0) as u64;
                    if now.newest - pos.next_id + 1 > conf.max_queue_rows as i64 {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Where the export starts without a saved position: the first time,
    /// at an `export_started` row recorded now (so the log says when and
    /// where export began); when the position was lost (a deleted file),
    /// at the last such row, so rows are sent again rather than skipped
    /// unseen (the queue bound still applies, and counts what it drops).
    async fn begin(&mut self, conf: &ExportConf) -> Result<(), String> {
        let tail = self.tail.take();
        let db = self.db.clone();
        let (tail, began) = tokio::task::spawn_blocking(move || {
            let tail = match tail {
                Some(t) => t,
                None => match Tail::open(&db) {
                    Ok(t) => t,
                    Err(e) => return (None, Err(e.to_string())),
                },
            };
            let r = tail.last_of_kind(&db, STARTED_KIND).map_err(|e| e.to_string());
            (Some(tail), r)
        })
        .await
        .map_err(|e| format!("the export reader stopped: {e}"))?;
        self.tail = tail;
        let began = began.map_err(|e| format!("cannot read the audit log for export: {e}"))?;
        let next_id = match began {
            Some(id) => {
                tracing::warn!(
                    "the export position {} is missing; sending again from where export began (row {id})",
                    self.pos_path.display()
                );
                id
            }
            None => {
                let detail = format!("the audit log is exported to {} from this row on", conf.logs_url);
                let ev = NewEvent { time_ms: now_ms(), kind: STARTED_KIND, detail: Some(detail), ..Default::default() };
                let id = self
                    .shared
                    .audit
                    .insert(ev)
                    .await
                    .map_err(|e| format!("cannot record where export begins: {e}"))?;
                // Committed before the position names it.
                self.shared.audit.flush().await;
                id
            }
        };
        self.pos = Some(Position { next_id, ..Position::default() });
        self.save()?;
        self.report(conf, None);
        Ok(())
    }

    /// The newest committed id and up to `limit` rows from `from` on.
    async fn read(&mut self, from: i64, limit: u32) -> Result<Read, String> {
        let tail = self.tail.take();
        let db = self.db.clone();
        let (tail, result) = tokio::task::spawn_blocking(move || {
            let tail = match tail {
                Some(t) => t,
                None => match Tail::open(&db) {
                    Ok(t) => t,
                    Err(e) => return (None, Err(e.to_string())),
                },
            };
            let r = (|| {
                let newest = tail.newest(&db)?;
                let rows = if from <= newest { tail.rows_from(&db, from, limit, MAX_BATCH_BYTES)? } else { Vec::new() };
                Ok::<_, crate::audit::AuditError>(Read { newest, rows })
            })();
            (Some(tail), r.map_err(|e| e.to_string()))
        })
        .await
        .map_err(|e| format!("the export reader stopped: {e}"))?;
        // A reader that failed is opened anew next time.
        if result.is_ok() {
            self.tail = tail;
        }
        result.map_err(|e| format!("cannot read the audit log for export: {e}"))
    }

    /// The batch up to row `last` is answered: the position and the counts
    /// (`gone`: ids missing among its rows) in one save.
    fn advance(&mut self, last: i64, delivered: u64, rejected: u64, gone: u64) -> Result<(), String> {
        if let Some(p) = self.pos.as_mut() {
            p.next_id = p.next_id.max(last + 1);
            p.delivered += delivered;
            p.rejected += rejected;
            p.dropped += gone;
        }
        self.save()
    }

    /// Rows `from..to` (ids) past the queue bound: skipped, counted, saved
    /// and told.
    async fn dropped(&mut self, from: i64, to: i64, why: &str) -> Result<(), String> {
        let Some(p) = self.pos.as_mut() else { return Ok(()) };
        p.next_id = p.next_id.max(to);
        p.dropped += (to - from).max(0) as u64;
        self.save()?;
        self.tell_dropped(from, to, why).await;
        Ok(())
    }

    /// An `export_dropped` row (and a log line) for rows `from..to`, already
    /// counted.
    async fn tell_dropped(&mut self, from: i64, to: i64, why: &str) {
        let n = (to - from).max(0) as u64;
        let total = self.pos.as_ref().map_or(n, |p| p.dropped);
        let shared = self.shared.clone();
        let detail = format!(
            "{n} audit row(s) (ids {from} to {}) were not exported to the OpenTelemetry collector: {why}; {total} \
             dropped in all",
            to - 1
        );
        tracing::warn!("{detail}");
        let args = serde_json::json!({ "dropped": n, "dropped_total": total }).to_string();
        let ev = NewEvent { time_ms: now_ms(), kind: DROPPED_KIND, detail: Some(detail), args, ..Default::default() };
        shared.record(ev).await;
    }

    fn save(&self) -> Result<(), String> {
        match &self.pos {
            Some(p) => position::save(&self.pos_path, p)
                .map_err(|e| format!("cannot save the export position {}: {e}", self.pos_path.display())),
            None => Ok(()),
        }
    }

    /// Shows the export's state in `latch status`; a new problem is logged
    /// once.
    fn report(&mut self, conf: &ExportConf, problem: Option<String>) {
        if problem != self.problem {
            match &problem {
                Some(p) => tracing::warn!("OpenTelemetry export to {}: {p}", conf.logs_url),
                None if self.problem.is_some() => tracing::info!("OpenTelemetry export to {} works", conf.logs_url),
                None => {}
            }
        }
        self.problem = problem.clone();
        let p = self.pos.clone().unwrap_or_default();
        self.shared.engine().export = Some(ExportStatus {
            endpoint: conf.logs_url.clone(),
            delivered: p.delivered,
            dropped: p.dropped,
            rejected: p.rejected,
            waiting: self.waiting,
            problem,
        });
    }
}
