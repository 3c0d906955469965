//! Only literal secret text is masked, never shell metasyntax.
//!
//! A span a rule calls secret (the value after `PGPASSWORD=`, a `--token`
//! flag's argument, a value under a `password` key) can hold code instead
//! of a secret: `PGPASSWORD=$(rm${IFS}-rf${IFS}~)` runs a command, and a
//! bare value ends where `;`, `|`, `&&` or a redirection starts the next
//! command. Masking such a span would hide from the person approving the
//! call exactly what it does. So a span is narrowed to its literal parts:
//! - command and parameter substitutions (`$(…)`, `$((…))`, `` `…` ``,
//!   `${…}`) and process substitutions (`<(…)`, `>(…)`) are always shown,
//!   quoted or not, with everything inside them;
//! - in an unquoted value, the first control or redirection operator (`;`
//!   `|` `&` `<` `>` `(` `)` or a line break) ends the literal: it and
//!   everything after it stay visible.
//!
//! Inside quotes (`"…"`, `'…'`, a JSON string) the operators are literal
//! characters of the value and are masked with it. The price: a real
//! password holding `$(`, `${` or a backtick shows those parts.

/// Whether `b` can start a substitution at `i`: `$(`, `${`, `` ` ``,
/// `<(`, `>(`.
fn substitution_at(b: &[u8], i: usize) -> bool {
    match b[i] {
        b'`' => true,
        b'$' | b'<' | b'>' => matches!((b[i], b.get(i + 1)), (b'$', Some(b'(' | b'{')) | (b'<' | b'>', Some(b'('))),
        _ => false,
    }
}

/// End (exclusive) of the substitution starting at `i`, at most `end`: the
/// matching close of its bracket, or the next backtick.
fn substitution_end(b: &[u8], i: usize, end: usize) -> usize {
    if b[i] == b'`' {
        return b[i + 1..end].iter().position(|&c| c == b'`').map_or(end, |p| i + 1 + p + 1);
    }
    let (open, close) = if b[i + 1] == b'{' { (b'{', b'}') } else { (b'(', b')') };
    let mut depth = 0usize;
    for (j, &c) in b.iter().enumerate().take(end).skip(i + 1) {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
    }
    end
}

/// The literal parts of `text[start..end]`, pushed onto `out` as spans;
/// `quoted` says whether the value sits inside quotes (then operators are
/// literal). Parts of white space only are left out.
pub(super) fn literal_parts(text: &str, start: usize, end: usize, quoted: bool, out: &mut Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let mut push = |s: usize, e: usize| {
        if s < e && !b[s..e].iter().all(u8::is_ascii_whitespace) {
            out.push((s, e));
        }
    };
    let mut run = start;
    let mut i = start;
    while i < end {
        if substitution_at(b, i) {
            push(run, i);
            i = substitution_end(b, i, end);
            run = i;
            continue;
        }
        if !quoted && matches!(b[i], b';' | b'|' | b'&' | b'<' | b'>' | b'(' | b')' | b'\n' | b'\r') {
            push(run, i);
            return;
        }
        i += 1;
    }
    push(run, end);
}

/// Reads the quoting of a text as a shell does (backslash escapes outside
/// single quotes), forward only: spans are asked about in order.
pub(super) struct QuoteScan {
    pos: usize,
    state: u8,
}

impl QuoteScan {
    pub(super) fn new() -> Self {
        QuoteScan { pos: 0, state: 0 }
    }

    /// Whether the span `start..end` sits inside quotes that close after
    /// it: right after a quote character, or inside a `"…"` / `'…'`
    /// region. A quote left open counts as none, so that nothing after it
    /// can pass for part of a quoted value. `start` never goes backwards.
    pub(super) fn quoted(&mut self, text: &str, start: usize, end: usize) -> bool {
        let b = text.as_bytes();
        let opener = match self.state_at(text, start) {
            0 if start > 0 && matches!(b[start - 1], b'"' | b'\'') => b[start - 1],
            0 => return false,
            q => q,
        };
        b[end..].contains(&opener)
    }

    /// The quote open at `start` (0 for none).
    fn state_at(&mut self, text: &str, start: usize) -> u8 {
        let b = text.as_bytes();
        while self.pos < start {
            let c = b[self.pos];
            match self.state {
                0 | b'"' if c == b'\\' => self.pos += 1,
                0 if c == b'\'' || c == b'"' => self.state = c,
                s if s != 0 && c == s => self.state = 0,
                _ => {}
            }
            self.pos += 1;
        }
        self.state
    }
}

/// Whether `text` has a byte that [`literal_parts`] may treat as syntax.
pub(super) fn has_syntax(text: &str) -> bool {
    text.bytes().any(|c| matches!(c, b'`' | b'$' | b'<' | b'>' | b';' | b'|' | b'&' | b'(' | b')' | b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str, quoted: bool) -> Vec<&str> {
        let mut out = Vec::new();
        literal_parts(text, 0, text.len(), quoted, &mut out);
        out.iter().map(|&(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn substitutions_are_never_literal() {
        assert!(parts("$(rm${IFS}-rf${IFS}~)", false).is_empty());
        assert!(parts("`id`", true).is_empty());
        assert!(parts("${HOME}", true).is_empty());
        assert!(parts("<(curl x)", false).is_empty());
        assert_eq!(parts("abc$(x)def", true), ["abc", "def"]);
        assert_eq!(parts("abc$(x (y) z", true), ["abc"]);
    }

    #[test]
    fn an_operator_ends_an_unquoted_literal_only() {
        assert_eq!(parts("s3cr3t;rm -rf ~", false), ["s3cr3t"]);
        assert_eq!(parts("s3cr3t>/etc/x", false), ["s3cr3t"]);
        assert_eq!(parts("s3cr3t;rm -rf ~", true), ["s3cr3t;rm -rf ~"]);
        assert_eq!(parts("pa$$word", false), ["pa$$word"]);
    }

    #[test]
    fn quote_state_is_read_like_a_shell() {
        let t = r#"a "b c" 'd "e' f\"g h"#;
        let mut q = QuoteScan::new();
        let at = |c: char| t.find(c).unwrap();
        assert!(q.quoted(t, at('c'), at('c') + 1));
        assert!(q.quoted(t, at('e'), at('e') + 1));
        assert!(!q.quoted(t, at('f'), at('f') + 1));
        assert!(!q.quoted(t, at('h'), at('h') + 1));
        // A quote that never closes quotes nothing.
        let open = "X=\"abc && rm -rf ~";
        assert!(!QuoteScan::new().quoted(open, 3, open.len()));
    }
}
