//! Action classes, risk flags and decisions.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a tool call does, from least to most consequential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Class {
    Read,
    Write,
    Send,
    Execute,
    Submit,
    TransferValue,
}

impl Class {
    pub const ALL: [Class; 6] =
        [Class::Read, Class::Write, Class::Send, Class::Execute, Class::Submit, Class::TransferValue];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "READ",
            Class::Write => "WRITE",
            Class::Send => "SEND",
            Class::Execute => "EXECUTE",
            Class::Submit => "SUBMIT",
            Class::TransferValue => "TRANSFER_VALUE",
        }
    }

    /// Parses `READ`, `read`, `transfer_value` …
    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Risk flags beside the class, which policy rules can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// May delete or overwrite (annotation `destructiveHint`, or words).
    Destructive,
    /// Reaches a host or address outside the user's internal domains.
    External,
    /// Runs a shell command or code.
    Shell,
    /// The arguments carry something that looks like a secret.
    SecretsInArgs,
    /// Talks to the open world (annotation `openWorldHint`).
    OpenWorld,
    /// Touches Latch itself (its policy, database, socket or binary).
    SelfProtect,
    /// The arguments were too large, deep or wide to check completely; the
    /// policy never allows such a call without asking.
    Unchecked,
    /// Writes where a foothold persists: `~/.ssh`, shell start-up files,
    /// credential stores, git hooks, cron, service units, `/etc`.
    Persistence,
    /// Reads a credential file, a private key or a `.env` file.
    SecretRead,
    /// Nothing in the name, description, annotations or arguments says
    /// what the call does (the class is a cautious guess).
    NoEvidence,
    /// Writes outside the workspace: the client's roots when it sent them,
    /// else the server's working directory and the folders on its command
    /// line, plus the policy's `[workspace] paths`.
    OutsideWorkspace,
}

impl Flag {
    pub const ALL: [Flag; 11] = [
        Flag::Destructive,
        Flag::External,
        Flag::Shell,
        Flag::SecretsInArgs,
        Flag::OpenWorld,
        Flag::SelfProtect,
        Flag::Unchecked,
        Flag::Persistence,
        Flag::SecretRead,
        Flag::NoEvidence,
        Flag::OutsideWorkspace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Destructive => "destructive",
            Flag::External => "external",
            Flag::Shell => "shell",
            Flag::SecretsInArgs => "secrets_in_args",
            Flag::OpenWorld => "open_world",
            Flag::SelfProtect => "self_protect",
            Flag::Unchecked => "unchecked",
            Flag::Persistence => "persistence",
            Flag::SecretRead => "secret_read",
            Flag::NoEvidence => "no_evidence",
            Flag::OutsideWorkspace => "outside_workspace",
        }
    }

    pub fn parse(s: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

pub type Flags = BTreeSet<Flag>;

/// What happens to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Ask,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
