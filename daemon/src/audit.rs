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
pub mod retention;

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use latch_proto::{AuditFilter, AuditRow};
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::{mpsc, oneshot};

/// Numbered migrations, applied in order; `PRAGMA user_version` records how
/// many ran. Never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_events.sql"),
    include_str!("../migrations/0002_server_index.sql"),
    include_str!("../migrations/0003_hash_chain.sql"),
    include_str!("../migrations/0004_retention.sql"),
];

/// Largest database checked for damage before the daemon answers.
const INLINE_CHECK_BYTES: u64 = 32 * 1024 * 1024;

/// Most commands committed in one transaction.
const MAX_BATCH: usize = 1024;
/// Commands queued before senders wait.
const QUEUE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("audit database {path} is unsafe: {why} — {fix}")]
    Unsafe { path: PathBuf, why: String, fix: String },
    #[error("audit folder {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use the audit database {path}: {why} — {fix}")]
    Unusable { path: PathBuf, why: String, fix: String },
    #[error("the audit log {path} is damaged or unusable ({why}): Latch refuses calls until a person repairs it")]
    Damaged { path: PathBuf, why: String },
    #[error("the audit writer has stopped")]
    WriterGone,
    #[error("audit write failed: {0}")]
    Write(String),
}

/// A row to insert.
#[derive(Clone, Debug, Default)]
pub struct NewEvent {
    pub time_ms: i64,
    pub kind: &'static str,
    pub server: String,
    pub session: String,
    pub tool: String,
    pub class: String,
    pub decision: String,
    pub reasons: Vec<String>,
    /// Redacted arguments as JSON text.
    pub args: String,
    pub args_hash: String,
    pub rule: Option<String>,
    pub approval_id: Option<String>,
    pub outcome: Option<&'static str>,
    pub answered_by: Option<String>,
    pub detail: Option<String>,
}

