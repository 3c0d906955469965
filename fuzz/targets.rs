//! The fuzz targets' bodies and their oracles, in one place.
//!
//! Compiled twice: into each libFuzzer binary under `fuzz/fuzz_targets/`
//! (nightly, `cargo fuzz run NAME`) and into the stable replay test
//! `tests/fuzz_replay.rs`, which feeds every file of `fuzz/corpus/NAME/`
//! through the same function. A target panics when its oracle fails.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// A target: runs one input, panics when its oracle fails.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", envelope),
    ("frame", frame),
    ("canonical", canonical),
    ("policy", policy),
    ("tooldef", tooldef),
    ("client_config", client_config),
    ("sql", sql),
    ("shell", shell),
    ("redact", redact),
    ("hook", hook),
];

/// The top-level keys of a JSON object exactly as written (decoded), in
/// order, duplicates kept; `None` when `text` is not an object.
fn object_keys(text: &str) -> Option<Vec<String>> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Vec<String>, M::Error> {
            let mut keys = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(k);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let keys = (&mut de).deserialize_map(Keys).ok()?;
    de.end().ok()?;
    Some(keys)
}

/// Keys that appear twice, or that differ from one of `routed` only in
/// ASCII case: either makes a message ambiguous.
fn ambiguous(keys: &[String], routed: &[&str]) -> Option<String> {
    for (i, k) in keys.iter().enumerate() {
        if routed.contains(&k.as_str()) && keys[..i].contains(k) {
            return Some(format!("duplicate {k:?}"));
        }
        if !routed.contains(&k.as_str()) && routed.iter().any(|r| r.eq_ignore_ascii_case(k)) {
            return Some(format!("folded {k:?}"));
        }
    }
    None
}

fn raw_is(raw: Option<&serde_json::value::RawValue>, want: Option<&Value>, what: &str) {
    // Called only when the whole line is a `Value`, so each slice is one.
    let got = raw.map(|r| serde_json::from_str::<Value>(r.get()).expect("a slice of a Value is one"));
    assert_eq!(got.as_ref(), want, "the shim read {what} differently from serde_json");
}

/// The shim's line reader. Oracle: it accepts only valid UTF-8 that is
/// one JSON value by serde_json's syntax; an accepted message has no
/// duplicate or ASCII-case-folded routed key; the fields it routes on are
/// the ones serde_json reads.
///
/// Syntax, not `Value`: JSON allows numbers beyond any machine's range
/// (`1e400`), which the shim relays and serde_json's `Value` refuses. The
/// daemon answers a `Decide` whose arguments hold one with an error, so
/// the call fails closed (`daemon/src/server.rs`); the corpus keeps the
/// fuzzer's find (`envelope/number_out_of_range.json`).
pub fn envelope(data: &[u8]) {
    use latch_shim::envelope::{Line, parse, parse_element};
    let Ok(line) = parse(data) else { return };
    let text = std::str::from_utf8(data).expect("accepted a line that is not UTF-8");
    serde_json::from_str::<IgnoredAny>(text).expect("accepted a line serde_json refuses");
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        // Out-of-range numbers: the keys are still checked.
        if let Line::One(_) = line {
            let keys = object_keys(text).expect("an accepted message is an object");
            let top = ["jsonrpc", "id", "method", "params", "result", "error"];
            assert_eq!(ambiguous(&keys, &top), None, "accepted an ambiguous envelope: {text:?}");
        }
        return;
    };
    let check = |env: &latch_shim::envelope::Envelope<'_>, text: &str, value: &Value| {
        let keys = object_keys(text).expect("an accepted message is an object");
        let top = ["jsonrpc", "id", "method", "params", "result", "error"];
        assert_eq!(ambiguous(&keys, &top), None, "accepted an ambiguous envelope: {text:?}");
        raw_is(env.id, value.get("id"), "id");
        raw_is(env.method, value.get("method"), "method");
        if let (Some(p), Some(pv)) = (&env.params, value.get("params"))
            && pv.is_object()
        {
            let pkeys = object_keys(&serde_json::to_string(pv).unwrap()).unwrap_or_default();
            let raw_pkeys = params_text(text).and_then(|t| object_keys(&t)).unwrap_or(pkeys);
            let routed = ["name", "arguments", "_meta", "requestState"];
            assert_eq!(ambiguous(&raw_pkeys, &routed), None, "accepted ambiguous params: {text:?}");
            raw_is(p.name, pv.get("name"), "params.name");
            raw_is(p.arguments, pv.get("arguments"), "params.arguments");
        }
    };
    match line {
        Line::One(env) => check(&env, text, &value),
        Line::Batch(items) => {
            assert!(value.is_array(), "a batch that is not an array");
            for raw in items {
                if let Ok(env) = parse_element(raw) {
                    let v: Value = serde_json::from_str(raw.get()).expect("the batch was one Value");
                    check(&env, raw.get(), &v);
                }
            }
        }
    }
}

