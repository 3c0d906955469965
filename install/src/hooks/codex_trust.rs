//! How Codex records that a person trusted a hook (it silently skips the
//! others): `[hooks.state."<key>"] trusted_hash = "sha256:<hex>"` in
//! `config.toml`, where
//!
//! - the key is `<config file>:pre_tool_use:<group>:<handler>`: the path
//!   Codex loaded the file from, and the positions of the matcher group
//!   among the file's `PreToolUse` groups and of the handler in it;
//! - the hash is SHA-256 of the handler's group in a normalised form,
//!   compact JSON with sorted keys and defaults filled in:
//!   `{"event_name":"pre_tool_use","hooks":[{"async":false,"command":…,
//!   "timeout":…,"type":"command"}],"matcher":…}`.
//!
//! Both were read off Codex 0.171 (`codex app-server`, method
//! `hooks/list`, fields `key` and `currentHash`) and are checked against
//! it in tests/py/test_hooks.py; a Codex that changes them shows the hook
//! as untrusted in `latch doctor`.

use sha2::{Digest, Sha256};

/// The key Codex gives handler HANDLER of PreToolUse group GROUP in the
/// config file at PATH.
pub fn key(path: &str, group: usize, handler: usize) -> String {
    format!("{path}:pre_tool_use:{group}:{handler}")
}

/// The hash Codex records when a person trusts a command handler.
pub fn hash(matcher: Option<&str>, command: &str, timeout: Option<u64>) -> String {
    let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
    let timeout = timeout.map(|t| format!(",\"timeout\":{t}")).unwrap_or_default();
    let matcher = matcher.map(|m| format!(",\"matcher\":{}", s(m))).unwrap_or_default();
    let normal = format!(
        "{{\"event_name\":\"pre_tool_use\",\"hooks\":[{{\"async\":false,\"command\":{}{timeout},\"type\":\"command\"}}]{matcher}}}",
        s(command)
    );
    let digest = Sha256::digest(normal.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The number of `PreToolUse` groups DOC already has: the index the next
/// one appended gets.
pub(super) fn groups(doc: &toml::Table) -> usize {
    pre_tool_use(doc).map_or(0, |a| a.len())
}

fn pre_tool_use(doc: &toml::Table) -> Option<&Vec<toml::Value>> {
    doc.get("hooks")?.get("PreToolUse")?.as_array()
}

/// The trust recorded for KEY, if any.
pub(super) fn recorded<'a>(doc: &'a toml::Table, key: &str) -> Option<&'a str> {
    doc.get("hooks")?.get("state")?.get(key)?.get("trusted_hash")?.as_str()
}

/// Whether every Latch handler in DOC (the config file at PATH) is trusted
/// the way Codex checks it; `None` when there is none.
pub fn trusted(text: &str, path: &str, agent: super::HookAgent) -> Option<bool> {
    let doc = text.parse::<toml::Table>().ok()?;
    let mut ours = Vec::new();
    for (g, group) in pre_tool_use(&doc).into_iter().flatten().enumerate() {
        let matcher = group.get("matcher").and_then(|m| m.as_str());
        for (h, handler) in group.get("hooks").and_then(|h| h.as_array()).into_iter().flatten().enumerate() {
            let Some(command) = handler.get("command").and_then(|c| c.as_str()) else { continue };
            if !super::is_ours(command, agent) {
                continue;
            }
            let timeout = handler.get("timeout").and_then(|t| t.as_integer()).and_then(|t| u64::try_from(t).ok());
            let want = hash(matcher, command, timeout);
            let is_async = handler.get("async").and_then(|a| a.as_bool()).unwrap_or(false);
            ours.push(!is_async && recorded(&doc, &key(path, g, h)) == Some(want.as_str()));
        }
    }
    (!ours.is_empty()).then(|| ours.iter().all(|t| *t))
}
