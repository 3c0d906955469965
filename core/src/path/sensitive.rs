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
//! arguments and as the words of shell commands. Pure, bounded.

use serde_json::Value;

use super::{Lexical, PathEnv, normalise};
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
    let mut s = Scan { out: Vec::new(), seen: 0, env: PathEnv::default() };
    s.walk(args, None, write, shell_strings);
    s.out
}

struct Scan {
    out: Vec<(Flag, String)>,
    seen: usize,
    env: PathEnv,
}

impl Scan {
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
                self.path(k, write);
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
        if pathish || s.starts_with(['/', '~']) || (s.contains('/') && !s.contains(char::is_whitespace)) {
            self.path(s, write);
        }
        if sh && s.len() <= shell::MAX_INPUT && s.contains(char::is_whitespace) {
            self.command(s);
        }
    }

    fn path(&mut self, s: &str, write: bool) {
        let Some(lex) = normalise(s, &self.env) else { return };
        let p = match &lex {
            Lexical::Abs(p) | Lexical::Tail(p) => p.as_str(),
        };
        self.note(p, s, write);
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
        let script = shell::parse(s, &Default::default());
        for cmd in &script.commands {
            for r in &cmd.redirects {
                if let Some(t) = r.target.as_ref().filter(|t| !t.unknown) {
                    self.path(&t.text, r.kind != RedirectKind::Read);
                }
            }
            let name = cmd.base_name().unwrap_or("");
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
}
