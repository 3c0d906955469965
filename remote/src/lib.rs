//! Remote MCP servers under the same guard.
//!
//! `latch shim --url URL` relays exactly as for a local server; the
//! "server" it spawns is `latch` itself in bridge mode, which speaks
//! newline-delimited JSON-RPC on stdio and MCP's HTTP transports towards
//! the remote server. Every message therefore passes the shim's relay and
//! its decisions unchanged; this crate only moves bytes and authorizes
//! requests.
//!
//! - `oauth`: OAuth 2.1 for servers that require it (discovery, PKCE,
//!   tokens kept under the Latch home, refresh).

pub mod oauth;
