//! Which MCP clients keep their server lists where, per platform.
//!
//! Every path is relative to the home folder (or to the project folder for
//! project files), so tests point HOME at a temporary folder. The platform
//! is a parameter, so the macOS table is tested on Linux too.

use std::path::{Path, PathBuf};

use crate::doc::{Format, Layout};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    VsCode,
    Windsurf,
    Codex,
    Gemini,
}

impl Client {
    pub const ALL: [Client; 7] = [
        Client::ClaudeDesktop,
        Client::ClaudeCode,
        Client::Cursor,
        Client::VsCode,
        Client::Windsurf,
        Client::Codex,
        Client::Gemini,
    ];

    /// The name on the command line (`latch install claude-code`).
    pub fn id(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::VsCode => "vscode",
            Client::Windsurf => "windsurf",
            Client::Codex => "codex",
            Client::Gemini => "gemini",
        }
    }

    /// The name people know it by.
    pub fn title(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "Claude Desktop",
            Client::ClaudeCode => "Claude Code",
            Client::Cursor => "Cursor",
            Client::VsCode => "VS Code",
            Client::Windsurf => "Windsurf",
            Client::Codex => "Codex",
            Client::Gemini => "Gemini CLI",
        }
    }

    pub fn from_id(id: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.id() == id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
}

impl Os {
    pub fn current() -> Os {
        if cfg!(target_os = "macos") { Os::MacOs } else { Os::Linux }
    }
}

/// One config file a client may have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub client: Client,
    pub path: PathBuf,
    pub format: Format,
    pub layout: Layout,
    /// "user" or "project".
    pub scope: &'static str,
}

/// Every config file the clients may read, user files first, then the
/// project's (PROJECT, usually the current folder).
pub fn locations(home: &Path, project: Option<&Path>, os: Os) -> Vec<Location> {
    let app_support = match os {
        Os::MacOs => home.join("Library/Application Support"),
        Os::Linux => home.join(".config"),
    };
    let user = |client, path: PathBuf, format, layout| Location { client, path, format, layout, scope: "user" };
    let mut out = vec![
        user(
            Client::ClaudeDesktop,
            app_support.join("Claude/claude_desktop_config.json"),
            Format::Json,
            Layout::McpServers,
        ),
        user(Client::ClaudeCode, home.join(".claude.json"), Format::Json, Layout::ClaudeJson),
        user(Client::Cursor, home.join(".cursor/mcp.json"), Format::Jsonc, Layout::McpServers),
        user(Client::VsCode, app_support.join("Code/User/settings.json"), Format::Jsonc, Layout::VsCodeSettings),
        user(Client::VsCode, app_support.join("Code/User/mcp.json"), Format::Jsonc, Layout::VsCodeMcp),
        user(Client::Windsurf, home.join(".codeium/windsurf/mcp_config.json"), Format::Jsonc, Layout::McpServers),
        user(Client::Codex, home.join(".codex/config.toml"), Format::Toml, Layout::CodexToml),
        user(Client::Gemini, home.join(".gemini/settings.json"), Format::Jsonc, Layout::McpServers),
    ];
    if let Some(p) = project {
        let proj = |client, path: PathBuf, format, layout| Location { client, path, format, layout, scope: "project" };
        out.extend([
            proj(Client::ClaudeCode, p.join(".mcp.json"), Format::Json, Layout::McpServers),
            proj(Client::Cursor, p.join(".cursor/mcp.json"), Format::Jsonc, Layout::McpServers),
            proj(Client::VsCode, p.join(".vscode/mcp.json"), Format::Jsonc, Layout::VsCodeMcp),
            proj(Client::Gemini, p.join(".gemini/settings.json"), Format::Jsonc, Layout::McpServers),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_home_or_the_project() {
        for os in [Os::Linux, Os::MacOs] {
            for l in locations(Path::new("/h"), Some(Path::new("/p")), os) {
                assert!(l.path.starts_with("/h") || l.path.starts_with("/p"), "{l:?}");
            }
        }
        let mac = locations(Path::new("/h"), None, Os::MacOs);
        assert_eq!(mac[0].path, Path::new("/h/Library/Application Support/Claude/claude_desktop_config.json"));
        let linux = locations(Path::new("/h"), None, Os::Linux);
        assert_eq!(linux[0].path, Path::new("/h/.config/Claude/claude_desktop_config.json"));
    }

    #[test]
    fn client_ids_round_trip() {
        for c in Client::ALL {
            assert_eq!(Client::from_id(c.id()), Some(c));
        }
    }
}
