//! Latch's hook in a JSON settings file (Claude Code, Gemini CLI, Copilot
//! CLI), edited in place.

use std::ops::Range;

use super::{HookAgent, done, is_ours};
use crate::doc::Malformed;
use crate::jsonc::{self, Kind, Node};
use crate::plan::{Action, Outcome, PlanError, quote};

/// What install writes into an empty file; uninstall gives "" back for it.
fn skeleton(event: &str, entry: &str) -> String {
    format!("{{\n  \"hooks\": {{ {}: [ {entry} ] }}\n}}\n", quote(event))
}
/// The skeleton once its entry and the lists around it are gone.
const SKELETON_EMPTY: &str = "{\n  \n}\n";

fn entry(agent: HookAgent, event: &str, latch: &str) -> String {
    let t = super::timeout_for(agent, event);
    let cmd = quote(&super::command_for(agent, latch, t));
    match agent {
        HookAgent::ClaudeCode => {
            format!(r#"{{"matcher": "*", "hooks": [{{"type": "command", "command": {cmd}, "timeout": {t}}}]}}"#)
        }
        HookAgent::Gemini => format!(
            r#"{{"matcher": ".*", "hooks": [{{"type": "command", "command": {cmd}, "timeout": {}}}]}}"#,
            t * 1000
        ),
        HookAgent::Copilot => format!(r#"{{"type": "command", "bash": {cmd}, "timeoutSec": {t}}}"#),
        HookAgent::Codex => unreachable!("Codex settings are TOML"),
    }
}

fn parse(text: &str, agent: HookAgent) -> Result<Option<Node>, Malformed> {
    // Claude Code reads its settings with JSON.parse: no comments there.
    jsonc::parse(text, agent != HookAgent::ClaudeCode).map_err(|e| Malformed {
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

/// Whether one element of the event's list is Latch's hook.
fn element_is_ours(e: &Node, agent: HookAgent) -> bool {
    let own = |n: &Node, key: &str| n.get(key).and_then(Node::as_str).is_some_and(|c| is_ours(c, agent));
    match agent {
        HookAgent::Copilot => own(e, "bash") || own(e, "command"),
        _ => match e.get("hooks").map(|h| &h.kind) {
            Some(Kind::Array(hooks)) => hooks.iter().any(|h| own(h, "command")),
            _ => false,
        },
    }
}

fn event_list<'a>(root: &'a Node, event: &str) -> Option<&'a Node> {
    root.get("hooks")?.get(event)
}

/// The span of Latch's element in the event's list, and its neighbours'.
pub(super) fn find(text: &str, agent: HookAgent, event: &str) -> Option<Range<usize>> {
    let root = parse(text, agent).ok()??;
    let Kind::Array(items) = &event_list(&root, event)?.kind else { return None };
    items.iter().find(|e| element_is_ours(e, agent)).map(|e| e.span.clone())
}

/// Blanks before byte AT (back to the previous token), or " " on one line.
fn indent_before(text: &str, at: usize) -> String {
    let start = text[..at].trim_end_matches([' ', '\t', '\n', '\r']).len();
    let ws = &text[start..at];
    if ws.contains('\n') { ws.to_owned() } else { " ".to_owned() }
}

fn splice(text: &str, at: Range<usize>, with: &str) -> String {
    format!("{}{with}{}", &text[..at.start], &text[at.end..])
}

pub(super) fn install(text: &str, agent: HookAgent, event: &str, latch: &str) -> Result<(String, Outcome), PlanError> {
    if find(text, agent, event).is_some() {
        return Ok((text.to_owned(), Outcome::AlreadyWrapped));
    }
    let entry = entry(agent, event, latch);
    let Some(root) = parse(text, agent)? else {
        if !text.trim().is_empty() {
            return Ok((text.to_owned(), Outcome::Skipped("only comments in the file".into())));
        }
        return Ok((format!("{text}{}", skeleton(event, &entry)), done(Action::Install)));
    };
    let skip = |why: &str| Ok((text.to_owned(), Outcome::Skipped(why.to_owned())));
    if !matches!(root.kind, Kind::Object(_)) {
        return skip("the settings are not a JSON object");
    }
    let quoted = quote(event);
    let new = match root.get("hooks") {
        None => add_member(text, &root, &format!("\"hooks\": {{ {quoted}: [ {entry} ] }}")),
        Some(hooks) if matches!(hooks.kind, Kind::Object(_)) => match hooks.get(event) {
            None => add_member(text, hooks, &format!("{quoted}: [ {entry} ]")),
            Some(list) => match &list.kind {
                Kind::Array(items) => match items.last() {
                    Some(last) => splice(
                        text,
                        last.span.end..last.span.end,
                        &format!(",{}{entry}", indent_before(text, last.span.start)),
                    ),
                    None => splice(text, list.span.start + 1..list.span.start + 1, &entry),
                },
                _ => return skip(&format!("hooks.{event} is not a list")),
            },
        },
        Some(_) => return skip("`hooks` is not an object"),
    };
    Ok((new, done(Action::Install)))
}

fn add_member(text: &str, obj: &Node, member: &str) -> String {
    match obj.members().last() {
        Some(last) => splice(
            text,
            last.value.span.end..last.value.span.end,
            &format!(",{}{member}", indent_before(text, last.key_span.start)),
        ),
        None => splice(text, obj.span.start + 1..obj.span.start + 1, member),
    }
}

/// The spans of a list's elements, and the index of one of them.
type Located = (Vec<Range<usize>>, usize);

/// The event list's elements and the index of ours.
fn ours_in_list(text: &str, agent: HookAgent, event: &str) -> Result<Option<Located>, PlanError> {
    let Some(root) = parse(text, agent)? else { return Ok(None) };
    let Some(Kind::Array(items)) = event_list(&root, event).map(|l| &l.kind) else { return Ok(None) };
    Ok(items
        .iter()
        .position(|e| element_is_ours(e, agent))
        .map(|i| (items.iter().map(|e| e.span.clone()).collect(), i)))
}

/// The range that removes element I of ITEMS and one separator.
fn cut(items: &[Range<usize>], i: usize) -> Range<usize> {
    if i > 0 {
        items[i - 1].end..items[i].end
    } else if items.len() > 1 {
        items[0].start..items[1].start
    } else {
        items[0].clone()
    }
}

pub(super) fn uninstall(text: &str, agent: HookAgent, event: &str) -> Result<(String, Outcome), PlanError> {
    let mut text = text.to_owned();
    let mut removed = false;
    // Every entry of ours (a second install by another path included).
    while let Some((spans, i)) = ours_in_list(&text, agent, event)? {
        text = splice(&text, cut(&spans, i), "");
        removed = true;
    }
    if !removed {
        return Ok((text, Outcome::NotWrapped));
    }
    // The list and the object, when left exactly as install creates them:
    // `[ ENTRY ]` and `{ "EVENT": … }`, padded so that a list or object the
    // user had (`[]`, `{}`) is told apart and kept.
    let quoted = quote(event);
    if let Some(root) = parse(&text, agent)?
        && let Some(hooks) = root.get("hooks")
        && let Some(j) = hooks.members().iter().position(|m| m.key == event)
    {
        let m = &hooks.members()[j];
        if text[m.key_span.start..m.value.span.end] == format!("{quoted}: [  ]") {
            let spans: Vec<Range<usize>> = hooks.members().iter().map(|m| m.key_span.start..m.value.span.end).collect();
            text = splice(&text, cut(&spans, j), "");
        }
    }
    if let Some(root) = parse(&text, agent)?
        && let Some(j) = root.members().iter().position(|m| m.key == "hooks")
    {
        let m = &root.members()[j];
        if &text[m.key_span.start..m.value.span.end] == "\"hooks\": {  }" {
            let spans: Vec<Range<usize>> = root.members().iter().map(|m| m.key_span.start..m.value.span.end).collect();
            text = splice(&text, cut(&spans, j), "");
        }
    }
    if text.ends_with(SKELETON_EMPTY) && text[..text.len() - SKELETON_EMPTY.len()].trim().is_empty() {
        text.truncate(text.len() - SKELETON_EMPTY.len());
    }
    Ok((text, done(Action::Uninstall)))
}
