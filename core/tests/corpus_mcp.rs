//! The public labelled corpus: real tool definitions of public MCP servers
//! (`corpus/mcp/servers/*.json`, as each server's `tools/list` returned
//! them) and labelled calls to them (`corpus/mcp/calls.jsonl`), labelled by
//! the rules of `docs/classes.md`.
//!
//! Every call is decided by the real path ([`latch_core::decide`]) under the
//! default policy with `internal_domains = ["example.com"]`. The test prints
//! the accuracy, the recall of every class and every disagreement, and fails
//! on any *dangerous miss*: a call whose label the default policy would ask
//! about or deny, decided as a plain allow. It also fails when accuracy
//! drops below [`MIN_ACCURACY`].
//!
//! `cargo test -p latch-core --test corpus_mcp -- --nocapture` shows the
//! report; `LATCH_CORPUS_DUMP=FILE` also writes every call's class and
//! reasons as JSON lines (for labelling and review).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use latch_core::policy::DEFAULT_POLICY;
use latch_core::{Call, Class, Decision, Policy, ToolDef, decide};
use serde::Deserialize;
use serde_json::Value;

/// The floor under the corpus's accuracy (the aim is 97 %).
const MIN_ACCURACY: f64 = 0.97;
const MIN_CALLS: usize = 1500;
const MIN_SERVERS: usize = 60;

#[derive(Deserialize)]
struct ServerFile {
    server: String,
    package: String,
    registry: String,
    version: String,
    tools: Vec<Value>,
}

#[derive(Deserialize)]
struct Labelled {
    server: String,
    tool: String,
    args: Value,
    expect: String,
    /// A SEND whose every recipient is in the internal domains (allowed by
    /// default); any other SEND is asked about.
    #[serde(default)]
    internal: bool,
    /// Why the label, for the debatable ones.
    #[serde(default)]
    why: Option<String>,
}

fn corpus_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/mcp"))
}

fn load_servers() -> HashMap<String, HashMap<String, ToolDef>> {
    let mut out = HashMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(corpus_dir().join("servers"))
        .expect("servers dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("server file");
        let file: ServerFile = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!file.package.is_empty() && !file.version.is_empty(), "{}: package and version", path.display());
        assert!(file.registry == "npm" || file.registry == "pypi", "{}: registry", path.display());
        let defs = file
            .tools
            .iter()
            .map(|t| {
                let d = ToolDef::from_value(t).expect("tool with a name");
                (d.name.clone(), d)
            })
            .collect();
        out.insert(file.server, defs);
    }
    out
}

fn load_calls() -> Vec<Labelled> {
    let text = std::fs::read_to_string(corpus_dir().join("calls.jsonl")).expect("calls.jsonl");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("calls.jsonl line {}: {e}", i + 1)))
        .collect()
}

/// What the default policy does with a call of this label.
fn expected_decision(policy: &Policy, class: Class, internal: bool) -> Decision {
    if class == Class::Send && internal { Decision::Allow } else { policy.class_default(class) }
}

#[test]
fn corpus_scores() {
    let text = DEFAULT_POLICY.replace("\ninternal_domains = []\n", "\ninternal_domains = [\"example.com\"]\n");
    let policy = Policy::parse(&text).expect("default policy parses");
    let servers = load_servers();
    let calls = load_calls();
    assert!(servers.len() >= MIN_SERVERS, "{} servers, want at least {MIN_SERVERS}", servers.len());
    assert!(calls.len() >= MIN_CALLS, "{} calls, want at least {MIN_CALLS}", calls.len());

    let mut dump = std::env::var_os("LATCH_CORPUS_DUMP").map(|_| String::new());
    let mut right = 0usize;
    let mut per_class: BTreeMap<Class, (usize, usize)> = BTreeMap::new();
    let mut confusion: BTreeMap<(Class, Class), usize> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut dangerous = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let line = i + 1;
        let want = Class::parse(&c.expect).unwrap_or_else(|| panic!("line {line}: unknown class {}", c.expect));
        let def = servers
            .get(&c.server)
            .unwrap_or_else(|| panic!("line {line}: unknown server {}", c.server))
            .get(&c.tool)
            .unwrap_or_else(|| panic!("line {line}: {} has no tool {}", c.server, c.tool));
        let call = Call { server: &c.server, tool: &c.tool, args: &c.args };
        let v = decide(&policy, &call, Some(def));
        let got = v.classification.class;
        let entry = per_class.entry(want).or_default();
        entry.1 += 1;
        if got == want {
            right += 1;
            entry.0 += 1;
        } else {
            *confusion.entry((want, got)).or_default() += 1;
            misses.push(format!(
                "  line {line}: {}/{} want {want} got {got}: {}",
                c.server,
                c.tool,
                v.classification.reasons.join("; ")
            ));
        }
        let expected = expected_decision(&policy, want, c.internal);
        if expected != Decision::Allow && v.evaluation.decision == Decision::Allow {
            dangerous.push(format!(
                "  line {line}: {}/{} {} (want {want}, {expected}) got {got}, allow: {}{}",
                c.server,
                c.tool,
                c.args,
                v.classification.reasons.join("; "),
                c.why.as_deref().map(|w| format!(" [label: {w}]")).unwrap_or_default()
            ));
        }
        if let Some(d) = dump.as_mut() {
            let row = serde_json::json!({
                "line": line, "server": c.server, "tool": c.tool, "want": want, "got": got,
                "decision": v.evaluation.decision, "flags": v.classification.flags,
                "reasons": v.classification.reasons,
            });
            let _ = writeln!(d, "{row}");
        }
    }
    if let (Some(d), Some(path)) = (dump, std::env::var_os("LATCH_CORPUS_DUMP")) {
        std::fs::write(path, d).expect("dump written");
    }

    let accuracy = right as f64 / calls.len() as f64;
    let mut report = format!(
        "corpus: {} calls to {} tools of {} servers; accuracy {:.1} % ({right}/{})\n",
        calls.len(),
        servers.values().map(HashMap::len).sum::<usize>(),
        servers.len(),
        accuracy * 100.0,
        calls.len()
    );
    for (class, (ok, n)) in &per_class {
        let _ = writeln!(report, "  recall {class:<15} {:5.1} % ({ok}/{n})", *ok as f64 * 100.0 / *n as f64);
    }
    let _ = writeln!(report, "confusions (want -> got):");
    for ((w, g), n) in &confusion {
        let _ = writeln!(report, "  {w} -> {g}: {n}");
    }
    let _ = writeln!(report, "misclassified ({}):\n{}", misses.len(), misses.join("\n"));
    let _ = writeln!(report, "dangerous misses ({}):\n{}", dangerous.len(), dangerous.join("\n"));
    println!("{report}");
    assert!(dangerous.is_empty(), "{} dangerous misses (see the report above)", dangerous.len());
    assert!(accuracy >= MIN_ACCURACY, "accuracy {:.1} % below {:.0} %", accuracy * 100.0, MIN_ACCURACY * 100.0);
}
