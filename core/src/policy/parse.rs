//! Reading and validating a policy file.
//!
//! The TOML is parsed into a spanned tree (`toml::de::DeTable`) and walked
//! by hand rather than through serde: serde stops at the first problem,
//! and the user should see every problem of the file in one go, each with
//! its line, column and fix. Unknown keys are errors (a typo must never
//! quietly switch a rule off).

use std::collections::HashSet;
use std::ops::Range;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Problem, ProblemKind, did_you_mean, line_col};
use super::rule::{ALL_CLASSES, ArgMatcher, Op, Re, Rule, RuleIndex, Seg, class_bit, flag_bit};
use super::{DEFAULT_GRANT_TTL_SECONDS, Defaults, Policy, PolicyError, ServerConf, protect::Guard};
use crate::class::{Class, Decision, Flag};
use crate::glob::Glob;

type SValue<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &[
    "internal_domains",
    "defaults",
    "approvals",
    "servers",
    "rule",
    "notify",
    "judge",
    "audit",
    "telegram",
    "workspace",
    "threats",
    "limits",
    "budget",
];
const DEFAULT_KEYS: &[&str] =
    &["read", "write", "send_internal", "send_external", "execute", "submit", "transfer_value", "no_evidence"];
const APPROVAL_KEYS: &[&str] = &["hold_seconds", "grant_ttl_seconds", "in_client"];
const SERVER_KEYS: &[&str] = &["hold_seconds", "classes"];
const RULE_KEYS: &[&str] = &[
    "name",
    "server",
    "tool",
    "class",
    "flags",
    "any_domain",
    "only_domains",
    "args",
    "effect",
    "reason",
    "condition",
];
const ARG_KEYS: &[&str] = &["path", "equals", "one_of", "glob", "regex", "prefix", "not"];
const ARG_OPS: &[&str] = &["equals", "one_of", "glob", "regex", "prefix"];

/// Longest hold limit: clients such as Claude Desktop give up at 60 s.
const MAX_HOLD: u64 = 59;
/// A week.
const MAX_GRANT_TTL: u64 = 7 * 24 * 3600;
/// Longest regex program accepted (bytes of compiled size).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(crate) struct Cx<'t> {
    text: &'t str,
    pub problems: Vec<Problem>,
}

impl<'t> Cx<'t> {
    pub fn new(text: &'t str) -> Self {
        Cx { text, problems: Vec::new() }
    }

    pub fn problem(
        &mut self,
        kind: ProblemKind,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let (line, column) = line_col(self.text, span.start);
        self.problems.push(Problem { kind, line, column, message: message.into(), hint: hint.into() });
    }

    pub fn line(&self, offset: usize) -> usize {
        line_col(self.text, offset).0
    }

    pub fn unknown_key(&mut self, key: &Spanned<std::borrow::Cow<'_, str>>, place: &str, known: &[&str]) {
        let k = key.get_ref();
        let hint = match did_you_mean(k, known) {
            Some(s) => format!("did you mean `{s}`? Keys allowed {place}: {}", known.join(", ")),
            None => format!("keys allowed {place}: {}", known.join(", ")),
        };
        self.problem(ProblemKind::UnknownKey, key.span(), format!("unknown key `{k}` {place}"), hint);
    }

    pub fn wrong_type(&mut self, v: &SValue<'_>, key: &str, want: &str, example: &str) {
        self.problem(
            ProblemKind::WrongType,
            v.span(),
            format!("`{key}` must be {want}, found {}", describe(v.get_ref())),
            format!("write it like {example}"),
        );
    }

    pub fn str<'v>(&mut self, v: &'v SValue<'_>, key: &str, example: &str) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(v, key, "a string", example);
                None
            }
        }
    }

    pub fn table<'v, 'i>(&mut self, v: &'v SValue<'i>, key: &str, example: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, key, "a table", example);
                None
            }
        }
    }

    pub fn int(&mut self, v: &SValue<'_>, key: &str, range: (u64, u64), hint: &str) -> Option<u64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        let Some(n) = n else {
            self.wrong_type(v, key, "a whole number", &format!("`{key} = {}`", range.1.min(range.0.max(30))));
            return None;
        };
        match u64::try_from(n) {
            Ok(n) if n >= range.0 && n <= range.1 => Some(n),
            _ => {
                self.problem(
                    ProblemKind::OutOfRange,
                    v.span(),
                    format!("`{key} = {n}` is out of range ({} to {})", range.0, range.1),
                    hint.to_owned(),
                );
                None
            }
        }
    }

    /// A string or a list of strings, each with its span.
    pub fn strs(&mut self, v: &SValue<'_>, key: &str, example: &str) -> Option<Vec<(String, Range<usize>)>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.to_string(), v.span())]),
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for item in a.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), item.span())),
                        _ => self.wrong_type(item, key, "a string", example),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(v, key, "a string or a list of strings", example);
                None
            }
        }
    }
}

