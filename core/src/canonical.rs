//! The canonical form of tool arguments, and its hash.
//!
//! Grants are bound to a hash of the call's arguments, so two calls that mean
//! the same thing must hash the same, and any change must not. The form is
//! RFC 8785 (JSON Canonicalization Scheme):
//!
//! * object keys sorted by their UTF-16 code units, at every level;
//! * no insignificant whitespace;
//! * strings with the minimal escapes (`\"`, `\\`, `\b \f \n \r \t`, other
//!   control characters as `\u00xx`), everything else as UTF-8 — so
//!   `"\u0041"` and `"A"` are the same string;
//! * numbers as ECMAScript prints them (`1.0`, `1e0` and `1` are all `1`;
//!   `1e21` is `1e+21`; `1.5e-7` stays `1.5e-7`).
//!
//! One deliberate difference from RFC 8785: integers beyond 2^53 are kept
//! exact rather than rounded through a double, so two different large ids
//! never share a hash.
//!
//! The hash is SHA-256 of the canonical bytes, in lower-case hex.

use std::io::Write;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical bytes of a JSON value.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_value(value, &mut out);
    out
}

/// SHA-256 of the canonical form, lower-case hex. The canonical bytes are
/// streamed into the hash, never held whole: a 1 MiB argument costs no
/// 1 MiB buffer.
pub fn hash(value: &Value) -> String {
    let mut sink = HashSink(Sha256::new());
    write_value(value, &mut sink);
    hex(&sink.0.finalize())
}

/// Feeds written bytes to a hash (which buffers its own blocks).
struct HashSink(Sha256);

impl Write for HashSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX_DIGITS[(b >> 4) as usize] as char);
        s.push(HEX_DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Whether `value` may have lost digits when it was parsed: serde_json
/// reads an integer beyond 64 bits as a double, so 2^64 + 1 and 2^64 arrive
/// as the same number. Such a value must be hashed from its text
/// ([`hash_raw`]).
pub fn lossy(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.as_i64().is_none() && n.as_u64().is_none() && n.as_f64().is_some_and(|f| f.abs() >= 9.0e18)
        }
        Value::Array(items) => items.iter().any(lossy),
        Value::Object(map) => map.values().any(lossy),
        _ => false,
    }
}

/// SHA-256 of the canonical form of a JSON text, keeping every digit of
/// its integers: the same as [`hash`] of the parsed value, except that an
/// integer literal beyond 64 bits is written digit for digit instead of
/// through a double. `None` when `raw` is not one JSON value.
pub fn hash_raw(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut p = RawReader { s: raw.as_bytes(), i: 0 };
    p.value(&mut out, 0)?;
    p.ws();
    (p.i == p.s.len()).then(|| hex(&Sha256::digest(&out)))
}

/// Most nesting [`hash_raw`] follows (serde_json's own limit is 128).
const MAX_DEPTH: usize = 256;

/// A reader of JSON text that writes its canonical form.
struct RawReader<'a> {
    s: &'a [u8],
    i: usize,
}

impl RawReader<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut members: Vec<(String, Vec<u8>)> = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        let mut v = Vec::new();
                        self.value(&mut v, depth + 1)?;
                        members.push((key, v));
                        if self.eat(b',') {
                            continue;
                        }
                        if self.eat(b'}') {
                            break;
                        }
                        return None;
                    }
                }
                // A repeated key: the last one counts, as serde_json reads it.
                members.reverse();
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                members.dedup_by(|later, first| later.0 == first.0);
                put(out, b"{");
                for (n, (k, v)) in members.iter().enumerate() {
                    if n > 0 {
                        put(out, b",");
                    }
                    write_string(k, out);
                    put(out, b":");
                    put(out, v);
                }
                put(out, b"}");
            }
            b'[' => {
                self.i += 1;
                put(out, b"[");
                if !self.eat(b']') {
                    let mut first = true;
                    loop {
                        if !first {
                            put(out, b",");
                        }
                        first = false;
                        self.value(out, depth + 1)?;
                        if self.eat(b',') {
                            continue;
                        }
                        if self.eat(b']') {
                            break;
                        }
                        return None;
                    }
                }
                put(out, b"]");
            }
            b'"' => {
                let s = self.string()?;
                write_string(&s, out);
            }
            b't' => self.literal(b"true", out)?,
            b'f' => self.literal(b"false", out)?,
            b'n' => self.literal(b"null", out)?,
            _ => self.number(out)?,
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if self.s.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        put(out, word);
        Some(())
    }

    fn string(&mut self) -> Option<String> {
        let start = self.i;
        if self.s.get(start) != Some(&b'"') {
            return None;
        }
        let mut i = start + 1;
        loop {
            match *self.s.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        self.i = i + 1;
        serde_json::from_slice(&self.s[start..=i]).ok()
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        let n: serde_json::Number = serde_json::from_str(text).ok()?;
        let integer = !text.contains(['.', 'e', 'E']);
        // `-0` is an integer literal that no 64-bit integer holds either,
        // but it is the double -0.0 and prints as `0`: only magnitudes
        // beyond 64 bits keep their text (as in [`lossy`]).
        if integer && n.as_i64().is_none() && n.as_u64().is_none() && n.as_f64().is_some_and(|f| f.abs() >= 9.0e18) {
            // Beyond 64 bits: every digit, as written (JSON allows no
            // leading zeros, so the text is already minimal).
            put(out, text.as_bytes());
        } else {
            write_number(&n, out);
        }
        Some(())
    }
}

