//! Every string value of a config file with the key it sits under, so that
//! the CLI can keep secrets (an `env` block's values, a header, a token
//! key) out of what it prints.

use crate::doc::Format;
use crate::jsonc::{self, Kind, Node};

/// Keys whose whole object holds values a server or client keeps secret.
const SECRET_BLOCKS: [&str; 3] = ["env", "headers", "http_headers"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// The nearest key above the value (an array's key for its items).
    pub key: String,
    /// Somewhere under an `env` or `headers` object.
    pub in_secret_block: bool,
    pub value: String,
}

/// The string values of TEXT; empty when it does not parse (then nothing
/// is printed from it either: the plan fails first).
pub fn string_leaves(text: &str, format: Format) -> Vec<Leaf> {
    let mut out = Vec::new();
    match format {
        Format::Json | Format::Jsonc => {
            if let Ok(Some(node)) = jsonc::parse(text, true) {
                json_walk(&node, "", false, &mut out);
            }
        }
        Format::Toml => {
            if let Ok(v) = text.parse::<toml::Table>() {
                toml_walk(&toml::Value::Table(v), "", false, &mut out);
            }
        }
    }
    out
}

fn json_walk(node: &Node, key: &str, secret: bool, out: &mut Vec<Leaf>) {
    match &node.kind {
        Kind::String(s) => out.push(Leaf { key: key.to_owned(), in_secret_block: secret, value: s.clone() }),
        Kind::Array(items) => items.iter().for_each(|n| json_walk(n, key, secret, out)),
        Kind::Object(members) => {
            for m in members {
                let inner = secret || SECRET_BLOCKS.contains(&m.key.as_str());
                json_walk(&m.value, &m.key, inner, out);
            }
        }
        Kind::Scalar => {}
    }
}

fn toml_walk(v: &toml::Value, key: &str, secret: bool, out: &mut Vec<Leaf>) {
    match v {
        toml::Value::String(s) => out.push(Leaf { key: key.to_owned(), in_secret_block: secret, value: s.clone() }),
        toml::Value::Array(items) => items.iter().for_each(|n| toml_walk(n, key, secret, out)),
        toml::Value::Table(t) => {
            for (k, v) in t {
                let inner = secret || SECRET_BLOCKS.contains(&k.as_str());
                toml_walk(v, k, inner, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_marked_in_json_and_toml() {
        let json = r#"{"mcpServers": {"g": {"command": "npx", "env": {"TOKEN": "abc"}}}}"#;
        let leaves = string_leaves(json, Format::Jsonc);
        assert!(leaves.iter().any(|l| l.value == "abc" && l.in_secret_block && l.key == "TOKEN"));
        assert!(leaves.iter().any(|l| l.value == "npx" && !l.in_secret_block));
        let toml = "[mcp_servers.g]\ncommand = \"npx\"\n[mcp_servers.g.env]\nTOKEN = \"abc\"\n";
        let leaves = string_leaves(toml, Format::Toml);
        assert!(leaves.iter().any(|l| l.value == "abc" && l.in_secret_block));
    }
}
