//! Reading and validating a policy file.
//!
//! The TOML is parsed into a spanned tree (`toml::de::DeTable`) and walked
//! by hand rather than through serde: serde stops at the first problem,
//! and the user should see every problem of the file in one go, each with
//! its line, column and fix. Unknown keys are errors (a typo must never
//! quietly switch a rule off).

use std::collections::HashSet;

use toml::de::{DeTable, DeValue};

use super::error::{PolicyError, Problem, ProblemKind};
use super::model::{DEFAULT_GRANT_TTL_SECONDS, DEFAULT_POLICY, Defaults, Policy, ServerConf};
use super::protect::Guard;
use super::read::{Cx, SValue, class_name, domains, effect, entries, glob_problem, parse_toml};
use super::rule::{Rule, RuleIndex};
use crate::glob::Glob;

mod rule;

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
    "export",
];
const DEFAULT_KEYS: &[&str] =
    &["read", "write", "send_internal", "send_external", "execute", "submit", "transfer_value", "no_evidence"];
const APPROVAL_KEYS: &[&str] = &["hold_seconds", "grant_ttl_seconds", "in_client"];
const SERVER_KEYS: &[&str] = &["hold_seconds", "classes"];
/// Longest hold limit: clients such as Claude Desktop give up at 60 s.
const MAX_HOLD: u64 = 59;
/// A week.
const MAX_GRANT_TTL: u64 = 7 * 24 * 3600;
impl Policy {
    /// The product's defaults, as [`DEFAULT_POLICY`] says: READ allow,
    /// WRITE allow, SEND allow internal / ask external, EXECUTE ask, SUBMIT
    /// ask, TRANSFER_VALUE deny; one rule (a write to a persistence place
    /// asks); no internal domains.
    pub fn builtin() -> Policy {
        static BUILTIN: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
        BUILTIN.get_or_init(|| parse(DEFAULT_POLICY).expect("the default policy parses")).clone()
    }

    /// Parses and validates a policy file; every problem is reported at once.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        parse(text)
    }
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
                        if let Some(r) = rule::rule(&mut cx, i + 1, item, &mut names) {
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
            "export" => {
                if let Some(t) =
                    cx.table(v, "export", "`[export]` followed by `otlp_endpoint = \"http://127.0.0.1:4318\"`")
                {
                    p.export = super::export::parse(&mut cx, t, key.span());
                }
            }
            _ => cx.unknown_key(key, "at the top level", TOP_KEYS),
        }
    }
    conditions(&mut cx, &mut p);

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

/// After the whole file is read: a condition needs a `[judge]`.
fn conditions(cx: &mut Cx<'_>, p: &mut Policy) {
    p.conditional = p.rules.iter().any(|r| r.condition.is_some());
    if p.judge.is_some() {
        return;
    }
    for r in &p.rules {
        if let Some(c) = &r.condition {
            cx.problems.push(Problem {
                kind: ProblemKind::MissingKey,
                line: c.line,
                column: 1,
                message: format!("{} has a `condition`, but the policy has no [judge] section to judge it", r.label()),
                hint: "add a [judge] section naming the model, e.g. `[judge]` `provider = \"openai\"` `model = \
                       \"gpt-4o-mini\"` `api_key_env = \"OPENAI_API_KEY\"` (see docs/policy.md), or remove the \
                       condition"
                    .to_owned(),
            });
        }
    }
}
