//! `latch shim --name NAME -- CMD [ARGS...]`.

use std::time::Duration;

#[derive(clap::Args)]
pub struct ShimArgs {
    /// The server's name, as policy rules and the console show it.
    #[arg(long)]
    name: String,
    /// Seconds the server gets to exit after the client hangs up, and again
    /// after SIGTERM, before SIGKILL.
    #[arg(long, default_value_t = 2.0)]
    grace: f64,
    /// Longest message relayed, in MiB.
    #[arg(long, default_value_t = 256)]
    max_message_mib: usize,
    /// Do not start a daemon when none answers.
    #[arg(long)]
    no_autostart: bool,
    /// Let read-only calls through while no daemon answers (default: nothing
    /// runs unchecked).
    #[arg(long)]
    allow_reads_offline: bool,
    /// The MCP server's command line.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn run(a: ShimArgs) -> anyhow::Result<i32> {
    let mut opts = latch_shim::Options::new(a.name, a.command, super::paths()?);
    opts.grace = Duration::from_secs_f64(a.grace.max(0.0));
    opts.max_message = a.max_message_mib.saturating_mul(1024 * 1024);
    opts.autostart = !a.no_autostart;
    opts.allow_reads_offline = a.allow_reads_offline;
    Ok(latch_shim::run(opts))
}
