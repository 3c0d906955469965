//! `latch install [CLIENT]` / `latch uninstall [CLIENT]`: find the MCP client
//! configs on this machine and wrap (or unwrap) their stdio servers, and
//! add (or remove) the coding agents' pre-tool hooks (`--hooks` for only
//! those, `--no-hooks` for only the servers; one file may hold both, see
//! `install_target`).
//!
//! The rewriting itself is pure and lives in the `latch-install` crate; this
//! is the IO around it: which files exist, a backup beside each file before
//! its first change (`FILE.latch-backup`), an atomic replace that keeps the
//! file's permissions (and writes through a symlink to its target),
//! `--dry-run` diffs, and the report. A file that cannot be read as its
//! client's config is named with its line and left untouched; the other
//! files are still processed and the exit code is 1.

use std::io::Write;
use std::path::{Path, PathBuf};

use latch_install::clients::{self, Client, Location, Os};
use latch_install::hooks::HookAgent;
use latch_install::{Action, Outcome, Plan};

#[derive(clap::Args)]
pub struct InstallArgs {
    /// Only this client: claude-desktop, claude-code, cursor, vscode,
    /// windsurf, codex, gemini, and for the hooks copilot (default: every
    /// client and agent found).
    client: Option<String>,
    /// Print what would change, as a diff; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The project whose `.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json`
    /// and `.gemini/settings.json` are included (default: the current folder).
    #[arg(long)]
    project: Option<PathBuf>,
    /// Only the coding agents' pre-tool hooks, not the MCP servers: each
    /// agent found (Claude Code, Codex, Gemini CLI, Copilot CLI; or CLIENT)
    /// asks `latch hook` before every one of its own tool calls. Without
    /// `--hooks` or `--no-hooks`, both.
    #[arg(long, conflicts_with = "no_hooks")]
    hooks: bool,
    /// Only the MCP servers, not the coding agents' hooks.
    #[arg(long)]
    no_hooks: bool,
    /// One JSON object instead of text: each file, what happened to it (its
    /// lines), whether it changed, its error; no PIN offer afterwards.
    #[arg(long)]
    json: bool,
}

/// Where the report goes: the terminal, or a buffer read back for `--json`.
struct Out<'a> {
    json: bool,
    buffer: Vec<u8>,
    stdout: std::io::StdoutLock<'a>,
}

impl Write for Out<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.json { self.buffer.write(b) } else { self.stdout.write(b) }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.json { Ok(()) } else { self.stdout.flush() }
    }
}

/// `--json`: what each file's processing said, gathered.
#[derive(Default)]
struct Gathered {
    files: Vec<serde_json::Value>,
}

fn parse_client(s: &str) -> Result<Client, String> {
    Client::from_id(s).ok_or_else(|| {
        let ids: Vec<&str> = Client::ALL.iter().map(|c| c.id()).collect();
        format!("unknown client `{s}`: use one of {}", ids.join(", "))
    })
}

/// The config files that exist, for CLIENT (or all), without duplicates.
pub(crate) fn existing_locations(client: Option<Client>, project: Option<PathBuf>) -> anyhow::Result<Vec<Location>> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("HOME is not set: Latch looks for client configs under it"))?;
    let project = project.or_else(|| std::env::current_dir().ok());
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for l in clients::locations(&home, project.as_deref(), Os::current()) {
        if client.is_some_and(|c| c != l.client) || !l.path.is_file() {
            continue;
        }
        let real = std::fs::canonicalize(&l.path).unwrap_or_else(|_| l.path.clone());
        if !seen.contains(&real) {
            seen.push(real);
            out.push(l);
        }
    }
    Ok(out)
}

/// PATH with the home folder shown as `~`.
pub(crate) fn pretty(path: &Path) -> String {
    match std::env::var_os("HOME").map(PathBuf::from) {
        Some(home) if !home.as_os_str().is_empty() => match path.strip_prefix(&home) {
            Ok(rest) => format!("~/{}", rest.display()),
            Err(_) => path.display().to_string(),
        },
        _ => path.display().to_string(),
    }
}

/// The first PROGRAM on PATH.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

/// The absolute path wrapped commands start: this very executable, by the
/// `latch` on PATH when that is the same file (a package manager's link
/// survives upgrades; the versioned folder it points into does not).
pub(crate) fn latch_exe() -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    let real = std::fs::canonicalize(&exe).unwrap_or(exe);
    let exe =
        which("latch").filter(|p| p.is_absolute() && std::fs::canonicalize(p).is_ok_and(|c| c == real)).unwrap_or(real);
    exe.to_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the path of latch ({}) is not UTF-8; move it to a plain path", exe.display()))
}

