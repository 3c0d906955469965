//! Subcommand implementations; `main` only dispatches.
pub mod policy;