enum Cmd {
    Insert(Box<NewEvent>, Option<oneshot::Sender<Result<i64, AuditError>>>),
    Finish {
        id: i64,
        outcome: &'static str,
        latency_us: i64,
    },
    Answered {
        id: i64,
        approval_id: String,
        answered_by: String,
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
}

type PruneReply = oneshot::Sender<Result<u64, AuditError>>;

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

/// What the writer thread owns, behind a lock so an insert may commit on
/// its caller's thread when the writer is idle.
struct Store {
    conn: Connection,
    /// The hash of the last committed row.
    chain: String,
    /// Commands taken from the channel and not yet committed.
    batch: Vec<Cmd>,
    /// Messages taken from the channel. Equal to [`Audit::sent`] when
    /// nothing sent is still in flight, so committing now keeps the order.
    taken: u64,
    path: PathBuf,
    damage: damage::Shared,
}

impl Store {
    fn commit(&mut self) {
        if let Some(e) = commit(&mut self.conn, &mut self.batch, &mut self.chain, &self.path)
            && damage::is_damage(&e)
        {
            damage::note(&self.damage, &self.path, &e.to_string());
        }
    }
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
            .spawn(move || writer(&s, rx))
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
                                eprintln!("latch daemon: checkpoint of {} failed: {e}", p.display());
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
        let cmd = self.with_riders(Cmd::Insert(Box::new(ev), Some(tx)));
        let cmd = match self.idle_store() {
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
        (store.taken == self.sent.load(Ordering::Acquire)).then_some(store)
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

    /// Notes on a call's row who answered its approval.
    pub async fn answered(&self, id: i64, approval_id: String, answered_by: String) {
        let _ = self.send(Cmd::Answered { id, approval_id, answered_by }).await;
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

fn sql(path: &Path, source: rusqlite::Error) -> AuditError {
    AuditError::Sqlite { path: path.to_owned(), source }
}

/// Refuses a place the audit log cannot be kept safely, changing nothing
/// (the daemon calls it before it tightens its folders, so a folder others
/// could read is reported, not quietly fixed over an exposed log):
/// - the folder, if it exists, must be ours and not writable by others; if
///   it already holds the database, not readable by them either;
/// - the database and its `-wal`/`-shm` files, if they exist, must be
///   regular files of ours that only we may read and write;
/// - the database must be SQLite (or empty).
///
/// A folder that does not exist yet, or holds no log yet, is fine: it is
/// created (or made) private when the log is opened.
pub fn check_place(path: &Path) -> Result<(), AuditError> {
    let uid = current_uid();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let refuse = |why: String, fix: String| Err(AuditError::Unsafe { path: path.to_owned(), why, fix });
    let has_log = std::fs::symlink_metadata(path).is_ok();
    if let Ok(meta) = std::fs::metadata(dir) {
        if meta.uid() != uid {
            return refuse(
                format!("its folder {} belongs to user id {}, not to you ({uid})", dir.display(), meta.uid()),
                "set LATCH_HOME to a folder of your own".into(),
            );
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o022 != 0 {
            return refuse(
                format!("others may write to its folder {} (mode {mode:o}) and could have replaced it", dir.display()),
                format!("if you trust its content run `chmod 700 {}`, else move the folder away", dir.display()),
            );
        }
        if has_log && mode & 0o077 != 0 {
            return refuse(
                format!("others may look into its folder {} (mode {mode:o})", dir.display()),
                format!("run `chmod 700 {}`", dir.display()),
            );
        }
    }
    for (file, what) in [
        (path.to_owned(), "it"),
        (PathBuf::from(format!("{}-wal", path.display())), "its write-ahead log"),
        (PathBuf::from(format!("{}-shm", path.display())), "its shared-memory file"),
    ] {
        let Ok(m) = std::fs::symlink_metadata(&file) else { continue };
        let name = file.display();
        if m.file_type().is_symlink() {
            return refuse(format!("{what} ({name}) is a symbolic link"), format!("move {name} away"));
        }
        if !m.file_type().is_file() {
            return refuse(format!("{what} ({name}) is not a regular file"), format!("move {name} away"));
        }
        if m.uid() != uid {
            return refuse(
                format!("{what} ({name}) belongs to user id {}, not to you ({uid})", m.uid()),
                format!("move {name} away; Latch starts a new log"),
            );
        }
        let mode = m.mode() & 0o777;
        if mode & 0o077 != 0 {
            let who = if mode & 0o022 != 0 { "write" } else { "read" };
            return refuse(
                format!("others may {who} {what} ({name}, mode {mode:o})"),
                format!("if only you had access, run `chmod 600 {name}`; else move it away"),
            );
        }
    }
    if has_log {
        let mut head = [0u8; 16];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| AuditError::Io { path: path.to_owned(), source: e })?;
        if n > 0 && head[..n] != b"SQLite format 3\0"[..] {
            return Err(AuditError::Unusable {
                path: path.to_owned(),
                why: "it is not an SQLite database".into(),
                fix: format!(
                    "move {} away (Latch then starts a new log), or point LATCH_HOME elsewhere",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Checks the place ([`check_place`]), creates the folder 0700 and the file
/// 0600, and runs the migrations.
fn open_checked(path: &Path) -> Result<Connection, AuditError> {
    check_place(path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| AuditError::Io { path: dir.to_owned(), source: e })?;
    let meta = std::fs::metadata(dir).map_err(|e| AuditError::Io { path: dir.to_owned(), source: e })?;
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AuditError::Io { path: dir.to_owned(), source: e })?;
    }
    // Created private, so it is never readable by others, not even briefly.
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(AuditError::Io { path: path.to_owned(), source: e }),
    }
    let conn = Connection::open(path).map_err(|e| sql(path, e))?;
    // WAL must be switched on outside a transaction.
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| sql(path, e))?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| sql(path, e))?;
    // The checkpoint thread does this work; the writer never stalls on it.
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(|e| sql(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| sql(path, e))?;
    migrate(path, &conn)?;
    Ok(conn)
}

fn migrate(path: &Path, conn: &Connection) -> Result<(), AuditError> {
    let done: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| sql(path, e))?;
    if done > MIGRATIONS.len() as i64 {
        return Err(AuditError::Unusable {
            path: path.to_owned(),
            why: format!(
                "a newer Latch wrote it (schema version {done}; this latch {} knows up to {})",
                env!("CARGO_PKG_VERSION"),
                MIGRATIONS.len()
            ),
            fix: "run the newer latch, or move the file away to start a new log with this one".into(),
        });
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
        conn.execute_batch(&format!("BEGIN; {m}\nPRAGMA user_version = {}; COMMIT;", i + 1))
            .map_err(|e| sql(path, e))?;
    }
    Ok(())
}

pub fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    unsafe { libc::getuid() }
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
const DEFER: std::time::Duration = std::time::Duration::from_millis(5);

fn writer(store: &Mutex<Store>, mut rx: mpsc::Receiver<Cmd>) {
    // A clock for the deferral; nothing else runs on it.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latch daemon: the audit writer cannot start: {e}");
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

fn push(batch: &mut Vec<Cmd>, cmd: Cmd) {
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
                    Cmd::Answered { id, approval_id, answered_by } => {
                        tx.prepare_cached("UPDATE events SET approval_id = ?2, answered_by = ?3 WHERE id = ?1")?
                            .execute(params![id, approval_id, answered_by])?;
                        reseal(&tx, id)?;
                    }
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
                        pruned.push((reply, retention::delete_oldest(&tx, through, max)?));
                    }
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
            eprintln!("latch daemon: audit write to {} failed: {e}", path.display());
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
struct Content<'a> {
    time_ms: i64,
    kind: &'a str,
    server: &'a str,
    session: &'a str,
    tool: &'a str,
    class: &'a str,
    decision: &'a str,
    /// JSON text, as stored.
    reasons: &'a str,
    args: &'a str,
    args_hash: &'a str,
    rule: Option<&'a str>,
    detail: Option<&'a str>,
}

impl Content<'_> {
    /// SHA-256 of the previous row's hash and this content, in canonical
    /// JSON (so the encoding is unambiguous).
    fn hash(&self, prev: &str) -> String {
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
fn seal(
    hash: &str,
    outcome: Option<&str>,
    latency_us: Option<i64>,
    approval_id: Option<&str>,
    answered_by: Option<&str>,
) -> String {
    latch_core::canonical::hash(&serde_json::json!([hash, outcome, latency_us, approval_id, answered_by]))
}

fn reseal(tx: &rusqlite::Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    use rusqlite::OptionalExtension;
    // A row retention already removed has nothing left to seal.
    let Some((hash, seal_now)) = tx
        .prepare_cached("SELECT hash, outcome, latency_us, approval_id, answered_by FROM events WHERE id = ?1")?
        .query_row([id], |r| {
            let hash: Option<String> = r.get(0)?;
            let outcome: Option<String> = r.get(1)?;
            let latency: Option<i64> = r.get(2)?;
            let approval: Option<String> = r.get(3)?;
            let by: Option<String> = r.get(4)?;
            let s = hash.as_deref().map(|h| seal(h, outcome.as_deref(), latency, approval.as_deref(), by.as_deref()));
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
        .prepare_cached("SELECT hash, approval_id, answered_by FROM events WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?))
        })
        .optional()?;
    // A row retention already removed has nothing left to complete.
    let Some((hash, approval, by)) = row else { return Ok(()) };
    let s = hash.as_deref().map(|h| seal(h, Some(outcome), Some(latency_us), approval.as_deref(), by.as_deref()));
    tx.prepare_cached("UPDATE events SET outcome = ?2, latency_us = ?3, seal = COALESCE(?4, seal) WHERE id = ?1")?
        .execute(params![id, outcome, latency_us, s])?;
    Ok(())
}

/// The hash the next row chains to: the newest row's, or "" for a log with
/// no chained row yet.
fn chain_tip(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("SELECT hash FROM events WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).or_else(
        |e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(String::new()),
            e => Err(e),
        },
    )
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Every chained row checks out. `retained`: the log's first rows were
    /// removed by retention, and the checkpoint that says so.
    Intact { rows: u64, retained: Option<retention::Retained> },
    /// The first row where the chain breaks, and how.
    Broken { row: i64, problem: String },
    /// SQLite cannot read all of the file: which pages and rows.
    Damaged(damage::Damage),
}

/// Walks the chain from the oldest row, streaming (a million rows use no
/// more memory than ten), and names the first row that was changed, or next
/// to which a row was removed or inserted. Deleting the newest rows leaves
/// no trace here: nothing after them points back.
///
/// A log whose first rows are gone verifies only when a retention
/// checkpoint ([`retention`]) accounts for them: the first row must chain
/// to the last removed row the checkpoint names or, while a retention run
/// is still under way, the rows up to it must lead to that row's hash. The
/// checkpoint is a chained row itself, checked by the same walk.
///
/// A file SQLite cannot read completely is [`Verified::Damaged`], checked
/// first ([`damage::inspect`]) and also when the walk meets damage.
pub fn verify(path: &Path) -> Result<Verified, AuditError> {
    if let Some(d) = damage::inspect(path) {
        return Ok(Verified::Damaged(d));
    }
    match verify_chain(path) {
        Err(AuditError::Sqlite { source, .. }) if damage::is_damage(&source) => {
            Ok(Verified::Damaged(damage::inspect(path).unwrap_or_else(|| damage::Damage {
                problems: vec![source.to_string()],
                readable_rows: 0,
                last_readable_id: None,
                rows_stopped: true,
            })))
        }
        other => other,
    }
}

fn verify_chain(path: &Path) -> Result<Verified, AuditError> {
    let conn = open_reader(path)?;
    let checkpoints = retention::checkpoints(&conn).map_err(|e| sql(path, e))?;
    let mut retained: Option<retention::Retained> = None;
    // While a retention run is under way: the row it removes up to, and
    // that row's hash, which the walk must reach.
    let mut must_reach: Option<(i64, String, i64)> = None;
    let mut stmt = conn
        .prepare(
            "SELECT id, prev_hash, hash, seal, time_ms, kind, server, session, tool, class, decision, reasons, \
             args, args_hash, rule, detail, outcome, latency_us, approval_id, answered_by FROM events ORDER BY id",
        )
        .map_err(|e| sql(path, e))?;
    let mut rows = stmt.query([]).map_err(|e| sql(path, e))?;
    let mut expected: Option<String> = None;
    let mut count = 0u64;
    while let Some(r) = rows.next().map_err(|e| sql(path, e))? {
        let get = |i: usize| -> rusqlite::Result<Option<String>> { r.get(i) };
        let id: i64 = r.get(0).map_err(|e| sql(path, e))?;
        let broken = |problem: &str| Ok(Verified::Broken { row: id, problem: problem.to_owned() });
        let (prev, hash, stored_seal) =
            (get(1).map_err(|e| sql(path, e))?, get(2).map_err(|e| sql(path, e))?, get(3).map_err(|e| sql(path, e))?);
        let Some(hash) = hash else {
            if expected.is_some() {
                return broken("it has no hash: it was inserted into the log by hand");
            }
            continue; // written before the chain existed
        };
        let prev = prev.unwrap_or_default();
        match &expected {
            Some(e) if *e != prev => {
                return broken("it does not follow the row before it: a row was removed or inserted just before it");
            }
            None if !prev.is_empty() => match retention::covering(&checkpoints, id, &prev) {
                Some(c) => {
                    if c.through_id >= id {
                        must_reach = Some((c.through_id, c.through_hash.clone(), c.id));
                    }
                    retained = Some(retention::Retained { checkpoint: c.clone(), first_row: id });
                }
                None => {
                    return broken(
                        "the rows before it were removed, and no retention checkpoint accounts for them: the log \
                         was cut by hand",
                    );
                }
            },
            _ => {}
        }
        let text =
            |i: usize| -> Result<String, AuditError> { Ok(get(i).map_err(|e| sql(path, e))?.unwrap_or_default()) };
        let (kind, server, session, tool, class, decision, reasons, args, args_hash) =
            (text(5)?, text(6)?, text(7)?, text(8)?, text(9)?, text(10)?, text(11)?, text(12)?, text(13)?);
        let (rule, detail) = (get(14).map_err(|e| sql(path, e))?, get(15).map_err(|e| sql(path, e))?);
        let content = Content {
            time_ms: r.get(4).map_err(|e| sql(path, e))?,
            kind: &kind,
            server: &server,
            session: &session,
            tool: &tool,
            class: &class,
            decision: &decision,
            reasons: &reasons,
            args: &args,
            args_hash: &args_hash,
            rule: rule.as_deref(),
            detail: detail.as_deref(),
        };
        if content.hash(&prev) != hash {
            return broken("its content was changed");
        }
        let latency: Option<i64> = r.get(17).map_err(|e| sql(path, e))?;
        let (outcome, approval, by) = (
            get(16).map_err(|e| sql(path, e))?,
            get(18).map_err(|e| sql(path, e))?,
            get(19).map_err(|e| sql(path, e))?,
        );
        if stored_seal.as_deref() != Some(&seal(&hash, outcome.as_deref(), latency, approval.as_deref(), by.as_deref()))
        {
            return broken("its outcome, approval or answer was changed");
        }
        if let Some((through, through_hash, checkpoint)) = &must_reach {
            if id > *through {
                return broken(&format!(
                    "the retention checkpoint (row {checkpoint}) names row {through} as the last row it removes, and \
                     that row is missing"
                ));
            }
            if id == *through {
                if hash != *through_hash {
                    return broken(&format!("it is not the row the retention checkpoint (row {checkpoint}) names"));
                }
                must_reach = None;
            }
        }
        expected = Some(hash);
        count += 1;
    }
    if let Some((through, _, checkpoint)) = must_reach {
        return Ok(Verified::Broken {
            row: checkpoint,
            problem: format!("it names row {through} as the last row it removes, and the log never reaches it"),
        });
    }
    Ok(Verified::Intact { rows: count, retained })
}

fn open_reader(path: &Path) -> Result<Connection, AuditError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| sql(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| sql(path, e))?;
    Ok(conn)
}

/// Rows newest first (see [`Audit::query`]), read straight from the
/// database: `latch audit` works without a daemon.
pub fn query_rows(path: &Path, f: &AuditFilter, before: Option<i64>, limit: u32) -> Result<Vec<AuditRow>, AuditError> {
    let conn = open_reader(path)?;
    let mut where_ = vec!["id < ?1".to_owned()];
    let mut args: Vec<rusqlite::types::Value> = vec![before.unwrap_or(i64::MAX).into()];
    let mut push = |clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        where_.push(clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(t) = &f.text {
        let like = format!("%{}%", t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        // Every `?` of a clause becomes the same numbered parameter.
        push("(tool LIKE ? ESCAPE '\\' OR server LIKE ? ESCAPE '\\' OR args LIKE ? ESCAPE '\\')", like.into());
    }
    if let Some(v) = &f.server {
        push("server = ?", v.clone().into());
    }
    if let Some(v) = &f.tool {
        push("tool = ?", v.clone().into());
    }
    if let Some(v) = &f.class {
        push("class = ?", v.clone().into());
    }
    if let Some(v) = &f.decision {
        push("decision = ?", v.clone().into());
    }
    if let Some(v) = f.since {
        push("time_ms >= ?", v.into());
    }
    if let Some(v) = f.until {
        push("time_ms < ?", v.into());
    }
    let q = format!(
        "SELECT id, time_ms, kind, server, tool, class, decision, reasons, args, args_hash, outcome, latency_us, \
         approval_id, answered_by, rule FROM events WHERE {} ORDER BY id DESC LIMIT {}",
        where_.join(" AND "),
        limit.min(10_000)
    );
    let mut stmt = conn.prepare(&q).map_err(|e| sql(path, e))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            let reasons: String = r.get(7)?;
            let args: String = r.get(8)?;
            Ok(AuditRow {
                id: r.get(0)?,
                time: r.get(1)?,
                kind: r.get(2)?,
                server: r.get(3)?,
                tool: r.get(4)?,
                class: r.get(5)?,
                decision: r.get(6)?,
                reasons: serde_json::from_str(&reasons).unwrap_or_default(),
                args: serde_json::from_str(&args).unwrap_or(serde_json::Value::Null),
                args_hash: r.get(9)?,
                outcome: r.get(10)?,
                latency_us: r.get(11)?,
                approval_id: r.get(12)?,
                answered_by: r.get(13)?,
                rule: r.get(14)?,
            })
        })
        .map_err(|e| sql(path, e))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| sql(path, e))
}

/// Formats [`export`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header line.
    Csv,
}

const EXPORT_COLUMNS: &[&str] = &[
    "id",
    "time_ms",
    "kind",
    "server",
    "session",
    "tool",
    "class",
    "decision",
    "reasons",
    "args",
    "args_hash",
    "rule",
    "approval_id",
    "outcome",
    "latency_us",
    "answered_by",
    "detail",
    "hash",
];

/// Streams the log, oldest first, row by row into `out` (memory stays flat
/// whatever the log's size); rows from `since_ms` (inclusive) up to
/// `until_ms` (exclusive) when given. Returns the number of rows written. A
/// closed pipe (`| head`) ends the export quietly.
pub fn export(
    path: &Path,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    format: ExportFormat,
    out: &mut dyn std::io::Write,
) -> Result<u64, AuditError> {
    let conn = open_reader(path)?;
    let sql_text =
        format!("SELECT {} FROM events WHERE time_ms >= ?1 AND time_ms < ?2 ORDER BY id", EXPORT_COLUMNS.join(", "));
    let mut stmt = conn.prepare(&sql_text).map_err(|e| sql(path, e))?;
    let mut rows =
        stmt.query([since_ms.unwrap_or(i64::MIN), until_ms.unwrap_or(i64::MAX)]).map_err(|e| sql(path, e))?;
    let io = |e: std::io::Error| AuditError::Io { path: PathBuf::from("<output>"), source: e };
    let mut written = 0u64;
    let result = (|| -> Result<(), AuditError> {
        if format == ExportFormat::Csv {
            writeln!(out, "{}", EXPORT_COLUMNS.join(",")).map_err(io)?;
        }
        while let Some(r) = rows.next().map_err(|e| sql(path, e))? {
            let mut fields = Vec::with_capacity(EXPORT_COLUMNS.len());
            for i in 0..EXPORT_COLUMNS.len() {
                let v: rusqlite::types::Value = r.get(i).map_err(|e| sql(path, e))?;
                fields.push(v);
            }
            match format {
                ExportFormat::Jsonl => {
                    let mut obj = serde_json::Map::new();
                    for (name, v) in EXPORT_COLUMNS.iter().zip(fields) {
                        let json = match v {
                            rusqlite::types::Value::Null => serde_json::Value::Null,
                            rusqlite::types::Value::Integer(n) => n.into(),
                            rusqlite::types::Value::Real(f) => f.into(),
                            rusqlite::types::Value::Text(t) if matches!(*name, "reasons" | "args") => {
                                serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t))
                            }
                            rusqlite::types::Value::Text(t) => t.into(),
                            rusqlite::types::Value::Blob(_) => serde_json::Value::Null,
                        };
                        obj.insert((*name).to_owned(), json);
                    }
                    serde_json::to_writer(&mut *out, &obj).map_err(|e| io(e.into()))?;
                    out.write_all(b"\n").map_err(io)?;
                }
                ExportFormat::Csv => {
                    let cells: Vec<String> = fields
                        .into_iter()
                        .map(|v| match v {
                            rusqlite::types::Value::Null | rusqlite::types::Value::Blob(_) => String::new(),
                            rusqlite::types::Value::Integer(n) => n.to_string(),
                            rusqlite::types::Value::Real(f) => f.to_string(),
                            rusqlite::types::Value::Text(t) => csv_cell(&t),
                        })
                        .collect();
                    writeln!(out, "{}", cells.join(",")).map_err(io)?;
                }
            }
            written += 1;
        }
        out.flush().map_err(io)
    })();
    match result {
        Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(written),
        Err(e) => Err(e),
        Ok(()) => Ok(written),
    }
}

/// A CSV cell: quoted when it holds a comma, quote or line break.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}
