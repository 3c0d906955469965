//! Other spellings of the keys Latch routes on.
//!
//! Some JSON readers match object keys without regard to case: Go's
//! `encoding/json` folds `Method` to `method`, and folds with Unicode, so
//! `paramſ` (long s, U+017F) is `params` and `K` (Kelvin sign, U+212A) is
//! `k`. A server built on such a reader may act on a key Latch never read:
//! `"Method":"tools/call"` on a line Latch sees as a response, or a `Name`
//! after the `name` Latch decided. Latch routes only on exact spellings, so
//! a key that is not exactly a routed key but folds to one makes the
//! message ambiguous, and it is refused.
//!
//! Folding here is deliberately wide: each character may stand for its
//! lower case, its upper case, the lower case of its upper case (`ſ` → `S`
//! → `s`), with full mappings (`ß` → `ss`, `ﬅ` → `st`) and the first
//! character of a multi-character one (`İ` → `i`). A key matches a routed
//! key when some choice per character spells it, ignoring ASCII case.

use std::collections::HashMap;

/// Keys of the envelope and of `params` that Latch reads.
pub const ROUTED: &[&str] = &[
    "jsonrpc",
    "method",
    "id",
    "params",
    "result",
    "error",
    "name",
    "arguments",
    "_meta",
    "cursor",
    "clientInfo",
    "protocolVersion",
    "requestId",
    "progressToken",
    "requestState",
    "inputResponses",
];

/// The routed key that `key` is another spelling of, if any. An exact
/// spelling is not "another".
pub fn other_spelling_of(key: &str) -> Option<&'static str> {
    if ROUTED.contains(&key) {
        return None;
    }
    if key.is_ascii() {
        // The common case, without allocating: only ASCII case can differ.
        return ROUTED.iter().copied().find(|routed| routed.eq_ignore_ascii_case(key));
    }
    ROUTED.iter().copied().find(|routed| folds_to(key, routed))
}

/// Whether some folding of `key` spells `target`, ignoring ASCII case.
pub fn folds_to(key: &str, target: &str) -> bool {
    let target: Vec<char> = target.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Every character folds to at least one: a longer key cannot match.
    if key.chars().nth(target.len()).is_some() {
        return false;
    }
    let key: Vec<char> = key.chars().collect();
    matches_from(&key, &target)
}

fn matches_from(key: &[char], target: &[char]) -> bool {
    let Some((&c, rest)) = key.split_first() else {
        return target.is_empty();
    };
    spellings(c).iter().any(|s| {
        let n = s.len();
        n <= target.len() && s[..] == target[..n] && matches_from(rest, &target[n..])
    })
}

/// What one character may stand for, ASCII-lowercased.
fn spellings(c: char) -> Vec<Vec<char>> {
    let lower = |s: String| -> Vec<char> { s.chars().map(|c| c.to_ascii_lowercase()).collect() };
    let upper: String = c.to_uppercase().collect();
    let mut out = vec![
        vec![c.to_ascii_lowercase()],
        lower(c.to_lowercase().collect()),
        lower(upper.to_lowercase()),
        lower(upper.clone()),
    ];
    for s in [c.to_lowercase().next(), upper.chars().next().and_then(|u| u.to_lowercase().next())].into_iter().flatten()
    {
        out.push(vec![s.to_ascii_lowercase()]);
    }
    out.sort();
    out.dedup();
    out
}

/// A key as a case-insensitive reader compares it: upper case, then lower
/// case, with full mappings (`ſ` → `s`, `K` → `k`, `ß` → `ss`).
pub fn folded(key: &str) -> String {
    if key.is_ascii() {
        return key.to_ascii_lowercase();
    }
    key.chars().flat_map(char::to_uppercase).collect::<String>().to_lowercase()
}

/// Whether two keys fold to the same key.
fn same_key(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() { a.eq_ignore_ascii_case(b) } else { folded(a) == folded(b) }
}

