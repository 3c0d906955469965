//! Path identity, the lexical part: what absolute path a string names,
//! before the file system is asked.
//!
//! A string from a tool call or a shell word is normalised the way the
//! server or the shell would see it: `file://` URIs unwrapped, `~`,
//! `$HOME`, `${HOME}` and `$VAR`/`${VAR}` expanded from an environment
//! given as data ([`PathEnv`]), a relative path joined to the server's
//! working directory, `.`, `..` and `//` collapsed, and everything
//! lower-cased when the file system is case-insensitive.
//!
//! What cannot be known statically (`~user`, a variable the environment
//! does not hold, a relative path with no known working directory) is not
//! dropped: it becomes a [`Lexical::Tail`], the known end of the path
//! after an unknown start, which callers compare conservatively (a
//! protected path that *ends* with the tail counts).
//!
//! The IO part (symlinks, device and inode) is the caller's: it implements
//! [`Resolver`] (the daemon's `identity` module), and the decision core
//! only calls it. No IO here.

pub mod sensitive;
pub mod words;
pub mod workspace;

use std::collections::BTreeMap;

/// A file's identity on its file system: device and inode. Two paths with
/// the same `FileId` are the same file (hard links included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// What the file system says about an absolute, normalised path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The path with every symlink in its longest existing prefix
    /// resolved, the rest appended as written.
    pub real: String,
    /// The identity of the file, when it exists.
    pub file: Option<FileId>,
}

/// Asks the file system. Implemented by the daemon; the decision core calls
/// it and never does IO itself.
pub trait Resolver {
    /// Resolves an absolute path (lexically normalised, or with `..` kept
    /// as the kernel walks it). `None` when the path cannot be followed
    /// for the server (a chain of links or steps too long, a walk through
    /// the asking process's own `/proc/self`): where it leads is unknown,
    /// and callers take it so (a call that names it asks), unless
    /// [`names_the_opener`] says nothing lies behind it.
    fn resolve(&self, abs: &str) -> Option<Resolved>;
}

/// The environment a path is read in: the server's home, working directory
/// and variables, and whether the file system folds case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathEnv {
    pub home: Option<String>,
    /// The server's working directory (relative paths resolve against it).
    pub cwd: Option<String>,
    /// Variables for `$VAR` and `${VAR}` (the server's environment).
    pub vars: BTreeMap<String, String>,
    /// Compare paths case-insensitively (macOS, Windows file systems).
    pub case_insensitive: bool,
    /// Folders a server may also resolve relative paths against (the
    /// roots on its command line: a file server's relative path is often
    /// relative to the folder it serves, not to its working directory).
    pub roots: Vec<String>,
}

impl PathEnv {
    /// The variables, `HOME` included (for the shell).
    pub fn vars_with_home(&self) -> BTreeMap<String, String> {
        let mut v = self.vars.clone();
        if let Some(h) = &self.home {
            v.entry("HOME".to_owned()).or_insert_with(|| h.clone());
        }
        v
    }

    fn var(&self, name: &str) -> Option<&str> {
        if name == "HOME"
            && let Some(h) = &self.home
        {
            return Some(h);
        }
        self.vars.get(name).map(String::as_str)
    }
}

/// The lexical form of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lexical {
    /// An absolute, normalised path (folded when the file system is
    /// case-insensitive).
    Abs(String),
    /// An unknown start followed by this relative, normalised tail
    /// (`~bob/.ssh/id_rsa` → `.ssh/id_rsa`). Never empty.
    Tail(String),
}

impl Lexical {
    pub fn as_str(&self) -> &str {
        match self {
            Lexical::Abs(s) | Lexical::Tail(s) => s,
        }
    }
}

/// Longest string read as a path; longer ones are not paths.
pub const MAX_PATH: usize = 4096;

