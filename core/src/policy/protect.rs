//! Built-in self-protection: calls that touch Latch itself are denied,
//! before any user rule, and no policy can switch this off.
//!
//! Protection is decided on the *identity* of a path, not on how it is
//! spelled. Every string in the arguments (object keys included) is read
//! twice:
//!
//! 1. **As a path** when it looks like one (a `/`, a leading `~` or `$`,
//!    or an argument named like `path`, `file`, `dest`): normalised
//!    lexically ([`crate::path::normalise`]: `//`, `/./`, `..`, `~`,
//!    `$HOME`, `${VAR}`, the server's working directory, case-folding),
//!    then, when the daemon gives a [`Resolver`], with symlinks resolved
//!    and compared by device and inode (a hard link to the policy is the
//!    policy).
//! 2. **As a shell command** when it has blanks or shell punctuation:
//!    parsed with [`crate::shell`], so every spelling of a word counts
//!    (`l'a'tch`, `$'\x6c'atch`, `x=lat; ${x}ch`, `$(which latch)`), and
//!    then each simple command is checked ([`commands`]): `latch` with a
//!    subcommand that changes it or answers approvals, commands that stop
//!    the daemon, and every word that names a file (arguments, redirects,
//!    `dd of=`, relative paths after `cd`).
//!
//! What is protected, by class ([`Kind`]):
//! - **Latch's own files** (policy, database, socket, state, log, data and
//!   config folders, the binary, the Telegram token file): any access is
//!   denied, reads included.
//! - **Client configs and hook settings** (every file `latch install`
//!   knows, `~/.claude/settings.json`, project `.mcp.json`, …): writes are
//!   denied, reads are allowed.
//!
//! Some things cannot be decided statically: a command name that is the
//! output of `$(…)` with Latch's subcommand after it, a `kill` of a pid
//! only known at run time, a string past the parser's bounds, a path the
//! resolver cannot follow (too long a chain of links or steps, a walk
//! through `/proc/self/cwd` or `root`). These make
//! the call *ask* at least ([`Finding::deny`] false), never allow.

mod call;
mod commands;
mod guard;
mod lease;
mod mentions;
mod places;
mod set;

use serde_json::Value;

use crate::class::{Class, Flag};
use crate::classify::{Call, Classification};
use crate::path::PathEnv;
use crate::shell;

pub(crate) use call::Ctx;
use call::MAX_RESOLVES;
pub use call::{Finding, Place};
pub(crate) use guard::Guard;
pub use places::CONFIG_SUFFIXES;
pub use set::{Kind, LatchPaths, Protected};

/// The `key` given for an object key read as a path.
const KEY: &str = "\0key";

/// Argument names whose string value is a path even without a `/`.
const PATH_KEYS: &[&str] = &[
    "path",
    "paths",
    "file",
    "files",
    "filename",
    "file_name",
    "filepath",
    "file_path",
    "dest",
    "destination",
    "source",
    "src",
    "target",
    "dir",
    "directory",
    "from",
    "to",
    "cwd",
    "workdir",
    "output",
    "input",
    "location",
    "uri",
    "old_path",
    "new_path",
    "source_path",
    "target_path",
    "destination_path",
];

/// An argument key that names a path (`path`, `file`, `dest` …).
pub(crate) fn is_path_key(key: &str) -> bool {
    PATH_KEYS.iter().any(|p| key.eq_ignore_ascii_case(p))
}

/// Tool names whose path arguments may remove or move a folder's content.
fn removes(tool: &str) -> bool {
    let t = tool.to_ascii_lowercase();
    ["move", "rename", "delete", "remove", "rm", "unlink", "trash", "mv"]
        .iter()
        .any(|w| t.split(|c: char| !c.is_ascii_alphanumeric()).any(|p| p == *w) || t.starts_with(w))
}

impl Guard {
    pub fn new(p: &Protected) -> Guard {
        let mut env = PathEnv { home: p.home.clone(), case_insensitive: p.case_insensitive, ..PathEnv::default() };
        if let Some(h) = &p.home {
            env.vars.insert("HOME".to_owned(), h.clone());
        }
        let mut needles: Vec<String> =
            ["latch", "kill", "systemctl", "launchctl", "shutdown"].iter().map(|s| (*s).to_owned()).collect();
        for path in p.paths.iter().chain(&p.binary) {
            let lower = path.to_lowercase();
            if !lower.contains("latch") {
                needles.push(crate::path::base_name(&lower).to_owned());
            }
        }
        needles.retain(|n| !n.is_empty());
        needles.sort();
        needles.dedup();
        Guard {
            places: places::Places::new(p),
            pids: p.pids.clone(),
            env,
            needles,
            mentions: mentions::Mentions::new(p),
        }
    }