/// `Some("latch")` when the `latch` found on PATH is this very executable.
fn latch_on_path() -> Option<&'static str> {
    let me = std::fs::canonicalize(std::env::current_exe().ok()?).ok()?;
    let found = which("latch")?;
    (std::fs::canonicalize(found).ok()? == me).then_some("latch")
}

/// One line about one server: a label, who, and details.
pub(crate) fn line(label: &str, name: &str, place: &str, detail: &str) -> String {
    let who = if place.is_empty() { name.to_owned() } else { format!("{name} ({place})") };
    format!("  {label:<16} {who}{detail}")
}

pub(crate) fn describe(name: &str, place: &str, outcome: &Outcome, dry_run: bool) -> String {
    let would = |done: &'static str, todo: &'static str| if dry_run { todo } else { done };
    if name == "pre-tool hook" && place.is_empty() {
        let label = match outcome {
            Outcome::Wrapped => would("installed", "would install"),
            Outcome::AlreadyWrapped => "already there",
            Outcome::Unwrapped => would("removed", "would remove"),
            Outcome::NotWrapped => "not there",
            Outcome::Remote(_) | Outcome::Skipped(_) => "",
        };
        if !label.is_empty() {
            return line(label, name, place, "");
        }
    }
    match outcome {
        Outcome::Wrapped => line(would("wrapped", "would wrap"), name, place, ""),
        Outcome::AlreadyWrapped => line("already wrapped", name, place, ""),
        Outcome::Unwrapped => line(would("restored", "would restore"), name, place, ""),
        Outcome::NotWrapped => line("not wrapped", name, place, ""),
        Outcome::Remote(url) => line("not covered", name, place, &remote_detail(url)),
        Outcome::Skipped(why) => line("skipped", name, place, &format!(": {why}")),
    }
}

pub(crate) fn remote_detail(url: &str) -> String {
    format!(": remote server {url}; Latch cannot wrap this entry, so its calls are not guarded")
}

pub fn run(a: InstallArgs, action: Action) -> anyhow::Result<i32> {
    let offer_pin = action == Action::Install && !a.dry_run && !a.json;
    let code = match run_inner(a, action) {
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            return Ok(0);
        }
        other => other?,
    };
    if offer_pin {
        super::pin::offer()?;
    }
    Ok(code)
}

