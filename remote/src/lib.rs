//! Remote MCP servers under the same guard.
//!
//! `latch shim --url URL` relays exactly as for a local server; the
//! "server" it spawns is `latch` itself in bridge mode, which speaks
//! newline-delimited JSON-RPC on stdio and MCP's HTTP transports towards
//! the remote server. Every message therefore passes the shim's relay and
//! its decisions unchanged; this crate only moves bytes and authorizes
//! requests.
//!
//! - `bridge`: the stdio loop and the choice of transport.
//! - `streamable`: streamable HTTP (POST, GET stream, sessions, resuming).
//! - `sse`: the older HTTP+SSE transport.
//! - `sse_parse`: the event-stream format (pure).
//! - `headers`: configured headers, `${VAR}` expanded at run time.
//! - `mcp_headers`: `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*` (pure).
//! - `message`: peeking at JSON-RPC messages (pure).
//! - `oauth`: OAuth 2.1 for servers that require it (discovery, PKCE,
//!   tokens kept under the Latch home, refresh).

pub mod bridge;
mod conn;
pub mod headers;
pub mod mcp_headers;
pub mod message;
pub mod oauth;
mod sse;
pub mod sse_parse;
mod streamable;

pub use bridge::{BridgeError, Options, Transport, run};
