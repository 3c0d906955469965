//! A built-in tool as the decision core sees it: a tool definition (what a
//! `tools/list` entry would say) and arguments built so the classifier and
//! self-protection see what the tool will really touch.
//!
//! * **Shell** (`Bash`, `run_shell_command`, `shell`, `exec_command` …):
//!   `{command, cwd, paths}`. `command` is a shell argument, so the call
//!   is EXECUTE with the full shell analysis; `paths` holds every word of
//!   the command resolved against the working folder, so `cat
//!   latch/policy.toml` run in `~/.config` names the policy file.
//! * **Writers** (`Write`, `Edit`, `MultiEdit`, `write_file`, `replace`,
//!   `edit`, `create`, `apply_patch` …): WRITE; the input as given plus
//!   `paths`, each path made absolute against the working folder. An
//!   `apply_patch` text becomes `{patch, paths}`: every path it adds,
//!   updates, moves to or deletes (a delete makes it destructive).
//! * **Readers and searches** (`Read`, `Grep`, `Glob`, `LS`, `read_file`,
//!   `view` …): READ, with `paths` (the working folder when the tool names
//!   none: that is what it searches).
//! * **Web** (`WebFetch`, `WebSearch`, `web_fetch`, `google_web_search`):
//!   READ and open-world; URLs are found by the classifier.
//! * **MCP** (`mcp__srv__tool`, Gemini's `mcp_context`, Copilot's
//!   `srv-tool`): named by server and tool, decided as that server's call
//!   unless a Latch shim already guards it.
//! * Anything else keeps its input and is classified by its name like an
//!   MCP tool with no definition (unknown verbs are WRITE).

use serde_json::{Map, Value, json};

use super::agent::Agent;
use super::patch::{self, Change};
use super::payload::HookInput;

/// What a built-in tool does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Execute,
    Write,
    Read,
    Web,
    Other,
}

/// A built-in tool, ready for the decision core.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    pub kind: Kind,
    /// The tool's name as the agent gave it (rules match it).
    pub tool: String,
    /// A `tools/list` entry for the tool, `None` for unknown tools.
    pub def: Option<Value>,
    pub args: Value,
}

/// Where a hook call goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// One of the agent's own tools (or one it does not say is MCP).
    Builtin(Mapped),
    /// An MCP tool: `server` is the name in the agent's MCP config.
    Mcp { server: String, tool: String, args: Value },
    /// Copilot CLI names MCP tools `server-tool`, and server names may
    /// hold dashes: the caller checks which prefix is a server it knows,
    /// and decides it as a built-in otherwise.
    MaybeMcp(Mapped),
}

const SHELL: &[&str] = &[
    "bash",
    "shell",
    "local_shell",
    "exec_command",
    "run_shell_command",
    "shell_command",
    "powershell",
    "container.exec",
    "unified_exec",
    "write_stdin",
    "write_bash",
];
const WRITE: &[&str] = &[
    "write",
    "edit",
    "multiedit",
    "notebookedit",
    "write_file",
    "replace",
    "edit_file",
    "create",
    "str_replace_editor",
    "str_replace_based_edit_tool",
    "insert",
    "apply_patch",
];
const READ: &[&str] = &[
    "read",
    "grep",
    "glob",
    "ls",
    "notebookread",
    "read_file",
    "read_many_files",
    "list_directory",
    "search_file_content",
    "grep_search",
    "view",
    "find",
    "list_dir",
    "file_search",
];
const WEB: &[&str] = &["webfetch", "websearch", "web_fetch", "web_search", "google_web_search", "fetch"];

/// Keys whose text values are file or folder paths.
const PATH_KEYS: &[&str] = &[
    "file_path",
    "path",
    "absolute_path",
    "notebook_path",
    "dir_path",
    "directory",
    "dir",
    "filename",
    "file",
    "target_file",
    "paths",
    "files",
    "workdir",
    "cwd",
];

/// Most words of a shell command resolved into `paths`.
const MAX_WORDS: usize = 512;

