//! `git` commands that plant a program git runs later.

use crate::shell;

/// `git config` keys that name no program git runs (lower case; `*`
/// stands for one name).
const GIT_SAFE_KEYS: &[&str] = &[
    "user.name",
    "user.email",
    "user.signingkey",
    "core.autocrlf",
    "core.filemode",
    "core.ignorecase",
    "core.quotepath",
    "core.eol",
    "core.longpaths",
    "core.bare",
    "core.excludesfile",
    "init.defaultbranch",
    "pull.rebase",
    "pull.ff",
    "push.default",
    "push.autosetupremote",
    "fetch.prune",
    "merge.ff",
    "color.ui",
    "rebase.autosquash",
    "rerere.enabled",
    "commit.gpgsign",
    "tag.gpgsign",
    "gpg.format",
    "http.postbuffer",
    "http.sslverify",
    "http.proxy",
    "https.proxy",
    "safe.directory",
    "lfs.locksverify",
    "advice.*",
    "diff.colormoved",
    "diff.algorithm",
    "branch.*.remote",
    "branch.*.merge",
    "remote.*.url",
    "remote.*.pushurl",
    "remote.*.fetch",
    "submodule.*.url",
    "submodule.*.branch",
    "submodule.*.path",
];

/// Global options of `git` that take a value (`git -C DIR config …`).
const GLOBAL_VALUED: &[&str] = &["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env"];

/// `git config` options that take a value, which is not the key.
const CONFIG_VALUED: &[&str] =
    &["-f", "--file", "--blob", "--type", "--comment", "--default", "--value", "--fixed-value"];

/// Why a `git` command (its arguments) plants something git runs later:
/// `git config` setting any key but a few plain ones (`core.hooksPath`,
/// `core.fsmonitor`, `credential.helper`, `alias.x = !…`, `include.path`,
/// … name programs or more settings), or `init`/`clone` with a template
/// folder (its hooks are copied in). The second item: a settings file
/// `git config --file FILE` writes.
pub(super) fn git_persists(args: &[shell::Word]) -> (Option<String>, Option<String>) {
    let mut i = 0;
    while let Some(w) = args.get(i) {
        if GLOBAL_VALUED.contains(&w.text.as_str()) {
            i += 2;
        } else if w.text.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    let Some(sub) = args.get(i).filter(|w| !w.unknown) else { return (None, None) };
    let rest = &args[i + 1..];
    match sub.text.as_str() {
        "init" | "clone" => {
            let template = rest.iter().any(|w| w.text.starts_with("--template") || w.text.starts_with("--config"));
            let why = format!("`git {}` with a template or settings copies hooks or programs in", sub.text);
            (template.then_some(why), None)
        }
        "config" => config(rest),
        _ => (None, None),
    }
}

fn config(rest: &[shell::Word]) -> (Option<String>, Option<String>) {
    let mut opts: Vec<&str> = Vec::new();
    let mut plain: Vec<&shell::Word> = Vec::new();
    let mut file = None;
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        let t = w.text.as_str();
        if CONFIG_VALUED.contains(&t) {
            let v = it.next();
            if matches!(t, "-f" | "--file") {
                file = v.filter(|v| !v.unknown).map(|v| v.text.clone());
            }
        } else if let Some(v) = t.strip_prefix("--file=") {
            file = Some(v.to_owned());
        } else if t.starts_with('-') {
            opts.push(t);
        } else {
            plain.push(w);
        }
    }
    let reads = ["--get", "--get-all", "--get-regexp", "--get-urlmatch", "--list", "-l", "--show-origin"];
    if opts.iter().any(|o| reads.contains(o))
        || plain.first().is_some_and(|w| matches!(w.text.as_str(), "get" | "list"))
    {
        return (None, None);
    }
    let edits =
        ["-e", "--edit", "--add", "--replace-all", "--unset", "--unset-all", "--rename-section", "--remove-section"];
    let sub = plain.first().is_some_and(|w| matches!(w.text.as_str(), "set" | "unset" | "edit"));
    if plain.len() < 2 && !sub && !opts.iter().any(|o| edits.contains(o)) {
        return (None, None);
    }
    let key = plain.get(usize::from(sub)).filter(|k| !k.unknown);
    let value = plain.get(usize::from(sub) + 1);
    let safe = key.is_some_and(|k| {
        let k = k.text.to_ascii_lowercase();
        let parts: Vec<&str> = k.split('.').collect();
        // An alias that is a git command (no `!`) runs no program.
        let plain_alias =
            parts.first() == Some(&"alias") && value.is_some_and(|v| !v.unknown && !v.text.starts_with('!'));
        plain_alias
            || GIT_SAFE_KEYS.iter().any(|s| {
                let sp: Vec<&str> = s.split('.').collect();
                sp.len() == parts.len() && sp.iter().zip(&parts).all(|(a, b)| *a == "*" || a == b)
            })
    });
    let key = key.map_or("its settings", |k| k.text.as_str());
    ((!safe).then(|| format!("`git config` sets {key}, which can name a program git runs")), file)
}
