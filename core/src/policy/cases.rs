//! Test tables: a TOML file of calls and the decisions the user expects,
//! run by `latch policy test FILE`.
//!
//! ```toml
//! # Optional: the policy to test, relative to this file. Without it the
//! # command tests your policy file (or the one given with --policy).
//! policy = "policy.toml"
//!
//! [[case]]
//! name = "writes under /etc are denied"     # optional
//! server = "fs"
//! tool = "write_file"
//! args = { path = "/etc/hosts", content = "x" }   # a table, or a JSON string
//! tool_def = '{"name": "write_file", "annotations": {"destructiveHint": true}}'  # optional, as tools/list returns it
//! expect = "deny"                            # allow | ask | deny
//! expect_rule = "no-etc"                     # optional: the rule that decides ("default" = a class default)
//! expect_class = "WRITE"                     # optional
//! ```
//!
//! Every case runs (classification, then policy); one fails when any of
//! its expectations differs.

use serde_json::Value;

use super::error::PolicyError;
use super::error::{Problem, ProblemKind};
use super::evaluate::Explanation;
use super::model::Policy;
use super::read::{Cx, entries, parse_toml, to_json};
use crate::class::{Class, Decision};
use crate::classify::Call;
use crate::tooldef::ToolDef;

const TABLE_KEYS: &[&str] = &["policy", "case"];
const CASE_KEYS: &[&str] = &["name", "server", "tool", "args", "tool_def", "expect", "expect_rule", "expect_class"];

/// A parsed test table.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseTable {
    /// `policy = "…"`, as written (relative to the table's file).
    pub policy: Option<String>,
    pub cases: Vec<Case>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub name: String,
    pub line: usize,
    pub server: String,
    pub tool: String,
    pub args: Value,
    pub tool_def: Option<ToolDef>,
    pub expect: Decision,
    /// `Some("default")` expects a class default to decide.
    pub expect_rule: Option<String>,
    pub expect_class: Option<Class>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    pub name: String,
    pub line: usize,
    /// Empty when the case passed.
    pub failures: Vec<String>,
    pub explanation: Explanation,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl Case {
    pub fn run(&self, policy: &Policy) -> CaseResult {
        let call = Call { server: &self.server, tool: &self.tool, args: &self.args };
        let x = policy.explain(&call, self.tool_def.as_ref());
        let mut failures = Vec::new();
        if x.decision != self.expect {
            failures.push(format!("expected {}, got {}", self.expect, x.decision));
        }
        if let Some(want) = &self.expect_rule {
            let got = x.rule.as_deref().unwrap_or("default");
            if got != want {
                failures.push(format!("expected rule {want:?} to decide, got {got:?}"));
            }
        }
        if let Some(c) = self.expect_class
            && c != x.class
        {
            failures.push(format!("expected class {c}, got {}", x.class));
        }
        CaseResult { name: self.name.clone(), line: self.line, failures, explanation: x }
    }
}

impl CaseTable {
    pub fn parse(text: &str) -> Result<CaseTable, PolicyError> {
        let doc = parse_toml(text)?;
        let mut cx = Cx::new(text);
        let mut table = CaseTable { policy: None, cases: Vec::new() };
        for (k, v) in entries(doc.get_ref()) {
            match k.get_ref().as_ref() {
                "policy" => table.policy = cx.str(v, "policy", "`policy = \"policy.toml\"`").map(str::to_owned),
                "case" => match v.get_ref() {
                    toml::de::DeValue::Array(a) => {
                        for (i, item) in a.iter().enumerate() {
                            if let Some(c) = case(&mut cx, i + 1, item) {
                                table.cases.push(c);
                            }
                        }
                    }
                    _ => cx.wrong_type(v, "case", "a list of tables", "`[[case]]` (two brackets) before each case"),
                },
                _ => cx.unknown_key(k, "at the top level of a test table", TABLE_KEYS),
            }
        }
        if cx.problems.is_empty() { Ok(table) } else { Err(PolicyError { problems: cx.problems }) }
    }

    pub fn run(&self, policy: &Policy) -> Vec<CaseResult> {
        self.cases.iter().map(|c| c.run(policy)).collect()
    }
}

