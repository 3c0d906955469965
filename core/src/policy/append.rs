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
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Returns `text` with the rule added.
pub fn append_rule(text: &str, rule: &NewRule) -> String {
    let comment: String = rule.comment.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    let block = format!(
        "# {comment}\n[[rule]]\nserver = {}\ntool = {}\neffect = \"{}\"\n",
        quote(&glob::escape(&rule.server)),
        quote(&glob::escape(&rule.tool)),
        rule.effect.as_str(),
    );
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
