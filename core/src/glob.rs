//! A small glob matcher for server names, tool names and argument values.
//!
//! Syntax, deliberately small so that a policy reads the same to everyone:
//!
//! | pattern   | matches                                                   |
//! |-----------|-----------------------------------------------------------|
//! | `*`       | any run of characters, `/` included (`**` means the same)  |
//! | `?`       | exactly one character                                     |
//! | `[abc]`   | one of the listed characters; ranges as in `[a-z0-9]`     |
//! | `[!abc]`  | one character not listed (`[^abc]` works too)             |
//! | `\*`      | a literal `*` (any character after `\` is literal)        |
//!
//! Matching is case-sensitive and covers the whole string. Braces
//! (`{a,b}`) are refused rather than taken literally: policy files take a
//! list of globs instead (`tool = ["a", "b"]`).
//!
//! Patterns compile once (at policy parse time). The common shapes — a
//! plain name, `prefix*`, `*suffix`, `*middle*`, `*` — compile to a plain
//! string comparison; the rest run a backtracking matcher that restarts
//! only from the last `*` (linear in practice, no allocation).

use std::fmt;

/// A compiled glob pattern.
#[derive(Clone)]
pub struct Glob {
    source: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Pattern(Vec<Tok>),
}

#[derive(Clone, Debug)]
enum Tok {
    Lit(String),
    One,
    Star,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// Why a pattern does not compile; `offset` is the byte offset in the
/// pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {})", offset + 1)]
pub struct GlobError {
    pub offset: usize,
    pub message: String,
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let toks = tokenize(pattern)?;
        Ok(Glob { source: pattern.to_owned(), kind: simplify(toks) })
    }

    /// A pattern that matches exactly `s`, whatever characters it holds.
    pub fn literal(s: &str) -> Glob {
        Glob { source: escape(s), kind: Kind::Exact(s.to_owned()) }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern matches every string.
    pub fn is_match_all(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }

    /// The exact string this pattern matches, when it has no wildcard.
    pub fn as_literal(&self) -> Option<&str> {
        match &self.kind {
            Kind::Exact(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_match(&self, text: &str) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(s) => text == s,
            Kind::Prefix(s) => text.starts_with(s.as_str()),
            Kind::Suffix(s) => text.ends_with(s.as_str()),
            Kind::Contains(s) => text.contains(s.as_str()),
            Kind::Pattern(toks) => match_toks(toks, text),
        }
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

/// Escapes every glob metacharacter of `s` with `\`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '{' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn err(offset: usize, message: impl Into<String>) -> GlobError {
    GlobError { offset, message: message.into() }
}

fn tokenize(p: &str) -> Result<Vec<Tok>, GlobError> {
    let mut toks: Vec<Tok> = Vec::new();
    let mut lit = String::new();
    let mut it = p.char_indices().peekable();
    let flush = |lit: &mut String, toks: &mut Vec<Tok>| {
        if !lit.is_empty() {
            toks.push(Tok::Lit(std::mem::take(lit)));
        }
    };
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => match it.next() {
                Some((_, n)) => lit.push(n),
                None => {
                    return Err(err(i, "`\\` at the end escapes nothing (write `\\\\` for a backslash)"));
                }
            },
            '*' => {
                flush(&mut lit, &mut toks);
                if !matches!(toks.last(), Some(Tok::Star)) {
                    toks.push(Tok::Star);
                }
            }
            '?' => {
                flush(&mut lit, &mut toks);
                toks.push(Tok::One);
            }
            '{' | '}' => {
                return Err(err(
                    i,
                    format!(
                        "`{c}`: braces are not glob syntax here; give a list of patterns instead, or write `\\{c}`"
                    ),
                ));
            }
            ']' => {
                return Err(err(i, "`]` without an opening `[` (write `\\]` for a literal bracket)"));
            }
            '[' => {
                flush(&mut lit, &mut toks);
                let mut negated = false;
                if let Some(&(_, n)) = it.peek()
                    && (n == '!' || n == '^')
                {
                    negated = true;
                    it.next();
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                let mut first = true;
                while let Some((j, c)) = it.next() {
                    // `]` right after `[` or `[!` is a literal member.
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        match it.next() {
                            Some((_, n)) => n,
                            None => break,
                        }
                    } else {
                        c
                    };
                    let mut hi = lo;
                    if let Some(&(_, '-')) = it.peek() {
                        let mut look = it.clone();
                        look.next();
                        if let Some(&(_, n)) = look.peek()
                            && n != ']'
                        {
                            it.next();
                            let (_, n) = it.next().expect("peeked");
                            hi = n;
                            if hi < lo {
                                return Err(err(j, format!("range `{lo}-{hi}` is reversed (write `{hi}-{lo}`)")));
                            }
                        }
                    }
                    ranges.push((lo, hi));
                }
                if !closed {
                    return Err(err(i, "`[` is never closed with `]` (write `\\[` for a literal bracket)"));
                }
                toks.push(Tok::Class { negated, ranges });
            }
            c => lit.push(c),
        }
    }
    flush(&mut lit, &mut toks);
    Ok(toks)
}

fn simplify(toks: Vec<Tok>) -> Kind {
    match toks.as_slice() {
        [] => Kind::Exact(String::new()),
        [Tok::Star] => Kind::Any,
        [Tok::Lit(s)] => Kind::Exact(s.clone()),
        [Tok::Lit(s), Tok::Star] => Kind::Prefix(s.clone()),
        [Tok::Star, Tok::Lit(s)] => Kind::Suffix(s.clone()),
        [Tok::Star, Tok::Lit(s), Tok::Star] => Kind::Contains(s.clone()),
        _ => Kind::Pattern(toks),
    }
}

fn class_has(negated: bool, ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negated
}

fn next_len(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(0, char::len_utf8)
}

fn match_toks(toks: &[Tok], text: &str) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where the last `*` was, and how much text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < toks.len() {
            match &toks[p] {
                Tok::Star => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Tok::Lit(s) if text[t..].starts_with(s.as_str()) => {
                    t += s.len();
                    p += 1;
                    continue;
                }
                Tok::One if t < text.len() => {
                    t += next_len(text, t);
                    p += 1;
                    continue;
                }
                Tok::Class { negated, ranges } if t < text.len() => {
                    let c = text[t..].chars().next().expect("t < len");
                    if class_has(*negated, ranges, c) {
                        t += c.len_utf8();
                        p += 1;
                        continue;
                    }
                }
                _ => {}
            }
        } else if t == text.len() {
            return true;
        }
        // Mismatch: let the last `*` swallow more text. When a literal
        // follows the `*`, jump straight to its next occurrence.
        match star {
            Some((sp, st)) if st < text.len() => {
                let mut st = st + next_len(text, st);
                if let Some(Tok::Lit(l)) = toks.get(sp + 1) {
                    match text[st..].find(l.as_str()) {
                        Some(i) => st += i,
                        None => return false,
                    }
                }
                star = Some((sp, st));
                p = sp + 1;
                t = st;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().is_match(t)
    }

    #[test]
    fn simple_shapes() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at all"));
        assert!(m("read_file", "read_file"));
        assert!(!m("read_file", "read_files"));
        assert!(m("get_*", "get_messages"));
        assert!(!m("get_*", "forget_it"));
        assert!(m("*_file", "write_file"));
        assert!(m("*secret*", "my_secret_thing"));
        assert!(m("/etc/**", "/etc/ssh/sshd_config"));
    }

