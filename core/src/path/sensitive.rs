//! Sensitive places: where a write persists an attacker's foothold, and
//! which files hold credentials.
//!
//! - **Persistence** (a write there runs later, or lets someone in):
//!   `~/.ssh`, shell start-up files (`.bashrc`, `.zshrc`, `.profile`, …,
//!   `.config/fish/`), credential stores (`~/.aws`, `~/.config/gcloud`,
//!   `~/.kube`, `~/.docker`, `~/.gnupg`, `.netrc`, `.npmrc`, `.pypirc`,
//!   `.git-credentials`, `.pgpass`), git hooks (`.git/hooks/`), cron tables,
//!   systemd user units and autostart entries (`~/.config/systemd`,
//!   `~/.config/autostart`, `~/Library/LaunchAgents`), and `/etc`.
//! - **Secrets** (reading them discloses credentials): the credential
//!   files above, private keys (`~/.ssh/id_*` but not `.pub`, `*.pem`,
//!   `*.key`, `*.p12`, `*.pfx`), and `.env` files (not `.env.example`).
//!
//! Paths are read lexically ([`super::normalise`] with no environment, so
//! `~/.ssh/x` and `/home/u/.ssh/x` are both `.ssh/x` at heart), as tool
//! arguments and as the words of shell commands ([`scan`]); then, where
//! the daemon gives a [`Resolver`], in the server's place and followed to
//! where they lead ([`scan_followed`]): a link in a project to `.git/hooks`
//! or `~/.ssh` is the place it leads to, and a written path the resolver
//! cannot follow to its end counts as a persistence place (where it lands
//! is unknown). Pure, bounded.

mod git;
mod names;
mod patterns;

use std::borrow::Cow;

use names::{CRED_DIRS, CRED_FILES, KEY_EXT, SHELL_RC};

use serde_json::Value;

use super::{Lexical, PathEnv, Resolver, UNFOLLOWED, collapse, kernel_form, names_the_opener, normalise};
use crate::class::Flag;
use crate::shell::{self, RedirectKind};

/// Strings looked at in one call's arguments.
const MAX_STRINGS: usize = 4096;

/// Why a write to this path persists, if it does.
pub fn persistence(path: &str) -> Option<&'static str> {
    let c = comps(path);
    let base = *c.last()?;
    if c.contains(&".ssh") {
        return Some("SSH keys and authorized_keys");
    }
    if SHELL_RC.contains(&base) || seq(&c, ".config", "fish") {
        return Some("a shell start-up file");
    }
    if CRED_FILES.contains(&base) || CRED_DIRS.iter().any(|d| c.contains(d)) || seq(&c, ".config", "gcloud") {
        return Some("a credential store");
    }
    // Under `.git` at any depth (`.git/modules/sub/hooks`, `worktrees/…`).
    let in_git = |names: &[&str]| {
        c.iter().position(|x| *x == ".git").is_some_and(|g| c[g + 1..].iter().any(|x| names.contains(x)))
    };
    if in_git(&["hooks"]) || base == ".pre-commit-config.yaml" {
        return Some("a git hook");
    }
    if in_git(&["config", "config.worktree"]) || base == ".gitconfig" || (seq(&c, ".config", "git") && base == "config")
    {
        return Some("git's configuration (it names programs git runs)");
    }
    let abs = path.starts_with('/');
    if (abs && (path.starts_with("/etc/cron") || path.starts_with("/var/spool/cron"))) || base == "crontab" {
        return Some("a cron table");
    }
    let user_units = seq(&c, ".local", "share") && c.contains(&"systemd");
    if seq(&c, ".config", "systemd")
        || seq(&c, ".config", "autostart")
        || seq(&c, "Library", "LaunchAgents")
        || user_units
    {
        return Some("a service or autostart entry");
    }
    if abs && (path == "/etc" || path.starts_with("/etc/")) {
        return Some("system configuration (/etc)");
    }
    None
}

/// Why reading this path discloses a secret, if it does.
pub fn secret(path: &str) -> Option<&'static str> {
    let c = comps(path);
    let base = *c.last()?;
    if CRED_FILES.contains(&base)
        || (c.contains(&".aws") && matches!(base, "credentials" | "config"))
        || (c.contains(&".kube") && base == "config")
        || (c.contains(&".docker") && base == "config.json")
        || c.contains(&".gnupg")
        || seq(&c, ".config", "gcloud")
    {
        return Some("a credential file");
    }
    let private_ssh = c.contains(&".ssh") && base.starts_with("id_") && !base.ends_with(".pub");
    if private_ssh || KEY_EXT.iter().any(|e| base.len() > e.len() && base.ends_with(e)) {
        return Some("a private key");
    }
    if base == ".env"
        || (base.starts_with(".env.") && !["example", "sample", "template", "dist"].iter().any(|s| base.ends_with(s)))
    {
        return Some("an environment file (.env)");
    }
    None
}

