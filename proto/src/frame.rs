//! Framing: one JSON object per line, UTF-8, `\n`-terminated.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The longest frame a peer accepts. `Decide` carries a tool call's
/// arguments, which may be large (the shim relays lines of 64 MiB and more).
pub const MAX_FRAME: usize = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not valid latch protocol JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME} bytes")]
    TooLarge(usize),
}

/// Serialises one message as a line, newline included.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec(msg).expect("protocol messages always serialise");
    out.push(b'\n');
    out
}

/// Parses one line (with or without its trailing newline).
pub fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, FrameError> {
    if line.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(line.len()));
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    Ok(serde_json::from_slice(line)?)
}

/// [`ClientMsg::Decide`](crate::ClientMsg::Decide) as a line, built around
/// arguments that are already known to be one valid JSON value (the shim
/// has just validated the line they came from), so they are neither parsed
/// nor re-serialised: a 64 MiB argument costs one copy.
pub fn encode_decide(req: u64, tool: &str, args_json: &str, retry: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(args_json.len() + tool.len() + 64);
    out.extend_from_slice(b"{\"decide\":{\"req\":");
    out.extend_from_slice(req.to_string().as_bytes());
    out.extend_from_slice(b",\"tool\":");
    serde_json::to_writer(&mut out, tool).expect("writing to a Vec cannot fail");
    out.extend_from_slice(b",\"args\":");
    out.extend_from_slice(args_json.as_bytes());
    out.extend_from_slice(if retry { b",\"retry\":true}}\n" } else { b",\"retry\":false}}\n" });
    out
}

/// The text of a [`ClientMsg::Decide`](crate::ClientMsg::Decide) frame's
/// arguments, exactly as the peer wrote them (with or without the trailing
/// newline): what the daemon hashes when parsing may have lost digits of a
/// large integer. `None` when `line` is not a `Decide` frame.
pub fn decide_args(line: &[u8]) -> Option<&serde_json::value::RawValue> {
    #[derive(serde::Deserialize)]
    struct Frame<'a> {
        #[serde(borrow)]
        decide: Decide<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Decide<'a> {
        #[serde(borrow)]
        args: &'a serde_json::value::RawValue,
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice::<Frame<'_>>(line).ok().map(|f| f.decide.args)
}

/// The message kind and `req` of a frame that did not decode, so its sender
/// hears why (`("", 0)` when even that is unreadable). Only the envelope is
/// read: the rest may be what failed (a number out of range in a call's
/// arguments), and skipping a value does not check it.
pub fn envelope_of(frame: &[u8]) -> (String, u64) {
    #[derive(serde::Deserialize)]
    struct Req {
        req: Option<u64>,
    }
    serde_json::from_slice::<std::collections::HashMap<String, Req>>(frame)
        .ok()
        .and_then(|m| m.into_iter().next())
        .map(|(kind, r)| (kind, r.req.unwrap_or(0)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientMsg;

    #[test]
    fn encode_decide_is_a_decide_message() {
        let line = encode_decide(7, "run \"x\"", r#"{"a": [1, "\u0041"]}"#, true);
        match decode::<ClientMsg>(&line).unwrap() {
            ClientMsg::Decide { req, tool, args, retry } => {
                assert_eq!((req, tool.as_str(), retry), (7, "run \"x\"", true));
                assert_eq!(args, serde_json::json!({"a": [1, "A"]}));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decide_args_is_the_arguments_text_as_written() {
        let line = encode_decide(1, "pay", r#"{"amount": 18446744073709551617}"#, false);
        assert_eq!(decide_args(&line).map(|a| a.get()), Some(r#"{"amount": 18446744073709551617}"#));
        assert!(decide_args(b"{\"hello\":{}}\n").is_none());
        assert!(decide_args(b"not json").is_none());
    }
}
