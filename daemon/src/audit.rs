//! The audit store: SQLite in WAL mode, owned by one writer thread, with a
//! journal in front.
//!
//! A row is recorded when it is appended to the journal ([`journal`]: one
//! `write(2)`, durable against the death of any process): the daemon
//! answers a call then, without waiting for SQLite. The row also goes to the
//! writer thread's [`queue`], which commits rows in groups (what gathered in
//! a few milliseconds, up to [`MAX_BATCH`]), and the journal is emptied once
//! everything in it is committed. A daemon that starts commits what its
//! journal holds beyond the log's newest row before anything else
//! ([`ingest`]). Ids are fixed when a row is journaled, under the one lock
//! that also orders the journal and the queue, so the log's order and hash
//! chain are the journal's. While the writer cannot commit (a full disk),
//! the rows it holds stay in the journal and are tried again, and new rows
//! are refused (fail closed) until it can. Reads (the CLI, the console's
//! history) use their own short-lived connections on the blocking pool;
//! WAL lets them run beside the writer, and what must see every row first
//! waits for [`Audit::flush`]. Checkpoints (which fsync) run on a thread of
//! their own every second, never on the writer.
//!
//! The log is a hash chain ([`verify`]): each row's `hash` covers its
//! content and the previous row's hash, and its `seal` covers that hash and
//! the fields completed later (outcome, latency, approval, who answered).
//! Old rows leave only through [`retention`], which removes a prefix of the
//! log and leaves a chained checkpoint row saying what went and why.
//!
//! [`Audit::open`] refuses a database it cannot use safely and says how to
//! fix it: one that others may read or write, that belongs to someone else,
//! that sits in a folder others may write to (or read, once it holds a log),
//! that is not SQLite, or whose schema is newer than this binary's.

mod cells;
pub mod damage;
mod event;
mod ingest;
mod journal;
mod open;
mod queue;
mod read;
pub mod recorded;
pub mod retention;
mod run;
pub mod tail;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use latch_proto::{AuditFilter, AuditRow};
use rusqlite::Connection;
use tokio::sync::oneshot;

use event::sql;
pub use event::{AuditError, Conclusion, NewEvent};
pub use journal::path_of as journal_path;
use open::open_reader;
pub use open::{check_place, current_uid};
use open::{migrate, open_checked};
use queue::Queue;
pub use read::query_rows;
pub use read::{ExportFormat, Verified, export, verify};
use writer::{Cmd, MAX_BATCH, Seq, Store, chain_tip};

/// Largest database checked for damage before the daemon answers.
const INLINE_CHECK_BYTES: u64 = 32 * 1024 * 1024;
/// A journal this long makes the next row wait until everything in it is
/// committed, so that it can be emptied even under constant load.
const JOURNAL_LIMIT: u64 = 4 * 1024 * 1024;

