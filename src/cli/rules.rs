//! `latch rules list|show|delete`: the rules of your policy file, who added
//! each, when and from which approval, and delete as the undo of an
//! "always".
//!
//! The file is read and edited as text: every other line stays as it was.
//! It works without a daemon; a running daemon sees the change like any
//! edit. Deleting needs no PIN: removing an `allow` rule only tightens and
//! is in force at once; removing a `deny` or `ask` rule loosens, and the
//! daemon then keeps the policy in force until a person accepts the change
//! (`latch policy accept`, or the console) when a PIN is set, exactly as
//! for any edit of the file.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use latch_core::policy::listing::{self, RuleEntry};

use super::Usage;

#[derive(clap::Subcommand, Debug)]
pub enum RulesCmd {
    /// Every rule, in the order they are tried, with who added it.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Policy file (default: yours).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// One rule as written in the file, with who added it.
    Show {
        /// The rule's number (from `latch rules list`) or name.
        rule: String,
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// The scopes an "always" approval of a pending call can have,
    /// narrowest first, each with the rule it writes.
    Scopes {
        /// The pending approval's id.
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending call "always" with scope N of `latch rules scopes
    /// ID` (needs the PIN when one is set).
    Always {
        /// The pending approval's id.
        id: String,
        /// The scope's number.
        scope: usize,
        /// Read the PIN from standard input instead of the terminal.
        #[arg(long)]
        pin_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule from the file (the undo of an "always").
    Delete {
        /// The rule's number (from `latch rules list`) or name.
        rule: String,
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
}

pub fn run(cmd: RulesCmd) -> anyhow::Result<i32> {
    match cmd {
        RulesCmd::Scopes { id, json } => super::rules_always::scopes(&id, json),
        RulesCmd::Always { id, scope, pin_stdin, json } => super::rules_always::always(&id, scope, pin_stdin, json),
        RulesCmd::List { json, policy } => {
            let (path, text) = read(policy)?;
            let Some(rules) = parsed(&path, &text)? else { return Ok(1) };
            if json {
                let v: Vec<_> = rules.iter().map(to_json).collect();
                println!("{}", serde_json::json!({ "policy": path, "rules": v }));
            } else if rules.is_empty() {
                println!("{}: no rules; the class defaults decide", path.display());
            } else {
                println!("{}", path.display());
                for r in &rules {
                    println!("{}", line(r));
                }
            }
            Ok(0)
        }
        RulesCmd::Show { rule, json, policy } => {
            let (path, text) = read(policy)?;
            let Some(rules) = parsed(&path, &text)? else { return Ok(1) };
            let r = pick(&rules, &rule)?;
            if json {
                println!("{}", to_json(r));
            } else {
                println!("{}", line(r));
                println!();
                println!("{}", r.text);
            }
            Ok(0)
        }
        RulesCmd::Delete { rule, json, policy } => {
            let (path, text) = read(policy)?;
            let Some(rules) = parsed(&path, &text)? else { return Ok(1) };
            let r = pick(&rules, &rule)?.clone();
            let new = listing::delete(&text, r.number)
                .map_err(|e| anyhow::anyhow!("{}", e.render(&path.display().to_string(), &text)))?
                .ok_or_else(|| Usage(format!("no rule {}", r.number)))?;
            write(&path, &new).with_context(|| format!("cannot write {}", path.display()))?;
            let effect = if r.effect == "allow" {
                "the calls it allowed are decided by the rules below it or the class default again, at once"
            } else {
                "this loosens the policy: when a PIN is set, the daemon keeps the old policy until a person accepts the change in Latch"
            };
            if json {
                println!("{}", serde_json::json!({ "deleted": to_json(&r), "loosens": r.effect != "allow" }));
            } else {
                println!("deleted rule {} (line {}) from {}:\n{}\n{effect}", r.number, r.line, path.display(), r.text);
            }
            Ok(0)
        }
    }
}

fn read(policy: Option<PathBuf>) -> anyhow::Result<(PathBuf, String)> {
    let path = match policy {
        Some(p) => p,
        None => super::paths()?.policy,
    };
    if !path.exists() {
        return Err(Usage(format!(
            "{} does not exist; give a policy file with --policy, or run the daemon once to create yours",
            path.display()
        ))
        .into());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path, text))
}

/// The rules, or `None` after printing the problems of a file that does
/// not parse (nothing is edited then).
fn parsed(path: &Path, text: &str) -> anyhow::Result<Option<Vec<RuleEntry>>> {
    match listing::list(text) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            eprintln!("{}", e.render(&path.display().to_string(), text));
            eprintln!("the file has mistakes: fix them first (`latch policy check`)");
            Ok(None)
        }
    }
}

fn pick<'a>(rules: &'a [RuleEntry], which: &str) -> anyhow::Result<&'a RuleEntry> {
    let found = match which.parse::<usize>() {
        Ok(n) => rules.iter().find(|r| r.number == n),
        Err(_) => rules.iter().find(|r| r.name.as_deref() == Some(which)),
    };
    found.ok_or_else(|| {
        Usage(format!(
            "no rule {which:?} among the file's {} rules: `latch rules list` shows their numbers and names",
            rules.len()
        ))
        .into()
    })
}

fn added(r: &RuleEntry) -> String {
    r.origin.as_ref().map_or_else(|| "by hand".to_owned(), |o| o.describe(utc))
}

fn line(r: &RuleEntry) -> String {
    let name = r.name.as_deref().map(|n| format!("{n}: ")).unwrap_or_default();
    format!("{:>3}  line {:<5} {:<5}  {name}{}\n     added {}", r.number, r.line, r.effect, r.summary, added(r))
}

fn to_json(r: &RuleEntry) -> serde_json::Value {
    serde_json::json!({
        "number": r.number,
        "line": r.line,
        "name": r.name,
        "effect": r.effect,
        "summary": r.summary,
        "reason": r.reason,
        "added_by": r.origin.as_ref().map(|o| serde_json::json!({
            "channel": o.channel, "who": o.who,
            "at": if o.at.is_empty() { o.at_ms.map(utc).unwrap_or_default() } else { o.at.clone() },
            "approval": o.approval,
        })),
        "text": r.text,
    })
}

fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = latch_proto::civil::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3_600, rem % 3_600 / 60)
}

/// Atomically, keeping the file private (a temporary file renamed over it).
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("toml.latch-rules-tmp");
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
