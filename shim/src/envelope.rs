//! Reading a JSON-RPC line just enough to route it, in one pass.
//!
//! The whole line is validated as one JSON value (so garbage never reaches
//! the other side), but nothing is copied: the fields the shim needs from
//! `params` and `result` are picked out during the same scan, as raw slices
//! of the line. The envelope's own keys must appear once, and so must the
//! keys of `params` that a decision depends on (`name`, `arguments`,
//! `_meta`): a line with two `method` fields, or a `tools/call` with two
//! `name`s, is ambiguous — the daemon and the server might read different
//! ones — and is refused.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::fold;

#[derive(Debug, Default)]
pub struct Envelope<'a> {
    pub id: Option<&'a RawValue>,
    pub method: Option<&'a RawValue>,
    pub params: Option<Params<'a>>,
    pub result: Option<ResultPeek<'a>>,
    pub has_error: bool,
}

/// What the shim reads from `params` (any request's: the fields of the
/// methods it watches). Raw slices; absent fields are `None`.
#[derive(Debug, Default)]
pub struct Params<'a> {
    /// `tools/call`: the tool's name, if it is a string.
    pub name: Option<&'a RawValue>,
    /// `tools/call`: the arguments, exactly as sent.
    pub arguments: Option<&'a RawValue>,
    pub meta: Option<&'a RawValue>,
    /// 2026-07-28 retries.
    pub input_responses: bool,
    /// `requestState`, raw: a retry is recognised only by a state Latch
    /// itself issued ([`crate::continuation`]).
    pub request_state: Option<&'a RawValue>,
    /// `tools/list`: a cursor means "not the first page".
    pub cursor: bool,
    /// `initialize`.
    pub client_info: Option<&'a RawValue>,
    /// `initialize`: what the client can do (elicitation …), raw.
    pub capabilities: Option<&'a RawValue>,
    pub protocol_version: Option<&'a RawValue>,
    /// `notifications/cancelled`.
    pub request_id: Option<&'a RawValue>,
    /// `notifications/progress`: the token, and the numbers the shim may
    /// shift (raw).
    pub progress_token: Option<&'a RawValue>,
    pub progress: Option<&'a RawValue>,
    pub total: Option<&'a RawValue>,
}

/// What the shim reads from a response's `result`.
#[derive(Debug, Default)]
pub struct ResultPeek<'a> {
    pub is_error: bool,
    /// `tools/list`.
    pub tools: Option<&'a RawValue>,
    /// 2026-07-28: `resultType`, raw, and `requestState`, raw.
    pub result_type: Option<&'a RawValue>,
    pub request_state: Option<&'a RawValue>,
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

impl ResultPeek<'_> {
    /// A 2026-07-28 `input_required` result: the client will send the call
    /// again with the answers.
    pub fn input_required(&self) -> bool {
        self.result_type.is_some_and(|t| t.get() == r#""input_required""#)
    }
}

