//! Compiled rules and how they match one call.
//!
//! Every matcher of a rule must hold for the rule to match (AND); within a
//! list (`tool = ["a", "b"]`, `class = ["SEND", "SUBMIT"]`, `one_of`) any
//! element may (OR). Matchers are checked cheapest first: class and flags
//! are bit tests, server and tool are string comparisons for plain names,
//! domains and arguments come last.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::judge::Condition;
use super::under::{self, Resolving};
use crate::class::{Class, Decision, Flag, Flags};
use crate::classify::{Call, Classification};
use crate::glob::Glob;

/// One `[[rule]]` of the user's policy, compiled.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rule {
    /// How the rule is shown: its `name`, or `rule #N (line L)`.
    pub id: String,
    /// 1-based line of the rule's `[[rule]]` header.
    pub line: usize,
    /// Empty = any server.
    pub servers: Vec<Glob>,
    /// Empty = any tool.
    pub tools: Vec<Glob>,
    /// Bit per class (see [`class_bit`]); all bits = any class.
    pub classes: u8,
    pub flags_required: u32,
    pub flags_forbidden: u32,
    pub any_domain: Vec<String>,
    pub only_domains: Vec<String>,
    pub args: Vec<ArgMatcher>,
    pub effect: Decision,
    /// The user's own words, shown with the decision.
    pub reason: Option<String>,
    /// A plain-English condition a model judges; the rule applies only
    /// when it holds ([`super::judge`]).
    pub condition: Option<Condition>,
    /// The matchers in one line, for `explain`.
    pub summary: String,
}

pub(crate) const ALL_CLASSES: u8 = (1 << Class::ALL.len()) - 1;

pub(crate) fn class_bit(c: Class) -> u8 {
    1 << Class::ALL.iter().position(|&x| x == c).expect("in ALL")
}

// Every flag has a bit in a rule's masks.
const _: () = assert!(Flag::ALL.len() <= 32);

pub(crate) fn flag_bit(f: Flag) -> u32 {
    1 << Flag::ALL.iter().position(|&x| x == f).expect("in ALL")
}

pub(crate) fn flags_mask(flags: &Flags) -> u32 {
    flags.iter().fold(0, |m, &f| m | flag_bit(f))
}

/// What a rule is matched against.
pub(crate) struct Subject<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub args: &'a Value,
    pub class: u8,
    pub flags: u32,
    pub domains: &'a [String],
    /// The file system for `under` tests, when the caller can ask it.
    pub at: Option<&'a Resolving<'a>>,
}

impl<'a> Subject<'a> {
    pub fn of(call: &Call<'a>, cls: &'a Classification, at: Option<&'a Resolving<'a>>) -> Subject<'a> {
        Subject {
            server: call.server,
            tool: call.tool,
            args: call.args,
            class: class_bit(cls.class),
            flags: flags_mask(&cls.flags),
            domains: &cls.domains,
            at,
        }
    }
}

