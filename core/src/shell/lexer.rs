//! The reader: characters to words, words to simple commands, nested
//! strings parsed again. One pass, bounded by the caller's limits.

use std::collections::{BTreeMap, BTreeSet};

mod expand;

use super::script::{Command, MAX_COMMANDS, MAX_DEPTH, Redirect, RedirectKind, Script, Vars, Word};
use super::wrappers;

/// Longest value a variable may hold before it counts as unknown
/// (`x=$x$x` doubling).
const MAX_VALUE: usize = 16 * 1024;

/// Marks a field split inside a word (an unquoted expansion's blanks);
/// NUL cannot occur in a shell word otherwise.
const SPLIT: char = '\0';

/// Variables across one top-level string and everything nested in it.
pub(super) struct State {
    known: BTreeMap<String, String>,
    unknown: BTreeSet<String>,
}

impl State {
    pub fn new(vars: &Vars) -> State {
        State { known: vars.clone(), unknown: BTreeSet::new() }
    }

    fn get(&self, name: &str) -> Option<&str> {
        if self.unknown.contains(name) {
            return None;
        }
        self.known.get(name).map(String::as_str)
    }

    fn set(&mut self, name: &str, w: &Word) {
        if w.unknown || w.text.len() > MAX_VALUE {
            self.known.remove(name);
            self.unknown.insert(name.to_owned());
        } else {
            self.unknown.remove(name);
            self.known.insert(name.to_owned(), w.text.replace(SPLIT, " "));
        }
    }

    fn forget(&mut self, name: &str) {
        self.known.remove(name);
        self.unknown.insert(name.to_owned());
    }
}

/// Parses `src` as a list of commands into `out`.
pub(super) fn parse_into(src: &str, state: &mut State, out: &mut Script, depth: usize) {
    if depth > MAX_DEPTH {
        out.truncated = true;
        return;
    }
    let mut p = Parser { c: src.chars().collect(), i: 0, depth, heredocs: Vec::new() };
    p.list(state, out, None);
    if p.i < p.c.len() {
        // A stray `)` at top level: keep reading after it.
        while p.i < p.c.len() {
            p.i += 1;
            p.list(state, out, None);
        }
    }
}

struct Parser {
    c: Vec<char>,
    i: usize,
    depth: usize,
    /// Here-documents whose bodies start after the current line:
    /// (delimiter, strip tabs, expands).
    heredocs: Vec<(String, bool, bool)>,
}

/// Word being built.
#[derive(Default)]
struct Buf {
    w: Word,
    /// Something quoted or escaped was read (an empty `''` is a word).
    quoted: bool,
    /// Offset of the first unquoted `=`, when all before it is a name.
    eq_at: Option<usize>,
}

impl Buf {
    fn push(&mut self, c: char) {
        self.w.text.push(c);
    }
    fn push_str(&mut self, s: &str) {
        self.w.text.push_str(s);
    }
    fn mark_unknown(&mut self) {
        self.w.unknown = true;
        self.w.known_from = self.w.text.len();
    }
}

