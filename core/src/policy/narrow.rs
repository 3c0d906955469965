//! Narrower "always": the scopes an "always" approval can be given,
//! narrowest first, each with the exact rule it writes.
//!
//! Offers are built from the call's *redacted* arguments (what the person
//! sees), never from secrets: a value the redactor touched is not offered,
//! so a rule never carries a secret and never matches a masked value that
//! differs from the real one. Every offer is checked to match the call it
//! was built from; one that would not (a command the parser cannot pin
//! down, a path with `..`) is left out. The whole tool comes last.
//!
//! - a shell command (a string or an argv array under a command-like key):
//!   the exact command, then the program with its subcommands
//!   (`npm run test`, then `npm run`), matched on the shell parser's words
//!   as one simple command ([`super::command`]); a lone program only when
//!   it has no subcommand and is not an interpreter or a wrapper;
//! - a path (under a path-like key): the exact path, then its folder
//!   (`under`: written with no `..` segment, and where it leads inside
//!   the folder too, symlinks resolved by the daemon);
//! - an address or URL: the exact value, then its domain (`only_domains`:
//!   every host or address of the call must be in it);
//! - other top-level text, number or boolean arguments: the exact value
//!   (at most three);
//! - the whole tool.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::command;
use crate::redact;

/// A test on one top-level argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgTest {
    /// One simple command whose words start with these.
    Command(Vec<String>),
    /// The value equals this one.
    Equals(Value),
    /// A path inside this folder (ending in `/`): written with no `..`
    /// segment, and resolved by the daemon ([`super::under`]).
    Under(String),
}

/// How a narrowed rule narrows the tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Narrowing {
    /// `args = [{ path = KEY, … }]`.
    Arg { key: String, test: ArgTest },
    /// `only_domains = [...]`.
    Domains(Vec<String>),
}

/// One scope offered for an "always" answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Stable for the same call and scope: what a console sends back.
    pub id: String,
    /// In words, for the person.
    pub label: String,
    /// `None`: the whole tool.
    pub narrowing: Option<Narrowing>,
}

/// The id of the whole-tool offer.
pub const WHOLE_TOOL: &str = "tool";

/// Longest value offered as an exact match.
const MAX_VALUE: usize = 512;
/// At most this many other arguments are offered as exact values.
const MAX_OTHER: usize = 3;

/// Programs whose first word says nothing of what they run: never offered
/// alone.
const OPEN_ENDED: &[&str] = &[
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "fish",
    "env",
    "sudo",
    "doas",
    "su",
    "eval",
    "exec",
    "xargs",
    "nohup",
    "timeout",
    "nice",
    "time",
    "command",
    "builtin",
    "python",
    "python3",
    "python2",
    "node",
    "deno",
    "bun",
    "perl",
    "ruby",
    "php",
    "lua",
    "npx",
    "pnpx",
    "bunx",
    "busybox",
    "powershell",
    "pwsh",
    "cmd",
    "osascript",
    "ssh",
    "docker",
    "kubectl",
    "awk",
    "find",
    "git",
];

fn is_command_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(k.as_str(), "command" | "cmd" | "script" | "shell" | "bash" | "sh" | "cmdline" | "commandline")
        || k.ends_with("_command")
        || k.ends_with("_cmd")
}

fn is_path_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "path"
            | "file"
            | "filename"
            | "filepath"
            | "file_path"
            | "dir"
            | "directory"
            | "folder"
            | "source"
            | "target"
            | "destination"
            | "dest"
            | "src"
            | "dst"
    ) || k.ends_with("_path")
        || k.ends_with("_file")
        || k.ends_with("_dir")
}

/// A key a rule's `path` can address on its own.
fn addressable(key: &str) -> bool {
    !key.is_empty() && !key.contains('.') && key != "*"
}

/// The rule path for a top-level key (`args` itself is `args.args`).
pub(crate) fn rule_path(key: &str) -> String {
    if key == "args" { "args.args".to_owned() } else { key.to_owned() }
}

fn clean(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_VALUE && !s.contains(redact::MASK) && !s.contains("[REDACTED")
}

/// The host of an `http(s)://` URL, or the domain of an e-mail address,
/// lower-case.
fn domain_of(s: &str) -> Option<String> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let host = if let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) {
        let auth = rest.split(['/', '?', '#']).next()?;
        let auth = auth.rsplit('@').next()?;
        auth.split(':').next()?.to_owned()
    } else {
        let (local, domain) = lower.split_once('@')?;
        if local.is_empty() || local.contains(char::is_whitespace) || domain.contains('@') {
            return None;
        }
        domain.to_owned()
    };
    let ok = !host.is_empty()
        && host.contains('.')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with('.')
        && !host.ends_with('.');
    ok.then_some(host)
}

impl ArgTest {
    /// The test holds for the value `v` (exactly as the rule it writes
    /// would evaluate it).
    pub fn holds(&self, v: &Value) -> bool {
        match self {
            ArgTest::Command(words) => command::starts_with(v, words),
            ArgTest::Equals(x) => v == x,
            ArgTest::Under(dir) => v.as_str().is_some_and(|t| super::under::written_under(dir, t)),
        }
    }
}

