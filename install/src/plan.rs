//! Install and uninstall as edits on the text (see the crate docs).

use std::ops::Range;

use crate::doc::{self, Args, Format, Layout, Lit, Malformed, Server, Shape};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Install,
    Uninstall,
}

/// What happened to one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Now starts through `latch shim`.
    Wrapped,
    /// Already started through `latch shim`: left as it is.
    AlreadyWrapped,
    /// Put back as it was before `latch install`.
    Unwrapped,
    /// Not started through `latch shim`: nothing to undo.
    NotWrapped,
    /// Reached over HTTP/SSE: Latch does not cover it yet.
    Remote(String),
    /// Left alone, with the reason.
    Skipped(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub name: String,
    /// "" or "project DIR".
    pub place: String,
    pub outcome: Outcome,
    /// The entry's `command` as the file holds it before the change.
    pub command: Option<String>,
}

/// One replacement of a byte range of the original text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The file after the edits (equal to the input when there are none).
    pub text: String,
    pub edits: Vec<Edit>,
    pub reports: Vec<Report>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Malformed(#[from] Malformed),
    /// A safety check on the result failed; the file must not be written.
    #[error("the rewrite could not be checked ({0}); the file was left as it is — please report this")]
    Unchecked(String),
}

/// The edits that install or uninstall Latch in TEXT. `latch` is the
/// absolute path the wrapped commands should start.
pub fn plan(text: &str, format: Format, layout: Layout, action: Action, latch: &str) -> Result<Plan, PlanError> {
    let p = plan_unchecked(text, format, layout, action, latch)?;
    if p.edits.is_empty() {
        return Ok(p);
    }
    let after = doc::servers(&p.text, format, layout)
        .map_err(|e| PlanError::Unchecked(format!("the result does not parse: {e}")))?;
    match action {
        Action::Install => {
            let undo_before = plan_unchecked(text, format, layout, Action::Uninstall, latch)?.text;
            let undo_after = plan_unchecked(&p.text, format, layout, Action::Uninstall, latch)
                .map_err(|e| PlanError::Unchecked(e.to_string()))?
                .text;
            if undo_before != undo_after {
                return Err(PlanError::Unchecked("uninstalling the result would not give the original back".into()));
            }
        }
        Action::Uninstall => {
            if after.iter().any(|s| wrapped(&s.shape, latch).is_some()) {
                return Err(PlanError::Unchecked("a server is still wrapped after uninstalling".into()));
            }
        }
    }
    Ok(p)
}

fn plan_unchecked(text: &str, format: Format, layout: Layout, action: Action, latch: &str) -> Result<Plan, PlanError> {
    let servers = doc::servers(text, format, layout)?;
    let mut edits = Vec::new();
    let mut reports = Vec::new();
    for server in &servers {
        let outcome = match action {
            Action::Install => install(text, format, server, latch, &mut edits),
            Action::Uninstall => uninstall(text, format, server, latch, &mut edits),
        };
        let command = match &server.shape {
            Shape::Stdio { command, .. } => command.value.clone(),
            Shape::RemoteWrapped { command, .. } => Some(command.clone()),
            _ => None,
        };
        reports.push(Report { name: server.name.clone(), place: server.place.clone(), outcome, command });
    }
    let text = apply(text, &mut edits).map_err(PlanError::Unchecked)?;
    Ok(Plan { text, edits, reports })
}