// Writes to a `Vec` or a hash cannot fail; their results are ignored.
fn write_value<W: Write>(value: &Value, out: &mut W) {
    match value {
        Value::Null => put(out, b"null"),
        Value::Bool(true) => put(out, b"true"),
        Value::Bool(false) => put(out, b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            put(out, b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    put(out, b",");
                }
                write_value(item, out);
            }
            put(out, b"]");
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            put(out, b"{");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    put(out, b",");
                }
                write_string(key, out);
                put(out, b":");
                write_value(&map[key], out);
            }
            put(out, b"}");
        }
    }
}

fn put<W: Write>(out: &mut W, bytes: &[u8]) {
    let _ = out.write_all(bytes);
}

/// A string with the RFC 8785 escapes (the same bytes serde_json writes).
/// Runs without anything to escape are found 32 bytes at a time and
/// written whole: a 1 MiB argument is hashed at the speed of SHA-256, not
/// of a byte-by-byte escaper.
fn write_string<W: Write>(s: &str, out: &mut W) {
    const BLOCK: usize = 32;
    let bytes = s.as_bytes();
    put(out, b"\"");
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        // No early exit inside a block, so the check vectorises.
        while let Some(block) = bytes.get(i..i + BLOCK)
            && !block.iter().fold(false, |hit, &b| hit | needs_escape(b))
        {
            i += BLOCK;
        }
        // A block with something to escape (or the tail): byte by byte.
        let end = (i + BLOCK).min(bytes.len());
        for (at, &b) in bytes.iter().enumerate().take(end).skip(i) {
            if needs_escape(b) {
                put(out, &bytes[start..at]);
                start = at + 1;
                escape(b, out);
            }
        }
        i = end;
    }
    put(out, &bytes[start..]);
    put(out, b"\"");
}

