//! Links a script makes for itself: `ln -s ~/.config C && echo x >
//! C/latch/policy.toml` writes through a link that does not exist when the
//! call is decided, so no resolver can follow it, and the name alone looks
//! harmless. [`Script::links_followed`] gives the script again with every
//! later word that goes through such a name spelled through what it
//! stands for (`~/.config/latch/policy.toml`), for the checks to read as
//! well.

use super::script::{Command, Script, Word};

/// A name a command made, and what it stands for (a link's target, read
/// from the link's folder, or from the working directory with `ln -r`; a
/// copy's or a moved object's source). `name` `None`: a name known only
/// when the command runs; `source` `None`: a target known only then.
struct Made {
    name: Option<String>,
    source: Option<String>,
    /// A plain copy: only going through it as a folder reaches the source's
    /// places (a copied file is a file of its own).
    copy: bool,
    /// Made inside a folder (`DEST/BASE`): the folder's name, which must
    /// come just before it.
    parent: Option<String>,
}

/// What [`Script::links_followed`] found.
#[derive(Debug)]
pub enum Followed {
    /// No word goes through a name the script makes.
    Nothing,
    /// The script again, such words spelled through their sources.
    Through(Script),
    /// A word goes through a name whose place is known only when the
    /// script runs (a target or a name from `$(…)` or a variable).
    Unknown(String),
}

impl Script {
    /// This script with each word (a command's name, an argument, a
    /// redirection target) that goes through a name an earlier command
    /// made spelled through its source instead, again until no made name
    /// is left (chains of links), the latest making of a name counting:
    /// a link (`ln`, `link`, `cp -s/-l`), a copy that keeps links as links
    /// (`cp -r/-a/-d/-P`, `rsync -a/-l`) or a move (`mv`). Names are
    /// compared as path components, so a `cd` in between cannot hide them
    /// (a conservative match: a word with the same name counts).
    pub fn links_followed(&self) -> Followed {
        let mut made: Vec<Made> = Vec::new();
        let mut out = self.clone();
        let mut changed = false;
        for (cmd, orig) in out.commands.iter_mut().zip(&self.commands) {
            if !made.is_empty() {
                let targets = cmd.redirects.iter_mut().filter_map(|r| r.target.as_mut());
                for w in cmd.words.iter_mut().chain(targets).filter(|w| !w.unknown) {
                    match through(&w.text, &made) {
                        Ok(Some(t)) => {
                            w.text = t;
                            changed = true;
                        }
                        Ok(None) => {}
                        Err(()) => return Followed::Unknown(w.text.clone()),
                    }
                }
            }
            made.extend(names_made(orig));
        }
        if changed { Followed::Through(out) } else { Followed::Nothing }
    }
}

/// `text` (a path, or `opt=PATH`) spelled through the sources of the made
/// names among its components, again until none is left (at most 16
/// times); `Err` when one of them stands for an unknown place.
fn through(text: &str, made: &[Made]) -> Result<Option<String>, ()> {
    let (head, mut path) = match text.split_once('=') {
        Some((k, p)) => (format!("{k}="), p.to_owned()),
        None => (String::new(), text.to_owned()),
    };
    let mut changed = false;
    // Each making once per word: a chain goes through different ones, and
    // a source that holds its own name would otherwise never end.
    let mut used = vec![false; made.len()];
    for _ in 0..16 {
        let parts: Vec<&str> = path.split('/').collect();
        let last = parts.len() - 1;
        let hit = parts.iter().enumerate().find_map(|(i, c)| {
            let (k, m) = made.iter().enumerate().rev().find(|(k, m)| {
                !used[*k]
                    && m.name.as_deref().is_none_or(|n| n == *c)
                    && !(m.copy && i == last)
                    && m.parent.as_deref().is_none_or(|p| i > 0 && parts[i - 1] == p)
            })?;
            Some((i, k, m))
        });
        let Some((i, k, m)) = hit else { break };
        used[k] = true;
        if m.name.is_none() && !path.contains('/') {
            break;
        }
        let Some(source) = &m.source else { return Err(()) };
        let Some(name) = &m.name else { return Err(()) };
        let rest = parts[i + 1..].join("/");
        let next = if rest.is_empty() { source.clone() } else { format!("{source}/{rest}") };
        if next == path || name.is_empty() {
            break;
        }
        path = next;
        changed = true;
    }
    Ok(changed.then(|| format!("{head}{path}")))
}

