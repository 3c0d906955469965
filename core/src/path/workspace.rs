//! The workspace: where a write is what the user expects, and the flag
//! `outside_workspace` for writes anywhere else.
//!
//! The workspace folders of a call ([`folders`]) are the client's MCP
//! roots when it sent any, else the server's working directory and the
//! absolute folders on its command line (a working directory of `/` or
//! the home folder counts for nothing: nothing would be outside it), plus
//! the policy's `[workspace] paths` in every case.
//!
//! A WRITE call's path arguments, and the words a shell command writes
//! (redirect targets, `cp`/`mv`/`install`/`ln` destinations, `tee`,
//! `touch`, `rm`, `dd of=`, `sed -i`, `curl -o` …), are each read with the
//! same lexical identity as self-protection ([`super::normalise`]: `~`,
//! variables, `..`, the working directory, `cd` inside the command), then,
//! when the daemon gives a [`Resolver`], with symlinks resolved on both
//! sides. A path that lands outside every folder, or whose start cannot be
//! known (`~bob/x`, `$UNSET/x`, a command name or target known only when
//! it runs), makes the flag. Pure and bounded: the file system is asked at
//! most [`MAX_RESOLVES`] times; past that the call is flagged.

use serde_json::Value;

use super::words::{Written, looks_like_path, shell_start, written};
use super::{Lexical, PathEnv, Resolver, collapse, is_under, kernel_form, normalise};
use crate::class::{Class, Flag};
use crate::classify::Classification;
use crate::shell::{self, RedirectKind, Word};

/// Strings looked at in one call's arguments.
const MAX_STRINGS: usize = 4096;
/// Paths the file system is asked about for one call.
pub const MAX_RESOLVES: usize = 64;
/// Folders kept from the client's roots.
const MAX_FOLDERS: usize = 64;

/// The workspace folders, absolute and normalised (empty: unknown).
pub fn folders(env: &PathEnv, client_roots: Option<&[String]>, configured: &[String]) -> Vec<String> {
    let abs = |s: &str| match normalise(s, env) {
        Some(Lexical::Abs(p)) => Some(p),
        _ => None,
    };
    // Absolute only: `file:///p` or `file://localhost/p` (a host or a
    // relative `file://../x` would be read against the working directory).
    let is_root_uri = |s: &&String| {
        let l = s.get(..17).unwrap_or(s).to_ascii_lowercase();
        s.starts_with('/') || l.starts_with("file:///") || l.starts_with("file://localhost/")
    };
    let mut out: Vec<String> =
        client_roots.unwrap_or(&[]).iter().filter(is_root_uri).filter_map(|r| abs(r)).take(MAX_FOLDERS).collect();
    if out.is_empty() {
        let home = env.home.as_deref().and_then(abs);
        let own = env.cwd.iter().chain(&env.roots).filter_map(|r| abs(r));
        out.extend(own.filter(|p| p != "/" && Some(p) != home.as_ref()));
    }
    out.extend(configured.iter().filter_map(|r| abs(r)));
    out.sort();
    out.dedup();
    out
}

/// Adds `outside_workspace` (with its reason) to a classified call that
/// writes outside `folders`. WRITE calls are read for path arguments;
/// EXECUTE calls and calls flagged `shell` for the files their commands
/// write. Nothing is flagged when the workspace is unknown (no folders).
pub fn flag(
    cls: &mut Classification,
    args: &Value,
    env: &PathEnv,
    resolver: Option<&dyn Resolver>,
    folders: &[String],
) {
    let write_args = cls.class == Class::Write;
    let shell_strings = cls.class == Class::Execute || cls.flags.contains(&Flag::Shell);
    if folders.is_empty() || !(write_args || shell_strings) {
        return;
    }
    if let Some(why) = outside(args, write_args, shell_strings, env, resolver, folders) {
        cls.flags.insert(Flag::OutsideWorkspace);
        cls.reasons.push(why);
    }
}

/// The flags a classified call's paths earn in the server's place:
/// `outside_workspace` ([`flag`]), and the sensitive places they lead to
/// through symlinks ([`super::sensitive::scan_followed`], with a resolver).
pub fn flag_in_place(
    cls: &mut Classification,
    args: &Value,
    env: &PathEnv,
    resolver: Option<&dyn Resolver>,
    folders: &[String],
) {
    flag(cls, args, env, resolver, folders);
    let Some(r) = resolver else { return };
    let shell = cls.flags.contains(&Flag::Shell);
    for (f, why) in super::sensitive::scan_followed(args, cls.class != Class::Read, shell, env, r) {
        if cls.flags.insert(f) {
            cls.reasons.push(why);
        }
    }
}

/// Why the call writes outside `folders`, if it does.
pub fn outside(
    args: &Value,
    write_args: bool,
    shell_strings: bool,
    env: &PathEnv,
    resolver: Option<&dyn Resolver>,
    folders: &[String],
) -> Option<String> {
    let reals = folders
        .iter()
        .map(|f| resolver.and_then(|r| r.resolve(f)).map_or_else(|| f.clone(), |r| fold(env, collapse(&r.real, true))))
        .collect();
    let mut s = Scan { env, resolver, folders, reals, resolves: 0, seen: 0, found: None };
    let shell_env = shell_strings.then(|| s.shell_env(args));
    s.walk(args, None, write_args, shell_env.as_ref());
    s.found
}

fn fold(env: &PathEnv, s: String) -> String {
    if env.case_insensitive { s.to_lowercase() } else { s }
}

struct Scan<'a> {
    env: &'a PathEnv,
    resolver: Option<&'a dyn Resolver>,
    folders: &'a [String],
    /// The folders with symlinks resolved (the folders when no resolver).
    reals: Vec<String>,
    resolves: usize,
    seen: usize,
    found: Option<String>,
}