fn comps(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn seq(c: &[&str], a: &str, b: &str) -> bool {
    c.windows(2).any(|w| w[0] == a && w[1] == b)
}

/// Flags for a call's arguments, with a reason each: `persistence` for a
/// write to a persistence place, `secret_read` for a read of a secret.
/// `write` says whether the call writes (its class is not READ); `shell`
/// that its strings are shell commands (then each command decides).
pub fn scan(args: &Value, write: bool, shell_strings: bool) -> Vec<(Flag, String)> {
    let mut s = Scan { out: Vec::new(), seen: 0, env: Cow::Owned(PathEnv::default()), follow: None };
    s.walk(args, None, write, shell_strings);
    s.out
}

/// Paths followed to where they lead, per call.
pub const MAX_FOLLOWED: usize = 64;

/// [`scan`] of the paths read in the server's place (`env`: its working
/// directory, home and variables; `cd` inside a command followed) and
/// followed through `resolver` to where they lead: what a path's real
/// place is when its name does not say it ("path tools/pre-commit (through
/// a symlink to /p/.git/hooks/pre-commit) is a persistence place"). A
/// written path the resolver cannot follow, or past [`MAX_FOLLOWED`]
/// paths, counts as a persistence place too.
pub fn scan_followed(
    args: &Value,
    write: bool,
    shell_strings: bool,
    env: &PathEnv,
    resolver: &dyn Resolver,
) -> Vec<(Flag, String)> {
    let start = super::words::shell_start(args, env);
    let (env, also) =
        if start.cwd == env.cwd { (Cow::Borrowed(env), None) } else { (Cow::Owned(start), env.cwd.clone()) };
    let follow = Some(Follow { resolver, resolves: 0, also });
    let mut s = Scan { out: Vec::new(), seen: 0, env, follow };
    s.walk(args, None, write, shell_strings);
    s.out
}

struct Scan<'a> {
    out: Vec<(Flag, String)>,
    seen: usize,
    /// Copied only when a command's `cd` changes its working directory.
    env: Cow<'a, PathEnv>,
    /// Set by [`scan_followed`].
    follow: Option<Follow<'a>>,
}

struct Follow<'a> {
    resolver: &'a dyn Resolver,
    resolves: usize,
    /// The server's own working directory when the call names another
    /// (`cwd`, `dir`): relative paths are read against both.
    also: Option<String>,
}