pub(crate) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the string {:?}", s.as_ref()),
        DeValue::Integer(i) => format!("the number {i}"),
        DeValue::Float(f) => format!("the number {f}"),
        DeValue::Boolean(b) => format!("`{b}`"),
        DeValue::Datetime(_) => "a date".to_owned(),
        DeValue::Array(_) => "a list".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// Keys of a table in the order they appear in the file.
pub(crate) fn entries<'t, 'i>(t: &'t DeTable<'i>) -> Vec<(&'t Spanned<std::borrow::Cow<'i, str>>, &'t SValue<'i>)> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// Converts a TOML value to JSON (dates become their text).
pub(crate) fn to_json(v: &DeValue<'_>) -> Value {
    match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).map(Value::from).unwrap_or(Value::Null),
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().map(Value::from).unwrap_or(Value::Null),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(|x| to_json(x.get_ref())).collect()),
        DeValue::Table(t) => Value::Object(
            entries(t).into_iter().map(|(k, x)| (k.get_ref().to_string(), to_json(x.get_ref()))).collect(),
        ),
    }
}

/// Parses TOML syntax; syntax errors are returned as problems.
pub(crate) fn parse_toml(text: &str) -> Result<Spanned<DeTable<'_>>, PolicyError> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Ok(doc);
    }
    let mut cx = Cx::new(text);
    for e in errors {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_owned();
        cx.problem(
            ProblemKind::Syntax,
            span,
            format!("not valid TOML: {msg}"),
            "check quotes, brackets and `=` on this line (strings need \"double quotes\")",
        );
    }
    Err(PolicyError { problems: cx.problems })
}

pub(crate) fn parse(text: &str) -> Result<Policy, PolicyError> {
    let doc = parse_toml(text)?;
    let mut cx = Cx::new(text);
    let mut p = Policy::bare();
    p.guard = Guard::default();

    for (key, v) in entries(doc.get_ref()) {
        match key.get_ref().as_ref() {
            "internal_domains" => p.internal_domains = domains(&mut cx, v, "internal_domains"),
            "defaults" => {
                if let Some(t) = cx.table(v, "defaults", "`[defaults]` followed by `read = \"allow\"` lines") {
                    p.defaults = defaults(&mut cx, t);
                }
            }
            "approvals" => {
                if let Some(t) = cx.table(v, "approvals", "`[approvals]` followed by `hold_seconds = 50`") {
                    for (k, v) in entries(t) {
                        match k.get_ref().as_ref() {
                            "hold_seconds" => p.hold_seconds = hold(&mut cx, v),
                            "grant_ttl_seconds" => {
                                p.grant_ttl_seconds = cx
                                    .int(
                                        v,
                                        "grant_ttl_seconds",
                                        (1, MAX_GRANT_TTL),
                                        "a grant lives from 1 second to a week (604800); 600 is the default",
                                    )
                                    .unwrap_or(DEFAULT_GRANT_TTL_SECONDS)
                            }
                            "in_client" => p.in_client = clients(&mut cx, v),
                            _ => cx.unknown_key(k, "in [approvals]", APPROVAL_KEYS),
                        }
                    }
                }
            }
            "audit" => {
                if let Some(t) = cx.table(v, "audit", "`[audit]` followed by `keep_days = 90`") {
                    p.audit = super::audit::parse(&mut cx, t);
                }
            }
            "servers" => {
                if let Some(t) = cx.table(v, "servers", "`[servers.github]` followed by `hold_seconds = 30`") {
                    for (name, v) in entries(t) {
                        if let Some(s) = server(&mut cx, name.get_ref(), v) {
                            p.servers.push(s);
                        }
                    }
                }
            }
            "rule" => match v.get_ref() {
                DeValue::Array(a) => {
                    let mut names: HashSet<String> = HashSet::new();
                    for (i, item) in a.iter().enumerate() {
                        if let Some(r) = rule(&mut cx, i + 1, item, &mut names) {
                            p.rules.push(r);
                        }
                    }
                }
                _ => cx.wrong_type(v, "rule", "a list of tables", "`[[rule]]` (two brackets) before each rule"),
            },
            "notify" => p.notify = super::notify::parse(&mut cx, v),
            "judge" => p.judge = super::judge::parse(&mut cx, v),
            "telegram" => p.telegram = super::telegram::parse(&mut cx, v),
            "workspace" => {
                if let Some(t) = cx.table(v, "workspace", "`[workspace]` followed by `paths = [\"~/src\"]`") {
                    p.workspace = super::workspace::parse(&mut cx, t);
                }
            }
            k @ ("threats" | "limits" | "budget") => super::threats::parse(&mut cx, k, v, &mut p.threats),
            _ => cx.unknown_key(key, "at the top level", TOP_KEYS),
        }
    }
    super::judge::check(&mut cx, &mut p);

    // A rule that matches every call makes all later rules unreachable:
    // worth a warning, not a refusal (an "always" rule appended after it
    // must not break the file).
    let mut warnings = Vec::new();
    if let Some(i) = p.rules.iter().position(Rule::matches_everything) {
        let first = &p.rules[i];
        for r in &p.rules[i + 1..] {
            warnings.push(Problem {
                kind: ProblemKind::Unreachable,
                line: r.line,
                column: 1,
                message: format!("{} is never reached: {} matches every call first", r.label(), first.label()),
                hint: format!("move this rule above line {}, or narrow that rule", first.line),
            });
        }
    }
    p.warnings = warnings;
    p.index = RuleIndex::build(&p.rules);

    if cx.problems.is_empty() {
        Ok(p)
    } else {
        let mut problems = cx.problems;
        problems.sort_by_key(|p| (p.line, p.column));
        Err(PolicyError { problems })
    }
}

