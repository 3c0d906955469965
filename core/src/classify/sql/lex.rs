//! A SQL lexer for several dialects' quoting rules, enough to split a text
//! into statements and see their words without being fooled by quotes.
//!
//! Dialects disagree on what ends a string or a comment (`'\''` is a
//! complete string in PostgreSQL and SQLite, an escaped quote in MySQL;
//! `/* /* */` ends a comment in MySQL, not in PostgreSQL; `#` starts a
//! comment in MySQL and is an operator in PostgreSQL). Each [`Reading`] is
//! one set of rules; the caller lexes the text under every reading and
//! keeps the most dangerous result, so text hidden from one reading is seen
//! by the other.

/// One dialect's lexical rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reading {
    pub name: &'static str,
    /// `\` escapes the next character in `'…'` and `"…"` (MySQL, PostgreSQL
    /// with `standard_conforming_strings` off, Snowflake, BigQuery).
    pub backslash: bool,
    /// `E'…'` strings with backslash escapes (PostgreSQL).
    pub e_strings: bool,
    /// Dollar quotes: tagged `$tag$…$tag$` (PostgreSQL), only `$$…$$`
    /// (Snowflake), or none.
    pub dollar: Dollar,
    /// `#` starts a line comment (MySQL, BigQuery).
    pub hash_comment: bool,
    /// `//` starts a line comment (Snowflake).
    pub slash_comment: bool,
    /// `--` is a comment only when a space or control character follows
    /// (MySQL); otherwise `--` always is.
    pub dash_needs_space: bool,
    /// `/* */` comments nest (PostgreSQL).
    pub nested_comments: bool,
    /// `/*! … */` and `/*M! … */` are code, not comments (MySQL, MariaDB).
    pub executable_comments: bool,
    /// `[…]` is a quoted identifier (SQL Server, SQLite).
    pub brackets: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dollar {
    None,
    Untagged,
    Tagged,
}

/// The readings every text is lexed under.
pub(crate) const READINGS: &[Reading] = &[
    Reading {
        name: "PostgreSQL",
        backslash: false,
        e_strings: true,
        dollar: Dollar::Tagged,
        hash_comment: false,
        slash_comment: false,
        dash_needs_space: false,
        nested_comments: true,
        executable_comments: false,
        brackets: false,
    },
    Reading {
        name: "PostgreSQL with backslash escapes",
        backslash: true,
        e_strings: true,
        dollar: Dollar::Tagged,
        hash_comment: false,
        slash_comment: false,
        dash_needs_space: false,
        nested_comments: true,
        executable_comments: false,
        brackets: false,
    },
    Reading {
        name: "MySQL",
        backslash: true,
        e_strings: false,
        dollar: Dollar::None,
        hash_comment: true,
        slash_comment: false,
        dash_needs_space: true,
        nested_comments: false,
        executable_comments: true,
        brackets: false,
    },
    Reading {
        name: "SQLite / SQL Server",
        backslash: false,
        e_strings: false,
        dollar: Dollar::None,
        hash_comment: false,
        slash_comment: false,
        dash_needs_space: false,
        nested_comments: false,
        executable_comments: false,
        brackets: true,
    },
    Reading {
        name: "Snowflake / BigQuery",
        backslash: true,
        e_strings: false,
        dollar: Dollar::Untagged,
        hash_comment: true,
        slash_comment: true,
        dash_needs_space: false,
        nested_comments: false,
        executable_comments: false,
        brackets: false,
    },
];

