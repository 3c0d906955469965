//! Corpus test of the redaction: every secret format in
//! `corpus/secrets.toml` must vanish, every value in `corpus/harmless.toml`
//! must stay exactly as it is, in every place a secret can hide: a bare
//! string, a shell command line, a value under a harmless key, a JSON
//! document held in a string.
//!
//! `cargo test -p latch-core --test redact_corpus -- --nocapture` prints the
//! counts and a timing figure (not an assertion).

use std::borrow::Cow;
use std::time::Instant;

use latch_core::redact::{MASK, MAX_DEPTH, TOO_DEEP, has_secret, redact_in_place, redact_text, redact_value};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Secrets {
    secret: Vec<SecretCase>,
}

#[derive(Deserialize)]
struct SecretCase {
    name: String,
    text: String,
    secret: Option<String>,
}

#[derive(Deserialize)]
struct Harmless {
    text: Vec<TextCase>,
    pair: Vec<PairCase>,
}

#[derive(Deserialize)]
struct TextCase {
    name: String,
    text: String,
}

#[derive(Deserialize)]
struct PairCase {
    name: String,
    json: String,
}

fn secrets() -> Vec<SecretCase> {
    toml::from_str::<Secrets>(include_str!("corpus/secrets.toml")).expect("secrets.toml parses").secret
}

fn harmless() -> Harmless {
    toml::from_str(include_str!("corpus/harmless.toml")).expect("harmless.toml parses")
}

/// The places a value can sit in a call's arguments.
fn placements(text: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("top-level string", Value::String(text.to_owned())),
        ("shell command line", json!({ "command": format!("cd /srv/app && {text} | tee /tmp/out.log") })),
        ("under a harmless key", json!({ "note": text, "author": "ada" })),
        ("JSON document in a string", json!({ "body": json!({ "config": { "value": text } }).to_string() })),
    ]
}

/// The pieces of a secret that must not survive: each whitespace-separated
/// piece of 4+ characters, raw and JSON-escaped.
fn pieces(secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in secret.split_whitespace().filter(|p| p.len() >= 4) {
        out.push(p.to_owned());
        let escaped = Value::String(p.to_owned()).to_string();
        out.push(escaped[1..escaped.len() - 1].to_owned());
    }
    out
}