/// The text of the last `params` member of an object (serde_json's choice).
fn params_text(text: &str) -> Option<String> {
    let map: BTreeMap<String, &serde_json::value::RawValue> = serde_json::from_str(text).ok()?;
    map.get("params").map(|r| r.get().to_owned())
}

/// The daemon's frame decoder. Oracle: a decoded message encodes to a
/// frame that decodes to the same bytes again; a `Decide` frame's raw
/// arguments (what the daemon hashes for large integers) are the arguments
/// the decoder read.
pub fn frame(data: &[u8]) {
    use latch_proto::{ClientMsg, frame};
    let Ok(msg) = frame::decode::<ClientMsg>(data) else { return };
    let once = frame::encode(&msg);
    let again: ClientMsg = frame::decode(&once).expect("an encoded frame decodes");
    assert_eq!(frame::encode(&again), once, "encode/decode is not stable");
    if let ClientMsg::Decide { args, .. } = &msg {
        let raw = frame::decide_args(data).expect("a Decide frame has raw arguments");
        let parsed: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(&parsed, args, "raw and parsed arguments differ");
    }
}

/// The canonical form and hash. Oracle: idempotent; the hash is the hash
/// of the canonical bytes; the text hash agrees with the value hash when
/// parsing lost nothing, both on the input and on serde_json's rendering.
pub fn canonical(data: &[u8]) {
    use latch_core::canonical::{canonical, hash, hash_raw, lossy};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let from_text = hash_raw(text);
    let Ok(value) = serde_json::from_str::<Value>(text) else { return };
    let c = canonical(&value);
    let c_text = std::str::from_utf8(&c).expect("canonical bytes are UTF-8");
    let reparsed: Value = serde_json::from_str(c_text).expect("the canonical form is JSON");
    assert_eq!(canonical(&reparsed), c, "canonical form is not idempotent");
    let h = hash(&value);
    assert_eq!(hash_raw(c_text).as_deref(), Some(h.as_str()), "hash of the canonical text differs");
    if !lossy(&value) {
        assert_eq!(from_text.as_deref(), Some(h.as_str()), "hash_raw disagrees with hash: {text:?}");
        let rendered = serde_json::to_string(&value).unwrap();
        assert_eq!(hash_raw(&rendered).as_deref(), Some(h.as_str()), "equal values, different hashes");
    }
}

/// The policy parser. Oracle: an error has a message; a policy parses the
/// same way twice (no hidden state), and a policy's text re-validates.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match latch_core::Policy::parse(text) {
        Err(e) => assert!(!e.to_string().trim().is_empty(), "policy error without a message"),
        Ok(p) => {
            let q = latch_core::Policy::parse(text).expect("a valid policy re-validates");
            assert_eq!(p.rule_count(), q.rule_count());
            assert_eq!(p.warnings().len(), q.warnings().len());
        }
    }
}

/// The tool-definition reader. Oracle: a definition read has the name the
/// JSON gives, and a list reads each element as `from_value` does.
pub fn tooldef(data: &[u8]) {
    use latch_core::ToolDef;
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    if let Some(def) = ToolDef::from_value(&v) {
        assert_eq!(Some(def.name.as_str()), v.get("name").and_then(Value::as_str));
        assert_eq!(ToolDef::from_value(&v).map(|d| d.hash), Some(def.hash), "hash not deterministic");
    }
    let list = ToolDef::list_from_value(&v);
    assert!(list.len() <= v.as_array().map_or(0, Vec::len), "more tools than elements");
}