fn kind_of(tool: &str) -> Kind {
    let t = tool.to_ascii_lowercase();
    let t = t.as_str();
    if SHELL.contains(&t) {
        Kind::Execute
    } else if WRITE.contains(&t) {
        Kind::Write
    } else if READ.contains(&t) {
        Kind::Read
    } else if WEB.contains(&t) {
        Kind::Web
    } else {
        Kind::Other
    }
}

/// `mcp__server__tool` → (server, tool).
fn mcp_name(tool: &str) -> Option<(String, String)> {
    let rest = tool.strip_prefix("mcp__")?;
    let (server, name) = rest.split_once("__")?;
    (!server.is_empty() && !name.is_empty()).then(|| (server.to_owned(), name.to_owned()))
}

/// Turns one hook call into what the decision core decides. `home` is the
/// user's home folder, for `~/…` paths.
pub fn map(agent: Agent, input: &HookInput, home: Option<&str>) -> Target {
    if let Some(server) = &input.mcp_server {
        let tool = input.mcp_tool.clone().unwrap_or_else(|| input.tool.clone());
        return Target::Mcp { server: server.clone(), tool, args: input.input.clone() };
    }
    if let Some((server, tool)) = mcp_name(&input.tool) {
        return Target::Mcp { server, tool, args: input.input.clone() };
    }
    let kind = kind_of(&input.tool);
    let cwd = input.cwd.as_str();
    let mapped = match kind {
        Kind::Execute => shell(input, cwd, home),
        Kind::Write if input.tool.eq_ignore_ascii_case("apply_patch") => apply_patch(input, cwd, home),
        Kind::Write | Kind::Read | Kind::Web => files(kind, input, cwd, home),
        Kind::Other => Mapped { kind, tool: input.tool.clone(), def: None, args: input.input.clone() },
    };
    if agent == Agent::Copilot && kind == Kind::Other && input.tool.contains('-') {
        return Target::MaybeMcp(mapped);
    }
    Target::Builtin(mapped)
}

fn def(tool: &str, description: &str, read_only: bool, destructive: bool, open_world: bool) -> Value {
    json!({
        "name": tool,
        "description": description,
        "annotations": {
            "readOnlyHint": read_only,
            "destructiveHint": destructive,
            "idempotentHint": false,
            "openWorldHint": open_world,
        },
    })
}

