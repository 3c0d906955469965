//! `under = "DIR/"`: a path argument inside a folder, by what it says and,
//! where the file system can be asked, by where it leads.
//!
//! A folder written as text is not a boundary: a symlink inside it leads
//! anywhere (`proj/link/x` with `proj/link -> ~/elsewhere`). So the test
//! has two parts:
//!
//! - **written**: the text starts with the folder as written (ending in
//!   `/`) and has no `..` segment;
//! - **resolved**: in every reading a server may give it (as Latch reads
//!   it: `file://`, `~` and variables expanded; as written, for a server
//!   that expands nothing; joined to the working directory and the
//!   server's roots; `..` walked as the kernel walks it and as
//!   `path.resolve` collapses it), resolved by the daemon's
//!   [`Resolver`], the path lies inside the folder resolved the same way.
//!
//! An allow rule needs both, for every reading and every value at a `*`
//! path: a path that cannot be resolved (an unknown start, the file system
//! not answering, the call's budget spent) does not match, and the call
//! goes on to the next rule or the default. A deny or ask rule needs
//! either, in any reading, so a symlink cannot lead a call out of its
//! reach; where it cannot read a path, the call is not allowed without a
//! person ([`Resolving::unsure`]). Without a resolver (the shim under a lease, a pure
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

use crate::path::{Lexical, MAX_PATH, collapse, expanded, is_under, normalise};

use super::protect::Place;

/// Paths resolved for one call's rules; past this they count as
/// unresolvable (an allow does not match, a deny or ask makes the call
/// ask).
const MAX_RESOLVES: usize = 128;

/// `s` has a `..` segment (`/` or `\` separated).
pub(crate) fn has_dotdot(s: &str) -> bool {
    s.split(['/', '\\']).any(|seg| seg == "..")
}

/// The written part: `text` starts with `dir` and has no `..` segment.
pub(crate) fn written_under(dir: &str, text: &str) -> bool {
    text.starts_with(dir) && !has_dotdot(text)
}

/// The file system as one call's path tests may ask it.
pub(crate) struct Resolving<'a> {
    pub place: Place<'a>,
    used: Cell<usize>,
    /// A deny or ask rule could not read some path of the call (past the
    /// budget, an unknown start, the file system silent): the call is not
    /// allowed without a person ([`Resolving::unsure`]).
    unsure: Cell<bool>,
    frozen: Cell<bool>,
}

/// Where a path leads, in every reading a server may give it, resolved.
struct Readings {
    real: Vec<String>,
    /// Every reading was resolved.
    complete: bool,
}

