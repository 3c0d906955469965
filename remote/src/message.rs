//! Just enough of a JSON-RPC message to route it: its kind, its id as
//! written, its method. The bytes themselves are relayed untouched.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Has an id and a method: a response is owed for it.
    Request {
        id: String,
        method: String,
    },
    Notification {
        method: String,
    },
    /// A result or error for the peer's request.
    Response {
        id: String,
    },
    /// A batch, or something that is not a JSON-RPC object.
    Other,
}

/// A peeked message.
#[derive(Clone, Debug)]
pub struct Peek {
    pub kind: Kind,
    /// `params` as written (for the mirrored headers).
    pub params: Option<Box<RawValue>>,
    /// `result` as written, for responses.
    pub result: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Fields {
    id: Option<Box<RawValue>>,
    method: Option<String>,
    params: Option<Box<RawValue>>,
    result: Option<Box<RawValue>>,
    error: Option<Box<RawValue>>,
}

impl Peek {
    pub fn of(bytes: &[u8]) -> Peek {
        let other = Peek { kind: Kind::Other, params: None, result: None };
        let Ok(f) = serde_json::from_slice::<Fields>(bytes) else { return other };
        let id = f.id.map(|id| id.get().to_owned()).filter(|id| id != "null");
        let kind = match (id, f.method) {
            (Some(id), Some(method)) => Kind::Request { id, method },
            (None, Some(method)) => Kind::Notification { method },
            (Some(id), None) if f.result.is_some() || f.error.is_some() => Kind::Response { id },
            _ => Kind::Other,
        };
        Peek { kind, params: f.params, result: f.result }
    }

    pub fn method(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// A JSON-RPC error answering the request whose id was written as ID.
pub fn error_response(id: &str, message: &str) -> Vec<u8> {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{{\"code\":-32000,\"message\":{message}}}}}").into_bytes()
}

/// One line per message for stdout: the bytes as they came when they are
/// a single line already (the usual case), otherwise re-serialised
/// compactly. A batch becomes one line per element. Not JSON: `None`.
pub fn lines(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let trimmed = bytes.trim_ascii();
    let raw: &RawValue = serde_json::from_slice(trimmed).ok()?;
    if trimmed.first() == Some(&b'[') {
        let items: Vec<&RawValue> = serde_json::from_str(raw.get()).ok()?;
        return items.into_iter().map(|i| one_line(i.get().as_bytes())).collect();
    }
    Some(vec![one_line(trimmed)?])
}

fn one_line(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.iter().any(|b| *b == b'\n' || *b == b'\r') {
        return Some(bytes.to_vec());
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    serde_json::to_vec(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let p = Peek::of(br#"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"x"}}"#);
        assert_eq!(p.kind, Kind::Request { id: "\"a-1\"".into(), method: "tools/call".into() });
        assert_eq!(p.params.unwrap().get(), r#"{"name":"x"}"#);
        let p = Peek::of(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(p.kind, Kind::Notification { method: "notifications/initialized".into() });
        let p = Peek::of(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#);
        assert_eq!(p.kind, Kind::Response { id: "7".into() });
        assert_eq!(Peek::of(b"[1]").kind, Kind::Other);
        assert_eq!(Peek::of(b"nope").kind, Kind::Other);
    }

    #[test]
    fn errors_echo_the_id_as_written() {
        let e = error_response("\"a\\\"b\"", "the server said \"no\"");
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["id"], "a\"b");
        assert_eq!(v["error"]["message"], "the server said \"no\"");
    }

    #[test]
    fn single_lines_pass_byte_for_byte() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"x":1.0000000000000002,"s":"\u00e9"}}"#;
        assert_eq!(lines(body).unwrap(), vec![body.to_vec()]);
        assert_eq!(lines(b"  {\"a\":1}\r\n").unwrap(), vec![b"{\"a\":1}".to_vec()]);
    }

    #[test]
    fn pretty_bodies_and_batches_become_one_line_each() {
        let out = lines(b"[{\n \"a\": 1\n}, {\"b\":2}]").unwrap();
        assert_eq!(out, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert!(lines(b"{\"a\":").is_none());
    }
}
