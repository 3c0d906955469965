//! `latch shim --name NAME -- CMD [ARGS...]`, and for a remote server
//! `latch shim --name NAME --url URL [--header "K: V"]...`.
//!
//! A remote server is relayed by the same shim: its "server command" is
//! `latch bridge ...` (this executable), which speaks HTTP to the server.
//! So decisions, holds, audit and self-protection are the stdio ones.

use std::time::Duration;

use super::bridge::TransportArg;

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
    /// A remote MCP server's URL (streamable HTTP or HTTP+SSE) instead of a
    /// command.
    #[arg(long, conflicts_with = "command")]
    url: Option<String>,
    /// With --url: a header sent with every request, "Name: value";
    /// `${VAR}` in the value is taken from the environment when the server
    /// is reached (write secrets so, not literally).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// With --url: the HTTP transport (auto tries streamable HTTP first).
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    transport: TransportArg,
    /// The MCP server's command line.
    #[arg(last = true, required_unless_present = "url")]
    command: Vec<String>,
}

pub fn run(a: ShimArgs) -> anyhow::Result<i32> {
    if a.url.is_none() && (!a.headers.is_empty() || a.transport != TransportArg::Auto) {
        let e = "--header and --transport go with --url (a remote server)\n";
        clap::Error::raw(clap::error::ErrorKind::MissingRequiredArgument, e).exit();
    }
    let command = match &a.url {
        Some(url) => bridge_command(&a.name, url, &a.headers, a.transport, a.max_message_mib)?,
        None => a.command,
    };
    let mut opts = latch_shim::Options::new(a.name, command, super::paths()?);
    opts.grace = Duration::from_secs_f64(a.grace.max(0.0));
    opts.max_message = a.max_message_mib.saturating_mul(1024 * 1024);
    opts.autostart = !a.no_autostart;
    opts.allow_reads_offline = a.allow_reads_offline;
    // The small shim binary beside this one, when there is one of this
    // build: this process becomes it (the exec returns only if not).
    latch_shim::exec::replace_self(&opts);
    Ok(latch_shim::run(opts))
}

/// `latch bridge ...` for the shim to start. The header templates go as
/// given: their `${VAR}`s are expanded inside the bridge only.
fn bridge_command(
    name: &str,
    url: &str,
    headers: &[String],
    transport: TransportArg,
    max_message_mib: usize,
) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe()?;
    let mut cmd = vec![exe.to_string_lossy().into_owned(), "bridge".into(), "--name".into(), name.into()];
    cmd.extend(["--url".into(), url.into(), "--transport".into(), transport.as_str().into()]);
    cmd.extend(["--max-message-mib".into(), max_message_mib.to_string()]);
    for h in headers {
        cmd.extend(["--header".into(), h.clone()]);
    }
    Ok(cmd)
}
