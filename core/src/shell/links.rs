//! Links a script makes for itself: `ln -s ~/.config C && echo x >
//! C/latch/policy.toml` writes through a link that does not exist when the
//! call is decided, so no resolver can follow it, and the name alone looks
//! harmless. [`Script::links_followed`] gives the script again with every
//! later word that goes through such a name spelled through what it
//! stands for (`~/.config/latch/policy.toml`), for the checks to read as
//! well.

use super::{Command, Script};

/// A name a command made, and what it stands for (a link's target, read
/// from the link's folder; a copy's or a moved object's source).
struct Made {
    name: String,
    source: String,
}

impl Script {
    /// This script with each word (a command's name, an argument, a
    /// redirection target) that goes through a name an earlier command
    /// made spelled through its source instead: a link (`ln`, `link`,
    /// `cp -s/-l`), a copy that keeps links as links (`cp -r/-a/-d/-P`,
    /// `rsync -a/-l`) or a move (`mv`). `None` when no word does. Names
    /// are compared as path components, so a `cd` in between cannot hide
    /// them (a conservative match: a word with the same name counts).
    pub fn links_followed(&self) -> Option<Script> {
        let mut made: Vec<Made> = Vec::new();
        let mut out = self.clone();
        let mut changed = false;
        for (cmd, orig) in out.commands.iter_mut().zip(&self.commands) {
            if !made.is_empty() {
                let targets = cmd.redirects.iter_mut().filter_map(|r| r.target.as_mut());
                for w in cmd.words.iter_mut().chain(targets).filter(|w| !w.unknown) {
                    if let Some(t) = through(&w.text, &made) {
                        w.text = t;
                        changed = true;
                    }
                }
            }
            made.extend(names_made(orig));
        }
        changed.then_some(out)
    }
}

/// `text` (a path, or `opt=PATH`) spelled through the source of the first
/// made name among its components.
fn through(text: &str, made: &[Made]) -> Option<String> {
    let (head, path) = match text.split_once('=') {
        Some((k, p)) => (format!("{k}="), p),
        None => (String::new(), text),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let (i, m) = parts.iter().enumerate().find_map(|(i, c)| made.iter().find(|m| m.name == *c).map(|m| (i, m)))?;
    let rest = parts[i + 1..].join("/");
    Some(if rest.is_empty() { format!("{head}{}", m.source) } else { format!("{head}{}/{rest}", m.source) })
}

/// The names `cmd` makes, each with its source.
fn names_made(cmd: &Command) -> Vec<Made> {
    let args = cmd.args();
    let symbolic = match cmd.base_name() {
        Some("ln") => args.iter().any(|w| !w.unknown && links_option(&w.text, "s", &["symbolic"])),
        Some("link" | "mv") => false,
        Some("cp") if args.iter().any(|w| !w.unknown && links_option(&w.text, "slLadPrR", COPY_LONG)) => {
            args.iter().any(|w| !w.unknown && links_option(&w.text, "s", &["symbolic-link"]))
        }
        Some("rsync") if args.iter().any(|w| !w.unknown && links_option(&w.text, "al", COPY_LONG)) => false,
        _ => return Vec::new(),
    };
    let mut plain: Vec<&str> = Vec::new();
    let mut folder: Option<&str> = None;
    let mut it = args.iter().filter(|w| !w.unknown);
    while let Some(w) = it.next() {
        if w.text == "-t" || w.text == "--target-directory" {
            folder = it.next().map(|w| w.text.as_str());
        } else if let Some(d) = w.text.strip_prefix("--target-directory=") {
            folder = Some(d);
        } else if !w.text.starts_with('-') {
            plain.push(&w.text);
        }
    }
    let (sources, dest): (&[&str], Option<&str>) = match (folder, plain.split_last()) {
        (Some(d), _) => (&plain, Some(d)),
        (None, Some((last, rest))) if !rest.is_empty() => (rest, Some(last)),
        (None, _) => (&plain, None),
    };
    let dest_dir = dest.map(|d| d.trim_end_matches('/'));
    // A symbolic link's relative target is read from the link's folder.
    let source = |s: &str, link_dir: Option<&str>| match link_dir {
        Some(d) if symbolic && !s.starts_with(['/', '~', '$']) && !d.is_empty() => format!("{d}/{s}"),
        _ => s.to_owned(),
    };
    let mut out = Vec::new();
    for s in sources {
        // One source made at DEST itself.
        if let Some(d) = dest_dir
            && sources.len() == 1
            && folder.is_none()
        {
            let name = d.rsplit('/').next().unwrap_or(d);
            let parent = d.rsplit_once('/').map(|(p, _)| p);
            if !matches!(name, "" | "." | "..") {
                out.push(Made { name: name.to_owned(), source: source(s, parent) });
            }
        }
        // Into a folder: `DEST/BASE`.
        let base = s.trim_end_matches('/').rsplit('/').next().unwrap_or(s);
        if !matches!(base, "" | "." | "..") {
            out.push(Made { name: base.to_owned(), source: source(s, dest_dir) });
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
        .map(|w: &super::Word| w.text.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::words;
    use crate::shell::parse;

    fn followed(cmd: &str) -> Option<Vec<String>> {
        parse(cmd, &Default::default()).links_followed().map(|s| words(&s))
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
            ("ln -s ../x/.git/hooks bin/h && echo e > bin/h/pre-push", "bin/../x/.git/hooks/pre-push"),
            ("sh -c 'ln -s ~/.ssh s' && cat s/id_rsa", "~/.ssh/id_rsa"),
        ] {
            let got = followed(cmd).unwrap_or_else(|| panic!("{cmd}: nothing made"));
            assert!(got.iter().any(|w| w == word), "{cmd}: {got:?}");
        }
        for cmd in
            ["ln -s ../lib/libfoo.so.1 libfoo.so", "cp src/a.rs src/b.rs && cat src/b.rs", "cargo build && ls target"]
        {
            assert_eq!(followed(cmd), None, "{cmd}");
        }
    }
}
