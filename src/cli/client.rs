//! Commands that talk to the daemon (status, pending, approve, deny) and
//! `latch audit`, which reads the database itself.

use latch_proto::client::{self, ClientError};
use latch_proto::{AuditFilter, ClientMsg, DaemonMsg, Role, Scope};

use super::EXIT_NO_DAEMON;

#[derive(clap::Args)]
pub struct JsonFlag {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ScopeArg {
    /// This call only (an identical retry may run once).
    Once,
    /// Calls with these exact arguments, for the rest of this session.
    SessionArgs,
    /// Any call of this tool, for the rest of this session.
    SessionTool,
    /// Always: a rule is written to the policy file.
    Always,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Once => Scope::Once,
            ScopeArg::SessionArgs => Scope::SessionArgs,
            ScopeArg::SessionTool => Scope::SessionTool,
            ScopeArg::Always => Scope::Always,
        }
    }
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    /// The approval id (`latch pending`).
    id: String,
    #[arg(long, value_enum, default_value = "once")]
    scope: ScopeArg,
    /// Read the approval PIN from standard input instead of the terminal.
    #[arg(long)]
    pin_stdin: bool,
    /// Print JSON: {"ok": …, "message": …}.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DenyArgs {
    /// The approval id (`latch pending`).
    id: String,
    #[arg(long, value_enum, default_value = "once")]
    scope: ScopeArg,
    /// Why; the agent sees it.
    #[arg(long)]
    reason: Option<String>,
    /// Print JSON: {"ok": …, "message": …}.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    sub: Option<AuditSub>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Most rows shown.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only rows of this server.
    #[arg(long)]
    server: Option<String>,
    /// Only rows of this tool.
    #[arg(long)]
    tool: Option<String>,
    /// Only rows of this class (READ, WRITE, SEND, EXECUTE, SUBMIT, TRANSFER_VALUE).
    #[arg(long, value_parser = super::audit_list::parse_class)]
    class: Option<String>,
    /// Only rows with this decision (allow, ask, deny).
    #[arg(long, value_parser = super::audit_list::parse_decision)]
    decision: Option<String>,
    /// Only rows whose tool, server or (redacted) arguments contain this text.
    #[arg(long)]
    text: Option<String>,
    /// Only rows from TIME on: a DURATION ago (30m, 2h, 7d) or a UTC date
    /// (2026-11-24, 2026-11-24T18:30, 2026-11-24 18:30:05).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only rows before TIME (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Keep printing new rows as they are written (Ctrl-C ends).
    #[arg(long, short)]
    follow: bool,
    /// The database (default: this Latch home's).
    #[arg(long)]
    database: Option<std::path::PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum AuditSub {
    /// Walk the log's hash chain and name the first row that was changed,
    /// removed or inserted (reads the database; no daemon needed).
    Verify {
        /// The database (default: this Latch home's).
        #[arg(long)]
        database: Option<std::path::PathBuf>,
    },
    /// Stream the whole log (or a time range of it) to stdout, oldest
    /// first (reads the database; no daemon needed).
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormatArg,
        /// Only rows from TIME on: a DURATION ago (30m, 2h, 7d) or a UTC
        /// date (2026-11-24, 2026-11-24T18:30, 2026-11-24 18:30:05).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        /// Only rows before TIME (same forms as --since).
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
        /// The database (default: this Latch home's).
        #[arg(long)]
        database: Option<std::path::PathBuf>,
    },
    /// Remove the rows the policy's [audit] retention (keep_days, max_rows)
    /// allows now, leaving a checkpoint row that `verify` checks. The
    /// running daemon does it (it also does it at start-up and hourly);
    /// with none running, this command does, holding the daemon's lock.
    Prune {
        /// Only say what would be removed (reads the database; changes
        /// nothing).
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormatArg {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header line.
    Csv,
}

/// A point in time, as Unix milliseconds: a duration back from now ("30s",
/// "15m", "2h", "7d"), a UTC date ("2026-11-24", its midnight) or a UTC date
/// and time ("2026-11-24T18:30", "2026-11-24 18:30:05", a final `Z` allowed).
pub(super) fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return parse_utc(s).ok_or_else(|| {
            format!("`{s}` is not a date: write 2026-11-24, 2026-11-24T18:30 or 2026-11-24 18:30:05 (UTC)")
        });
    }
    Ok(now_ms() - parse_age(s)?)
}

