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

use std::borrow::Cow;

use serde_json::Value;

use super::{Lexical, PathEnv, Resolver, UNFOLLOWED, collapse, kernel_form, names_the_opener, normalise};
use crate::class::Flag;
use crate::shell::{self, RedirectKind};

/// Strings looked at in one call's arguments.
const MAX_STRINGS: usize = 4096;

const SHELL_RC: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".zlogout",
    ".cshrc",
    ".tcshrc",
    ".kshrc",
    ".mkshrc",
    ".inputrc",
    ".xprofile",
    ".xinitrc",
    ".xsessionrc",
];
const CRED_FILES: &[&str] = &[".netrc", ".npmrc", ".pypirc", ".git-credentials", ".pgpass", ".my.cnf", "_netrc"];
const CRED_DIRS: &[&str] = &[".aws", ".kube", ".docker", ".gnupg", ".azure"];
const KEY_EXT: &[&str] = &[".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk"];

/// `git config` keys that name a program git runs.
const RUNS_PROGRAMS: &[&str] = &["core.hooksPath", "core.fsmonitor", "core.sshCommand", "core.editor", "core.pager"];

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
    if seq(&c, ".git", "hooks") || base == ".pre-commit-config.yaml" {
        return Some("a git hook");
    }
    if seq(&c, ".git", "config") || base == ".git" {
        return Some("git's own folder (its config names programs git runs)");
    }
    let abs = path.starts_with('/');
    if (abs && (path.starts_with("/etc/cron") || path.starts_with("/var/spool/cron"))) || base == "crontab" {
        return Some("a cron table");
    }
    if seq(&c, ".config", "systemd") || seq(&c, ".config", "autostart") || seq(&c, "Library", "LaunchAgents") {
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

    /// A shell command: redirects and the writing commands' arguments are
    /// writes, the reading commands' arguments are reads.
    fn command(&mut self, s: &str) {
        let vars = if self.follow.is_some() { self.env.vars_with_home() } else { Default::default() };
        let script = shell::parse(s, &vars);
        let cwd = self.env.cwd.clone();
        self.words(&script);
        if self.env.cwd != cwd {
            self.env.to_mut().cwd = cwd;
        }
    }

    fn words(&mut self, script: &shell::Script) {
        for cmd in &script.commands {
            for r in &cmd.redirects {
                if let Some(t) = r.target.as_ref().filter(|t| !t.unknown) {
                    self.path(&t.text, r.kind != RedirectKind::Read);
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
            if name == "git" && cmd.args().iter().any(|w| RUNS_PROGRAMS.iter().any(|k| w.text.eq_ignore_ascii_case(k)))
            {
                if !self.has(Flag::Persistence) {
                    let why = "`git config` names a program git will run (hooks path, fsmonitor, ssh command)";
                    self.out.push((Flag::Persistence, why.into()));
                }
                continue;
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
            let reads = matches!(
                name,
                "cat"
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
            for (i, w) in args.iter().enumerate() {
                let copy_like = matches!(name, "cp" | "scp" | "rsync" | "install" | "ln" | "mv");
                let write = if copy_like { i + 1 == n || name == "mv" } else { !reads };
                // `cp ~/.ssh/id_rsa /tmp/x` reads the key.
                let read_too = copy_like && i + 1 < n;
                self.path(&w.text, write);
                if read_too {
                    self.path(&w.text, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags(args: Value, write: bool, sh: bool) -> Vec<Flag> {
        scan(&args, write, sh).into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn persistence_places() {
        for p in [
            "~/.ssh/authorized_keys",
            "/home/u/.bashrc",
            "~/.zshrc",
            "/home/u/.config/fish/config.fish",
            "~/.aws/credentials",
            "~/.config/gcloud/credentials.db",
            "/home/u/.kube/config",
            "~/.docker/config.json",
            "/srv/app/.git/hooks/pre-commit",
            "~/.npmrc",
            "/etc/cron.d/x",
            "~/.config/systemd/user/evil.service",
            "/etc/hosts",
            "/home/u/x/../.profile",
        ] {
            assert_eq!(flags(json!({ "path": p }), true, false), [Flag::Persistence], "{p}");
        }
        assert!(flags(json!({"path": "/srv/app/src/main.rs"}), true, false).is_empty());
        assert!(flags(json!({"path": "/srv/app/.github/workflows/ci.yml"}), true, false).is_empty());
    }

    #[test]
    fn secret_reads() {
        for p in [
            "~/.ssh/id_ed25519",
            "~/.aws/credentials",
            "/srv/app/.env",
            ".env.production",
            "certs/server.key",
            "~/.netrc",
        ] {
            assert_eq!(flags(json!({ "path": p }), false, false), [Flag::SecretRead], "{p}");
        }
        for p in ["~/.ssh/id_ed25519.pub", ".env.example", "/srv/app/README.md", "keys.md"] {
            assert!(flags(json!({ "path": p }), false, false).is_empty(), "{p}");
        }
    }

    #[test]
    fn shell_commands() {
        let sh = |c: &str| flags(json!({ "command": c }), true, true);
        assert_eq!(sh("echo 'ssh-ed25519 AAAA' >> ~/.ssh/authorized_keys"), [Flag::Persistence]);
        assert_eq!(sh("echo 'curl x | sh' >> ~/.bashrc"), [Flag::Persistence]);
        assert_eq!(sh("cp /tmp/hook .git/hooks/pre-commit"), [Flag::Persistence]);
        assert_eq!(sh("echo '* * * * * x' | crontab -"), [Flag::Persistence]);
        assert_eq!(sh("cat ~/.aws/credentials"), [Flag::SecretRead]);
        assert_eq!(sh("cp ~/.ssh/id_rsa /tmp/k"), [Flag::SecretRead]);
        assert!(sh("ls -la && cargo test").is_empty());
    }

    /// A file system where `/p/tools` links to `/p/.git/hooks`, `/p/notes`
    /// to `~/.ssh/authorized_keys`, `/p/key.txt` to a private key and
    /// `/p/deep` through a chain too long to follow.
    struct Links;

    impl Resolver for Links {
        fn resolve(&self, abs: &str) -> Option<crate::path::Resolved> {
            let real = if let Some(rest) = abs.strip_prefix("/p/tools") {
                format!("/p/.git/hooks{rest}")
            } else if abs == "/p/notes" {
                "/home/u/.ssh/authorized_keys".into()
            } else if abs == "/p/key.txt" {
                "/home/u/.ssh/id_ed25519".into()
            } else if abs.starts_with("/p/deep") || abs.starts_with("/proc/self") || abs.starts_with("/dev/std") {
                return None;
            } else {
                abs.to_owned()
            };
            Some(crate::path::Resolved { real, file: None })
        }
    }

    fn followed(args: Value, write: bool, sh: bool) -> Vec<(Flag, String)> {
        let env = PathEnv { home: Some("/home/u".into()), cwd: Some("/p".into()), ..PathEnv::default() };
        scan_followed(&args, write, sh, &env, &Links)
    }

    /// A name that says nothing, a link that leads to a persistence place
    /// or a secret: the place it leads to counts (before, only its name).
    #[test]
    fn paths_count_where_they_lead() {
        for args in [
            json!({"path": "/p/tools/pre-commit"}),
            json!({"path": "tools/pre-commit"}),
            json!({"path": "/p/notes"}),
            json!({"files": {"tools/post-checkout": "x"}}),
        ] {
            let got = followed(args.clone(), true, false);
            assert!(
                matches!(got.as_slice(), [(Flag::Persistence, why)] if why.contains("through a symlink to")),
                "{args}: {got:?}"
            );
            assert!(flags(args.clone(), true, false).is_empty(), "the name alone says nothing: {args}");
        }
        for cmd in ["echo x > tools/pre-commit", "cd /p && cp evil tools/pre-commit", "cd /srv; cd /p; tee notes < k"] {
            let got = followed(json!({ "command": cmd }), true, true);
            assert!(matches!(got.as_slice(), [(Flag::Persistence, _)]), "{cmd}: {got:?}");
        }
        let got = followed(json!({"path": "/p/key.txt"}), false, false);
        assert!(matches!(got.as_slice(), [(Flag::SecretRead, why)] if why.contains("private key")), "{got:?}");
        // Where Latch cannot follow a written path, it may be anywhere.
        let got = followed(json!({"path": "/p/deep/x"}), true, false);
        assert!(matches!(got.as_slice(), [(Flag::Persistence, why)] if why.contains("cannot follow")), "{got:?}");
        assert!(followed(json!({"path": "/p/deep/x"}), false, false).is_empty(), "a read is not a write");
        // Plain places and the opener's own streams add nothing.
        for args in [
            json!({"path": "/p/src/main.rs"}),
            json!({"path": "/dev/stdout"}),
            json!({"command": "cargo test 2>&1 | tee /dev/stderr"}),
            json!({"command": "cd /srv && echo x > tools/pre-commit"}),
        ] {
            assert!(followed(args.clone(), true, true).is_empty(), "{args}");
        }
        // Bounded: past the budget a write counts as a persistence place.
        let many: Vec<String> = (0..=MAX_FOLLOWED).map(|i| format!("/p/src/f{i}")).collect();
        let got = followed(json!({ "paths": many }), true, false);
        assert!(matches!(got.as_slice(), [(Flag::Persistence, why)] if why.contains("more than")), "{got:?}");
    }

    /// What the server's place adds to a name: a `cd` (any form), the
    /// call's own folder argument, the server's roots, the write options
    /// of `cp`/`dd`, `git config` naming a program, edit lists' keys that
    /// are not paths.
    #[test]
    fn a_place_is_read_as_the_command_and_the_call_give_it() {
        for cmd in [
            "cd .git && echo evil > hooks/pre-commit",
            "cd .git; echo evil > hooks/pre-commit",
            "pushd .git && echo evil > hooks/pre-commit",
            "(cd .git && echo evil > hooks/pre-commit)",
            "sh -c 'cd .git && echo evil > hooks/pre-commit'",
            "cd -P .git && echo evil > hooks/pre-commit",
            "cd -- .git && echo evil > hooks/pre-commit",
            "cp -t .git/hooks pre-commit",
            "cp --target-directory=.git/hooks pre-commit",
            "printf x | dd of=tools/pre-commit",
            "cp -r hooks .git",
            "git config core.hooksPath tools",
        ] {
            let got = followed(json!({ "command": cmd }), true, true);
            assert!(got.iter().any(|(f, _)| *f == Flag::Persistence), "{cmd}: {got:?}");
        }
        // The lexical scan alone reads the write options too.
        assert_eq!(flags(json!({"command": "dd if=x of=.git/hooks/pre-commit"}), true, true), [Flag::Persistence]);
        for args in [
            json!({"command": "echo evil > hooks/pre-commit", "cwd": "/p/.git"}),
            json!({"directory": "/p/.git", "filename": "hooks/pre-commit"}),
            json!({"output": "tools/pc"}),
            json!({"to": "tools/pc"}),
        ] {
            let got = followed(args.clone(), true, true);
            assert!(got.iter().any(|(f, _)| *f == Flag::Persistence), "{args}: {got:?}");
        }
        // A relative path is read against each of the server's roots.
        let env = PathEnv { cwd: Some("/p/sub".into()), roots: vec!["/p".into()], ..PathEnv::default() };
        let got = scan_followed(&json!({"path": "tools/pc"}), true, false, &env, &Links);
        assert!(matches!(got.as_slice(), [(Flag::Persistence, _)]), "{got:?}");
        // Forty edits: their keys are not paths, nothing to follow.
        let edits: Vec<Value> = (0..40).map(|i| json!({"oldText": format!("a{i}"), "newText": "b"})).collect();
        assert!(followed(json!({"path": "/p/src/x.rs", "edits": edits}), true, false).is_empty());
        assert!(followed(json!({"command": "cd /srv && ls && cat README"}), true, true).is_empty());
    }
}