impl<'a> Resolving<'a> {
    pub fn new(place: Place<'a>) -> Resolving<'a> {
        Resolving { place, used: Cell::new(0), unsure: Cell::new(false), frozen: Cell::new(false) }
    }

    /// Some deny or ask rule could not read a path of this call.
    pub fn unsure(&self) -> bool {
        self.unsure.get()
    }

    /// The deciding rule is found: what later rules (read for `explain`)
    /// cannot read no longer counts.
    pub fn freeze(&self) {
        self.frozen.set(true);
    }

    fn mark_unsure(&self) {
        if !self.frozen.get() {
            self.unsure.set(true);
        }
    }

    /// Where the absolute path `abs` leads; `None` when unknown.
    fn resolve(&self, abs: &str) -> Option<String> {
        self.resolve_entry(abs).map(|(real, _)| real)
    }

    /// [`Resolving::resolve`], and whether the path exists.
    fn resolve_entry(&self, abs: &str) -> Option<(String, bool)> {
        let resolver = self.place.resolver?;
        let n = self.used.get();
        if n >= MAX_RESOLVES {
            return None;
        }
        self.used.set(n + 1);
        let r = resolver.resolve(abs)?;
        let real = if r.real.len() > 1 { r.real.trim_end_matches('/') } else { &r.real };
        let real = if self.place.env.case_insensitive { real.to_lowercase() } else { real.to_owned() };
        Some((real, r.file.is_some()))
    }

    /// The folder of an `under` test (no `..`: the parser refuses it),
    /// resolved.
    fn folder(&self, dir: &str) -> Option<String> {
        self.resolve(&collapse(&expanded(dir, self.place.env)?, true))
    }

    /// The absolute paths a server may act on for `text`, resolved:
    /// - as Latch reads it (`file://` unwrapped, `~` and variables
    ///   expanded, joined to the working directory), walked as the kernel
    ///   walks it (`..` after a link leaves the link's target), and with
    ///   `.` and `..` first collapsed as text (what `path.resolve` does);
    /// - as written, for a server that expands nothing (a name with `$`,
    ///   `~` or blanks at either end is a name), joined to the working
    ///   directory and to each root of the server when relative, walked and
    ///   collapsed the same two ways.
    fn readings(&self, text: &str) -> Readings {
        let env = self.place.env;
        let mut abs: Vec<String> = Vec::new();
        let mut complete = true;
        match expanded(text, env) {
            Some(e) => {
                abs.push(collapse(&e, true));
                abs.push(e);
            }
            None => complete = false,
        }
        let uri = is_file_uri(text);
        if uri {
            match file_url_path(text) {
                Some(p) => {
                    let p = if env.case_insensitive { p.to_lowercase() } else { p };
                    abs.push(collapse(&p, true));
                    abs.push(p);
                }
                None => complete = false,
            }
        }
        if !uri && !text.is_empty() && text.len() <= MAX_PATH && !text.contains('\0') {
            let text = if env.case_insensitive { text.to_lowercase() } else { text.to_owned() };
            let mut bases: Vec<&str> = Vec::new();
            if text.starts_with('/') {
                bases.push("");
            } else {
                match &env.cwd {
                    Some(c) => bases.push(c),
                    None => complete = false,
                }
                bases.extend(env.roots.iter().map(String::as_str));
            }
            for base in bases {
                // A server that does not expand `~` reads a folder named
                // `~`: a reading only when there is one.
                if text.starts_with('~') && !base.is_empty() {
                    let entry = format!("{base}/{}", text.split('/').next().unwrap_or_default());
                    match self.resolve_entry(&entry) {
                        // Neither there nor a link (a dangling one leads
                        // elsewhere: its reading counts).
                        Some((real, false)) if real == entry => continue,
                        Some(_) => {}
                        None => complete = false,
                    }
                }
                let joined = if base.is_empty() { text.clone() } else { format!("{base}/{text}") };
                abs.push(collapse(&joined, true));
                abs.push(joined);
            }
        }
        let mut real: Vec<String> = Vec::new();
        for a in dedup(abs) {
            match self.resolve(&a) {
                Some(r) if !real.contains(&r) => real.push(r),
                Some(_) => {}
                None => complete = false,
            }
        }
        let complete = complete && !real.is_empty();
        Readings { real, complete }
    }

    /// The other forms of a path a deny or ask rule's tests also read: as
    /// Latch reads it (collapsed) and every resolved reading; each only
    /// when it differs from the text. A path that cannot be read whole
    /// makes the call [`Resolving::unsure`].
    pub(crate) fn other_forms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(Lexical::Abs(abs)) = normalise(text, self.place.env) {
            out.push(abs);
        }
        if self.place.resolver.is_some() {
            let r = self.readings(text);
            if !r.complete {
                self.mark_unsure();
            }
            out.extend(r.real);
        }
        dedup(out).into_iter().filter(|f| f != text).collect()
    }
}

/// The text is a `file:` URL (as a URL parser sees it: blanks and
/// control characters around it dropped, the scheme in any case).
fn is_file_uri(text: &str) -> bool {
    let t = text.trim_matches(|c: char| c <= ' ');
    t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("file:"))
}

