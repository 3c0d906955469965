//! Messages the shim itself writes to the client.

use serde_json::{Value, json};

use super::META_KEY;
use crate::envelope;

/// The error message for a line the shim refused.
pub(super) fn refusal(e: &envelope::ParseError) -> String {
    match e.code() {
        -32700 => format!("Parse error: {e}"),
        _ => format!("Invalid Request (Latch refused it): {e}"),
    }
}

/// A JSON-RPC error response.
pub(super) fn rpc_error(id: &str, code: i32, message: &str) -> Vec<u8> {
    let mut out =
        format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{}}}"#, json!({"code": code, "message": message})).into_bytes();
    out.push(b'\n');
    out
}

/// A tool result with `isError: true`, Latch's verdict in `_meta`. In the
/// 2026-07-28 form a result also says it is complete.
pub(super) fn blocked(id: &str, text: String, verdict: Value, modern: bool) -> Vec<u8> {
    let mut result = json!({
        "content": [{"type": "text", "text": text}],
        "isError": true,
        "_meta": {META_KEY: verdict},
    });
    if modern {
        result["resultType"] = json!("complete");
    }
    let mut out = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes();
    out.push(b'\n');
    out
}