/// Reads `raw` as a path in `env`. `None` when it cannot be a path (empty,
/// too long, a line break or NUL inside, a URL of another scheme).
pub fn normalise(raw: &str, env: &PathEnv) -> Option<Lexical> {
    if raw.is_empty() || raw.len() > MAX_PATH || raw.contains(['\n', '\r', '\0']) {
        return None;
    }
    let (text, unknown_start) = expand(raw, env)?;
    let text = if env.case_insensitive { text.to_lowercase() } else { text };
    if unknown_start {
        let tail = collapse(&text, false);
        return (!tail.is_empty()).then_some(Lexical::Tail(tail));
    }
    if text.starts_with('/') {
        return Some(Lexical::Abs(collapse(&text, true)));
    }
    match &env.cwd {
        Some(cwd) => {
            let cwd = if env.case_insensitive { cwd.to_lowercase() } else { cwd.clone() };
            Some(Lexical::Abs(collapse(&format!("{cwd}/{text}"), true)))
        }
        None => {
            let tail = collapse(&text, false);
            (!tail.is_empty()).then_some(Lexical::Tail(tail))
        }
    }
}

/// The absolute path as the kernel would walk it: expanded and joined to
/// the working directory, but `..` kept (after a symlink, `..` leaves the
/// link's target, not the link's folder). `None` when the start is
/// unknown or it has no `..` (then [`normalise`] says all).
pub fn kernel_form(raw: &str, env: &PathEnv) -> Option<String> {
    if !raw.contains("..") {
        return None;
    }
    expanded_abs(raw, env)
}

/// The absolute path the server hands the kernel when it reads `raw` as
/// Latch does (`file://` unwrapped, `~` and variables expanded, joined to
/// its working directory), with `.` and `..` kept for the kernel's walk.
/// `None` when it cannot be a path or its start is unknown.
pub fn expanded(raw: &str, env: &PathEnv) -> Option<String> {
    if raw.is_empty() || raw.contains(['\n', '\r', '\0']) {
        return None;
    }
    expanded_abs(raw, env)
}

fn expanded_abs(raw: &str, env: &PathEnv) -> Option<String> {
    if raw.len() > MAX_PATH {
        return None;
    }
    let (text, unknown_start) = expand(raw, env)?;
    if unknown_start {
        return None;
    }
    let text = if env.case_insensitive { text.to_lowercase() } else { text };
    if text.starts_with('/') { Some(text) } else { env.cwd.as_ref().map(|c| format!("{c}/{text}")) }
}

/// Joins a path that may be relative onto a directory, lexically.
pub fn join(dir: &str, path: &str) -> String {
    if path.starts_with('/') { collapse(path, true) } else { collapse(&format!("{dir}/{path}"), true) }
}

/// `file://` unwrapped, `~` and variables expanded. The flag says that the
/// start is unknown (the result is then a tail after it).
fn expand(raw: &str, env: &PathEnv) -> Option<(String, bool)> {
    let mut s = raw.trim();
    let decoded;
    if let Some(rest) = strip_prefix_ci(s, "file://") {
        // `file:///p`, `file://localhost/p`; percent-escapes decoded.
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        decoded = percent_decode(rest);
        s = &decoded;
    } else if let Some(i) = s.find("://")
        && s[..i].chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && i > 1
    {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut unknown_start = false;
    let mut rest = s;
    if let Some(after) = rest.strip_prefix('~') {
        let end = after.find('/').unwrap_or(after.len());
        let user = &after[..end];
        if user.is_empty() {
            match &env.home {
                Some(h) => out.push_str(h),
                None => unknown_start = true,
            }
        } else {
            // `~user`: another account's home is not known statically.
            unknown_start = true;
        }
        rest = &after[end..];
    }
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let tail = &rest[i + 1..];
        let (name, used) = if let Some(b) = tail.strip_prefix('{') {
            match b.find('}') {
                Some(e) => (&b[..e], e + 2),
                None => {
                    out.push(c);
                    continue;
                }
            }
        } else {
            let n = tail.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap_or(tail.len());
            (&tail[..n], n)
        };
        if name.is_empty() {
            out.push(c);
            continue;
        }
        let value = if name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            env.var(name)
        } else {
            // `${X:-d}` and friends: read the default when X is unknown.
            let (n, dflt) = name.split_once(":-").or_else(|| name.split_once('-')).unwrap_or((name, ""));
            env.var(n).or(if dflt.is_empty() { None } else { Some(dflt) })
        };
        match value {
            Some(v) => out.push_str(v),
            None => {
                // Everything so far is unknown; what follows is a tail.
                out.clear();
                unknown_start = true;
            }
        }
        for _ in 0..used {
            chars.next();
        }
    }
    Some((out, unknown_start))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Collapses `//`, `.` and `..`. An absolute path's `..` stops at `/`; a