impl Rule {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        self.classes & s.class != 0
            && self.flags_required & s.flags == self.flags_required
            && self.flags_forbidden & s.flags == 0
            && (self.servers.is_empty() || self.servers.iter().any(|g| g.is_match(s.server)))
            && (self.tools.is_empty() || self.tools.iter().any(|g| g.is_match(s.tool)))
            && (self.any_domain.is_empty() || s.domains.iter().any(|d| self.any_domain.iter().any(|x| host_in(d, x))))
            && (self.only_domains.is_empty()
                || (!s.domains.is_empty() && s.domains.iter().all(|d| self.only_domains.iter().any(|x| host_in(d, x)))))
            && self.args.iter().all(|m| m.matches(s.args, s.at, self.effect == Decision::Allow))
    }

    /// `rule "name" (line L)`, or `rule #N (line L)` for an unnamed rule.
    pub fn label(&self) -> String {
        if self.id.starts_with("rule #") || self.id.starts_with("managed ") {
            self.id.clone()
        } else {
            format!("rule {:?} (line {})", self.id, self.line)
        }
    }

    /// Builds [`Rule::summary`] from the matchers.
    pub fn summarize(&mut self) {
        let mut out = String::new();
        let mut part = |s: String| {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(&s);
        };
        let globs = |g: &[Glob]| g.iter().map(Glob::as_str).collect::<Vec<_>>().join(" | ");
        if !self.servers.is_empty() {
            part(format!("server {}", globs(&self.servers)));
        }
        if !self.tools.is_empty() {
            part(format!("tool {}", globs(&self.tools)));
        }
        if self.classes != ALL_CLASSES {
            let names: Vec<_> =
                Class::ALL.iter().filter(|c| self.classes & class_bit(**c) != 0).map(|c| c.as_str()).collect();
            part(format!("class {}", names.join(" | ")));
        }
        for f in Flag::ALL {
            if self.flags_required & flag_bit(f) != 0 {
                part(format!("flag {f}", f = f.as_str()));
            }
            if self.flags_forbidden & flag_bit(f) != 0 {
                part(format!("no flag {f}", f = f.as_str()));
            }
        }
        if !self.any_domain.is_empty() {
            part(format!("any domain in {}", self.any_domain.join(" | ")));
        }
        if !self.only_domains.is_empty() {
            part(format!("only domains {}", self.only_domains.join(" | ")));
        }
        for a in &self.args {
            part(a.describe());
        }
        if out.is_empty() {
            out.push_str("every call");
        }
        self.summary = out;
    }

    /// Some argument test of the rule resolves paths (`under`).
    pub fn resolves_paths(&self) -> bool {
        self.args.iter().any(|m| matches!(m.op, Op::Under(_)))
    }

    /// True when the rule matches every call (only `*` globs, no other
    /// matcher, no condition): every later rule is unreachable.
    pub fn matches_everything(&self) -> bool {
        self.condition.is_none()
            && self.servers.iter().all(Glob::is_match_all)
            && self.tools.iter().all(Glob::is_match_all)
            && self.classes == ALL_CLASSES
            && self.flags_required == 0
            && self.flags_forbidden == 0
            && self.any_domain.is_empty()
            && self.only_domains.is_empty()
            && self.args.is_empty()
    }
}

/// Rule numbers by the server and tool names they can match, built once at
/// parse time, so that a call only looks at the rules that may concern it.
/// A rule whose server (tool) matchers are all plain names is filed under
/// those names; one with a glob, or without that matcher, is filed as
/// "any". [`RuleIndex::candidates`] merges the four lists that can apply
/// back into file order, so first-match-wins is unchanged.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RuleIndex {
    both: HashMap<String, HashMap<String, Vec<u32>>>,
    server_only: HashMap<String, Vec<u32>>,
    tool_only: HashMap<String, Vec<u32>>,
    any: Vec<u32>,
}

fn literals(globs: &[Glob]) -> Option<Vec<&str>> {
    if globs.is_empty() {
        return None;
    }
    let mut v: Vec<&str> = globs.iter().map(Glob::as_literal).collect::<Option<_>>()?;
    v.sort_unstable();
    v.dedup();
    Some(v)
}

impl RuleIndex {
    pub fn build(rules: &[Rule]) -> RuleIndex {
        let mut ix = RuleIndex::default();
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            match (literals(&r.servers), literals(&r.tools)) {
                (Some(ss), Some(ts)) => {
                    for s in &ss {
                        let by_tool = ix.both.entry((*s).to_owned()).or_default();
                        for t in &ts {
                            by_tool.entry((*t).to_owned()).or_default().push(i);
                        }
                    }
                }
                (Some(ss), None) => ss.iter().for_each(|s| ix.server_only.entry((*s).to_owned()).or_default().push(i)),
                (None, Some(ts)) => ts.iter().for_each(|t| ix.tool_only.entry((*t).to_owned()).or_default().push(i)),
                (None, None) => ix.any.push(i),
            }
        }
        ix
    }

    /// Numbers of the rules that may match this server and tool, in file
    /// order.
    pub fn candidates(&self, server: &str, tool: &str) -> Candidates<'_> {
        let none: &[u32] = &[];
        Candidates {
            lists: [
                self.both.get(server).and_then(|m| m.get(tool)).map_or(none, Vec::as_slice),
                self.server_only.get(server).map_or(none, Vec::as_slice),
                self.tool_only.get(tool).map_or(none, Vec::as_slice),
                &self.any,
            ],
        }
    }
}

