//! Reading a server's line only as far as routing needs: its envelope.
//!
//! The client → server direction is validated whole ([`crate::envelope`]):
//! it carries what Latch decides on. The server → client direction carries
//! results the client parses itself, and validating a 1 MiB result as JSON
//! was most of the shim's cost on it. Here the top-level object is walked
//! structurally instead: strings are skipped with `memchr` (their end is
//! the first unescaped quote), brackets are matched, and only the parts
//! the shim acts on are parsed strictly: `id`, `method`, the `params` of a
//! progress notification, and from a `result` object its `isError`,
//! `tools`, `resultType` and `requestState`.
//!
//! What is still refused (the line is not relayed): anything that is not
//! one JSON object with matched brackets and closed strings, trailing
//! bytes after it, a duplicate envelope key (`id`, `result` … also when
//! spelled with escapes), a key that folds to one ([`crate::fold`]), a
//! duplicate `result.resultType` or `result.requestState`, and a routed
//! field that is not valid JSON. So the shim and the client never disagree
//! about which request a result answers. What is not checked any more:
//! the UTF-8 and the scalar syntax inside values the shim does not read:
//! the client's own parser sees those, and the server could put anything
//! it likes into a well-formed result anyway.

use serde_json::value::RawValue;

use crate::envelope::{self, Envelope, Line, Params, ResultPeek};
use crate::fold;