/// The client-config readers (JSON, JSONC, TOML). Oracle: plain JSON that
/// serde_json accepts is accepted by the JSONC reader in both modes; no
/// reader panics on any text, and what it reports is inside the text.
pub fn client_config(data: &[u8]) {
    use latch_install::{Format, Layout, jsonc, servers};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let strict = jsonc::parse(text, false);
    let loose = jsonc::parse(text, true);
    if serde_json::from_str::<Value>(text).is_ok() {
        assert!(strict.is_ok(), "the JSON reader refuses valid JSON: {text:?}");
        assert!(loose.is_ok(), "the JSONC reader refuses valid JSON: {text:?}");
    }
    if strict.is_ok() {
        assert!(loose.is_ok(), "JSONC refuses what JSON accepts");
    }
    if let Err(e) = &strict {
        assert!(!e.message.is_empty() && e.line >= 1, "a syntax error without a place or message");
    }
    // The pairs the clients' table uses (a JSON layout in JSON or JSONC,
    // Codex's in TOML).
    for format in [Format::Json, Format::Jsonc] {
        for layout in [Layout::McpServers, Layout::ClaudeJson, Layout::VsCodeSettings, Layout::VsCodeMcp] {
            let _ = servers(text, format, layout);
        }
    }
    let _ = servers(text, Format::Toml, Layout::CodexToml);
}

/// The SQL lexer and judge. Oracle: deterministic; a text judged SQL is
/// SQL when the key is named for SQL too, and appending a `DROP` never
/// makes it look less dangerous.
pub fn sql(data: &[u8]) {
    use latch_core::classify::sql_class;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let loose = sql_class(text, false);
    assert_eq!(sql_class(text, false), loose, "not deterministic");
    let strict = sql_class(text, true);
    if loose.is_some() {
        assert!(strict.is_some(), "strict reading lost a statement");
    }
    if let Some(before) = strict {
        let more = format!("{text}\n;\nDROP TABLE t;");
        if let Some(after) = sql_class(&more, true) {
            assert!(after >= before, "adding DROP lowered {before:?} to {after:?}: {text:?}");
        }
    }
}

/// Single-quotes a word for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shell-word parser. Oracle: every known word it produced reads back
/// as itself when quoted, as the single argument of a command.
pub fn shell(data: &[u8]) {
    use latch_core::shell::{Vars, parse};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let vars = Vars::from([("HOME".to_owned(), "/home/u".to_owned())]);
    let script = parse(text, &vars);
    for cmd in script.commands.iter().take(16) {
        for w in cmd.words.iter().filter(|w| w.is_known()) {
            let back = parse(&format!("echo {}", quote(&w.text)), &vars);
            assert!(!back.malformed && !back.truncated || w.text.len() > 1000, "quoted word unreadable: {w:?}");
            if !back.truncated {
                let words: Vec<&str> = back.commands[0].words.iter().map(|w| w.text.as_str()).collect();
                assert_eq!(words, ["echo", w.text.as_str()], "word did not round-trip");
            }
        }
    }
}

/// A secret planted after the fuzz text (high entropy, under a secret key).
const PLANTED: &str = "Zq8vN3kLp2Xw9TfBr7Hm";

/// Redaction. Oracle: redacting twice is redacting once (text and JSON);
/// a redacted value holds no secret; a planted secret never survives.
pub fn redact(data: &[u8]) {
    use latch_core::redact::{has_secret, redact_text, redact_value};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let once = redact_text(text).into_owned();
    assert_eq!(redact_text(&once), once.as_str(), "redacting twice differs: {text:?}");
    if !text.contains(PLANTED) {
        let planted = format!("{text}\npassword={PLANTED}\n");
        assert!(!redact_text(&planted).contains(PLANTED), "planted secret survived after {text:?}");
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let r = redact_value(&v);
        assert_eq!(redact_value(&r), r, "redacting a value twice differs");
        assert!(!has_secret(&r), "a redacted value still has a secret: {r}");
        if !text.contains(PLANTED) {
            let planted = serde_json::json!({ "data": v, "api_key": PLANTED });
            assert!(!redact_value(&planted).to_string().contains(PLANTED), "planted secret survived");
        }
    }
}

/// The hook payload readers. Oracle: a payload accepted by any agent's
/// reader is one JSON value serde_json accepts, and the tool it names is
/// the one serde_json reads there.
pub fn hook(data: &[u8]) {
    use latch_core::hook::{Agent, read};
    for agent in Agent::ALL {
        if let Ok(input) = read(agent, data) {
            let v: Value = serde_json::from_slice(data).expect("accepted non-JSON");
            let key = if agent == Agent::Copilot { "toolName" } else { "tool_name" };
            assert_eq!(v.get(key).and_then(Value::as_str), Some(input.tool.as_str()), "{agent:?} read another tool");
        }
    }
}
