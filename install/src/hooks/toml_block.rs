//! Latch's hook in Codex's `config.toml`: one marked block at the end of
//! the file, so uninstall cuts exactly what install added (TOML has
//! comments; the markers are them). The block also records Codex's trust
//! in the hook (see [`super::codex_trust`]), so uninstall takes that away
//! with it.

use super::{HookAgent, codex_trust, done, is_ours};
use crate::doc::Malformed;
use crate::plan::{Action, Outcome, PlanError, quote};

const BEGIN: &str = "# >>> latch hook: added by `latch install --hooks`; `latch uninstall --hooks` removes it";
const END: &str = "# <<< latch hook";

const MATCHER: &str = ".*";

/// The block, with the trust for its handler unless TRUST_KEY is `None`
/// (a trust for that key is already in the file).
fn block(agent: HookAgent, latch: &str, trust_key: Option<&str>) -> String {
    let command = super::command(agent, latch);
    let timeout = agent.timeout_secs();
    let trust = trust_key.map_or(String::new(), |k| {
        format!(
            "\n[hooks.state.{}]\ntrusted_hash = {}\n",
            quote(k),
            quote(&codex_trust::hash(Some(MATCHER), &command, Some(timeout)))
        )
    });
    format!(
        "{BEGIN}\n[[hooks.PreToolUse]]\nmatcher = {}\n\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\n\
         command = {}\ntimeout = {timeout}\n{trust}{END}\n",
        quote(MATCHER),
        quote(&command),
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

/// Adds the block to TEXT, the config file Codex loads from PATH.
pub(super) fn install(text: &str, agent: HookAgent, latch: &str, path: &str) -> Result<(String, Outcome), PlanError> {
    if installed(text, agent) {
        return Ok((text.to_owned(), Outcome::AlreadyWrapped));
    }
    let doc = match text.parse::<toml::Table>() {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = e.span().map(|s| crate::jsonc::line_col(text, s.start)).unwrap_or((1, 1));
            return Err(PlanError::Malformed(Malformed { line, column, message: e.message().to_owned() }));
        }
    };
    // Appended last, the group is the file's last PreToolUse group.
    let key = codex_trust::key(path, codex_trust::groups(&doc), 0);
    let trust_key = codex_trust::recorded(&doc, &key).is_none().then_some(key.as_str());
    // A newline of its own before the block: the one uninstall cuts.
    let sep = if text.is_empty() { "" } else { "\n" };
    let new = format!("{text}{sep}{}", block(agent, latch, trust_key));
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
