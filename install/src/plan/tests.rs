//! Install, install again, uninstall on every client's sample file
//! (tests/fixtures/install), byte for byte.

use super::*;
use crate::doc::{Format, Layout};

const LATCH: &str = "/opt/latch/bin/latch";

struct Fixture {
    name: &'static str,
    text: &'static str,
    format: Format,
    layout: Layout,
}

macro_rules! fixture {
    ($file:literal, $format:expr, $layout:expr) => {
        Fixture {
            name: $file,
            text: include_str!(concat!("../../../tests/fixtures/install/", $file)),
            format: $format,
            layout: $layout,
        }
    };
}

fn fixtures() -> Vec<Fixture> {
    vec![
        fixture!("claude_desktop_config.json", Format::Json, Layout::McpServers),
        fixture!("claude.json", Format::Json, Layout::ClaudeJson),
        fixture!("project.mcp.json", Format::Json, Layout::McpServers),
        fixture!("cursor_mcp.json", Format::Jsonc, Layout::McpServers),
        fixture!("vscode_settings.json", Format::Jsonc, Layout::VsCodeSettings),
        fixture!("vscode_mcp.json", Format::Jsonc, Layout::VsCodeMcp),
        fixture!("windsurf_mcp_config.json", Format::Jsonc, Layout::McpServers),
        fixture!("codex_config.toml", Format::Toml, Layout::CodexToml),
        fixture!("gemini_settings.json", Format::Jsonc, Layout::McpServers),
    ]
}

fn outcomes(p: &Plan) -> Vec<(String, Outcome)> {
    p.reports.iter().map(|r| (r.name.clone(), r.outcome.clone())).collect()
}

fn wrapped_command(text: &str, f: &Fixture, name: &str) -> (String, Vec<String>) {
    let servers = crate::doc::servers(text, f.format, f.layout).unwrap();
    let s = servers.iter().find(|s| s.name == name).unwrap();
    let Shape::Stdio { command, args, .. } = &s.shape else { panic!("{name} is not stdio") };
    let args = args.as_ref().map(|a| a.items.iter().map(|l| l.value.clone().unwrap()).collect()).unwrap_or_default();
    (command.value.clone().unwrap(), args)
}

#[test]
fn every_fixture_wraps_once_and_unwraps_to_the_same_bytes() {
    for f in fixtures() {
        let installed = plan(f.text, f.format, f.layout, Action::Install, LATCH).unwrap();
        assert!(!installed.edits.is_empty(), "{}: nothing wrapped", f.name);
        assert!(installed.reports.iter().any(|r| r.outcome == Outcome::Wrapped), "{}", f.name);
        let again = plan(&installed.text, f.format, f.layout, Action::Install, LATCH).unwrap();
        assert!(again.edits.is_empty(), "{}: the second install changed something", f.name);
        assert_eq!(again.text, installed.text);
        for r in &again.reports {
            assert_ne!(r.outcome, Outcome::Wrapped, "{}: {} wrapped twice", f.name, r.name);
        }
        let removed = plan(&installed.text, f.format, f.layout, Action::Uninstall, LATCH).unwrap();
        assert_eq!(removed.text, f.text, "{}: uninstall did not restore the original bytes", f.name);
        let nothing = plan(f.text, f.format, f.layout, Action::Uninstall, LATCH).unwrap();
        assert!(nothing.edits.is_empty(), "{}", f.name);
    }
}

#[test]
fn a_wrapped_server_starts_latch_shim_with_the_original_command_and_args() {
    let f = fixture!("claude_desktop_config.json", Format::Json, Layout::McpServers);
    let p = plan(f.text, f.format, f.layout, Action::Install, LATCH).unwrap();
    let (cmd, args) = wrapped_command(&p.text, &f, "filesystem");
    assert_eq!(cmd, LATCH);
    assert_eq!(
        args,
        [
            "shim",
            "--name",
            "filesystem",
            "--",
            "npx",
            "-y",
            "@modelcontextprotocol/server-filesystem",
            "/Users/me/Desktop",
            "/Users/me/Downloads"
        ]
    );
    // An empty list and a Windows path with escapes.
    let (_, args) = wrapped_command(&p.text, &f, "weather");
    assert_eq!(args, ["shim", "--name", "weather", "--", "C:\\Program Files\\nodejs\\node.exe"]);
    // One item per line stays one item per line.
    assert!(p.text.contains("\"args\": [\n        \"shim\",\n        \"--name\",\n"), "{}", p.text);
    // env is untouched.
    assert!(p.text.contains("\"env\": { \"LOG_LEVEL\": \"debug\" }"));
}

