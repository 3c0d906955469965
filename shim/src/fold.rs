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

use serde::de::{self, MapAccess, SeqAccess, Visitor};

use crate::envelope::Key;

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
pub fn check_arguments(raw: &str) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(raw);
    match de::DeserializeSeed::deserialize(Walk, &mut de) {
        // A clash is the only data error the walk raises. Text it cannot
        // read at all (a number beyond any machine, `1e400`) is for the
        // daemon to refuse, with its own message.
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(e.to_string()),
        _ => Ok(()),
    }
}

#[derive(Clone, Copy)]
struct Walk;

impl<'de> de::DeserializeSeed<'de> for Walk {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        // Keys as sent, borrowed from the line where they have no escapes;
        // small objects are compared pairwise, large ones through a map of
        // folded keys.
        let mut keys: Vec<Key<'de>> = Vec::new();
        let mut folded_keys: HashMap<String, usize> = HashMap::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let k = key.as_str();
            let clash = if keys.len() < 16 {
                keys.iter().position(|seen| same_key(seen.as_str(), k))
            } else {
                if folded_keys.is_empty() {
                    folded_keys = keys.iter().enumerate().map(|(i, seen)| (folded(seen.as_str()), i)).collect();
                }
                let f = folded(k);
                let hit = folded_keys.get(&f).copied();
                folded_keys.entry(f).or_insert(keys.len());
                hit
            };
            if let Some(i) = clash {
                return Err(de::Error::custom(format!(
                    "ambiguous arguments: keys {:?} and {k:?} in one object are the same key to servers that \
                     read keys without regard to case",
                    keys[i].as_str()
                )));
            }
            keys.push(key);
            map.next_value_seed(Walk)?;
        }
        Ok(())
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while seq.next_element_seed(Walk)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
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