fn effect(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str) -> Option<Decision> {
    let s = cx.str(v, key, &format!("`{key} = \"ask\"`"))?;
    match s.to_ascii_lowercase().as_str() {
        "allow" => Some(Decision::Allow),
        "ask" => Some(Decision::Ask),
        "deny" => Some(Decision::Deny),
        _ => {
            let hint = match did_you_mean(s, &["allow", "ask", "deny"]) {
                Some(m) => {
                    format!("did you mean \"{m}\"? The effects are \"allow\", \"ask\" and \"deny\"")
                }
                None => "the effects are \"allow\", \"ask\" and \"deny\"".to_owned(),
            };
            cx.problem(ProblemKind::UnknownName, v.span(), format!("unknown effect {s:?} for `{key}`"), hint);
            None
        }
    }
}

/// A class by name; an unknown one is a problem at `span` whose message
/// ends with `place` (e.g. " in [notify] classes").
pub(super) fn class_name(cx: &mut Cx<'_>, s: &str, span: Range<usize>, place: &str) -> Option<Class> {
    if let Some(c) = Class::parse(s) {
        return Some(c);
    }
    let names: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
    let hint = match did_you_mean(s, &names) {
        Some(m) => format!("did you mean \"{m}\"? The classes are {}", names.join(", ")),
        None => format!("the classes are {}", names.join(", ")),
    };
    cx.problem(ProblemKind::UnknownName, span, format!("unknown class {s:?}{place}"), hint);
    None
}

fn hold(cx: &mut Cx<'_>, v: &SValue<'_>) -> Option<u64> {
    cx.int(
        v,
        "hold_seconds",
        (1, MAX_HOLD),
        "keep it under 60: clients such as Claude Desktop give up on a call after 60 s (the agent can retry the \
         identical call once it is approved)",
    )
}

/// `[approvals] in_client`: client names, compared exactly.
fn clients(cx: &mut Cx<'_>, v: &SValue<'_>) -> Vec<String> {
    let example = "`in_client = [\"claude-code\"]` (the client's `clientInfo.name`, shown by `latch status`)";
    let items = match v.get_ref() {
        DeValue::Array(_) => cx.strs(v, "in_client", example),
        _ => {
            cx.wrong_type(v, "in_client", "a list of client names", example);
            None
        }
    };
    items.unwrap_or_default().into_iter().map(|(name, _)| name).filter(|n| !n.is_empty()).collect()
}

