//! The audit store: SQLite in WAL mode, owned by one writer thread.
//!
//! Work reaches the writer thread as [`Cmd`]s over a bounded channel; it
//! commits them in groups (everything queued when it wakes, up to
//! [`MAX_BATCH`]) and answers each insert once its transaction is committed.
//! A call's row is therefore on disk (in the WAL) before the daemon lets the
//! shim forward the call. One shortcut: when the writer is idle and has taken
//! every command sent so far, [`Audit::insert`] commits on the caller's
//! thread instead (a single-row commit costs about as much as the two
//! thread wake-ups it saves); the connection, the end of the chain and the
//! writer's pending batch live behind one lock, so rows still commit in the
//! order they were sent. Reads (the CLI,
//! the console's history) use their own short-lived connections on the
//! blocking pool; WAL lets them run beside the writer. Checkpoints (which
//! fsync) run on a thread of their own every second, never on the writer,
//! so no call waits behind one.
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

pub mod damage;
mod event;
mod open;
mod read;
pub mod retention;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use latch_proto::{AuditFilter, AuditRow};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use event::sql;
pub use event::{AuditError, Conclusion, NewEvent};
use open::open_reader;
pub use open::{check_place, current_uid};
use open::{migrate, open_checked};
pub use read::query_rows;
pub use read::{ExportFormat, Verified, export, verify};
use writer::{Cmd, DEFER, MAX_BATCH, Store, chain_tip, push};

/// Largest database checked for damage before the daemon answers.
const INLINE_CHECK_BYTES: u64 = 32 * 1024 * 1024;
/// Commands queued before senders wait.
const QUEUE: usize = 16 * 1024;
/// Most outcome updates an insert's short cut commits with its row.
const SHORT_CUT_RIDERS: usize = 8;

/// A cheap handle to the writer thread.
#[derive(Clone)]
pub struct Audit {
    tx: mpsc::Sender<Cmd>,
    /// Messages ever sent to the writer (see [`Store::taken`]).
    sent: Arc<AtomicU64>,
    store: Arc<Mutex<Store>>,
    path: PathBuf,
    riders: Arc<Riders>,
    /// One retention run at a time (the timer and `latch audit prune`).
    pruning: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Damage found in the file: every insert is refused once set.
    damage: damage::Shared,
}

/// Outcome updates waiting to ride along with the next call's insert: one
/// message and one wake-up of the writer instead of two per call. A flusher
/// task sends them on their own after [`DEFER`] when no insert comes.
#[derive(Default)]
struct Riders {
    cmds: std::sync::Mutex<Vec<Cmd>>,
    due: tokio::sync::Notify,
    flusher: std::sync::OnceLock<()>,
}

