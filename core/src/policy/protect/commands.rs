//! Self-protection for parsed shell commands: `latch` run to change
//! itself, the daemon stopped, and every word that names a protected file.

use super::call::{Ctx, Finding, Place};
use super::guard::Guard;
use super::places::{Hit, finding};
use super::set::Kind;
use crate::path::{self, Lexical, PathEnv, collapse};
use crate::shell::{Command, RedirectKind, Script, Word};

/// `latch` subcommands that change Latch's state, answer approvals or
/// remove evidence (`auth`: authorizing a remote server is the person's,
/// in their browser; logging out throws their tokens away; `accept`: a
/// changed or suspect tool definition, `latch tools accept`).
const LATCH_SUBCOMMANDS: &[&str] =
    &["approve", "deny", "policy", "daemon", "install", "uninstall", "tui", "prune", "pin", "auth", "resume", "accept"];

/// Commands that only read the files they are given.
const READERS: &[&str] = &[
    "cat",
    "less",
    "more",
    "head",
    "tail",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "ag",
    "ls",
    "stat",
    "wc",
    "file",
    "diff",
    "cmp",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "jq",
    "yq",
    "bat",
    "view",
    "test",
    "[",
    "du",
    "readlink",
    "realpath",
    "basename",
    "dirname",
    "echo",
    "printf",
    "which",
    "tree",
    "strings",
    "od",
    "xxd",
    "hexdump",
    "nl",
    "sort",
    "uniq",
    "cut",
    "awk",
    "column",
    "zcat",
    "base64",
    "lsof",
    "fuser",
];

/// Commands whose path arguments may remove or move a whole folder.
const REMOVERS: &[&str] =
    &["rm", "rmdir", "mv", "unlink", "shred", "trash", "trash-put", "gio", "srm", "chmod", "chown", "chattr", "rsync"];

/// Commands whose positional arguments are all files.
const FILE_COMMANDS: &[&str] = &[
    "cp", "mv", "ln", "rm", "rmdir", "tee", "sed", "dd", "touch", "truncate", "install", "rsync", "scp", "chmod",
    "chown", "chattr", "unlink", "shred", "cat", "less", "more", "head", "tail", "vi", "vim", "nvim", "nano", "emacs",
    "ed", "ex", "patch", "tar", "zip", "unzip", "gzip", "gunzip", "sqlite3", "source", ".", "mkfifo", "mknod", "perl",
    "python", "python3", "node", "ruby", "bash", "sh", "zsh", "open", "xdg-open", "code", "git", "fuser", "lsof",
];

pub(super) fn check(g: &Guard, script: &Script, ctx: &Ctx<'_>) -> Option<Finding> {
    let found = check_one(g, script, ctx);
    if found.as_ref().is_some_and(|f| f.deny) || !ctx.shell {
        return found;
    }
    // Through the links, copies and moves the script makes for itself
    // (they do not exist yet, so no resolver can follow them).
    let more = match script.links_followed() {
        crate::shell::Followed::Nothing => return found,
        crate::shell::Followed::Through(through) => check_one(g, &through, ctx)
            .map(|f| Finding { why: format!("{} (through a link, copy or move the same command makes)", f.why), ..f }),
        crate::shell::Followed::Unknown(w) => Some(Finding::ask(format!(
            "uses {w:?} through a link the same command makes to a place known only when it runs"
        ))),
    };
    match (found, more) {
        (_, Some(f)) if f.deny => Some(f),
        (Some(f), _) => Some(f),
        (None, more) => more,
    }
}

fn check_one(g: &Guard, script: &Script, ctx: &Ctx<'_>) -> Option<Finding> {
    let mut ask = None;
    if script.truncated {
        ask = Some(Finding::ask("is nested deeper or runs more commands than Latch reads".to_owned()));
    }
    let hunts_latch = script.commands.iter().any(|c| finds_latch(g, c));
    let mut env = ctx.place.env.clone();
    for cmd in &script.commands {
        let f = latch_run(g, cmd, ctx, &env)
            .or_else(|| stops_daemon(g, cmd, hunts_latch))
            .or_else(|| paths(g, cmd, ctx, &env));
        match f {
            Some(f) if f.deny => return Some(f),
            Some(f) => {
                ask.get_or_insert(f);
            }
            None => {}
        }
        if ctx.shell && cmd.name().is_some_and(|w| w.unknown) && ask.is_none() {
            ask = Some(Finding::ask(format!(
                "runs a command whose name is only known when it runs ({:?})",
                cmd.name().map(|w| w.known_tail()).unwrap_or_default()
            )));
        }
        path::follow_cd(cmd, &mut env);
    }
    ask
}

