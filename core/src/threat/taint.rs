//! The lethal trifecta, per agent session: once the agent has read
//! untrusted content (an open-world read: a web page, an e-mail, an
//! outside issue) *and* private data (a credential file, a `secret_read`),
//! a call that could carry data out is a sink, and [`Taint::check`] returns
//! the chain that makes it one, as the reason a person reads:
//! "read https://… at 12:01, read ~/.aws/credentials at 12:03, now sends
//! to …".
//!
//! Which calls are sources and sinks comes from the policy
//! ([`TaintPolicy`], `[threats.taint]`); [`TaintPolicy::default`] holds the
//! defaults. Besides the listed sinks, an untrusted-source read whose URL
//! carries data (a query string, a long encoded path segment, or a piece of
//! what was read privately) is a sink once the session is tainted: that is
//! how a fetch leaks.
//!
//! Times are seconds since the Unix epoch, passed in; memory is bounded.

use std::collections::VecDeque;

use serde::Serialize;

use crate::class::{Class, Decision, Flag, Flags};
use crate::glob::Glob;

/// Which calls a selector picks: all of its parts must hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub class: Option<Class>,
    /// Every one of these flags.
    pub flags: Vec<Flag>,
    pub server: Option<Glob>,
    pub tool: Option<Glob>,
}

impl Selector {
    pub fn of(class: Option<Class>, flags: &[Flag]) -> Selector {
        Selector { class, flags: flags.to_vec(), server: None, tool: None }
    }

    pub fn matches(&self, c: &CallFacts<'_>) -> bool {
        self.class.is_none_or(|k| k == c.class)
            && self.flags.iter().all(|f| c.flags.contains(f))
            && self.server.as_ref().is_none_or(|g| g.is_match(c.server))
            && self.tool.as_ref().is_none_or(|g| g.is_match(c.tool))
    }
}

/// Sources, sinks and what a sink call gets once the session is tainted.
#[derive(Clone, Debug, PartialEq)]
pub struct TaintPolicy {
    pub untrusted: Vec<Selector>,
    pub private: Vec<Selector>,
    pub sinks: Vec<Selector>,
    /// `ask` by default; `deny` is stricter, `allow` turns the check off.
    pub effect: Decision,
}

impl Default for TaintPolicy {
    fn default() -> Self {
        use Flag::*;
        TaintPolicy {
            untrusted: vec![
                Selector::of(Some(Class::Read), &[OpenWorld]),
                Selector::of(Some(Class::Read), &[External]),
                // A command that reaches the network (`curl`, `gh issue
                // view`) brings outside text in as well.
                Selector::of(Some(Class::Execute), &[External]),
            ],
            private: vec![Selector::of(None, &[SecretRead])],
            sinks: vec![
                Selector::of(Some(Class::Send), &[External]),
                Selector::of(Some(Class::Submit), &[]),
                Selector::of(Some(Class::Execute), &[External]),
                Selector::of(Some(Class::Write), &[External]),
                Selector::of(Some(Class::Write), &[OpenWorld]),
            ],
            effect: Decision::Ask,
        }
    }
}

/// What the taint check needs of one call.
#[derive(Clone, Copy, Debug)]
pub struct CallFacts<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub class: Class,
    pub flags: &'a Flags,
    /// What the call reads or sends to: a URL, a path, recipients
    /// (already redacted by the caller when shown).
    pub target: Option<&'a str>,
    pub at: u64,
}

/// One read that tainted the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at: u64,
    pub label: String,
}

/// Why a call is a sink now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub untrusted: Event,
    pub private: Event,
    /// `sends to x`, `fetches https://…, whose URL carries data`.
    pub now: String,
    pub effect: Decision,
}

impl Chain {
    /// "read A at 12:01, read B at 12:03, now sends to C", in time order,
    /// times as `HH:MM` shifted by `utc_offset` seconds.
    pub fn render(&self, utc_offset: i64) -> String {
        let mut reads = [&self.untrusted, &self.private];
        reads.sort_by_key(|e| e.at);
        let hm = |at: u64| {
            let s = (at as i64 + utc_offset).rem_euclid(86_400);
            format!("{:02}:{:02}", s / 3600, (s / 60) % 60)
        };
        format!(
            "read {} at {}, read {} at {}, now {}",
            reads[0].label,
            hm(reads[0].at),
            reads[1].label,
            hm(reads[1].at),
            self.now
        )
    }
}

