//! What a call reads from or sends to, for the trifecta's chain: the URL,
//! the recipients, the command or the path in its arguments, and every URL
//! anywhere in them (a fetch leaks by any of them).

use serde_json::Value;

/// Argument names, by what they say, most telling first; compared without
/// case, `_` and `-`.
const GROUPS: &[&[&str]] = &[
    &["url", "uri", "href", "link", "endpoint", "webhook", "webhookurl"],
    &["to", "recipient", "recipients", "email", "channel", "channelid", "chatid", "repo", "repository"],
    &["command", "cmd", "script"],
    &["filepath", "path", "file", "filename", "notebookpath", "paths"],
];
/// Strings read in one call's arguments, and nesting followed.
const MAX_STRINGS: usize = 512;
const MAX_DEPTH: usize = 16;
/// URLs kept of one call.
const MAX_URLS: usize = 64;
/// Bytes of one string read for URLs, and of a target kept.
const MAX_TEXT: usize = 4096;

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn norm(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// The target of a call, `home` shown as `~`.
pub(crate) fn of(args: &Value, home: Option<&str>) -> Option<String> {
    let obj = args.as_object()?;
    for group in GROUPS {
        for (k, v) in obj {
            if !group.contains(&norm(k).as_str()) {
                continue;
            }
            let text = match v {
                Value::String(s) if !s.trim().is_empty() => cut(s, MAX_TEXT).to_owned(),
                Value::Array(a) => {
                    let parts: Vec<&str> =
                        a.iter().filter_map(Value::as_str).take(3).map(|s| cut(s, MAX_TEXT)).collect();
                    if parts.is_empty() {
                        continue;
                    }
                    parts.join(", ")
                }
                _ => continue,
            };
            return Some(tilde(&text, home));
        }
    }
    urls(args).into_iter().next()
}

fn tilde(s: &str, home: Option<&str>) -> String {
    match home.filter(|h| h.len() > 1) {
        Some(h) => s.replace(&format!("{}/", h.trim_end_matches('/')), "~/"),
        None => s.to_owned(),
    }
}

/// The longest string in the arguments (as far as they are walked), when
/// it is longer than what is read of it: what is not read may carry data.
pub(crate) fn longest_unread(args: &Value) -> Option<usize> {
    fn walk(v: &Value, depth: usize, seen: &mut usize, best: &mut usize) {
        if depth > MAX_DEPTH || *seen >= MAX_STRINGS {
            return;
        }
        match v {
            Value::String(s) => {
                *seen += 1;
                *best = (*best).max(s.len());
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, depth + 1, seen, best)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                *seen += 1;
                *best = (*best).max(k.len());
                walk(x, depth + 1, seen, best);
            }),
            _ => {}
        }
    }
    let mut best = 0;
    walk(args, 0, &mut 0, &mut best);
    (best > MAX_TEXT).then_some(best)
}

/// Every URL in the arguments (`scheme://…` or `//host…`), also inside
/// longer text, in the order met; and every string value that is a URL
/// without its scheme (`x.example/?d=…`: fetch tools add `https://`),
/// given one.
pub(crate) fn urls(args: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = 0;
    walk(args, 0, &mut seen, &mut out);
    let mut seen = 0;
    bare(args, 0, &mut seen, &mut out);
    out
}

/// `host.tld/…` or `host.tld?…`: a host with a dot first, no whitespace.
fn schemeless(s: &str) -> bool {
    let s = s.trim();
    let host = s.split(['/', '?', '#']).next().unwrap_or("");
    !s.contains("://")
        && !s.starts_with("//")
        && !s.chars().any(char::is_whitespace)
        && host.contains('.')
        && !host.starts_with('.')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:@_".contains(c))
        && host.rsplit('.').next().is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()))
}