/// The path a URL parser (WHATWG, as Node's `fileURLToPath(new URL(…))`,
/// or Python's `urllib`) finds in a `file:` URL: blanks and controls
/// around it and tabs and line breaks inside dropped, `\` read as `/`, a
/// host of `localhost` (any case) or none, the query and fragment cut,
/// escapes decoded. `None` for another host or an undecodable path.
fn file_url_path(text: &str) -> Option<String> {
    let t: String =
        text.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let rest = t.get(5..)?.replace('\\', "/");
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            let host = &after[..end];
            if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                return None;
            }
            after[end..].to_owned()
        }
        None => rest,
    };
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    let mut out = Vec::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push(b'/');
    }
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    let p = String::from_utf8(out).ok()?;
    (!p.contains('\0') && p.len() <= MAX_PATH).then_some(p)
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// A text a deny or ask rule's tests also read in its other forms: under
/// a path-like key, or spelled like a path (`/`, `~`, `$`, a `file:` URL).
pub(crate) fn reads_as_path(key: Option<&str>, text: &str) -> bool {
    key.is_some_and(super::protect::is_path_key) || text.starts_with(['/', '~', '$']) || is_file_uri(text)
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
    // A `file:` URL with escapes, a query, a fragment, backslashes or
    // blanks is read one way by Latch and perhaps another by the server:
    // never allowed by its folder.
    if allow && is_file_uri(text) && text.contains(|c: char| "%?#\\".contains(c) || c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let Some(d) = at.folder(dir) else {
        if !allow {
            at.mark_unsure();
        }
        return false;
    };
    let r = at.readings(text);
    // An allow reaches into the folder; a deny or ask covers the folder
    // itself too (listing it, removing it).
    let inside = |p: &String| (p != &d || !allow) && is_under(p, &d);
    if allow {
        r.complete && r.real.iter().all(inside)
    } else {
        if !r.complete {
            at.mark_unsure();
        }
        r.real.iter().any(inside)
    }
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
            let abs = crate::path::collapse(abs, true);
            let abs = abs.as_str();
            let links = [
                ("/w/proj/link", "/w/other"),
                ("/w/proj/up", "/w"),
                ("/w/etc-link", "/etc"),
                ("/w/proj/config", "/w/proj/.env"),
                ("/w/proj/evil ", "/w/secret/key"),
                ("/w/proj/${X:-a}", "/w/secret"),
                ("/w/proj/d\u{a0}", "/w/secret"),
                ("/c/~", "/w/other"),
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

    /// Names a server takes as written and Latch would read otherwise
    /// (trailing blanks, `$`), escapes in a `file://` path, every element
    /// of a list, and a call with more paths than the budget.
    #[test]
    fn every_reading_a_server_may_give_a_path_counts() {
        use crate::class::Decision::{Allow, Ask, Deny};
        use serde_json::json;
        let env = env();
        let at = Resolving::new(Place::new(&env, Some(&Links)));
        for sneaky in ["/w/proj/evil ", "/w/proj/${X:-a}/key", "/w/proj/d\u{a0}/key", "file:///w/proj/link/%2e%2e/key"]
        {
            assert!(!holds("/w/proj/", sneaky, Some(&at), true), "{sneaky:?}");
        }
        assert!(holds("/w/secret/", "/w/proj/evil ", Some(&at), false));
        assert!(holds("/w/secret/", "/w/proj/${X:-a}/key", Some(&at), false));
        let allow = "[defaults]\nread = \"ask\"\n\n[[rule]]\ntool = \"read_file\"\nargs = [{ path = \"paths.*\", under = \"/w/proj/\" }]\neffect = \"allow\"\n";
        assert_eq!(decided(allow, "read_file", json!({"paths": ["/w/proj/a", "/w/proj/b"]})), Allow);
        assert_eq!(decided(allow, "read_file", json!({"paths": ["/w/proj/a", "/etc/shadow"]})), Ask, "every element");
        assert_eq!(decided(allow, "read_file", json!({"paths": []})), Ask);
        let nested = allow.replace("paths.*", "files.*.path");
        assert_eq!(decided(&nested, "read_file", json!({"files": [{"path": "/w/proj/a"}]})), Allow);
        for odd in [json!(["/etc/shadow"]), json!([{"file": "/etc/shadow"}]), json!([{"Path": "/etc/shadow"}])] {
            let mut files = vec![json!({"path": "/w/proj/a"})];
            files.extend(odd.as_array().unwrap().iter().cloned());
            assert_eq!(decided(&nested, "read_file", json!({ "files": files })), Ask, "{files:?}");
        }
        let deny = "[[rule]]\ntool = \"read_file\"\nargs = [{ path = \"paths.*\", under = \"/w/secret/\" }]\neffect = \"deny\"\n";
        assert_eq!(decided(deny, "read_file", json!({"paths": ["/w/proj/link/../../secret/k"]})), Deny);
        let mut many: Vec<String> = (0..200).map(|i| format!("/w/proj/f{i}")).collect();
        many.push("/w/proj/evil ".into());
        let ev = |args: serde_json::Value| decided(deny, "read_file", args);
        assert_eq!(ev(json!({"paths": ["/w/proj/evil "]})), Deny);
        assert_eq!(ev(json!({"paths": many})), Ask, "past the budget a deny rule cannot say no: a person decides");
        assert_eq!(ev(json!({"paths": ["/w/proj/f1"]})), Allow);
    }

    /// `file:` URLs as URL parsers read them, and a `~` that is a link in
    /// the working directory for a server that does not expand it.
    #[test]
    fn urls_and_tilde_links_are_read_the_servers_ways() {
        let env = env();
        let at = Resolving::new(Place::new(&env, Some(&Links)));
        for sneaky in
            ["file:///w/proj/link?x", "file:///w/proj/link#x", "file:///w/proj/.\t./other/x", "file:///w/proj\\link"]
        {
            assert!(!holds("file:///w/proj/", sneaky, Some(&at), true), "{sneaky:?}");
        }
        assert!(holds("file:///w/proj/", "file:///w/proj/a.txt", Some(&at), true));
        for spelled in [
            "file:/w/other/x",
            "FILE:/w/other/x",
            "file:w/other/x",
            "file:\\w\\other\\x",
            "file://LocalHost/w/other/x",
            " file:/w/other/x",
            "file:///w/proj/link?x",
            "file:///w/proj/l\tink/x",
        ] {
            let at = Resolving::new(Place::new(&env, Some(&Links)));
            assert!(holds("/w/other/", spelled, Some(&at), false), "{spelled:?}");
            assert!(!at.unsure(), "{spelled:?}");
        }
        let at = Resolving::new(Place::new(&env, Some(&Links)));
        assert!(!holds("/w/other/", "file://host.example/w/other/x", Some(&at), false));
        assert!(at.unsure(), "another host cannot be read: the call asks");
        let c = PathEnv { cwd: Some("/c".into()), ..env.clone() };
        let at = Resolving::new(Place::new(&c, Some(&Links)));
        assert!(holds("/w/other/", "~/x", Some(&at), false), "a `~` link where the server looks");
        assert!(!holds("~/proj/", "~/proj/x", Some(&at), true));
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
