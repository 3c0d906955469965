//! 2026-07-28 retries, recognised from what Latch itself issued.
//!
//! A server that needs input answers a call with `resultType:
//! "input_required"` and, usually, a `requestState`; the client then sends
//! the same `tools/call` again with `inputResponses` and that state. Such a
//! retry continues a call Latch already allowed, so the daemon lets it
//! through without asking again. A retry must therefore never be something
//! the client can claim: adding `requestState` to a call of its own would
//! turn one approval into any number of runs.
//!
//! The shim puts its own state in every `input_required` result it relays:
//! a random, single-use token in `requestState`, keeping the server's own
//! state aside. A call is a retry only when it brings back a token this
//! shim issued, for the same tool, and not yet used; the shim then gives
//! the server back its own state (or removes the field when the server
//! had none). Any other `requestState` is an ordinary field of a new call,
//! decided as such. The daemon still binds the retry to the same session,
//! tool and arguments.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::{Duration, Instant};

pub use crate::splice::Edit;
use crate::splice::range_in;

/// Tokens start with this, so a log reader can tell them apart.
const PREFIX: &str = "latch-continuation:";
/// Most tokens outstanding per shim; the oldest is forgotten first.
const MAX: usize = 256;
/// How long a token stays usable (as the daemon's retry window).
const TTL: Duration = Duration::from_secs(600);

struct Issued {
    tool: String,
    /// The server's own `requestState`, raw JSON; `None` when it sent none.
    server_state: Option<String>,
    at: Instant,
}

#[derive(Default)]
pub struct Continuations {
    issued: HashMap<String, Issued>,
    order: VecDeque<String>,
}

impl Continuations {
    /// An `input_required` result of a call to `tool`: the edit that puts a
    /// new token in its `requestState`. `state` and `result_type` are raw
    /// slices of `line` (the server's `requestState` and `resultType`).
    pub fn issue(&mut self, tool: &str, line: &[u8], state: Option<&str>, result_type: &str) -> Option<Edit> {
        let token = format!("{PREFIX}{}", random_hex()?);
        let quoted = serde_json::to_vec(&token).ok()?;
        let edit = match state {
            Some(state) => Edit { range: range_in(line, state)?, with: quoted },
            None => {
                let end = range_in(line, result_type)?.end;
                let mut with = b",\"requestState\":".to_vec();
                with.extend_from_slice(&quoted);
                Edit { range: end..end, with }
            }
        };
        self.prune();
        while self.order.len() >= MAX {
            if let Some(old) = self.order.pop_front() {
                self.issued.remove(&old);
            }
        }
        let issued = Issued { tool: tool.to_owned(), server_state: state.map(str::to_owned), at: Instant::now() };
        self.issued.insert(token.clone(), issued);
        self.order.push_back(token);
        Some(edit)
    }

    /// A `tools/call` of `tool` carrying `state` (raw, a slice of `line`):
    /// the edit that restores the server's state when it brings back a
    /// token this shim issued for that tool. The token is used up either
    /// way. `None`: not a retry.
    pub fn redeem(&mut self, tool: &str, line: &[u8], state: &str) -> Option<Edit> {
        let token: String = serde_json::from_str(state).ok()?;
        if !token.starts_with(PREFIX) {
            return None;
        }
        self.prune();
        let issued = self.issued.remove(&token)?;
        self.order.retain(|t| *t != token);
        if issued.tool != tool {
            return None;
        }
        let range = range_in(line, state)?;
        match issued.server_state {
            Some(server) => Some(Edit { range, with: server.into_bytes() }),
            None => member_range(line, range).map(|range| Edit { range, with: Vec::new() }),
        }
    }

    fn prune(&mut self) {
        let now = Instant::now();
        while let Some(t) = self.order.front() {
            match self.issued.get(t) {
                Some(i) if now.duration_since(i.at) < TTL => break,
                _ => {
                    let t = self.order.pop_front().expect("checked");
                    self.issued.remove(&t);
                }
            }
        }
    }
}

/// The bytes of the object member whose value is at `value` (key, colon,
/// value and one separating comma), so that removing them leaves valid
/// JSON. The line has been validated as JSON.
fn member_range(line: &[u8], value: Range<usize>) -> Option<Range<usize>> {
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut i = value.start;
    while i > 0 && ws(line[i - 1]) {
        i -= 1;
    }
    if i == 0 || line[i - 1] != b':' {
        return None;
    }
    i -= 1;
    while i > 0 && ws(line[i - 1]) {
        i -= 1;
    }
    if i == 0 || line[i - 1] != b'"' {
        return None;
    }
    // The key's opening quote: the first quote before its closing one that
    // is not escaped (preceded by an even number of backslashes).
    let mut k = i - 1;
    loop {
        if k == 0 {
            return None;
        }
        k -= 1;
        if line[k] == b'"' {
            let slashes = line[..k].iter().rev().take_while(|&&b| b == b'\\').count();
            if slashes % 2 == 0 {
                break;
            }
        }
    }
    let key_start = k;
    let mut before = key_start;
    while before > 0 && ws(line[before - 1]) {
        before -= 1;
    }
    match line.get(before.checked_sub(1)?) {
        Some(b',') => Some(before - 1..value.end),
        Some(b'{') => {
            let mut end = value.end;
            while end < line.len() && ws(line[end]) {
                end += 1;
            }
            if line.get(end) == Some(&b',') {
                end += 1;
            }
            Some(key_start..end)
        }
        _ => None,
    }
}

