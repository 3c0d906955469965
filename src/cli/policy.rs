//! `latch policy check|explain|test`.

#[derive(clap::Subcommand)]
pub enum PolicyCmd {
    /// Validate the policy file.
    Check,
}

pub fn run(_cmd: PolicyCmd) -> anyhow::Result<i32> {
    anyhow::bail!("policy commands are not wired yet")
}
