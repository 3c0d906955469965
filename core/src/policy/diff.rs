//! Does a policy change only tighten? The daemon applies a change that
//! only tightens at once and holds any other until the person accepts it.
//!
//! The rule is conservative: a change counts as tightening only when it is
//! provably one; everything else loosens. Two policies are compared as
//! TOML values (comments and layout do not count):
//!
//! - `[defaults]`: a class made stricter (allow < ask < deny) tightens; one
//!   made looser loosens.
//! - `[[rule]]`s (first match decides): the old rules must appear in the
//!   new list in the same order, unchanged. Removing an allow rule without
//!   a `condition` tightens (its calls reach a later rule or the default,
//!   which cannot be looser than allow). Adding a deny rule without a
//!   `condition` tightens, wherever it goes. Adding an ask rule without a
//!   `condition` tightens only when nothing after it could deny what it
//!   matches: no deny rule after it and no class default of deny among the
//!   classes it can match. Everything else — a changed or moved rule, a
//!   removed ask or deny rule, any rule with a `condition` (a model's
//!   answer, or its silence, decides it) — loosens.
//! - Every other setting (`internal_domains`, `[servers]` class overrides,
//!   `[approvals]`, `[judge]`, `[notify]`, `[telegram]`, `[audit]`, keys
//!   Latch does not know): any change loosens.

use toml::{Table, Value};

/// One difference between two policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyChange {
    pub loosens: bool,
    /// For a person: what changed.
    pub what: String,
}

/// Every difference between an old policy and a new one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyDiff {
    pub changes: Vec<PolicyChange>,
}

impl PolicyDiff {
    /// How many changes loosen.
    pub fn loosening(&self) -> usize {
        self.changes.iter().filter(|c| c.loosens).count()
    }

    /// Nothing changed that a decision could see.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// One line per change, loosening ones first.
    pub fn lines(&self) -> Vec<String> {
        let (loose, tight): (Vec<_>, Vec<_>) = self.changes.iter().partition(|c| c.loosens);
        loose
            .iter()
            .map(|c| format!("loosens:  {}", c.what))
            .chain(tight.iter().map(|c| format!("tightens: {}", c.what)))
            .collect()
    }
}

/// Class defaults as the built-in policy has them (a key left out of
/// `[defaults]` means this).
const DEFAULTS: &[(&str, &str)] = &[
    ("read", "allow"),
    ("write", "allow"),
    ("send_internal", "allow"),
    ("send_external", "ask"),
    ("execute", "ask"),
    ("submit", "ask"),
    ("transfer_value", "deny"),
];

/// Strictness of an effect; `None` for anything that is not one.
fn rank(effect: &Value) -> Option<u8> {
    match effect.as_str()? {
        "allow" => Some(0),
        "ask" => Some(1),
        "deny" => Some(2),
        _ => None,
    }
}

/// Compares policy texts. An error when either is not TOML (the caller
/// validates policies before; an unreadable one is no basis for "tighter").
pub fn compare(old: &str, new: &str) -> Result<PolicyDiff, String> {
    let old: Table = old.parse().map_err(|e| format!("the old policy is not TOML: {e}"))?;
    let new: Table = new.parse().map_err(|e| format!("the new policy is not TOML: {e}"))?;
    let mut diff = PolicyDiff::default();
    defaults(table(&old, "defaults"), table(&new, "defaults"), &mut diff);
    rules(array(&old, "rule"), array(&new, "rule"), table(&new, "defaults"), &mut diff);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).filter(|k| *k != "defaults" && *k != "rule").collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        if old.get(k) != new.get(k) {
            let what = match (old.get(k), new.get(k)) {
                (None, Some(_)) => format!("`{k}` added"),
                (Some(_), None) => format!("`{k}` removed"),
                _ => format!("`{k}` changed"),
            };
            diff.changes.push(PolicyChange { loosens: true, what });
        }
    }
    Ok(diff)
}

fn table<'a>(t: &'a Table, key: &str) -> Option<&'a Table> {
    t.get(key).and_then(Value::as_table)
}

fn array<'a>(t: &'a Table, key: &str) -> &'a [Value] {
    t.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn default_of<'a>(t: Option<&'a Table>, class: &str) -> Option<&'a Value> {
    t.and_then(|t| t.get(class))
}

fn builtin_default(class: &str) -> Value {
    Value::String(DEFAULTS.iter().find(|(k, _)| *k == class).map(|(_, v)| *v).unwrap_or("allow").to_owned())
}

