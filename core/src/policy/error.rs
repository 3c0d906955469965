//! Problems found in a policy file, each with its place and a fix.

use std::fmt;

use serde::Serialize;

/// What kind of problem; tests and tools match on it, people read
/// [`Problem::message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Not valid TOML.
    Syntax,
    /// A key Latch does not know (a typo, most often).
    UnknownKey,
    /// A value of the wrong type (`hold_seconds = "30"`).
    WrongType,
    /// A required key is absent (a rule without `effect`).
    MissingKey,
    /// An unknown class, flag or effect name.
    UnknownName,
    /// A glob that does not compile (unclosed `[` …).
    BadGlob,
    /// A regular expression that does not compile.
    BadRegex,
    /// A domain that is not a plain host name.
    BadDomain,
    /// A number outside its allowed range.
    OutOfRange,
    /// A rule that can never match (contradiction, empty list, no matcher).
    NeverMatches,
    /// Two rules with the same name.
    Duplicate,
    /// A rule that an earlier rule always decides first (a warning).
    Unreachable,
    /// A user rule that would loosen what the managed policy sets, so has
    /// no effect there (a warning of `latch policy check`).
    NoEffect,
}

/// One problem, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What to write instead.
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = crate::redact::redact_text;
        write!(f, "line {}, column {}: {}", self.line, self.column, redact(&self.message))?;
        if !self.hint.is_empty() {
            write!(f, "\n    fix: {}", redact(&self.hint))?;
        }
        Ok(())
    }
}

/// Every problem found in a policy file, in file order. A policy with any
/// problem is refused as a whole (the daemon keeps the previous one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "the policy has {n} problem{}", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            write!(f, "\n{p}")?;
        }
        Ok(())
    }
}

impl PolicyError {
    /// Compiler-style report: `FILE:LINE:COL: message`, the source line with
    /// a caret under the column, and the fix.
    pub fn render(&self, file: &str, text: &str) -> String {
        render_problems(&self.problems, "error", file, text)
    }
}

/// Renders problems (errors or warnings) against their source text.
pub fn render_problems(problems: &[Problem], label: &str, file: &str, text: &str) -> String {
    let mut out = String::new();
    // The report goes to `latch status`, the audit database and the log:
    // a secret pasted into the file (a bot token) is masked in it.
    let redact = crate::redact::redact_text;
    for p in problems {
        out.push_str(&format!("{file}:{}:{}: {label}: {}\n", p.line, p.column, redact(&p.message)));
        if let Some(src) = text.lines().nth(p.line.saturating_sub(1)) {
            let src = redact(src.trim_end());
            let caret = src.chars().take(p.column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' });
            out.push_str(&format!("  {:>4} | {src}\n       | {}^\n", p.line, caret.collect::<String>()));
        }
        if !p.hint.is_empty() {
            out.push_str(&format!("  fix: {}\n", redact(&p.hint)));
        }
    }
    out
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut start = offset;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The closest of `candidates` to `word`, when it is close enough to be a
/// typo (edit distance at most 2, or a case difference).
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "ab\ncdé\nf";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 6), (2, 3));
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(did_you_mean("efect", &["effect", "tool"]), Some("effect"));
        assert_eq!(did_you_mean("shel", &["shell", "external"]), Some("shell"));
        assert_eq!(did_you_mean("zzzzzz", &["effect", "tool"]), None);
    }
}
