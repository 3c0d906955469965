//! A tool's definition as `tools/list` returns it, read leniently: missing or
//! odd fields (a non-string description, `"readOnlyHint": "yes"`) never make
//! parsing fail; they are simply not used.

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub annotations: Annotations,
    /// Top-level property names of `inputSchema`, in schema order.
    pub params: Vec<String>,
    /// SHA-256 of the definition's canonical JSON: grants are bound to the
    /// definition as first seen, and stop applying when it changes.
    pub hash: String,
}

/// MCP tool annotations. `None` when absent or not a boolean; the spec's
/// defaults apply then (see the `*_or_default` methods).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

impl Annotations {
    /// Spec default: false.
    pub fn read_only_or_default(&self) -> bool {
        self.read_only.unwrap_or(false)
    }
    /// Spec default: true (only meaningful when not read-only).
    pub fn destructive_or_default(&self) -> bool {
        self.destructive.unwrap_or(true)
    }
    /// Spec default: true.
    pub fn open_world_or_default(&self) -> bool {
        self.open_world.unwrap_or(true)
    }
}

/// Longest description kept; the rest is cut (huge descriptions exist).
const MAX_DESCRIPTION: usize = 4096;
/// Most schema properties kept.
const MAX_PARAMS: usize = 256;

impl ToolDef {
    /// Reads one entry of a `tools/list` result. `None` only when it has no
    /// string `name`.
    pub fn from_value(v: &Value) -> Option<ToolDef> {
        let name = v.get("name")?.as_str()?.to_owned();
        let title = v
            .get("title")
            .and_then(Value::as_str)
            .or_else(|| v.get("annotations")?.get("title")?.as_str())
            .map(str::to_owned);
        let mut description = v.get("description").and_then(Value::as_str).unwrap_or("").to_owned();
        if description.len() > MAX_DESCRIPTION {
            let mut cut = MAX_DESCRIPTION;
            while !description.is_char_boundary(cut) {
                cut -= 1;
            }
            description.truncate(cut);
        }
        let ann = v.get("annotations");
        let flag = |key: &str| ann.and_then(|a| a.get(key)).and_then(Value::as_bool);
        let annotations = Annotations {
            read_only: flag("readOnlyHint"),
            destructive: flag("destructiveHint"),
            idempotent: flag("idempotentHint"),
            open_world: flag("openWorldHint"),
        };
        let params = v
            .get("inputSchema")
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|props| props.keys().take(MAX_PARAMS).cloned().collect())
            .unwrap_or_default();
        Some(ToolDef { name, title, description, annotations, params, hash: crate::canonical::hash(v) })
    }

    /// Reads a whole `tools/list` result's `tools` array; entries without a
    /// name are skipped.
    pub fn list_from_value(tools: &Value) -> Vec<ToolDef> {
        tools.as_array().map(|a| a.iter().filter_map(ToolDef::from_value).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn odd_fields_are_ignored_not_fatal() {
        let d = ToolDef::from_value(&json!({
            "name": "x", "description": 5,
            "annotations": {"readOnlyHint": "yes", "destructiveHint": false},
            "inputSchema": {"properties": [1, 2]}
        }))
        .unwrap();
        assert_eq!(d.description, "");
        assert_eq!(d.annotations.read_only, None);
        assert_eq!(d.annotations.destructive, Some(false));
        assert!(d.params.is_empty());
        assert!(ToolDef::from_value(&json!({"name": 3})).is_none());
        assert!(ToolDef::from_value(&json!("nope")).is_none());
    }
}