/// Applies EDITS (sorted here) to TEXT; they must not overlap.
pub fn apply(text: &str, edits: &mut [Edit]) -> Result<String, String> {
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(text.len() + edits.iter().map(|e| e.text.len()).sum::<usize>());
    let mut at = 0;
    for e in edits.iter() {
        if e.range.start < at || e.range.end > text.len() {
            return Err("two edits overlap".into());
        }
        out.push_str(&text[at..e.range.start]);
        out.push_str(&e.text);
        at = e.range.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// A string literal valid in JSON and in TOML (basic string).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The index of `--` in the args of a server started through `latch shim`
/// (a command named `latch`, or LATCH itself).
pub(crate) fn wrapped(shape: &Shape, latch: &str) -> Option<usize> {
    let Shape::Stdio { command, args: Some(args), .. } = shape else { return None };
    let cmd = command.value.as_deref()?;
    let base = cmd.rsplit(['/', '\\']).next().unwrap_or(cmd);
    if base != "latch" && base != "latch.exe" && cmd != latch {
        return None;
    }
    let value = |i: usize| args.items.get(i).and_then(|l| l.value.as_deref());
    if value(0) != Some("shim") {
        return None;
    }
    let k = (1..args.items.len()).find(|&i| value(i) == Some("--"))?;
    // The wrapped command must be there, and a string.
    value(k + 1)?;
    Some(k)
}

/// What to repeat between inserted list items: the layout found after `[`.
fn separator(gap: &str) -> String {
    match gap.rfind('\n') {
        Some(nl) => {
            let indent: String = gap[nl + 1..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
            let eol = if gap[..nl].ends_with('\r') { "\r\n" } else { "\n" };
            format!("{eol}{indent}")
        }
        None if gap.is_empty() => String::new(),
        None => " ".into(),
    }
}

/// How a missing `args` is added, and how it is recognised again.
enum NewArgs {
    /// Right after the command's value: `, "args": [...]` / `, args = [...]`.
    SameLine,
    /// TOML tables: a line of its own after the command's line.
    NextLine { eol: usize, newline: &'static str, prefix: String },
}

fn new_args_place(text: &str, format: Format, command: &Lit, command_key: &Range<usize>) -> NewArgs {
    if format != Format::Toml {
        return NewArgs::SameLine;
    }
    let rest = &text[command.span.end..];
    let next = rest.trim_start_matches([' ', '\t']).chars().next();
    if matches!(next, Some(',' | '}')) {
        return NewArgs::SameLine;
    }
    let mut eol = command.span.end + rest.find('\n').unwrap_or(rest.len());
    let mut newline = "\n";
    if eol > 0 && text.as_bytes()[eol - 1] == b'\r' {
        eol -= 1;
        newline = "\r\n";
    }
    let line_start = text[..command_key.start].rfind('\n').map_or(0, |p| p + 1);
    NewArgs::NextLine { eol, newline, prefix: text[line_start..command_key.start].to_owned() }
}

fn new_args_text(format: Format, place: &NewArgs, items: &[String]) -> String {
    let list = format!("[{}]", items.join(", "));
    match (place, format) {
        (NewArgs::SameLine, Format::Toml) => format!(", args = {list}"),
        (NewArgs::SameLine, _) => format!(", \"args\": {list}"),
        (NewArgs::NextLine { newline, prefix, .. }, _) => format!("{newline}{prefix}args = {list}"),
    }
}

fn install(text: &str, format: Format, server: &Server, latch: &str, edits: &mut Vec<Edit>) -> Outcome {
    let (command, command_key, args) = match &server.shape {
        Shape::Remote { url, wrap: Err(why) } => return Outcome::Remote(format!("{url} ({why})")),
        Shape::Remote { wrap: Ok(r), .. } => {
            match &r.toml {
                None => edits.push(Edit { range: r.entry.clone(), text: remote_wrapped(text, &server.name, r, latch) }),
                Some(p) => {
                    let prefix = crate::remote_toml::PREFIX;
                    for (i, &at) in p.lines.iter().enumerate() {
                        let mut t = if i == 0 {
                            crate::remote_toml::block(&server.name, r, p, latch, quote)
                        } else {
                            String::new()
                        };
                        t.push_str(prefix);
                        edits.push(Edit { range: at..at, text: t });
                    }
                }
            }
            return Outcome::Wrapped;
        }
        Shape::RemoteWrapped { .. } => return Outcome::AlreadyWrapped,
        Shape::Other { why } => return Outcome::Skipped(why.clone()),
        s if wrapped(s, latch).is_some() => return Outcome::AlreadyWrapped,
        Shape::Stdio { command, command_key, args } => (command, command_key, args),
    };
    let prefix: Vec<String> = ["shim", "--name", &server.name, "--"]
        .iter()
        .map(|s| quote(s))
        .chain([text[command.span.clone()].to_owned()])
        .collect();
    edits.push(Edit { range: command.span.clone(), text: quote(latch) });
    match args {
        Some(Args { items, span, .. }) if !items.is_empty() => {
            // One item per line stays so; otherwise the spacing between the
            // items (a comma and a space by default).
            let mut sep = separator(&text[span.start + 1..items[0].span.start]);
            if sep.is_empty() || sep == " " {
                sep = match items.get(1) {
                    Some(second) => separator(text[items[0].span.end..second.span.start].trim_start_matches(',')),
                    None => " ".into(),
                };
            }
            let insert: String = prefix.iter().map(|p| format!("{p},{sep}")).collect();
            edits.push(Edit { range: items[0].span.start..items[0].span.start, text: insert });
        }
        Some(Args { span, .. }) => {
            let sep = separator(&text[span.start + 1..span.end - 1]);
            edits.push(Edit { range: span.start + 1..span.start + 1, text: prefix.join(&format!(",{sep}")) });
        }
        None => {
            let place = new_args_place(text, format, command, command_key);
            let at = match &place {
                NewArgs::SameLine => command.span.end,
                NewArgs::NextLine { eol, .. } => *eol,
            };
            edits.push(Edit { range: at..at, text: new_args_text(format, &place, &prefix) });
        }
    }
    Outcome::Wrapped
}

/// A remote entry as a stdio one: `latch shim --url`, the headers in the
/// environment (so that the client's own `${VAR}` expansion applies, and no
/// value lands on a command line), the original text kept for `uninstall`.
fn remote_wrapped(text: &str, name: &str, r: &crate::doc::RemoteEntry, latch: &str) -> String {
    let args: Vec<String> = ["shim", "--name", name, "--url", &r.url].iter().map(|s| quote(s)).collect();
    let mut out = format!("{{\"command\": {}, \"args\": [{}]", quote(latch), args.join(", "));
    if !r.headers.is_empty() {
        let lines: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        out.push_str(&format!(", \"env\": {{\"{}\": {}}}", crate::REMOTE_HEADERS_ENV, quote(&lines.join("\n"))));
    }
    out.push_str(&format!(", \"{}\": {}}}", crate::doc::REMOTE_ORIGINAL_KEY, quote(&text[r.entry.clone()])));
    out
}

fn uninstall(text: &str, format: Format, server: &Server, latch: &str, edits: &mut Vec<Edit>) -> Outcome {
    let Some(k) = wrapped(&server.shape, latch) else {
        return match &server.shape {
            Shape::RemoteWrapped { entry, original, .. } => {
                edits.push(Edit { range: entry.clone(), text: original.clone() });
                Outcome::Unwrapped
            }
            Shape::Remote { url, wrap: Err(why) } => Outcome::Remote(format!("{url} ({why})")),
            Shape::Remote { .. } => Outcome::NotWrapped,
            Shape::Other { why } => Outcome::Skipped(why.clone()),
            Shape::Stdio { .. } => Outcome::NotWrapped,
        };
    };
    let Shape::Stdio { command, command_key, args: Some(args) } = &server.shape else {
        unreachable!("wrapped() checked the shape")
    };
    let items = &args.items;
    let original = &items[k + 1];
    edits.push(Edit { range: command.span.clone(), text: text[original.span.clone()].to_owned() });
    let raw: Vec<String> = items.iter().map(|l| text[l.span.clone()].to_owned()).collect();
    let place = new_args_place(text, format, command, command_key);
    let made_by_install = items.len() == k + 2 && {
        let (from, expected) = match &place {
            NewArgs::SameLine => (command.span.end, new_args_text(format, &place, &raw)),
            NewArgs::NextLine { eol, .. } => (*eol, new_args_text(format, &place, &raw)),
        };
        from <= args.span.end && text[from..args.span.end] == expected
    };
    if made_by_install {
        let from = match place {
            NewArgs::SameLine => command.span.end,
            NewArgs::NextLine { eol, .. } => eol,
        };
        edits.push(Edit { range: from..args.span.end, text: String::new() });
    } else if items.len() > k + 2 {
        edits.push(Edit { range: items[0].span.start..items[k + 2].span.start, text: String::new() });
    } else {
        // The list held nothing else: cut through the command (and a
        // trailing comma someone may have added since).
        let mut end = original.span.end;
        let rest = &text[end..args.span.end];
        let ws = rest.len() - rest.trim_start().len();
        if rest[ws..].starts_with(',') {
            end += ws + 1;
        }
        edits.push(Edit { range: items[0].span.start..end, text: String::new() });
    }
    Outcome::Unwrapped
}

#[cfg(test)]
mod tests;
