//! Writing an "always" approval into the policy file as a rule.
//!
//! The new rule matches the server and the tool exactly (glob
//! metacharacters in names are escaped) and carries a comment line saying
//! who added it and when. Where it goes decides what it overrides:
//!
//! - `insert_before: None` appends it at the end of the file: it applies
//!   when no earlier rule matches, i.e. it replaces the class default for
//!   that tool.
//! - `insert_before: Some(line)` (the `rule_line` of the [`Evaluation`]
//!   that asked) puts it right before that rule, together with the comment
//!   lines above it: the rule that asked no longer decides this tool, and
//!   every rule above it (for instance a `deny` on certain arguments) still
//!   wins. If that line is no longer a `[[rule]]` header (the file changed
//!   since), the rule is appended.
//!
//! [`Evaluation`]: super::Evaluation

use super::narrow::{ArgTest, Narrowing, rule_path};
use crate::class::Decision;
use crate::glob;

/// A rule to add for an "always" approval or denial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRule {
    pub server: String,
    pub tool: String,
    pub effect: Decision,
    /// One line, e.g. "added by `always` from tui (alice) at 2026-11-24 15:30 UTC".
    pub comment: String,
    /// 1-based line of the `[[rule]]` header to insert before.
    pub insert_before: Option<usize>,
    /// A narrower scope than the whole tool ([`super::narrow`]).
    pub narrow: Option<Narrowing>,
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A JSON scalar as a TOML value (`equals` reads it back the same).
fn toml_value(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Bool(b) => b.to_string(),
        J::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        J::Number(n) => toml::Value::Float(n.as_f64().unwrap_or(0.0)).to_string(),
        J::String(s) => quote(s),
        other => quote(&other.to_string()),
    }
}

/// The matcher lines a narrowing adds.
fn narrow_lines(n: &Narrowing) -> String {
    match n {
        Narrowing::Domains(ds) => {
            let list: Vec<String> = ds.iter().map(|d| quote(d)).collect();
            format!("only_domains = [{}]\n", list.join(", "))
        }
        Narrowing::Arg { key, test } => {
            let path = quote(&rule_path(key));
            let m = match test {
                ArgTest::Command(words) => {
                    let list: Vec<String> = words.iter().map(|w| quote(w)).collect();
                    format!("{{ path = {path}, command = [{}] }}", list.join(", "))
                }
                ArgTest::Equals(v) => format!("{{ path = {path}, equals = {} }}", toml_value(v)),
                ArgTest::Under(dir) => format!("{{ path = {path}, under = {} }}", quote(dir)),
            };
            format!("args = [\n  {m},\n]\n")
        }
    }
}

/// The rule's text as it is written: its comment line, then the rule.
pub fn rule_block(rule: &NewRule) -> String {
    let comment: String = rule.comment.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    format!(
        "# {comment}\n[[rule]]\nserver = {}\ntool = {}\n{}effect = \"{}\"\n",
        quote(&glob::escape(&rule.server)),
        quote(&glob::escape(&rule.tool)),
        rule.narrow.as_ref().map(narrow_lines).unwrap_or_default(),
        rule.effect.as_str(),
    )
}

/// Returns `text` with the rule added.
pub fn append_rule(text: &str, rule: &NewRule) -> String {
    let block = rule_block(rule);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if let Some(n) = rule.insert_before
        && n >= 1
        && n <= lines.len()
        && lines[n - 1].trim_start().starts_with("[[rule]]")
    {
        // Keep the comments that introduce that rule attached to it.
        let mut at = n - 1;
        while at > 0 && lines[at - 1].trim_start().starts_with('#') {
            at -= 1;
        }
        let mut out = String::with_capacity(text.len() + block.len() + 1);
        lines[..at].iter().for_each(|l| out.push_str(l));
        out.push_str(&block);
        out.push('\n');
        lines[at..].iter().for_each(|l| out.push_str(l));
        return out;
    }
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(&block);
    out
}