/// 128 random bits in hex, or `None` when the kernel gives none.
pub(crate) fn random_hex() -> Option<String> {
    let mut buf = [0u8; 16];
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    (n == buf.len() as isize).then(|| buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn slice<'a>(line: &'a [u8], needle: &str) -> &'a str {
        let text = std::str::from_utf8(line).unwrap();
        let at = text.find(needle).unwrap();
        &text[at..at + needle.len()]
    }

    fn token_of(line: &[u8]) -> String {
        let v: Value = serde_json::from_slice(line).unwrap();
        v["result"]["requestState"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_token_replaces_the_servers_state_and_brings_it_back_once() {
        let mut c = Continuations::default();
        let result = br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","requestState":"srv-7","inputRequests":{}}}"#;
        let edit =
            c.issue("pay", result, Some(slice(result, r#""srv-7""#)), slice(result, r#""input_required""#)).unwrap();
        let relayed = edit.apply(result);
        let token = token_of(&relayed);
        assert!(token.starts_with(PREFIX) && !String::from_utf8_lossy(&relayed).contains("srv-7"));

        let retry = format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"pay","inputResponses":{{}},"requestState":"{token}"}}}}"#
        );
        let state = slice(retry.as_bytes(), &format!("\"{token}\""));
        let back = c.redeem("pay", retry.as_bytes(), state).unwrap().apply(retry.as_bytes());
        let v: Value = serde_json::from_slice(&back).unwrap();
        assert_eq!(v["params"]["requestState"], "srv-7");
        // Single use.
        assert!(c.redeem("pay", retry.as_bytes(), state).is_none());
    }

    #[test]
    fn a_state_the_client_made_up_or_for_another_tool_is_no_retry() {
        let mut c = Continuations::default();
        let made_up = br#"{"params":{"name":"pay","requestState":"latch-continuation:00"}}"#;
        assert!(c.redeem("pay", made_up, slice(made_up, r#""latch-continuation:00""#)).is_none());
        let other = br#"{"params":{"name":"pay","requestState":"opaque"}}"#;
        assert!(c.redeem("pay", other, slice(other, r#""opaque""#)).is_none());

        let result = br#"{"id":1,"result":{"resultType":"input_required"}}"#;
        let relayed = c.issue("read", result, None, slice(result, r#""input_required""#)).unwrap().apply(result);
        let token = token_of(&relayed);
        let call = format!(r#"{{"params":{{"name":"pay","requestState":"{token}"}}}}"#);
        assert!(c.redeem("pay", call.as_bytes(), slice(call.as_bytes(), &format!("\"{token}\""))).is_none());
        // …and the token is gone for its own tool too.
        let call = format!(r#"{{"params":{{"name":"read","requestState":"{token}"}}}}"#);
        assert!(c.redeem("read", call.as_bytes(), slice(call.as_bytes(), &format!("\"{token}\""))).is_none());
    }

    #[test]
    fn without_a_server_state_the_token_is_added_and_removed_again() {
        let mut c = Continuations::default();
        let result = br#"{"id":1,"result":{"resultType" : "input_required" ,"inputRequests":{}}}"#;
        let relayed = c.issue("t", result, None, slice(result, r#""input_required""#)).unwrap().apply(result);
        let token = token_of(&relayed);
        for call in [
            format!(r#"{{"params":{{"name":"t","requestState":"{token}","inputResponses":{{}}}}}}"#),
            format!(r#"{{"params":{{"name":"t", "inputResponses":{{}} , "requestState" : "{token}" }}}}"#),
            format!(r#"{{"params":{{ "request\u0053tate":"{token}"}}}}"#),
        ] {
            let mut c2 = Continuations::default();
            let relayed = c2.issue("t", result, None, slice(result, r#""input_required""#)).unwrap().apply(result);
            let token2 = token_of(&relayed);
            let call = call.replace(&token, &token2);
            let state = slice(call.as_bytes(), &format!("\"{token2}\""));
            let back = c2.redeem("t", call.as_bytes(), state).unwrap().apply(call.as_bytes());
            let v: Value =
                serde_json::from_slice(&back).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&back)));
            assert!(v["params"].get("requestState").is_none(), "{v}");
        }
    }
}
