//! What the daemon says about the tools servers list (issue 18): a
//! definition that changed since it was pinned, text in it that addresses
//! the model, a name another server already uses.

use serde::{Deserialize, Serialize};

/// One tool with findings, as consoles and `latch tools` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolFinding {
    pub server: String,
    pub tool: String,
    /// `changed` (differs from its pin), and the kinds of what its
    /// definition holds (`injection`, `hidden_text`, `same_name`,
    /// `names_other_tool`, …).
    pub kinds: Vec<String>,
    /// When it was first seen so (Unix ms; 0 when not known since a
    /// restart).
    pub since: i64,
    /// One line per change or finding, redacted.
    pub reasons: Vec<String>,
    /// The description as pinned against as listed now, as a unified diff
    /// (`--- pinned`, `+++ now`, lines marked ` `, `-`, `+`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The hash of the definition shown: accepting names it, so a
    /// definition the server changed since is not accepted unseen.
    pub hash: String,
}
