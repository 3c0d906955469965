//! `latch install` / `latch uninstall`: the file rewriting, with no IO.
//!
//! # Design
//! Config files are edited in place, never re-serialised: the reader
//! ([`jsonc`] for JSON and JSONC, the `toml` crate's spanned `DeTable` for
//! Codex) gives the byte span of every value, and a rewrite is a short list
//! of [`Edit`]s on the original text. Comments, key order, indentation,
//! trailing commas and everything else in the file stay as they were.
//!
//! Wrapping a stdio server `{"command": C, "args": [A…]}` replaces C with the
//! absolute path of `latch` and inserts `"shim", "--name", NAME, "--", C`
//! before the first argument, copying C's literal text as it was written
//! and repeating the separator found after `[` (so a one-per-line list stays
//! one per line). Unwrapping cuts exactly that text out again and puts C's
//! literal back, so `uninstall` restores the original bytes without any
//! state beyond the file itself. A missing `args` is added right after
//! `command` in a recognisable form and removed again on uninstall. Every
//! plan is checked before it is handed out: the new text must parse, and
//! unwrapping the result must give what unwrapping the original gives
//! (byte for byte), or the file is refused.
//!
//! Why no `toml_edit`: the spans of `toml` 1.2 (already in the workspace)
//! are all this needs, since edits are made on the text itself.

pub mod clients;
pub mod combined;
pub mod diff;
pub mod doc;
pub mod env;
pub mod hooks;
pub mod jsonc;
pub mod leaves;
mod plan;
mod remote_toml;

pub use doc::{Format, Layout, Malformed, RemoteEntry, Server, Shape, servers};

/// The variable a wrapped remote entry's `env` passes its headers in, one
/// `Name: value` a line (read by `latch bridge`).
pub const REMOTE_HEADERS_ENV: &str = "LATCH_REMOTE_HEADERS";
pub use plan::{Action, Edit, Outcome, Plan, PlanError, Report, apply, plan};
