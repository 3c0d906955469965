//! The headers MCP's streamable HTTP transport mirrors from the body
//! (2026-07-28, SEP-2243): `Mcp-Method`, `Mcp-Name`, and `Mcp-Param-*` for
//! tool arguments whose input schema property carries `x-mcp-header`.
//!
//! They are computed from the message the shim already decided (and, where
//! it redacts, redacted), so they carry nothing the body does not. Pure.

use std::collections::HashMap;

use serde_json::Value;

/// Values that cannot ride as a plain header value are sent as
/// `=?base64?…?=` (standard alphabet, over the UTF-8 bytes).
pub fn encode_value(s: &str) -> String {
    let printable = s.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let padded = s.starts_with(' ') || s.ends_with(' ');
    let sentinel = s.starts_with("=?base64?") && s.ends_with("?=");
    if printable && !padded && !sentinel { s.to_owned() } else { format!("=?base64?{}?=", base64(s.as_bytes())) }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Mcp-Method` and `Mcp-Name` (params.name, else params.uri) of a
/// request or notification, and `MCP-Protocol-Version` when its `_meta`
/// names one.
pub fn standard(method: &str, params: Option<&Value>) -> Vec<(String, String)> {
    let mut out = vec![("mcp-method".to_owned(), encode_value(method))];
    let name = params.and_then(|p| p.get("name").or_else(|| p.get("uri"))).and_then(Value::as_str);
    if let Some(name) = name {
        out.push(("mcp-name".to_owned(), encode_value(name)));
    }
    // A stateless (2026-07-28) request names its protocol version in
    // `_meta`; the header must say the same.
    let version = params.and_then(|p| p.pointer("/_meta/io.modelcontextprotocol~1protocolVersion"));
    if let Some(v) = version.and_then(Value::as_str).filter(|v| encode_value(v) == *v && !v.is_empty()) {
        out.push(("mcp-protocol-version".to_owned(), v.to_owned()));
    }
    out
}

/// Per tool: (argument, header suffix) pairs declared with `x-mcp-header`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolHeaders {
    tools: HashMap<String, Vec<(String, String)>>,
}

impl ToolHeaders {
    /// Learns the declarations of a `tools/list` result page. A tool whose
    /// declarations break the rules (a name that is not an HTTP token,
    /// two names equal ignoring case, a non-primitive property) gets none:
    /// nothing of it is mirrored.
    pub fn learn(&mut self, result: &Value) {
        let Some(tools) = result.get("tools").and_then(Value::as_array) else { return };
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
            let props = tool.pointer("/inputSchema/properties").and_then(Value::as_object);
            let mut decl = Vec::new();
            let mut valid = true;
            for (arg, schema) in props.into_iter().flatten() {
                let Some(h) = schema.get("x-mcp-header") else { continue };
                let primitive = matches!(
                    schema.get("type").and_then(Value::as_str),
                    Some("string" | "integer" | "boolean" | "number")
                );
                match h.as_str() {
                    Some(h)
                        if primitive
                            && is_token(h)
                            && !decl.iter().any(|(_, d): &(String, String)| d.eq_ignore_ascii_case(h)) =>
                    {
                        decl.push((arg.clone(), h.to_owned()))
                    }
                    _ => valid = false,
                }
            }
            if valid && !decl.is_empty() {
                self.tools.insert(name.to_owned(), decl);
            } else {
                self.tools.remove(name);
            }
        }
    }

    /// The `Mcp-Param-*` headers of a `tools/call` with these params.
    pub fn for_call(&self, params: Option<&Value>) -> Vec<(String, String)> {
        let Some(p) = params else { return Vec::new() };
        let Some(decl) = p.get("name").and_then(Value::as_str).and_then(|n| self.tools.get(n)) else {
            return Vec::new();
        };
        let args = p.get("arguments");
        decl.iter()
            .filter_map(|(arg, header)| {
                let value = match args?.get(arg)? {
                    Value::String(s) => encode_value(s),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((format!("mcp-param-{}", header.to_ascii_lowercase()), value))
            })
            .collect()
    }
}

/// RFC 9110 token.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_that_cannot_ride_plain_are_base64() {
        assert_eq!(encode_value("get_weather"), "get_weather");
        assert_eq!(encode_value("file:///tmp/a b"), "file:///tmp/a b");
        assert_eq!(encode_value("héllo"), "=?base64?aMOpbGxv?=");
        assert_eq!(encode_value(" lead"), "=?base64?IGxlYWQ=?=");
        assert_eq!(encode_value("a\r\nX-Injected: 1"), "=?base64?YQ0KWC1JbmplY3RlZDogMQ==?=");
        assert_eq!(encode_value("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }

    #[test]
    fn method_and_name_mirror_the_body() {
        let h = standard("tools/call", Some(&json!({"name": "echo", "arguments": {}})));
        assert_eq!(h, vec![("mcp-method".into(), "tools/call".into()), ("mcp-name".into(), "echo".into())]);
        let h = standard("resources/read", Some(&json!({"uri": "file:///x"})));
        assert_eq!(h[1], ("mcp-name".into(), "file:///x".into()));
        assert_eq!(standard("ping", None).len(), 1);
        let meta = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        assert_eq!(standard("server/discover", Some(&meta))[1], ("mcp-protocol-version".into(), "2026-07-28".into()));
        let bad = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "x\r\ny"}});
        assert_eq!(standard("ping", Some(&bad)).len(), 1);
    }

    #[test]
    fn declared_arguments_become_param_headers() {
        let mut t = ToolHeaders::default();
        t.learn(&json!({"tools": [
            {"name": "q", "inputSchema": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "n": {"type": "integer", "x-mcp-header": "Count"},
                "body": {"type": "string"}}}},
            {"name": "bad", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "string", "x-mcp-header": "Dup"},
                "b": {"type": "string", "x-mcp-header": "dup"}}}},
            {"name": "obj", "inputSchema": {"type": "object", "properties": {
                "o": {"type": "object", "x-mcp-header": "O"}}}}
        ]}));
        let mut h = t.for_call(Some(&json!({"name": "q", "arguments": {"region": "eu-wëst", "n": 3, "body": "x"}})));
        h.sort();
        assert_eq!(
            h,
            vec![("mcp-param-count".into(), "3".into()), ("mcp-param-region".into(), "=?base64?ZXUtd8Orc3Q=?=".into())]
        );
        assert!(t.for_call(Some(&json!({"name": "q", "arguments": {"region": null}}))).is_empty());
        assert!(t.for_call(Some(&json!({"name": "bad", "arguments": {"a": "1", "b": "2"}}))).is_empty());
        assert!(t.for_call(Some(&json!({"name": "obj", "arguments": {"o": {}}}))).is_empty());
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
