//! `git` commands that plant a program git runs later.

use crate::shell;

/// `git config` keys that name no program git runs (lower case; `*`
/// stands for one name).
const GIT_SAFE_KEYS: &[&str] = &[
    "user.name",
    "user.email",
    "core.autocrlf",
    "core.filemode",
    "core.ignorecase",
    "core.quotepath",
    "core.eol",
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
    "branch.*.remote",
    "branch.*.merge",
    "remote.*.url",
    "remote.*.pushurl",
    "remote.*.fetch",
];

/// Why a `git` command (its arguments) plants something git runs later:
/// `git config` setting any key but a few plain ones (`core.hooksPath`,
/// `core.fsmonitor`, `credential.helper`, `alias.x = !…`, `include.path`,
/// … name programs or more settings), or `init`/`clone` with a template
/// folder (its hooks are copied in).
pub(super) fn git_persists(args: &[shell::Word]) -> Option<String> {
    let at = args.iter().position(|w| matches!(w.text.as_str(), "config" | "init" | "clone"))?;
    let rest = &args[at + 1..];
    if args[at].text != "config" {
        let template = rest.iter().any(|w| w.text.starts_with("--template"));
        return template.then(|| format!("`git {} --template` copies that folder's hooks in", args[at].text));
    }
    let opts: Vec<&str> = rest.iter().filter(|w| w.text.starts_with('-')).map(|w| w.text.as_str()).collect();
    let plain: Vec<&shell::Word> = rest.iter().filter(|w| !w.text.starts_with('-')).collect();
    let reads = ["--get", "--get-all", "--get-regexp", "--get-urlmatch", "--list", "-l", "--show-origin"];
    if opts.iter().any(|o| reads.contains(o))
        || plain.first().is_some_and(|w| matches!(w.text.as_str(), "get" | "list"))
    {
        return None;
    }
    let edits =
        ["-e", "--edit", "--add", "--replace-all", "--unset", "--unset-all", "--rename-section", "--remove-section"];
    let sub = plain.first().is_some_and(|w| matches!(w.text.as_str(), "set" | "unset" | "edit"));
    if plain.len() < 2 && !sub && !opts.iter().any(|o| edits.contains(o)) {
        return None;
    }
    let key = plain.get(usize::from(sub)).filter(|k| !k.unknown);
    let safe = key.is_some_and(|k| {
        let k = k.text.to_ascii_lowercase();
        let parts: Vec<&str> = k.split('.').collect();
        GIT_SAFE_KEYS.iter().any(|s| {
            let sp: Vec<&str> = s.split('.').collect();
            sp.len() == parts.len() && sp.iter().zip(&parts).all(|(a, b)| *a == "*" || a == b)
        })
    });
    let key = key.map_or("its settings", |k| k.text.as_str());
    (!safe).then(|| format!("`git config` sets {key}, which can name a program git runs"))
}
