//! Corpus test of the redaction: every secret format in
//! `corpus/secrets.toml` must vanish, every value in `corpus/harmless.toml`
//! must stay exactly as it is, in every place a secret can hide: a bare
//! string, a shell command line, a value under a harmless key, a JSON
//! document held in a string.
//!
//! `cargo test -p latch-core --test redact_corpus -- --nocapture` prints the
//! counts and a timing figure (not an assertion).

use std::borrow::Cow;
use std::hint::black_box;
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
        ("all secrets", fill("password=hunter2 ")[..N / 4].to_owned()),
        ("unterminated PEM", format!("-----BEGIN RSA PRIVATE KEY-----\n{}", "A".repeat(N))),
        ("colons", fill("a:")),
        ("schemes", fill("x://:")),
        ("open quotes", fill("password=\"")[..N / 4].to_owned()),
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
    println!("hostile inputs, 128 KiB each (dense ones 32 KiB) ({profile}): {}", figures.join(", "));
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
    // Few rounds in a debug build, enough for a stable figure in release.
    let n: u32 = if cfg!(debug_assertions) { 200 } else { 20_000 };
    let per_call = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed() / n
    };

    let figures = [
        format!(
            "redact_value clean {} bytes {:?}",
            clean.to_string().len(),
            per_call(&|| drop(black_box(redact_value(black_box(&clean)))))
        ),
        format!(
            "redact_value dirty {} bytes {:?}",
            dirty.to_string().len(),
            per_call(&|| drop(black_box(redact_value(black_box(&dirty)))))
        ),
        format!("has_secret clean {:?}", per_call(&|| assert!(!has_secret(black_box(&clean))))),
        format!(
            "clone + redact_in_place clean {:?}",
            per_call(&|| {
                let mut v = clean.clone();
                black_box(redact_in_place(&mut v));
            })
        ),
        format!("clone alone {:?}", per_call(&|| drop(black_box(clean.clone())))),
    ];
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("timing per call ({profile} build): {}", figures.join("; "));
}

/// A small deterministic generator (xorshift), so the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mixtures_never_panic_and_redaction_is_consistent() {
    let mut fragments: Vec<String> = secrets().into_iter().map(|c| c.text).collect();
    fragments.extend(harmless().text.into_iter().map(|c| c.text));
    fragments.extend(
        [
            " ",
            "\n",
            "=",
            ":",
            "\"",
            "'",
            "\\\"",
            "&",
            "?",
            "@",
            "://",
            "-----END RSA PRIVATE KEY-----",
            "--",
            "-p",
            "password",
            "token",
            "Bearer ",
            "Basic ",
            "é",
            "日本",
            "\u{0}",
            "{",
            "}",
            "[",
            "]",
            "%",
            "$",
            "|",
            ";",
        ]
        .map(str::to_owned),
    );
    let seed = std::env::var("LATCH_REDACT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    let rounds = std::env::var("LATCH_REDACT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 400 } else { 4_000 });
    for _ in 0..rounds {
        let mut text = String::new();
        for _ in 0..1 + rng.below(6) {
            let f = &fragments[rng.below(fragments.len())];
            // Cut fragments at random char boundaries too.
            let cut = f.char_indices().map(|(i, _)| i).nth(rng.below(f.chars().count().max(1))).unwrap_or(0);
            text.push_str(if rng.below(3) == 0 { &f[cut..] } else { f });
            text.push_str(["", " ", "\n", " && ", "&", ";", "\t"][rng.below(7)]);
        }
        let key = fragments[rng.below(fragments.len())].chars().take(24).collect::<String>();
        // The same text as an argv array, read as one command line.
        let argv: Vec<&str> = text.split(' ').collect();
        let value = json!({ key: text.clone(), "list": [text.clone(), { "inner": text.clone() }], "argv": argv });
        let once = redact_value(&value);
        assert_eq!(has_secret(&value), once != value, "has_secret disagrees on {value}");
        assert_eq!(redact_value(&once), once, "not idempotent on {value}");
        let mut in_place = value.clone();
        assert_eq!(redact_in_place(&mut in_place), once != value);
        assert_eq!(in_place, once);
        let t = redact_text(&text);
        assert_eq!(redact_text(&t), t, "text not idempotent on {text:?}");
    }
    println!("random mixtures: {rounds} checked");
}

#[test]
fn secrets_between_random_harmless_neighbours_are_redacted() {
    let secrets = secrets();
    let harmless: Vec<String> = harmless().text.into_iter().map(|c| c.text).collect();
    let separators = [" ", "\n", "\t", " && ", "; ", " | ", "\r\n"];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let per_secret = if cfg!(debug_assertions) { 8 } else { 200 };
    let mut failures = Vec::new();
    for case in &secrets {
        let secret = case.secret.as_deref().unwrap_or(&case.text);
        for _ in 0..per_secret {
            let before = &harmless[rng.below(harmless.len())];
            let after = &harmless[rng.below(harmless.len())];
            let sep1 = separators[rng.below(separators.len())];
            let sep2 = separators[rng.below(separators.len())];
            let text = format!("{before}{sep1}{}{sep2}{after}", case.text);
            let out = redact_text(&text);
            if let Some(piece) = pieces(secret).into_iter().find(|p| out.contains(p.as_str())) {
                failures.push(format!("{}: `{piece}` left in {out:?}", case.name));
                break;
            }
        }
    }
    println!("secrets between random neighbours: {} formats × {per_secret}", secrets.len());
    assert!(failures.is_empty(), "{} leaks:\n{}", failures.len(), failures.join("\n"));
}