    #[test]
    fn general_patterns() {
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("file[0-9].txt", "file7.txt"));
        assert!(!m("file[0-9].txt", "filex.txt"));
        assert!(m("file[!0-9].txt", "filex.txt"));
        assert!(m("x[]]y", "x]y"));
        assert!(m("*.t?t", "a.b.txt"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("é*ü", "éaaü"));
        assert!(m("*a*a*a*a*b", &format!("{}b", "a".repeat(40))));
        assert!(!m("*a*a*a*a*b", &"a".repeat(40)));
    }

    /// Obviously-correct reference: recursion over characters.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    #[test]
    fn agrees_with_a_reference_matcher() {
        // Every pattern and text over a small alphabet, up to a length.
        let alpha = ['a', 'b', '*', '?'];
        let mut patterns = vec![String::new()];
        for _ in 0..5 {
            let next: Vec<String> =
                patterns.iter().flat_map(|p| alpha.iter().map(move |c| format!("{p}{c}"))).collect();
            patterns.extend(next);
        }
        patterns.sort();
        patterns.dedup();
        let texts: Vec<String> = (0..64u32)
            .flat_map(|n| (0..=6).map(move |len| (0..len).map(|i| if n >> i & 1 == 1 { 'a' } else { 'b' }).collect()))
            .collect();
        for p in &patterns {
            let g = Glob::new(p).unwrap();
            let pc: Vec<char> = p.chars().collect();
            for t in &texts {
                let tc: Vec<char> = t.chars().collect();
                assert_eq!(g.is_match(t), reference(&pc, &tc), "pattern {p:?} text {t:?}");
            }
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert_eq!(Glob::new("ab[cd").unwrap_err().offset, 2);
        assert!(Glob::new("a{b,c}").unwrap_err().message.contains("braces"));
        assert!(Glob::new("a]").is_err());
        assert!(Glob::new("x\\").is_err());
        assert!(Glob::new("[z-a]").unwrap_err().message.contains("reversed"));
    }

    #[test]
    fn literal_escapes_metacharacters() {
        let g = Glob::literal("we*rd[name]");
        assert!(g.is_match("we*rd[name]"));
        assert!(!g.is_match("weXrdn"));
        assert!(Glob::new(g.as_str()).unwrap().is_match("we*rd[name]"));
    }
}
