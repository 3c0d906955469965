//! What a command string parses to: its simple commands, their words and
//! redirects, and the bounds of the parse.

use std::collections::BTreeMap;

/// Longest command string parsed (bytes).
pub const MAX_INPUT: usize = 64 * 1024;
/// Deepest nesting of `$(…)`, `bash -c`, `eval`, subshells.
pub const MAX_DEPTH: usize = 8;
/// Most simple commands kept from one string.
pub const MAX_COMMANDS: usize = 2048;

/// One shell word after quoting and expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word {
    /// The literal value (unknown expansions contribute nothing).
    pub text: String,
    /// Some part of it could not be known statically.
    pub unknown: bool,
    /// Byte offset in `text` after the last unknown expansion: the part
    /// from here on is known.
    pub known_from: usize,
    /// Has an unquoted `*`, `?` or `[`.
    pub glob: bool,
}

impl Word {
    /// The part of the word after the last unknown expansion.
    pub fn known_tail(&self) -> &str {
        &self.text[self.known_from.min(self.text.len())..]
    }

    /// The whole value is known.
    pub fn is_known(&self) -> bool {
        !self.unknown
    }

    /// A word with this literal value.
    pub(super) fn literal(s: &str) -> Word {
        Word { text: s.to_owned(), ..Word::default() }
    }
}

/// What a redirection does with its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
    /// `<`, `<<<` (a here-string has no file, see [`Redirect::target`]).
    Read,
    /// `>`, `>|`, `&>`, `>&file`.
    Write,
    /// `>>`, `&>>`.
    Append,
    /// `<>`.
    ReadWrite,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub fd: Option<u32>,
    pub kind: RedirectKind,
    /// The file; `None` for duplications (`2>&1`), here-documents and
    /// here-strings.
    pub target: Option<Word>,
}

/// One simple command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// The command name and its arguments (assignments before it are in
    /// `assigns`).
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
    /// `NAME=value` words before the command name.
    pub assigns: Vec<(String, Word)>,
    /// The wrapper that runs this command (`sudo`, `xargs`, `bash -c`, …),
    /// when it was found inside one.
    pub via: Option<String>,
    /// More arguments arrive at run time (`xargs`, `find -exec … {}`).
    pub more_args: bool,
    /// How deep it was nested.
    pub depth: usize,
}

impl Command {
    /// The command name, when there is one.
    pub fn name(&self) -> Option<&Word> {
        self.words.first()
    }

    /// The name's last path component (`/usr/bin/rm` → `rm`), when known.
    pub fn base_name(&self) -> Option<&str> {
        let w = self.words.first()?;
        if w.unknown {
            return None;
        }
        Some(w.text.rsplit('/').next().unwrap_or(&w.text))
    }

    /// The arguments after the name.
    pub fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }
}

/// Everything a command string would run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    /// Simple commands in the order the text gives them; a wrapper's inner
    /// command follows the wrapper.
    pub commands: Vec<Command>,
    /// A bound was reached: the string may run more than is listed.
    pub truncated: bool,
    /// The text is not complete shell (an open quote, a missing `)`).
    pub malformed: bool,
}

/// Variables known before the string runs (the server's environment).
pub type Vars = BTreeMap<String, String>;
