//! `[threats]`, `[[limits]]` and `[budget]`: what Latch does about threats
//! that come from servers ([`crate::threat`]).
//!
//! ```toml
//! [threats]
//! changed_tools = "ask"     # a tool whose definition changed since pinned: ask | deny
//! poisoned_tools = "ask"    # findings in its definition, or shadowing: allow | ask | deny
//! results = "record"        # findings in results: record | mask | hold
//!
//! [threats.servers.github]  # per server (a glob), overrides `results`
//! results = "mask"
//!
//! [threats.taint]           # the lethal trifecta; lists replace the defaults
//! effect = "ask"            # allow (off) | ask | deny
//! untrusted = [{ class = "READ", flags = ["open_world"] }]
//! private = [{ flags = ["secret_read"] }, { server = "github", tool = "get_file_contents" }]
//! sinks = [{ class = "SEND", flags = ["external"] }, { class = "SUBMIT" }]
//!
//! [[limits]]
//! server = "github"         # server, tool, class, flags select the calls counted together
//! per_minute = 30
//! per_hour = 300
//! effect = "deny"           # ask | deny
//!
//! [budget]
//! daily = { USD = 100, EUR = 80 }
//! currency = "USD"          # assumed when a call names none
//! over = "ask"              # ask | deny
//! unknown = "ask"           # amount not readable: allow | ask | deny
//! minor_units = ["stripe*"] # servers whose integer amounts are cents
//!
//! [budget.servers.shop]
//! daily = { USD = 20 }
//! ```

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ProblemKind, did_you_mean};
use super::read::{Cx, describe, entries};
use crate::class::{Decision, Flag};
use crate::glob::Glob;
use crate::threat::budget::BudgetPolicy;
use crate::threat::limits::Limit;
use crate::threat::money::{self, Money};
use crate::threat::result::Handling;
use crate::threat::taint::{Selector, TaintPolicy};

type SValue<'i> = Spanned<DeValue<'i>>;

const THREAT_KEYS: &[&str] = &["changed_tools", "poisoned_tools", "results", "servers", "taint"];
const THREAT_SERVER_KEYS: &[&str] = &["results"];
const TAINT_KEYS: &[&str] = &["effect", "untrusted", "private", "sinks"];
const SELECTOR_KEYS: &[&str] = &["class", "flags", "server", "tool"];
const LIMIT_KEYS: &[&str] = &["name", "server", "tool", "class", "flags", "per_minute", "per_hour", "effect"];
const BUDGET_KEYS: &[&str] = &["daily", "currency", "over", "unknown", "minor_units", "servers"];
const BUDGET_SERVER_KEYS: &[&str] = &["daily"];
const EFFECTS: [Decision; 3] = [Decision::Allow, Decision::Ask, Decision::Deny];
/// Most calls a limit may allow per minute or hour.
const MAX_RATE: u64 = 1_000_000;
/// Most `[[limits]]` entries and selectors per list.
const MAX_ENTRIES: usize = 256;

/// Everything these sections say; [`Default`] is what applies without them.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreatPolicy {
    pub changed_tools: Decision,
    pub poisoned_tools: Decision,
    pub results: Handling,
    /// Per server (glob), in file order; the first match wins.
    pub result_servers: Vec<(Glob, Handling)>,
    pub taint: TaintPolicy,
    pub limits: Vec<Limit>,
    /// `None` without a `[budget]` section: no money is counted.
    pub budget: Option<BudgetPolicy>,
    /// A managed layer's own (its result handling bounds this one's).
    pub also: Option<Box<ThreatPolicy>>,
}

impl Default for ThreatPolicy {
    fn default() -> Self {
        ThreatPolicy {
            changed_tools: Decision::Ask,
            poisoned_tools: Decision::Ask,
            results: Handling::Record,
            result_servers: Vec::new(),
            taint: TaintPolicy::default(),
            limits: Vec::new(),
            budget: None,
            also: None,
        }
    }
}

impl ThreatPolicy {
    /// What to do with a result of `server` that has findings.
    pub fn results_for(&self, server: &str) -> Handling {
        let own = self.result_servers.iter().find(|(g, _)| g.is_match(server)).map_or(self.results, |(_, h)| *h);
        match &self.also {
            Some(m) => stricter(own, m.results_for(server)),
            None => own,
        }
    }
}

