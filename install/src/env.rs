//! The `env` block of a server entry, and which of its variables change
//! what Latch itself does when the server is wrapped: the block is the
//! environment of `latch shim`, so it can point the shim at another Latch
//! home (its own policy and daemon), move the folders Latch finds its files
//! from, choose which program runs as the server, or load code into the
//! shim.

use toml::de::DeValue;

use crate::jsonc::{Kind, Node};

/// One variable of an entry's `env` (or its `envFile`, which Latch cannot
/// read through).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    /// The value, when it is a string.
    pub value: Option<String>,
}

/// The key standing for VS Code's `envFile`.
pub const ENV_FILE: &str = "envFile";

/// A variable that changes Latch, and why it matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Risk {
    pub key: String,
    pub value: Option<String>,
    pub why: &'static str,
}

pub(crate) fn from_json(entry: &Node) -> Vec<EnvVar> {
    let mut out = Vec::new();
    if let Some(env) = entry.get("env")
        && matches!(env.kind, Kind::Object(_))
    {
        out.extend(
            env.members().iter().map(|m| EnvVar { key: m.key.clone(), value: m.value.as_str().map(str::to_owned) }),
        );
    }
    if let Some(file) = entry.get(ENV_FILE) {
        out.push(EnvVar { key: ENV_FILE.to_owned(), value: file.as_str().map(str::to_owned) });
    }
    out
}

pub(crate) fn from_toml(entry: &DeValue<'_>) -> Vec<EnvVar> {
    let DeValue::Table(t) = entry else { return Vec::new() };
    let Some((_, env)) = t.iter().find(|(k, _)| k.get_ref() == "env") else { return Vec::new() };
    let DeValue::Table(env) = env.get_ref() else { return Vec::new() };
    let mut entries: Vec<_> = env.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
        .into_iter()
        .map(|(k, v)| EnvVar {
            key: k.get_ref().to_string(),
            value: match v.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            },
        })
        .collect()
}

/// The variables of `env` that change what Latch does, in order.
pub fn risks(env: &[EnvVar]) -> Vec<Risk> {
    env.iter()
        .filter_map(|v| {
            let k = v.key.to_ascii_uppercase();
            let why = if v.key == ENV_FILE {
                "sets variables from a file, which may override any of the ones below"
            } else if v.key == crate::REMOTE_HEADERS_ENV {
                // The remote server's own headers, for that server only.
                return None;
            } else if k == "LATCH_HOME" {
                "points the shim at another Latch home: its own policy, daemon and audit log"
            } else if k.starts_with("LATCH_") {
                "changes how the shim or the daemon it starts behaves"
            } else if k == "HOME" || k.starts_with("XDG_") {
                "moves the folders Latch finds its policy, socket and log in (when LATCH_HOME is not set)"
            } else if k == "PATH" {
                "decides which program runs as the server, and which `latch` a name finds"
            } else if k.starts_with("LD_") || k.starts_with("DYLD_") {
                "loads other code into the shim itself"
            } else {
                return None;
            };
            Some(Risk { key: v.key.clone(), value: v.value.clone(), why })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, Layout, doc};

    fn keys(text: &str, format: Format, layout: Layout) -> Vec<Vec<String>> {
        doc::servers(text, format, layout)
            .unwrap()
            .iter()
            .map(|s| risks(&s.env).into_iter().map(|r| r.key).collect())
            .collect()
    }

    #[test]
    fn risky_variables_are_found_in_json_and_toml() {
        let json = r#"{"mcpServers": {
            "a": {"command": "x", "env": {"LATCH_HOME": "/tmp/evil", "API_KEY": "k", "Path": "/tmp"}},
            "b": {"command": "y", "env": {"XDG_CONFIG_HOME": "/x", "HOME": "/y", "LD_PRELOAD": "/z.so"}},
            "c": {"command": "z", "envFile": "${workspaceFolder}/.env"},
            "d": {"command": "w", "env": {"DEBUG": "1"}}
        }}"#;
        assert_eq!(
            keys(json, Format::Json, Layout::McpServers),
            [vec!["LATCH_HOME", "Path"], vec!["XDG_CONFIG_HOME", "HOME", "LD_PRELOAD"], vec![ENV_FILE], vec![]]
        );
        let toml = "[mcp_servers.a]\ncommand = \"x\"\n[mcp_servers.a.env]\nLATCH_HOME = \"/tmp/e\"\nFOO = \"1\"\n\
                    [mcp_servers.b]\ncommand = \"y\"\nenv = { PATH = \"/tmp\", LATCH_HOLD_MS = \"1\" }\n";
        assert_eq!(keys(toml, Format::Toml, Layout::CodexToml), [vec!["LATCH_HOME"], vec!["PATH", "LATCH_HOLD_MS"]]);
    }
}
