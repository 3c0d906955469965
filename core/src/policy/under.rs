//! `under = "DIR/"`: a path argument inside a folder, by what it says and,
//! where the file system can be asked, by where it leads.
//!
//! A folder written as text is not a boundary: a symlink inside it leads
//! anywhere (`proj/link/x` with `proj/link -> ~/elsewhere`). So the test
//! has two parts:
//!
//! - **written**: the text starts with the folder as written (ending in
//!   `/`) and has no `..` segment;
//! - **resolved**: read in the server's place ([`Place`]: home, working
//!   directory) and resolved by the daemon's [`Resolver`], the path lies
//!   inside the folder resolved the same way.
//!
//! An allow rule needs both: a path that cannot be resolved (an unknown
//! start, the file system not answering, the call's budget spent) does
//! not match, and the call goes on to the next rule or the default. A
//! deny or ask rule needs either, so a symlink cannot lead a call out of
//! its reach. Without a resolver (the shim under a lease, a pure
//! evaluation) only the written part counts; the shim therefore never
//! decides a call that an `under` rule may concern (see `lease.rs`).
//! The check runs when the call is decided: a link swapped in after that
//! is outside what any decision on the arguments can see.
//!
//! The same forms widen the reach of a deny or ask rule's `equals`,
//! `one_of`, `glob`, `prefix` and `regex` on a path ([`Resolving::other_forms`]): such a rule also
//! matches the path as the server reads it and where it leads, so
//! `/tmp/../etc/hosts` or a link to `/etc` meets a rule on `/etc/`. Allow
//! rules and `not = true` stay with the written text (one side of a
//! comparison resolved and the other not would refuse legitimate paths
//! under a linked home); `under` is the folder test that resolves both.

use std::cell::Cell;

use crate::path::{Lexical, is_under, normalise};

use super::protect::Place;

/// Paths resolved for `under` tests in one call; past this they count as
/// unresolvable.
const MAX_RESOLVES: usize = 256;

/// `s` has a `..` segment (`/` or `\` separated).
pub(crate) fn has_dotdot(s: &str) -> bool {
    s.split(['/', '\\']).any(|seg| seg == "..")
}

/// The written part: `text` starts with `dir` and has no `..` segment.
pub(crate) fn written_under(dir: &str, text: &str) -> bool {
    text.starts_with(dir) && !has_dotdot(text)
}

/// The file system as one call's `under` tests may ask it.
pub(crate) struct Resolving<'a> {
    pub place: Place<'a>,
    used: Cell<usize>,
}

impl<'a> Resolving<'a> {
    pub fn new(place: Place<'a>) -> Resolving<'a> {
        Resolving { place, used: Cell::new(0) }
    }

    /// Where `raw` leads, absolute and resolved; `None` when unknown.
    fn real(&self, raw: &str) -> Option<String> {
        let resolver = self.place.resolver?;
        let n = self.used.get();
        if n >= MAX_RESOLVES {
            return None;
        }
        self.used.set(n + 1);
        let Lexical::Abs(abs) = normalise(raw, self.place.env)? else { return None };
        let real = resolver.resolve(&abs)?.real;
        Some(if self.place.env.case_insensitive { real.to_lowercase() } else { real })
    }

    /// The resolved part: `Some(inside)`, or `None` when either path
    /// cannot be resolved.
    fn resolved_under(&self, dir: &str, text: &str) -> Option<bool> {
        let d = self.real(dir)?;
        let p = self.real(text)?;
        Some(p != d && is_under(&p, &d))
    }
}

/// A text a deny or ask rule's tests also read in its other forms: under a path-like key, or spelled like a path (`/`,
/// `~`, `$`, `file://`).
pub(crate) fn reads_as_path(key: Option<&str>, text: &str) -> bool {
    key.is_some_and(super::protect::is_path_key)
        || text.starts_with(['/', '~', '$'])
        || text.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("file://"))
}