fn escape<W: Write>(b: u8, out: &mut W) {
    match b {
        b'"' => put(out, b"\\\""),
        b'\\' => put(out, b"\\\\"),
        0x08 => put(out, b"\\b"),
        0x0c => put(out, b"\\f"),
        b'\n' => put(out, b"\\n"),
        b'\r' => put(out, b"\\r"),
        b'\t' => put(out, b"\\t"),
        _ => put(out, &[b'\\', b'u', b'0', b'0', HEX_DIGITS[(b >> 4) as usize], HEX_DIGITS[(b & 15) as usize]]),
    }
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn write_number<W: Write>(n: &serde_json::Number, out: &mut W) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
        return;
    }
    if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
        return;
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        put(out, b"0"); // -0 prints as 0
        return;
    }
    let abs = f.abs();
    if f.fract() == 0.0 && abs < 1e21 {
        let _ = write!(out, "{}", f as i128);
    } else if (1e-6..1e21).contains(&abs) {
        let _ = write!(out, "{f}");
    } else {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => {
                let _ = write!(out, "{mantissa}e+{exp}");
            }
            _ => put(out, s.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(text: &str) -> String {
        String::from_utf8(canonical(&serde_json::from_str(text).unwrap())).unwrap()
    }

    #[test]
    fn keys_are_sorted_at_every_level() {
        assert_eq!(c(r#"{"b":1,"a":{"d":[{"z":1,"y":2}],"c":0}}"#), r#"{"a":{"c":0,"d":[{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+10000 is a surrogate pair (0xD800…) and sorts before U+FB33.
        assert_eq!(c("{\"\u{fb33}\":1,\"\u{10000}\":2}"), "{\"\u{10000}\":2,\"\u{fb33}\":1}");
    }

    #[test]
    fn numbers_print_as_ecmascript_does() {
        assert_eq!(c("[1.0, 1e0, 1, -0.0, 100e-2, 1e21, 1.5e-7, 0.000001]"), "[1,1,1,0,1,1e+21,1.5e-7,0.000001]");
        assert_eq!(c("[9007199254740993, -5]"), "[9007199254740993,-5]");
    }

    /// Found by the `canonical` fuzz target: `hash_raw("-0")` hashed the
    /// text `-0` while `hash` of the value hashed `0`.
    #[test]
    fn fuzz_crash_hash_raw_of_negative_zero_is_the_hash_of_zero() {
        for text in ["-0", "[-0]", r#"{"a":-0,"b":18446744073709551617}"#] {
            let v: Value = serde_json::from_str(text).unwrap();
            let zero = text.replace("-0", "0");
            assert_eq!(hash_raw(text), hash_raw(&zero), "{text}");
            if !lossy(&v) {
                assert_eq!(hash_raw(text), Some(hash(&v)), "{text}");
            }
        }
    }

    #[test]
    fn integers_beyond_64_bits_keep_every_digit() {
        let a = r#"{"amount": 18446744073709551617, "to": "x"}"#;
        let b = r#"{"amount": 18446744073709551616, "to": "x"}"#;
        let (va, vb): (Value, Value) = (serde_json::from_str(a).unwrap(), serde_json::from_str(b).unwrap());
        // What serde_json makes of them cannot tell them apart…
        assert_eq!(hash(&va), hash(&vb));
        assert!(lossy(&va) && lossy(&vb));
        // …their text can.
        assert_ne!(hash_raw(a), hash_raw(b));
        for big in ["-340282366920938463463374607431768211457", "100000000000000000000000000000000000001"] {
            let other = big.replace('1', "2");
            assert_ne!(hash_raw(&format!("[{big}]")), hash_raw(&format!("[{other}]")), "{big}");
        }
    }

    #[test]
    fn the_text_hash_is_the_value_hash_when_nothing_was_lost() {
        for text in [
            r#"{"b":[1.5,"x\"y",null,true,false],"a":{"\u00e9":-0.0,"z":1e21,"y":1.5e-7},"c":9007199254740993}"#,
            r#"[ 1 , 1.0 , 1e0 , -5 , 18446744073709551615 , -9223372036854775808, 0.000001, 100e-2 ]"#,
            r#"{"\ud83e\udd80":"\u0041\/\n","\ufb33":1,"\ud800\udc00":2}"#,
            r#"{"a":1,"a":2}"#,
            "{}",
            "[]",
            r#""s""#,
        ] {
            // (1e21 counts as possibly lossy: its text is hashed, to the same result.)
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(hash_raw(text).as_deref(), Some(hash(&v).as_str()), "{text}");
        }
        assert_eq!(hash_raw("[1,"), None);
        assert_eq!(hash_raw("1 2"), None);
    }

    #[test]
    fn escapes_are_normalised() {
        assert_eq!(c(r#""\u0041\/\n\u001f é""#), "\"A/\\n\\u001f é\"");
    }

    #[test]
    fn same_meaning_same_hash_any_change_another() {
        let a = json!({"path": "/tmp/x", "opts": {"a": 1, "b": [true, null]}});
        let b: Value =
            serde_json::from_str(r#"{ "opts" : { "b" : [ true , null ], "a" : 1.0 }, "path":"\/tmp\/x" }"#).unwrap();
        assert_eq!(hash(&a), hash(&b));
        let changed = json!({"path": "/tmp/y", "opts": {"a": 1, "b": [true, null]}});
        assert_ne!(hash(&a), hash(&changed));
        assert_eq!(hash(&a).len(), 64);
    }

    #[test]
    fn streamed_hash_is_the_hash_of_the_canonical_bytes() {
        let v: Value = serde_json::from_str(r#"{"b":[1.5,"x\"y",null],"a":{"\u00e9":true},"big":"%"}"#).unwrap();
        let mut v = v;
        v["big"] = Value::String("z\n".repeat(100_000));
        assert_eq!(hash(&v), hex(&Sha256::digest(canonical(&v))));
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does_at_any_position() {
        // Every ASCII byte, some multi-byte characters, and escapes on
        // both sides of the 32-byte blocks the writer skips.
        let mut cases: Vec<String> = (0u8..0x80).map(|b| (b as char).to_string()).collect();
        cases.push("é漢字🦀\u{7f}\u{2028}".into());
        for at in [0, 1, 30, 31, 32, 33, 63, 64, 65, 95, 200] {
            for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', 'é'] {
                let mut s: String = "abcdefghij".repeat(25);
                s.insert(at, special);
                cases.push(s.clone());
                s.insert(at, special);
                cases.push(s);
            }
        }
        cases.push("\"".repeat(1000));
        cases.push("x".repeat(1 << 20));
        for s in cases {
            let mut ours = Vec::new();
            write_string(&s, &mut ours);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }
}