/// A merge of four sorted lists of rule numbers.
pub(crate) struct Candidates<'a> {
    lists: [&'a [u32]; 4],
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (k, l) in self.lists.iter().enumerate() {
            if let Some(&h) = l.first()
                && best.is_none_or(|(_, b)| h < b)
            {
                best = Some((k, h));
            }
        }
        let (k, h) = best?;
        self.lists[k] = &self.lists[k][1..];
        Some(h as usize)
    }
}

/// `host` is `domain` or one of its subdomains. Both lower-case.
pub(crate) fn host_in(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// True when `host` (lower-case) is one of the internal domains or a
/// subdomain of one.
// The classifier's `is_internal` was not in classify.rs when this was
// written; this one has the same semantics (exact or subdomain).
pub(crate) fn is_internal(host: &str, internal: &[String]) -> bool {
    internal.iter().any(|d| host_in(host, d))
}

/// One segment of an argument path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Seg {
    /// An object key; `index` when it is a number, for arrays.
    Key { key: String, index: Option<usize> },
    /// `*`: every element of an array, every value of an object.
    Any,
}

/// A compiled regular expression, compared by its source.
#[derive(Clone, Debug)]
pub(crate) struct Re(pub regex::Regex);

impl PartialEq for Re {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Equals(Value),
    OneOf(Vec<Value>),
    Glob(Glob),
    Regex(Re),
    Prefix(String),
    /// A path inside this folder (ending in `/`), written and resolved
    /// ([`super::under`]).
    Under(String),
    /// One simple command whose words start with these
    /// ([`super::command`]).
    Command(Vec<String>),
}

/// `{ path = "recipients.*", glob = "*@example.com" }`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ArgMatcher {
    pub path_src: String,
    pub path: Vec<Seg>,
    pub op: Op,
    pub not: bool,
}

impl ArgMatcher {
    /// `allow`: the rule allows (an `under` test then needs the resolved
    /// path inside too, not just the written one). A deny or ask rule's
    /// `equals`, `one_of`, `glob`, `prefix` or `regex` on a path also reads
    /// the path's other forms ([`super::under`]).
    pub fn matches(&self, args: &Value, at: Option<&Resolving<'_>>, allow: bool) -> bool {
        if let Op::Under(dir) = &self.op {
            let holds = |v: &Value| v.as_str().is_some_and(|t| under::holds(dir, t, at, allow));
            // An allow holds for every value at a `*` path, not just one.
            let found = if allow { all_at(args, &self.path, &holds) } else { any_at(args, &self.path, &holds) };
            return found != self.not;
        }
        let widen = !allow && !self.not && !matches!(self.op, Op::Command(_));
        match at.filter(|_| widen) {
            Some(at) => {
                let key = self.last_key();
                let holds = |v: &Value| {
                    self.op.holds(v)
                        || v.as_str().is_some_and(|t| {
                            under::reads_as_path(key, t) && at.other_forms(t).iter().any(|f| self.op.form_holds(f))
                        })
                };
                any_at(args, &self.path, &holds)
            }
            None => any_at(args, &self.path, &|v| self.op.holds(v)) != self.not,
        }
    }

    /// The last key of the matcher's path (`paths` for `paths.*`).
    fn last_key(&self) -> Option<&str> {
        self.path.iter().rev().find_map(|s| match s {
            Seg::Key { key, .. } => Some(key.as_str()),
            Seg::Any => None,
        })
    }

