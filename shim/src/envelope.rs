//! Reading a JSON-RPC line just enough to route it.
//!
//! The whole line is validated as one JSON value (so garbage never reaches
//! the other side), but nothing is copied: `id`, `params` and `result` stay
//! raw slices of the line. The envelope's own keys must appear once: a line
//! with two `method` (or `id`, `params` …) fields is ambiguous — the shim
//! and the server might read different ones — and is refused.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

#[derive(Debug, Default)]
pub struct Envelope<'a> {
    pub id: Option<&'a RawValue>,
    pub method: Option<&'a RawValue>,
    pub params: Option<&'a RawValue>,
    pub result: Option<&'a RawValue>,
    pub has_error: bool,
}

impl<'a> Envelope<'a> {
    /// The method name, if this is a request or notification.
    pub fn method(&self) -> Option<String> {
        self.method.and_then(|m| serde_json::from_str::<String>(m.get()).ok())
    }

    /// A request (or a notification when `id` is absent) rather than a
    /// response.
    #[cfg(test)]
    pub fn is_request(&self) -> bool {
        self.method.is_some() && self.id.is_some()
    }

    pub fn is_response(&self) -> bool {
        self.method.is_none() && self.id.is_some() && (self.result.is_some() || self.has_error)
    }
}

/// One line, classified.
pub enum Line<'a> {
    One(Envelope<'a>),
    /// An old-style batch: its raw elements.
    Batch(Vec<&'a RawValue>),
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not one JSON value: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a JSON-RPC message (expected an object or an array)")]
    NotMessage,
}

pub fn parse(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        Some(b'[') => Ok(Line::Batch(serde_json::from_slice(line)?)),
        Some(b'{') => Ok(Line::One(serde_json::from_slice(line)?)),
        Some(_) => {
            // Still reject garbage precisely, with serde's message.
            let _: IgnoredAny = serde_json::from_slice(line)?;
            Err(ParseError::NotMessage)
        }
        None => Err(ParseError::NotMessage),
    }
}

/// Parses one element of a batch.
pub fn parse_element(raw: &RawValue) -> Result<Envelope<'_>, ParseError> {
    if !raw.get().starts_with('{') {
        return Err(ParseError::NotMessage);
    }
    Ok(serde_json::from_str(raw.get())?)
}

impl<'de: 'a, 'a> de::Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Envelope<'a>, M::Error> {
        let mut env = Envelope::default();
        let mut seen_jsonrpc = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            // Escaped spellings of a key ("\u006dethod") arrive decoded, so
            // they count as the same key.
            let k: &str = match &key {
                Key::Borrowed(k) => k,
                Key::Owned(k) => k,
            };
            let dup = |name: &str| de::Error::custom(format!("ambiguous message: duplicate `{name}` field"));
            match k {
                "jsonrpc" => {
                    if seen_jsonrpc {
                        return Err(dup("jsonrpc"));
                    }
                    seen_jsonrpc = true;
                    map.next_value::<IgnoredAny>()?;
                }
                "id" => {
                    if env.id.is_some() {
                        return Err(dup("id"));
                    }
                    env.id = Some(map.next_value()?);
                }
                "method" => {
                    if env.method.is_some() {
                        return Err(dup("method"));
                    }
                    env.method = Some(map.next_value()?);
                }
                "params" => {
                    if env.params.is_some() {
                        return Err(dup("params"));
                    }
                    env.params = Some(map.next_value()?);
                }
                "result" => {
                    if env.result.is_some() {
                        return Err(dup("result"));
                    }
                    env.result = Some(map.next_value()?);
                }
                "error" => {
                    if env.has_error {
                        return Err(dup("error"));
                    }
                    env.has_error = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

/// A map key, borrowed from the line when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Envelope<'_> {
        match parse(s.as_bytes()).unwrap() {
            Line::One(e) => e,
            Line::Batch(_) => panic!("batch"),
        }
    }

    #[test]
    fn routes_requests_notifications_and_responses() {
        let e = one(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x"}}"#);
        assert!(e.is_request());
        assert_eq!(e.method().as_deref(), Some("tools/call"));
        assert_eq!(e.id.unwrap().get(), "3");
        let n = one(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#);
        assert!(!n.is_request() && n.id.is_none());
        let r = one(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#);
        assert!(r.is_response());
    }

    #[test]
    fn duplicate_envelope_keys_are_refused() {
        for bad in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","\u006dethod":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{},"params":{}}"#,
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        // Duplicates deeper down are the server's business.
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1,"a":2}}"#).is_ok());
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "  ", "{", "{} {}", "42", "nul", "{\"id\":1,}", "[1,"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn batches_keep_their_raw_elements() {
        match parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, {"jsonrpc":"2.0","method":"x"}]"#).unwrap() {
            Line::Batch(items) => {
                assert_eq!(items.len(), 2);
                assert_eq!(parse_element(items[0]).unwrap().method().as_deref(), Some("ping"));
            }
            Line::One(_) => panic!("not a batch"),
        }
    }
}
