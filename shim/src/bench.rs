//! What `shim/benches/results.rs` times, from outside the crate: the
//! shim's reading of a server's line (what relaying costs without
//! scanning) and the check of its result ([`crate::results`]).

use latch_core::threat::result::Handling;

use crate::peek;
use crate::results::{self, Checked};

/// Reads the line's envelope and copies it, as relaying does; the number
/// of bytes relayed.
pub fn relay(line: &[u8]) -> usize {
    match peek::server_line(line) {
        Ok(_) => line.to_vec().len(),
        Err(_) => 0,
    }
}

/// Checks the line's result under `mode` (`record`, `mask`, `hold`); the
/// number of findings, and the bytes of the masked copy (0 without one).
pub fn check(line: &[u8], mode: &str) -> (usize, usize) {
    let mode = Handling::parse(mode).unwrap_or(Handling::Record);
    match results::check(line, mode) {
        Checked::Clean => (0, 0),
        Checked::Found { findings, masked, .. } => (findings.len(), masked.map_or(0, |m| m.len())),
    }
}