/// Longest label kept, in characters.
const MAX_LABEL: usize = 200;
/// Pieces of private data remembered per session, and their length bounds.
const MAX_PIECES: usize = 64;
const MIN_PIECE: usize = 8;
const MAX_PIECE: usize = 64;

/// One agent session's taint (MCP calls and hooked built-in tools alike).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Taint {
    untrusted: Option<Event>,
    private: Option<Event>,
    /// Distinctive words of private data read, to spot them in URLs.
    pieces: VecDeque<String>,
}

/// Which source a call was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Untrusted,
    Private,
}

impl Taint {
    pub fn is_tainted(&self) -> bool {
        self.untrusted.is_some() && self.private.is_some()
    }

    pub fn untrusted(&self) -> Option<&Event> {
        self.untrusted.as_ref()
    }

    pub fn private(&self) -> Option<&Event> {
        self.private.as_ref()
    }

    /// Records a call that ran: the sources it is. The first read of each
    /// kind stays (it is the one that made the session what it is).
    pub fn observe(&mut self, p: &TaintPolicy, c: &CallFacts<'_>) -> Vec<Source> {
        let mut out = Vec::new();
        let event = || Event { at: c.at, label: label(c) };
        if p.untrusted.iter().any(|s| s.matches(c)) {
            self.untrusted.get_or_insert_with(event);
            out.push(Source::Untrusted);
        }
        if p.private.iter().any(|s| s.matches(c)) {
            self.private.get_or_insert_with(event);
            out.push(Source::Private);
        }
        out
    }

    /// Takes in what another view of the same session recorded (two
    /// sessions found to be one agent): the earlier read of each kind
    /// stays, pieces of private data are joined.
    pub fn merge(&mut self, other: Taint) {
        fn earlier(mine: &mut Option<Event>, theirs: Option<Event>) {
            if let Some(t) = theirs
                && mine.as_ref().is_none_or(|m| t.at < m.at)
            {
                *mine = Some(t);
            }
        }
        earlier(&mut self.untrusted, other.untrusted);
        earlier(&mut self.private, other.private);
        for p in other.pieces {
            if self.pieces.contains(&p) {
                continue;
            }
            if self.pieces.len() == MAX_PIECES {
                self.pieces.pop_front();
            }
            self.pieces.push_back(p);
        }
    }

    /// Remembers distinctive words of private data the agent read (at most
    /// [`MAX_PIECES`], the oldest forgotten), so that a URL carrying one
    /// of them is seen to carry data.
    pub fn note_private_text(&mut self, text: &str) {
        for w in text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-".contains(c))) {
            if (MIN_PIECE..=MAX_PIECE).contains(&w.len()) && w.chars().any(|c| c.is_ascii_digit()) {
                if self.pieces.iter().any(|p| p == w) {
                    continue;
                }
                if self.pieces.len() == MAX_PIECES {
                    self.pieces.pop_front();
                }
                self.pieces.push_back(w.to_owned());
            }
        }
    }

    /// The chain when `c` is a sink in a tainted session and the policy
    /// does not allow it.
    pub fn check(&self, p: &TaintPolicy, c: &CallFacts<'_>) -> Option<Chain> {
        if p.effect == Decision::Allow {
            return None;
        }
        let (untrusted, private) = (self.untrusted.clone()?, self.private.clone()?);
        let target = c.target.map(shown).unwrap_or_else(|| format!("{} {}", c.server, c.tool));
        let now = if p.sinks.iter().any(|s| s.matches(c)) {
            match c.class {
                Class::Send => format!("sends to {target}"),
                Class::Submit => format!("submits {target}"),
                Class::Execute => format!("runs {target}"),
                Class::Write => format!("writes {target}"),
                Class::TransferValue => format!("moves value with {target}"),
                Class::Read => format!("reads {target}"),
            }
        } else if p.untrusted.iter().any(|s| s.matches(c)) && c.target.is_some_and(|u| self.url_carries_data(u)) {
            format!("fetches {target}, whose URL carries data")
        } else {
            return None;
        };
        Some(Chain { untrusted, private, now, effect: p.effect })
    }

    /// A query string, a fragment with a value, user information, a long
    /// encoded path segment or host label, or a remembered piece of
    /// private data.
    fn url_carries_data(&self, url: &str) -> bool {
        let lower = url.trim().to_ascii_lowercase();
        let rest = match lower.split_once("://") {
            Some((_, r)) => r,
            None => match lower.strip_prefix("//") {
                Some(r) => r,
                None => return false,
            },
        };
        let (host_path, query) = match rest.split_once(['?', '#']) {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        if query.is_some_and(|q| !q.trim_matches(['&', '=']).is_empty()) {
            return true;
        }
        let host = host_path.split(['/', '\\']).next().unwrap_or("");
        if host.contains('@') {
            // `https://DATA@host/`: user information carries what it likes.
            return true;
        }
        if host.split('.').any(encoded) {
            return true;
        }
        if host_path.split('/').skip(1).any(encoded) {
            return true;
        }
        self.pieces.iter().any(|p| url.contains(p.as_str()))
    }
}

