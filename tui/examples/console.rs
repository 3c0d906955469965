//! `cargo run -p latch-tui --example console`: the console on its own, for
//! trying it against a running daemon (honours `LATCH_HOME`) before the
//! `latch tui` subcommand is wired.

fn main() -> std::process::ExitCode {
    let paths = match latch_proto::paths::Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("latch tui: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match latch_tui::run(paths) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latch tui: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