impl Resolving<'_> {
    /// The other forms of a path the server may act on: read in the
    /// server's place (`~`, variables, the working directory, `.`, `..`,
    /// `//`), then with symlinks resolved; each only when it differs.
    pub(crate) fn other_forms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let Some(Lexical::Abs(abs)) = normalise(text, self.place.env) else { return out };
        if abs != text {
            out.push(abs);
        }
        if let Some(real) = self.real(text)
            && real != text
            && !out.contains(&real)
        {
            out.push(real);
        }
        out
    }
}

/// The `under` test of one value, for a rule with or without the effect
/// allow.
pub(crate) fn holds(dir: &str, text: &str, at: Option<&Resolving<'_>>, allow: bool) -> bool {
    let written = written_under(dir, text);
    let Some(at) = at.filter(|r| r.place.resolver.is_some()) else { return written };
    if written != allow {
        // An allow the text already refuses; a deny or ask the text
        // already brings in.
        return written;
    }
    at.resolved_under(dir, text).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::path::{PathEnv, Resolved, Resolver};

    /// `/w/proj/link` leads to `/w/other`, `/w/proj/up` to `/w`,
    /// `/w/etc-link` to `/etc`, `/w/proj/config` to `/w/proj/.env`.
    struct Links;

    impl Resolver for Links {
        fn resolve(&self, abs: &str) -> Option<Resolved> {
            let links = [
                ("/w/proj/link", "/w/other"),
                ("/w/proj/up", "/w"),
                ("/w/etc-link", "/etc"),
                ("/w/proj/config", "/w/proj/.env"),
            ];
            let real = links
                .iter()
                .find_map(|(from, to)| {
                    (abs == *from || abs.starts_with(&format!("{from}/")))
                        .then(|| format!("{to}{}", &abs[from.len()..]))
                })
                .unwrap_or_else(|| abs.to_owned());
            Some(Resolved { real, file: None })
        }
    }

    struct Silent;

    impl Resolver for Silent {
        fn resolve(&self, _: &str) -> Option<Resolved> {
            None
        }
    }

    fn env() -> PathEnv {
        PathEnv { home: Some("/w".into()), cwd: Some("/w".into()), vars: BTreeMap::new(), ..PathEnv::default() }
    }

    #[test]
    fn an_allow_needs_the_written_and_the_resolved_path_inside() {
        let env = env();
        let at = Resolving::new(Place::new(&env, Some(&Links)));
        assert!(holds("/w/proj/", "/w/proj/a.txt", Some(&at), true));
        assert!(holds("/w/proj/", "/w/proj/sub/new.txt", Some(&at), true));
        assert!(!holds("/w/proj/", "/w/proj/link/a.txt", Some(&at), true), "a symlink out of the folder");
        assert!(!holds("/w/proj/", "/w/proj/up/proj2/a.txt", Some(&at), true));
        assert!(!holds("/w/proj/", "/w/proj/link", Some(&at), true), "the link itself leads out");
        assert!(!holds("/w/proj/", "/w/proj/../etc/passwd", Some(&at), true));
        assert!(!holds("/w/proj/", "/w/project/a", Some(&at), true));
        // Relative forms are read in the server's place.
        assert!(holds("proj/", "proj/a.txt", Some(&at), true));
        assert!(!holds("proj/", "proj/link/a.txt", Some(&at), true));
        assert!(holds("~/proj/", "~/proj/a.txt", Some(&at), true));
        assert!(!holds("~/proj/", "~/proj/link/x", Some(&at), true));
    }

    #[test]
    fn a_deny_or_ask_matches_the_written_or_the_resolved_path() {
        let env = env();
        let at = Resolving::new(Place::new(&env, Some(&Links)));
        assert!(holds("/w/other/", "/w/other/a", Some(&at), false));
        assert!(holds("/w/other/", "/w/proj/link/a", Some(&at), false), "led into the folder by a symlink");
        assert!(holds("/w/other/", "proj/link/a", Some(&at), false));
        assert!(!holds("/w/other/", "/w/proj/a", Some(&at), false));
    }

    #[test]
    fn what_cannot_be_resolved_never_allows() {
        let no_cwd = PathEnv::default();
        let at = Resolving::new(Place::new(&no_cwd, Some(&Links)));
        assert!(!holds("proj/", "proj/a.txt", Some(&at), true), "unknown working directory");
        assert!(holds("proj/", "proj/a.txt", Some(&at), false));
        let env = env();
        let silent = Resolving::new(Place::new(&env, Some(&Silent)));
        assert!(!holds("/w/proj/", "/w/proj/a.txt", Some(&silent), true));
        assert!(holds("/w/proj/", "/w/proj/a.txt", Some(&silent), false));
        // Past the budget, nothing more is resolved.
        let at = Resolving::new(Place::new(&env, Some(&Links)));
        for _ in 0..MAX_RESOLVES / 2 {
            assert!(holds("/w/proj/", "/w/proj/a.txt", Some(&at), true));
        }
        assert!(!holds("/w/proj/", "/w/proj/a.txt", Some(&at), true));
        assert!(!holds("/w/other/", "/w/proj/link/a", Some(&at), false), "text only past the budget");
    }

    fn decided(rules: &str, tool: &str, args: serde_json::Value) -> crate::class::Decision {
        let p = crate::policy::Policy::parse(rules).unwrap();
        let env = env();
        let call = crate::Call { server: "fs", tool, args: &args };
        let place = Place::new(&env, Some(&Links));
        crate::decide_with(&p, &call, None, &[], place, crate::policy::Facts::default()).evaluation.decision
    }

    #[test]
    fn a_deny_on_a_path_reads_it_as_the_server_would_and_where_it_leads() {
        use crate::class::Decision::{Allow, Deny};
        use serde_json::json;
        let etc =
            "[[rule]]\ntool = \"read_file\"\nargs = [{ path = \"path\", prefix = \"/etc/\" }]\neffect = \"deny\"\n";
        let d = |path: &str| decided(etc, "read_file", json!({ "path": path }));
        assert_eq!(d("/etc/hosts"), Deny);
        assert_eq!(d("/w/../etc/hosts"), Deny, "dot-dot");
        assert_eq!(d("/w/etc-link/hosts"), Deny, "a link to /etc");
        assert_eq!(d("etc-link/hosts"), Deny, "relative, through the link");
        assert_eq!(d("~/../../etc/hosts"), Deny, "from home");
        assert_eq!(d("file:///etc//hosts"), Deny);
        assert_eq!(d("/w/proj/a.txt"), Allow);
        let env_file =
            "[[rule]]\ntool = \"read_file\"\nargs = [{ path = \"files.*\", glob = \"**/.env\" }]\neffect = \"deny\"\n";
        assert_eq!(decided(env_file, "read_file", json!({"files": ["/w/proj/a", "/w/proj/config"]})), Deny);
        let exact = "[[rule]]\ntool = \"read_file\"\nargs = [{ path = \"path\", equals = \"/etc/hosts\" }]\neffect = \"deny\"\n";
        assert_eq!(decided(exact, "read_file", json!({"path": "/w/etc-link/hosts"})), Deny);
        // Text that is not a path under a key that is not one: as written.
        let text =
            "[[rule]]\ntool = \"read_file\"\nargs = [{ path = \"note\", regex = \"^/etc/\" }]\neffect = \"deny\"\n";
        assert_eq!(decided(text, "read_file", json!({"note": "/w/etc-link/x"})), Deny, "spelled like a path");
        assert_eq!(decided(text, "read_file", json!({"note": "see etc-link/x"})), Allow);
        // `not = true` and allow rules stay with the text.
        let not = "[[rule]]\ntool = \"read_file\"\nargs = [{ path = \"path\", prefix = \"/w/\", not = true }]\neffect = \"deny\"\n";
        assert_eq!(decided(not, "read_file", json!({"path": "/w/etc-link/hosts"})), Allow);
    }

    #[test]
    fn without_a_resolver_only_the_text_counts() {
        let env = env();
        let none = Resolving::new(Place::new(&env, None));
        assert!(holds("/w/proj/", "/w/proj/link/a.txt", Some(&none), true));
        assert!(holds("/w/proj/", "/w/proj/link/a.txt", None, true));
        assert!(!holds("/w/proj/", "/w/proj/../x", None, true));
        assert!(!holds("/w/proj/", "/w/proj/..\\x", None, true));
    }
}