/// The names `cmd` makes, each with its source.
fn names_made(cmd: &Command) -> Vec<Made> {
    let args = cmd.args();
    let opt = |short: &str, long: &[&str]| args.iter().any(|w| !w.unknown && links_option(&w.text, short, long));
    let (symbolic, copy) = match cmd.base_name() {
        Some("ln") => (opt("s", &["symbolic"]), false),
        Some("link" | "mv") => (false, false),
        Some("cp") if opt("slLadPrR", COPY_LONG) => {
            let link = opt("sl", &["symbolic-link", "link"]);
            (opt("s", &["symbolic-link"]), !link)
        }
        Some("rsync") if opt("al", COPY_LONG) => (false, true),
        _ => return Vec::new(),
    };
    // `ln -r`: the target as given from the working directory.
    let from_cwd = cmd.base_name() == Some("ln") && opt("r", &["relative"]);
    let mut plain: Vec<&Word> = Vec::new();
    let mut folder: Option<&Word> = None;
    let mut it = args.iter();
    while let Some(w) = it.next() {
        if w.text == "-t" || w.text == "--target-directory" {
            folder = it.next();
        } else if w.text.starts_with("--target-directory=") {
            folder = Some(w);
        } else if w.unknown || !w.text.starts_with('-') {
            plain.push(w);
        }
    }
    let (sources, dest) = match (folder, plain.split_last()) {
        (Some(d), _) => (&plain[..], Some(d)),
        (None, Some((last, rest))) if !rest.is_empty() => (rest, Some(*last)),
        (None, _) => (&plain[..], None),
    };
    let text =
        |w: &Word| (!w.unknown).then(|| w.text.strip_prefix("--target-directory=").unwrap_or(&w.text).to_owned());
    let dest_dir = dest.map(|d| text(d).map(|t| t.trim_end_matches('/').to_owned()));
    let source = |s: &Word, link_dir: Option<&str>| -> Option<String> {
        let s = text(s)?;
        Some(match link_dir {
            Some(d) if symbolic && !from_cwd && !s.starts_with(['/', '~', '$']) && !d.is_empty() => format!("{d}/{s}"),
            _ => s,
        })
    };
    let mut out = Vec::new();
    for s in sources {
        if let Some(d) = &dest_dir
            && sources.len() == 1
            && folder.is_none()
        {
            // One source made at DEST itself.
            match d {
                Some(d) => {
                    let name = d.rsplit('/').next().unwrap_or(d);
                    let parent = d.rsplit_once('/').map(|(p, _)| p);
                    if !matches!(name, "" | "." | "..") {
                        out.push(Made { name: Some(name.to_owned()), source: source(s, parent), copy, parent: None });
                    }
                }
                None => out.push(Made { name: None, source: None, copy, parent: None }),
            }
        }
        // Into a folder: `DEST/BASE`.
        let dir = dest_dir.clone().flatten();
        let parent =
            dir.as_deref().map(|d| d.rsplit('/').next().unwrap_or(d).to_owned()).filter(|p| !p.is_empty() && p != ".");
        match text(s) {
            Some(t) => {
                let base = t.trim_end_matches('/').rsplit('/').next().unwrap_or(&t).to_owned();
                if !matches!(base.as_str(), "" | "." | "..") {
                    out.push(Made { name: Some(base), source: source(s, dir.as_deref()), copy, parent });
                }
            }
            None => out.push(Made { name: None, source: None, copy, parent: None }),
        }
    }
    out
}

