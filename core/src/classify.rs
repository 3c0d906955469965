//! Classification of one tool call into a [`Class`] with risk [`Flag`]s and
//! the reasons a person can read.

use serde_json::Value;

use crate::class::{Class, Flag, Flags};
use crate::tooldef::ToolDef;

/// One call as the classifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub args: &'a Value,
}

/// What the user's configuration contributes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// Domains whose hosts and addresses count as internal (exact or
    /// subdomain match on the parsed host).
    pub internal_domains: &'a [String],
    /// The user's override for this server and tool, strongest input.
    pub user_class: Option<Class>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    pub class: Class,
    pub flags: Flags,
    /// Why, one short phrase each, strongest first.
    pub reasons: Vec<String>,
    /// Hosts and e-mail domains found in the arguments, lower-case.
    pub domains: Vec<String>,
}

/// Splits a tool name into lower-case words: snake_case, camelCase,
/// kebab-case, dots and slashes.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_lowercase() || ch.is_numeric();
        cur.extend(ch.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn verb_class(word: &str) -> Option<Class> {
    Some(match word {
        "pay" | "payment" | "payout" | "refund" | "transfer" | "charge" | "withdraw" | "purchase" | "buy"
        | "checkout" => Class::TransferValue,
        "submit" | "publish" | "deploy" | "merge" | "release" | "push" => Class::Submit,
        "exec" | "execute" | "run" | "shell" | "bash" | "eval" | "spawn" | "command" | "terminal" => Class::Execute,
        "send" | "email" | "mail" | "post" | "reply" | "forward" | "notify" | "sms" | "tweet" => Class::Send,
        "write" | "create" | "update" | "edit" | "delete" | "remove" | "move" | "rename" | "set" | "put" | "patch"
        | "insert" | "upload" | "save" | "modify" | "add" | "mkdir" | "append" | "replace" | "drop" | "truncate"
        | "commit" => Class::Write,
        "read" | "get" | "list" | "search" | "find" | "fetch" | "query" | "show" | "describe" | "view" | "stat"
        | "lookup" | "info" | "count" | "inspect" | "browse" | "head" | "tail" | "echo" => Class::Read,
        _ => return None,
    })
}

const SHELL_KEYS: &[&str] = &["command", "cmd", "script", "shell", "bash", "code"];

/// Classifies one call.
pub fn classify(call: &Call<'_>, def: Option<&ToolDef>, ctx: &Context<'_>) -> Classification {
    let mut flags = Flags::new();
    let mut reasons = Vec::new();

    let name_class = words(call.tool).iter().find_map(|w| verb_class(w).map(|c| (c, w.clone())));
    let mut class = match name_class {
        Some((c, w)) => {
            reasons.push(format!("name word '{w}'"));
            c
        }
        None => {
            reasons.push("no known word in the name: treated as WRITE".to_owned());
            Class::Write
        }
    };

    if let Some(def) = def {
        let a = def.annotations;
        if a.read_only_or_default() {
            reasons.push("annotation readOnlyHint=true (cannot lower the class)".to_owned());
        } else {
            if class == Class::Read {
                class = Class::Write;
                reasons.push("annotation readOnlyHint=false: at least WRITE".to_owned());
            }
            if a.destructive_or_default() {
                flags.insert(Flag::Destructive);
                reasons.push("annotation destructiveHint=true".to_owned());
            }
        }
        if a.open_world_or_default() {
            flags.insert(Flag::OpenWorld);
        }
    }

    if let Value::Object(map) = call.args {
        for key in map.keys() {
            if SHELL_KEYS.contains(&key.as_str()) && map[key].is_string() {
                flags.insert(Flag::Shell);
                if class < Class::Execute {
                    class = Class::Execute;
                }
                reasons.push(format!("argument `{key}` is a shell command"));
            }
        }
    }

    if let Some(c) = ctx.user_class {
        reasons.insert(0, format!("user override: {c}"));
        class = c;
    }

    Classification { class, flags, reasons, domains: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_split_every_style() {
        assert_eq!(words("read_file"), ["read", "file"]);
        assert_eq!(words("getMessages"), ["get", "messages"]);
        assert_eq!(words("create-pull-request"), ["create", "pull", "request"]);
    }

    #[test]
    fn read_file_on_billing_is_read() {
        let args = json!({"path": "billing/x.txt"});
        let c = classify(&Call { server: "fs", tool: "read_file", args: &args }, None, &Context::default());
        assert_eq!(c.class, Class::Read);
    }
}