    fn describe(&self) -> String {
        let mut s = format!("args.{} ", self.path_src);
        if self.not {
            s.push_str("not ");
        }
        let _ = match &self.op {
            Op::Equals(v) => write!(s, "equals {v}"),
            Op::OneOf(vs) => write!(s, "one of {}", Value::Array(vs.clone())),
            Op::Glob(g) => write!(s, "glob {:?}", g.as_str()),
            Op::Regex(r) => write!(s, "regex {:?}", r.0.as_str()),
            Op::Prefix(p) => write!(s, "prefix {p:?}"),
            Op::Under(d) => write!(s, "under {d:?}"),
            Op::Command(w) => write!(s, "command starts {:?}", w.join(" ")),
        };
        s
    }
}

fn any_at(v: &Value, path: &[Seg], f: &dyn Fn(&Value) -> bool) -> bool {
    let Some((seg, rest)) = path.split_first() else {
        return f(v);
    };
    match (seg, v) {
        (Seg::Any, Value::Array(a)) => a.iter().any(|x| any_at(x, rest, f)),
        (Seg::Any, Value::Object(o)) => o.values().any(|x| any_at(x, rest, f)),
        (Seg::Key { key, .. }, Value::Object(o)) => o.get(key).is_some_and(|x| any_at(x, rest, f)),
        (Seg::Key { index: Some(i), .. }, Value::Array(a)) => a.get(*i).is_some_and(|x| any_at(x, rest, f)),
        _ => false,
    }
}

/// Every element reaches a value at `path`, and every value passes `f`.
fn all_at(v: &Value, path: &[Seg], f: &dyn Fn(&Value) -> bool) -> bool {
    fn every(v: &Value, path: &[Seg], f: &dyn Fn(&Value) -> bool, seen: &mut bool) -> bool {
        let Some((seg, rest)) = path.split_first() else {
            *seen = true;
            return f(v);
        };
        match (seg, v) {
            (Seg::Any, Value::Array(a)) => a.iter().all(|x| every(x, rest, f, seen)),
            (Seg::Any, Value::Object(o)) => o.values().all(|x| every(x, rest, f, seen)),
            (Seg::Key { key, .. }, Value::Object(o)) => o.get(key).is_some_and(|x| every(x, rest, f, seen)),
            (Seg::Key { index: Some(i), .. }, Value::Array(a)) => a.get(*i).is_some_and(|x| every(x, rest, f, seen)),
            // An element without the key, or of another shape: a server
            // may read it another way.
            _ => false,
        }
    }
    let mut seen = false;
    every(v, path, f, &mut seen) && seen
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

impl Op {
    fn holds(&self, v: &Value) -> bool {
        match self {
            Op::Equals(t) => json_eq(v, t),
            Op::OneOf(ts) => ts.iter().any(|t| json_eq(v, t)),
            Op::Command(words) => super::command::starts_with(v, words),
            _ => match v {
                Value::String(s) => self.text_holds(s),
                Value::Number(n) => self.text_holds(&n.to_string()),
                Value::Bool(b) => self.text_holds(if *b { "true" } else { "false" }),
                _ => false,
            },
        }
    }

    /// The test on another form of a path (a string).
    fn form_holds(&self, f: &str) -> bool {
        match self {
            Op::Equals(t) => t.as_str() == Some(f),
            Op::OneOf(ts) => ts.iter().any(|t| t.as_str() == Some(f)),
            Op::Glob(_) | Op::Regex(_) | Op::Prefix(_) => self.text_holds(f),
            Op::Under(_) | Op::Command(_) => false,
        }
    }

    fn text_holds(&self, s: &str) -> bool {
        match self {
            Op::Glob(g) => g.is_match(s),
            Op::Regex(r) => r.0.is_match(s),
            Op::Prefix(p) => s.starts_with(p.as_str()),
            Op::Under(d) => under::written_under(d, s),
            Op::Equals(_) | Op::OneOf(_) | Op::Command(_) => unreachable!("handled by holds"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_as_subdomains() {
        assert!(host_in("example.com", "example.com"));
        assert!(host_in("mail.example.com", "example.com"));
        assert!(!host_in("badexample.com", "example.com"));
        assert!(!host_in("example.com.evil.io", "example.com"));
        assert!(!host_in("com", "example.com"));
    }
}
