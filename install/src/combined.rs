//! One file that holds both an MCP client's servers and a coding agent's
//! hooks (Gemini CLI's `settings.json`, Codex's `config.toml`): both
//! rewrites as one [`Plan`], so the file gets one backup, one diff and one
//! write, and each rewrite is checked against the other.

use crate::doc::{Format, Layout};
use crate::hooks::{self, HookAgent};
use crate::plan::{self, Action, Edit, Plan, PlanError};

/// The MCP rewrite of TEXT (a config of FORMAT and LAYOUT), then the hook
/// rewrite of AGENT on its result. PATH is where the agent reads the file.
///
/// Checked beyond each rewrite's own checks: after an install, taking the
/// hook out and unwrapping the servers must give what the same gives for
/// the original (the two rewrites never touch each other's text); after
/// an uninstall, neither is left.
pub fn plan(
    text: &str,
    format: Format,
    layout: Layout,
    agent: HookAgent,
    action: Action,
    latch: &str,
    path: &str,
) -> Result<Plan, PlanError> {
    let servers = plan::plan(text, format, layout, action, latch)?;
    let hook = hooks::plan(&servers.text, agent, action, latch, path)?;
    let both = then(text, servers, hook);
    if both.edits.is_empty() {
        return Ok(both);
    }
    let unwrap = |t: &str| plan::plan(t, format, layout, Action::Uninstall, latch).map(|p| p.text);
    let unhook = |t: &str| hooks::plan(t, agent, Action::Uninstall, latch, path).map(|p| p.text);
    match action {
        Action::Install => {
            let back = unhook(&both.text).and_then(|t| unwrap(&t)).map_err(|e| PlanError::Unchecked(e.to_string()))?;
            if back != unwrap(&unhook(text)?)? {
                return Err(PlanError::Unchecked("the servers and the hook would not come out cleanly".into()));
            }
        }
        Action::Uninstall => {
            let again = unwrap(&both.text).map_err(|e| PlanError::Unchecked(e.to_string()))?;
            if again != both.text || hooks::installed(&both.text, agent) {
                return Err(PlanError::Unchecked("a server or the hook is still there after uninstalling".into()));
            }
        }
    }
    Ok(both)
}

/// FIRST (edits on ORIGINAL) followed by NEXT (edits on FIRST's text), as
/// edits on ORIGINAL. NEXT's edits are moved back onto ORIGINAL when they
/// touch only text FIRST left alone; otherwise the whole difference is one
/// edit.
pub fn then(original: &str, first: Plan, next: Plan) -> Plan {
    let mut reports = first.reports;
    reports.extend(next.reports);
    if next.edits.is_empty() {
        return Plan { text: first.text, edits: first.edits, reports };
    }
    let mut edits = first.edits.clone();
    edits.sort_by_key(|e| e.range.start);
    let mut moved = Vec::new();
    for e in &next.edits {
        match back_onto(&edits, &e.range) {
            Some(range) => moved.push(Edit { range, text: e.text.clone() }),
            None => {
                let whole = one_edit(original, &next.text);
                return Plan { text: next.text, edits: vec![whole], reports };
            }
        }
    }
    edits.extend(moved);
    let mut check = edits.clone();
    match plan::apply(original, &mut check) {
        Ok(t) if t == next.text => Plan { text: next.text, edits, reports },
        _ => Plan { edits: vec![one_edit(original, &next.text)], text: next.text, reports },
    }
}

/// RANGE of the text EDITS (sorted) made, as a range of the text before
/// them; `None` when it touches or borders what an edit wrote.
fn back_onto(edits: &[Edit], range: &std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    let mut shift: isize = 0;
    for e in edits {
        let start = e.range.start.checked_add_signed(shift)?;
        let end = start + e.text.len();
        if range.end < start {
            break;
        }
        if range.start <= end {
            return None;
        }
        shift += e.text.len() as isize - e.range.len() as isize;
    }
    Some(range.start.checked_add_signed(-shift)?..range.end.checked_add_signed(-shift)?)
}

/// The one edit that turns OLD into NEW: the middle between their common
/// start and end (so `--dry-run` shows only what changes).
pub(crate) fn one_edit(old: &str, new: &str) -> Edit {
    let mut pre = old.bytes().zip(new.bytes()).take_while(|(a, b)| a == b).count();
    while !old.is_char_boundary(pre) || !new.is_char_boundary(pre) {
        pre -= 1;
    }
    let max_suf = old.len().min(new.len()) - pre;
    let mut suf = old.bytes().rev().zip(new.bytes().rev()).take(max_suf).take_while(|(a, b)| a == b).count();
    while !old.is_char_boundary(old.len() - suf) || !new.is_char_boundary(new.len() - suf) {
        suf -= 1;
    }
    Edit { range: pre..old.len() - suf, text: new[pre..new.len() - suf].to_owned() }
}

#[cfg(test)]
mod tests;
