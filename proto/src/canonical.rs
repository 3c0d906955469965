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

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical bytes of a JSON value.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_value(value, &mut out);
    out
}

/// SHA-256 of the canonical form, lower-case hex.
pub fn hash(value: &Value) -> String {
    hex(&Sha256::digest(canonical(value)))
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(&map[key], out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json escapes exactly the RFC 8785 set, with lower-case hex.
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    use std::io::Write;
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
        out.push(b'0'); // -0 prints as 0
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
            _ => out.extend_from_slice(s.as_bytes()),
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
}