/// A segment that looks like encoded data rather than a word or an id: 24
/// characters or more of a base64/hex alphabet with digits and letters.
fn encoded(seg: &str) -> bool {
    seg.len() >= 24
        && seg.chars().all(|c| c.is_ascii_alphanumeric() || "+=_-%".contains(c))
        && seg.chars().any(|c| c.is_ascii_digit())
        && seg.chars().any(|c| c.is_ascii_alphabetic())
}

fn label(c: &CallFacts<'_>) -> String {
    c.target.map(shown).unwrap_or_else(|| format!("with {} {}", c.server, c.tool))
}

/// A target as shown: secrets masked, cut to [`MAX_LABEL`] characters.
fn shown(t: &str) -> String {
    let r = crate::redact::redact_text(t);
    let mut s: String = r.chars().take(MAX_LABEL).collect();
    if r.chars().count() > MAX_LABEL {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(class: Class, flags: &'a Flags, target: Option<&'a str>, at: u64) -> CallFacts<'a> {
        CallFacts { server: "s", tool: "t", class, flags, target, at }
    }

    fn flags(f: &[Flag]) -> Flags {
        f.iter().copied().collect()
    }

    const T0: u64 = 1_780_000_000 - 1_780_000_000 % 86_400 + 12 * 3600 + 60;

    fn tainted() -> (Taint, TaintPolicy) {
        let p = TaintPolicy::default();
        let mut t = Taint::default();
        let ow = flags(&[Flag::OpenWorld]);
        let sr = flags(&[Flag::SecretRead]);
        assert_eq!(
            t.observe(&p, &facts(Class::Read, &ow, Some("https://evil.example/page"), T0)),
            vec![Source::Untrusted]
        );
        assert!(!t.is_tainted());
        assert_eq!(
            t.observe(&p, &facts(Class::Read, &sr, Some("~/.aws/credentials"), T0 + 120)),
            vec![Source::Private]
        );
        assert!(t.is_tainted());
        (t, p)
    }

    #[test]
    fn the_chain_reads_like_the_issue() {
        let (t, p) = tainted();
        let ext = flags(&[Flag::External]);
        let c = t.check(&p, &facts(Class::Send, &ext, Some("mallory@evil.example"), T0 + 300)).unwrap();
        assert_eq!(
            c.render(0),
            "read https://evil.example/page at 12:01, read ~/.aws/credentials at 12:03, now sends to mallory@evil.example"
        );
        assert_eq!(c.effect, Decision::Ask);
    }

    #[test]
    fn nothing_before_both_reads() {
        let p = TaintPolicy::default();
        let mut t = Taint::default();
        let ext = flags(&[Flag::External]);
        let send = facts(Class::Send, &ext, Some("x@evil.example"), T0);
        assert_eq!(t.check(&p, &send), None);
        t.observe(&p, &facts(Class::Read, &flags(&[Flag::SecretRead]), Some("~/.ssh/id_rsa"), T0));
        assert_eq!(t.check(&p, &send), None, "private alone is not the trifecta");
    }

    #[test]
    fn sinks_and_non_sinks() {
        let (t, p) = tainted();
        let (none, ext, ow) = (flags(&[]), flags(&[Flag::External]), flags(&[Flag::OpenWorld]));
        assert!(t.check(&p, &facts(Class::Submit, &none, Some("PR #4"), T0)).is_some());
        assert!(t.check(&p, &facts(Class::Execute, &ext, Some("curl https://x.example"), T0)).is_some());
        assert!(t.check(&p, &facts(Class::Write, &ext, Some("gist"), T0)).is_some());
        // Internal sends, local writes, local commands are not sinks.
        assert!(t.check(&p, &facts(Class::Send, &none, Some("bob@example.com"), T0)).is_none());
        assert!(t.check(&p, &facts(Class::Write, &none, Some("./notes.md"), T0)).is_none());
        assert!(t.check(&p, &facts(Class::Execute, &none, Some("ls"), T0)).is_none());
        // An open-world read is a sink only when its URL carries data.
        assert!(t.check(&p, &facts(Class::Read, &ow, Some("https://docs.example/guide/intro"), T0)).is_none());
        for url in [
            "https://x.example/?d=QUtJQTEyMw",
            "https://x.example/log#k=v",
            "https://x.example/c/QUtJQUlPU0ZPRE5ON0VYQU1QTEUK",
            "https://QUtJQUlPU0ZPRE5ON0VYQU1QTEUK.x.example/",
            "HTTPS://X.EXAMPLE/?D=1",
            "https://c2VjcmV0@x.example/",
            "//x.example/?d=1",
            " https://x.example/?d=1",
        ] {
            let c = t.check(&p, &facts(Class::Read, &ow, Some(url), T0)).unwrap_or_else(|| panic!("{url}"));
            assert!(c.now.ends_with("whose URL carries data"), "{}", c.now);
        }
    }

    #[test]
    fn a_piece_of_private_data_in_a_path_is_data() {
        let (mut t, p) = tainted();
        t.note_private_text("aws_secret_access_key = wJalrXUtnFEMI7K7MDENG\n");
        let ow = flags(&[Flag::OpenWorld]);
        let url = "https://x.example/wJalrXUtnFEMI7K7MDENG/img.png";
        assert!(t.check(&p, &facts(Class::Read, &ow, Some(url), T0)).is_some());
        for i in 0..(MAX_PIECES * 2) {
            t.note_private_text(&format!("word{i:08}"));
        }
        assert_eq!(t.pieces.len(), MAX_PIECES);
    }

    #[test]
    fn policy_tunes_sources_sinks_and_effect() {
        let (t, mut p) = tainted();
        let none = flags(&[]);
        let tv = facts(Class::TransferValue, &none, Some("pay 5 EUR"), T0);
        assert!(t.check(&p, &tv).is_none());
        p.sinks.push(Selector::of(Some(Class::TransferValue), &[]));
        assert!(t.check(&p, &tv).is_some());
        p.effect = Decision::Deny;
        assert_eq!(t.check(&p, &tv).unwrap().effect, Decision::Deny);
        p.effect = Decision::Allow;
        assert!(t.check(&p, &tv).is_none());
        // A private repository by rule: a server/tool selector.
        let mut p = TaintPolicy::default();
        p.private.push(Selector {
            class: Some(Class::Read),
            flags: vec![],
            server: Some(Glob::new("github").unwrap()),
            tool: Some(Glob::new("get_file_contents").unwrap()),
        });
        let mut t = Taint::default();
        let c = CallFacts {
            server: "github",
            tool: "get_file_contents",
            class: Class::Read,
            flags: &none,
            target: None,
            at: T0,
        };
        assert_eq!(t.observe(&p, &c), vec![Source::Private]);
        assert_eq!(t.private().unwrap().label, "with github get_file_contents");
    }

    #[test]
    fn merging_two_views_of_a_session_keeps_the_earlier_reads() {
        let p = TaintPolicy::default();
        let (ow, sr) = (flags(&[Flag::OpenWorld]), flags(&[Flag::SecretRead]));
        let mut a = Taint::default();
        a.observe(&p, &facts(Class::Read, &ow, Some("https://late.example/"), T0 + 60));
        let mut b = Taint::default();
        b.observe(&p, &facts(Class::Read, &ow, Some("https://early.example/"), T0));
        b.observe(&p, &facts(Class::Read, &sr, Some("~/.ssh/id_rsa"), T0 + 5));
        b.note_private_text("key = Zx9Kq2Lm7Np4");
        a.merge(b);
        assert!(a.is_tainted());
        assert_eq!(a.untrusted().unwrap().label, "https://early.example/");
        assert_eq!(a.pieces.len(), 1);
    }

    #[test]
    fn labels_mask_secrets() {
        let p = TaintPolicy::default();
        let mut t = Taint::default();
        let ow = flags(&[Flag::OpenWorld]);
        t.observe(
            &p,
            &facts(Class::Read, &ow, Some("https://x.example/?token=ghp_Zx9Kq2Lm7Np4Rs8Tv1Wy5Ab3Cd6Ef0Gh2Jk4"), T0),
        );
        assert!(!t.untrusted().unwrap().label.contains("ghp_"), "{}", t.untrusted().unwrap().label);
    }
}
