//! One file `latch install` rewrites: an MCP client's config, a coding
//! agent's hook settings, or both in one file (Gemini CLI's
//! `settings.json`, Codex's `config.toml`): one plan, one backup, one write.

use std::io::Write;
use std::path::{Path, PathBuf};

use latch_install::clients::Location;
use latch_install::hooks::{self, HookAgent};
use latch_install::{Action, Edit, Outcome, Plan, PlanError, Report};

use super::install::{describe, pretty, verb, write_back};

pub(crate) struct Target {
    pub path: PathBuf,
    /// The MCP client config this file is, if any.
    pub servers: Option<Location>,
    /// The agent whose hook settings this file is, if any.
    pub hook: Option<HookAgent>,
}

impl Target {
    pub fn heading(&self) -> String {
        match (&self.servers, self.hook) {
            (Some(l), _) => format!("{} ({}): {}", l.client.title(), l.scope, pretty(&self.path)),
            (None, Some(agent)) => format!("{} hook: {}", agent.title(), pretty(&self.path)),
            (None, None) => pretty(&self.path),
        }
    }
}

/// The files of LOCATIONS and of the hooks of AGENTS, a file named by both
/// once (compared by its real path).
pub(crate) fn targets(locations: Vec<Location>, agents: &[HookAgent], home: &Path) -> Vec<Target> {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out: Vec<Target> =
        locations.into_iter().map(|l| Target { path: l.path.clone(), servers: Some(l), hook: None }).collect();
    for &agent in agents {
        let path = agent.settings(home);
        let same = real(&path);
        match out.iter_mut().find(|t| t.hook.is_none() && real(&t.path) == same) {
            Some(t) => t.hook = Some(agent),
            None => out.push(Target { path, servers: None, hook: Some(agent) }),
        }
    }
    out
}

/// Rewrites one file; `Ok(Ok(true))` when it changed (or would), `Ok(Err)`
/// the message that names the file and why it was left untouched, `Err` a
/// failure to print.
pub(crate) fn process(
    t: &Target,
    action: Action,
    latch: &str,
    dry_run: bool,
    out: &mut impl Write,
) -> std::io::Result<Result<bool, String>> {
    let shown = pretty(&t.path);
    let (text, exists) = match std::fs::read(&t.path) {
        // A hook settings file that does not exist yet is created.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && t.servers.is_none() => (String::new(), false),
        Err(e) => return Ok(Err(format!("{shown}: cannot read it ({e}); left untouched"))),
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => (t, true),
            Err(_) => return Ok(Err(format!("{shown}: not UTF-8 text; left untouched"))),
        },
    };
    let path = t.path.to_string_lossy();
    let plan_for = |text: &str, action: Action| match (&t.servers, t.hook) {
        (Some(l), Some(agent)) => latch_install::combined::plan(text, l.format, l.layout, agent, action, latch, &path),
        (Some(l), None) => latch_install::plan(text, l.format, l.layout, action, latch),
        (None, Some(agent)) => hooks::plan(text, agent, action, latch, &path),
        (None, None) => Ok(Plan { text: text.to_owned(), edits: Vec::new(), reports: Vec::new() }),
    };
    let planned = match action {
        Action::Uninstall if exists => match restore_backup(&t.path, &text, |b| plan_for(b, Action::Install).ok()) {
            Some(p) => Ok(p),
            None => plan_for(&text, action),
        },
        _ => plan_for(&text, action),
    };
    let plan = match planned {
        Ok(p) => p,
        Err(PlanError::Malformed(m)) => {
            return Ok(Err(format!(
                "{shown}:{}:{}: {} — the file was left untouched; fix it and run again",
                m.line, m.column, m.message
            )));
        }
        Err(e) => return Ok(Err(format!("{shown}: {e}"))),
    };
    for r in &plan.reports {
        writeln!(out, "{}", describe(&r.name, &r.place, &r.outcome, dry_run))?;
    }
    if t.servers.is_some() && plan.reports.iter().all(|r| r.name == "pre-tool hook") {
        writeln!(out, "  no servers")?;
    }
    if t.hook == Some(HookAgent::Codex)
        && action == Action::Install
        && hooks::codex_trust::trusted(&plan.text, &path, HookAgent::Codex) == Some(false)
    {
        // Another trust already sits at the hook's key (or the hook was
        // added by hand): Codex would skip the hook without a word.
        let why = ": Codex already records another trust for its place; trust it in Codex (/hooks), or Codex skips it";
        writeln!(out, "{}", super::install::line("NOT trusted", "pre-tool hook", "", why))?;
    }
    if plan.edits.is_empty() {
        return Ok(Ok(false));
    }
    if dry_run {
        let after = format!("{shown} (after latch {})", verb(action));
        let diff = latch_install::diff::unified(&text, &plan.edits, &shown, &after);
        let format = t.servers.as_ref().map_or(latch_install::Format::Jsonc, |l| l.format);
        write!(out, "{}", hide_secrets(&diff, &text, format))?;
        return Ok(Ok(true));
    }
    let written = if !exists {
        create(&t.path, &plan.text)
    } else if plan.text.is_empty() && action == Action::Uninstall && t.servers.is_none() {
        // Install created it: it goes (there is no backup to keep: it was nothing).
        std::fs::remove_file(&t.path)
    } else {
        write_back(&t.path, &text, &plan, action)
    };
    Ok(written.map(|()| true).map_err(|e| format!("{shown}: could not write it ({e}); left untouched")))
}

