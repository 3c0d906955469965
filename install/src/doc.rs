//! Where the servers are in each client's file, with the byte spans the
//! rewriting needs.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::jsonc::{self, Kind, Node};

/// How the file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Strict JSON (Claude Desktop, Claude Code: read with `JSON.parse`).
    Json,
    /// JSON with comments and trailing commas (VS Code, Cursor, Gemini CLI, Windsurf).
    Jsonc,
    /// TOML (Codex).
    Toml,
}

/// Where the servers sit inside the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `{"mcpServers": {NAME: {...}}}`.
    McpServers,
    /// `~/.claude.json`: `mcpServers`, and `projects.<dir>.mcpServers`.
    ClaudeJson,
    /// VS Code `settings.json`: `"mcp": {"servers": {...}}` (or a flat `"mcp.servers"`).
    VsCodeSettings,
    /// VS Code `mcp.json`: `{"servers": {...}}`.
    VsCodeMcp,
    /// Codex `config.toml`: `[mcp_servers.NAME]`.
    CodexToml,
}

/// A literal value in the text: its span and, for a string, its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Lit {
    pub span: Range<usize>,
    pub value: Option<String>,
}

/// A server's `args` list.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// The list, brackets included.
    pub span: Range<usize>,
    /// Where the `args` key starts.
    pub key_start: usize,
    pub items: Vec<Lit>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// Started by the client as a process: what Latch wraps.
    Stdio { command: Lit, command_key: Range<usize>, args: Option<Args> },
    /// Reached over HTTP or SSE. WRAP: how `latch install` wraps it, or
    /// why it cannot.
    Remote { url: String, wrap: Result<RemoteEntry, String> },
    /// A remote server wrapped by `latch install`: ORIGINAL is the entry's
    /// text as it was, which `uninstall` puts back at ENTRY.
    RemoteWrapped { entry: Range<usize>, original: String, command: String },
    /// Not understood; left alone, with the reason.
    Other { why: String },
}

/// A remote entry `latch install` can wrap.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteEntry {
    /// The whole entry, braces included.
    pub entry: Range<usize>,
    pub url: String,
    /// Its `headers`, in file order, values as written (`${VAR}` kept).
    pub headers: Vec<(String, String)>,
    /// A Codex entry: the lines to comment out (`entry` is then empty, at
    /// the first of them).
    pub toml: Option<crate::remote_toml::TomlPlace>,
}

/// The member of a wrapped remote entry that keeps the original entry's
/// text.
pub const REMOTE_ORIGINAL_KEY: &str = "latchRemote";

#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    pub name: String,
    /// "" for the file's own list; "project DIR" for a Claude Code project entry.
    pub place: String,
    pub shape: Shape,
    /// The entry's `env` block (and `envFile`), in file order.
    pub env: Vec<crate::env::EnvVar>,
}

/// Why a file cannot be read as this client's config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct Malformed {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Malformed {
    fn at(text: &str, at: usize, message: impl Into<String>) -> Malformed {
        let (line, column) = jsonc::line_col(text, at);
        Malformed { line, column, message: message.into() }
    }
}

/// Every server of the file, in file order.
pub fn servers(text: &str, format: Format, layout: Layout) -> Result<Vec<Server>, Malformed> {
    match format {
        Format::Toml => toml_servers(text),
        Format::Json | Format::Jsonc => json_servers(text, format == Format::Jsonc, layout),
    }
}

const REMOTE_TYPES: &[&str] = &["http", "sse", "streamable-http", "streamableHttp", "streamable_http"];
const URL_KEYS: &[&str] = &["url", "serverUrl", "httpUrl"];

fn json_servers(text: &str, jsonc: bool, layout: Layout) -> Result<Vec<Server>, Malformed> {
    let root = match jsonc::parse(text, jsonc) {
        Ok(Some(root)) => root,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(Malformed { line: e.line, column: e.column, message: e.message }),
    };
    if !matches!(root.kind, Kind::Object(_)) {
        return Err(Malformed::at(text, root.span.start, "the file's top level is not an object `{ … }`"));
    }
    let mut lists: Vec<(&Node, String, &str)> = Vec::new();
    match layout {
        Layout::McpServers => lists.extend(root.get("mcpServers").map(|n| (n, String::new(), "mcpServers"))),
        Layout::VsCodeMcp => lists.extend(root.get("servers").map(|n| (n, String::new(), "servers"))),
        Layout::VsCodeSettings => {
            lists.extend(root.get("mcp").and_then(|m| m.get("servers")).map(|n| (n, String::new(), "mcp.servers")));
            lists.extend(root.get("mcp.servers").map(|n| (n, String::new(), "mcp.servers")));
        }
        Layout::ClaudeJson => {
            lists.extend(root.get("mcpServers").map(|n| (n, String::new(), "mcpServers")));
            if let Some(projects) = root.get("projects") {
                for p in projects.members() {
                    if let Some(list) = p.value.get("mcpServers") {
                        lists.push((list, format!("project {}", p.key), "mcpServers"));
                    }
                }
            }
        }
        Layout::CodexToml => unreachable!("a TOML layout with a JSON format"),
    }
    let mut out = Vec::new();
    for (list, place, what) in lists {
        if !matches!(list.kind, Kind::Object(_)) {
            return Err(Malformed::at(text, list.span.start, format!("`{what}` is not an object of servers")));
        }
        for m in list.members() {
            out.push(Server {
                name: m.key.clone(),
                place: place.clone(),
                shape: json_shape(&m.value),
                env: crate::env::from_json(&m.value),
            });
        }
    }
    Ok(out)
}

fn lit(n: &Node) -> Lit {
    Lit { span: n.span.clone(), value: n.as_str().map(str::to_owned) }
}

