//! Links a script makes for itself: `ln -s ~/.config C && echo x >
//! C/latch/policy.toml` writes through a link that does not exist when the
//! call is decided, so no resolver can follow it; the name alone looks
//! harmless. A later word that goes through a name such a command made is
//! reported, and the call is read as one whose paths cannot be followed.

use super::{Command, Script, Word};

/// A name a command made: `itself` when using the name (not only going
/// through it as a folder) reaches somewhere else.
struct Made {
    name: String,
    itself: bool,
}

impl Script {
    /// The first word (its name, an argument or a redirection target) of a command
    /// that goes through a name an earlier command of this script made: a
    /// link (`ln`, `link`, `cp` with `-s`, `-l`, `-a`, `-d`, `-P`) or a
    /// moved folder (`mv`). Names are compared as path components, so a
    /// `cd` in between cannot hide them (a conservative match).
    pub fn through_new_link(&self) -> Option<&Word> {
        let mut made: Vec<Made> = Vec::new();
        for cmd in &self.commands {
            if !made.is_empty() {
                let targets = cmd.redirects.iter().filter_map(|r| r.target.as_ref());
                if let Some(w) = cmd.words.iter().chain(targets).find(|w| !w.unknown && goes_through(&w.text, &made)) {
                    return Some(w);
                }
            }
            made.extend(names_made(cmd));
        }
        None
    }
}

/// Whether `text` (a path, or `of=PATH`) goes through a made name.
fn goes_through(text: &str, made: &[Made]) -> bool {
    let path = text.rsplit_once('=').map_or(text, |(_, p)| p);
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    parts.iter().enumerate().any(|(i, c)| made.iter().any(|m| m.name == *c && (m.itself || i + 1 < parts.len())))
}

/// The names `cmd` makes a link or a moved folder at: every plain
/// argument's last component (the destination, or a source's name inside
/// a destination folder).
fn names_made(cmd: &Command) -> Vec<Made> {
    let args = cmd.args();
    let itself = match cmd.base_name() {
        Some("ln" | "link") => true,
        Some("cp") if args.iter().any(|w| !w.unknown && links_option(&w.text)) => true,
        Some("mv") => false,
        _ => return Vec::new(),
    };
    args.iter()
        .filter(|w| !w.unknown && (!w.text.starts_with('-') || w.text.starts_with("--target-directory=")))
        .filter_map(|w| {
            let path = w.text.strip_prefix("--target-directory=").unwrap_or(&w.text);
            let base = path.trim_end_matches('/').rsplit('/').next()?;
            (!matches!(base, "" | "." | "..")).then(|| Made { name: base.to_owned(), itself })
        })
        .collect()
}

/// A `cp` option that makes links or copies links as links.
fn links_option(o: &str) -> bool {
    match o.strip_prefix("--") {
        Some(long) => {
            ["link", "symbolic-link", "archive", "no-dereference"].contains(&long) || long.starts_with("preserve")
        }
        None => {
            o.strip_prefix('-').is_some_and(|short| short.chars().any(|c| matches!(c, 's' | 'l' | 'a' | 'd' | 'P')))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::shell::parse;

    fn through(cmd: &str) -> Option<String> {
        parse(cmd, &Default::default()).through_new_link().map(|w| w.text.clone())
    }

    #[test]
    fn a_link_made_then_used_is_found() {
        for (cmd, word) in [
            ("ln -s ~/.config C && echo x > C/latch/policy.toml", "C/latch/policy.toml"),
            ("ln -s ~/.config C; exec 3<>C/latch/policy.toml", "C/latch/policy.toml"),
            ("ln -s .git/hooks/pre-commit y && echo evil > y", "y"),
            ("ln -sf / R; cd /tmp; echo x > R/etc/cron.d/x", "R/etc/cron.d/x"),
            ("ln ~/.bashrc n2 && echo evil >> n2", "n2"),
            ("cp -s ~/.ssh/authorized_keys k && tee -a k < key", "k"),
            ("cp -a repo/tools . && dd of=tools/pre-commit", "of=tools/pre-commit"),
            ("mv .git g && echo evil > g/hooks/pre-commit", "g/hooks/pre-commit"),
            ("ln -t bin ../x/tool && bin/tool", "bin/tool"),
            ("sh -c 'ln -s ~/.ssh s' && cat s/id_rsa", "s/id_rsa"),
        ] {
            assert_eq!(through(cmd).as_deref(), Some(word), "{cmd}");
        }
        for cmd in [
            "ln -s ../lib/libfoo.so.1 libfoo.so",
            "mv src/a.rs src/b.rs && git add src/b.rs",
            "cp src/a.rs src/b.rs && cat src/b.rs",
            "echo x > C/notes; ln -s ~/.config C",
            "cargo build && ls target",
        ] {
            assert_eq!(through(cmd), None, "{cmd}");
        }
    }
}