#[test]
fn every_secret_format_is_fully_redacted_everywhere() {
    let cases = secrets();
    let mut failures = Vec::new();
    for case in &cases {
        let secret = case.secret.as_deref().unwrap_or(&case.text);
        for (place, value) in placements(&case.text) {
            let redacted = redact_value(&value);
            let shown = match &redacted {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            for piece in pieces(secret) {
                if shown.contains(&piece) {
                    failures.push(format!("{} ({place}): `{piece}` left in {shown}", case.name));
                    break;
                }
            }
            if !shown.contains(MASK) {
                failures.push(format!("{} ({place}): no mask in {shown}", case.name));
            }
            if !has_secret(&value) {
                failures.push(format!("{} ({place}): has_secret is false", case.name));
            }
            if redact_value(&redacted) != redacted || has_secret(&redacted) {
                failures.push(format!("{} ({place}): redacting twice changes {shown}", case.name));
            }
            let mut in_place = value.clone();
            redact_in_place(&mut in_place);
            if in_place != redacted {
                failures.push(format!("{} ({place}): in-place differs from copy", case.name));
            }
        }
    }
    println!("secret formats: {} checked, each in 4 placements", cases.len());
    assert!(failures.is_empty(), "{} leaks:\n{}", failures.len(), failures.join("\n"));
    assert!(cases.len() >= 50, "the corpus must hold at least 50 secret formats");
}

#[test]
fn every_harmless_value_stays_exactly_readable() {
    let corpus = harmless();
    let mut failures = Vec::new();
    for case in &corpus.text {
        if !matches!(redact_text(&case.text), Cow::Borrowed(_)) {
            failures.push(format!("{}: {:?}", case.name, redact_text(&case.text)));
            continue;
        }
        for (place, value) in placements(&case.text) {
            let redacted = redact_value(&value);
            if redacted != value || has_secret(&value) {
                failures.push(format!("{} ({place}): {redacted}", case.name));
            }
        }
    }
    for case in &corpus.pair {
        let value: Value = serde_json::from_str(&case.json).expect("pair is JSON");
        let redacted = redact_value(&value);
        if redacted != value || has_secret(&value) {
            failures.push(format!("{}: {redacted}", case.name));
        }
    }
    println!("harmless values: {} strings in 4 placements, {} key/value pairs", corpus.text.len(), corpus.pair.len());
    assert!(failures.is_empty(), "{} over-redactions:\n{}", failures.len(), failures.join("\n"));
    assert!(corpus.text.len() + corpus.pair.len() >= 30);
}

#[test]
fn secret_keys_mask_the_whole_value_whatever_its_shape() {
    let v = json!({
        "apiKey": "anything at all",
        "X-Api-Key": 12345,
        "GITHUB_TOKEN": ["a", "b"],
        "credentials": {"user": "ada", "pass": "x"},
        "headers": {"Authorization": "Token abc", "Cookie": "a=b"},
        "password": null,
        "remember_password": true,
    });
    let r = redact_value(&v);
    for k in ["apiKey", "X-Api-Key", "GITHUB_TOKEN", "credentials"] {
        assert_eq!(r[k], MASK, "{k}");
    }
    assert_eq!(r["headers"]["Authorization"], MASK);
    assert_eq!(r["headers"]["Cookie"], MASK);
    assert_eq!(r["password"], Value::Null);
    assert_eq!(r["remember_password"], true);
}

#[test]
fn secrets_in_object_keys_are_redacted() {
    let key = "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5";
    let v = json!({ key: "value" });
    let s = redact_value(&v).to_string();
    assert!(!s.contains(key), "{s}");
}

#[test]
fn nesting_beyond_the_limit_is_replaced_by_a_marker() {
    let mut v = json!("ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5");
    for i in 0..1000 {
        v = if i % 2 == 0 { json!([v]) } else { json!({ "k": v }) };
    }
    let r = redact_value(&v);
    assert!(r.to_string().contains(TOO_DEEP));
    assert!(has_secret(&v));
    let mut depth = 0;
    let mut cur = &r;
    loop {
        match cur {
            Value::Array(a) => cur = &a[0],
            Value::Object(o) => cur = &o["k"],
            _ => break,
        }
        depth += 1;
    }
    assert_eq!(depth, MAX_DEPTH);
    // A shallow value is not touched by the limit.
    let shallow = json!([[[["x"]]]]);
    assert_eq!(redact_value(&shallow), shallow);
}

#[test]
fn hostile_inputs_do_not_panic_and_stay_linear() {
    // 128 KiB each: big enough to show linear behaviour, small enough for a
    // debug build.
    const N: usize = 128 * 1024;
    let fill = |unit: &str| unit.repeat(N / unit.len());
    let inputs = [
        ("clean prose", fill("lorem ipsum dolor sit amet ")),
        (
            "base64 blob",
            fill("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg"),
        ),
        ("all secrets", fill("password=hunter2 ")),
        ("unterminated PEM", format!("-----BEGIN RSA PRIVATE KEY-----\n{}", "A".repeat(N))),
        ("colons", fill("a:")),
        ("schemes", fill("x://:")),
        ("open quotes", fill("password=\"")),
        ("multibyte", fill("パスワード=秘密 ") + "password=é\u{301}ß"),
    ];
    let _ = redact_text("warm up: build the rules outside the timing");
    let mut figures = Vec::new();
    for (name, text) in &inputs {
        let start = Instant::now();
        let out = redact_text(text);
        assert!(!out.contains("hunter2"), "{name}");
        let _ = has_secret(&Value::String(text.clone()));
        figures.push(format!("{name} {:?}", start.elapsed()));
    }
    assert!(!redact_text(&inputs[3].1).contains("AAAA"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("hostile inputs, 128 KiB each ({profile}): {}", figures.join(", "));
}

/// A typical small call: ~300 bytes of arguments.
fn typical_args(dirty: bool) -> Value {
    let command = if dirty {
        "curl -sS -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlc2lnbmF0dXJl' https://api.example.com/v1/items"
    } else {
        "curl -sS -H 'Accept: application/json' https://api.example.com/v1/items?page=2&limit=50"
    };
    json!({
        "command": command,
        "cwd": "/home/ada/projects/latch",
        "timeout_ms": 30000,
        "env": {"RUST_LOG": "info", "LANG": "en_US.UTF-8"},
        "description": "List the items of the staging catalogue, second page",
        "author": "ada@example.com",
    })
}

#[test]
fn timing_of_a_typical_call() {
    let clean = typical_args(false);
    let dirty = typical_args(true);
    assert!(!has_secret(&clean));
    assert!(has_secret(&dirty));
    let _ = redact_value(&clean); // build the rules outside the timing
    let mut figures = Vec::new();
    for (name, v) in [("clean", &clean), ("dirty", &dirty)] {
        let n = 2_000u32;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(redact_value(std::hint::black_box(v)));
        }
        let per = start.elapsed() / n;
        figures.push(format!("{name} {} bytes: {per:?} per redact_value", v.to_string().len()));
    }
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("timing ({profile} build): {}", figures.join("; "));
}