/// A token that matters for judging a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// An unquoted word (keyword or identifier).
    Word(&'a str),
    /// The inside of a quoted identifier (`"x"`, `` `x` ``, `[x]`).
    Quoted(&'a str),
    /// A string literal (its text does not matter).
    Str,
    Num,
    Punct(u8),
}

/// One statement: its tokens, and whether the lexer could read it to the
/// end (an unterminated string, comment or quote makes it unreadable).
#[derive(Debug, Default)]
pub(crate) struct Statement<'a> {
    pub toks: Vec<Tok<'a>>,
    pub broken: bool,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Splits `text` into statements on `;` outside strings, quotes and
/// comments, under one reading. Empty statements are dropped.
pub(crate) fn statements<'a>(text: &'a str, r: &Reading) -> Vec<Statement<'a>> {
    let b = text.as_bytes();
    let n = b.len();
    let mut out = Vec::new();
    let mut cur = Statement::default();
    // Inside a MySQL `/*! … */`: its `*/` is skipped.
    let mut in_exec_comment = false;
    let mut i = 0;
    while i < n {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && next == Some(b'-') {
            let follows = b.get(i + 2).copied();
            if !r.dash_needs_space || follows.is_none_or(|f| f <= b' ') {
                i = line_end(b, i);
            } else {
                cur.toks.push(Tok::Punct(c));
                i += 1;
            }
        } else if (c == b'#' && r.hash_comment) || (c == b'/' && next == Some(b'/') && r.slash_comment) {
            i = line_end(b, i);
        } else if c == b'/' && next == Some(b'*') {
            if r.executable_comments && (b.get(i + 2) == Some(&b'!') || b[i + 2..].starts_with(b"M!")) {
                // Executable comment: the marker and a version number are
                // skipped and what follows is code.
                i += if b[i + 2] == b'!' { 3 } else { 4 };
                while i < n && b[i].is_ascii_digit() {
                    i += 1;
                }
                in_exec_comment = true;
            } else {
                match block_comment_end(b, i, r.nested_comments) {
                    Some(end) => i = end,
                    None => {
                        cur.broken = true;
                        i = n;
                    }
                }
            }
        } else if c == b'*' && next == Some(b'/') && in_exec_comment {
            in_exec_comment = false;
            i += 2;
        } else if c == b'\'' {
            i = quoted(b, i, b'\'', r.backslash, &mut cur).1;
            cur.toks.push(Tok::Str);
        } else if c == b'"' || c == b'`' || (c == b'[' && r.brackets) {
            let (close, bs) = match c {
                b'"' => (b'"', r.backslash),
                b'`' => (b'`', false),
                _ => (b']', false),
            };
            let (end, after) = quoted(b, i, close, bs, &mut cur);
            cur.toks.push(Tok::Quoted(&text[i + 1..end]));
            i = after;
        } else if let Some(tag_len) = (c == b'$').then(|| dollar_tag(b, i, r.dollar)).flatten() {
            // `str::find` is linear whatever the tag.
            let tag = &text[i..i + tag_len];
            match text[i + tag_len..].find(tag) {
                Some(at) => i += tag_len + at + tag_len,
                None => {
                    cur.broken = true;
                    i = n;
                }
            }
            cur.toks.push(Tok::Str);
        } else if (c == b'e' || c == b'E') && next == Some(b'\'') && r.e_strings {
            i = quoted(b, i + 1, b'\'', true, &mut cur).1;
            cur.toks.push(Tok::Str);
        } else if is_ident_start(c) {
            let start = i;
            while i < n && is_ident_byte(b[i]) {
                i += 1;
            }
            // Byte classes keep UTF-8 sequences whole: every byte ≥ 0x80
            // belongs to the word.
            cur.toks.push(Tok::Word(&text[start..i]));
        } else if c.is_ascii_digit() {
            while i < n && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            cur.toks.push(Tok::Num);
        } else if c == b';' {
            if !cur.toks.is_empty() || cur.broken {
                out.push(std::mem::take(&mut cur));
            }
            i += 1;
        } else {
            cur.toks.push(Tok::Punct(c));
            i += 1;
        }
    }
    if in_exec_comment {
        // An executable comment never closed: MySQL refuses it, but it
        // is not text we read with confidence.
        cur.broken = true;
    }
    if !cur.toks.is_empty() || cur.broken {
        out.push(cur);
    }
    out
}

fn line_end(b: &[u8], from: usize) -> usize {
    b[from..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| from + p + 1)
}

/// The index just past the `*/` that closes the comment opened at `open`.
fn block_comment_end(b: &[u8], open: usize, nested: bool) -> Option<usize> {
    let mut depth = 1usize;
    let mut i = open + 2;
    while i + 1 < b.len() {
        if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else if nested && b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    None
}

/// Reads a quoted run opened at `open` by `q` (closed by `close`, which
/// is `q` except for `[`…`]`); a doubled closing quote stands for itself,
/// and with `backslash` a `\` escapes the next byte. Returns where the
/// content ends and the index past the closing quote; an unterminated run
/// marks the statement broken and runs to the end.
fn quoted(b: &[u8], open: usize, close: u8, backslash: bool, cur: &mut Statement<'_>) -> (usize, usize) {
    let mut i = open + 1;
    while i < b.len() {
        let c = b[i];
        if backslash && c == b'\\' {
            i += 2;
        } else if c == close {
            if b.get(i + 1) == Some(&close) {
                i += 2;
            } else {
                return (i, i + 1);
            }
        } else {
            i += 1;
        }
    }
    cur.broken = true;
    (b.len(), b.len())
}

/// The length of a dollar-quote delimiter starting at `at` (`$$` or
/// `$tag$`), if one starts there and not in the middle of a word.
fn dollar_tag(b: &[u8], at: usize, mode: Dollar) -> Option<usize> {
    if mode == Dollar::None || (at > 0 && is_ident_byte(b[at - 1])) {
        return None;
    }
    if b.get(at + 1) == Some(&b'$') {
        return Some(2);
    }
    if mode != Dollar::Tagged || !b.get(at + 1).is_some_and(|&c| is_ident_start(c)) {
        return None;
    }
    let mut i = at + 1;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
        i += 1;
    }
    (b.get(i) == Some(&b'$')).then_some(i + 1 - at)
}
