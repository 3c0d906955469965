//! Built-in self-protection: calls that touch Latch itself are denied,
//! before any user rule, and no policy can switch this off.
//!
//! Two checks run over every string in the arguments, at any depth, object
//! keys included (some tools take `{ "files": { PATH: CONTENT } }`):
//!
//! 1. **Protected paths.** The daemon passes Latch's own paths (policy
//!    file, database, socket, data folder, and the `latch` binary) in
//!    [`Protected`]. A string *mentions* a path when the path occurs in it
//!    and the next character does not continue a file name
//!    (`policy.toml.bak` and `…/latch/run/x` count; `…/latchy` does not).
//!    For a path under the home folder, the home-relative spellings count
//!    too: `~/.config/latch/policy.toml`, `$HOME/…`, `${HOME}/…`, and the
//!    relative tail `.config/latch/policy.toml` itself when it has at
//!    least two parts (so `cd ~ && rm .config/latch/policy.toml` is
//!    caught). Every class is covered, reads included: the policy says
//!    what is watched, the audit log is private.
//! 2. **The `latch` command.** A string in which a word `latch` (or a path
//!    ending in `/latch`, or `latch.exe`) is followed within four words by
//!    a subcommand that changes Latch's state or answers approvals:
//!    `approve`, `deny`, `policy`, `daemon`, `install`, `uninstall`,
//!    `tui`, and `prune` (`latch audit prune` removes evidence). Also `pkill`/`killall` aimed at anything named `latch…`.
//!    Words are split on blanks and shell punctuation (`;|&()<>'"$` and
//!    backquote), so `$(latch approve 3)` and `"latch" approve` count.
//!
//! These are string checks, not a shell parser: they are conservative (an
//! e-mail body saying "run latch approve 12" is denied too), and they
//! cannot see through indirection (`x=lat; ${x}ch approve`, a script file
//! written first and run later, a symlink to the policy file) or
//! case-insensitive file systems (`POLICY.TOML` on macOS). They are one
//! layer: the approval channel itself only accepts answers from consoles
//! and Telegram, never from a shim.

use std::sync::OnceLock;

use serde_json::Value;

/// What the daemon tells the policy about Latch's own files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protected {
    /// Absolute paths: policy file, database, socket, data folder, binary.
    pub paths: Vec<String>,
    /// The user's home folder, for `~/…` and `$HOME/…` spellings.
    pub home: Option<String>,
}

impl Protected {
    /// Latch's own files from its [`Paths`](latch_proto::paths::Paths):
    /// policy file, database, socket, log and data folder, plus the
    /// `latch` binary when given (`std::env::current_exe()`), and the home
    /// folder for `~/…` spellings (`$HOME`). No IO.
    pub fn from_paths(
        paths: &latch_proto::paths::Paths,
        home: Option<&std::path::Path>,
        binary: Option<&std::path::Path>,
    ) -> Protected {
        let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let mut out: Vec<String> =
            [&paths.policy, &paths.database, &paths.socket, &paths.log, &paths.data_dir].iter().map(|p| s(p)).collect();
        if let Some(dir) = paths.policy.parent() {
            // The policy's folder: an editor's swap file or a `mv` over it.
            out.push(s(dir));
        }
        out.extend(binary.map(s));
        out.dedup();
        Protected { paths: out, home: home.map(s) }
    }
}

/// Mutating subcommands of `latch`.
const LATCH_SUBCOMMANDS: &[&str] = &["approve", "deny", "policy", "daemon", "install", "uninstall", "tui", "prune"];

/// The compiled form of [`Protected`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Guard {
    /// (needle, the protected path it stands for), longest first.
    needles: Vec<(String, String)>,
    /// All needles as one literal alternation: one pass over each string.
    finder: Option<regex::Regex>,
}

impl PartialEq for Guard {
    fn eq(&self, other: &Self) -> bool {
        self.needles == other.needles
    }
}

impl Guard {
    pub fn new(p: &Protected) -> Guard {
        let mut needles: Vec<(String, String)> = Vec::new();
        let home = p.home.as_deref().map(|h| h.trim_end_matches('/')).filter(|h| !h.is_empty());
        for path in &p.paths {
            let path = path.trim_end_matches('/');
            if path.is_empty() {
                continue;
            }
            let mut add = |n: String| {
                if !needles.iter().any(|(x, _)| *x == n) {
                    needles.push((n, path.to_owned()));
                }
            };
            add(path.to_owned());
            if let Some(h) = home
                && let Some(rel) = path.strip_prefix(h).and_then(|r| r.strip_prefix('/'))
                && !rel.is_empty()
            {
                add(format!("~/{rel}"));
                add(format!("$HOME/{rel}"));
                add(format!("${{HOME}}/{rel}"));
                if rel.contains('/') {
                    add(rel.to_owned());
                }
            }
        }
        needles.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let finder = (!needles.is_empty()).then(|| {
            let alt: Vec<String> = needles.iter().map(|(n, _)| regex::escape(n)).collect();
            regex::Regex::new(&alt.join("|")).expect("escaped literals always compile")
        });
        Guard { needles, finder }
    }

    /// Why the arguments touch Latch, or `None`.
    pub fn check(&self, args: &Value) -> Option<String> {
        let mut path = Vec::new();
        self.walk(args, &mut path)
    }