const COPY_LONG: &[&str] = &["link", "links", "symbolic-link", "archive", "no-dereference", "recursive"];

/// An option among one-letter `short` ones or the `long` names (or
/// `--preserve…`, which keeps links).
fn links_option(o: &str, short: &str, long: &[&str]) -> bool {
    match o.strip_prefix("--") {
        Some(l) => long.contains(&l) || (long.len() > 1 && l.starts_with("preserve")),
        None => o.strip_prefix('-').is_some_and(|opts| opts.chars().any(|c| short.contains(c))),
    }
}

/// Words of `script` for tests.
#[cfg(test)]
fn words(script: &Script) -> Vec<String> {
    script
        .commands
        .iter()
        .flat_map(|c| c.words.iter().chain(c.redirects.iter().filter_map(|r| r.target.as_ref())))
        .map(|w: &Word| w.text.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::words;
    use crate::shell::parse;

    fn followed(cmd: &str) -> Option<Vec<String>> {
        match parse(cmd, &Default::default()).links_followed() {
            super::Followed::Through(s) => Some(words(&s)),
            super::Followed::Nothing => None,
            super::Followed::Unknown(w) => Some(vec![format!("unknown:{w}")]),
        }
    }

    #[test]
    fn a_word_through_a_name_the_script_made_is_spelled_through_its_source() {
        for (cmd, word) in [
            ("ln -s ~/.config C && echo x > C/latch/policy.toml", "~/.config/latch/policy.toml"),
            ("ln -s ~/.config C; exec 3<>C/latch/policy.toml", "~/.config/latch/policy.toml"),
            ("ln -s .git/hooks/pre-commit y && echo evil > y", ".git/hooks/pre-commit"),
            ("ln -sf / R; cd /tmp; echo x > R/etc/cron.d/x", "//etc/cron.d/x"),
            ("ln ~/.bashrc n2 && echo evil >> n2", "~/.bashrc"),
            ("cp -s ~/.ssh/authorized_keys k && tee -a k < key", "~/.ssh/authorized_keys"),
            ("cp -a repo/tools . && dd of=tools/pre-commit", "of=repo/tools/pre-commit"),
            ("mv .git g && echo evil > g/hooks/pre-commit", ".git/hooks/pre-commit"),
            ("cp -r L C && echo x > C/latch/policy.toml", "L/latch/policy.toml"),
            ("rsync -a tools t2 && echo evil > t2/pre-commit", "tools/pre-commit"),
            ("ln -s ../x/.git/hooks bin/h && echo e > bin/h/pre-push", ".git/hooks/pre-push"),
            ("sh -c 'ln -s ~/.ssh s' && cat s/id_rsa", "~/.ssh/id_rsa"),
            ("mkdir d && ln -sr ../.config d/c && echo x > d/c/latch/policy.toml", "../.config/latch/policy.toml"),
            ("ln -s /var/tmp C; ln -sfn ~/.config C; echo x > C/latch/policy.toml", "~/.config/latch/policy.toml"),
            ("ln -s ~ a; ln -s a/.config b; echo x > b/latch/policy.toml", "~/.config/latch/policy.toml"),
            ("ln -s . a; ln -s .git/hooks h; echo evil > a/h/pre-commit", ".git/hooks/pre-commit"),
            ("ln -s $(printf ~/.con)fig C && echo x > C/latch/policy.toml", "unknown:C/latch/policy.toml"),
            ("ln -s \"$D\" H && echo evil > H/pre-commit", "unknown:H/pre-commit"),
        ] {
            let got = followed(cmd).unwrap_or_else(|| panic!("{cmd}: nothing made"));
            assert!(got.iter().any(|w| w == word || w.ends_with(word)), "{cmd}: {got:?}");
        }
        for cmd in
            ["ln -s ../lib/libfoo.so.1 libfoo.so", "cp src/a.rs src/b.rs && cat src/b.rs", "cargo build && ls target"]
        {
            assert_eq!(followed(cmd), None, "{cmd}");
        }
    }
}
