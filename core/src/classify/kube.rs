//! kubectl-style generic tools decided by their verb: `get`, `describe`,
//! `top`, `logs` read; `apply`, `delete`, `scale`, `rollout restart`,
//! `drain` change a cluster others depend on (SUBMIT); `exec`, `cp`,
//! `debug` run code (EXECUTE).
//!
//! The verb is read from a `command`, `verb`, `operation` or `action`
//! argument (a leading `kubectl` is skipped). A command with shell
//! syntax (`;`, `|`, `&`, `$`, backquotes, redirections, new lines) is not
//! judged here: it stays a shell command. An unknown verb is not judged
//! either, and the cautious class stands.

use serde_json::Value;

use crate::class::Class;

const VERB_KEYS: &[&str] = &["command", "verb", "operation", "action", "subcommand"];

/// Words that make a tool a Kubernetes tool.
pub(crate) fn is_kube_word(w: &str) -> bool {
    matches!(w, "kubectl" | "kubernetes" | "k8s" | "helm" | "kube")
}

fn verb_class(verb: &str, sub: Option<&str>) -> Option<Class> {
    Some(match verb {
        "get" | "describe" | "top" | "logs" | "log" | "explain" | "api-resources" | "api-versions" | "version"
        | "cluster-info" | "list" | "events" | "diff" | "wait" | "status" | "history" => Class::Read,
        "auth" => Class::Read,
        "rollout" => match sub {
            Some("status" | "history") => Class::Read,
            _ => Class::Submit,
        },
        "config" => match sub {
            Some("view" | "get-contexts" | "current-context" | "get-clusters") => Class::Read,
            _ => Class::Write,
        },
        "apply" | "create" | "delete" | "replace" | "patch" | "edit" | "scale" | "autoscale" | "drain" | "cordon"
        | "uncordon" | "taint" | "label" | "annotate" | "set" | "expose" | "run" | "install" | "upgrade"
        | "uninstall" | "rollback" => Class::Submit,
        "exec" | "cp" | "attach" | "debug" => Class::Execute,
        "port-forward" | "proxy" | "use-context" => Class::Write,
        _ => return None,
    })
}

fn has_shell_syntax(s: &str) -> bool {
    s.contains([';', '|', '&', '$', '`', '<', '>', '\n', '\r', '(', ')'])
}

/// The class the verb argument gives, with the key and the verb.
pub(crate) fn judge(args: &Value) -> Option<(Class, String, String)> {
    let map = args.as_object()?;
    let sub = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("subCommand") || k.eq_ignore_ascii_case("sub_command"))
        .and_then(|(_, v)| v.as_str())
        .map(|s| s.trim().to_ascii_lowercase());
    for (k, v) in map {
        if !VERB_KEYS.iter().any(|key| key.eq_ignore_ascii_case(k)) {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")
            }
            _ => continue,
        };
        if text.len() > 4096 || has_shell_syntax(&text) {
            return None;
        }
        let lower = text.to_ascii_lowercase();
        let mut tokens = lower.split_whitespace().skip_while(|t| *t == "kubectl" || *t == "helm");
        let Some(verb) = tokens.next() else { continue };
        let sub = tokens.next().map(str::to_owned).or_else(|| sub.clone());
        let class = verb_class(verb, sub.as_deref())?;
        return Some((class, k.clone(), format!("argument `{k}` is the cluster verb '{verb}': {class}")));
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn class(args: Value) -> Option<Class> {
        judge(&args).map(|c| c.0)
    }

    #[test]
    fn the_verb_decides() {
        assert_eq!(class(json!({"command": "get", "resourceType": "pods"})), Some(Class::Read));
        assert_eq!(class(json!({"command": "kubectl top pods"})), Some(Class::Read));
        assert_eq!(class(json!({"command": "apply", "args": ["-f", "x.yaml"]})), Some(Class::Submit));
        assert_eq!(class(json!({"command": "rollout", "subCommand": "restart"})), Some(Class::Submit));
        assert_eq!(class(json!({"command": "rollout", "subCommand": "status"})), Some(Class::Read));
        assert_eq!(class(json!({"operation": "drain", "nodeName": "n1"})), Some(Class::Submit));
        assert_eq!(class(json!({"command": "exec", "name": "web"})), Some(Class::Execute));
    }

    #[test]
    fn shell_syntax_and_unknown_verbs_are_not_judged() {
        assert_eq!(class(json!({"command": "get pods; rm -rf /"})), None);
        assert_eq!(class(json!({"command": "get pods | sh"})), None);
        assert_eq!(class(json!({"command": "frobnicate"})), None);
    }
}
