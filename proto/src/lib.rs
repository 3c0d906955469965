//! The only crate that knows the wire format between `latch shim`, `latch
//! daemon` and the consoles (`latch tui`, the CLI).
//!
//! * Framing: one JSON object per line over a local socket ([`frame`]).
//! * Messages: [`ClientMsg`] (to the daemon) and [`DaemonMsg`] (from it),
//!   versioned by [`PROTOCOL_VERSION`] in the [`ClientMsg::Hello`] handshake.
//! * Where the socket lives ([`paths`]).
//! * Calendar dates for everything that prints or reads one ([`civil`]).

pub mod civil;
#[cfg(feature = "client")]
pub mod client;
pub mod findings;
pub mod frame;
pub mod items;
pub mod lease;
pub mod msg;
pub mod paths;
#[cfg(feature = "client")]
pub mod peer;
#[cfg(feature = "client")]
pub mod quiet;
pub mod status;
pub mod system;
pub mod words;

pub use findings::ToolFinding;
pub use msg::*;

/// Bumped on any incompatible change to [`msg`]. A daemon refuses a peer
/// whose `Hello` carries another number, with a message naming both.
pub const PROTOCOL_VERSION: u32 = 1;
