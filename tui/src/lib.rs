//! The approval console (`latch tui`): a client of the daemon that shows
//! pending approvals (first, with a countdown), live calls, the audit
//! history (paged) and the daemon's health, and answers approvals.
//!
//! * [`app`]: the state machine. `App::handle(Input, now) -> Vec<ClientMsg>`;
//!   pure, no IO, no clock.
//! * [`keymap`]: keys as data ([`keymap::Action`], [`keymap::BINDINGS`]);
//!   the help bar, the `?` overlay and `KEYS.md` come from it.
//! * [`ui`]: drawing, a pure function of the state and `now`.
//! * [`pages`]: the history page source as a trait (the daemon, or a
//!   synthetic log in tests and the bench).
//! * `io`: the terminal and the daemon connection; redraws only when a key,
//!   a daemon message, a resize or a timer asked for by the state (the 1 s
//!   countdown while approvals are pending) arrives.

pub mod app;
mod error;
mod io;
pub mod keymap;
pub mod pages;
pub mod ui;

use latch_proto::paths::Paths;

pub use error::TuiError;

/// Runs `latch tui` until the user quits. Starts its own single-threaded
/// tokio runtime: call it from plain (non-async) code. From inside a
/// runtime, use [`run_async`].
pub fn run(paths: Paths) -> Result<(), TuiError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(TuiError::Runtime)?;
    rt.block_on(io::run(paths))
}

/// [`run`] for callers that already have a tokio runtime.
pub async fn run_async(paths: Paths) -> Result<(), TuiError> {
    io::run(paths).await
}