impl Narrowing {
    /// The narrowing holds for these arguments; `domains` are the call's
    /// hosts and addresses as the classifier found them.
    pub fn holds(&self, args: &Value, domains: &[String]) -> bool {
        match self {
            Narrowing::Arg { key, test } => args.get(key).is_some_and(|v| test.holds(v)),
            Narrowing::Domains(ds) => {
                !domains.is_empty() && domains.iter().all(|d| ds.iter().any(|x| super::rule::host_in(d, x)))
            }
        }
    }
}

fn id_of(n: &Option<Narrowing>) -> String {
    let Some(n) = n else { return WHOLE_TOOL.to_owned() };
    let h = Sha256::digest(format!("{n:?}").as_bytes());
    h.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn offer(label: String, n: Narrowing) -> Offer {
    let narrowing = Some(n);
    Offer { id: id_of(&narrowing), label, narrowing }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The scopes offered for an "always" answer on `tool` with these
/// (redacted) arguments, narrowest first, the whole tool last.
pub fn offers(server: &str, tool: &str, args: &Value) -> Vec<Offer> {
    // Commands, paths, addresses, their domains, other values.
    let mut out: Vec<Offer> = Vec::new();
    let mut paths: Vec<Offer> = Vec::new();
    let mut addresses: Vec<Offer> = Vec::new();
    let mut values: Vec<Offer> = Vec::new();
    let mut domains: Vec<String> = Vec::new();
    let mut other = 0;
    if let Value::Object(map) = args {
        for (key, v) in map {
            if !addressable(key) {
                continue;
            }
            if is_command_key(key) {
                commands(key, v, &mut out);
                continue;
            }
            let Some(text) = v.as_str() else {
                if matches!(v, Value::Number(_) | Value::Bool(_)) && other < MAX_OTHER {
                    other += 1;
                    let test = ArgTest::Equals(v.clone());
                    values.push(offer(format!("{key} = {}", show(v)), Narrowing::Arg { key: key.clone(), test }));
                }
                continue;
            };
            if !clean(text) {
                continue;
            }
            let exact = || Narrowing::Arg { key: key.clone(), test: ArgTest::Equals(v.clone()) };
            if is_path_key(key) {
                paths.push(offer(format!("this exact {key}: {text}"), exact()));
                if let Some(cut) = text.rfind('/').filter(|&i| i > 0) {
                    let dir = &text[..=cut];
                    if !super::under::has_dotdot(text) {
                        let test = ArgTest::Under(dir.to_owned());
                        paths.push(offer(
                            format!("{key} under {dir} (resolved, no `..`)"),
                            Narrowing::Arg { key: key.clone(), test },
                        ));
                    }
                }
            } else if let Some(d) = domain_of(text) {
                addresses.push(offer(format!("{key} exactly {text}"), exact()));
                if !domains.contains(&d) {
                    domains.push(d);
                }
            } else if other < MAX_OTHER {
                other += 1;
                values.push(offer(format!("{key} = {}", show(v)), exact()));
            }
        }
    }
    out.extend(paths);
    out.extend(addresses);
    if !domains.is_empty() {
        out.push(offer(format!("only hosts and addresses in {}", domains.join(", ")), Narrowing::Domains(domains)));
    }
    out.extend(values);
    out.push(Offer {
        id: WHOLE_TOOL.to_owned(),
        label: format!("the whole tool: every call of {tool} on {server}"),
        narrowing: None,
    });
    out
}

fn commands(key: &str, v: &Value, out: &mut Vec<Offer>) {
    let Some(words) = command::command_words(v) else { return };
    if words.is_empty() || words.iter().any(|w| !clean(w)) {
        return;
    }
    let exact = match v {
        Value::String(s) if clean(s) => Some(Narrowing::Arg { key: key.to_owned(), test: ArgTest::Equals(v.clone()) }),
        _ => None,
    };
    if let Some(n) = exact {
        out.push(offer(format!("this exact command: {}", v.as_str().unwrap_or_default()), n));
    }
    // The program and up to two subcommands (words that are not options,
    // paths or assignments).
    let subs = words[1..].iter().take(2).take_while(|w| is_subcommand(w)).count();
    let program = words[0].rsplit('/').next().unwrap_or(&words[0]);
    let lone = subs == 0 && !OPEN_ENDED.contains(&program);
    let mut lens: Vec<usize> = (1..=subs).rev().map(|n| n + 1).collect();
    if lone {
        lens.push(1);
    }
    for n in lens {
        let prefix = words[..n].to_vec();
        let label = format!("commands starting `{}` (one command, nothing chained)", prefix.join(" "));
        out.push(offer(label, Narrowing::Arg { key: key.to_owned(), test: ArgTest::Command(prefix) }));
    }
}

fn is_subcommand(w: &str) -> bool {
    !w.is_empty()
        && !w.starts_with('-')
        && !w.contains(['/', '=', '\\', '~', '$', '*', '?', '['])
        && w.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '@'))
}

/// The offer with this id among those for the call.
pub fn find(server: &str, tool: &str, args: &Value, id: &str) -> Option<Offer> {
    offers(server, tool, args).into_iter().find(|o| o.id == id)
}

#[cfg(test)]
#[path = "narrow_tests.rs"]
mod tests;