/// Uninstall as the exact undo of install: when the backup beside the file,
/// installed into again, gives the file as it is now, the file becomes the
/// backup byte for byte. A server that was already wrapped before `latch
/// install` stays wrapped (an unwrap would change the file the person had).
/// `None` when there is no such backup (the file was edited since, or
/// installed with other options): then each server is unwrapped.
fn restore_backup(path: &Path, now: &str, install: impl Fn(&str) -> Option<Plan>) -> Option<Plan> {
    let backup = super::install::backup_path(&std::fs::canonicalize(path).ok()?);
    let before = String::from_utf8(std::fs::read(backup).ok()?).ok()?;
    let installed = install(&before)?;
    if installed.text != now || before == now {
        return None;
    }
    let reports = installed
        .reports
        .into_iter()
        .map(|r| {
            let outcome = match r.outcome {
                Outcome::Wrapped => Outcome::Unwrapped,
                Outcome::AlreadyWrapped => {
                    Outcome::Skipped("was wrapped before `latch install`; left as it was".into())
                }
                other => other,
            };
            Report { outcome, ..r }
        })
        .collect();
    // One edit: the part between what the two texts share at both ends.
    let head = now.bytes().zip(before.bytes()).take_while(|(a, b)| a == b).count();
    let (now_rest, before_rest) = (&now.as_bytes()[head..], &before.as_bytes()[head..]);
    let tail = now_rest.iter().rev().zip(before_rest.iter().rev()).take_while(|(a, b)| a == b).count();
    // Both ends on character boundaries of both texts.
    let (mut head, mut tail) = (head, tail);
    while !now.is_char_boundary(head) || !before.is_char_boundary(head) {
        head -= 1;
    }
    while !now.is_char_boundary(now.len() - tail) || !before.is_char_boundary(before.len() - tail) {
        tail -= 1;
    }
    let edit = Edit { range: head..now.len() - tail, text: before[head..before.len() - tail].to_owned() };
    Some(Plan { text: before, edits: vec![edit], reports })
}

/// SHOWN (a diff of TEXT) without its secrets: the values of `env` and
/// `headers` blocks and of secret-named keys are masked wherever they
/// appear, then each line goes through the core's text redaction (tokens,
/// a URL's password, `--token VALUE`). A dry run is often pasted into a
/// chat or an issue.
fn hide_secrets(shown: &str, text: &str, format: latch_install::Format) -> String {
    use latch_core::redact::{MASK, is_secret_key, redact_text};
    let mut secrets: Vec<String> = latch_install::leaves::string_leaves(text, format)
        .into_iter()
        .filter(|l| l.in_secret_block || is_secret_key(&l.key))
        // `${VAR}` is a reference to a secret, not one.
        // Short values (`"1"`, `"on"`) are settings; masking them would garble the diff.
        .filter(|l| l.value.len() >= 4 && !(l.value.starts_with("${") && l.value.ends_with('}')))
        .map(|l| l.value)
        .collect();
    // Longest first, so that a secret inside another is not unmasked.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    shown
        .split_inclusive('\n')
        .map(|line| {
            let mut line = line.to_owned();
            for s in &secrets {
                // As it is written in the file too (JSON escapes).
                let escaped = serde_json::to_string(s).unwrap_or_default();
                let escaped = escaped.trim_matches('"');
                line = line.replace(s.as_str(), MASK).replace(escaped, MASK);
            }
            redact_text(&line).into_owned()
        })
        .collect()
}

fn create(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