impl Scan<'_> {
    fn has(&self, f: Flag) -> bool {
        self.out.iter().any(|(x, _)| *x == f)
    }

    fn walk(&mut self, v: &Value, key: Option<&str>, write: bool, sh: bool) {
        if self.seen >= MAX_STRINGS || (self.has(Flag::Persistence) && self.has(Flag::SecretRead)) {
            return;
        }
        match v {
            Value::String(s) => {
                self.seen += 1;
                self.string(s, key, write, sh);
            }
            Value::Array(a) => a.iter().for_each(|x| self.walk(x, key, write, sh)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                self.seen += 1;
                // Followed: keys that name files (`{"files": {PATH: …}}`),
                // not every key (an edit list's `oldText`, `newText`).
                if self.follow.is_none() || super::words::looks_like_path(k, key) {
                    self.path(k, write);
                }
                self.walk(x, Some(k), write, sh);
            }),
            _ => {}
        }
    }

    fn string(&mut self, s: &str, key: Option<&str>, write: bool, sh: bool) {
        let pathish = key.is_some_and(|k| {
            let k = k.to_ascii_lowercase();
            k.contains("path")
                || k.contains("file")
                || matches!(k.as_str(), "dest" | "destination" | "source" | "target")
        });
        let followed_path = self.follow.is_some() && super::words::looks_like_path(s, key);
        if pathish
            || followed_path
            || s.starts_with(['/', '~'])
            || (s.contains('/') && !s.contains(char::is_whitespace))
        {
            self.path(s, write);
        }
        if sh && s.len() <= shell::MAX_INPUT && s.contains(char::is_whitespace) {
            self.command(s);
        }
    }

    fn path(&mut self, s: &str, write: bool) {
        let Some(follow) = &self.follow else {
            if let Some(Lexical::Abs(p) | Lexical::Tail(p)) = normalise(s, &self.env) {
                self.note(&p, s, write);
            }
            return;
        };
        // Followed: read where the server may read it (the working
        // directory, the one the call names, each of the server's roots);
        // a start that is unknown was read by its tail in the lexical scan.
        let relative = !s.starts_with(['/', '~', '$']) && !s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("file:"));
        let others: Vec<String> =
            if relative { follow.also.iter().chain(&self.env.roots).cloned().collect() } else { Vec::new() };
        // Taken out for the walk (a borrowed place stays borrowed).
        let env = std::mem::replace(&mut self.env, Cow::Owned(PathEnv::default()));
        if let Some(Lexical::Abs(p)) = normalise(s, &env) {
            self.followed(s, &p, write, &env);
        }
        for cwd in others {
            let e = PathEnv { cwd: Some(cwd), ..env.as_ref().clone() };
            if let Some(Lexical::Abs(p)) = normalise(s, &e) {
                self.followed(s, &p, write, &e);
            }
        }
        self.env = env;
    }

    /// The path `s` (absolute `p` in `env`) by its place and where it
    /// leads.
    fn followed(&mut self, s: &str, p: &str, write: bool, env: &PathEnv) {
        if write && self.has(Flag::Persistence) || !write && self.has(Flag::SecretRead) {
            return;
        }
        // The name in place: a `cd` or the call's folder may make it one.
        self.note(p, s, write);
        let Some(f) = self.follow.as_mut() else { return };
        if f.resolves >= MAX_FOLLOWED {
            if write {
                let why =
                    format!("more than {MAX_FOLLOWED} paths: not every written path was followed to where it leads");
                self.out.push((Flag::Persistence, why));
            }
            return;
        }
        f.resolves += 1;
        // With `..`, as the kernel walks it (through a symlink, then up).
        let walked = kernel_form(s, env).unwrap_or_else(|| p.to_owned());
        match f.resolver.resolve(&walked) {
            Some(r) => {
                let real = collapse(&r.real, true);
                let real = if env.case_insensitive { real.to_lowercase() } else { real };
                if real != p {
                    self.note(&real, &format!("{s} (through a symlink to {real})"), write);
                }
            }
            None if write && !names_the_opener(&walked) => {
                let why =
                    format!("path {s} leads where Latch cannot follow ({UNFOLLOWED}): it may be a persistence place");
                self.out.push((Flag::Persistence, why));
            }
            None => {}
        }
    }

    fn note(&mut self, p: &str, spelled: &str, write: bool) {
        if write && !self.has(Flag::Persistence) {
            if let Some(why) = persistence(p) {
                self.out.push((Flag::Persistence, format!("path {spelled} is a persistence place ({why})")));
            }
        } else if !write
            && !self.has(Flag::SecretRead)
            && let Some(why) = secret(p)
        {
            self.out.push((Flag::SecretRead, format!("path {spelled} is {why}")));
        }
    }

    /// `src` copied into the folder `dir`; a folder copied over one of
    /// [`HOLDERS`] (`cp -rt ~ dot/.config`) is a persistence place.
    fn copied_into(&mut self, dir: &str, src: &str, folders: bool) {
        let base = super::base_name(src);
        if matches!(base, "" | "." | "..") {
            return;
        }
        let into = format!("{}/{base}", dir.trim_end_matches('/'));
        self.path(&into, true);
        if folders && HOLDERS.contains(&base) && !self.has(Flag::Persistence) {
            self.out.push((Flag::Persistence, format!("copies a folder over {into}, which holds persistence places")));
        }
    }

    /// An archive unpacked into `dest`: a persistence place when the folder
    /// is the home folder, `/`, one of [`HOLDERS`] or itself one.
    fn unpacked_into(&mut self, dest: &str) {
        if self.has(Flag::Persistence) {
            return;
        }
        let abs = match normalise(dest, &self.env) {
            Some(Lexical::Abs(p)) => p,
            _ => dest.to_owned(),
        };
        let base = super::base_name(&abs);
        let home = self.env.home.as_deref().is_some_and(|h| h.trim_end_matches('/') == abs.trim_end_matches('/'));
        let holds = home
            || matches!(dest, "~" | "~/" | "$HOME" | "${HOME}")
            || abs == "/"
            || HOLDERS.contains(&base)
            || persistence(&abs).is_some();
        if holds {
            self.out
                .push((Flag::Persistence, format!("unpacks an archive into {dest}, which holds persistence places")));
        }
    }

    /// A shell command: redirects and the writing commands' arguments are
    /// writes, the reading commands' arguments are reads.
    fn command(&mut self, s: &str) {
        let vars = if self.follow.is_some() { self.env.vars_with_home() } else { Default::default() };
        let script = shell::parse(s, &vars);
        let cwd = self.env.cwd.clone();
        self.words(&script);
        // Again through the links, copies and moves it makes for itself.
        match script.links_followed() {
            shell::Followed::Nothing => {}
            shell::Followed::Through(through) => {
                if self.env.cwd != cwd {
                    self.env.to_mut().cwd = cwd.clone();
                }
                self.words(&through);
            }
            shell::Followed::Unknown(w) if !self.has(Flag::Persistence) => {
                let why = format!("uses {w} through a link the command makes to a place known only when it runs");
                self.out.push((Flag::Persistence, why));
            }
            shell::Followed::Unknown(_) => {}
        }
        if self.env.cwd != cwd {
            self.env.to_mut().cwd = cwd;
        }
    }

    /// A shell word as a path; a pattern (`.[g]it/config`, `.gi?/hooks`,
    /// `.{git,x}/config`) also as each sensitive name it can match.
    fn word(&mut self, w: &shell::Word, write: bool) {
        self.path(&w.text, write);
        if w.glob || (w.text.contains('{') && w.text.contains(',')) {
            for s in patterns::spellings(&w.text) {
                self.path(&s, write);
            }
        }
    }

    fn words(&mut self, script: &shell::Script) {
        for cmd in &script.commands {
            for r in &cmd.redirects {
                if let Some(t) = r.target.as_ref().filter(|t| !t.unknown) {
                    self.word(t, r.kind != RedirectKind::Read);
                }
            }
            let name = cmd.base_name().unwrap_or("");
            if self.follow.is_some() && matches!(name, "cd" | "pushd" | "popd") {
                // Later relative words start there (unknown: not followed).
                super::follow_cd(cmd, self.env.to_mut());
                continue;
            }
            // Files the command writes by option: `cp -t DIR`, `dd of=`.
            if let super::words::Written::Words(ws) = super::words::written(cmd) {
                for w in ws.into_iter().filter(|w| !w.unknown) {
                    let t = w.text.strip_prefix("of=").or_else(|| w.text.strip_prefix("--target-directory="));
                    self.path(t.unwrap_or(&w.text), true);
                }
            }
            for dest in super::words::unpacks_into(cmd) {
                self.unpacked_into(&dest);
            }
            if name == "git" {
                let (why, file) = git::git_persists(cmd.args());
                if let Some(f) = file {
                    self.path(&f, true);
                }
                if let Some(why) = why
                    && !self.has(Flag::Persistence)
                {
                    self.out.push((Flag::Persistence, why));
                }
            }
            if name == "crontab" && cmd.args().iter().all(|w| w.text != "-l") {
                if !self.has(Flag::Persistence) {
                    self.out.push((Flag::Persistence, "`crontab` installs a cron table (a persistence place)".into()));
                }
                continue;
            }
            if name == "systemctl" && cmd.args().iter().any(|w| matches!(w.text.as_str(), "enable" | "link" | "edit")) {
                if !self.has(Flag::Persistence) {
                    self.out.push((
                        Flag::Persistence,
                        "`systemctl enable` installs a service (a persistence place)".into(),
                    ));
                }
                continue;
            }
            // Commands whose arguments are never written (patterns, tests,
            // listings): `find . -name .git`, `test -d .git`, `ls -la .git`.
            let reads = matches!(
                name,
                "ls" | "stat"
                    | "ssh"
                    | "ssh-add"
                    | "ssh-keygen"
                    | "wc"
                    | "test"
                    | "["
                    | "[["
                    | "find"
                    | "tree"
                    | "fd"
                    | "du"
                    | "diff"
                    | "file"
                    | "readlink"
                    | "realpath"
                    | "basename"
                    | "dirname"
                    | "echo"
                    | "printf"
                    | "git"
                    | "cat"
                    | "less"
                    | "more"
                    | "head"
                    | "tail"
                    | "grep"
                    | "rg"
                    | "strings"
                    | "xxd"
                    | "base64"
                    | "od"
                    | "bat"
                    | "jq"
                    | "source"
                    | "."
            );
            let args: Vec<&shell::Word> =
                cmd.args().iter().filter(|w| !w.unknown && !w.text.starts_with('-')).collect();
            let n = args.len();
            // `cp -t DIR SRC…`, `cp -rt DIR …`, `--target-directory=DIR`:
            // each source lands in DIR.
            if matches!(name, "cp" | "install" | "ln" | "mv")
                && let Some(dir) = target_dir(cmd.args())
            {
                for w in args.iter().filter(|w| w.text != dir) {
                    self.copied_into(dir, &w.text, recursive(cmd));
                }
            }
            for (i, w) in args.iter().enumerate() {
                let copy_like = matches!(name, "cp" | "scp" | "rsync" | "install" | "ln" | "mv");
                let write = if copy_like { i + 1 == n || name == "mv" } else { !reads };
                // `cp ~/.ssh/id_rsa /tmp/x` reads the key.
                let read_too = copy_like && i + 1 < n;
                self.word(w, write);
                if read_too {
                    self.path(&w.text, false);
                    // Into a folder: `cp -r hooks .git` writes `.git/hooks`
                    // (a folder copy, several sources, or `DEST/`).
                    let folder = n > 2 || args[n - 1].text.ends_with('/') || recursive(cmd);
                    if folder {
                        self.copied_into(&args[n - 1].text, &w.text, recursive(cmd));
                    }
                }
            }
            // Options' values: written after an output option (`-o FILE`,
            // `-fprintf FILE`, `--output=FILE`, `-o$HOME/.bashrc`), read
            // after any other (`-i~/.ssh/id_ed25519`).
            let all = cmd.args();
            for (i, w) in all.iter().enumerate().filter(|(_, w)| !w.unknown && w.text.starts_with('-')) {
                // ssh's `-o` is an option, not an output.
                if OUTPUT_OPTIONS.contains(&w.text.as_str())
                    && !matches!(name, "ssh" | "scp" | "sftp")
                    && let Some(next) = all.get(i + 1).filter(|n| !n.unknown)
                {
                    self.word(next, true);
                } else if let Some((opt, v)) = glued_value(&w.text) {
                    self.path(v, OUTPUT_OPTIONS.contains(&opt));
                }
            }
        }
    }
}