/// Why a server's line was not relayed.
#[derive(Debug, thiserror::Error)]
pub enum PeekError {
    #[error("not one JSON object: {0}")]
    Structure(&'static str),
    #[error("ambiguous message: {0}")]
    Ambiguous(String),
    #[error("a routed field is not JSON: {0}")]
    Field(serde_json::Error),
    #[error("{0}")]
    Batch(envelope::ParseError),
}

/// A server's line, classified.
// Read on the stack once per line and never stored, like `envelope::Line`.
#[allow(clippy::large_enum_variant)]
pub enum Peeked<'a> {
    One(Envelope<'a>),
    Batch(Vec<&'a RawValue>),
}

/// A refused line. `id` is set when the line had exactly one `id` before
/// the point it was refused (so a request waiting for it can be answered).
pub struct Refused<'a> {
    pub error: PeekError,
    pub id: Option<&'a RawValue>,
}

/// Deepest nesting skipped (the strict reader stops at 128): the brackets
/// still open are kept, so memory stays small whatever the line.
const MAX_DEPTH: usize = 1024;

/// Why a blank line was refused.
pub const BLANK: &str = "a blank line";

/// Reads a server's line.
pub fn server_line(line: &[u8]) -> Result<Peeked<'_>, Refused<'_>> {
    let mut s = Scan { b: line, i: 0 };
    s.ws();
    match s.peek() {
        // Batches left the protocol: the strict reader is fine for them.
        Some(b'[') => match envelope::parse(line) {
            Ok(Line::Batch(items)) => Ok(Peeked::Batch(items)),
            Ok(Line::One(_)) => unreachable!("starts with ["),
            Err(e) => Err(Refused { error: PeekError::Batch(e), id: None }),
        },
        Some(b'{') => {
            let mut env = Envelope::default();
            match object(&mut s, &mut env) {
                Ok(()) => Ok(Peeked::One(env)),
                Err(error) => Err(Refused { error, id: env.id }),
            }
        }
        None => Err(Refused { error: PeekError::Structure(BLANK), id: None }),
        _ => Err(Refused { error: PeekError::Structure("expected an object"), id: None }),
    }
}

fn object<'a>(s: &mut Scan<'a>, env: &mut Envelope<'a>) -> Result<(), PeekError> {
    let mut jsonrpc = false;
    let mut params: Option<&'a [u8]> = None;
    s.i += 1;
    let mut first = true;
    loop {
        s.ws();
        match s.peek() {
            Some(b'}') if first => {
                s.i += 1;
                break;
            }
            Some(b'"') => {}
            _ => return Err(PeekError::Structure("expected a key")),
        }
        first = false;
        let key = s.key()?;
        s.ws();
        if s.peek() != Some(b':') {
            return Err(PeekError::Structure("expected ':'"));
        }
        s.i += 1;
        s.ws();
        let dup = |k: &str| PeekError::Ambiguous(format!("duplicate `{k}` field"));
        match key.as_str() {
            "jsonrpc" => {
                if std::mem::replace(&mut jsonrpc, true) {
                    return Err(dup("jsonrpc"));
                }
                s.skip_value()?;
            }
            "id" => {
                if env.id.is_some() {
                    return Err(dup("id"));
                }
                env.id = Some(raw(s.value()?)?);
            }
            "method" => {
                if env.method.is_some() {
                    return Err(dup("method"));
                }
                env.method = Some(raw(s.value()?)?);
            }
            "params" => {
                if params.is_some() {
                    return Err(dup("params"));
                }
                params = Some(s.value()?);
            }
            "result" => {
                if env.result.is_some() {
                    return Err(dup("result"));
                }
                env.result = Some(result(s)?);
            }
            "error" => {
                if std::mem::replace(&mut env.has_error, true) {
                    return Err(dup("error"));
                }
                s.skip_value()?;
            }
            other => {
                if let Some(routed) = fold::other_spelling_of(other) {
                    return Err(PeekError::Ambiguous(format!("key {other:?} is another spelling of `{routed}`")));
                }
                s.skip_value()?;
            }
        }
        s.ws();
        match s.next() {
            Some(b',') => {}
            Some(b'}') => break,
            _ => return Err(PeekError::Structure("expected ',' or '}'")),
        }
    }
    s.ws();
    if s.i != s.b.len() {
        return Err(PeekError::Structure("trailing bytes after the object"));
    }
    if let Some(p) = params {
        // Only a progress notification's params are read (to shift them);
        // the rest are the client's business.
        if env.id.is_none() && env.method.is_some_and(|m| m.get() == r#""notifications/progress""#) {
            let text = std::str::from_utf8(p).map_err(|_| PeekError::Structure("invalid UTF-8 in params"))?;
            env.params = Some(serde_json::from_str::<Params<'a>>(text).map_err(PeekError::Field)?);
        } else {
            env.params = Some(Params::default());
        }
    }
    Ok(())
}

/// A `result`: its keys are read one level down, their values skipped but
/// for the few the shim acts on.
fn result<'a>(s: &mut Scan<'a>) -> Result<ResultPeek<'a>, PeekError> {
    let mut r = ResultPeek::default();
    let mut is_error_seen = false;
    if s.peek() != Some(b'{') {
        s.skip_value()?;
        return Ok(r);
    }
    s.i += 1;
    let mut first = true;
    loop {
        s.ws();
        match s.peek() {
            Some(b'}') if first => {
                s.i += 1;
                return Ok(r);
            }
            Some(b'"') => {}
            _ => return Err(PeekError::Structure("expected a key")),
        }
        first = false;
        let key = s.key()?;
        s.ws();
        if s.next() != Some(b':') {
            return Err(PeekError::Structure("expected ':'"));
        }
        s.ws();
        let dup = |k: &str| PeekError::Ambiguous(format!("duplicate `result.{k}` field"));
        match key.as_str() {
            "isError" => {
                if std::mem::replace(&mut is_error_seen, true) {
                    return Err(dup("isError"));
                }
                r.is_error = raw(s.value()?)?.get() == "true";
            }
            "tools" => {
                if r.tools.is_some() {
                    return Err(dup("tools"));
                }
                r.tools = Some(raw(s.value()?)?);
            }
            "resultType" => {
                if r.result_type.is_some() {
                    return Err(dup("resultType"));
                }
                r.result_type = Some(raw(s.value()?)?);
            }
            "requestState" => {
                if r.request_state.is_some() {
                    return Err(dup("requestState"));
                }
                r.request_state = Some(raw(s.value()?)?);
            }
            _ => s.skip_value()?,
        }
        s.ws();
        match s.next() {
            Some(b',') => {}
            Some(b'}') => return Ok(r),
            _ => return Err(PeekError::Structure("expected ',' or '}'")),
        }
    }
}

