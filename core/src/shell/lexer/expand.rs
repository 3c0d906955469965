//! Expansions: `$…` in all its forms, backquotes, `$'…'` escapes, and
//! what a command substitution is known to print.

use super::{Buf, Parser, SPLIT, State, is_name, parse_into};
use crate::shell::{Command, Script, Word};

impl Parser {
    /// Pushes an expansion's value: unquoted blanks split fields.
    pub(super) fn push_value(b: &mut Buf, v: &str, quoted: bool) {
        if quoted {
            b.push_str(v);
        } else {
            for ch in v.chars() {
                b.push(if matches!(ch, ' ' | '\t' | '\n') { SPLIT } else { ch });
            }
        }
    }

    pub(super) fn dollar(&mut self, st: &mut State, out: &mut Script, b: &mut Buf, in_dq: bool) {
        self.i += 1;
        match self.peek() {
            Some('\'') if !in_dq => {
                self.i += 1;
                b.quoted = true;
                self.ansi_c(b, out);
            }
            Some('"') if !in_dq => {
                self.i += 1;
                b.quoted = true;
                self.dquote(st, out, b, Some('"'));
            }
            Some('(') if self.peek_at(1) == Some('(') => {
                // Arithmetic: its value is unknown, but `$(( $(cmd) ))`
                // still runs cmd.
                self.i += 2;
                self.nested_list(st, out, ')');
                if self.peek() == Some(')') {
                    self.i += 1;
                }
                b.mark_unknown();
            }
            Some('(') => {
                self.i += 1;
                let first = out.commands.len();
                self.nested_list(st, out, ')');
                self.substituted(out, first, b, in_dq);
            }
            Some('{') => {
                self.i += 1;
                let start = self.i;
                let mut level = 1;
                while let Some(c) = self.peek() {
                    self.i += 1;
                    match c {
                        '{' => level += 1,
                        '}' => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        // A backslash escapes the next character, if any: never
                        // step past the end (later slices end at `self.i`).
                        '\\' => self.i = (self.i + 1).min(self.c.len()),
                        _ => {}
                    }
                }
                if level != 0 {
                    out.malformed = true;
                }
                let end = if level == 0 { self.i - 1 } else { self.i.min(self.c.len()) };
                let inner: String = self.c[start..end.max(start)].iter().collect();
                self.param(st, out, b, &inner, in_dq);
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    self.i += 1;
                }
                let name: String = self.c[start..self.i].iter().collect();
                self.var(st, b, &name, in_dq);
            }
            Some(c) if c.is_ascii_digit() || matches!(c, '@' | '*' | '#' | '?' | '$' | '!' | '-') => {
                self.i += 1;
                b.mark_unknown();
            }
            _ => b.push('$'),
        }
    }

    pub(super) fn var(&mut self, st: &State, b: &mut Buf, name: &str, in_dq: bool) {
        if name == "IFS" && st.get("IFS").is_none_or(|v| v.chars().all(char::is_whitespace)) {
            if in_dq {
                b.push(' ');
            } else {
                b.push(SPLIT);
            }
            return;
        }
        match st.get(name) {
            Some(v) => {
                let v = v.to_owned();
                Self::push_value(b, &v, in_dq);
            }
            None => b.mark_unknown(),
        }
    }

    /// `${…}` with its operators.
    fn param(&mut self, st: &mut State, out: &mut Script, b: &mut Buf, inner: &str, in_dq: bool) {
        let n = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
        let (name, op) = inner.split_at(n);
        if !is_name(name) {
            // `${#x}`, `${!x}`, `${1}`, `${@}`: unknown.
            b.mark_unknown();
            return;
        }
        if op.is_empty() {
            self.var(st, b, name, in_dq);
            return;
        }
        let value = st.get(name).map(str::to_owned);
        let (colon, rest) = match op.strip_prefix(':') {
            Some(r) => (true, r),
            None => (false, op),
        };
        let set = value.as_ref().is_some_and(|v| !(colon && v.is_empty()));
        let known = value.is_some();
        let arg = |p: &mut Parser, st: &mut State, out: &mut Script, text: &str| -> Word {
            let mut sub = Parser { c: text.chars().collect(), i: 0, depth: p.depth, heredocs: Vec::new() };
            let mut wb = Buf::default();
            sub.dquote(st, out, &mut wb, None);
            wb.w
        };
        match rest.chars().next() {
            Some('-') | Some('=') => {
                if set {
                    Self::push_value(b, value.as_deref().unwrap_or(""), in_dq);
                } else if known {
                    // Empty with `:`: the default is used.
                    let w = arg(self, st, out, &rest[1..]);
                    if rest.starts_with('=') {
                        st.set(name, &w);
                    }
                    if w.unknown {
                        b.mark_unknown();
                    }
                    Self::push_value(b, &w.text, in_dq);
                } else {
                    // Whether it is set is unknown, so is the value; the
                    // default still runs what it substitutes.
                    let _ = arg(self, st, out, &rest[1..]);
                    if rest.starts_with('=') {
                        st.forget(name);
                    }
                    b.mark_unknown();
                }
            }
            Some('+') => {
                if set {
                    let w = arg(self, st, out, &rest[1..]);
                    if w.unknown {
                        b.mark_unknown();
                    }
                    Self::push_value(b, &w.text, in_dq);
                } else if !known {
                    b.mark_unknown();
                }
            }
            Some('?') if set => Self::push_value(b, value.as_deref().unwrap_or(""), in_dq),
            _ => b.mark_unknown(),
        }
    }

    /// After `$(…)` or backquotes: the commands it ran are in
    /// `out.commands[first..]`; its output is known only for lookups and
    /// echoes.
    fn substituted(&mut self, out: &Script, first: usize, b: &mut Buf, in_dq: bool) {
        let ran = &out.commands[first.min(out.commands.len())..];
        match ran.first().filter(|_| ran.iter().all(|c| c.depth > self.depth)).and_then(obvious_output) {
            Some(v) if ran.iter().filter(|c| c.via.is_none()).count() == 1 => Self::push_value(b, &v, in_dq),
            _ => b.mark_unknown(),
        }
    }

    pub(super) fn backquote(&mut self, st: &mut State, out: &mut Script, b: &mut Buf, in_dq: bool) {
        self.i += 1;
        let mut inner = String::new();
        let mut closed = false;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '`' => {
                    closed = true;
                    break;
                }
                '\\' => match self.peek() {
                    Some(n @ ('`' | '\\' | '$')) => {
                        self.i += 1;
                        inner.push(n);
                    }
                    _ => inner.push('\\'),
                },
                _ => inner.push(c),
            }
        }
        if !closed {
            out.malformed = true;
        }
        let first = out.commands.len();
        parse_into(&inner, st, out, self.depth + 1);
        self.substituted(out, first, b, in_dq);
    }

    /// `$'…'` with its escapes.
    fn ansi_c(&mut self, b: &mut Buf, out: &mut Script) {
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == '\'' {
                return;
            }
            if c != '\\' {
                b.push(c);
                continue;
            }
            let Some(e) = self.peek() else { break };
            self.i += 1;
            let ch = match e {
                'a' => Some('\x07'),
                'b' => Some('\x08'),
                'e' | 'E' => Some('\x1b'),
                'f' => Some('\x0c'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\x0b'),
                '\\' | '\'' | '"' | '?' => Some(e),
                'x' => self.radix(16, 2),
                'u' => self.radix(16, 4),
                'U' => self.radix(16, 8),
                '0'..='7' => {
                    self.i -= 1;
                    self.radix(8, 3)
                }
                'c' => {
                    // The control character's letter, if any: never step
                    // past the end (later slices end at `self.i`).
                    let x = self.peek();
                    if x.is_some() {
                        self.i += 1;
                    }
                    x.map(|x| char::from((x as u8) & 0x1f))
                }
                other => {
                    b.push('\\');
                    Some(other)
                }
            };
            if let Some(ch) = ch {
                b.push(ch);
            }
        }
        out.malformed = true;
    }

    fn radix(&mut self, radix: u32, max: usize) -> Option<char> {
        let mut v: u32 = 0;
        let mut n = 0;
        while n < max {
            match self.peek().and_then(|c| c.to_digit(radix)) {
                Some(d) => {
                    v = v * radix + d;
                    self.i += 1;
                    n += 1;
                }
                None => break,
            }
        }
        if n == 0 { None } else { char::from_u32(v) }
    }
}

/// What `$(…)` prints when that is obvious: `which X`, `command -v X`,
/// `type -P X`, `realpath X`, `readlink -f X`, `echo X`, `printf %s X`.
fn obvious_output(c: &Command) -> Option<String> {
    let name = c.base_name()?;
    let args: Vec<&Word> = c.args().iter().filter(|w| !w.text.starts_with('-')).collect();
    if args.iter().any(|w| w.unknown) || !c.redirects.is_empty() {
        return None;
    }
    let joined = || args.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
    match name {
        "which" | "realpath" | "readlink" | "type" | "whereis" => args.last().map(|w| w.text.clone()),
        "command" if c.args().first().is_some_and(|w| w.text == "-v" || w.text == "-V") => {
            args.last().map(|w| w.text.clone())
        }
        "echo" => Some(joined()),
        "printf" if args.first().is_some_and(|w| w.text == "%s") => {
            Some(args[1..].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(""))
        }
        _ => None,
    }
}
