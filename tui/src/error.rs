//! Why the console stopped.

/// Why the console stopped. Losing the daemon is not an error: the console
/// says so and reconnects.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("cannot use this terminal: {0} (latch tui needs an interactive terminal)")]
    Terminal(#[source] std::io::Error),
    #[error("cannot draw on the terminal: {0}")]
    Draw(#[source] std::io::Error),
    #[error("the terminal's input closed: {0}")]
    Input(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("cannot start the console's async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}