/// Reads one of the top-level keys `threats`, `limits`, `budget` into `p`.
pub(crate) fn parse(cx: &mut Cx<'_>, key: &str, v: &SValue<'_>, p: &mut ThreatPolicy) {
    match key {
        "threats" => {
            if let Some(t) = cx.table(v, "threats", "`[threats]` followed by `changed_tools = \"ask\"`") {
                threats(cx, t, p);
            }
        }
        "limits" => match v.get_ref() {
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate().take(MAX_ENTRIES) {
                    if let Some(l) = limit(cx, i + 1, item) {
                        p.limits.push(l);
                    }
                }
                if a.len() > MAX_ENTRIES {
                    cx.problem(
                        ProblemKind::OutOfRange,
                        v.span(),
                        format!("more than {MAX_ENTRIES} [[limits]]"),
                        "merge limits with globs",
                    );
                }
            }
            _ => cx.wrong_type(v, "limits", "a list of tables", "`[[limits]]` (two brackets) before each limit"),
        },
        "budget" => {
            if let Some(t) = cx.table(v, "budget", "`[budget]` followed by `daily = { USD = 100 }`") {
                p.budget = Some(budget(cx, t));
            }
        }
        _ => {}
    }
}

fn threats(cx: &mut Cx<'_>, t: &DeTable<'_>, p: &mut ThreatPolicy) {
    for (k, v) in entries(t) {
        match k.get_ref().as_ref() {
            "changed_tools" => {
                set(&mut p.changed_tools, choice(cx, v, "changed_tools", &[Decision::Ask, Decision::Deny]))
            }
            "poisoned_tools" => set(&mut p.poisoned_tools, choice(cx, v, "poisoned_tools", &EFFECTS)),
            "results" => set(&mut p.results, handling(cx, v)),
            "servers" => {
                let Some(st) = cx.table(v, "servers", "`[threats.servers.github]` followed by `results = \"mask\"`")
                else {
                    continue;
                };
                for (name, sv) in entries(st) {
                    let Some(glob) = glob(cx, name.get_ref(), name.span()) else { continue };
                    let place = format!("threats.servers.{}", name.get_ref());
                    let Some(tt) = cx.table(sv, &place, &format!("`[{place}]` followed by `results = \"mask\"`"))
                    else {
                        continue;
                    };
                    for (k2, v2) in entries(tt) {
                        match k2.get_ref().as_ref() {
                            "results" => {
                                if let Some(h) = handling(cx, v2) {
                                    p.result_servers.push((glob.clone(), h));
                                }
                            }
                            _ => cx.unknown_key(k2, &format!("in [{place}]"), THREAT_SERVER_KEYS),
                        }
                    }
                }
            }
            "taint" => {
                if let Some(tt) = cx.table(v, "taint", "`[threats.taint]` followed by `effect = \"ask\"`") {
                    taint(cx, tt, &mut p.taint);
                }
            }
            _ => cx.unknown_key(k, "in [threats]", THREAT_KEYS),
        }
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

fn taint(cx: &mut Cx<'_>, t: &DeTable<'_>, p: &mut TaintPolicy) {
    for (k, v) in entries(t) {
        let key = k.get_ref().as_ref();
        match key {
            "effect" => set(&mut p.effect, choice(cx, v, "effect", &EFFECTS)),
            "untrusted" | "private" | "sinks" => {
                let list = selectors(cx, v, key);
                match key {
                    "untrusted" => p.untrusted = list,
                    "private" => p.private = list,
                    _ => p.sinks = list,
                }
            }
            _ => cx.unknown_key(k, "in [threats.taint]", TAINT_KEYS),
        }
    }
}

fn selectors(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str) -> Vec<Selector> {
    let example = format!("`{key} = [{{ class = \"READ\", flags = [\"open_world\"] }}]`");
    let DeValue::Array(a) = v.get_ref() else {
        cx.wrong_type(v, key, "a list of tables", &example);
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in a.iter().take(MAX_ENTRIES) {
        let Some(t) = cx.table(item, key, &example) else { continue };
        let mut s = Selector::of(None, &[]);
        let mut any = false;
        for (k, x) in entries(t) {
            select_key(cx, k.get_ref(), x, &mut s);
            any = true;
            if !SELECTOR_KEYS.contains(&k.get_ref().as_ref()) {
                cx.unknown_key(k, &format!("in a `{key}` entry"), SELECTOR_KEYS);
            }
        }
        if any {
            out.push(s);
        } else {
            cx.problem(
                ProblemKind::NeverMatches,
                item.span(),
                format!("an empty entry in `{key}` would select every call"),
                "give it a `class`, `flags`, `server` or `tool`",
            );
        }
    }
    out
}

/// Reads one selector key into `s`; true when it was valid.
fn select_key(cx: &mut Cx<'_>, k: &str, x: &SValue<'_>, s: &mut Selector) -> bool {
    match k {
        "class" => {
            let Some(name) = cx.str(x, "class", "`class = \"SEND\"`") else { return false };
            s.class = super::read::class_name(cx, name, x.span(), "");
            s.class.is_some()
        }
        "flags" => {
            let Some(items) = cx.strs(x, "flags", "`flags = [\"external\"]`") else { return false };
            for (f, span) in items {
                if let Some(f) = flag(cx, &f, span) {
                    s.flags.push(f);
                }
            }
            !s.flags.is_empty()
        }
        "server" | "tool" => {
            let Some(pat) = cx.str(x, k, &format!("`{k} = \"github\"`")) else { return false };
            let g = glob(cx, pat, x.span());
            let ok = g.is_some();
            if k == "server" {
                s.server = g;
            } else {
                s.tool = g;
            }
            ok
        }
        _ => false,
    }
}

fn limit(cx: &mut Cx<'_>, n: usize, item: &SValue<'_>) -> Option<Limit> {
    let t = cx.table(item, "limits", "`[[limits]]` followed by `server = \"github\"` and `per_minute = 30`")?;
    let line = cx.line(item.span().start);
    let mut l = Limit {
        select: Selector::of(None, &[]),
        per_minute: None,
        per_hour: None,
        effect: Decision::Deny,
        label: format!("limits #{n} (line {line})"),
    };
    for (k, v) in entries(t) {
        let key = k.get_ref().as_ref();
        match key {
            "name" => {
                if let Some(s) = cx.str(v, "name", "`name = \"github writes\"`") {
                    l.label = format!("limit {s:?}");
                }
            }
            "server" | "tool" | "class" | "flags" => {
                select_key(cx, key, v, &mut l.select);
            }
            "per_minute" | "per_hour" => {
                let hint = format!("from 1 to {MAX_RATE} calls");
                let n = cx.int(v, key, (1, MAX_RATE), &hint).map(|n| n as u32);
                if key == "per_minute" {
                    l.per_minute = n;
                } else {
                    l.per_hour = n;
                }
            }
            "effect" => set(&mut l.effect, choice(cx, v, "effect", &[Decision::Ask, Decision::Deny])),
            _ => cx.unknown_key(k, "in [[limits]]", LIMIT_KEYS),
        }
    }
    if !t.contains_key("per_minute") && !t.contains_key("per_hour") {
        cx.problem(
            ProblemKind::MissingKey,
            item.span(),
            format!("{} has no `per_minute` or `per_hour`", l.label),
            "add `per_minute = 30` or `per_hour = 300`",
        );
        return None;
    }
    Some(l)
}

fn budget(cx: &mut Cx<'_>, t: &DeTable<'_>) -> BudgetPolicy {
    let mut b = BudgetPolicy::default();
    for (k, v) in entries(t) {
        match k.get_ref().as_ref() {
            "daily" => b.daily = amounts(cx, v, "daily"),
            "currency" => {
                if let Some(s) = cx.str(v, "currency", "`currency = \"USD\"`") {
                    b.currency = currency(cx, s, v.span());
                }
            }
            "over" => set(&mut b.over, choice(cx, v, "over", &[Decision::Ask, Decision::Deny])),
            "unknown" => set(&mut b.unknown, choice(cx, v, "unknown", &EFFECTS)),
            "minor_units" => {
                let Some(items) = cx.strs(v, "minor_units", "`minor_units = [\"stripe*\"]`") else { continue };
                b.minor_units = items.into_iter().filter_map(|(s, span)| glob(cx, &s, span)).collect();
            }
            "servers" => {
                let Some(st) = cx.table(v, "servers", "`[budget.servers.shop]` followed by `daily = { USD = 20 }`")
                else {
                    continue;
                };
                for (name, sv) in entries(st) {
                    let Some(g) = glob(cx, name.get_ref(), name.span()) else { continue };
                    let place = format!("budget.servers.{}", name.get_ref());
                    let Some(tt) = cx.table(sv, &place, &format!("`[{place}]` followed by `daily = {{ USD = 20 }}`"))
                    else {
                        continue;
                    };
                    for (k2, v2) in entries(tt) {
                        match k2.get_ref().as_ref() {
                            "daily" => b.servers.push((g.clone(), amounts(cx, v2, "daily"))),
                            _ => cx.unknown_key(k2, &format!("in [{place}]"), BUDGET_SERVER_KEYS),
                        }
                    }
                }
            }
            _ => cx.unknown_key(k, "in [budget]", BUDGET_KEYS),
        }
    }
    b
}

/// `{ USD = 100, EUR = "80.50" }`.
fn amounts(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str) -> Vec<Money> {
    let Some(t) = cx.table(v, key, &format!("`{key} = {{ USD = 100 }}`")) else { return Vec::new() };
    let mut out = Vec::new();
    for (c, a) in entries(t) {
        let Some(cur) = currency(cx, c.get_ref(), c.span()) else { continue };
        let micros = match a.get_ref() {
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::String(_) => {
                let text = match super::read::to_json(a.get_ref()) {
                    serde_json::Value::String(s) => s,
                    n => n.to_string(),
                };
                money::parse_text(&text).filter(|(c, m)| c.is_none() && *m >= 0).map(|(_, m)| m)
            }
            _ => None,
        };
        match micros {
            Some(m) => out.push(Money { currency: cur, micros: m }),
            None => cx.problem(
                ProblemKind::WrongType,
                a.span(),
                format!("`{cur}` must be an amount of zero or more, found {}", describe(a.get_ref())),
                format!("write it like `{cur} = 100` or `{cur} = \"12.50\"`"),
            ),
        }
    }
    out
}

fn currency(cx: &mut Cx<'_>, s: &str, span: Range<usize>) -> Option<String> {
    if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
        return Some(s.to_owned());
    }
    cx.problem(
        ProblemKind::UnknownName,
        span,
        format!("{s:?} is not a currency code"),
        "write the three-letter ISO code in capitals: USD, EUR, GBP, JPY",
    );
    None
}

fn handling(cx: &mut Cx<'_>, v: &SValue<'_>) -> Option<Handling> {
    let s = cx.str(v, "results", "`results = \"mask\"`")?;
    if let Some(h) = Handling::parse(s) {
        return Some(h);
    }
    let names: Vec<&str> = Handling::ALL.iter().map(|h| h.as_str()).collect();
    let hint = match did_you_mean(s, &names) {
        Some(m) => format!("did you mean \"{m}\"? Results can be \"record\", \"mask\" or \"hold\""),
        None => "results can be \"record\" (keep the findings), \"mask\" (hide secrets) or \"hold\" (a person lets the result through)".to_owned(),
    };
    cx.problem(ProblemKind::UnknownName, v.span(), format!("unknown result handling {s:?}"), hint);
    None
}

/// An effect among `allowed`.
fn choice(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str, allowed: &[Decision]) -> Option<Decision> {
    let s = cx.str(v, key, &format!("`{key} = \"ask\"`"))?;
    let names: Vec<&str> = allowed.iter().map(|d| d.as_str()).collect();
    if let Some(d) = allowed.iter().find(|d| d.as_str().eq_ignore_ascii_case(s)) {
        return Some(*d);
    }
    let list = names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    let hint = match did_you_mean(s, &names) {
        Some(m) => format!("did you mean \"{m}\"? `{key}` can be {list}"),
        None => format!("`{key}` can be {list}"),
    };
    cx.problem(ProblemKind::UnknownName, v.span(), format!("unknown effect {s:?} for `{key}`"), hint);
    None
}

fn flag(cx: &mut Cx<'_>, s: &str, span: Range<usize>) -> Option<Flag> {
    if let Some(f) = Flag::parse(s) {
        return Some(f);
    }
    let names: Vec<&str> = Flag::ALL.iter().map(|f| f.as_str()).collect();
    let hint = match did_you_mean(s, &names) {
        Some(m) => format!("did you mean \"{m}\"? The flags are {}", names.join(", ")),
        None => format!("the flags are {}", names.join(", ")),
    };
    cx.problem(ProblemKind::UnknownName, span, format!("unknown flag {s:?}"), hint);
    None
}

fn glob(cx: &mut Cx<'_>, pattern: &str, span: Range<usize>) -> Option<Glob> {
    match Glob::new(pattern) {
        Ok(g) => Some(g),
        Err(e) => {
            cx.problem(
                ProblemKind::BadGlob,
                span,
                format!("glob {pattern:?} does not compile: {e}"),
                "globs know `*`, `?` and `[a-z]`; put `\\` before a character you mean literally",
            );
            None
        }
    }
}

/// The stricter handling: hold > mask > record.
fn stricter(a: Handling, b: Handling) -> Handling {
    let rank = |h: Handling| match h {
        Handling::Record => 0,
        Handling::Mask => 1,
        Handling::Hold => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}
