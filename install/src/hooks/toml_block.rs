//! Latch's hook in Codex's `config.toml`: one marked block at the end of
//! the file, so uninstall cuts exactly what install added (TOML has
//! comments; the markers are them).

use super::{HookAgent, done, is_ours};
use crate::doc::Malformed;
use crate::plan::{Action, Outcome, PlanError, quote};

const BEGIN: &str = "# >>> latch hook: added by `latch install --hooks`; `latch uninstall --hooks` removes it";
const END: &str = "# <<< latch hook";

fn block(agent: HookAgent, latch: &str) -> String {
    format!(
        "{BEGIN}\n[[hooks.PreToolUse]]\nmatcher = \".*\"\n\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\n\
         command = {}\ntimeout = {}\n{END}\n",
        quote(&super::command(agent, latch)),
        agent.timeout_secs()
    )
}

/// The marked block's range, from the newline before its first line (or
/// the start of the file) through its last line.
fn span(text: &str) -> Option<std::ops::Range<usize>> {
    let begin = text.match_indices(BEGIN).map(|(i, _)| i).find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')?;
    let end_at = begin + text[begin..].find(&format!("\n{END}\n"))? + END.len() + 2;
    Some(begin.saturating_sub(1)..end_at)
}

pub(super) fn installed(text: &str, agent: HookAgent) -> bool {
    if span(text).is_some() {
        return true;
    }
    // Added by hand: any PreToolUse command of ours.
    let Ok(doc) = text.parse::<toml::Table>() else { return false };
    let groups = doc.get("hooks").and_then(|h| h.get("PreToolUse")).and_then(|p| p.as_array());
    groups.into_iter().flatten().any(|g| {
        g.get("hooks")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
            .any(|h| h.get("command").and_then(|c| c.as_str()).is_some_and(|c| is_ours(c, agent)))
    })
}

pub(super) fn install(text: &str, agent: HookAgent, latch: &str) -> Result<(String, Outcome), PlanError> {
    if installed(text, agent) {
        return Ok((text.to_owned(), Outcome::AlreadyWrapped));
    }
    if let Err(e) = text.parse::<toml::Table>() {
        let (line, column) = e.span().map(|s| crate::jsonc::line_col(text, s.start)).unwrap_or((1, 1));
        return Err(PlanError::Malformed(Malformed { line, column, message: e.message().to_owned() }));
    }
    // A newline of its own before the block: the one uninstall cuts.
    let sep = if text.is_empty() { "" } else { "\n" };
    let new = format!("{text}{sep}{}", block(agent, latch));
    if new.parse::<toml::Table>().is_err() {
        let why = "`hooks.PreToolUse` is written in a form a block cannot extend (an inline table or list); \
                   add the hook by hand";
        return Ok((text.to_owned(), Outcome::Skipped(why.into())));
    }
    Ok((new, done(Action::Install)))
}

pub(super) fn uninstall(text: &str, _agent: HookAgent) -> (String, Outcome) {
    let mut text = text.to_owned();
    let mut removed = false;
    while let Some(r) = span(&text) {
        text.replace_range(r, "");
        removed = true;
    }
    (text, if removed { done(Action::Uninstall) } else { Outcome::NotWrapped })
}