fn defaults(old: Option<&Table>, new: Option<&Table>, diff: &mut PolicyDiff) {
    let mut keys: Vec<&str> = DEFAULTS.iter().map(|(k, _)| *k).collect();
    for t in [old, new].into_iter().flatten() {
        keys.extend(t.keys().map(String::as_str));
    }
    keys.sort();
    keys.dedup();
    for k in keys {
        let before = default_of(old, k).cloned().unwrap_or_else(|| builtin_default(k));
        let after = default_of(new, k).cloned().unwrap_or_else(|| builtin_default(k));
        if before == after {
            continue;
        }
        let tightens = matches!((rank(&before), rank(&after)), (Some(b), Some(a)) if a > b);
        let what = format!("default `{k}` {} → {}", shown(&before), shown(&after));
        diff.changes.push(PolicyChange { loosens: !tightens, what });
    }
}

fn shown(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

/// The rule's effect rank, when it has no condition and a known effect.
fn plain_effect(rule: &Value) -> Option<u8> {
    let t = rule.as_table()?;
    if t.contains_key("condition") {
        return None;
    }
    rank(t.get("effect")?)
}

fn label(rule: &Value, n: usize) -> String {
    let t = rule.as_table();
    let effect = t.and_then(|t| t.get("effect")).map(shown).unwrap_or_else(|| "?".into());
    match t.and_then(|t| t.get("name")).and_then(Value::as_str) {
        Some(name) => format!("{effect} rule `{name}`"),
        None => format!("{effect} rule #{n}"),
    }
}

/// The classes (lower case, SEND split) a rule's `class` matcher allows.
fn classes_of(rule: &Value) -> Vec<&'static str> {
    let all: Vec<&'static str> = DEFAULTS.iter().map(|(k, _)| *k).collect();
    let Some(c) = rule.as_table().and_then(|t| t.get("class")) else { return all };
    let listed: Vec<&str> = match c {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => return all,
    };
    let mut out = Vec::new();
    for name in listed {
        match name.to_ascii_lowercase().as_str() {
            "send" => out.extend(["send_internal", "send_external"]),
            other => match all.iter().find(|k| **k == other) {
                Some(k) => out.push(*k),
                // A class this code does not know: assume any.
                None => return all,
            },
        }
    }
    out
}

