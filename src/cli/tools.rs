//! `latch tools`: the tools servers list that Latch found something in (a
//! definition changed since it was pinned, text that addresses the model,
//! a name another server uses), and accepting a definition with the PIN.

use latch_proto::{ClientMsg, DaemonMsg, Pin, ToolFinding};

use super::pin::{PinSource, done, exchange};

#[derive(clap::Subcommand)]
pub enum ToolsCmd {
    /// List the tools with findings: server, tool, kind, since, reasons.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one tool's findings with the description's diff.
    Show {
        server: String,
        tool: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept the tool's definition as shown (needs the PIN when one is
    /// set): it becomes the pinned one, and its calls are decided by the
    /// policy again.
    Accept {
        server: String,
        tool: String,
        /// Read the PIN from standard input instead of the terminal.
        #[arg(long)]
        pin_stdin: bool,
    },
}

pub fn run(cmd: ToolsCmd) -> anyhow::Result<i32> {
    match cmd {
        ToolsCmd::List { json } => {
            let Some((items, _)) = findings()? else { return Ok(super::EXIT_NO_DAEMON) };
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if items.is_empty() {
                println!("no tool has findings");
            } else {
                let now = now_ms();
                for f in &items {
                    print_one(f, now, false);
                }
            }
            Ok(0)
        }
        ToolsCmd::Show { server, tool, json } => {
            let Some((items, _)) = findings()? else { return Ok(super::EXIT_NO_DAEMON) };
            let Some(f) = items.iter().find(|f| f.server == server && f.tool == tool) else {
                eprintln!("latch: tool {tool:?} of server {server:?} has no findings");
                return Ok(1);
            };
            if json {
                println!("{}", serde_json::to_string_pretty(f)?);
            } else {
                print_one(f, now_ms(), true);
            }
            Ok(0)
        }
        ToolsCmd::Accept { server, tool, pin_stdin } => accept(&server, &tool, pin_stdin),
    }
}

fn findings() -> anyhow::Result<Option<(Vec<ToolFinding>, bool)>> {
    match exchange(ClientMsg::ToolFindings { req: 1 }, |_| Ok(None))? {
        Some(DaemonMsg::ToolFindings { items, pin_set, .. }) => Ok(Some((items, pin_set))),
        Some(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        None => Ok(None),
    }
}

/// Shows the definition's findings, asks for the PIN, accepts exactly the
/// definition shown.
fn accept(server: &str, tool: &str, pin_stdin: bool) -> anyhow::Result<i32> {
    let mut source = PinSource::new(pin_stdin);
    let mut missing = false;
    let reply = exchange(ClientMsg::ToolFindings { req: 1 }, |reply| {
        let DaemonMsg::ToolFindings { items, pin_set, .. } = reply else {
            anyhow::bail!("unexpected answer from the daemon: {reply:?}");
        };
        let Some(f) = items.iter().find(|f| f.server == server && f.tool == tool) else {
            missing = true;
            return Ok(None);
        };
        print_one(f, now_ms(), true);
        let pin = if *pin_set { Some(Pin(source.read("PIN to accept this definition: ")?)) } else { None };
        Ok(Some(ClientMsg::ToolAccept {
            req: 2,
            server: f.server.clone(),
            tool: f.tool.clone(),
            hash: f.hash.clone(),
            pin,
        }))
    })?;
    if missing {
        eprintln!("latch: tool {tool:?} of server {server:?} has no findings to accept");
        return Ok(1);
    }
    done(reply)
}

fn print_one(f: &ToolFinding, now: i64, full: bool) {
    let since = if f.since > 0 { super::audit_list::when(f.since, now) } else { "before restart".to_owned() };
    println!(
        "{} {}  [{}]  since {}",
        latch_core::threat::visible(&f.server),
        latch_core::threat::visible(&f.tool),
        f.kinds.join(", "),
        since
    );
    for r in &f.reasons {
        println!("  - {}", latch_core::threat::visible(r));
    }
    if let Some(d) = &f.diff {
        let lines: Vec<&str> = d.lines().collect();
        let shown = if full { lines.len() } else { lines.len().min(12) };
        for l in &lines[..shown] {
            println!("    {}", latch_core::threat::visible(l));
        }
        if shown < lines.len() {
            println!("    … ({} more lines: latch tools show)", lines.len() - shown);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