/// Refuses tool arguments in which one object, at any depth, has two keys
/// that fold to the same key (exact duplicates included): Latch decides on
/// one of them, and a server that reads keys without regard to case (Go's
/// `encoding/json` into a struct: the last match wins) may act on the
/// other — `{"path": "notes.txt", "Path": "~/.config/latch/policy.toml"}`.
///
/// `raw` is a value the envelope reader has just validated as JSON, so this
/// walk only follows its structure: strings are skipped as the server
/// reader skips them ([`crate::peek::string_end`]), and only keys are
/// decoded and compared. A large string argument costs a `memchr`, not a
/// second parse.
pub fn check_arguments(raw: &str) -> Result<(), String> {
    let b = raw.as_bytes();
    // One frame per open object (its keys so far) or array (`None`).
    let mut frames: Vec<Option<ObjectKeys<'_>>> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                frames.push(Some(ObjectKeys::default()));
                expect_key = true;
            }
            b'[' => {
                frames.push(None);
                expect_key = false;
            }
            b'}' | b']' => {
                frames.pop();
                expect_key = false;
            }
            b',' => expect_key = matches!(frames.last(), Some(Some(_))),
            b':' => expect_key = false,
            b'"' => {
                // Not JSON after all: for the daemon to refuse, with its
                // own message.
                let Some(end) = crate::peek::string_end(b, i) else { return Ok(()) };
                if expect_key && let Some(Some(keys)) = frames.last_mut() {
                    let quoted = &raw[i..end];
                    let key = if quoted.contains('\\') {
                        match serde_json::from_str::<String>(quoted) {
                            Ok(k) => std::borrow::Cow::Owned(k),
                            Err(_) => return Ok(()),
                        }
                    } else {
                        std::borrow::Cow::Borrowed(&quoted[1..quoted.len() - 1])
                    };
                    keys.add(key)?;
                    expect_key = false;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The keys of one object so far: small objects are compared pairwise,
/// large ones through a map of folded keys.
#[derive(Default)]
struct ObjectKeys<'a> {
    keys: Vec<std::borrow::Cow<'a, str>>,
    folded: HashMap<String, usize>,
}

impl<'a> ObjectKeys<'a> {
    fn add(&mut self, key: std::borrow::Cow<'a, str>) -> Result<(), String> {
        let k = key.as_ref();
        let clash = if self.keys.len() < 16 {
            self.keys.iter().position(|seen| same_key(seen, k))
        } else {
            if self.folded.is_empty() {
                self.folded = self.keys.iter().enumerate().map(|(i, seen)| (folded(seen), i)).collect();
            }
            let f = folded(k);
            let hit = self.folded.get(&f).copied();
            self.folded.entry(f).or_insert(self.keys.len());
            hit
        };
        if let Some(i) = clash {
            return Err(format!(
                "ambiguous arguments: keys {:?} and {k:?} in one object are the same key to servers that read keys \
                 without regard to case",
                self.keys[i].as_ref()
            ));
        }
        self.keys.push(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_with_keys_that_fold_together_are_refused() {
        for bad in [
            r#"{"path":"notes.txt","Path":"/home/u/.config/latch/policy.toml"}"#,
            r#"{"command":"ls","COMMAND":"rm -rf ~"}"#,
            r#"{"a":{"to":"me@example.com","To":"them@example.net"}}"#,
            r#"[{"x":1},{"uri":"a","ur\u0049":"b"}]"#,
            r#"{"paſs":1,"pass":2}"#,
            r#"{"\u212aey":1,"key":2}"#,
            r#"{"a":1,"a":2}"#,
            // A value ending in an escaped backslash ends there.
            r#"{"path":"x\\","Path":"y"}"#,
            r#"{"a":[1,{"b":[]}],"A":{}}"#,
            r#"{"x":[{"k":"v"},{"k":1,"K":2}]}"#,
        ] {
            assert!(check_arguments(bad).is_err(), "{bad}");
        }
        for good in [
            r#"{"path":"a","paths":["b"],"x":{"path":"c"}}"#,
            "[]",
            "{}",
            "1",
            r#""s""#,
            r#"{"é":1,"e":2}"#,
            r#"{"times":1e400}"#,
            // Keys inside a string value are text.
            r#"{"path":"a\",\"Path\":\"b"}"#,
            r#"{"q":"{\"path\":1,\"Path\":2}","path":"c"}"#,
            r#"{"a":{"k":1},"b":{"k":2},"c":[{"k":3},{"k":4}]}"#,
        ] {
            assert_eq!(check_arguments(good), Ok(()), "{good}");
        }
        // Objects past the pairwise limit are checked through the map.
        let mut big: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        assert_eq!(check_arguments(&format!("{{{}}}", big.join(","))), Ok(()));
        big.push("\"K3\":0".into());
        assert!(check_arguments(&format!("{{{}}}", big.join(","))).is_err());
        big.insert(20, "\"\u{212a}7\":0".into());
        assert!(check_arguments(&format!("{{{}}}", big[..30].join(","))).is_err());
    }

    #[test]
    fn go_style_folds_are_other_spellings() {
        for (key, routed) in [
            ("Method", "method"),
            ("METHOD", "method"),
            ("paramſ", "params"),
            ("PARAMſ", "params"),
            ("Name", "name"),
            ("nAME", "name"),
            ("ID", "id"),
            ("Id", "id"),
            ("JSONRPC", "jsonrpc"),
            ("_META", "_meta"),
            ("Arguments", "arguments"),
            ("\u{212a}", "k"),
            ("requeſtState", "requestState"),
            ("progreßToken", "progressToken"),
            ("requeﬅState", "requestState"),
            ("\u{130}d", "id"),
        ] {
            assert!(folds_to(key, routed), "{key} → {routed}");
            if ROUTED.contains(&routed) {
                assert_eq!(other_spelling_of(key), Some(routed), "{key}");
            }
        }
        assert!(folds_to("tas\u{212a}", "task"));
    }

    #[test]
    fn exact_and_unrelated_keys_are_not() {
        for key in ["method", "params", "name", "arguments", "_meta", "id", "path", "methods", "nam", "named", "", "ſſ"]
        {
            assert_eq!(other_spelling_of(key), None, "{key}");
        }
        assert!(!folds_to("métod", "method"));
        assert!(!folds_to("meth\u{200b}od", "method"));
    }
}