#[test]
fn claude_code_project_entries_and_a_missing_args_are_wrapped() {
    let f = fixture!("claude.json", Format::Json, Layout::ClaudeJson);
    let p = plan(f.text, f.format, f.layout, Action::Install, LATCH).unwrap();
    let got = outcomes(&p);
    assert_eq!(
        got,
        [
            ("github".to_owned(), Outcome::Wrapped),
            ("sentry".to_owned(), Outcome::Wrapped),
            ("airtable".to_owned(), Outcome::Wrapped),
            ("postgres".to_owned(), Outcome::Wrapped),
        ]
    );
    assert_eq!(p.reports[3].place, "project /home/me/code/shop");
    let (cmd, args) = wrapped_command(&p.text, &f, "airtable");
    assert_eq!(cmd, LATCH);
    assert_eq!(args, ["shim", "--name", "airtable", "--", "/usr/local/bin/airtable-mcp"]);
}

#[test]
fn jsonc_comments_and_trailing_commas_survive() {
    let f = fixture!("cursor_mcp.json", Format::Jsonc, Layout::McpServers);
    let p = plan(f.text, f.format, f.layout, Action::Install, LATCH).unwrap();
    for kept in ["// Cursor: global MCP servers", "/* The file system, read-write */", "// my projects", "// module"] {
        assert!(p.text.contains(kept), "{kept} lost:\n{}", p.text);
    }
    assert_eq!(outcomes(&p)[2], ("remote".to_owned(), Outcome::Wrapped));
    let (_, args) = wrapped_command(&p.text, &f, "web-search");
    assert_eq!(args, ["shim", "--name", "web-search", "--", "python3", "-m", "web_search_mcp", "--safe"]);
}

#[test]
fn codex_tables_inline_tables_and_literal_strings() {
    let f = fixture!("codex_config.toml", Format::Toml, Layout::CodexToml);
    let p = plan(f.text, f.format, f.layout, Action::Install, LATCH).unwrap();
    let got = outcomes(&p);
    assert_eq!(got.len(), 6, "{got:?}");
    for name in ["figma", "docs", "context7", "time", "git", "search"] {
        assert!(got.contains(&(name.to_owned(), Outcome::Wrapped)), "{name}: {got:?}");
    }
    let (cmd, args) = wrapped_command(&p.text, &f, "time");
    assert_eq!(
        (cmd.as_str(), args.as_slice()),
        (LATCH, ["shim", "--name", "time", "--", "uvx"].map(String::from).as_slice())
    );
    assert!(
        p.text.contains("command = \"/opt/latch/bin/latch\"\nargs = [\"shim\", \"--name\", \"time\", \"--\", 'uvx']\n"),
        "{}",
        p.text
    );
    assert!(p.text.contains("search = { command = \"/opt/latch/bin/latch\", args = [\"shim\", \"--name\", \"search\", \"--\", \"search-mcp\"], env"), "{}", p.text);
    assert!(p.text.contains("# the docs, locally"));
    let (_, args) = wrapped_command(&p.text, &f, "docs");
    assert_eq!(args, ["shim", "--name", "docs", "--", "docs-server", "--port", "4000"]);
}

#[test]
fn crlf_files_keep_their_line_ends() {
    let text = "[mcp_servers.a]\r\ncommand = \"x\"\r\nenv = {}\r\n";
    let p = plan(text, Format::Toml, Layout::CodexToml, Action::Install, LATCH).unwrap();
    assert_eq!(
        p.text,
        "[mcp_servers.a]\r\ncommand = \"/opt/latch/bin/latch\"\r\nargs = [\"shim\", \"--name\", \"a\", \"--\", \"x\"]\r\nenv = {}\r\n"
    );
    let back = plan(&p.text, Format::Toml, Layout::CodexToml, Action::Uninstall, LATCH).unwrap();
    assert_eq!(back.text, text);
    let json = "{\r\n  \"mcpServers\": {\"a\": {\"command\": \"x\", \"args\": [\r\n    \"y\"\r\n  ]}}\r\n}\r\n";
    let p = plan(json, Format::Json, Layout::McpServers, Action::Install, LATCH).unwrap();
    assert!(p.text.contains("[\r\n    \"shim\",\r\n    \"--name\""), "{:?}", p.text);
    assert_eq!(plan(&p.text, Format::Json, Layout::McpServers, Action::Uninstall, LATCH).unwrap().text, json);
}

#[test]
fn an_empty_list_and_an_absent_one_are_told_apart() {
    for text in [
        r#"{"mcpServers": {"a": {"command": "x", "args": []}}}"#,
        r#"{"mcpServers": {"a": {"command": "x", "args": [ ]}}}"#,
        r#"{"mcpServers": {"a": {"command": "x"}}}"#,
        r#"{"mcpServers": {"a": {"args": [], "command": "x"}}}"#,
    ] {
        let p = plan(text, Format::Json, Layout::McpServers, Action::Install, LATCH).unwrap();
        let back = plan(&p.text, Format::Json, Layout::McpServers, Action::Uninstall, LATCH).unwrap();
        assert_eq!(back.text, text, "via {}", p.text);
    }
}

