//! Codex's remote entries (`[mcp_servers.NAME]` with `url`) and their
//! wrapped form. Codex rejects a stdio entry that still has a transport
//! key (`bearer_token_env_var is not supported for stdio`), so the
//! transport keys' lines are commented out with a marker and the new
//! `command`/`args` lines inserted before them; `uninstall` removes the
//! inserted lines and the markers, giving the bytes back.
//!
//! ```toml
//! [mcp_servers.figma]
//! command = "/usr/bin/latch" # latch-remote
//! args = ["shim", "--name", "figma", "--url", "https://mcp.figma.com/mcp"]
//! env_vars = ["FIGMA_OAUTH_TOKEN"]
//! env = { LATCH_REMOTE_HEADERS = "Authorization: Bearer ${FIGMA_OAUTH_TOKEN}" }
//! # latch-remote: url = "https://mcp.figma.com/mcp"
//! # latch-remote: bearer_token_env_var = "FIGMA_OAUTH_TOKEN"
//! ```
//!
//! Header values go in `env` (never in `args`); the variables they name are
//! passed through with `env_vars` and expanded by the bridge.

use std::ops::Range;

use toml::de::DeValue;

use crate::doc::{RemoteEntry, Shape, is_latch};

/// Ends the wrapped `command` line.
pub(crate) const MARK: &str = "# latch-remote";
/// Starts each commented-out original line.
pub(crate) const PREFIX: &str = "# latch-remote: ";

/// The keys that make the entry remote: commented out when wrapped.
const TRANSPORT: &[&str] = &["url", "bearer_token_env_var", "http_headers", "env_http_headers"];
/// Keys that mean the same for a stdio entry: left as they are.
const KEPT: &[&str] =
    &["startup_timeout_sec", "tool_timeout_sec", "enabled", "enabled_tools", "disabled_tools", "required"];

/// Where and how a Codex remote entry is wrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlPlace {
    /// Starts of the lines to comment out, in order (the first is where
    /// the new lines go).
    pub lines: Vec<usize>,
    /// Variables Codex must pass to the shim (`env_vars`).
    pub env_vars: Vec<String>,
    pub newline: &'static str,
}

type Entry<'a> = (&'a str, Range<usize>, Range<usize>, &'a DeValue<'a>);

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |p| p + 1)
}

fn line_end(text: &str, at: usize) -> usize {
    at + text[at..].find('\n').unwrap_or(text.len() - at)
}

fn env_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The shape of a `[mcp_servers.NAME]` table with a `url`.
pub(crate) fn remote(text: &str, entries: &[Entry<'_>], url: &str) -> Shape {
    let wrap = place(text, entries, url);
    Shape::Remote { url: url.to_owned(), wrap }
}

fn place(text: &str, entries: &[Entry<'_>], url: &str) -> Result<RemoteEntry, String> {
    let mut lines = Vec::new();
    let mut headers = Vec::new();
    let mut env_vars = Vec::new();
    let mut newline = "\n";
    for (key, key_span, value_span, value) in entries {
        if KEPT.contains(key) {
            continue;
        }
        if !TRANSPORT.contains(key) {
            return Err(format!("its `{key}` has no meaning Latch can carry over"));
        }
        let start = line_start(text, key_span.start);
        let end = line_end(text, key_span.start);
        let rest = text[value_span.end.min(end)..end].trim();
        if !text[start..key_span.start].trim().is_empty()
            || value_span.end > end
            || !(rest.is_empty() || rest.starts_with('#'))
        {
            return Err(format!("its `{key}` is not on a line of its own"));
        }
        if text[..end].ends_with('\r') {
            newline = "\r\n";
        }
        lines.push(start);
        let string = |v: &DeValue<'_>| match v {
            DeValue::String(s) => Some(s.to_string()),
            _ => None,
        };
        match *key {
            "url" => {}
            "bearer_token_env_var" => {
                let var =
                    string(value).filter(|v| env_name(v)).ok_or("its `bearer_token_env_var` is not a variable name")?;
                headers.push(("Authorization".to_owned(), format!("Bearer ${{{var}}}")));
                env_vars.push(var);
            }
            _ => {
                let DeValue::Table(t) = value else { return Err(format!("its `{key}` is not a table")) };
                let mut items: Vec<_> = t.iter().collect();
                items.sort_by_key(|(k, _)| k.span().start);
                for (k, v) in items {
                    let name = k.get_ref().to_string();
                    let v = string(v.get_ref()).ok_or(format!("its header {name} is not a string"))?;
                    if name.is_empty() || name.contains([':', '\n', '\r']) || v.contains(['\n', '\r']) {
                        return Err(format!("its header {name} cannot be passed on"));
                    }
                    if *key == "env_http_headers" {
                        if !env_name(&v) {
                            return Err(format!("its header {name} does not name a variable"));
                        }
                        headers.push((name, format!("${{{v}}}")));
                        env_vars.push(v);
                    } else {
                        headers.push((name, v));
                    }
                }
            }
        }
    }
    lines.sort_unstable();
    let Some(&first) = lines.first() else { return Err("it names no URL".into()) };
    Ok(RemoteEntry {
        entry: first..first,
        url: url.to_owned(),
        headers,
        toml: Some(TomlPlace { lines, env_vars, newline }),
    })
}

/// A wrapped entry: its `command` is `latch`, its line ends with MARK.
/// Gives the range from the command's line to the last commented-out line
/// and the text that range had before `latch install`.
pub(crate) fn wrapped(text: &str, command: &str, command_span: Range<usize>) -> Option<Shape> {
    if !is_latch(command) {
        return None;
    }
    let end = line_end(text, command_span.end);
    if text[command_span.end..end].trim() != MARK {
        return None;
    }
    let start = line_start(text, command_span.start);
    // The lines of this table: up to the next header.
    let mut at = end + 1;
    let mut first = None;
    let mut last_end = None;
    while at < text.len() {
        let e = line_end(text, at);
        let line = &text[at..e];
        if line.trim_start().starts_with('[') {
            break;
        }
        if line.starts_with(PREFIX) {
            first.get_or_insert(at);
            last_end = Some(e);
        }
        at = e + 1;
    }
    let (first, last_end) = (first?, last_end?);
    let mut original = String::new();
    for line in text[first..last_end].split_inclusive('\n') {
        original.push_str(line.strip_prefix(PREFIX).unwrap_or(line));
    }
    Some(Shape::RemoteWrapped { entry: start..last_end, original, command: command.to_owned() })
}

/// The text inserted before the first commented-out line.
pub(crate) fn block(name: &str, r: &RemoteEntry, p: &TomlPlace, latch: &str, quote: impl Fn(&str) -> String) -> String {
    let nl = p.newline;
    let args: Vec<String> = ["shim", "--name", name, "--url", &r.url].iter().map(|s| quote(s)).collect();
    let mut out = format!("command = {} {MARK}{nl}args = [{}]{nl}", quote(latch), args.join(", "));
    if !p.env_vars.is_empty() {
        let vars: Vec<String> = p.env_vars.iter().map(|v| quote(v)).collect();
        out.push_str(&format!("env_vars = [{}]{nl}", vars.join(", ")));
    }
    if !r.headers.is_empty() {
        let lines: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        out.push_str(&format!("env = {{ {} = {} }}{nl}", crate::REMOTE_HEADERS_ENV, quote(&lines.join("\n"))));
    }
    out
}