fn shell(input: &HookInput, cwd: &str, home: Option<&str>) -> Mapped {
    let obj = input.input.as_object();
    let command = obj.and_then(|o| o.get("command").or_else(|| o.get("cmd"))).cloned().unwrap_or(Value::Null);
    // Where it runs: Gemini's `directory` and Codex's `workdir` are relative to cwd.
    let dir = obj
        .and_then(|o| o.get("directory").or_else(|| o.get("workdir")).or_else(|| o.get("cwd")))
        .and_then(Value::as_str)
        .map(|d| resolve(cwd, d, home))
        .unwrap_or_else(|| cwd.to_owned());
    let mut text = String::new();
    match &command {
        Value::String(s) => text.push_str(s),
        Value::Array(a) => {
            for part in a.iter().filter_map(Value::as_str) {
                text.push_str(part);
                text.push(' ');
            }
        }
        _ => {}
    }
    let mut paths: Vec<String> = Vec::new();
    for word in text.split(is_shell_break).filter(|w| !w.is_empty()).take(MAX_WORDS) {
        let word = word.trim_start_matches(['-', '@']);
        // `--file=x` and `a=b`: the value is the path.
        let word = word.rsplit_once('=').map_or(word, |(_, v)| v);
        if word.is_empty() || word.starts_with('$') {
            continue;
        }
        // Against the folder the tool says it runs in and the agent's own:
        // a tool that ignores its `workdir` must not hide a path.
        for base in [dir.as_str(), cwd] {
            let p = resolve(base, word, home);
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    let mut args = Map::new();
    args.insert("command".into(), command);
    args.insert("cwd".into(), Value::String(dir));
    args.insert("paths".into(), json!(paths));
    let description = if input.tool.eq_ignore_ascii_case("write_stdin") || input.tool.eq_ignore_ascii_case("write_bash")
    {
        "Run input in a shell session."
    } else {
        "Run a shell command."
    };
    Mapped {
        kind: Kind::Execute,
        tool: input.tool.clone(),
        def: Some(json!({"name": input.tool, "description": description})),
        args: Value::Object(args),
    }
}

fn is_shell_break(c: char) -> bool {
    c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(' | ')' | '<' | '>' | '\'' | '"' | '`' | '{' | '}' | ',')
}

fn apply_patch(input: &HookInput, cwd: &str, home: Option<&str>) -> Mapped {
    let obj = input.input.as_object();
    let text = match &input.input {
        Value::Object(o) => ["command", "patch", "input"]
            .iter()
            .find_map(|k| match o.get(*k) {
                Some(Value::String(s)) => Some(s.clone()),
                // `{command: ["apply_patch", "<patch>"]}`
                Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n")),
                _ => None,
            })
            .unwrap_or_default(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let dir = obj
        .and_then(|o| o.get("workdir").or_else(|| o.get("cwd")))
        .and_then(Value::as_str)
        .map(|d| resolve(cwd, d, home))
        .unwrap_or_else(|| cwd.to_owned());
    let touched = patch::paths(&text);
    let destructive = touched.iter().any(|(c, _)| *c == Change::Delete);
    let mut paths: Vec<String> = Vec::new();
    for (_, p) in &touched {
        let p = resolve(&dir, p, home);
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    let description = "Edit files with a patch.";
    Mapped {
        kind: Kind::Write,
        tool: input.tool.clone(),
        def: Some(def(&input.tool, description, false, destructive, false)),
        args: json!({ "patch": text, "cwd": dir, "paths": paths }),
    }
}

fn files(kind: Kind, input: &HookInput, cwd: &str, home: Option<&str>) -> Mapped {
    let mut args = match &input.input {
        Value::Object(o) => o.clone(),
        other => {
            let mut m = Map::new();
            m.insert("input".into(), other.clone());
            m
        }
    };
    let mut paths: Vec<String> = Vec::new();
    for key in PATH_KEYS {
        let mut add = |s: &str| {
            if !s.is_empty() {
                let p = resolve(cwd, s, home);
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        };
        match args.get(*key) {
            Some(Value::String(s)) => add(s),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).for_each(&mut add),
            _ => {}
        }
    }
    // MultiEdit and friends may name a path per edit.
    if let Some(Value::Array(edits)) = args.get("edits") {
        for e in edits {
            for key in ["file_path", "path"] {
                if let Some(s) = e.get(key).and_then(Value::as_str) {
                    let p = resolve(cwd, s, home);
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
        }
    }
    if paths.is_empty() && kind != Kind::Web && !cwd.is_empty() {
        // A search with no path searches the working folder.
        paths.push(normalize(cwd));
    }
    // A `command` key in a file tool is not a shell command to run, but it
    // would be read as one: keep it under another name.
    if let Some(c) = args.remove("command") {
        args.insert("subcommand".into(), c);
    }
    args.insert("paths".into(), json!(paths));
    let def = match kind {
        Kind::Write => def(&input.tool, "Write or edit files.", false, false, false),
        Kind::Read => def(&input.tool, "Read or search files.", true, false, false),
        _ => def(&input.tool, "Fetch or search the web.", true, false, true),
    };
    Mapped { kind, tool: input.tool.clone(), def: Some(def), args: Value::Object(args) }
}

/// `p` made absolute against `base` (and `~/` against `home`), `.` and
/// `..` removed lexically. Symbolic links are not followed (no IO here).
pub fn resolve(base: &str, p: &str, home: Option<&str>) -> String {
    let joined = if let Some(rest) = p.strip_prefix("~/").or_else(|| (p == "~").then_some("")) {
        match home {
            Some(h) => format!("{h}/{rest}"),
            None => return p.to_owned(),
        }
    } else if p.starts_with('/') || base.is_empty() {
        p.to_owned()
    } else {
        format!("{base}/{p}")
    };
    normalize(&joined)
}

fn normalize(p: &str) -> String {
    if !p.starts_with('/') {
        return p.to_owned();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}