fn domains(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str) -> Vec<String> {
    let example = format!("`{key} = [\"example.com\", \"corp.example.net\"]`");
    let Some(items) = (match v.get_ref() {
        DeValue::Array(_) => cx.strs(v, key, &example),
        _ => {
            cx.wrong_type(v, key, "a list of domains", &example);
            None
        }
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (d, span) in items {
        let lower = d.trim().to_ascii_lowercase();
        let ok = !lower.is_empty()
            && !lower.starts_with('.')
            && !lower.ends_with('.')
            && !lower.contains("..")
            && lower.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if ok {
            out.push(lower);
        } else {
            let hint = if let Some(rest) = lower.strip_prefix("*.") {
                format!("a domain already covers its subdomains: write {rest:?}")
            } else if lower.contains("://") || lower.contains('/') || lower.contains('@') {
                "write only the host name, like \"example.com\" (no scheme, path or user)".to_owned()
            } else {
                "a domain is letters, digits, `-` and dots, like \"example.com\"".to_owned()
            };
            cx.problem(ProblemKind::BadDomain, span, format!("{d:?} is not a domain name"), hint);
        }
    }
    out
}

fn defaults(cx: &mut Cx<'_>, t: &DeTable<'_>) -> Defaults {
    let mut d = Defaults::BUILTIN;
    for (k, v) in entries(t) {
        let key = k.get_ref().as_ref();
        let slot = match key {
            "read" => &mut d.read,
            "write" => &mut d.write,
            "send_internal" => &mut d.send_internal,
            "send_external" => &mut d.send_external,
            "execute" => &mut d.execute,
            "submit" => &mut d.submit,
            "transfer_value" => &mut d.transfer_value,
            "no_evidence" => &mut d.no_evidence,
            _ => {
                let hint_extra = if key.eq_ignore_ascii_case("send") {
                    " (SEND has two: send_internal and send_external)"
                } else {
                    ""
                };
                let mut known = DEFAULT_KEYS.to_vec();
                known.sort();
                cx.unknown_key(k, &format!("in [defaults]{hint_extra}"), &known);
                continue;
            }
        };
        if let Some(e) = effect(cx, v, key) {
            *slot = e;
        }
    }
    d
}

fn server(cx: &mut Cx<'_>, name: &str, v: &SValue<'_>) -> Option<ServerConf> {
    let t = cx.table(v, &format!("servers.{name}"), &format!("`[servers.{name}]` followed by `hold_seconds = 30`"))?;
    let mut s = ServerConf { name: name.to_owned(), hold_seconds: None, classes: Vec::new() };
    let mut globbed = Vec::new();
    for (k, v) in entries(t) {
        match k.get_ref().as_ref() {
            "hold_seconds" => s.hold_seconds = hold(cx, v),
            "classes" => {
                let example = format!("`[servers.{name}.classes]` then `merge_pull_request = \"SUBMIT\"`");
                let Some(ct) = cx.table(v, "classes", &example) else {
                    continue;
                };
                for (tool, cv) in entries(ct) {
                    let Some(cname) = cx.str(cv, tool.get_ref(), "`tool_name = \"READ\"`") else {
                        continue;
                    };
                    let Some(class) = class_name(cx, cname, cv.span(), "") else {
                        continue;
                    };
                    match Glob::new(tool.get_ref()) {
                        Ok(g) if g.as_literal().is_some() => s.classes.push((g, class)),
                        Ok(g) => globbed.push((g, class)),
                        Err(e) => glob_problem(cx, tool.span(), tool.get_ref(), &e),
                    }
                }
            }
            _ => cx.unknown_key(k, &format!("in [servers.{name}]"), SERVER_KEYS),
        }
    }
    // Plain names first, then globs in file order.
    s.classes.extend(globbed);
    Some(s)
}

fn glob_problem(cx: &mut Cx<'_>, span: Range<usize>, pattern: &str, e: &crate::glob::GlobError) {
    cx.problem(
        ProblemKind::BadGlob,
        span,
        format!("glob {pattern:?} does not compile: {e}"),
        "globs know `*`, `?` and `[a-z]`; put `\\` before a character you mean literally",
    );
}

fn globs(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str, never: &mut Vec<String>) -> Vec<Glob> {
    let example = format!("`{key} = \"name\"` or `{key} = [\"a_*\", \"b\"]`");
    let Some(items) = cx.strs(v, key, &example) else {
        return Vec::new();
    };
    if items.is_empty() && matches!(v.get_ref(), DeValue::Array(_)) {
        never.push(format!("`{key} = []` lists nothing"));
    }
    let mut out = Vec::new();
    for (s, span) in items {
        match Glob::new(&s) {
            Ok(g) => out.push(g),
            Err(e) => glob_problem(cx, span, &s, &e),
        }
    }
    out
}

fn rule(cx: &mut Cx<'_>, n: usize, item: &SValue<'_>, names: &mut HashSet<String>) -> Option<Rule> {
    let t = cx.table(item, "rule", "`[[rule]]` followed by `tool = \"…\"` and `effect = \"…\"`")?;
    let header = rule_header(cx.text, item.span().start);
    let line = cx.line(header);
    let mut r = Rule {
        id: format!("rule #{n} (line {line})"),
        line,
        servers: Vec::new(),
        tools: Vec::new(),
        classes: ALL_CLASSES,
        flags_required: 0,
        flags_forbidden: 0,
        any_domain: Vec::new(),
        only_domains: Vec::new(),
        args: Vec::new(),
        effect: Decision::Ask,
        reason: None,
        condition: None,
        summary: String::new(),
    };
    let before = cx.problems.len();
    let mut effect_seen = false;
    let mut has_matcher = false;
    // Reasons this rule can never match; reported once each.
    let mut never: Vec<String> = Vec::new();
    let mut any_domain_span = None;

    for (k, v) in entries(t) {
        let key = k.get_ref().as_ref();
        match key {
            "name" => {
                if let Some(s) = cx.str(v, "name", "`name = \"no-force-push\"`") {
                    if s.trim().is_empty() {
                        cx.problem(
                            ProblemKind::WrongType,
                            v.span(),
                            "`name` is empty",
                            "give the rule a short name, or remove `name`",
                        );
                    } else if !names.insert(s.to_owned()) {
                        cx.problem(
                            ProblemKind::Duplicate,
                            v.span(),
                            format!("another rule is already named {s:?}"),
                            "rule names must be unique: `explain` and test tables refer to rules by name",
                        );
                    } else {
                        r.id = s.to_owned();
                    }
                }
            }
            "server" => {
                has_matcher = true;
                r.servers = globs(cx, v, "server", &mut never);
            }
            "tool" => {
                has_matcher = true;
                r.tools = globs(cx, v, "tool", &mut never);
            }
            "class" => {
                has_matcher = true;
                let Some(items) = cx.strs(v, "class", "`class = \"SEND\"` or `class = [\"SEND\", \"SUBMIT\"]`") else {
                    continue;
                };
                if items.is_empty() {
                    never.push("`class = []` lists nothing".to_owned());
                }
                let mut bits = 0;
                for (s, sp) in items {
                    if let Some(c) = class_name(cx, &s, sp, "") {
                        bits |= class_bit(c);
                    }
                }
                r.classes = bits;
            }
            "flags" => {
                has_matcher = true;
                let example = "`flags = [\"external\", \"!destructive\"]`";
                let items = match v.get_ref() {
                    DeValue::Array(_) => cx.strs(v, "flags", example),
                    _ => {
                        cx.wrong_type(v, "flags", "a list", example);
                        None
                    }
                };
                for (s, sp) in items.unwrap_or_default() {
                    let (neg, name) = match s.strip_prefix('!') {
                        Some(n) => (true, n),
                        None => (false, s.as_str()),
                    };
                    match Flag::parse(name) {
                        Some(f) => {
                            if neg {
                                r.flags_forbidden |= flag_bit(f);
                            } else {
                                r.flags_required |= flag_bit(f);
                            }
                        }
                        None => {
                            let names: Vec<&str> = Flag::ALL.iter().map(|f| f.as_str()).collect();
                            let hint = match did_you_mean(name, &names) {
                                Some(m) => format!(
                                    "did you mean \"{}{m}\"? The flags are {}",
                                    if neg { "!" } else { "" },
                                    names.join(", ")
                                ),
                                None => format!(
                                    "the flags are {} (prefix one with `!` to require its absence)",
                                    names.join(", ")
                                ),
                            };
                            cx.problem(ProblemKind::UnknownName, sp, format!("unknown flag {name:?}"), hint);
                        }
                    }
                }
            }
            "any_domain" | "only_domains" => {
                has_matcher = true;
                let d = domains(cx, v, key);
                if d.is_empty() && matches!(v.get_ref(), DeValue::Array(a) if a.is_empty()) {
                    never.push(format!("`{key} = []` lists nothing"));
                }
                if key == "any_domain" {
                    any_domain_span = Some(v.span());
                    r.any_domain = d;
                } else {
                    r.only_domains = d;
                }
            }
            "args" => {
                has_matcher = true;
                match v.get_ref() {
                    DeValue::Array(a) => {
                        for m in a.iter() {
                            if let Some(m) = arg_matcher(cx, m, &mut never) {
                                r.args.push(m);
                            }
                        }
                    }
                    _ => cx.wrong_type(
                        v,
                        "args",
                        "a list of matchers",
                        "`args = [{ path = \"path\", prefix = \"/etc/\" }]`",
                    ),
                }
            }
            "effect" => {
                effect_seen = true;
                if let Some(e) = effect(cx, v, "effect") {
                    r.effect = e;
                }
            }
            "reason" => {
                if let Some(s) = cx.str(v, "reason", "`reason = \"pushes to main need review\"`") {
                    r.reason = Some(s.to_owned());
                }
            }
            "condition" => r.condition = super::judge::condition(cx, v),
            _ => cx.unknown_key(k, "in a [[rule]]", RULE_KEYS),
        }
    }

    let at = header..header + 1;
    let label = r.label();
    if !effect_seen {
        cx.problem(
            ProblemKind::MissingKey,
            at.clone(),
            format!("{label} has no `effect`"),
            "add `effect = \"allow\"`, `effect = \"ask\"` or `effect = \"deny\"`",
        );
    }
    if !has_matcher {
        cx.problem(
            ProblemKind::NeverMatches,
            at.clone(),
            format!("{label} has no matcher (server, tool, class, flags, domains or args)"),
            "say what the rule is about, e.g. `tool = \"write_*\"`; to match every call on purpose write `tool = \"*\"`",
        );
    }
    // Contradictions that can be seen without a call.
    let both = r.flags_required & r.flags_forbidden;
    if both != 0 {
        let f = Flag::ALL.iter().find(|f| both & flag_bit(**f) != 0).expect("a bit is set");
        never.push(format!("flag {0:?} is both required and excluded (\"!{0}\")", f.as_str()));
    }
    let shell_needs = class_bit(Class::Execute) | class_bit(Class::Submit) | class_bit(Class::TransferValue);
    if r.flags_required & flag_bit(Flag::Shell) != 0 && r.classes & shell_needs == 0 {
        never.push("flag \"shell\" makes a call EXECUTE or above, but `class` only lists lower classes".to_owned());
    }
    if r.flags_required & flag_bit(Flag::SelfProtect) != 0 {
        never.push(
            "flag \"self_protect\": such calls are always denied by the built-in rule before any user rule".to_owned(),
        );
    }
    for why in never {
        cx.problem(
            ProblemKind::NeverMatches,
            at.clone(),
            format!("{label} can never match: {why}"),
            "remove the contradicting matcher, or the rule",
        );
    }
    if r.effect == Decision::Allow
        && let Some(sp) = any_domain_span
    {
        cx.problem(
            ProblemKind::NeverMatches,
            sp,
            "an allow rule with `any_domain` lets a call through when just one of its addresses matches",
            "use `only_domains` for allow rules (every address must be in the list)",
        );
    }
    if cx.problems.len() > before {
        return None;
    }
    r.summarize();
    Some(r)
}

/// Offset of the `[[rule]]` header that starts the table whose span begins
/// at `start` (the span may start at the header or at the first key).
fn rule_header(text: &str, start: usize) -> usize {
    let start = start.min(text.len());
    let mut line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    loop {
        let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
        let line = text[line_start..line_end].trim_start();
        if line.starts_with("[[") {
            return line_start + (text[line_start..line_end].len() - line.len());
        }
        if line_start == 0 {
            return start;
        }
        line_start = text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1);
    }
}

fn arg_matcher(cx: &mut Cx<'_>, v: &SValue<'_>, never: &mut Vec<String>) -> Option<ArgMatcher> {
    let example = "`{ path = \"recipients.*\", glob = \"*@example.com\" }`";
    let t = cx.table(v, "args", example)?;
    let before = cx.problems.len();
    let mut path = None;
    let mut op: Option<Op> = None;
    let mut ops = 0;
    let mut not = false;
    for (k, x) in entries(t) {
        let key = k.get_ref().as_ref();
        match key {
            "path" => {
                if let Some(s) = cx.str(x, "path", "`path = \"recipients.0\"`") {
                    path = arg_path(cx, s, x.span()).map(|p| (s.to_owned(), p));
                }
            }
            "not" => match x.get_ref() {
                DeValue::Boolean(b) => not = *b,
                _ => cx.wrong_type(x, "not", "true or false", "`not = true`"),
            },
            "equals" => {
                ops += 1;
                op = Some(Op::Equals(to_json(x.get_ref())));
            }
            "one_of" => {
                ops += 1;
                match x.get_ref() {
                    DeValue::Array(a) => {
                        if a.is_empty() {
                            never.push("`one_of = []` lists nothing".to_owned());
                        }
                        op = Some(Op::OneOf(a.iter().map(|i| to_json(i.get_ref())).collect()));
                    }
                    _ => cx.wrong_type(x, "one_of", "a list", "`one_of = [\"main\", \"master\"]`"),
                }
            }
            "glob" => {
                ops += 1;
                if let Some(s) = cx.str(x, "glob", "`glob = \"/etc/*\"`") {
                    match Glob::new(s) {
                        Ok(g) => op = Some(Op::Glob(g)),
                        Err(e) => glob_problem(cx, x.span(), s, &e),
                    }
                }
            }
            "regex" => {
                ops += 1;
                if let Some(s) = cx.str(x, "regex", "`regex = '^/etc/'` (single quotes keep backslashes)") {
                    match regex::RegexBuilder::new(s).size_limit(REGEX_SIZE_LIMIT).build() {
                        Ok(re) => op = Some(Op::Regex(Re(re))),
                        Err(e) => {
                            let msg = e.to_string();
                            let last = msg.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").trim();
                            let last = last.strip_prefix("error: ").unwrap_or(last);
                            cx.problem(
                                ProblemKind::BadRegex,
                                x.span(),
                                format!("regex {s:?} does not compile: {last}"),
                                "use Rust regex syntax (no look-around); in TOML, write regexes in 'single quotes' so \
                                 backslashes stay as they are",
                            );
                        }
                    }
                }
            }
            "prefix" => {
                ops += 1;
                if let Some(s) = cx.str(x, "prefix", "`prefix = \"/etc/\"`") {
                    op = Some(Op::Prefix(s.to_owned()));
                }
            }
            _ => cx.unknown_key(k, "in an args matcher", ARG_KEYS),
        }
    }
    let at = v.span();
    if path.is_none() && cx.problems.len() == before && !t.iter().any(|(k, _)| k.get_ref() == "path") {
        cx.problem(
            ProblemKind::MissingKey,
            at.clone(),
            "an args matcher has no `path`",
            "add the argument's path, like `path = \"to\"` or `path = \"recipients.0\"`",
        );
    }
    if ops != 1 && cx.problems.len() == before {
        cx.problem(
            if ops == 0 { ProblemKind::MissingKey } else { ProblemKind::WrongType },
            at,
            format!("an args matcher needs exactly one test, found {ops}"),
            format!("use one of {} (write two matchers for two tests)", ARG_OPS.join(", ")),
        );
    }
    if cx.problems.len() > before {
        return None;
    }
    let (path_src, path) = path?;
    Some(ArgMatcher { path_src, path, op: op?, not })
}

fn arg_path(cx: &mut Cx<'_>, s: &str, span: Range<usize>) -> Option<Vec<Seg>> {
    let body = s.strip_prefix("args.").unwrap_or(s);
    if body.is_empty() || body.split('.').any(str::is_empty) {
        cx.problem(
            ProblemKind::WrongType,
            span,
            format!("argument path {s:?} has an empty part"),
            "write keys and indexes separated by dots, like \"recipients.0\" or \"edits.*.path\"",
        );
        return None;
    }
    Some(
        body.split('.')
            .map(|p| if p == "*" { Seg::Any } else { Seg::Key { key: p.to_owned(), index: p.parse().ok() } })
            .collect(),
    )
}