/// Folders that hold persistence places (an archive unpacked there may
/// plant one).
const HOLDERS: &[&str] = &[".git", ".ssh", ".config", ".local", ".aws", ".kube", ".docker", ".gnupg", "etc"];

/// The folder of `-t DIR` (also ending a cluster: `-rt DIR`; glued:
/// `-tDIR`) or `--target-directory=DIR`.
fn target_dir(args: &[shell::Word]) -> Option<&str> {
    args.iter().enumerate().find_map(|(i, w)| {
        let t = w.text.as_str();
        if w.unknown {
            None
        } else if let Some(d) = t.strip_prefix("--target-directory=") {
            Some(d)
        } else if t == "--target-directory" || (t.starts_with('-') && !t.starts_with("--") && t.ends_with('t')) {
            args.get(i + 1).filter(|n| !n.unknown).map(|n| n.text.as_str())
        } else {
            t.strip_prefix("-t").filter(|d| !d.is_empty())
        }
    })
}

/// A copy of folders (`-r`, `-R`, `-a`, `--recursive`, `--archive`).
fn recursive(cmd: &shell::Command) -> bool {
    cmd.args().iter().any(|w| {
        matches!(w.text.as_str(), "--recursive" | "--archive")
            || (w.text.starts_with('-') && !w.text.starts_with("--") && w.text.contains(['r', 'R', 'a']))
    })
}

/// Options whose value is a file or folder the command writes.
const OUTPUT_OPTIONS: &[&str] = &[
    "-o",
    "--output",
    "-O",
    "--output-document",
    "-fprint",
    "-fprint0",
    "-fprintf",
    "-fls",
    "--log-file",
    "-t",
    "--target-directory",
    "--target",
    "--out",
    "--out-file",
];

/// An option and the value glued to it (`--output=V`, `-oV`), when the
/// value is spelled like a path.
fn glued_value(opt: &str) -> Option<(&str, &str)> {
    let (o, v) = match opt.split_once('=') {
        Some((o, v)) => (o, v),
        None if !opt.starts_with("--") => (opt.get(..2)?, opt.get(2..)?),
        None => return None,
    };
    (v.contains('/') || v.starts_with(['~', '$', '.'])).then_some((o, v))
}

#[cfg(test)]
mod tests;