impl Scan<'_> {
    fn shell_env(&self, args: &Value) -> PathEnv {
        shell_start(args, self.env)
    }

    fn walk(&mut self, v: &Value, key: Option<&str>, write: bool, sh: Option<&PathEnv>) {
        if self.found.is_some() {
            return;
        }
        if self.seen >= MAX_STRINGS {
            self.found =
                Some(format!("more than {MAX_STRINGS} strings: not every path was checked against the workspace"));
            return;
        }
        match v {
            Value::String(s) => {
                self.seen += 1;
                if write && looks_like_path(s, key) {
                    self.path(s, s, self.env, true);
                }
                if let Some(e) = sh
                    && s.contains(char::is_whitespace)
                {
                    self.command(s, e);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| self.walk(x, key, write, sh)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                self.seen += 1;
                // Keys too: `{ "files": { PATH: CONTENT } }`.
                if write && looks_like_path(k, None) {
                    self.path(k, k, self.env, true);
                }
                self.walk(x, Some(k), write, sh);
            }),
            _ => {}
        }
    }

    /// One written path, spelled `raw`, read in `env`; `roots` also tries
    /// a relative path against the server's command-line folders.
    fn path(&mut self, raw: &str, spelled: &str, env: &PathEnv, roots: bool) {
        if self.found.is_some() {
            return;
        }
        let relative =
            !raw.starts_with(['/', '~', '$']) && !raw.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("file://"));
        let mut places = vec![env.clone()];
        if roots && relative {
            places.extend(env.roots.iter().map(|r| PathEnv { cwd: Some(r.clone()), ..env.clone() }));
        }
        for e in &places {
            if let Some(why) = self.outside_one(raw, e) {
                self.found = Some(format!("path {spelled} is outside the workspace ({}){why}", self.listed()));
                return;
            }
        }
    }

    /// `Some(detail)` when `raw` read in `env` is outside every folder.
    fn outside_one(&mut self, raw: &str, env: &PathEnv) -> Option<String> {
        let abs = match normalise(raw, env)? {
            Lexical::Abs(p) => p,
            Lexical::Tail(_) => return Some(": where it starts is not known".to_owned()),
        };
        let lexically_in = self.folders.iter().any(|f| is_under(&abs, f));
        let Some(r) = self.resolver else {
            return (!lexically_in).then(String::new);
        };
        if self.resolves >= MAX_RESOLVES {
            return Some(format!(": more than {MAX_RESOLVES} paths, the rest not resolved"));
        }
        self.resolves += 1;
        // With `..`, as the kernel walks it (through a symlink, then up).
        let walked = kernel_form(raw, env).unwrap_or_else(|| abs.clone());
        let Some(resolved) = r.resolve(&walked) else {
            // Where it leads is unknown: inside only by name is not enough.
            if super::names_the_opener(&walked) {
                return (!lexically_in).then(String::new);
            }
            return Some(format!(" (Latch cannot follow where it leads: {})", super::UNFOLLOWED));
        };
        let real = fold(env, collapse(&resolved.real, true));
        if self.reals.iter().any(|f| is_under(&real, f)) {
            None
        } else if real != abs {
            Some(format!(" (through a symlink to {real})"))
        } else {
            Some(String::new())
        }
    }

    /// The folders, for a person (the first three).
    fn listed(&self) -> String {
        let mut s = self.folders.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if self.folders.len() > 3 {
            s.push_str(&format!(" and {} more", self.folders.len() - 3));
        }
        format!("workspace: {s}")
    }

    /// A shell command: the files it writes, with `cd` followed.
    fn command(&mut self, s: &str, start: &PathEnv) {
        if s.len() > shell::MAX_INPUT {
            self.found = Some("a command too long to read: its writes were not checked against the workspace".into());
            return;
        }
        let script = shell::parse(s, &start.vars_with_home());
        let mut env = start.clone();
        for cmd in &script.commands {
            if self.found.is_some() {
                return;
            }
            if super::follow_cd(cmd, &mut env) {
                continue;
            }
            for r in &cmd.redirects {
                if r.kind != RedirectKind::Read
                    && let Some(t) = &r.target
                {
                    self.word(t, &env);
                }
            }
            for d in super::words::unpacks_into(cmd) {
                self.word(&Word { text: d, ..Word::default() }, &env);
            }
            match written(cmd) {
                Written::Words(ws) => ws.into_iter().for_each(|w| self.word(w, &env)),
                Written::Unknown(why) => {
                    self.found = Some(format!("`{s}` {why}: not checked against the workspace ({})", self.listed()))
                }
            }
        }
        if script.truncated && self.found.is_none() {
            self.found = Some("a command past the parser's bounds: its writes were not all checked".into());
        }
    }

    fn word(&mut self, w: &Word, env: &PathEnv) {
        if self.found.is_some() || (!w.unknown && is_sink(&w.text)) {
            return;
        }
        if w.unknown {
            self.found = Some(format!(
                "writes to {:?}, a path known only when the command runs, not checked against the workspace ({})",
                w.text,
                self.listed()
            ));
            return;
        }
        let text = w.text.strip_prefix("of=").or_else(|| w.text.strip_prefix("--target-directory=")).unwrap_or(&w.text);
        self.path(text, text, env, false);
    }
}

/// Devices that take output and keep nothing (`2>/dev/null`, `tee /dev/stderr`).
fn is_sink(s: &str) -> bool {
    matches!(s, "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty")
        || s.strip_prefix("/dev/fd/").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests;
