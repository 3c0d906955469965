//! One call as self-protection reads it: where its paths are read
//! ([`Place`]), the reading context, and what was found ([`Finding`]).

use std::cell::{Cell, RefCell};

use crate::path::{self, PathEnv, Resolved, Resolver};

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
    pub resolves: &'a Cell<usize>,
    /// The first path the file system could not follow (a chain of links
    /// or steps too long, a `/proc/self` walk): where it leads is unknown,
    /// so the call asks.
    pub unfollowed: &'a RefCell<Option<String>>,
}

impl Ctx<'_> {
    /// The resolver, while the call's budget lasts.
    pub fn resolver(&self) -> Option<&dyn Resolver> {
        let n = self.resolves.get();
        self.resolves.set(n + 1);
        if n < MAX_RESOLVES { self.place.resolver } else { None }
    }

    /// Where the absolute path `abs` leads, while the budget lasts. A path
    /// the resolver cannot follow is remembered in [`Ctx::unfollowed`]
    /// unless it names only the process that opens it
    /// ([`path::names_the_opener`]).
    pub fn resolve(&self, abs: &str) -> Option<Resolved> {
        let got = self.resolver()?.resolve(abs);
        if got.is_none() && !path::names_the_opener(abs) {
            self.unfollowed.borrow_mut().get_or_insert_with(|| abs.to_owned());
        }
        got
    }

    /// The budget ran out: some paths were compared lexically only.
    pub fn over_budget(&self) -> bool {
        self.resolves.get() > MAX_RESOLVES
    }
}