/// Tests only: every writer in this process waits `ms` before each commit
/// (0: commits as usual), so that rows stay in the journal alone.
#[doc(hidden)]
pub fn hold_commits_for_tests(ms: u64) {
    run::HOLD_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

/// A cheap handle to the writer thread.
#[derive(Clone)]
pub struct Audit {
    queue: Arc<Sender>,
    seq: Arc<Mutex<Seq>>,
    path: PathBuf,
    /// One retention run at a time (the timer and `latch audit prune`).
    pruning: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Damage found in the file: every insert is refused once set.
    damage: damage::Shared,
}

/// The writer's queue while a handle lives: the last one gone closes it.
struct Sender(Arc<Queue>);

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Audit {
    /// Opens (creating if needed) the database, checks it is private, runs
    /// migrations and starts the writer thread. A thread of its own then
    /// checks the file ([`damage::inspect`]); damage it finds makes every
    /// later insert fail.
    ///
    /// Rows the last daemon journaled and did not commit are committed
    /// first; the journal is then emptied and opened for this daemon.
    pub fn open(path: &Path) -> Result<Audit, AuditError> {
        let mut conn = open_checked(path)?;
        let mut chain = chain_tip(&conn).map_err(|e| sql(path, e))?;
        let jpath = journal::path_of(path);
        ingest::ingest(&mut conn, path, &jpath, &mut chain)?;
        let io = |e| AuditError::Io { path: jpath.clone(), source: e };
        let mut journal = journal::Journal::open(&jpath).map_err(io)?;
        journal.clear().map_err(io)?;
        let newest = ingest::newest_id(&conn).map_err(|e| sql(path, e))?;
        let audit = Audit::start(path, conn, chain, Some(journal), newest)?;
        let (p, shared) = (path.to_owned(), audit.damage.clone());
        // A small file is checked before the first call is decided; a large
        // one (seconds of reading) beside the calls.
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size <= INLINE_CHECK_BYTES {
            if let Some(d) = damage::inspect(&p) {
                damage::note(&shared, &p, &d.problems.join("; "));
            }
            return Ok(audit);
        }
        crate::background::spawn("latch-audit-check", move || {
            if let Some(d) = damage::inspect(&p) {
                damage::note(&shared, &p, &d.problems.join("; "));
            }
        })
        .map_err(|e| AuditError::Io { path: path.to_owned(), source: e })?;
        Ok(audit)
    }

    /// [`Audit::open`], except that a database that is damaged or cannot be
    /// used ([`AuditError::Unusable`]) gives a log that refuses every insert
    /// and says why, so the daemon can start and tell the person. Unsafe
    /// places and other errors are still errors.
    pub fn open_or_refusing(path: &Path) -> Result<Audit, AuditError> {
        let why = match Audit::open(path) {
            Ok(a) => return Ok(a),
            Err(AuditError::Sqlite { source, .. }) if damage::is_damage(&source) => source.to_string(),
            Err(AuditError::Unusable { why, fix, .. }) => format!("{why}; {fix}"),
            Err(e) => return Err(e),
        };
        // An empty log in memory stands in for the file, so that reads of
        // state and retention find nothing instead of failing.
        let conn = Connection::open_in_memory().map_err(|e| sql(path, e))?;
        migrate(path, &conn)?;
        let audit = Audit::start(path, conn, String::new(), None, 0)?;
        damage::note(&audit.damage, path, &why);
        Ok(audit)
    }

    /// The writer (and, with a journal, the checkpoint thread) over `conn`,
    /// whose newest row is `newest`.
    fn start(
        path: &Path,
        conn: Connection,
        chain: String,
        journal: Option<journal::Journal>,
        newest: i64,
    ) -> Result<Audit, AuditError> {
        let damage = damage::Shared::default();
        let checkpoints = journal.is_some();
        let mut store = Store {
            conn,
            chain,
            batch: Vec::with_capacity(MAX_BATCH),
            retry: Vec::new(),
            path: path.to_owned(),
            damage: damage.clone(),
        };
        let queue = Arc::new(Queue::new(newest));
        let seq = Arc::new(Mutex::new(Seq { journal, next_id: newest + 1 }));
        let (q, s) = (queue.clone(), seq.clone());
        // Below the decision path's priority: its group commits must not
        // preempt a call being decided ([`crate::background`]).
        crate::background::spawn("latch-audit", move || run::writer(&mut store, &q, &s))
            .map_err(|e| AuditError::Io { path: path.to_owned(), source: e })?;
        let sender = Arc::new(Sender(queue));
        if checkpoints {
            let checkpoints = Connection::open(path).map_err(|e| sql(path, e))?;
            let p = path.to_owned();
            let alive: Weak<Sender> = Arc::downgrade(&sender);
            let noted = damage.clone();
            crate::background::spawn("latch-checkpoint", move || {
                // Until the daemon drops its last handle.
                while alive.upgrade().is_some() {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    if let Err(e) = checkpoints.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        if damage::is_damage(&e) {
                            damage::note(&noted, &p, &e.to_string());
                        } else {
                            tracing::error!("checkpoint of {} failed: {e}", p.display());
                        }
                    }
                }
            })
            .map_err(|e| AuditError::Io { path: path.to_owned(), source: e })?;
        }
        Ok(Audit { queue: sender, seq, path: path.to_owned(), pruning: Default::default(), damage })
    }

    /// What a person should know when the log is damaged: the finding for
    /// `latch status` and the console.
    pub fn finding(&self) -> Option<String> {
        damage::noted(&self.damage).map(|why| damage::finding(&self.path, &why))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a row: appends it to the journal and queues it for the
    /// writer; returns its id. Once this returns the row survives the death
    /// of the daemon (it is committed within a few milliseconds, or by the
    /// next daemon); use [`Audit::flush`] to wait for the commit.
    pub async fn insert(&self, ev: NewEvent) -> Result<i64, AuditError> {
        if let Some(why) = damage::noted(&self.damage) {
            return Err(AuditError::Damaged { path: self.path.clone(), why });
        }
        // The log cannot be written: nothing new is recorded until the
        // rows waiting are committed (tried again now).
        if self.queue.0.stuck().is_some() {
            self.flush().await;
            if let Some(why) = self.queue.0.stuck() {
                return Err(AuditError::Write(why));
            }
        }
        // A long journal is emptied before it grows further.
        if self.journal_len() >= JOURNAL_LIMIT {
            self.flush().await;
            run::clear_if_committed(&self.queue.0, &self.seq, 0);
        }
        self.queue.0.reserve().await?;
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let id = seq.next_id;
        if let Some(journal) = seq.journal.as_mut()
            && let Err(e) = journal.append(&journal::line(id, &ev))
        {
            drop(seq);
            self.queue.0.unreserve();
            return Err(AuditError::Io { path: journal::path_of(&self.path), source: e });
        }
        seq.next_id += 1;
        // Queued under the lock: the writer commits rows in id order.
        self.queue.0.push(Cmd::Insert(Box::new(ev), id, None));
        Ok(id)
    }

    /// Why the writer cannot commit, while rows wait to be tried again.
    pub fn stuck(&self) -> Option<String> {
        self.queue.0.stuck()
    }

    fn journal_len(&self) -> u64 {
        let seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        seq.journal.as_ref().map_or(0, |j| j.len())
    }

    /// Hands `cmd` to the writer thread.
    async fn send(&self, cmd: Cmd) -> Result<(), AuditError> {
        self.queue.0.reserve().await?;
        self.queue.0.push(cmd);
        Ok(())
    }

    /// Records a row without waiting for anything but room in the queue.
    pub async fn record(&self, ev: NewEvent) {
        if let Err(e) = self.insert(ev).await {
            tracing::warn!("an audit row could not be recorded: {e}");
        }
    }

    /// Completes a call's row with its outcome (committed with the next
    /// group).
    pub async fn finish(&self, id: i64, outcome: &'static str, latency_us: i64) {
        let _ = self.send(Cmd::Finish { id, outcome, latency_us }).await;
    }

    /// Ends the rows of the calls a person's answer decided: the answer,
    /// who gave it and when (the wait is its time less the call's).
    pub async fn concluded(&self, c: Conclusion) {
        let _ = self.send(Cmd::Concluded(Box::new(c))).await;
    }

    pub async fn set_state(&self, key: &str, value: String) {
        let _ = self.send(Cmd::SetState { key: key.to_owned(), value }).await;
    }

    /// Waits until everything sent before is committed (or failed to be).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Cmd::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Reads one state value (blocking: call from the blocking pool or at
    /// start-up).
    pub fn get_state(&self, key: &str) -> Result<Option<String>, AuditError> {
        let conn = open_reader(&self.path)?;
        let v = conn
            .query_row("SELECT value FROM state WHERE key = ?1", [key], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| sql(&self.path, e))?;
        Ok(v)
    }

    /// Rows newest first, paged by id (keyset paging: as fast on a million
    /// rows as on ten).
    pub async fn query(
        &self,
        filter: AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, AuditError> {
        let path = self.path.clone();
        // Reading history yields to the decision path ([`crate::background`]).
        crate::background::run("latch-audit-read", move || query_rows(&path, &filter, before, limit))
            .await
            .ok_or_else(|| AuditError::Write("reading the log stopped".into()))?
    }
}