fn lexical(w: &Word, env: &PathEnv) -> Option<Lexical> {
    if w.unknown {
        let tail = w.known_tail();
        if !tail.contains('/') {
            return None;
        }
        let t = collapse(tail, false);
        return (!t.is_empty()).then_some(Lexical::Tail(t));
    }
    path::normalise(&w.text, env)
}

fn is_latch_word(g: &Guard, w: &Word, env: &PathEnv, ctx: &Ctx<'_>) -> bool {
    if w.unknown {
        return false;
    }
    let base = path::base_name(&w.text);
    let base = base.strip_suffix(".exe").or_else(|| base.strip_suffix(".EXE")).unwrap_or(base);
    if base.eq_ignore_ascii_case("latch") {
        return true;
    }
    w.text.contains('/') && path::normalise(&w.text, env).is_some_and(|l| g.places.is_binary(&l, ctx))
}

/// `latch` run with a subcommand that changes it.
fn latch_run(g: &Guard, cmd: &Command, ctx: &Ctx<'_>, env: &PathEnv) -> Option<Finding> {
    let name = cmd.name()?;
    let sub =
        cmd.args().iter().find(|w| !w.unknown && LATCH_SUBCOMMANDS.iter().any(|s| w.text.eq_ignore_ascii_case(s)));
    if name.unknown {
        // `$(…) approve 3`: a name only known at run time with Latch's words.
        return sub.map(|s| {
            Finding::deny(format!(
                "runs a command whose name is only known at run time with the word {:?}, as Latch's own command \
                 would be run to change Latch; only a person decides that, in Latch",
                s.text
            ))
        });
    }
    if !is_latch_word(g, name, env, ctx) {
        // `echo run latch approve 3`, a message body, a script's text: the
        // words `latch approve` anywhere (as before parsing, conservative).
        let args = cmd.args();
        return args.iter().enumerate().find_map(|(i, w)| {
            if !is_latch_word(g, w, env, ctx) {
                return None;
            }
            let sub = args[i + 1..args.len().min(i + 5)]
                .iter()
                .find(|n| !n.unknown && LATCH_SUBCOMMANDS.iter().any(|s| n.text.eq_ignore_ascii_case(s)))?;
            Some(Finding::deny(format!(
                "mentions Latch's own command with {:?}: changing Latch or answering approvals is for a person, in \
                 Latch",
                sub.text.to_ascii_lowercase()
            )))
        });
    }
    if let Some(s) = sub {
        return Some(Finding::deny(format!(
            "runs Latch's own command ({:?}) with {:?}: changing Latch or answering approvals is for a person, in \
             Latch",
            name.text,
            s.text.to_ascii_lowercase()
        )));
    }
    (cmd.more_args || cmd.args().iter().any(|w| w.unknown))
        .then(|| Finding::ask("runs Latch's own command with arguments only known at run time".to_owned()))
}

/// A pattern (pkill, pgrep) that would match Latch's processes.
fn matches_latch(g: &Guard, pat: &str, regex: bool) -> bool {
    let mut targets: Vec<String> = vec!["latch".into(), "latch daemon".into()];
    targets.extend(g.places.binary().iter().map(|b| format!("{b} daemon")));
    if !regex {
        return targets.iter().any(|t| t.eq_ignore_ascii_case(pat) || path::base_name(t).eq_ignore_ascii_case(pat));
    }
    match regex::RegexBuilder::new(pat).case_insensitive(true).size_limit(1 << 16).build() {
        Ok(re) => targets.iter().any(|t| re.is_match(t)),
        Err(_) => pat.to_ascii_lowercase().contains("latch") || "latch".contains(&pat.to_ascii_lowercase()),
    }
}

