//! One `[[rule]]` entry of a policy file: its matchers, effect, reason
//! and condition, each checked with a fix for every problem.

use std::collections::HashSet;
use std::ops::Range;

use toml::de::DeValue;

use crate::class::{Class, Decision, Flag};
use crate::glob::Glob;
use crate::policy::error::{ProblemKind, did_you_mean};
use crate::policy::read::{Cx, SValue, class_name, domains, effect, entries, glob_problem, globs, to_json};
use crate::policy::rule::{ALL_CLASSES, ArgMatcher, Op, Re, Rule, Seg, class_bit, flag_bit};
use crate::policy::under;

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
const ARG_KEYS: &[&str] = &["path", "equals", "one_of", "glob", "regex", "prefix", "under", "command", "not"];
const ARG_OPS: &[&str] = &["equals", "one_of", "glob", "regex", "prefix", "under", "command"];

/// Longest regex program accepted (bytes of compiled size).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(super) fn rule(cx: &mut Cx<'_>, n: usize, item: &SValue<'_>, names: &mut HashSet<String>) -> Option<Rule> {
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
            "condition" => r.condition = crate::policy::judge::condition(cx, v),
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
    upgrade_folder_matchers(&mut r.args);
    r.summarize();
    Some(r)
}

/// The matcher pair that "always" answers for a folder wrote before
/// `under` existed: `prefix = "DIR/"` and this regex negated, on one path.
const OLD_NO_DOTDOT: &str = r"(^|[/\\])\.\.([/\\]|$)";

/// Reads that pair as the one `under` test it stood for, so rules written
/// earlier resolve symlinks too (narrower: they only ever allowed).
fn upgrade_folder_matchers(args: &mut Vec<ArgMatcher>) {
    let is_guard = |m: &ArgMatcher, path: &str| {
        m.not && m.path_src == path && matches!(&m.op, Op::Regex(re) if re.0.as_str() == OLD_NO_DOTDOT)
    };
    let mut i = 0;
    while i < args.len() {
        let folder = match &args[i].op {
            // Not on a `*` path: there the pair said "no element has `..`".
            Op::Prefix(dir)
                if !args[i].not
                    && dir.ends_with('/')
                    && !under::has_dotdot(dir)
                    && !args[i].path.iter().any(|s| matches!(s, Seg::Any)) =>
            {
                Some(dir.clone())
            }
            _ => None,
        };
        let guard = folder.as_ref().and_then(|_| args.iter().position(|m| is_guard(m, &args[i].path_src)));
        if let (Some(dir), Some(g)) = (folder, guard) {
            args[i].op = Op::Under(dir);
            args.remove(g);
            if g < i {
                i -= 1;
            }
        }
        i += 1;
    }
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
            "under" => {
                ops += 1;
                let fix = "`under = \"~/src/app/\"` (a folder: the path is resolved, symlinks included)";
                match cx.str(x, "under", fix) {
                    Some(s) if !s.trim().is_empty() && !under::has_dotdot(s) => {
                        let dir = if s.ends_with('/') { s.to_owned() } else { format!("{s}/") };
                        op = Some(Op::Under(dir));
                    }
                    Some(s) => cx.problem(
                        ProblemKind::WrongType,
                        x.span(),
                        format!("`under = {s:?}` names no folder"),
                        "write the folder, absolute or from `~/`, without `..`, like `under = \"~/src/app/\"`",
                    ),
                    None => {}
                }
            }
            "command" => {
                ops += 1;
                let fix = "`command = [\"npm\", \"run\", \"test\"]`";
                let words: Option<Vec<String>> = match x.get_ref() {
                    DeValue::Array(a) => a.iter().map(|i| i.get_ref().as_str().map(str::to_owned)).collect(),
                    _ => None,
                };
                match words {
                    Some(w) if !w.is_empty() && w.iter().all(|s| !s.is_empty()) => op = Some(Op::Command(w)),
                    _ => cx.wrong_type(x, "command", "a non-empty list of non-empty strings", fix),
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
    if not && matches!(op, Some(Op::Under(_))) && cx.problems.len() == before {
        cx.problem(
            ProblemKind::WrongType,
            v.span(),
            "`under` cannot be used with `not = true`",
            "a path outside a folder cannot be told by its text when a symlink leads in or out: match the folder \
             with `under` in a rule of the opposite effect, placed first",
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
