//! The daemon's log: lines on standard error with a timestamp, a level and
//! where they come from. `LATCH_LOG` (else `RUST_LOG`) sets the filter, in
//! `tracing`'s `EnvFilter` syntax (`debug`, `latch_daemon::driver=trace`);
//! the default is `info`.

use tracing_subscriber::EnvFilter;

/// Installs the log for this process (once; later calls do nothing).
pub fn init() {
    let filter = std::env::var("LATCH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}