/// Positional arguments after options (some options take a value).
fn positional<'c>(cmd: &'c Command, with_arg: &[&str]) -> (Vec<&'c Word>, Vec<&'c str>) {
    let mut out = Vec::new();
    let mut opts = Vec::new();
    let mut it = cmd.args().iter();
    let mut only_pos = false;
    while let Some(w) = it.next() {
        if !only_pos && w.text == "--" {
            only_pos = true;
        } else if !only_pos && w.text.starts_with('-') && w.text.len() > 1 && !w.unknown {
            opts.push(w.text.as_str());
            if with_arg.contains(&w.text.as_str()) {
                it.next();
            }
        } else {
            out.push(w);
        }
    }
    (out, opts)
}

/// pgrep, pidof, ps | grep: something looks for Latch's processes.
fn finds_latch(g: &Guard, cmd: &Command) -> bool {
    match cmd.base_name() {
        Some("pgrep" | "pidof" | "pkill") => {
            let (pats, _) = positional(cmd, &["-u", "-U", "-g", "-G", "-P", "-t", "-s", "-F", "--signal"]);
            pats.iter().any(|w| w.unknown || matches_latch(g, &w.text, true))
        }
        Some("grep" | "egrep" | "rg" | "awk") => {
            cmd.args().iter().any(|w| w.text.to_ascii_lowercase().contains("latch"))
        }
        _ => false,
    }
}

/// Commands that stop or kill the daemon.
fn stops_daemon(g: &Guard, cmd: &Command, hunts_latch: bool) -> Option<Finding> {
    let name = cmd.base_name()?;
    match name {
        "kill" => {
            let mut signal_seen = false;
            let mut targets = Vec::new();
            let mut only_pos = false;
            let mut it = cmd.args().iter();
            while let Some(w) = it.next() {
                let t = w.text.as_str();
                if !only_pos && t == "--" {
                    only_pos = true;
                } else if !only_pos && matches!(t, "-l" | "-L" | "--list" | "--table") {
                    return None;
                } else if !only_pos && matches!(t, "-s" | "-n" | "--signal") {
                    it.next();
                    signal_seen = true;
                } else if !only_pos && !signal_seen && t.starts_with('-') && !w.unknown {
                    signal_seen = true;
                } else {
                    targets.push(w);
                }
            }
            if targets.iter().any(|w| !w.unknown && w.text == "-1") {
                return Some(Finding::deny(
                    "runs `kill -1`, which signals every process of the user, Latch's daemon included".into(),
                ));
            }
            if let Some(w) =
                targets.iter().find(|w| !w.unknown && w.text.parse::<u32>().is_ok_and(|p| g.pids.contains(&p)))
            {
                return Some(Finding::deny(format!("kills process {}, Latch's daemon", w.text)));
            }
            if cmd.more_args || targets.iter().any(|w| w.unknown) {
                if hunts_latch {
                    return Some(Finding::deny("kills processes it looks up by Latch's name".into()));
                }
                return Some(Finding::ask(
                    "kills a process only known at run time (it could be Latch's daemon)".into(),
                ));
            }
            None
        }
        "pkill" | "killall" | "skill" | "slay" => {
            let (pats, opts) =
                positional(cmd, &["-u", "-U", "-g", "-G", "-P", "-t", "-s", "-F", "-o", "-y", "--signal", "-n"]);
            let regex = name == "pkill" || opts.iter().any(|o| *o == "-r" || *o == "--regexp");
            if pats.is_empty() && opts.iter().any(|o| matches!(*o, "-u" | "-U" | "--user")) {
                return Some(Finding::deny(format!(
                    "runs `{name}` on every process of a user, Latch's daemon included"
                )));
            }
            if let Some(p) = pats.iter().find(|w| !w.unknown && matches_latch(g, &w.text, regex)) {
                return Some(Finding::deny(format!("stops Latch with `{name} {}`", p.text)));
            }
            (cmd.more_args || pats.iter().any(|w| w.unknown))
                .then(|| Finding::ask(format!("runs `{name}` on a name only known at run time")))
        }
        "killall5" => Some(Finding::deny("runs `killall5`, which signals every process".into())),
        "systemctl" | "launchctl" => {
            let verbs = [
                "stop",
                "kill",
                "disable",
                "mask",
                "restart",
                "try-restart",
                "reload-or-restart",
                "unload",
                "bootout",
                "remove",
                "isolate",
            ];
            let verb = cmd.args().iter().find(|w| verbs.contains(&w.text.as_str()))?;
            cmd.args()
                .iter()
                .find(|w| w.unknown || w.text.to_ascii_lowercase().contains("latch"))
                .map(|u| Finding::deny(format!("stops Latch's service with `{name} {} {}`", verb.text, u.text)))
        }
        _ => None,
    }
}

