//! A JSON / JSONC reader that keeps the byte span of every value.
//!
//! Only what the installer needs: objects (members in file order, duplicate
//! keys kept), arrays, decoded strings, and "something else" for numbers,
//! booleans and null. With `jsonc` on, `//` and `/* */` comments and trailing
//! commas are accepted (VS Code, Cursor, Gemini CLI); without it the grammar is
//! strict JSON, so a file the client itself could not read is reported rather
//! than rewritten. The text is never re-serialised: callers edit byte ranges.

use std::ops::Range;

/// Deepest nesting accepted; config files are shallow.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value's bytes in the text, quotes and brackets included.
    pub span: Range<usize>,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Object(Vec<Member>),
    Array(Vec<Node>),
    String(String),
    /// Number, boolean or null.
    Scalar,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    /// The key's bytes, quotes included.
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Node {
    /// The last member named KEY of an object.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Object(members) => members.iter().rev().find(|m| m.key == key).map(|m| &m.value),
            _ => None,
        }
    }

    pub fn member(&self, key: &str) -> Option<&Member> {
        match &self.kind {
            Kind::Object(members) => members.iter().rev().find(|m| m.key == key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn members(&self) -> &[Member] {
        match &self.kind {
            Kind::Object(members) => members,
            _ => &[],
        }
    }
}

/// Where and why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses TEXT (a UTF-8 byte order mark is skipped). `Ok(None)` for a text
/// that holds only whitespace (and comments, in JSONC).
pub fn parse(text: &str, jsonc: bool) -> Result<Option<Node>, SyntaxError> {
    let mut p = Parser { s: text.as_bytes(), text, i: 0, jsonc };
    if text.starts_with('\u{feff}') {
        p.i = 3;
    }
    p.skip()?;
    if p.i == p.s.len() {
        return Ok(None);
    }
    let node = p.value(0)?;
    p.skip()?;
    if p.i != p.s.len() {
        return Err(p.error(p.i, "text after the end of the JSON value"));
    }
    Ok(Some(node))
}

/// 1-based line and column (in characters) of byte AT.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text.as_bytes()[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    jsonc: bool,
}

impl Parser<'_> {
    fn error(&self, at: usize, message: impl Into<String>) -> SyntaxError {
        let (line, column) = line_col(self.text, at);
        SyntaxError { line, column, message: message.into() }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips whitespace and, in JSONC, comments.
    fn skip(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.i += 1,
                Some(b'/') if self.jsonc => match self.s.get(self.i + 1) {
                    Some(b'/') => {
                        while self.peek().is_some_and(|b| b != b'\n') {
                            self.i += 1;
                        }
                    }
                    Some(b'*') => {
                        let start = self.i;
                        self.i += 2;
                        loop {
                            match self.peek() {
                                None => return Err(self.error(start, "a /* comment is never closed with */")),
                                Some(b'*') if self.s.get(self.i + 1) == Some(&b'/') => {
                                    self.i += 2;
                                    break;
                                }
                                Some(_) => self.i += 1,
                            }
                        }
                    }
                    _ => return Err(self.error(self.i, "unexpected `/`")),
                },
                Some(b'/') => {
                    return Err(self.error(self.i, "comments are not allowed in this file (plain JSON)"));
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error(self.i, "nested too deeply"));
        }
        let start = self.i;
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let s = self.string()?;
                Ok(Node { span: start..self.i, kind: Kind::String(s) })
            }
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            None => Err(self.error(start, "the text ends where a value was expected")),
            Some(_) => Err(self.error(start, "expected a value (object, array, string, number, true, false or null)")),
        }
    }

    fn literal(&mut self, word: &str) -> Result<Node, SyntaxError> {
        let start = self.i;
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(Node { span: start..self.i, kind: Kind::Scalar })
        } else {
            Err(self.error(start, "expected a value (a string needs double quotes)"))
        }
    }

    fn number(&mut self) -> Result<Node, SyntaxError> {
        let start = self.i;
        while self.peek().is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.i += 1;
        }
        let t = &self.text[start..self.i];
        let digits = t.strip_prefix('-').unwrap_or(t);
        let leading_zero = digits.len() > 1 && digits.starts_with('0') && digits.as_bytes()[1].is_ascii_digit();
        if t.parse::<f64>().is_err() || !digits.starts_with(|c: char| c.is_ascii_digit()) || leading_zero {
            return Err(self.error(start, format!("`{t}` is not a number")));
        }
        Ok(Node { span: start..self.i, kind: Kind::Scalar })
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let h = self.s.get(self.i..self.i + 4).and_then(|h| std::str::from_utf8(h).ok());
        let v = h.and_then(|h| u32::from_str_radix(h, 16).ok()).ok_or_else(|| self.error(self.i, "bad \\u escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let run = self.i;
            while self.peek().is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20) {
                self.i += 1;
            }
            out.push_str(&self.text[run..self.i]);
            match self.peek() {
                None => return Err(self.error(start, "a string is never closed")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or_else(|| self.error(start, "a string is never closed"))?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.error(self.i - 2, "unknown escape in a string")),
                    }
                }
                Some(_) => return Err(self.error(self.i, "a control character (a raw line break?) inside a string")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let start = self.i;
        self.i += 1;
        let mut members = Vec::new();
        loop {
            self.skip()?;
            match self.peek() {
                Some(b'}') => {
                    if !members.is_empty() && !self.jsonc && self.s[..self.i].trim_ascii_end().ends_with(b",") {
                        return Err(self.error(self.i, "a trailing comma before `}` (not allowed in plain JSON)"));
                    }
                    self.i += 1;
                    return Ok(Node { span: start..self.i, kind: Kind::Object(members) });
                }
                Some(b'"') => {}
                None => return Err(self.error(start, "an object `{` is never closed")),
                Some(_) => return Err(self.error(self.i, "expected a \"key\" in double quotes or `}`")),
            }
            let key_start = self.i;
            let key = self.string()?;
            let key_span = key_start..self.i;
            self.skip()?;
            if self.peek() != Some(b':') {
                return Err(self.error(self.i, format!("expected `:` after the key \"{key}\"")));
            }
            self.i += 1;
            self.skip()?;
            let value = self.value(depth + 1)?;
            members.push(Member { key, key_span, value });
            self.skip()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                None => return Err(self.error(start, "an object `{` is never closed")),
                Some(_) => return Err(self.error(self.i, "expected `,` or `}` after a member (a comma missing?)")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let start = self.i;
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip()?;
            match self.peek() {
                Some(b']') => {
                    if !items.is_empty() && !self.jsonc && self.s[..self.i].trim_ascii_end().ends_with(b",") {
                        return Err(self.error(self.i, "a trailing comma before `]` (not allowed in plain JSON)"));
                    }
                    self.i += 1;
                    return Ok(Node { span: start..self.i, kind: Kind::Array(items) });
                }
                None => return Err(self.error(start, "an array `[` is never closed")),
                _ => {}
            }
            items.push(self.value(depth + 1)?);
            self.skip()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {}
                None => return Err(self.error(start, "an array `[` is never closed")),
                Some(_) => return Err(self.error(self.i, "expected `,` or `]` after an item (a comma missing?)")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_raw_text_of_each_value() {
        let t = r#"{"a": ["x\"y", 1, true], "b": {"c": null}}"#;
        let n = parse(t, false).unwrap().unwrap();
        let a = n.get("a").unwrap();
        assert_eq!(&t[a.span.clone()], r#"["x\"y", 1, true]"#);
        let Kind::Array(items) = &a.kind else { panic!() };
        assert_eq!(items[0].as_str(), Some("x\"y"));
        assert_eq!(&t[items[0].span.clone()], r#""x\"y""#);
        assert_eq!(&t[n.member("b").unwrap().key_span.clone()], r#""b""#);
    }

    #[test]
    fn jsonc_accepts_comments_and_trailing_commas_plain_json_does_not() {
        let t = "// top\n{ /* a */ \"a\": [1, 2,], // end\n \"b\": 2, }\n";
        assert!(parse(t, true).unwrap().is_some());
        let e = parse(t, false).unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        let e = parse("{\"a\": [1, 2,]}", false).unwrap_err();
        assert!(e.message.contains("trailing comma"), "{e}");
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let e = parse("{\n  \"a\": 1\n  \"b\": 2\n}", false).unwrap_err();
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        let e = parse("{\"a\": \"x", true).unwrap_err();
        assert!(e.message.contains("never closed"), "{e}");
        assert!(parse("{} x", true).is_err());
        assert!(parse("[01]", true).is_err());
        assert!(parse("{\"a\": 'x'}", true).is_err());
    }

    #[test]
    fn unicode_escapes_and_empty_texts() {
        let n = parse(r#"["\u00e9\ud83d\ude00"]"#, false).unwrap().unwrap();
        let Kind::Array(items) = &n.kind else { panic!() };
        assert_eq!(items[0].as_str(), Some("é😀"));
        assert_eq!(parse(" \n// nothing\n", true).unwrap(), None);
        assert_eq!(parse("\u{feff}{}", false).unwrap().unwrap().span, 3..5);
    }
}
