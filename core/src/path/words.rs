//! What the words of a call name: which strings are paths, which files a
//! shell command writes by its options, and where a call's commands start.
//! Shared by the workspace and the sensitive places.

use serde_json::Value;

use super::{Lexical, PathEnv, normalise};
use crate::shell::{Command, Word};

/// Argument names whose value names where a shell command runs.
const CWD_KEYS: &[&str] = &["cwd", "workdir", "working_dir", "working_directory", "directory", "dir"];

/// The environment shell commands of `args` start in: the call's
/// `cwd`-like argument when it has one.
pub fn shell_start(args: &Value, env: &PathEnv) -> PathEnv {
    let mut e = env.clone();
    let dir = args.as_object().and_then(|o| {
        o.iter().find(|(k, _)| CWD_KEYS.iter().any(|c| k.eq_ignore_ascii_case(c))).and_then(|(_, v)| v.as_str())
    });
    if let Some(d) = dir {
        e.cwd = match normalise(d, env) {
            Some(Lexical::Abs(p)) => Some(p),
            _ => None,
        };
    }
    e
}

/// Argument names whose value is what is written, not where.
const CONTENT_KEYS: &[&str] = &[
    "content",
    "contents",
    "text",
    "body",
    "data",
    "message",
    "description",
    "newtext",
    "oldtext",
    "new_text",
    "old_text",
    "new_string",
    "old_string",
    "pattern",
    "query",
];

/// A string that names a file: under a path-like key, or spelled like one
/// (not under a key that holds the content).
pub fn looks_like_path(s: &str, key: Option<&str>) -> bool {
    if key.is_some_and(|k| CONTENT_KEYS.iter().any(|c| k.eq_ignore_ascii_case(c))) {
        return false;
    }
    let pathish = key.is_some_and(|k| {
        let k = k.to_ascii_lowercase();
        k.contains("path")
            || k.contains("file")
            || k.contains("dir")
            || k.contains("folder")
            || matches!(k.as_str(), "dest" | "destination" | "target" | "to" | "output" | "location" | "uri")
    });
    (pathish && !s.is_empty() && !s.contains('\n'))
        || s.starts_with(['/', '~'])
        || s.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("file://"))
        || (s.contains('/') && !s.contains(char::is_whitespace) && !s.contains("://"))
}

pub enum Written<'c> {
    Words(Vec<&'c Word>),
    Unknown(&'static str),
}

/// The words of a simple command that name files it writes.
pub fn written(cmd: &Command) -> Written<'_> {
    let Some(name) = cmd.base_name() else {
        return Written::Unknown("runs a command whose name is known only when it runs");
    };
    let args = cmd.args();
    let plain: Vec<&Word> = args.iter().filter(|w| w.unknown || !w.text.starts_with('-')).collect();
    let after = |opts: &[&str]| -> Vec<&Word> {
        let mut out = Vec::new();
        for (i, w) in args.iter().enumerate() {
            if opts.contains(&w.text.as_str())
                && let Some(n) = args.get(i + 1)
            {
                out.push(n);
            }
        }
        out
    };
    let words = match name {
        "tee" | "touch" | "mkdir" | "rm" | "rmdir" | "truncate" | "shred" | "unlink" | "mv" | "chmod" | "chown"
        | "chgrp" | "mkfifo" => plain,
        "cp" | "install" | "ln" | "rsync" | "scp" => {
            let mut t = after(&["-t", "--target-directory"]);
            t.extend(args.iter().filter(|w| w.text.starts_with("--target-directory=")));
            if t.is_empty() { plain.last().copied().into_iter().collect() } else { t }
        }
        "dd" => args.iter().filter(|w| w.text.starts_with("of=")).collect(),
        "sed" | "perl" if args.iter().any(|w| w.text.starts_with("-i") || w.text.starts_with("--in-place")) => {
            plain.into_iter().skip(1).collect()
        }
        "curl" => after(&["-o", "--output"]),
        "wget" => after(&["-O", "--output-document"]),
        _ => return Written::Words(Vec::new()),
    };
    if cmd.more_args {
        return Written::Unknown("writes paths given only when it runs");
    }
    Written::Words(words)
}

/// The folders an unpacking command writes files into, of names only the
/// archive knows: `tar -x` and `bsdtar -x` (`-C DIR`, `--directory=DIR`,
/// else the working directory `.`; with `-P` anywhere: `/`), `unzip`
/// (`-d DIR`), `cpio -i`, `7z x` (`-oDIR`), any `git` with
/// `--work-tree=DIR` (a checkout or reset writes the tree there). A folder
/// that holds a protected or persistence place is as good as that place.
pub fn unpacks_into(cmd: &Command) -> Vec<String> {
    let args: Vec<&str> = cmd.args().iter().filter(|w| !w.unknown).map(|w| w.text.as_str()).collect();
    // The last one counts (`-C vendor -C ~`); a long option may be
    // shortened (`--dir`, `--direc=`), a short one ends a cluster (`-od`).
    let value = |short: &str, long: &str| -> Option<String> {
        let long_form = |a: &str| a.starts_with("--") && a.len() >= 5 && long.starts_with(a);
        let short_end = |a: &str| !a.starts_with("--") && a.starts_with('-') && a.ends_with(&short[1..]) && a.len() > 1;
        args.iter().enumerate().rev().find_map(|(i, a)| {
            if *a == short || *a == long || long_form(a) || short_end(a) {
                args.get(i + 1).map(|v| (*v).to_owned())
            } else if let Some((_, v)) = a.split_once('=').filter(|(o, _)| long_form(o) || *o == long) {
                Some(v.to_owned())
            } else {
                a.strip_prefix(short).filter(|v| !v.is_empty() && short.len() == 2).map(str::to_owned)
            }
        })
    };
    let cluster = |c: char| {
        args.iter().enumerate().any(|(i, a)| {
            (a.starts_with('-') && !a.starts_with("--") && a.contains(c))
                || (i == 0 && !a.starts_with('-') && a.contains(c))
        })
    };
    let dest = match cmd.base_name() {
        Some("tar" | "bsdtar") if cluster('x') || args.iter().any(|a| a.starts_with("--ext") || *a == "--get") => {
            if cluster('P') || args.contains(&"--absolute-names") {
                return vec!["/".to_owned()];
            }
            // `--one-top-level=DIR` puts everything under DIR.
            let top = args.iter().find_map(|a| a.strip_prefix("--one-top-level=")).map(str::to_owned);
            let mut dests: Vec<String> = top.into_iter().collect();
            dests.push(value("-C", "--directory").unwrap_or_else(|| ".".to_owned()));
            return dests;
        }
        Some("unzip") => value("-d", "-d"),
        Some("cpio") if cluster('i') || args.contains(&"--extract") => value("-D", "--directory"),
        Some("7z" | "7za" | "7zr") if args.first().is_some_and(|a| matches!(*a, "x" | "e")) => {
            args.iter().find_map(|a| a.strip_prefix("-o").map(str::to_owned))
        }
        Some("git") => return value("--work-tree", "--work-tree").into_iter().collect(),
        _ => return Vec::new(),
    };
    vec![dest.unwrap_or_else(|| ".".to_owned())]
}