fn run_inner(a: InstallArgs, action: Action) -> anyhow::Result<i32> {
    let latch = latch_exe()?;
    let (servers, hooks) = (!a.hooks, !a.no_hooks);
    // CLIENT names an MCP client, a coding agent, or both (codex, gemini).
    let (client, agent) = match a.client.as_deref() {
        None => (None, None),
        Some(id) => {
            let client = if servers { parse_client(id) } else { Err(String::new()) };
            let agent = HookAgent::ALL.into_iter().find(|g| hooks && g.id() == id);
            match (client, agent) {
                (Err(e), None) => {
                    // A usage error, like clap's own (exit 2).
                    let e = if servers {
                        e
                    } else {
                        format!("unknown agent `{id}` for --hooks: use one of claude-code, codex, gemini, copilot")
                    };
                    eprintln!("error: invalid value for '[CLIENT]': {e}");
                    return Ok(2);
                }
                (c, g) => (Some(c.ok()), Some(g)),
            }
        }
    };
    let locations = match client {
        _ if !servers => Vec::new(),
        Some(None) => Vec::new(),
        Some(Some(c)) => existing_locations(Some(c), a.project)?,
        None => existing_locations(None, a.project)?,
    };
    let home = super::install_hooks::home()?;
    let agents = match agent {
        _ if !hooks => Vec::new(),
        Some(None) => Vec::new(),
        Some(Some(g)) => super::install_hooks::agents_found(&home, Some(g)),
        None => super::install_hooks::agents_found(&home, None),
    };
    let targets = super::install_target::targets(locations, &agents, &home);
    let verb = verb(action);
    let json = a.json;
    let mut gathered = Gathered::default();
    let out = &mut Out { json, buffer: Vec::new(), stdout: std::io::stdout().lock() };
    if targets.is_empty() {
        let which = match client {
            Some(Some(c)) => c.title().to_owned(),
            _ => "any MCP client".to_owned(),
        };
        let what = match (servers, hooks) {
            (true, false) => format!("no config file of {which} found"),
            (false, _) => "no coding agent found (~/.claude, ~/.codex, ~/.gemini, ~/.copilot)".to_owned(),
            (true, true) => format!("no config file of {which} found, and no coding agent"),
        };
        writeln!(out, "{what}; nothing to {verb}")?;
        if json {
            let summary = String::from_utf8_lossy(&out.buffer).trim().to_owned();
            print_json(action, a.dry_run, 0, 0, gathered, &summary)?;
        }
        return Ok(0);
    }
    let mut failed = false;
    let mut changed = 0;
    // A project's file is shared with a team: the `latch` on PATH works on
    // every teammate's machine, this machine's absolute path does not.
    let on_path = latch_on_path();
    for t in &targets {
        let start = out.buffer.len();
        let mut file_error = None;
        let mut file_changed = false;
        writeln!(out, "{}", t.heading())?;
        let shared = t.servers.as_ref().is_some_and(|l| l.scope == "project");
        let command = if shared { on_path.unwrap_or(&latch) } else { &latch };
        match super::install_target::process(t, action, command, a.dry_run, out)? {
            Ok(true) => {
                changed += 1;
                file_changed = true;
                if shared && on_path.is_none() && action == Action::Install {
                    writeln!(
                        out,
                        "  note: this project file now names {latch}, which teammates who share the file may not \
                         have; to write plain `latch` instead, put latch on PATH, then run `latch uninstall` and `latch install` \
                         here again"
                    )?;
                }
            }
            Ok(false) => {}
            Err(message) => {
                failed = true;
                if json {
                    file_error = Some(message);
                } else {
                    // Once, on stderr, right under its file's heading.
                    out.flush()?;
                    eprintln!("  latch: {message}");
                }
            }
        }
        if json {
            let text = String::from_utf8_lossy(&out.buffer[start..]).into_owned();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let heading = lines.next().unwrap_or_default().to_owned();
            gathered.files.push(serde_json::json!({
                "file": heading,
                "changed": file_changed,
                "lines": lines.collect::<Vec<_>>(),
                "error": file_error,
            }));
        }
    }
    let summary_start = out.buffer.len();
    let files = if changed == 1 { "file" } else { "files" };
    match (a.dry_run, changed) {
        (true, 0) => writeln!(out, "dry run: nothing would change")?,
        (true, n) => writeln!(out, "dry run: {n} {files} would change; nothing was written")?,
        (false, 0) => writeln!(out, "nothing to change")?,
        (false, n) if action == Action::Install => writeln!(
            out,
            "{n} {files} changed (backups beside them, *.latch-backup); restart the clients and agents so that \
             their servers and their own tools go through Latch, and keep `latch tui` open to answer approvals"
        )?,
        (false, n) => writeln!(out, "{n} {files} restored; restart the clients and agents")?,
    }
    let code = if failed { 1 } else { 0 };
    if json {
        let summary = String::from_utf8_lossy(&out.buffer[summary_start..]).trim().to_owned();
        print_json(action, a.dry_run, changed, code, gathered, &summary)?;
    }
    Ok(code)
}

/// The `--json` report of an install or uninstall.
fn print_json(
    action: Action,
    dry_run: bool,
    changed: usize,
    code: i32,
    gathered: Gathered,
    summary: &str,
) -> anyhow::Result<()> {
    let report = serde_json::json!({
        "action": verb(action),
        "dry_run": dry_run,
        "ok": code == 0,
        "exit": code,
        "changed": changed,
        "files": gathered.files,
        "summary": summary,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub(crate) fn verb(action: Action) -> &'static str {
    if action == Action::Install { "install" } else { "uninstall" }
}

pub(crate) fn backup_path(real: &Path) -> PathBuf {
    let mut name = real.file_name().unwrap_or_default().to_os_string();
    name.push(".latch-backup");
    real.with_file_name(name)
}

/// Backs the file up (before its first change), then replaces it atomically.
pub(crate) fn write_back(path: &Path, old: &str, plan: &Plan, action: Action) -> std::io::Result<()> {
    let real = std::fs::canonicalize(path)?;
    let backup = backup_path(&real);
    // The backup holds the file as it was before Latch touched it: taken
    // when no server in it is wrapped yet, and kept while any is.
    let pristine = !plan.reports.iter().any(|r| matches!(r.outcome, Outcome::AlreadyWrapped | Outcome::Unwrapped));
    if pristine || !backup.exists() {
        replace(&backup, old, &real)?;
    }
    replace(&real, &plan.text, &real)?;
    // Uninstall gave the backup back byte for byte: it has nothing more to keep.
    if action == Action::Uninstall && std::fs::read(&backup).is_ok_and(|b| b == plan.text.as_bytes()) {
        std::fs::remove_file(&backup)?;
    }
    Ok(())
}

/// Writes TEXT to TARGET through a temporary file in the same folder and a
/// rename, with the permissions of MODEL.
pub(crate) fn replace(target: &Path, text: &str, model: &Path) -> std::io::Result<()> {
    let mut tmp_name = target.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".latch-tmp-{}", std::process::id()));
    let tmp = target.with_file_name(tmp_name);
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        // Private until it has the model's permissions: configs hold tokens.
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.set_permissions(std::fs::metadata(model)?.permissions())?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