/// How a command uses its `i`-th positional argument (of `n`).
fn writes_arg(name: &str, i: usize, n: usize, opts: &[&str]) -> bool {
    match name {
        "cp" | "install" | "rsync" | "scp" | "ln" => {
            if opts.iter().any(|o| *o == "-t" || o.starts_with("--target-directory")) { true } else { i + 1 == n }
        }
        "sed" => opts.iter().any(|o| o.starts_with("-i") || o.starts_with("--in-place")),
        "git" | "fuser" | "lsof" => false,
        n if READERS.contains(&n) => false,
        _ => true,
    }
}

/// Every word that names a file.
fn paths(g: &Guard, cmd: &Command, ctx: &Ctx<'_>, env: &PathEnv) -> Option<Finding> {
    // Outside a shell context (a message body, a file's content) only
    // Latch's own files count; there, client configs are just words.
    let shell = ctx.shell;
    let name = cmd.base_name().unwrap_or("");
    let file_cmd = FILE_COMMANDS.contains(&name);
    let removes = REMOVERS.contains(&name) || (name == "find" && cmd.args().iter().any(|w| w.text == "-delete"));
    let sub_ctx = Ctx { place: Place { env, ..ctx.place }, ..*ctx };
    let check = |w: &Word, write: bool, ancestors: bool| -> Option<Finding> {
        let lex = lexical(w, env)?;
        let write = write && shell;
        let hit: Option<Hit> = if w.glob {
            g.places.check_glob(&lex, write, ancestors).or_else(|| g.places.check(&lex, &sub_ctx, write, false))
        } else {
            g.places.check(&lex, &sub_ctx, write, ancestors)
        };
        let hit = hit
            .or_else(|| if w.unknown { None } else { g.places.check_kernel_form(&w.text, &sub_ctx, write, ancestors) });
        hit.filter(|h| shell || h.kind != Kind::Config).map(|h| finding(&h, &w.text, write))
    };
    for r in &cmd.redirects {
        if let Some(t) = &r.target {
            let write = r.kind != RedirectKind::Read;
            if let Some(f) = check(t, write, false) {
                return Some(f);
            }
        }
    }
    // The command's own path: running a file is reading it (the binary is
    // recognised by `latch_run` instead).
    if let Some(w) = cmd.name()
        && (w.text.contains('/') || w.unknown)
        && !is_latch_word(g, w, env, ctx)
        && let Some(f) = check(w, false, false)
    {
        return Some(f);
    }
    // An archive unpacked into a folder that holds Latch's files may
    // replace them: a person decides (`tar -C ~/.local` is also an install).
    for dest in path::words::unpacks_into(cmd) {
        let w = Word { text: dest, ..Word::default() };
        if let Some(f) = check(&w, true, true) {
            return Some(Finding::ask(format!("unpacks an archive over {}", f.why.trim_start_matches("writes "))));
        }
    }
    let (pos, opts) = positional(cmd, &[]);
    let n = pos.len();
    for (i, w) in pos.iter().enumerate() {
        let looks = file_cmd
            || w.text.contains('/')
            || w.text.starts_with(['~', '.'])
            || (w.unknown && w.known_tail().contains('/'));
        let write = writes_arg(name, i, n, &opts);
        if looks && let Some(f) = check(w, write, removes) {
            return Some(f);
        }
        // `dd of=FILE`, `--output=FILE`, `key=FILE`.
        if let Some((k, v)) = w.text.split_once('=')
            && !k.is_empty()
            && (v.contains('/') || v.starts_with(['~', '.']) || name == "dd")
        {
            let vw = Word { text: v.to_owned(), ..(*w).clone() };
            if let Some(f) = check(&vw, write || k == "of", removes) {
                return Some(f);
            }
        }
    }
    for o in &opts {
        if let Some((_, v)) = o.split_once('=')
            && (v.contains('/') || v.starts_with(['~', '.']))
        {
            let vw = Word { text: v.to_owned(), ..Word::default() };
            if let Some(f) = check(&vw, !READERS.contains(&name), removes) {
                return Some(f);
            }
        }
    }
    None
}