#[test]
fn a_hand_wrapped_server_with_shim_options_is_unwrapped_too() {
    let text = r#"{"mcpServers": {"a": {"command": "latch", "args": ["shim", "--name", "a", "--grace", "5", "--", "npx", "pkg"]}}}"#;
    let p = plan(text, Format::Json, Layout::McpServers, Action::Install, LATCH).unwrap();
    assert_eq!(outcomes(&p), [("a".to_owned(), Outcome::AlreadyWrapped)]);
    let back = plan(text, Format::Json, Layout::McpServers, Action::Uninstall, LATCH).unwrap();
    assert_eq!(back.text, r#"{"mcpServers": {"a": {"command": "npx", "args": ["pkg"]}}}"#);
}

#[test]
fn names_and_paths_with_quotes_are_escaped() {
    let text = r#"{"mcpServers": {"my \"x\" server": {"command": "x"}}}"#;
    let p = plan(text, Format::Json, Layout::McpServers, Action::Install, "/a b/\"latch\"").unwrap();
    let f = Fixture { name: "inline", text, format: Format::Json, layout: Layout::McpServers };
    let (cmd, args) = wrapped_command(&p.text, &f, "my \"x\" server");
    assert_eq!(cmd, "/a b/\"latch\"");
    assert_eq!(args[2], "my \"x\" server");
}

#[test]
fn a_malformed_file_is_reported_with_its_line() {
    let text = include_str!("../../../tests/fixtures/install/malformed.json");
    let err = plan(text, Format::Json, Layout::McpServers, Action::Install, LATCH).unwrap_err();
    let PlanError::Malformed(m) = err else { panic!("{err:?}") };
    assert_eq!(m.line, 5, "{m}");
    let err =
        plan("[mcp_servers.a]\ncommand = \n", Format::Toml, Layout::CodexToml, Action::Install, LATCH).unwrap_err();
    let PlanError::Malformed(m) = err else { panic!("{err:?}") };
    assert_eq!(m.line, 2, "{m}");
    let err = plan(r#"{"mcpServers": []}"#, Format::Json, Layout::McpServers, Action::Install, LATCH).unwrap_err();
    assert!(err.to_string().contains("not an object"), "{err}");
}

#[test]
fn files_without_servers_need_no_edits() {
    for (text, format, layout) in [
        ("", Format::Jsonc, Layout::McpServers),
        ("{}", Format::Json, Layout::ClaudeJson),
        ("model = \"x\"\n", Format::Toml, Layout::CodexToml),
    ] {
        let p = plan(text, format, layout, Action::Install, LATCH).unwrap();
        assert!(p.edits.is_empty() && p.reports.is_empty());
    }
}

#[test]
fn vscode_settings_with_a_flat_mcp_servers_key() {
    let text = "{\n  // flat\n  \"mcp.servers\": {\"a\": {\"command\": \"x\", \"args\": [\"y\"]}},\n}\n";
    let p = plan(text, Format::Jsonc, Layout::VsCodeSettings, Action::Install, LATCH).unwrap();
    assert_eq!(outcomes(&p), [("a".to_owned(), Outcome::Wrapped)]);
    assert_eq!(plan(&p.text, Format::Jsonc, Layout::VsCodeSettings, Action::Uninstall, LATCH).unwrap().text, text);
}

#[test]
fn remote_entries_become_latch_shim_url_with_their_headers_in_env() {
    let text = r#"{"mcpServers": {
    "gh": {
      "type": "http",
      "url": "https://api.githubcopilot.com/mcp/",
      "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}", "X-Toolsets": "repos"}
    },
    "wind": { "serverUrl": "https://mcp.figma.com/sse" }, // a comment
    "odd": {"type": "sse"},
    "both": {"url": "https://x/", "command": "y"}
}}"#;
    let p = plan(text, Format::Jsonc, Layout::McpServers, Action::Install, LATCH).unwrap();
    let got = outcomes(&p);
    assert_eq!(got[0], ("gh".to_owned(), Outcome::Wrapped));
    assert_eq!(got[1], ("wind".to_owned(), Outcome::Wrapped));
    assert!(matches!(&got[2].1, Outcome::Remote(why) if why.contains("names no URL")), "{got:?}");
    assert!(matches!(&got[3].1, Outcome::Remote(why) if why.contains("both a URL and a command")), "{got:?}");
    let root = crate::jsonc::parse(&p.text, true).unwrap().unwrap();
    let gh = root.get("mcpServers").unwrap().get("gh").unwrap();
    assert_eq!(gh.get("command").unwrap().as_str(), Some(LATCH));
    let args: Vec<&str> = match &gh.get("args").unwrap().kind {
        crate::jsonc::Kind::Array(items) => items.iter().map(|i| i.as_str().unwrap()).collect(),
        _ => panic!(),
    };
    assert_eq!(args, ["shim", "--name", "gh", "--url", "https://api.githubcopilot.com/mcp/"]);
    // Headers travel in the environment, `${VAR}` as written (the client
    // expands it, or the bridge does): never on the command line.
    let env = gh.get("env").unwrap().get(crate::REMOTE_HEADERS_ENV).unwrap().as_str().unwrap();
    assert_eq!(env, "Authorization: Bearer ${GITHUB_TOKEN}\nX-Toolsets: repos");
    assert!(!args.iter().any(|a| a.contains("GITHUB_TOKEN")));
    // The comment after the entry survives; uninstall gives the bytes back.
    assert!(p.text.contains("// a comment"));
    let again = plan(&p.text, Format::Jsonc, Layout::McpServers, Action::Install, LATCH).unwrap();
    assert!(again.edits.is_empty());
    assert_eq!(outcomes(&again)[0], ("gh".to_owned(), Outcome::AlreadyWrapped));
    let back = plan(&p.text, Format::Jsonc, Layout::McpServers, Action::Uninstall, LATCH).unwrap();
    assert_eq!(back.text, text);
    assert_eq!(outcomes(&back)[0], ("gh".to_owned(), Outcome::Unwrapped));
}