fn json_shape(entry: &Node) -> Shape {
    if !matches!(entry.kind, Kind::Object(_)) {
        return Shape::Other { why: "the entry is not an object".into() };
    }
    if let Some(original) = entry.get(REMOTE_ORIGINAL_KEY).and_then(Node::as_str)
        && let Some(command) = entry.get("command").and_then(Node::as_str).filter(|c| is_latch(c))
    {
        let (entry, original, command) = (entry.span.clone(), original.to_owned(), command.to_owned());
        return Shape::RemoteWrapped { entry, original, command };
    }
    if let Some(url) = URL_KEYS.iter().find_map(|k| entry.get(k)) {
        let Some(url) = url.as_str() else {
            return Shape::Remote { url: "?".into(), wrap: Err("its URL is not a string".into()) };
        };
        return Shape::Remote { url: url.to_owned(), wrap: remote_entry(entry, url) };
    }
    if let Some(t) = entry.get("type").and_then(Node::as_str)
        && REMOTE_TYPES.contains(&t)
    {
        return Shape::Remote { url: format!("({t})"), wrap: Err("it names no URL".into()) };
    }
    let Some(command) = entry.member("command") else {
        return Shape::Other { why: "no `command`".into() };
    };
    if command.value.as_str().is_none() {
        return Shape::Other { why: "`command` is not a string".into() };
    }
    let args = match entry.member("args") {
        None => None,
        Some(m) => match &m.value.kind {
            Kind::Array(items) => Some(Args {
                span: m.value.span.clone(),
                key_start: m.key_span.start,
                items: items.iter().map(lit).collect(),
            }),
            _ => return Shape::Other { why: "`args` is not a list".into() },
        },
    };
    Shape::Stdio { command: lit(&command.value), command_key: command.key_span.clone(), args }
}

/// A command that is `latch` (by its file name).
pub(crate) fn is_latch(cmd: &str) -> bool {
    let base = cmd.rsplit(['/', '\\']).next().unwrap_or(cmd);
    base == "latch" || base == "latch.exe"
}

fn remote_entry(entry: &Node, url: &str) -> Result<RemoteEntry, String> {
    if entry.get("command").is_some() {
        return Err("it has both a URL and a command".into());
    }
    let mut headers = Vec::new();
    if let Some(h) = entry.get("headers") {
        if !matches!(h.kind, Kind::Object(_)) {
            return Err("its `headers` is not an object".into());
        }
        for m in h.members() {
            let Some(v) = m.value.as_str() else { return Err(format!("its header {} is not a string", m.key)) };
            if m.key.is_empty() || m.key.contains([':', '\n', '\r']) || v.contains(['\n', '\r']) {
                return Err(format!("its header {} cannot be passed on", m.key));
            }
            headers.push((m.key.clone(), v.to_owned()));
        }
    }
    if entry.get("env").is_some() || entry.get("envFile").is_some() {
        return Err("it has an `env` of its own".into());
    }
    Ok(RemoteEntry { entry: entry.span.clone(), url: url.to_owned(), headers, toml: None })
}

fn toml_servers(text: &str) -> Result<Vec<Server>, Malformed> {
    let root = DeTable::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        Malformed::at(text, at, e.message().trim().to_owned())
    })?;
    let Some((_, list)) = root.get_ref().iter().find(|(k, _)| k.get_ref() == "mcp_servers") else {
        return Ok(Vec::new());
    };
    let DeValue::Table(list) = list.get_ref() else {
        return Err(Malformed::at(text, list.span().start, "`mcp_servers` is not a table of servers"));
    };
    let mut entries: Vec<_> = list.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    Ok(entries
        .into_iter()
        .map(|(k, v)| Server {
            name: k.get_ref().to_string(),
            place: String::new(),
            shape: toml_shape(text, v.get_ref()),
            env: crate::env::from_toml(v.get_ref()),
        })
        .collect())
}

fn toml_lit(v: &toml::Spanned<DeValue<'_>>) -> Lit {
    let value = match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        _ => None,
    };
    Lit { span: v.span(), value }
}

fn toml_shape(text: &str, entry: &DeValue<'_>) -> Shape {
    let DeValue::Table(t) = entry else {
        return Shape::Other { why: "the entry is not a table".into() };
    };
    let get = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key);
    if let Some((_, command)) = get("command")
        && let DeValue::String(c) = command.get_ref()
        && let Some(shape) = crate::remote_toml::wrapped(text, c, command.span())
    {
        return shape;
    }
    if let Some((_, url)) = get("url") {
        let DeValue::String(url) = url.get_ref() else {
            return Shape::Remote { url: "?".into(), wrap: Err("its URL is not a string".into()) };
        };
        if get("command").is_some() {
            return Shape::Remote { url: url.to_string(), wrap: Err("it has both a URL and a command".into()) };
        }
        let mut entries: Vec<_> =
            t.iter().map(|(k, v)| (k.get_ref().as_ref(), k.span(), v.span(), v.get_ref())).collect();
        entries.sort_by_key(|e| e.1.start);
        return crate::remote_toml::remote(text, &entries, url);
    }
    let Some((command_key, command)) = get("command") else {
        return Shape::Other { why: "no `command`".into() };
    };
    if !matches!(command.get_ref(), DeValue::String(_)) {
        return Shape::Other { why: "`command` is not a string".into() };
    }
    let args = match get("args") {
        None => None,
        Some((k, v)) => match v.get_ref() {
            DeValue::Array(items) => {
                Some(Args { span: v.span(), key_start: k.span().start, items: items.iter().map(toml_lit).collect() })
            }
            _ => return Shape::Other { why: "`args` is not a list".into() },
        },
    };
    Shape::Stdio { command: toml_lit(command), command_key: command_key.span(), args }
}
