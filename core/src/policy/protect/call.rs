//! One call as self-protection reads it: where its paths are read
//! ([`Place`]), the reading context, and what was found ([`Finding`]).

use crate::path::{PathEnv, Resolver};

/// Paths the file system is asked about for one call; past this the call
/// asks.
pub(super) const MAX_RESOLVES: usize = 256;

/// Where a call's paths are read: the server's environment and working
/// directory, and the file system when the caller can ask it.
#[derive(Clone, Copy)]
pub struct Place<'a> {
    pub env: &'a PathEnv,
    pub resolver: Option<&'a dyn Resolver>,
    /// The client's MCP roots (`file://` URIs or absolute paths) when it
    /// sent them: the workspace ([`crate::path::workspace`]).
    pub client_roots: Option<&'a [String]>,
}

impl<'a> Place<'a> {
    /// A place with no client roots.
    pub fn new(env: &'a PathEnv, resolver: Option<&'a dyn Resolver>) -> Place<'a> {
        Place { env, resolver, client_roots: None }
    }
}

/// Why a call touches Latch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Deny; otherwise the call asks at least.
    pub deny: bool,
    pub why: String,
}

impl Finding {
    pub(super) fn deny(why: String) -> Finding {
        Finding { deny: true, why }
    }
    pub(super) fn ask(why: String) -> Finding {
        Finding { deny: false, why }
    }
}

/// The per-call reading context.
pub(crate) struct Ctx<'a> {
    pub place: Place<'a>,
    /// The call writes (its class is not READ).
    pub write: bool,
    /// Its strings are shell commands (EXECUTE or the `shell` flag).
    pub shell: bool,
    /// It may remove or move what a path names, folders included.
    pub removes: bool,
    /// Paths the file system was asked about so far.
    pub resolves: &'a std::cell::Cell<usize>,
}

impl Ctx<'_> {
    /// The resolver, while the call's budget lasts.
    pub fn resolver(&self) -> Option<&dyn Resolver> {
        let n = self.resolves.get();
        self.resolves.set(n + 1);
        if n < MAX_RESOLVES { self.place.resolver } else { None }
    }

    /// The budget ran out: some paths were compared lexically only.
    pub fn over_budget(&self) -> bool {
        self.resolves.get() > MAX_RESOLVES
    }
}
