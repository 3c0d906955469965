//! `latch bridge`: the child `latch shim --url` starts (hidden from
//! --help). Stdio towards the shim, HTTP towards the remote server.

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportArg {
    Auto,
    Streamable,
    Sse,
}

impl TransportArg {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportArg::Auto => "auto",
            TransportArg::Streamable => "streamable",
            TransportArg::Sse => "sse",
        }
    }
}

#[derive(clap::Args)]
pub struct BridgeArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    url: String,
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    transport: TransportArg,
    #[arg(long, default_value_t = 256)]
    max_message_mib: usize,
}

pub fn run(a: BridgeArgs) -> anyhow::Result<i32> {
    let home = super::paths()?.data_dir;
    let mut headers = a.headers;
    // `latch install` passes a remote entry's headers in the environment
    // (one `Name: value` a line), where the client has expanded its own
    // variables and no other user can read them.
    if let Ok(lines) = std::env::var(latch_install::REMOTE_HEADERS_ENV) {
        headers.extend(lines.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned));
    }
    let opts = latch_remote::Options {
        name: a.name,
        url: a.url,
        headers,
        transport: match a.transport {
            TransportArg::Auto => latch_remote::Transport::Auto,
            TransportArg::Streamable => latch_remote::Transport::Streamable,
            TransportArg::Sse => latch_remote::Transport::Sse,
        },
        max_message: a.max_message_mib.saturating_mul(1024 * 1024),
        home,
    };
    match latch_remote::run(opts) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("latch bridge: {e}");
            Ok(1)
        }
    }
}