    /// Text that is not a shell command may touch Latch only if it holds
    /// one of the needles.
    fn may_mention(&self, s: &str) -> bool {
        let lower = s.to_lowercase();
        self.needles.iter().any(|n| lower.contains(n.as_str()))
    }

    /// The environment used when the caller knows nothing more.
    pub fn default_env(&self) -> &PathEnv {
        &self.env
    }

    /// Why the call touches Latch, or `None`.
    pub fn check(&self, call: &Call<'_>, cls: &Classification, place: Place<'_>) -> Option<Finding> {
        let budget = std::cell::Cell::new(0);
        let unfollowed = std::cell::RefCell::new(None);
        // A folder in one argument and a relative name in another
        // (`{"dir": "~/.config", "file": "latch/policy.toml"}`): relative
        // paths resolve against the call's absolute ones too.
        let mut folders = Vec::new();
        collect_folders(call.args, place.env, &mut folders);
        let env_with_folders;
        let place = if folders.is_empty() {
            place
        } else {
            let mut e = place.env.clone();
            e.roots.extend(folders);
            env_with_folders = e;
            Place { env: &env_with_folders, ..place }
        };
        let ctx = Ctx {
            place,
            write: cls.class != Class::Read,
            shell: cls.class == Class::Execute || cls.flags.contains(&Flag::Shell),
            removes: removes(call.tool),
            resolves: &budget,
            unfollowed: &unfollowed,
        };
        let mut at = Vec::new();
        let mut ask = None;
        let deny = self.walk(call.args, None, &mut at, &ctx, &mut ask);
        if deny.is_some() || ask.is_some() {
            return deny.or(ask);
        }
        if let Some(p) = unfollowed.take() {
            return Some(Finding::ask(format!(
                "names {p}, which Latch cannot follow to where it leads ({}), so it may be Latch's own file",
                crate::path::UNFOLLOWED
            )));
        }
        if ctx.over_budget() {
            return Some(Finding::ask(format!(
                "names more than {MAX_RESOLVES} paths; the rest were compared by name only"
            )));
        }
        None
    }