impl Riders {
    fn take(&self) -> Vec<Cmd> {
        std::mem::take(&mut *self.cmds.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Audit {
    /// Opens (creating if needed) the database, checks it is private, runs
    /// migrations and starts the writer thread. A thread of its own then
    /// checks the file ([`damage::inspect`]); damage it finds makes every
    /// later insert fail.
    pub fn open(path: &Path) -> Result<Audit, AuditError> {
        let conn = open_checked(path)?;
        let chain = chain_tip(&conn).map_err(|e| sql(path, e))?;
        let audit = Audit::start(path, conn, chain, true)?;
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
        std::thread::Builder::new()
            .name("latch-audit-check".into())
            .spawn(move || {
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
        let audit = Audit::start(path, conn, String::new(), false)?;
        damage::note(&audit.damage, path, &why);
        Ok(audit)
    }

    /// The writer (and, with `checkpoints`, the checkpoint thread) over
    /// `conn`.
    fn start(path: &Path, conn: Connection, chain: String, checkpoints: bool) -> Result<Audit, AuditError> {
        let damage = damage::Shared::default();
        let store = Arc::new(Mutex::new(Store {
            conn,
            chain,
            batch: Vec::with_capacity(MAX_BATCH),
            taken: 0,
            path: path.to_owned(),
            damage: damage.clone(),
        }));
        let (tx, rx) = mpsc::channel(QUEUE);
        let s = store.clone();
        std::thread::Builder::new()
            .name("latch-audit".into())
            .spawn(move || writer::writer(&s, rx))
            .map_err(|e| AuditError::Io { path: path.to_owned(), source: e })?;
        if checkpoints {
            let checkpoints = Connection::open(path).map_err(|e| sql(path, e))?;
            let p = path.to_owned();
            let tx_alive = tx.downgrade();
            let noted = damage.clone();
            std::thread::Builder::new()
                .name("latch-checkpoint".into())
                .spawn(move || {
                    // Until the daemon drops its last handle.
                    while tx_alive.upgrade().is_some() {
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
        Ok(Audit {
            tx,
            sent: Arc::default(),
            store,
            path: path.to_owned(),
            riders: Arc::default(),
            pruning: Default::default(),
            damage,
        })
    }

    /// What a person should know when the log is damaged: the finding for
    /// `latch status` and the console.
    pub fn finding(&self) -> Option<String> {
        damage::noted(&self.damage).map(|why| damage::finding(&self.path, &why))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Inserts a row and waits until it is committed; returns its id.
    pub async fn insert(&self, ev: NewEvent) -> Result<i64, AuditError> {
        if let Some(why) = damage::noted(&self.damage) {
            return Err(AuditError::Damaged { path: self.path.clone(), why });
        }
        let (tx, mut rx) = oneshot::channel();
        let mut cmds = self.riders.take();
        // The short cut commits this row and a few outcome updates riding
        // along, never more: a long list goes to the writer thread.
        let few = cmds.len() <= SHORT_CUT_RIDERS;
        cmds.push(Cmd::Insert(Box::new(ev), Some(tx)));
        let cmd = if cmds.len() == 1 { cmds.pop().expect("one command") } else { Cmd::Many(cmds) };
        let cmd = match if few { self.idle_store() } else { None } {
            Some(mut store) => {
                push(&mut store.batch, cmd);
                store.commit();
                drop(store);
                return rx.try_recv().map_err(|_| AuditError::WriterGone)?;
            }
            None => cmd,
        };
        self.send(cmd).await?;
        rx.await.map_err(|_| AuditError::WriterGone)?
    }

    /// The writer's store, when the writer is idle and has taken everything
    /// sent before: committing on this thread then keeps the order.
    fn idle_store(&self) -> Option<MutexGuard<'_, Store>> {
        let store = self.store.try_lock().ok()?;
        (store.batch.is_empty() && store.taken == self.sent.load(Ordering::Acquire)).then_some(store)
    }

    /// Hands `cmd` to the writer thread.
    async fn send(&self, cmd: Cmd) -> Result<(), AuditError> {
        // Counted first: an insert on another path sees it as in flight.
        self.sent.fetch_add(1, Ordering::AcqRel);
        self.tx.send(cmd).await.map_err(|_| AuditError::WriterGone)
    }

    /// Inserts a row without waiting for the commit.
    pub async fn record(&self, ev: NewEvent) {
        let _ = self.send(Cmd::Insert(Box::new(ev), None)).await;
    }

    /// Completes a call's row with its outcome.
    pub async fn finish(&self, id: i64, outcome: &'static str, latency_us: i64) {
        let first = {
            let mut cmds = self.riders.cmds.lock().unwrap_or_else(|e| e.into_inner());
            cmds.push(Cmd::Finish { id, outcome, latency_us });
            cmds.len() == 1
        };
        if first {
            self.riders.flusher.get_or_init(|| {
                // A weak sender: the writer still stops when the daemon
                // drops its last handle.
                let (tx, riders, sent) = (self.tx.downgrade(), self.riders.clone(), self.sent.clone());
                tokio::spawn(async move {
                    loop {
                        riders.due.notified().await;
                        tokio::time::sleep(DEFER).await;
                        let Some(tx) = tx.upgrade() else { return };
                        let cmds = riders.take();
                        if !cmds.is_empty() {
                            sent.fetch_add(1, Ordering::AcqRel);
                            let _ = tx.send(Cmd::Many(cmds)).await;
                        }
                    }
                });
            });
            self.riders.due.notify_one();
        }
    }

    /// `cmd` behind the outcome updates still waiting, if any.
    fn with_riders(&self, cmd: Cmd) -> Cmd {
        let mut cmds = self.riders.take();
        if cmds.is_empty() {
            return cmd;
        }
        cmds.push(cmd);
        Cmd::Many(cmds)
    }

    /// Ends the rows of the calls a person's answer decided: the answer,
    /// who gave it and when (the wait is its time less the call's).
    pub async fn concluded(&self, c: Conclusion) {
        let _ = self.send(Cmd::Concluded(Box::new(c))).await;
    }

    pub async fn set_state(&self, key: &str, value: String) {
        let _ = self.send(Cmd::SetState { key: key.to_owned(), value }).await;
    }

    /// Waits until everything sent before is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(self.with_riders(Cmd::Flush(tx))).await.is_ok() {
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
        tokio::task::spawn_blocking(move || query_rows(&path, &filter, before, limit))
            .await
            .map_err(|e| AuditError::Write(e.to_string()))?
    }
}