/// Matches old rules into the new list in order (longest common
/// subsequence), then judges what was removed and what was added.
fn rules(old: &[Value], new: &[Value], new_defaults: Option<&Table>, diff: &mut PolicyDiff) {
    let (n, m) = (old.len(), new.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(j);
            j += 1;
        } else {
            removed.push(i);
            i += 1;
        }
    }
    for i in removed {
        let tightens = plain_effect(&old[i]) == Some(0);
        diff.changes.push(PolicyChange { loosens: !tightens, what: format!("{} removed", label(&old[i], i + 1)) });
    }
    for j in added {
        let tightens = match plain_effect(&new[j]) {
            Some(2) => true,
            Some(1) => {
                // Deny, or anything not known to be allow or ask.
                let may_deny = |effect: Option<&Value>| effect.and_then(rank).is_none_or(|r| r >= 2);
                let later_deny = new[j + 1..].iter().any(|r| may_deny(r.as_table().and_then(|t| t.get("effect"))));
                let default_deny = classes_of(&new[j]).iter().any(|c| {
                    may_deny(Some(&default_of(new_defaults, c).cloned().unwrap_or_else(|| builtin_default(c))))
                });
                !later_deny && !default_deny
            }
            _ => false,
        };
        diff.changes.push(PolicyChange { loosens: !tightens, what: format!("{} added", label(&new[j], j + 1)) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
internal_domains = ["example.com"]
[defaults]
read = "allow"
execute = "ask"
[[rule]]
name = "no-rm"
tool = "rm"
effect = "deny"
[[rule]]
name = "ls-ok"
tool = "ls"
effect = "allow"
"#;

    fn diff(new: &str) -> PolicyDiff {
        compare(BASE, new).unwrap()
    }

    fn with(extra: &str) -> String {
        format!("{BASE}{extra}")
    }

    #[test]
    fn comments_and_layout_are_no_change() {
        let same = BASE.replace("[defaults]", "# a comment\n[defaults]  # here too");
        assert!(diff(&same).is_empty());
    }

    #[test]
    fn a_stricter_default_tightens_a_looser_one_loosens() {
        assert_eq!(diff(&BASE.replace(r#"execute = "ask""#, r#"execute = "deny""#)).loosening(), 0);
        assert_eq!(diff(&BASE.replace(r#"execute = "ask""#, r#"execute = "allow""#)).loosening(), 1);
        // A key left out means the built-in default: removing `execute =
        // "ask"` is no change; adding `transfer_value = "ask"` loosens.
        assert!(diff(&BASE.replace("execute = \"ask\"\n", "")).is_empty());
        assert_eq!(
            diff(&BASE.replace("read = \"allow\"", "read = \"allow\"\ntransfer_value = \"ask\"")).loosening(),
            1
        );
    }

    #[test]
    fn adding_a_deny_rule_anywhere_tightens() {
        let first = BASE.replace(
            "[[rule]]\nname = \"no-rm\"",
            "[[rule]]\ntool = \"x\"\neffect = \"deny\"\n[[rule]]\nname = \"no-rm\"",
        );
        let d = diff(&first);
        assert_eq!((d.changes.len(), d.loosening()), (1, 0), "{d:?}");
        assert_eq!(diff(&with("[[rule]]\ntool = \"y\"\neffect = \"deny\"\n")).loosening(), 0);
    }

    #[test]
    fn adding_an_allow_rule_loosens() {
        let d = diff(&with("[[rule]]\ntool = \"pay\"\neffect = \"allow\"\n"));
        assert_eq!(d.loosening(), 1);
        assert!(d.lines()[0].starts_with("loosens:  allow rule #3 added"), "{:?}", d.lines());
    }

    #[test]
    fn an_ask_rule_tightens_only_where_nothing_after_it_denies() {
        // The built-in transfer_value default is deny: an ask rule for any
        // class could turn that deny into ask.
        assert_eq!(diff(&with("[[rule]]\ntool = \"t\"\neffect = \"ask\"\n")).loosening(), 1);
        assert_eq!(diff(&with("[[rule]]\ntool = \"t\"\nclass = \"READ\"\neffect = \"ask\"\n")).loosening(), 0);
        // Before the deny rule `no-rm`: loosens, even for READ.
        let before = BASE.replace(
            "[[rule]]\nname = \"no-rm\"",
            "[[rule]]\ntool = \"t\"\nclass = \"READ\"\neffect = \"ask\"\n[[rule]]\nname = \"no-rm\"",
        );
        assert_eq!(diff(&before).loosening(), 1);
    }

    #[test]
    fn removing_rules() {
        let no_allow = BASE.replace("[[rule]]\nname = \"ls-ok\"\ntool = \"ls\"\neffect = \"allow\"\n", "");
        assert_eq!(diff(&no_allow).loosening(), 0);
        let no_deny = BASE.replace("[[rule]]\nname = \"no-rm\"\ntool = \"rm\"\neffect = \"deny\"\n", "");
        assert_eq!(diff(&no_deny).loosening(), 1);
    }

    #[test]
    fn a_changed_or_moved_rule_loosens() {
        assert!(diff(&BASE.replace("tool = \"rm\"", "tool = \"rmdir\"")).loosening() >= 1);
        let moved = r#"
internal_domains = ["example.com"]
[defaults]
read = "allow"
execute = "ask"
[[rule]]
name = "ls-ok"
tool = "ls"
effect = "allow"
[[rule]]
name = "no-rm"
tool = "rm"
effect = "deny"
"#;
        assert!(diff(moved).loosening() >= 1);
    }

    #[test]
    fn a_conditional_rule_never_counts_as_tightening() {
        let d = diff(&with("[[rule]]\ntool = \"t\"\neffect = \"deny\"\ncondition = \"it is harmful\"\n"));
        assert_eq!(d.loosening(), 1);
    }

    #[test]
    fn any_other_setting_changed_loosens() {
        assert_eq!(diff(&BASE.replace("example.com", "example.org")).loosening(), 1);
        assert_eq!(diff(&with("[servers.gh.classes]\npay = \"READ\"\n")).loosening(), 1);
        assert_eq!(diff(&with("[judge]\nprovider = \"openai\"\n")).loosening(), 1);
        assert_eq!(diff(&BASE.replace("internal_domains = [\"example.com\"]\n", "")).loosening(), 1);
    }

    #[test]
    fn unreadable_text_is_an_error() {
        assert!(compare(BASE, "[[[").is_err());
    }
}
