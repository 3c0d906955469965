//! Commands that talk to the daemon: status, pending, approve, deny, audit.

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
    #[arg(long)]
    class: Option<String>,
    /// Only rows with this decision (allow, ask, deny).
    #[arg(long)]
    decision: Option<String>,
    /// Only rows whose tool, server or (redacted) arguments contain this text.
    #[arg(long)]
    text: Option<String>,
    /// Only rows from the last DURATION (e.g. 30m, 2h, 7d).
    #[arg(long, value_parser = parse_age)]
    since: Option<i64>,
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
    /// Stream the whole log (or its last DURATION) to stdout, oldest first
    /// (reads the database; no daemon needed).
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormatArg,
        /// Only rows from the last DURATION (e.g. 30m, 2h, 7d).
        #[arg(long, value_parser = parse_age)]
        since: Option<i64>,
        /// The database (default: this Latch home's).
        #[arg(long)]
        database: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormatArg {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header line.
    Csv,
}

/// "30s", "15m", "2h", "7d" → milliseconds.
fn parse_age(s: &str) -> Result<i64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("`{s}` is not a duration: write e.g. 30m, 2h or 7d"))?;
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

/// Who is answering, for the audit log: the login name, else the user id.
fn who() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("uid {}", latch_daemon::audit::current_uid()))
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

fn answer(id: String, approve: bool, scope: ScopeArg, reason: Option<String>) -> anyhow::Result<i32> {
    let msg = ClientMsg::Answer { req: 1, approval_id: id, approve, scope: scope.into(), reason, who: who() };
    match ask(msg)? {
        Some(DaemonMsg::Answered { ok, message, .. }) => {
            if ok {
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
    answer(a.id, true, a.scope, None)
}

pub fn deny(a: DenyArgs) -> anyhow::Result<i32> {
    answer(a.id, false, a.scope, a.reason)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn audit(a: AuditArgs) -> anyhow::Result<i32> {
    if let Some(AuditSub::Export { format, since, database }) = a.sub {
        let path = match database {
            Some(p) => p,
            None => super::paths()?.database,
        };
        let format = match format {
            ExportFormatArg::Jsonl => latch_daemon::audit::ExportFormat::Jsonl,
            ExportFormatArg::Csv => latch_daemon::audit::ExportFormat::Csv,
        };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        latch_daemon::audit::export(&path, since.map(|age| now_ms() - age), format, &mut out)?;
        return Ok(0);
    }
    if let Some(AuditSub::Verify { database }) = a.sub {
        let path = match database {
            Some(p) => p,
            None => super::paths()?.database,
        };
        return match latch_daemon::audit::verify(&path)? {
            latch_daemon::audit::Verified::Intact { rows } => {
                println!("{}: intact ({rows} chained rows)", path.display());
                Ok(0)
            }
            latch_daemon::audit::Verified::Broken { row, problem } => {
                println!("{}: BROKEN at row {row}: {problem}", path.display());
                Ok(1)
            }
        };
    }
    let now_ms = now_ms();
    let filter = AuditFilter {
        text: a.text,
        server: a.server,
        tool: a.tool,
        class: a.class.map(|c| c.to_ascii_uppercase()),
        decision: a.decision.map(|d| d.to_ascii_lowercase()),
        since: a.since.map(|age| now_ms - age),
        until: None,
    };
    let msg = ClientMsg::Audit { req: 1, limit: a.limit, before: None, filter };
    let Some(DaemonMsg::AuditRows { rows, .. }) = ask(msg)? else {
        return Ok(EXIT_NO_DAEMON);
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    for r in &rows {
        println!(
            "{:>6}  {}  {:<15} {:<10} {:<20} {:<14} {:<6} {}",
            r.id,
            r.time,
            r.kind,
            r.server,
            r.tool,
            r.class,
            r.decision,
            r.outcome.as_deref().unwrap_or("")
        );
    }
    Ok(0)
}