fn bare(v: &Value, depth: usize, seen: &mut usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH || *seen >= MAX_STRINGS || out.len() >= MAX_URLS {
        return;
    }
    match v {
        Value::String(s) => {
            *seen += 1;
            let s = cut(s, MAX_TEXT);
            if schemeless(s) {
                out.push(format!("https://{}", s.trim()));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| bare(x, depth + 1, seen, out)),
        Value::Object(o) => o.values().for_each(|x| bare(x, depth + 1, seen, out)),
        _ => {}
    }
}

fn walk(v: &Value, depth: usize, seen: &mut usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH || *seen >= MAX_STRINGS || out.len() >= MAX_URLS {
        return;
    }
    match v {
        Value::String(s) => {
            *seen += 1;
            for word in cut(s, MAX_TEXT).split(|c: char| c.is_whitespace() || "\"'<>()[]{}`".contains(c)) {
                if out.len() >= MAX_URLS {
                    break;
                }
                let is_url = word.starts_with("//")
                    || word.split_once("://").is_some_and(|(scheme, _)| {
                        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
                    });
                if is_url {
                    out.push(word.to_owned());
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| walk(x, depth + 1, seen, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            *seen += 1;
            walk(&Value::String(k.clone()), depth + 1, seen, out);
            walk(x, depth + 1, seen, out);
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_most_telling_argument_is_the_target() {
        let home = Some("/home/ann");
        assert_eq!(of(&json!({"url": "https://x.example/a", "body": "hi"}), home).unwrap(), "https://x.example/a");
        assert_eq!(
            of(&json!({"subject": "s", "to": ["a@x.example", "b@y.example"]}), home).unwrap(),
            "a@x.example, b@y.example"
        );
        assert_eq!(of(&json!({"command": "curl x", "paths": ["/a"]}), home).unwrap(), "curl x");
        assert_eq!(
            of(&json!({"file_path": "/home/ann/.aws/credentials", "paths": []}), home).unwrap(),
            "~/.aws/credentials"
        );
        assert_eq!(of(&json!({"q": "see https://y.example/?d=1 now"}), home).unwrap(), "https://y.example/?d=1");
        assert_eq!(of(&json!({"n": 3}), home), None);
        assert_eq!(of(&json!("text"), home), None);
    }

    #[test]
    fn urls_are_found_anywhere_and_bounded() {
        let v = json!({"a": {"b": ["x //h.example/p", "ftp://f.example/"]}, "https://k.example/?q=1": 1});
        let mut u = urls(&v);
        u.sort();
        assert_eq!(u, ["//h.example/p", "ftp://f.example/", "https://k.example/?q=1"]);
        let many: Vec<String> = (0..1000).map(|i| format!("https://{i}.example/")).collect();
        assert_eq!(urls(&json!(many)).len(), MAX_URLS);
        assert!(urls(&json!({"t": "a ratio 3://4 of ://x"})).len() == 1);
        // Without a scheme, as fetch tools take them; not file names or prose.
        assert_eq!(urls(&json!({"url": "x.example/?d=1"})), ["https://x.example/?d=1"]);
        assert_eq!(urls(&json!({"url": "QUtJQQ123abc.x.example"})), ["https://QUtJQQ123abc.x.example"]);
        // (`notes.md` reads as a host: harmless, a URL counts only when it
        // carries data.)
        for not_url in ["./a/b.txt", "v1.2.3", "see a.example now", "a.b/../c d", "1.5"] {
            assert_eq!(urls(&json!({ "t": not_url })), Vec::<String>::new(), "{not_url}");
        }
        // A huge string is read only so far.
        let huge = format!("{} https://late.example/?d=1", "é".repeat(1 << 20));
        assert!(urls(&json!({ "t": huge })).is_empty());
        assert!(of(&json!({ "url": huge }), None).unwrap().len() <= MAX_TEXT);
        assert_eq!(longest_unread(&json!({ "t": huge })), Some(huge.len()));
        assert_eq!(longest_unread(&json!({ "t": "short" })), None);
    }
}
