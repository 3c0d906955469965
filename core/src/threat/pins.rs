//! The pinned tools of one configured server, and what a new `tools/list`
//! says against them.
//!
//! The daemon keeps one [`ServerPins`] per configured server (not per
//! process: a restarted server is compared with what was pinned before),
//! feeds it every `tools/list` answer (also after
//! `notifications/tools/list_changed`), and asks it about each call. A tool
//! seen for the first time is pinned then; a changed tool stays changed —
//! its calls get the policy's `changed_tools` effect — until a person
//! accepts the new definition ([`ServerPins::accept`]). A tool that
//! disappears keeps its pin, so that coming back changed is still seen.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pin::{Change, Pinned, diff};

/// Most tools pinned per server; beyond, new tools count as changed.
pub const MAX_TOOLS: usize = 4096;

/// What one listed tool is, against its pin.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// First seen: pinned now.
    New,
    /// As pinned.
    Same,
    /// Different from its pin; the pin stays until accepted.
    Changed { now: Box<Pinned>, changes: Vec<Change> },
    /// Not pinned: the server lists more than [`MAX_TOOLS`] tools.
    Unpinned,
}

/// One configured server's pins, stored as they are (serde) by the daemon.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerPins {
    tools: BTreeMap<String, Pinned>,
    /// Tools whose current definition differs from the pin: name → hash
    /// of the current one.
    #[serde(default)]
    changed: BTreeMap<String, String>,
}

impl ServerPins {
    /// Compares a `tools/list` result's `tools` array with the pins; pins
    /// new tools. A name listed twice is compared twice (the second
    /// definition against the first).
    pub fn observe(&mut self, tools: &Value) -> Vec<(String, Seen)> {
        let mut out = Vec::new();
        for t in tools.as_array().map(Vec::as_slice).unwrap_or_default() {
            let Some(now) = Pinned::from_value(t) else { continue };
            let name = now.name.clone();
            let seen = match self.tools.get(&name) {
                None if self.tools.len() >= MAX_TOOLS => {
                    self.changed.insert(name.clone(), now.hash.clone());
                    Seen::Unpinned
                }
                None => {
                    self.tools.insert(name.clone(), now);
                    Seen::New
                }
                Some(p) if p.hash == now.hash => {
                    self.changed.remove(&name);
                    Seen::Same
                }
                Some(p) => {
                    let changes = diff(p, &now);
                    self.changed.insert(name.clone(), now.hash.clone());
                    Seen::Changed { now: Box::new(now), changes }
                }
            };
            out.push((name, seen));
        }
        out
    }

    /// Whether calls to `tool` meet a changed (or unpinned) definition.
    pub fn is_changed(&self, tool: &str) -> bool {
        self.changed.contains_key(tool)
    }

    pub fn get(&self, tool: &str) -> Option<&Pinned> {
        self.tools.get(tool)
    }

    /// Every pinned tool, by name.
    pub fn tools(&self) -> impl Iterator<Item = &Pinned> {
        self.tools.values()
    }

    /// A person accepted `now` (with the PIN): it becomes the pin. Only
    /// the definition that was seen is accepted: when the server changed
    /// it again meanwhile, it stays changed.
    pub fn accept(&mut self, now: Pinned) {
        if self.changed.get(&now.name) == Some(&now.hash) {
            self.changed.remove(&now.name);
        }
        if self.tools.len() < MAX_TOOLS || self.tools.contains_key(&now.name) {
            self.tools.insert(now.name.clone(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(desc: &str, read_only: bool) -> Value {
        json!([{"name": "fact", "description": desc, "annotations": {"readOnlyHint": read_only}}])
    }

    #[test]
    fn pin_change_accept() {
        let mut p = ServerPins::default();
        assert_eq!(p.observe(&list("A fact.", false))[0].1, Seen::New);
        assert_eq!(p.observe(&list("A fact.", false))[0].1, Seen::Same);
        let seen = p.observe(&list("A fact. <IMPORTANT>x</IMPORTANT>", true));
        let Seen::Changed { now, changes } = &seen[0].1 else { panic!("{seen:?}") };
        assert_eq!(changes.len(), 2);
        assert!(changes[1].less_cautious);
        assert!(p.is_changed("fact"));
        // Still changed on the next list; the pin did not move.
        assert!(matches!(p.observe(&list("A fact. <IMPORTANT>x</IMPORTANT>", true))[0].1, Seen::Changed { .. }));
        assert_eq!(p.get("fact").unwrap().description, "A fact.");
        p.accept(*now.clone());
        assert!(!p.is_changed("fact"));
        assert_eq!(p.observe(&list("A fact. <IMPORTANT>x</IMPORTANT>", true))[0].1, Seen::Same);
    }

    #[test]
    fn going_back_to_the_pin_clears_the_change() {
        let mut p = ServerPins::default();
        p.observe(&list("A fact.", false));
        p.observe(&list("Other.", false));
        assert!(p.is_changed("fact"));
        p.observe(&list("A fact.", false));
        assert!(!p.is_changed("fact"));
    }

    #[test]
    fn accepting_a_stale_definition_does_not_accept_a_newer_one() {
        let mut p = ServerPins::default();
        p.observe(&list("A.", false));
        let Seen::Changed { now: b, .. } = p.observe(&list("B.", false)).remove(0).1 else { panic!() };
        p.observe(&list("C.", false));
        p.accept(*b);
        assert!(p.is_changed("fact"), "C was never accepted");
    }

    #[test]
    fn a_name_listed_twice_is_compared_with_itself() {
        let mut p = ServerPins::default();
        let seen = p.observe(&json!([{"name": "x", "description": "a"}, {"name": "x", "description": "b"}]));
        assert_eq!(seen[0].1, Seen::New);
        assert!(matches!(seen[1].1, Seen::Changed { .. }));
    }

    #[test]
    fn memory_is_bounded() {
        let mut p = ServerPins::default();
        let many: Vec<Value> = (0..MAX_TOOLS + 10).map(|i| json!({"name": format!("t{i}")})).collect();
        let seen = p.observe(&Value::Array(many));
        assert_eq!(seen.iter().filter(|s| s.1 == Seen::Unpinned).count(), 10);
        assert!(p.is_changed(&format!("t{MAX_TOOLS}")));
        let back: ServerPins = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
