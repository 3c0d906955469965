//! The protected places, and whether a path names one: lexically, by its
//! symlink-resolved form, and by device and inode.

use super::call::{Ctx, Finding};
use super::set::{Kind, Protected};
use crate::path::{self, FileId, Lexical, collapse, ends_with_tail, is_under};

/// Client configs and hook settings found by their name wherever they are
/// (a project's `.mcp.json` is in any folder): writes are denied.
pub const CONFIG_SUFFIXES: &[&str] = &[
    ".mcp.json",
    ".claude.json",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".cursor/mcp.json",
    ".vscode/mcp.json",
    ".vscode/settings.json",
    ".gemini/settings.json",
    ".codex/config.toml",
    ".copilot/settings.json",
    ".codeium/windsurf/mcp_config.json",
    "Claude/claude_desktop_config.json",
    "Code/User/settings.json",
    "Code/User/mcp.json",
];

#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Places {
    latch: Vec<String>,
    binary: Vec<String>,
    configs: Vec<String>,
    suffixes: Vec<String>,
    files: Vec<(FileId, Kind)>,
    fold: bool,
}

/// What a path was found to be.
pub(super) struct Hit {
    pub kind: Kind,
    /// The protected path it names (or lies under, or contains).
    pub what: String,
}

impl Places {
    pub fn new(p: &Protected) -> Places {
        let fold = p.case_insensitive;
        let norm = |v: &[String]| {
            let mut out: Vec<String> = v
                .iter()
                .filter(|s| s.starts_with('/'))
                .map(|s| {
                    let c = collapse(s, true);
                    if fold { c.to_lowercase() } else { c }
                })
                .filter(|s| s != "/")
                .collect();
            // Longest first: a reason names the most specific place.
            out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
            out.dedup();
            out
        };
        let suffixes = CONFIG_SUFFIXES.iter().map(|s| if fold { s.to_lowercase() } else { (*s).to_owned() }).collect();
        Places {
            latch: norm(&p.paths),
            binary: norm(&p.binary),
            configs: norm(&p.configs),
            suffixes,
            files: p.files.clone(),
            fold,
        }
    }

    /// A string from a tool's arguments, read as a path.
    pub fn check_string(&self, s: &str, ctx: &Ctx<'_>, write: bool, ancestors: bool) -> Option<Finding> {
        let lex = path::normalise(s, ctx.place.env)?;
        let hit =
            self.check(&lex, ctx, write, ancestors).or_else(|| self.check_kernel_form(s, ctx, write, ancestors))?;
        Some(finding(&hit, s, write))
    }

    /// Whether the path names a protected place (for `write`, client
    /// configs count too; with `ancestors`, a folder that holds a
    /// protected place counts).
    pub fn check(&self, lex: &Lexical, ctx: &Ctx<'_>, write: bool, ancestors: bool) -> Option<Hit> {
        match lex {
            Lexical::Abs(p) => self.check_abs(p, write, ancestors).or_else(|| {
                let r = ctx.resolve(p)?;
                let real = if self.fold { r.real.to_lowercase() } else { r.real };
                if let Some(h) = self.check_abs(&real, write, ancestors) {
                    return Some(Hit { what: format!("{} (through {real})", h.what), ..h });
                }
                let id = r.file?;
                let (_, kind) = self.files.iter().find(|(f, k)| *f == id && (write || *k != Kind::Config))?;
                Some(Hit { kind: *kind, what: format!("{real}, the same file as one of Latch's protected files") })
            }),
            Lexical::Tail(t) => self.check_tail(t, write, ancestors),
        }
    }

    /// A path with `..` as the kernel walks it (through symlinks).
    pub fn check_kernel_form(&self, s: &str, ctx: &Ctx<'_>, write: bool, ancestors: bool) -> Option<Hit> {
        let raw = path::kernel_form(s, ctx.place.env)?;
        let r = ctx.resolve(&raw)?;
        let real = collapse(&r.real, true);
        let real = if self.fold { real.to_lowercase() } else { real };
        if let Some(h) = self.check_abs(&real, write, ancestors) {
            return Some(Hit { what: format!("{} (through {real})", h.what), ..h });
        }
        let id = r.file?;
        let (_, kind) = self.files.iter().find(|(f, k)| *f == id && (write || *k != Kind::Config))?;
        Some(Hit { kind: *kind, what: format!("{real}, the same file as one of Latch's protected files") })
    }

    /// The binary's paths.
    pub fn binary(&self) -> &[String] {
        &self.binary
    }

    /// The path runs the `latch` binary.
    pub fn is_binary(&self, lex: &Lexical, ctx: &Ctx<'_>) -> bool {
        match lex {
            Lexical::Abs(p) => {
                self.binary.iter().any(|b| b == p)
                    || ctx.resolve(p).is_some_and(|r| {
                        let real = if self.fold { r.real.to_lowercase() } else { r.real };
                        self.binary.contains(&real)
                            || r.file.is_some_and(|id| self.files.iter().any(|(f, k)| *f == id && *k == Kind::Binary))
                    })
            }
            Lexical::Tail(_) => false,
        }
    }