/// A routed value, parsed strictly.
fn raw(bytes: &[u8]) -> Result<&RawValue, PeekError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PeekError::Structure("invalid UTF-8 in a routed field"))?;
    serde_json::from_str(text).map_err(PeekError::Field)
}

/// The end (past the closing quote) of the string whose opening quote is at
/// `open`; `None` when it does not end. The string ends at the first quote
/// not escaped: a backslash always escapes the byte after it. Sparse text is
/// crossed with `memchr`; where quotes and backslashes are dense (JSON
/// inside a text), a byte loop is cheaper than a search per hit, and is used
/// until 32 plain bytes pass.
pub(crate) fn string_end(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        let mut plain = 0;
        while plain < 32 {
            match *b.get(i)? {
                b'"' => return Some(i + 1),
                b'\\' => {
                    i += 2;
                    plain = 0;
                }
                _ => {
                    i += 1;
                    plain += 1;
                }
            }
        }
        i += memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..])?;
    }
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    /// Skips a string whose opening quote is at `i`; `i` ends past the
    /// closing quote.
    fn string(&mut self) -> Result<(), PeekError> {
        self.i = string_end(self.b, self.i).ok_or(PeekError::Structure("unterminated string"))?;
        Ok(())
    }

    /// A key, decoded (an escaped spelling of `id` is `id`).
    fn key(&mut self) -> Result<Key<'a>, PeekError> {
        let start = self.i;
        self.string()?;
        let quoted = &self.b[start..self.i];
        let escaped = memchr::memchr(b'\\', quoted).is_some();
        let text = std::str::from_utf8(quoted).map_err(|_| PeekError::Structure("invalid UTF-8 in a key"))?;
        if escaped {
            serde_json::from_str::<String>(text).map(Key::Owned).map_err(PeekError::Field)
        } else {
            Ok(Key::Borrowed(&text[1..text.len() - 1]))
        }
    }

    /// Skips one value and returns its bytes.
    fn value(&mut self) -> Result<&'a [u8], PeekError> {
        let start = self.i;
        self.skip_value()?;
        Ok(&self.b[start..self.i])
    }

    /// Skips one value: strings to their closing quote, objects and arrays
    /// to their matching bracket, scalars to the next delimiter.
    fn skip_value(&mut self) -> Result<(), PeekError> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(PeekError::Structure("unexpected end of line"));
            };
            match c {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    if open.len() == MAX_DEPTH {
                        return Err(PeekError::Structure("nested deeper than 1,024 levels"));
                    }
                    open.push(c);
                    self.i += 1;
                }
                b'}' | b']' => {
                    let want = if c == b'}' { b'{' } else { b'[' };
                    match open.pop() {
                        Some(o) if o == want => self.i += 1,
                        // The enclosing value's end: this value was a scalar.
                        None => return self.scalar_ended(),
                        Some(_) => return Err(PeekError::Structure("mismatched brackets")),
                    }
                }
                b',' | b':' if !open.is_empty() => self.i += 1,
                b',' => return self.scalar_ended(),
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.i += 1;
                    continue;
                }
                b':' => return Err(PeekError::Structure("unexpected ':'")),
                _ => {
                    // A scalar's bytes (numbers, true, false, null).
                    while self.peek().is_some_and(|c| !b"\"{}[],: \t\r\n".contains(&c)) {
                        self.i += 1;
                    }
                    if open.is_empty() {
                        return Ok(());
                    }
                    continue;
                }
            }
            if open.is_empty() {
                return Ok(());
            }
        }
    }

    /// A delimiter met before any value.
    fn scalar_ended(&self) -> Result<(), PeekError> {
        Err(PeekError::Structure("expected a value"))
    }
}

enum Key<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(k) => k,
            Key::Owned(k) => k,
        }
    }
}

#[cfg(test)]
mod tests;