/// One line, classified.
// Read on the stack once per line and never stored: boxing the envelope
// would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
pub enum Line<'a> {
    One(Envelope<'a>),
    /// An old-style batch: its raw elements.
    Batch(Vec<&'a RawValue>),
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not one JSON value: {0}")]
    Json(serde_json::Error),
    #[error("not JSON: invalid UTF-8 at byte {}", .0.valid_up_to())]
    Utf8(std::str::Utf8Error),
    /// JSON, but not a message Latch can route unambiguously (a duplicate
    /// or case-folded routed key, a non-object envelope …).
    #[error("invalid request: {0}")]
    Invalid(serde_json::Error),
    #[error("not a JSON-RPC message (expected an object or an array)")]
    NotMessage,
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> ParseError {
        match e.classify() {
            serde_json::error::Category::Data => ParseError::Invalid(e),
            _ => ParseError::Json(e),
        }
    }
}

impl ParseError {
    /// The JSON-RPC error code: -32700 for what is not JSON, -32600 for
    /// JSON that is not a valid request.
    pub fn code(&self) -> i32 {
        match self {
            ParseError::Json(_) | ParseError::Utf8(_) => -32700,
            ParseError::Invalid(_) | ParseError::NotMessage => -32600,
        }
    }
}

pub fn parse(line: &[u8]) -> Result<Line<'_>, ParseError> {
    // JSON is UTF-8 throughout. serde_json does not check the bytes of
    // strings it skips, so the whole line is checked here (at memory
    // speed), and what follows reads it as text.
    let line = std::str::from_utf8(line).map_err(ParseError::Utf8)?;
    let first = line.bytes().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => Ok(Line::Batch(serde_json::from_str(line)?)),
        Some(b'{') => Ok(Line::One(serde_json::from_str(line)?)),
        Some(_) => {
            // Still reject garbage precisely, with serde's message.
            let _: IgnoredAny = serde_json::from_str(line)?;
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

/// Refuses a key that is not a routed key but folds to one ([`fold`]).
fn unambiguous<E: de::Error>(key: &str, within: &str) -> Result<(), E> {
    match fold::other_spelling_of(key) {
        Some(routed) => Err(E::custom(format!(
            "ambiguous message: key {key:?}{within} is another spelling of `{routed}`, which some servers read as \
             the same key"
        ))),
        None => Ok(()),
    }
}

impl<'de: 'a, 'a> de::Deserialize<'de> for Params<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParamsVisitor(std::marker::PhantomData))
    }
}