fn is_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.c.get(self.i + n).copied()
    }

    /// Commands until the end or `until` (consumed).
    fn list(&mut self, st: &mut State, out: &mut Script, until: Option<char>) {
        loop {
            if out.commands.len() >= MAX_COMMANDS {
                out.truncated = true;
                self.i = self.c.len();
                return;
            }
            match self.peek() {
                None => {
                    if until.is_some() {
                        out.malformed = true;
                    }
                    return;
                }
                Some(c) if Some(c) == until => {
                    self.i += 1;
                    return;
                }
                Some(')') if until.is_none() => return,
                _ => {}
            }
            let before = self.i;
            self.command(st, out, until);
            if self.i == before {
                // Nothing consumed (a `)` that is not ours): step over it.
                self.i += 1;
            }
        }
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\t' {
                self.i += 1;
            } else if c == '\\' && self.peek_at(1) == Some('\n') {
                self.i += 2;
            } else {
                break;
            }
        }
    }

    /// One simple command, up to and including its separator.
    fn command(&mut self, st: &mut State, out: &mut Script, until: Option<char>) {
        let mut cmd = Command { depth: self.depth, ..Command::default() };
        let mut raw: Vec<Buf> = Vec::new();
        loop {
            self.skip_blanks();
            let Some(c) = self.peek() else { break };
            match c {
                '\n' => {
                    self.i += 1;
                    self.read_heredocs(st, out);
                    break;
                }
                ';' => {
                    self.i += 1;
                    break;
                }
                '&' if self.peek_at(1) == Some('>') => {
                    self.i += 2;
                    let kind = if self.peek() == Some('>') {
                        self.i += 1;
                        RedirectKind::Append
                    } else {
                        RedirectKind::Write
                    };
                    self.redirect_target(st, out, &mut cmd, None, kind);
                }
                '&' | '|' => {
                    self.i += 1;
                    if matches!(self.peek(), Some('&' | '|')) {
                        self.i += 1;
                    }
                    break;
                }
                ')' => {
                    if until != Some(')') {
                        self.i += 1;
                    }
                    break;
                }
                '(' => {
                    self.i += 1;
                    if raw.is_empty() {
                        // A subshell; `((…))` arithmetic reads as one too.
                        self.nested_list(st, out, ')');
                    } else if self.peek() == Some(')') {
                        self.i += 1; // `f()`
                    }
                }
                '#' => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                '<' | '>' => self.redirect(st, out, &mut cmd, None),
                _ => {
                    let b = self.word(st, out);
                    let digits = !b.quoted && !b.w.text.is_empty() && b.w.text.chars().all(|c| c.is_ascii_digit());
                    if digits && matches!(self.peek(), Some('<' | '>')) {
                        let fd = b.w.text.parse().ok();
                        self.redirect(st, out, &mut cmd, fd);
                    } else if !b.w.text.is_empty() || b.quoted || b.w.unknown {
                        raw.push(b);
                    }
                }
            }
        }
        self.finish(st, out, cmd, raw);
    }

    fn nested_list(&mut self, st: &mut State, out: &mut Script, until: char) {
        if self.depth >= MAX_DEPTH {
            out.truncated = true;
            self.skip_to_close(until);
            return;
        }
        self.depth += 1;
        self.list(st, out, Some(until));
        self.depth -= 1;
    }

    /// Skips to the matching close paren without reading what is inside.
    fn skip_to_close(&mut self, close: char) {
        let open = if close == ')' { '(' } else { '{' };
        let mut level = 1;
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == '\\' {
                self.i = (self.i + 1).min(self.c.len()); // not past the end
            } else if c == open {
                level += 1;
            } else if c == close {
                level -= 1;
                if level == 0 {
                    return;
                }
            }
        }
    }

    fn redirect(&mut self, st: &mut State, out: &mut Script, cmd: &mut Command, fd: Option<u32>) {
        let first = self.peek().unwrap_or('>');
        self.i += 1;
        let next = self.peek();
        if first == '<' {
            match next {
                Some('<') => {
                    self.i += 1;
                    if self.peek() == Some('<') {
                        // Here-string: a word, no file.
                        self.i += 1;
                        self.skip_blanks();
                        let _ = self.word(st, out);
                        cmd.redirects.push(Redirect { fd, kind: RedirectKind::Read, target: None });
                        return;
                    }
                    let strip = self.peek() == Some('-');
                    if strip {
                        self.i += 1;
                    }
                    self.skip_blanks();
                    let start = self.i;
                    let b = self.word(st, out);
                    let quoted = self.c[start..self.i].iter().any(|c| matches!(c, '\'' | '"' | '\\'));
                    self.heredocs.push((b.w.text, strip, !quoted));
                    cmd.redirects.push(Redirect { fd, kind: RedirectKind::Read, target: None });
                }
                Some('>') => {
                    self.i += 1;
                    self.redirect_target(st, out, cmd, fd, RedirectKind::ReadWrite);
                }
                Some('&') => {
                    self.i += 1;
                    self.dup_or_file(st, out, cmd, fd, RedirectKind::Read);
                }
                Some('(') => {
                    self.i += 1;
                    self.nested_list(st, out, ')');
                }
                _ => self.redirect_target(st, out, cmd, fd, RedirectKind::Read),
            }
        } else {
            match next {
                Some('>') => {
                    self.i += 1;
                    self.redirect_target(st, out, cmd, fd, RedirectKind::Append);
                }
                Some('|') => {
                    self.i += 1;
                    self.redirect_target(st, out, cmd, fd, RedirectKind::Write);
                }
                Some('&') => {
                    self.i += 1;
                    self.dup_or_file(st, out, cmd, fd, RedirectKind::Write);
                }
                Some('(') => {
                    self.i += 1;
                    self.nested_list(st, out, ')');
                }
                _ => self.redirect_target(st, out, cmd, fd, RedirectKind::Write),
            }
        }
    }

    fn dup_or_file(&mut self, st: &mut State, out: &mut Script, cmd: &mut Command, fd: Option<u32>, k: RedirectKind) {
        self.skip_blanks();
        let b = self.word(st, out);
        let t = b.w.text.as_str();
        if !b.w.unknown
            && (t == "-"
                || t.chars().all(|c| c.is_ascii_digit())
                || t.trim_end_matches('-').chars().all(|c| c.is_ascii_digit()))
        {
            cmd.redirects.push(Redirect { fd, kind: k, target: None });
        } else {
            cmd.redirects.push(Redirect { fd, kind: k, target: Some(b.w) });
        }
    }

    fn redirect_target(
        &mut self,
        st: &mut State,
        out: &mut Script,
        cmd: &mut Command,
        fd: Option<u32>,
        k: RedirectKind,
    ) {
        self.skip_blanks();
        let mut b = self.word(st, out);
        b.w.text = b.w.text.replace(SPLIT, " ");
        cmd.redirects.push(Redirect { fd, kind: k, target: Some(b.w) });
    }

    /// After a line that opened here-documents: their bodies. An unquoted
    /// delimiter's body expands `$(…)` and backquotes, which run.
    fn read_heredocs(&mut self, st: &mut State, out: &mut Script) {
        for (delim, strip, expands) in std::mem::take(&mut self.heredocs) {
            let mut body = String::new();
            loop {
                let start = self.i;
                while self.peek().is_some_and(|c| c != '\n') {
                    self.i += 1;
                }
                let line: String = self.c[start..self.i].iter().collect();
                let at_end = self.peek().is_none();
                self.i = (self.i + 1).min(self.c.len());
                let cmp = if strip { line.trim_start_matches('\t') } else { line.as_str() };
                if cmp == delim {
                    break;
                }
                body.push_str(&line);
                body.push('\n');
                if at_end {
                    out.malformed = true;
                    break;
                }
            }
            if expands {
                let mut sub = Parser { c: body.chars().collect(), i: 0, depth: self.depth, heredocs: Vec::new() };
                let mut b = Buf::default();
                sub.dquote(st, out, &mut b, None);
            }
        }
    }

    /// One word at the current position.
    fn word(&mut self, st: &mut State, out: &mut Script) -> Buf {
        let mut b = Buf::default();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some('\n') => self.i += 1,
                        Some(n) => {
                            self.i += 1;
                            b.push(n);
                            b.quoted = true;
                        }
                        None => {}
                    }
                }
                '\'' => {
                    self.i += 1;
                    b.quoted = true;
                    let mut closed = false;
                    while let Some(n) = self.peek() {
                        self.i += 1;
                        if n == '\'' {
                            closed = true;
                            break;
                        }
                        b.push(n);
                    }
                    if !closed {
                        out.malformed = true;
                    }
                }
                '"' => {
                    self.i += 1;
                    b.quoted = true;
                    self.dquote(st, out, &mut b, Some('"'));
                }
                '$' => self.dollar(st, out, &mut b, false),
                '`' => self.backquote(st, out, &mut b, false),
                '*' | '?' | '[' => {
                    self.i += 1;
                    b.w.glob = true;
                    b.push(c);
                }
                '=' => {
                    self.i += 1;
                    if b.eq_at.is_none() && !b.quoted && !b.w.unknown && is_name(&b.w.text) {
                        b.eq_at = Some(b.w.text.len());
                    }
                    b.push(c);
                }
                _ => {
                    self.i += 1;
                    b.push(c);
                }
            }
        }
        b
    }

    /// Inside double quotes (or a here-document body when `term` is none).
    fn dquote(&mut self, st: &mut State, out: &mut Script, b: &mut Buf, term: Option<char>) {
        loop {
            let Some(c) = self.peek() else {
                if term.is_some() {
                    out.malformed = true;
                }
                return;
            };
            if Some(c) == term {
                self.i += 1;
                return;
            }
            match c {
                '\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some('\n') => self.i += 1,
                        Some(n @ ('$' | '`' | '"' | '\\')) => {
                            self.i += 1;
                            b.push(n);
                        }
                        Some(n) => {
                            self.i += 1;
                            b.push('\\');
                            b.push(n);
                        }
                        None => b.push('\\'),
                    }
                }
                '$' => self.dollar(st, out, b, true),
                '`' => self.backquote(st, out, b, true),
                _ => {
                    self.i += 1;
                    b.push(c);
                }
            }
        }
    }

    /// A command's words are complete: assignments, keywords, field
    /// splitting, then the command and what it wraps.
    fn finish(&mut self, st: &mut State, out: &mut Script, mut cmd: Command, raw: Vec<Buf>) {
        let mut words: Vec<Word> = Vec::new();
        let mut leading = true;
        for b in raw {
            if leading && let Some(eq) = b.eq_at {
                let name = b.w.text[..eq].to_owned();
                let mut value = b.w.clone();
                value.text = b.w.text[eq + 1..].replace(SPLIT, " ");
                value.known_from = b.w.known_from.saturating_sub(eq + 1);
                cmd.assigns.push((name, value));
                continue;
            }
            leading = false;
            split_into(&mut words, b);
        }
        // Reserved words that start a command do not name one.
        while words.first().is_some_and(|w| {
            !w.unknown
                && matches!(
                    w.text.as_str(),
                    "if" | "then"
                        | "else"
                        | "elif"
                        | "do"
                        | "while"
                        | "until"
                        | "!"
                        | "{"
                        | "}"
                        | "fi"
                        | "done"
                        | "esac"
                        | "time"
                        | "coproc"
                )
        }) {
            words.remove(0);
        }
        if let Some(w) = words.first().filter(|w| !w.unknown)
            && matches!(w.text.as_str(), "for" | "select" | "case" | "function")
        {
            if let Some(v) = words.get(1).filter(|_| w.text != "case" && w.text != "function") {
                st.forget(&v.text.clone());
            }
            words.clear();
        }
        for (name, value) in &cmd.assigns {
            st.set(name, value);
        }
        if let Some(name) = words.first().filter(|w| !w.unknown).map(|w| w.text.clone()) {
            match name.as_str() {
                "export" | "declare" | "typeset" | "local" | "readonly" => {
                    for w in &words[1..] {
                        if let Some((n, v)) = w.text.split_once('=').filter(|(n, _)| is_name(n)) {
                            let mut val = w.clone();
                            val.text = v.to_owned();
                            val.known_from = w.known_from.saturating_sub(n.len() + 1);
                            st.set(n, &val);
                        }
                    }
                }
                "unset" => {
                    for w in &words[1..] {
                        st.set(&w.text, &Word::default());
                    }
                }
                "read" | "mapfile" | "readarray" | "getopts" | "printf" => {
                    for w in &words[1..] {
                        if is_name(&w.text) {
                            st.forget(&w.text);
                        }
                    }
                }
                _ => {}
            }
        }
        if words.is_empty() && cmd.redirects.is_empty() {
            return;
        }
        cmd.words = words;
        let inner = cmd.clone();
        out.commands.push(cmd);
        wrappers::unwrap(inner, out, self.depth, &mut |text, out, depth| parse_into(text, st, out, depth));
    }
}

/// Splits a word at unquoted expansions' blanks.
fn split_into(words: &mut Vec<Word>, b: Buf) {
    if !b.w.text.contains(SPLIT) {
        words.push(b.w);
        return;
    }
    let mut offset = 0;
    for part in b.w.text.split(SPLIT) {
        let start = offset;
        offset += part.len() + 1;
        if part.is_empty() {
            continue;
        }
        let known_from = b.w.known_from.saturating_sub(start).min(part.len());
        let unknown = b.w.unknown && b.w.known_from > start;
        words.push(Word {
            text: part.to_owned(),
            unknown,
            known_from: if unknown { known_from } else { 0 },
            glob: b.w.glob,
        });
    }
}
