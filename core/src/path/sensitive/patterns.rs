//! Shell patterns read as the sensitive names they can match.

use super::names::{CRED_DIRS, CRED_FILES, SHELL_RC};

/// Names the rules above look for, as a pattern's component may match them.
const NAMES: &[&str] = &[
    ".git",
    "hooks",
    "config",
    "config.worktree",
    "modules",
    ".ssh",
    "authorized_keys",
    ".config",
    "systemd",
    "autostart",
    "fish",
    ".gitconfig",
    "etc",
    "cron.d",
    "crontab",
    ".pre-commit-config.yaml",
    "credentials",
    "id_rsa",
    "id_ed25519",
    ".env",
    ".local",
    "share",
    "LaunchAgents",
    "Library",
];

/// The spellings of a pattern word with each pattern component replaced
/// by the sensitive names it matches (kept as written when it matches
/// none); at most 16.
pub(super) fn spellings(text: &str) -> Vec<String> {
    let names = || NAMES.iter().chain(SHELL_RC).chain(CRED_FILES).chain(CRED_DIRS);
    let mut out = vec![String::new()];
    for (i, c) in text.split('/').enumerate() {
        // As the shell: a leading `.` is matched only by a `.`. A pattern
        // of `*` alone stands for git's two (`.git/*/pre-commit`), not
        // every name (`rm -rf *`); `??????` for names of its length.
        let literal = c.chars().any(|ch| ch.is_alphanumeric() || ch == '.' || ch == '_');
        let stars = !literal && c.chars().all(|ch| ch == '*');
        let choices: Vec<String> = match pattern(c) {
            Some(re) => {
                let dot = |n: &&&str| !n.starts_with('.') || c.starts_with('.');
                let some = |n: &&&str| !stars || matches!(**n, "hooks" | "config");
                let hits: Vec<String> =
                    names().filter(dot).filter(some).filter(|n| re.is_match(n)).map(|n| (*n).to_owned()).collect();
                if hits.is_empty() { vec![c.to_owned()] } else { hits }
            }
            None => vec![c.to_owned()],
        };
        let sep = if i == 0 { "" } else { "/" };
        out = out.iter().flat_map(|p| choices.iter().map(move |c| format!("{p}{sep}{c}"))).take(16).collect();
    }
    out
}

/// A shell pattern component (`*`, `?`, `[…]`, `{a,b}`) as a regex; `None`
/// when it has none.
fn pattern(c: &str) -> Option<regex::Regex> {
    if !c.contains(['*', '?', '[', '{']) {
        return None;
    }
    let mut re = String::from("^");
    let mut chars = c.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut class = String::new();
                for d in chars.by_ref() {
                    if d == ']' && !class.is_empty() {
                        break;
                    }
                    class.push(d);
                }
                let class = class.strip_prefix(['!', '^']).map_or(class.clone(), |r| format!("^{r}"));
                re.push_str(&format!("[{}]", class.replace('\\', "\\\\")));
            }
            '{' => re.push_str("(?:"),
            '}' => re.push(')'),
            ',' => re.push('|'),
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}