    fn check_abs(&self, p: &str, write: bool, ancestors: bool) -> Option<Hit> {
        let holds = |e: &String| is_under(p, e) || (ancestors && is_under(e, p));
        if let Some(e) = self.latch.iter().find(|e| holds(e)) {
            let kind = if self.binary.contains(e) { Kind::Binary } else { Kind::Latch };
            return Some(Hit { kind, what: e.clone() });
        }
        if !write {
            return None;
        }
        if let Some(e) = self.configs.iter().find(|e| *e == p || (ancestors && is_under(e, p))) {
            return Some(Hit { kind: Kind::Config, what: e.clone() });
        }
        self.suffixes.iter().find(|s| ends_with_tail(p, s)).map(|_| Hit { kind: Kind::Config, what: p.to_owned() })
    }

    /// An unknown start and a known tail: conservative, any protected path
    /// the tail could name counts.
    fn check_tail(&self, t: &str, write: bool, ancestors: bool) -> Option<Hit> {
        let t = if self.fold { t.to_lowercase() } else { t.to_owned() };
        let names = |e: &str| {
            if ends_with_tail(e, &t) || (ancestors && e.contains(&format!("/{t}/"))) {
                return true;
            }
            // Under it: some leading part of the tail ends the entry.
            let mut i = 0;
            while let Some(j) = t[i..].find('/') {
                if ends_with_tail(e, &t[..i + j]) {
                    return true;
                }
                i += j + 1;
            }
            false
        };
        if let Some(e) = self.latch.iter().find(|e| names(e)) {
            let kind = if self.binary.contains(e) { Kind::Binary } else { Kind::Latch };
            return Some(Hit { kind, what: e.clone() });
        }
        if !write {
            return None;
        }
        if let Some(e) = self.configs.iter().find(|e| ends_with_tail(e, &t)) {
            return Some(Hit { kind: Kind::Config, what: e.clone() });
        }
        self.suffixes
            .iter()
            .find(|s| ends_with_tail(&t, s) || (t.contains('/') && ends_with_tail(s, &t)))
            .map(|_| Hit { kind: Kind::Config, what: format!("…/{t}") })
    }

    /// A glob word (`~/.config/l*/policy.toml`): a protected path under
    /// the glob's fixed folder whose next parts match the pattern.
    pub fn check_glob(&self, lex: &Lexical, write: bool, ancestors: bool) -> Option<Hit> {
        let Lexical::Abs(p) = lex else { return None };
        let parts: Vec<&str> = p.split('/').skip(1).collect();
        let first = parts.iter().position(|s| s.contains(['*', '?', '[']))?;
        let dir = format!("/{}", parts[..first].join("/"));
        let pattern = &parts[first..];
        let try_kind = |e: &String, kind: Kind| -> Option<Hit> {
            let rest = e.strip_prefix(&dir)?.strip_prefix('/').or_else(|| (dir == "/").then(|| &e[1..]))?;
            let rest: Vec<&str> = rest.split('/').collect();
            let n = pattern.len().min(rest.len());
            let all = pattern.iter().zip(&rest).take(n).all(|(pat, name)| wildcard(pat, name));
            let deep_enough = pattern.len() <= rest.len();
            (all && (pattern.len() == rest.len() || (deep_enough && (ancestors || kind != Kind::Config))))
                .then(|| Hit { kind, what: e.clone() })
        };
        if let Some(h) = self
            .latch
            .iter()
            .find_map(|e| try_kind(e, if self.binary.contains(e) { Kind::Binary } else { Kind::Latch }))
        {
            return Some(h);
        }
        if write { self.configs.iter().find_map(|e| try_kind(e, Kind::Config)) } else { None }
    }
}

/// `*`, `?` and `[…]` (any one character) within one path part.
fn wildcard(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && p[i] == '[' {
            let close = p[i..].iter().position(|&c| c == ']').map(|k| i + k);
            if let Some(c) = close {
                i = c + 1;
                j += 1;
                continue;
            }
        }
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

pub(super) fn finding(hit: &Hit, spelled: &str, write: bool) -> Finding {
    let how = if spelled == hit.what { String::new() } else { format!(" (spelled {spelled:?})") };
    match hit.kind {
        Kind::Latch | Kind::Binary => Finding::deny(format!("names Latch's own file {}{how}", hit.what)),
        Kind::Config => Finding::deny(format!(
            "{} {}{how}, a client config or hook settings file (a change there can unwrap a server from Latch)",
            if write { "writes" } else { "names" },
            hit.what
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards() {
        assert!(wildcard("l*", "latch"));
        assert!(wildcard("*.toml", "policy.toml"));
        assert!(wildcard("p?licy.t[aeiou]ml", "policy.toml"));
        assert!(wildcard("*", "x"));
        assert!(!wildcard("l*x", "latch"));
    }
}
