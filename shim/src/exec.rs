//! The shim as a small binary of its own (`latch-shim`, beside `latch`).
//!
//! A shim runs for as long as its MCP server, one per server, so its
//! memory counts many times over; most of the `latch` binary's pages it
//! touches are code it never runs. `latch shim` therefore replaces itself
//! (`exec`) with `latch-shim`, which links only the shim, when that binary
//! sits beside it and is from the same build ([`BUILD`]); otherwise it runs
//! the shim in-process, with the same arguments and exit codes.
//!
//! The two speak through [`to_args`] / [`from_args`]: `latch shim`'s own
//! options, spelled as `latch shim` takes them, so a `latch-shim` that
//! finds it is from another build can hand them back to `latch shim`
//! ([`IN_PROCESS`]).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Options;

/// The small binary's file name.
pub const BINARY: &str = "latch-shim";

/// A hash of the sources a shim is built from (this crate, the protocol,
/// the core): equal in `latch` and `latch-shim` of one build.
pub const BUILD: &str = env!("LATCH_SHIM_BUILD");

/// Set (to anything) when `latch shim` must run in-process: by a
/// `latch-shim` of another build handing back, or by a person.
pub const IN_PROCESS: &str = "LATCH_SHIM_IN_PROCESS";

/// The first argument `latch` passes: the build it expects.
const BUILD_FLAG: &str = "--build";

/// The `latch-shim` beside the running executable, if any.
pub fn beside(exe: &Path) -> Option<PathBuf> {
    let small = exe.parent()?.join(BINARY);
    small.is_file().then_some(small)
}

/// The `latch` executable: this one, or for `latch-shim` the `latch` beside
/// it (which starts the daemon and serves `latch bridge`).
pub fn latch_exe() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if exe.file_name().is_some_and(|n| n == BINARY) {
        return Ok(exe.with_file_name("latch"));
    }
    Ok(exe)
}

/// Replaces this `latch shim` process with `latch-shim` when it sits beside
/// the executable; returns (to run in-process) when it does not, when
/// [`IN_PROCESS`] is set, or when the `exec` fails.
pub fn replace_self(opts: &Options) {
    if std::env::var_os(IN_PROCESS).is_some() {
        // SAFETY: called from `latch`'s main thread before any other
        // thread exists; the server must not inherit the variable.
        unsafe { std::env::remove_var(IN_PROCESS) };
        return;
    }
    let Some(small) = std::env::current_exe().ok().and_then(|e| beside(&e)) else { return };
    let mut args: Vec<OsString> = vec![BUILD_FLAG.into(), BUILD.into()];
    args.extend(to_args(opts).into_iter().map(OsString::from));
    let err = std::process::Command::new(&small).arg0(BINARY).args(args).exec();
    eprintln!("latch shim: could not start {}: {err}; running in-process", small.display());
}

/// `latch shim`'s options as `latch shim` takes them.
pub fn to_args(opts: &Options) -> Vec<String> {
    let mut a =
        vec!["--name".to_owned(), opts.name.clone(), "--grace".to_owned(), opts.grace.as_secs_f64().to_string()];
    a.extend(["--max-message-mib".to_owned(), (opts.max_message / (1024 * 1024)).to_string()]);
    if !opts.autostart {
        a.push("--no-autostart".into());
    }
    if opts.allow_reads_offline {
        a.push("--allow-reads-offline".into());
    }
    a.push("--".into());
    a.extend(opts.command.iter().cloned());
    a
}

/// What `latch-shim` was started with.
#[derive(Debug, PartialEq)]
pub enum Start {
    /// Run the shim with these options (paths still to fill in).
    Run { name: String, command: Vec<String>, grace: Duration, max_mib: usize, autostart: bool, reads: bool },
    /// `latch` is from another build: hand these arguments back to
    /// `latch shim`.
    OtherBuild(Vec<String>),
}

