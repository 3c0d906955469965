//! Tool definitions a person has approved a `no_evidence` call of.
//!
//! `[defaults] no_evidence = "ask"` asks the first time a tool nothing
//! speaks for is called; a person's *approve* (any scope) makes that exact
//! definition — server name, tool name, definition hash — known, and later
//! calls of it are decided by the class default and the rules as any other
//! call ([`latch_core::policy::Facts`]). A deny remembers nothing. A changed
//! definition has a new hash and is asked about again.
//!
//! Kept in the audit database's state table beside the approvals, so it
//! survives restarts. It is not authenticated: the agent can write the
//! daemon's files, so it could add an entry, but an entry only removes the
//! first-time question about a tool with no evidence; the class default and
//! every rule still decide (see `docs/security/evidence.md`). A record that
//! cannot be read counts as empty: every such tool is asked about again.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::audit::NewEvent;

/// The state-table key.
pub const STATE_KEY: &str = "known_tools";

/// At most this many definitions are kept; beyond it the oldest is
/// forgotten (and asked about again).
const LIMIT: usize = 10_000;

const VERSION: u32 = 1;

/// One tool definition: server, tool, definition hash.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Definition {
    pub server: String,
    pub tool: String,
    pub def_hash: String,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    def: Definition,
    /// Unix ms when a person approved it.
    at: i64,
    approval_id: String,
}

#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    tools: Vec<Entry>,
}

/// Why a saved record was not used.
#[derive(Debug, thiserror::Error)]
pub enum KnownError {
    #[error("the known tool definitions are not in the expected form: {0}")]
    Format(#[from] serde_json::Error),
    #[error("the known tool definitions have version {0}, this build reads version {VERSION}")]
    Version(u32),
}

/// The known definitions, and the approvals that would add one.
#[derive(Default)]
pub struct Known {
    tools: BTreeMap<Definition, (i64, String)>,
    /// Pending approvals of `no_evidence` calls (approval id → definition):
    /// approving one makes its definition known. Not saved: an approval
    /// answered after a restart asks again the next time.
    asked: HashMap<String, Definition>,
}

impl Known {
    pub fn restore(text: &str) -> Result<Known, KnownError> {
        let r: Record = serde_json::from_str(text)?;
        if r.version != VERSION {
            return Err(KnownError::Version(r.version));
        }
        let mut k = Known::default();
        for e in r.tools {
            k.tools.insert(e.def, (e.at, e.approval_id));
        }
        k.trim();
        Ok(k)
    }

    pub fn snapshot(&self) -> String {
        let tools = self
            .tools
            .iter()
            .map(|(def, (at, approval_id))| Entry { def: def.clone(), at: *at, approval_id: approval_id.clone() })
            .collect();
        serde_json::to_string(&Record { version: VERSION, tools }).unwrap_or_default()
    }

    pub fn contains(&self, server: &str, tool: &str, def_hash: &str) -> bool {
        // Borrowed lookup would need a second key type; definitions are short.
        let d = Definition { server: server.to_owned(), tool: tool.to_owned(), def_hash: def_hash.to_owned() };
        self.tools.contains_key(&d)
    }

    /// A `no_evidence` call of `def` waits on `approval_id`.
    pub fn asked(&mut self, approval_id: &str, def: Definition) {
        self.asked.entry(approval_id.to_owned()).or_insert(def);
    }

    /// `approval_id` closed: approved, its definition becomes known
    /// (returned when it is new); otherwise nothing is remembered.
    pub fn closed(&mut self, approval_id: &str, approved: bool, at: i64) -> Option<Definition> {
        let def = self.asked.remove(approval_id)?;
        if !approved || self.tools.contains_key(&def) {
            return None;
        }
        self.tools.insert(def.clone(), (at, approval_id.to_owned()));
        self.trim();
        Some(def)
    }

    fn trim(&mut self) {
        while self.tools.len() > LIMIT {
            let oldest = self.tools.iter().min_by_key(|(_, (at, _))| *at).map(|(d, _)| d.clone());
            match oldest {
                Some(d) => self.tools.remove(&d),
                None => break,
            };
        }
    }
}

/// The saved definitions (none when there are none or they cannot be
/// read: then every such tool is asked about again).
pub fn load(audit: &crate::audit::Audit) -> Known {
    match audit.get_state(STATE_KEY) {
        Ok(Some(text)) => Known::restore(&text).unwrap_or_else(|e| {
            tracing::warn!("{e}; tools nothing speaks for are asked about again");
            Known::default()
        }),
        Ok(None) => Known::default(),
        Err(e) => {
            tracing::warn!("could not read the known tool definitions ({e}); asking about them again");
            Known::default()
        }
    }
}

/// The audit row that says a definition became known.
pub fn row(approval_id: String, def: Definition, base: NewEvent) -> NewEvent {
    NewEvent {
        kind: "tool_known",
        decision: "allow".into(),
        detail: Some(format!(
            "definition {} approved: later calls nothing speaks for are decided by the class default and the rules",
            def.def_hash
        )),
        server: def.server,
        tool: def.tool,
        approval_id: Some(approval_id),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(hash: &str) -> Definition {
        Definition { server: "srv".into(), tool: "frobnicate".into(), def_hash: hash.into() }
    }

    #[test]
    fn an_approval_makes_the_definition_known_and_a_deny_does_not() {
        let mut k = Known::default();
        k.asked("a1", def("h1"));
        k.asked("a2", def("h2"));
        assert_eq!(k.closed("a2", false, 1), None);
        assert!(!k.contains("srv", "frobnicate", "h2"));
        assert_eq!(k.closed("a1", true, 2), Some(def("h1")));
        assert!(k.contains("srv", "frobnicate", "h1"));
        // Another definition of the same tool is not known.
        assert!(!k.contains("srv", "frobnicate", "h2"));
        assert!(!k.contains("other", "frobnicate", "h1"));
        // An approval nobody asked about for no_evidence adds nothing.
        assert_eq!(k.closed("a3", true, 3), None);
    }

    #[test]
    fn it_survives_a_snapshot_and_a_bad_record_is_refused() {
        let mut k = Known::default();
        k.asked("a1", def("h1"));
        k.closed("a1", true, 5);
        let back = Known::restore(&k.snapshot()).expect("restores");
        assert!(back.contains("srv", "frobnicate", "h1"));
        assert!(Known::restore("{\"version\":9,\"tools\":[]}").is_err());
        assert!(Known::restore("not json").is_err());
    }

    #[test]
    fn it_is_bounded() {
        let mut k = Known::default();
        for i in 0..(LIMIT as i64 + 3) {
            k.asked("a", def(&format!("h{i}")));
            k.closed("a", true, i);
        }
        assert_eq!(k.tools.len(), LIMIT);
        assert!(!k.contains("srv", "frobnicate", "h0"));
        assert!(k.contains("srv", "frobnicate", &format!("h{}", LIMIT + 2)));
    }
}
