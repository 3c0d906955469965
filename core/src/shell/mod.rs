//! A shell-word parser for POSIX sh and bash command strings, for deciding
//! what a command would run and touch, never for running it.
//!
//! [`parse`] turns a command string into the simple commands it would run
//! ([`Command`]: words and redirections), in order, nested ones included:
//! `$(…)` and backquotes, `<(…)`, subshells and brace groups, the command
//! that a wrapper runs (`env`, `sudo`, `nohup`, `timeout N`, `xargs`,
//! `exec`, `command`, `nice`, `find -exec`, …), and the strings given to
//! `bash -c`, `sh -c`, `zsh -c`, `eval` and `env -S`, parsed again.
//!
//! Words get their literal value the way the shell would build it: single
//! and double quotes, `$'…'` with its escapes (`\x`, `\u`, octal, …),
//! backslashes, `$X`, `${X}`, `${X:-d}`, `${X:=d}`, `${X:+w}` from the
//! variables given as data and those assigned earlier in the same string
//! (`x=lat; ${x}ch approve`), and unquoted expansions split into words
//! (`rm${IFS}-rf`). `$(which X)`, `$(command -v X)`, `$(echo X)` and
//! friends are given their obvious value. What cannot be known statically
//! (a variable nobody set, `$(…)` output, `$?`, `${x%y}`) marks the word
//! [`Word::unknown`]; the part after the last unknown expansion is still
//! known ([`Word::known_tail`]), so `$(pwd)/.config/latch/policy.toml`
//! can be compared by its end.
//!
//! Bounds: input length ([`MAX_INPUT`]), nesting depth ([`MAX_DEPTH`]),
//! number of commands and the length of a variable's value. Past any of
//! them the result is marked [`Script::truncated`]; callers must then be
//! conservative. Pure: no IO, no process spawned, nothing evaluated.

mod lexer;
mod links;
mod script;
mod wrappers;

pub use links::Followed;
pub use script::{Command, MAX_COMMANDS, MAX_DEPTH, MAX_INPUT, Redirect, RedirectKind, Script, Vars, Word};

/// Parses a command string. `vars` are the variables of the environment it
/// runs in; variables not there and not assigned in the string are unknown.
pub fn parse(src: &str, vars: &Vars) -> Script {
    let mut script = Script::default();
    if src.len() > MAX_INPUT {
        script.truncated = true;
        return script;
    }
    let mut state = lexer::State::new(vars);
    lexer::parse_into(src, &mut state, &mut script, 0);
    script
}

#[cfg(test)]
mod tests;