/// Reads `latch-shim`'s arguments (without the program name): the build,
/// then [`to_args`]'s form. Anything else is a usage error (the binary is
/// `latch`'s, not for people).
pub fn from_args(args: &[String]) -> Result<Start, String> {
    let usage = || format!("{BINARY} is started by `latch shim`; run that instead");
    let (Some(flag), Some(build)) = (args.first(), args.get(1)) else { return Err(usage()) };
    if flag != BUILD_FLAG {
        return Err(usage());
    }
    let rest = &args[2..];
    if build != BUILD {
        return Ok(Start::OtherBuild(rest.to_vec()));
    }
    let (mut name, mut grace, mut max_mib, mut autostart, mut reads) = (None, 2.0, 256, true, false);
    let mut i = 0;
    while i < rest.len() {
        let value = |i: usize| rest.get(i + 1).ok_or_else(usage);
        match rest[i].as_str() {
            "--name" => name = Some(value(i)?.clone()),
            "--grace" => grace = value(i)?.parse::<f64>().map_err(|_| usage())?,
            "--max-message-mib" => max_mib = value(i)?.parse().map_err(|_| usage())?,
            "--no-autostart" => {
                autostart = false;
                i += 1;
                continue;
            }
            "--allow-reads-offline" => {
                reads = true;
                i += 1;
                continue;
            }
            "--" => {
                let command = rest[i + 1..].to_vec();
                let name = name.ok_or_else(usage)?;
                if command.is_empty() {
                    return Err(usage());
                }
                let grace = Duration::from_secs_f64(grace.clamp(0.0, 1e9));
                return Ok(Start::Run { name, command, grace, max_mib, autostart, reads });
            }
            _ => return Err(usage()),
        }
        i += 2;
    }
    Err(usage())
}

/// Starts this process as `latch-shim`: the daemon it accepts is the one
/// that runs the `latch` beside it (`latch_proto::peer`).
pub fn as_small_binary() -> std::io::Result<()> {
    latch_proto::peer::speak_for(latch_exe()?);
    Ok(())
}

/// `latch-shim` from another build than the `latch` beside it: `latch shim`
/// runs in-process with the same arguments. Returns only if that fails.
pub fn hand_back(args: Vec<String>) -> std::io::Error {
    let latch = match latch_exe() {
        Ok(l) => l,
        Err(e) => return e,
    };
    std::process::Command::new(latch).arg("shim").args(args).env(IN_PROCESS, "1").exec()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use latch_proto::paths::Paths;

    use super::*;

    fn opts() -> Options {
        let paths = Paths::resolve(Some(PathBuf::from("/nonexistent/latch")), None).unwrap();
        let mut o = Options::new("fs".into(), vec!["server".into(), "--name".into(), "--".into()], paths);
        o.grace = Duration::from_millis(1500);
        o.max_message = 8 << 20;
        o.autostart = false;
        o
    }

    fn with_build(build: &str, args: Vec<String>) -> Vec<String> {
        let mut a = vec![BUILD_FLAG.to_owned(), build.to_owned()];
        a.extend(args);
        a
    }

    #[test]
    fn options_go_through_the_arguments_unchanged() {
        let o = opts();
        let start = from_args(&with_build(BUILD, to_args(&o))).unwrap();
        let want = Start::Run {
            name: "fs".into(),
            command: o.command.clone(),
            grace: o.grace,
            max_mib: 8,
            autostart: false,
            reads: false,
        };
        assert_eq!(start, want);
    }

    #[test]
    fn another_builds_arguments_go_back_to_latch() {
        let args = to_args(&opts());
        assert_eq!(from_args(&with_build("0000", args.clone())).unwrap(), Start::OtherBuild(args));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            vec![],
            vec!["--name".to_owned(), "x".into(), "--".into(), "s".into()],
            with_build(BUILD, vec!["--name".into(), "x".into()]),
            with_build(BUILD, vec!["--name".into(), "x".into(), "--".into()]),
            with_build(BUILD, vec!["--url".into(), "http://x".into(), "--".into(), "s".into()]),
            with_build(BUILD, vec!["--".into(), "s".into()]),
        ] {
            assert!(from_args(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn latch_is_found_beside_the_small_binary() {
        let exe = latch_exe().unwrap();
        assert_ne!(exe.file_name().unwrap(), BINARY);
    }
}