/// "2026-11-24", "2026-11-24T18:30", "2026-11-24 18:30:05Z" (UTC) → Unix ms.
fn parse_utc(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |t: &str, digits: usize| -> Option<i64> {
        (t.len() == digits && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok()).flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&day) {
        return None;
    }
    let mut secs = latch_proto::civil::days_from_civil(y, m, day) * 86_400;
    if let Some(t) = time {
        let mut parts = t.split(':');
        let (h, min) = (num(parts.next()?, 2)?, num(parts.next()?, 2)?);
        let sec = match parts.next() {
            Some(x) => num(x, 2)?,
            None => 0,
        };
        if parts.next().is_some() || h > 23 || min > 59 || sec > 59 {
            return None;
        }
        secs += h * 3_600 + min * 60 + sec;
    }
    Some(secs * 1_000)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// "30s", "15m", "2h", "7d" → milliseconds.
fn parse_age(s: &str) -> Result<i64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        format!("`{s}` is not a time: write a duration ago (30m, 2h, 7d) or a UTC date (2026-11-24, 2026-11-24T18:30)")
    })?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{s}`: the unit must be s, m, h or d (e.g. 30m, 2h, 7d)")),
    };
    Ok(n.saturating_mul(ms))
}

/// Sends one request; `Ok(None)` when no daemon runs (already reported).
fn ask(msg: ClientMsg) -> anyhow::Result<Option<DaemonMsg>> {
    let paths = super::paths()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match rt.block_on(client::request(&paths, Role::Cli, msg)) {
        Ok(DaemonMsg::Error { message, .. }) => {
            anyhow::bail!("the daemon could not do it: {message}")
        }
        Ok(reply) => Ok(Some(reply)),
        Err(e @ ClientError::NoDaemon(_)) => {
            eprintln!("latch: {e}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn status(a: JsonFlag) -> anyhow::Result<i32> {
    let Some(DaemonMsg::Status { status, .. }) = ask(ClientMsg::Status { req: 1 })? else {
        return Ok(EXIT_NO_DAEMON);
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(0);
    }
    println!("daemon   running (pid {}, version {})", status.daemon_pid, status.version);
    println!("socket   {}", status.socket);
    println!("database {}", status.database);
    match &status.policy_error {
        None => println!("policy   {}", status.policy),
        Some(e) => println!("policy   {} — NOT IN FORCE, the previous policy is: {e}", status.policy),
    }
    if let Some(since) = status.stopped_since {
        let since = super::audit_list::when(since, now_ms());
        println!("STOPPED  every tool call is denied since {since} (a person resumes with the PIN)");
    }
    if status.pin_set {
        println!("approvals protected by a PIN");
    } else {
        println!("approvals UNPROTECTED: no PIN is set, so any program running as you can approve (`latch pin set`)");
    }
    if let Some(p) = &status.policy_pending {
        println!("policy change pending: {} rules loosen (not in force until a person accepts it)", p.loosen);
        for line in &p.diff {
            println!("         {line}");
        }
        for line in &p.replay {
            println!("         {line}");
        }
    }
    if let Some(n) = &status.policy_note {
        println!("policy   {n}");
    }
    if let Some(m) = &status.managed {
        println!("managed  {m}");
    }
    println!("pending  {}", status.pending);
    println!("consoles {}", status.consoles);
    if status.shims.is_empty() {
        println!("shims    none connected");
    }
    for s in &status.shims {
        let client = s.client.as_ref().map(|c| format!(" for {} {}", c.name, c.version)).unwrap_or_default();
        println!("shim     {} (pid {}){client}", s.server, s.pid);
    }
    for c in &status.channels {
        match (c.enabled, &c.problem) {
            (false, _) => println!("channel  {}: off", c.name),
            (true, None) => println!("channel  {}: working", c.name),
            (true, Some(p)) => println!("channel  {}: NOT WORKING — {p}", c.name),
        }
    }
    if let Some(e) = &status.export {
        let counts =
            format!("{} delivered, {} waiting, {} dropped, {} rejected", e.delivered, e.waiting, e.dropped, e.rejected);
        match &e.problem {
            None => println!("export   OpenTelemetry to {}: working ({counts})", e.endpoint),
            Some(p) => println!("export   OpenTelemetry to {}: NOT WORKING — {p} ({counts})", e.endpoint),
        }
    }
    for f in &status.findings {
        println!("FINDING  {f}");
    }
    Ok(0)
}

pub fn pending(a: JsonFlag) -> anyhow::Result<i32> {
    let Some(DaemonMsg::Pending { items, .. }) = ask(ClientMsg::ListPending { req: 1 })? else {
        return Ok(EXIT_NO_DAEMON);
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(0);
    }
    if items.is_empty() {
        println!("nothing is waiting for approval");
    }
    for i in &items {
        println!("{}  {}/{}  {}  {}", i.id, i.server, i.tool, i.class, i.args);
        for r in &i.reasons {
            println!("        {r}");
        }
    }
    Ok(0)
}

fn answer(
    id: String,
    approve: bool,
    scope: ScopeArg,
    reason: Option<String>,
    pin_stdin: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let mut source = super::pin::PinSource::new(pin_stdin);
    // An approval needs the PIN once one is set; a deny never does.
    let reply = super::pin::exchange(ClientMsg::Status { req: 1 }, |status| {
        let pin = if approve && super::pin::pin_set(status)? {
            Some(latch_proto::Pin(source.read(&format!("PIN to approve {id}: "))?))
        } else {
            None
        };
        let who = String::new();
        Ok(Some(ClientMsg::Answer { req: 2, approval_id: id.clone(), approve, scope: scope.into(), reason, who, pin }))
    })?;
    match reply {
        Some(DaemonMsg::Answered { ok, message, .. }) => {
            if json {
                println!("{}", serde_json::json!({"ok": ok, "message": message}));
                Ok(if ok { 0 } else { 1 })
            } else if ok {
                println!("{message}");
                Ok(0)
            } else {
                eprintln!("latch: {message}");
                Ok(1)
            }
        }
        Some(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        None => Ok(EXIT_NO_DAEMON),
    }
}

pub fn approve(a: ApproveArgs) -> anyhow::Result<i32> {
    answer(a.id, true, a.scope, None, a.pin_stdin, a.json)
}

pub fn deny(a: DenyArgs) -> anyhow::Result<i32> {
    answer(a.id, false, a.scope, a.reason, false, a.json)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Before the database file is read directly: a running daemon commits
/// the rows it has only journaled so far (its answer to an empty query
/// comes after that). Quiet when no daemon runs.
fn committed_first(own_database: bool) {
    let Ok(paths) = super::paths() else { return };
    if !own_database {
        return;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    let ask = ClientMsg::Audit { req: 1, limit: 0, before: None, filter: Default::default() };
    let _ = rt.block_on(client::request(&paths, Role::Cli, ask));
}

pub fn audit(a: AuditArgs) -> anyhow::Result<i32> {
    let database = |given: Option<std::path::PathBuf>| -> anyhow::Result<std::path::PathBuf> {
        Ok(match given {
            Some(p) => p,
            None => super::paths()?.database,
        })
    };
    match a.sub {
        Some(AuditSub::Export { format, since, until, database: db }) => {
            check_range(since, until)?;
            committed_first(db.is_none());
            let path = database(db)?;
            let format = match format {
                ExportFormatArg::Jsonl => latch_daemon::audit::ExportFormat::Jsonl,
                ExportFormatArg::Csv => latch_daemon::audit::ExportFormat::Csv,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            latch_daemon::audit::export(&path, since, until, format, &mut out)?;
            return Ok(0);
        }
        Some(AuditSub::Verify { database: db }) => {
            committed_first(db.is_none());
            let path = database(db)?;
            return match latch_daemon::audit::verify(&path)? {
                latch_daemon::audit::Verified::Intact { rows, retained } => {
                    println!("{}: intact ({rows} chained rows)", path.display());
                    if let Some(r) = retained {
                        println!("{}", r.describe());
                    }
                    Ok(0)
                }
                latch_daemon::audit::Verified::Broken { row, problem } => {
                    println!("{}: BROKEN at row {row}: {problem}", path.display());
                    Ok(1)
                }
                latch_daemon::audit::Verified::Damaged(d) => {
                    for line in d.describe(&path) {
                        println!("{line}");
                    }
                    Ok(1)
                }
            };
        }
        Some(AuditSub::Prune { dry_run }) => return prune(dry_run),
        None => {}
    }
    check_range(a.since, a.until)?;
    let filter = AuditFilter {
        text: a.text,
        server: a.server,
        tool: a.tool,
        class: a.class,
        decision: a.decision,
        since: a.since,
        until: a.until,
    };
    // A running daemon answers first: it commits what it recorded before
    // the question, so the answer holds every call made so far. With none,
    // the database is read directly.
    let from_daemon = match a.database {
        Some(_) => None,
        None => {
            let paths = super::paths()?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let msg = ClientMsg::Audit { req: 1, limit: a.limit, before: None, filter: filter.clone() };
            match rt.block_on(client::request(&paths, Role::Cli, msg)) {
                Ok(DaemonMsg::AuditRows { rows, .. }) => Some(rows),
                Ok(DaemonMsg::Error { message, .. }) => anyhow::bail!("the daemon could not do it: {message}"),
                Ok(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
                Err(ClientError::NoDaemon(_)) => None,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let listing = super::audit_list::Listing { filter, limit: a.limit, json: a.json, follow: a.follow };
    super::audit_list::run(&database(a.database)?, from_daemon, listing)
}

fn check_range(since: Option<i64>, until: Option<i64>) -> anyhow::Result<()> {
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        anyhow::bail!("--since must be before --until (rows from --since up to, not including, --until)");
    }
    Ok(())
}

/// The `[audit]` settings of the policy file (the defaults when there is no
/// file yet); a file with mistakes is an error, so nothing is removed on a
/// guess.
fn retention_settings(paths: &latch_proto::paths::Paths) -> anyhow::Result<latch_core::policy::AuditSettings> {
    let shown = paths.policy.display();
    let text = match std::fs::read_to_string(&paths.policy) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => anyhow::bail!("cannot read the policy file {shown}: {e}"),
    };
    match latch_core::policy::Policy::parse(&text) {
        Ok(p) => Ok(*p.audit()),
        Err(e) => {
            anyhow::bail!(
                "the policy file {shown} has mistakes, so nothing is removed:\n{}",
                e.render(&shown.to_string(), &text)
            )
        }
    }
}

/// `latch audit prune [--dry-run]`. A running daemon prunes (its writer owns
/// the end of the chain, which the checkpoint row extends); with none
/// running, this process does, holding the daemon's lock meanwhile.
fn prune(dry_run: bool) -> anyhow::Result<i32> {
    use latch_daemon::audit::retention;
    let paths = super::paths()?;
    let settings = retention_settings(&paths)?;
    if dry_run {
        if settings.keeps_everything() {
            println!("[audit] in {} sets no limit: every row is kept", paths.policy.display());
            return Ok(0);
        }
        match retention::plan(&paths.database, &settings, now_ms())? {
            None => println!("nothing to remove ({})", settings.describe()),
            Some(p) => println!(
                "would remove rows {}..{} ({} rows, {} to {}) because of {}",
                p.first_row,
                p.checkpoint.through_id,
                p.rows,
                retention::utc(p.oldest_ms),
                retention::utc(p.checkpoint.through_time_ms),
                p.checkpoint.reason
            ),
        }
        return Ok(0);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match rt.block_on(client::request(&paths, Role::Cli, ClientMsg::AuditPrune { req: 1 })) {
        Ok(DaemonMsg::AuditPruned { message, .. }) => println!("{message}"),
        Ok(DaemonMsg::Error { message, .. }) => anyhow::bail!("the daemon did not prune: {message}"),
        Ok(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        Err(ClientError::NoDaemon(_)) => {
            drop(rt);
            if settings.keeps_everything() {
                println!("[audit] in {} sets no limit: every row is kept", paths.policy.display());
                return Ok(0);
            }
            println!("{}", retention::prune_offline(&paths, settings, now_ms())?.describe());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}