/// tail's leading `..` parts are dropped (the unknown start absorbs them).
pub fn collapse(path: &str, absolute: bool) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute { format!("/{joined}") } else { joined }
}

/// `path` is `dir` or lies under it.
pub fn is_under(path: &str, dir: &str) -> bool {
    if dir == "/" {
        return path.starts_with('/');
    }
    path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// `abs` ends with the tail as whole components (`/a/b/c` ends with `b/c`).
pub fn ends_with_tail(abs: &str, tail: &str) -> bool {
    abs.ends_with(tail) && {
        let before = abs.len() - tail.len();
        before == 0 || abs.as_bytes()[before - 1] == b'/'
    }
}

/// The file name part.
pub fn base_name(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

/// Follows a shell command's `cd`, `pushd` or `popd` in `env` (where later
/// relative paths of the same script start); false for any other command.
/// An unknown or relative-to-nowhere target leaves no working directory.
pub fn follow_cd(cmd: &crate::shell::Command, env: &mut PathEnv) -> bool {
    if !matches!(cmd.base_name(), Some("cd" | "pushd" | "popd")) {
        return false;
    }
    let target = cmd.args().iter().find(|w| !w.text.starts_with('-') || w.unknown);
    env.cwd = match (cmd.base_name(), target) {
        (Some("popd"), _) => None,
        (_, None) => env.home.clone(),
        (_, Some(w)) if w.unknown => None,
        (_, Some(w)) => match normalise(&w.text, env) {
            Some(Lexical::Abs(p)) => Some(p),
            _ => None,
        },
    };
    true
}

/// Why a resolver may not follow a path, for the reasons that name one.
pub const UNFOLLOWED: &str =
    "a chain of links or steps too long, a walk through /proc/self, or more lookups than one call may make";

/// Whether the absolute path `abs` names a part of the process that opens
/// it and no other file: its standard streams, an open descriptor
/// (`/dev/fd/N`, `/proc/self/fd/N`, their folders) or one of its own
/// `/proc/self` entries other than those that lead back into the file
/// system (`cwd`, `root`, `map_files`, `task`, anything under `fd/N/`,
/// any `..`). A
/// resolver cannot follow these for the server (they would be the
/// resolver's own), and need not: no other file hides behind them.
pub fn names_the_opener(abs: &str) -> bool {
    let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    if matches!(abs, "/dev/stdin" | "/dev/stdout" | "/dev/stderr" | "/dev/fd" | "/proc/self" | "/proc/thread-self") {
        return true;
    }
    if let Some(n) = abs.strip_prefix("/dev/fd/") {
        return number(n);
    }
    let Some(rest) = abs.strip_prefix("/proc/self/").or_else(|| abs.strip_prefix("/proc/thread-self/")) else {
        return false;
    };
    let (first, more) = rest.split_once('/').unwrap_or((rest, ""));
    match first {
        // The folder of descriptors (listed), or one descriptor.
        "fd" => more.is_empty() || number(more),
        // `exe` is the opener's own program, which it cannot write.
        "" | "." | ".." | "cwd" | "root" | "map_files" | "task" => false,
        _ => !more.split('/').any(|c| c == ".."),
    }
}

#[cfg(test)]
mod tests;
