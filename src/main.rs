//! `latch`: security guardrails for AI agents. `main` only dispatches.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "latch", version, about = "Security guardrails for AI agents' MCP tool calls")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run an MCP server through Latch: `latch shim --name NAME -- CMD [ARGS...]`,
    /// or a remote one: `latch shim --name NAME --url URL`.
    Shim(cli::shim::ShimArgs),
    /// OAuth tokens of remote MCP servers: list, login NAME --url URL, logout NAME.
    #[command(subcommand)]
    Auth(cli::auth::AuthCmd),
    /// The HTTP side of `latch shim --url` (started by the shim).
    #[command(hide = true)]
    Bridge(cli::bridge::BridgeArgs),
    /// Run the daemon in the foreground (shims start one on demand).
    Daemon(cli::DaemonArgs),
    /// Set up system mode: the daemon as a dedicated system user (root).
    Setup(cli::system::SetupArgs),
    /// Is the daemon up, which shims are connected, where is the database.
    Status(cli::client::JsonFlag),
    /// List approvals waiting for a human.
    Pending(cli::client::JsonFlag),
    /// Approve a pending call.
    Approve(cli::client::ApproveArgs),
    /// Deny a pending call.
    Deny(cli::client::DenyArgs),
    /// Show recent audit rows, newest first.
    Audit(cli::client::AuditArgs),
    /// Check, explain and test the policy file.
    #[command(subcommand)]
    Policy(cli::policy::PolicyCmd),
    /// The approval console: pending approvals, live calls, history.
    Tui,
    /// The approval PIN: approvals and looser policies need the person.
    #[command(subcommand)]
    Pin(cli::pin::PinCmd),
    /// The kill switch: deny every tool call of every shim and hook, and
    /// every pending approval, until a person resumes.
    Stop,
    /// Lift the kill switch (needs the PIN when one is set).
    Resume {
        /// Read the PIN from standard input instead of the terminal.
        #[arg(long)]
        pin_stdin: bool,
    },
    /// Tools whose definition changed since first seen, or holds text aimed
    /// at the model: list, show SERVER TOOL, accept SERVER TOOL (with the PIN).
    #[command(subcommand)]
    Tools(cli::tools::ToolsCmd),
    /// Make MCP clients start their servers through Latch (all found, or one).
    Install(cli::install::InstallArgs),
    /// Put the clients' server entries back as they were.
    Uninstall(cli::install::InstallArgs),
    /// What is protected, what is not, and whether Latch is healthy.
    Doctor(cli::doctor::DoctorArgs),
    /// A coding agent's pre-tool hook (claude-code, codex, gemini, copilot):
    /// the hook's JSON on stdin, the agent's answer on stdout.
    Hook(cli::hook::HookArgs),
    /// A one-minute tour in a throw-away home: a scripted agent, real MCP
    /// servers, the console; allow, ask and deny happen.
    Demo(cli::demo::DemoArgs),
    /// Print a shell completion script: `latch completions bash >
    /// ~/.local/share/bash-completion/completions/latch` (zsh, fish,
    /// elvish, powershell alike).
    Completions { shell: clap_complete::Shell },
    /// Your policy's rules with who added each: list, show N, delete N
    /// (the undo of an "always").
    #[command(subcommand)]
    Rules(cli::rules::RulesCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Shim(args) => cli::shim::run(args),
        Cmd::Auth(cmd) => cli::auth::run(cmd),
        Cmd::Bridge(args) => cli::bridge::run(args),
        Cmd::Daemon(a) => cli::daemon(a),
        Cmd::Setup(a) => cli::system::setup(a),
        Cmd::Status(a) => cli::client::status(a),
        Cmd::Pending(a) => cli::client::pending(a),
        Cmd::Approve(a) => cli::client::approve(a),
        Cmd::Deny(a) => cli::client::deny(a),
        Cmd::Audit(a) => cli::client::audit(a),
        Cmd::Policy(cmd) => cli::policy::run(cmd),
        Cmd::Tui => cli::tui(),
        Cmd::Pin(cmd) => cli::pin::run(cmd),
        Cmd::Stop => cli::stop::stop(),
        Cmd::Resume { pin_stdin } => cli::stop::resume(pin_stdin),
        Cmd::Tools(cmd) => cli::tools::run(cmd),
        Cmd::Install(a) => cli::install::run(a, latch_install::Action::Install),
        Cmd::Uninstall(a) => cli::install::run(a, latch_install::Action::Uninstall),
        Cmd::Doctor(a) => cli::doctor::run(a),
        Cmd::Demo(a) => cli::demo::run(a),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "latch", &mut std::io::stdout());
            Ok(0)
        }
        Cmd::Hook(a) => cli::hook::run(a),
        Cmd::Rules(cmd) => cli::rules::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("latch: {e:#}");
            // A mistake in what was typed is a usage error, like clap's own.
            ExitCode::from(if e.is::<cli::Usage>() { 2 } else { cli::EXIT_ERROR })
        }
    }
}