#[test]
fn a_kept_original_is_honoured_only_under_a_latch_command() {
    let text = r#"{"mcpServers": {"x": {"command": "node", "args": ["s.js"], "latchRemote": "{}"}}}"#;
    let p = plan(text, Format::Json, Layout::McpServers, Action::Uninstall, LATCH).unwrap();
    assert!(p.edits.is_empty());
    assert_eq!(outcomes(&p)[0], ("x".to_owned(), Outcome::NotWrapped));
}

#[test]
fn codex_remote_tables_comment_their_transport_out_and_come_back() {
    let text = "[mcp_servers.figma]\r\nurl = \"https://mcp.figma.com/mcp\" # design\r\nstartup_timeout_sec = 20\r\n\
                bearer_token_env_var = \"FIGMA_TOKEN\"\r\nhttp_headers = { \"X-Team\" = \"blue\" }\r\n\
                env_http_headers = { \"X-Key\" = \"KEY_VAR\" }\r\n\r\n\
                [mcp_servers.odd]\r\nurl = \"https://y/mcp\"\r\nmystery = 1\r\n\
                [mcp_servers]\r\ninl = { url = \"https://x/mcp\" }\r\n";
    let p = plan(text, Format::Toml, Layout::CodexToml, Action::Install, LATCH).unwrap();
    let got = outcomes(&p);
    assert_eq!(got[0], ("figma".to_owned(), Outcome::Wrapped), "{got:?}");
    assert!(matches!(&got[1].1, Outcome::Remote(why) if why.contains("`mystery`")), "{got:?}");
    assert!(matches!(&got[2].1, Outcome::Remote(why) if why.contains("not on a line of its own")), "{got:?}");
    let want = "[mcp_servers.figma]\r\ncommand = \"/opt/latch/bin/latch\" # latch-remote\r\n\
                args = [\"shim\", \"--name\", \"figma\", \"--url\", \"https://mcp.figma.com/mcp\"]\r\n\
                env_vars = [\"FIGMA_TOKEN\", \"KEY_VAR\"]\r\n\
                env = { LATCH_REMOTE_HEADERS = \"Authorization: Bearer ${FIGMA_TOKEN}\\nX-Team: blue\\nX-Key: ${KEY_VAR}\" }\r\n\
                # latch-remote: url = \"https://mcp.figma.com/mcp\" # design\r\nstartup_timeout_sec = 20\r\n\
                # latch-remote: bearer_token_env_var = \"FIGMA_TOKEN\"\r\n\
                # latch-remote: http_headers = { \"X-Team\" = \"blue\" }\r\n\
                # latch-remote: env_http_headers = { \"X-Key\" = \"KEY_VAR\" }\r\n\r\n";
    assert!(p.text.starts_with(want), "{}", p.text);
    let again = plan(&p.text, Format::Toml, Layout::CodexToml, Action::Install, LATCH).unwrap();
    assert!(again.edits.is_empty());
    assert_eq!(outcomes(&again)[0], ("figma".to_owned(), Outcome::AlreadyWrapped));
    let back = plan(&p.text, Format::Toml, Layout::CodexToml, Action::Uninstall, LATCH).unwrap();
    assert_eq!(back.text, text);
}