struct ParamsVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ParamsVisitor<'a> {
    type Value = Params<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("params")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Params<'a>, M::Error> {
        let mut p = Params::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let once = |slot: &Option<&'a RawValue>, name: &str| match slot {
                Some(_) => Err(de::Error::custom(format!("ambiguous message: duplicate `params.{name}` field"))),
                None => Ok(()),
            };
            match key.as_str() {
                "name" => {
                    once(&p.name, "name")?;
                    p.name = Some(map.next_value()?);
                }
                "arguments" => {
                    once(&p.arguments, "arguments")?;
                    p.arguments = Some(map.next_value()?);
                }
                "_meta" => {
                    once(&p.meta, "_meta")?;
                    p.meta = Some(map.next_value()?);
                }
                "clientInfo" => p.client_info = Some(map.next_value()?),
                "capabilities" => p.capabilities = Some(map.next_value()?),
                "protocolVersion" => p.protocol_version = Some(map.next_value()?),
                "requestId" => p.request_id = Some(map.next_value()?),
                "progressToken" => p.progress_token = Some(map.next_value()?),
                "progress" => p.progress = Some(map.next_value()?),
                "total" => p.total = Some(map.next_value()?),
                "inputResponses" => {
                    p.input_responses = true;
                    map.next_value::<IgnoredAny>()?;
                }
                "requestState" => {
                    if p.request_state.is_some() {
                        return Err(de::Error::custom("ambiguous message: duplicate `params.requestState` field"));
                    }
                    p.request_state = Some(map.next_value()?);
                }
                "cursor" => {
                    let v: &RawValue = map.next_value()?;
                    p.cursor = v.get() != "null";
                }
                other => {
                    unambiguous(other, " in `params`")?;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(p)
    }

    fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Params<'a>, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Params::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Params<'a>, E> {
        Ok(Params::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Params<'a>, E> {
        Ok(Params::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Params<'a>, E> {
        Ok(Params::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Params<'a>, E> {
        Ok(Params::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Params<'a>, E> {
        Ok(Params::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Params<'a>, E> {
        Ok(Params::default())
    }
}

impl<'de: 'a, 'a> de::Deserialize<'de> for ResultPeek<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ResultVisitor(std::marker::PhantomData))
    }
}

struct ResultVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ResultVisitor<'a> {
    type Value = ResultPeek<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a result")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<ResultPeek<'a>, M::Error> {
        let mut r = ResultPeek::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "isError" => {
                    let v: &RawValue = map.next_value()?;
                    r.is_error = v.get() == "true";
                }
                "tools" => r.tools = Some(map.next_value()?),
                "resultType" => {
                    if r.result_type.is_some() {
                        return Err(de::Error::custom("ambiguous message: duplicate `result.resultType` field"));
                    }
                    r.result_type = Some(map.next_value()?);
                }
                "requestState" => {
                    if r.request_state.is_some() {
                        return Err(de::Error::custom("ambiguous message: duplicate `result.requestState` field"));
                    }
                    r.request_state = Some(map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(r)
    }

    fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<ResultPeek<'a>, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ResultPeek::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ResultPeek<'a>, E> {
        Ok(ResultPeek::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<ResultPeek<'a>, E> {
        Ok(ResultPeek::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<ResultPeek<'a>, E> {
        Ok(ResultPeek::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<ResultPeek<'a>, E> {
        Ok(ResultPeek::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<ResultPeek<'a>, E> {
        Ok(ResultPeek::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<ResultPeek<'a>, E> {
        Ok(ResultPeek::default())
    }
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
            let k = key.as_str();
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
                other => {
                    unambiguous(other, "")?;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

/// A map key, borrowed from the line when it has no escapes (escaped
/// spellings arrive decoded, so they count as the same key).
pub(crate) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(k) => k,
            Key::Owned(k) => k,
        }
    }
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
        // A tool call whose name or arguments appear twice is ambiguous too.
        assert!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"run"}}"#)
                .is_err()
        );
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{},"arguments":{"x":1}}}"#).is_err());
        // Other duplicates deeper down are the server's business.
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1,"a":2}}"#).is_ok());
    }

    #[test]
    fn folded_spellings_of_routed_keys_are_refused_as_invalid() {
        for bad in [
            r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"pay","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","METHOD":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","Name":"pay"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"},"paramſ":{"name":"pay"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"},"paramſ":{"name":"pay"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{},"ARGUMENTS":{"x":1}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","_META":{}}}"#,
            r#"{"jsonrpc":"2.0","ID":7,"id":1,"method":"ping"}"#,
            r#"{"JSONRPC":"1.0","jsonrpc":"2.0","id":1,"method":"ping"}"#,
        ] {
            match parse(bad.as_bytes()) {
                Err(e @ ParseError::Invalid(_)) => assert_eq!(e.code(), -32600, "{bad}"),
                Err(e) => panic!("{bad}: refused as {e:?}, not as an invalid request"),
                Ok(_) => panic!("{bad}: accepted"),
            }
        }
        // Keys Latch does not route on are the server's business.
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"Uri":"a","uri":"b"}}"#).is_ok());
        // Bytes that are not JSON stay a parse error, invalid UTF-8 anywhere too.
        for bad in [&b"{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{\"a\":\"\xff\xfe\"}}"[..], b"{\"\xc3\":1}"] {
            assert!(matches!(parse(bad), Err(ParseError::Utf8(_))), "{bad:?}");
        }
        assert_eq!(parse(b"{\"id\":1,").err().map(|e| e.code()), Some(-32700));
    }

    #[test]
    fn params_and_results_are_read_in_the_same_pass() {
        let e = one(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,2]},"_meta":{"progressToken":7},"requestState":"s"}}"#,
        );
        let p = e.params.unwrap();
        assert_eq!(p.name.unwrap().get(), r#""echo""#);
        assert_eq!(p.arguments.unwrap().get(), r#"{"a":[1,2]}"#);
        assert!(p.request_state.unwrap().get() == r#""s""# && !p.input_responses);
        let r = one(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#);
        assert!(r.result.unwrap().is_error);
        let l = one(r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"x"}],"nextCursor":"c"}}"#);
        assert_eq!(l.result.unwrap().tools.unwrap().get(), r#"[{"name":"x"}]"#);
        // Params that are not an object are the server's business.
        assert!(one(r#"{"jsonrpc":"2.0","id":3,"method":"x","params":[1,{"a":2}]}"#).params.is_some());
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