fn json_or_table(cx: &mut Cx<'_>, v: &toml::Spanned<toml::de::DeValue<'_>>, key: &str) -> Option<Value> {
    match v.get_ref() {
        toml::de::DeValue::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(j) => Some(j),
            Err(e) => {
                cx.problem(
                    ProblemKind::WrongType,
                    v.span(),
                    format!("`{key}` is not valid JSON: {e}"),
                    "write a TOML table (`{ path = \"/x\" }`) or a JSON object in single quotes",
                );
                None
            }
        },
        toml::de::DeValue::Table(_) => Some(to_json(v.get_ref())),
        _ => {
            cx.wrong_type(v, key, "a table or a JSON string", &format!("`{key} = {{ path = \"/x\" }}`"));
            None
        }
    }
}

fn case(cx: &mut Cx<'_>, n: usize, item: &toml::Spanned<toml::de::DeValue<'_>>) -> Option<Case> {
    let t = cx.table(item, "case", "`[[case]]`")?;
    let before = cx.problems.len();
    let line = cx.line(item.span().start);
    let mut c = Case {
        name: format!("case #{n}"),
        line,
        server: String::new(),
        tool: String::new(),
        args: Value::Object(Default::default()),
        tool_def: None,
        expect: Decision::Ask,
        expect_rule: None,
        expect_class: None,
    };
    let (mut has_server, mut has_tool, mut has_expect) = (false, false, false);
    for (k, v) in entries(t) {
        match k.get_ref().as_ref() {
            "name" => {
                if let Some(s) = cx.str(v, "name", "`name = \"…\"`") {
                    c.name = s.to_owned();
                }
            }
            "server" => {
                has_server = true;
                c.server = cx.str(v, "server", "`server = \"fs\"`").unwrap_or_default().to_owned();
            }
            "tool" => {
                has_tool = true;
                c.tool = cx.str(v, "tool", "`tool = \"write_file\"`").unwrap_or_default().to_owned();
            }
            "args" => c.args = json_or_table(cx, v, "args").unwrap_or(Value::Null),
            "tool_def" => {
                if let Some(j) = json_or_table(cx, v, "tool_def") {
                    match ToolDef::from_value(&j) {
                        Some(d) => c.tool_def = Some(d),
                        None => cx.problem(
                            ProblemKind::MissingKey,
                            v.span(),
                            "`tool_def` has no string `name`",
                            "give the definition as tools/list returns it, with `name`",
                        ),
                    }
                }
            }
            "expect" => {
                has_expect = true;
                if let Some(s) = cx.str(v, "expect", "`expect = \"deny\"`") {
                    match s {
                        "allow" => c.expect = Decision::Allow,
                        "ask" => c.expect = Decision::Ask,
                        "deny" => c.expect = Decision::Deny,
                        _ => cx.problem(
                            ProblemKind::UnknownName,
                            v.span(),
                            format!("unknown decision {s:?}"),
                            "expect one of \"allow\", \"ask\", \"deny\"",
                        ),
                    }
                }
            }
            "expect_rule" => c.expect_rule = cx.str(v, "expect_rule", "`expect_rule = \"no-etc\"`").map(str::to_owned),
            "expect_class" => {
                if let Some(s) = cx.str(v, "expect_class", "`expect_class = \"WRITE\"`") {
                    match Class::parse(s) {
                        Some(cl) => c.expect_class = Some(cl),
                        None => cx.problem(
                            ProblemKind::UnknownName,
                            v.span(),
                            format!("unknown class {s:?}"),
                            "the classes are READ, WRITE, SEND, EXECUTE, SUBMIT, TRANSFER_VALUE",
                        ),
                    }
                }
            }
            _ => cx.unknown_key(k, "in a [[case]]", CASE_KEYS),
        }
    }
    let at = item.span();
    for (has, key, ex) in [
        (has_server, "server", "server = \"fs\""),
        (has_tool, "tool", "tool = \"write_file\""),
        (has_expect, "expect", "expect = \"allow\""),
    ] {
        if !has {
            cx.problems.push(missing(cx, at.start, key, ex));
        }
    }
    (cx.problems.len() == before).then_some(c)
}

fn missing(cx: &Cx<'_>, at: usize, key: &str, example: &str) -> Problem {
    Problem {
        kind: ProblemKind::MissingKey,
        line: cx.line(at),
        column: 1,
        message: format!("a [[case]] has no `{key}`"),
        hint: format!("add `{example}`"),
    }
}