    fn walk<'v>(
        &self,
        v: &'v Value,
        key: Option<&'v str>,
        at: &mut Vec<PathPart<'v>>,
        ctx: &Ctx<'_>,
        ask: &mut Option<Finding>,
    ) -> Option<Finding> {
        match v {
            Value::String(s) => {
                let f = self.check_str(s, key, ctx)?;
                let f = Finding { why: format!("{} {}", where_(at), f.why), ..f };
                if f.deny {
                    return Some(f);
                }
                ask.get_or_insert(f);
                None
            }
            Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| {
                at.push(PathPart::Index(i));
                let r = self.walk(x, key, at, ctx, ask);
                at.pop();
                r
            }),
            Value::Object(o) => o.iter().find_map(|(k, x)| {
                at.push(PathPart::Key(k));
                // Keys too: some tools take `{ "files": { PATH: CONTENT } }`.
                let r = match self.check_str(k, Some(KEY), ctx) {
                    Some(f) if f.deny => Some(Finding { why: format!("the key of {} {}", where_(at), f.why), ..f }),
                    Some(f) => {
                        ask.get_or_insert(f);
                        None
                    }
                    None => None,
                }
                .or_else(|| self.walk(x, Some(k), at, ctx, ask));
                at.pop();
                r
            }),
            _ => None,
        }
    }

    /// A string read as a path: against the working directory, and a
    /// relative one against each of the server's roots too.
    fn check_path(&self, s: &str, ctx: &Ctx<'_>, roots: bool) -> Option<Finding> {
        if let Some(f) = self.places.check_string(s, ctx, ctx.write, ctx.removes) {
            return Some(f);
        }
        let env = ctx.place.env;
        if !roots || s.starts_with(['/', '~', '$']) || strip_file_scheme(s) || env.roots.is_empty() {
            return None;
        }
        env.roots.iter().find_map(|root| {
            let e = PathEnv { cwd: Some(root.clone()), ..env.clone() };
            let c = Ctx { place: Place { env: &e, ..ctx.place }, ..*ctx };
            self.places.check_string(s, &c, ctx.write, ctx.removes)
        })
    }

    fn check_str(&self, s: &str, key: Option<&str>, ctx: &Ctx<'_>) -> Option<Finding> {
        let is_key = key == Some(KEY);
        // Spelled out inside code or a document.
        if let Some((path, kind)) = self.mentions.find(s, ctx.shell && ctx.write) {
            return Some(Finding::deny(match kind {
                Kind::Config => format!("writes {path}, a client config or hook settings file, from a command"),
                _ => format!("mentions Latch's own file {path}"),
            }));
        }
        let pathish = is_key || key.is_some_and(|k| PATH_KEYS.iter().any(|p| k.eq_ignore_ascii_case(p)));
        let mut ask = None;
        if s.len() <= crate::path::MAX_PATH
            && !s.contains('\n')
            && (pathish
                || s.starts_with(['/', '~', '$', '.'])
                || strip_file_scheme(s)
                || (s.contains('/') && !s.contains(char::is_whitespace)))
            && let Some(f) = self.check_path(s, ctx, !is_key)
        {
            if f.deny {
                return Some(f);
            }
            ask = Some(f);
        }
        let shellish = shellish(s);
        if shellish && (ctx.shell || self.may_mention(s)) {
            if s.len() > shell::MAX_INPUT {
                // Too long to read as a command: ask when it names Latch.
                let lower = s.to_ascii_lowercase();
                if lower.contains("latch") {
                    return Some(Finding::ask(format!(
                        "is too long ({} bytes) to read as a command and mentions latch",
                        s.len()
                    )));
                }
                return ask;
            }
            let script = shell::parse(s, &ctx.place.env.vars_with_home());
            if let Some(f) = commands::check(self, &script, ctx) {
                if f.deny {
                    return Some(f);
                }
                ask.get_or_insert(f);
            }
        }
        ask
    }
}

/// Characters that make a text read as a possible shell command.
const SHELL_CHARS: &str = ";|&$`<>()'\"\\";

/// Whether `s` holds whitespace or a shell character. ASCII is read a byte
/// at a time against a table (a long argument without either, such as a
/// base64 blob, is read at memory speed); from the first non-ASCII
/// character on, character by character (Unicode whitespace).
fn shellish(s: &str) -> bool {
    const TABLE: [bool; 128] = {
        let mut t = [false; 128];
        let specials = SHELL_CHARS.as_bytes();
        let mut i = 0;
        while i < specials.len() {
            t[specials[i] as usize] = true;
            i += 1;
        }
        let mut c = 0;
        while c < 128 {
            if (c as u8).is_ascii_whitespace() || c == 0x0B {
                t[c] = true;
            }
            c += 1;
        }
        t
    };
    match s.bytes().position(|b| b >= 0x80 || TABLE[usize::from(b)]) {
        None => false,
        Some(i) if s.as_bytes()[i] < 0x80 => true,
        // The first non-ASCII byte starts a character.
        Some(i) => s[i..].contains(|c: char| c.is_whitespace() || SHELL_CHARS.contains(c)),
    }
}

/// Absolute paths among the call's string values (at most 16).
fn collect_folders(v: &Value, env: &PathEnv, out: &mut Vec<String>) {
    if out.len() >= 16 {
        return;
    }
    match v {
        Value::String(s) if s.starts_with(['/', '~']) && !s.contains(char::is_whitespace) => {
            if let Some(crate::path::Lexical::Abs(p)) = crate::path::normalise(s, env) {
                out.push(p);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_folders(x, env, out)),
        Value::Object(o) => o.values().for_each(|x| collect_folders(x, env, out)),
        _ => {}
    }
}

fn strip_file_scheme(s: &str) -> bool {
    s.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("file://"))
}

enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

fn where_(at: &[PathPart<'_>]) -> String {
    if at.is_empty() {
        return "the arguments".to_owned();
    }
    let mut out = String::new();
    for (i, part) in at.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match part {
            PathPart::Key(k) => out.push_str(k),
            PathPart::Index(n) => out.push_str(&n.to_string()),
        }
    }
    format!("argument `{out}`")
}

#[cfg(test)]
mod tests;