    fn walk<'v>(&self, v: &'v Value, path: &mut Vec<PathPart<'v>>) -> Option<String> {
        match v {
            Value::String(s) => self.check_str(s).map(|why| {
                let at =
                    if path.is_empty() { "the arguments".to_owned() } else { format!("argument `{}`", fmt_path(path)) };
                format!("{at} {why}")
            }),
            Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| {
                path.push(PathPart::Index(i));
                let r = self.walk(x, path);
                path.pop();
                r
            }),
            Value::Object(o) => o.iter().find_map(|(k, x)| {
                path.push(PathPart::Key(k));
                // Keys too: some tools take `{ "files": { PATH: CONTENT } }`.
                let r = self
                    .check_str(k)
                    .map(|why| format!("the key of argument `{}` {why}", fmt_path(path)))
                    .or_else(|| self.walk(x, path));
                path.pop();
                r
            }),
            _ => None,
        }
    }

    fn check_str(&self, s: &str) -> Option<String> {
        if let Some(re) = &self.finder
            && re.is_match(s)
        {
            // Rare path: some needle occurs; check which, with boundaries.
            for (needle, path) in &self.needles {
                if mentions(s, needle) {
                    return Some(format!("mentions Latch's own file {path}"));
                }
            }
        }
        latch_command(s)
    }
}

enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

fn fmt_path(p: &[PathPart<'_>]) -> String {
    let mut out = String::new();
    for (i, part) in p.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match part {
            PathPart::Key(k) => out.push_str(k),
            PathPart::Index(n) => out.push_str(&n.to_string()),
        }
    }
    out
}

fn continues_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// `needle` occurs in `s` as a whole path: not glued to a longer name on
/// either side.
fn mentions(s: &str, needle: &str) -> bool {
    let b = s.as_bytes();
    let absolute = needle.starts_with(['/', '~', '$']);
    let mut from = 0;
    while let Some(i) = s[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = start == 0 || {
            let p = b[start - 1];
            !(continues_name(p) || p == b'.' || (absolute && p == b'/'))
        };
        let after_ok = end == b.len() || !continues_name(b[end]);
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
        while !s.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(' | ')' | '<' | '>' | '\'' | '"' | '`' | '$' | '{' | '}')
}

fn is_latch(word: &str) -> bool {
    let base = word.rsplit(['/', '\\']).next().unwrap_or(word);
    let base = base.strip_suffix(".exe").or_else(|| base.strip_suffix(".EXE")).unwrap_or(base);
    base.eq_ignore_ascii_case("latch")
}

/// Finds `latch <mutating subcommand>` or `pkill latch` in a string.
fn latch_command(s: &str) -> Option<String> {
    static WORD: OnceLock<regex::Regex> = OnceLock::new();
    let word = WORD.get_or_init(|| regex::Regex::new("(?i)latch").expect("valid"));
    if !word.is_match(s) {
        return None;
    }
    let words: Vec<&str> = s.split(is_separator).filter(|w| !w.is_empty()).collect();
    for (i, w) in words.iter().enumerate() {
        let next = &words[i + 1..words.len().min(i + 5)];
        if is_latch(w) {
            if let Some(sub) = next.iter().find(|n| LATCH_SUBCOMMANDS.iter().any(|c| c.eq_ignore_ascii_case(n))) {
                return Some(format!("runs `latch {}`, which only a person may run", sub.to_ascii_lowercase()));
            }
        } else if matches!(*w, "pkill" | "killall") && next.iter().any(|n| n.to_ascii_lowercase().contains("latch")) {
            return Some(format!("stops Latch with `{w}`"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn guard() -> Guard {
        Guard::new(&Protected {
            paths: vec![
                "/home/u/.config/latch/policy.toml".into(),
                "/home/u/.local/share/latch".into(),
                "/usr/local/bin/latch".into(),
            ],
            home: Some("/home/u".into()),
        })
    }

    #[test]
    fn latch_commands_are_caught() {
        assert!(latch_command("latch approve 123").is_some());
        assert!(latch_command("cd /tmp && /usr/local/bin/latch --quiet deny 4").is_some());
        assert!(latch_command("echo $(latch policy check)").is_some());
        assert!(latch_command("pkill -f latch").is_some());
        assert!(latch_command("latch shim --name fs -- npx x").is_none());
        assert!(latch_command("cargo build -p latch-core").is_none());
        assert!(latch_command("grep -r latch_approve src/").is_none());
    }

    #[test]
    fn paths_are_caught_in_every_spelling() {
        let g = guard();
        for s in [
            "/home/u/.config/latch/policy.toml",
            "~/.config/latch/policy.toml",
            "rm $HOME/.local/share/latch/audit.db",
            "cd ~ && rm .config/latch/policy.toml",
            "cp x /home/u/.config/latch/policy.toml.bak",
            "ls /home/u/.local/share/latch",
        ] {
            assert!(g.check(&json!({"cmd": s})).is_some(), "{s}");
        }
        for s in ["/home/u/.local/share/latchy/x", "/home/u/project/policy.toml", "/backup/usr/local/bin/latch"] {
            assert!(g.check(&json!({"path": s})).is_none(), "{s}");
        }
    }

    #[test]
    fn object_keys_are_checked_too() {
        let why = guard().check(&json!({"files": {"~/.config/latch/policy.toml": "x"}})).unwrap();
        assert!(why.contains("key of argument `files.~/.config/latch/policy.toml`"), "{why}");
    }

    #[test]
    fn reason_names_the_argument() {
        let why = guard().check(&json!({"edits": [{"file": "~/.config/latch/policy.toml"}]})).unwrap();
        assert!(why.contains("argument `edits.0.file`"), "{why}");
    }
}
