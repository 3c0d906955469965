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
