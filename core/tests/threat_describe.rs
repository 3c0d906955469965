//! Poisoned tool descriptions and shadowing, on real and poisoned corpora.
//!
//! The real corpus: every tool definition of the 63 public MCP servers in
//! `corpus/mcp/servers/` (as their own `tools/list` answered) must yield no
//! finding, and no description may be taken for naming another server's
//! tool. The poisoned corpus (`corpus/poisoned.json`): payloads written
//! after published tool-poisoning and line-jumping examples; at least
//! 95 % must be found.

use std::path::Path;

use latch_core::ToolDef;
use latch_core::threat::FindingKind;
use latch_core::threat::describe::{ServerTools, scan, shadowing};
use serde_json::Value;

fn corpus() -> Vec<(String, Vec<Value>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mcp/servers");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let server = v["server"].as_str().unwrap().to_owned();
        out.push((server, v["tools"].as_array().unwrap().clone()));
    }
    out
}

#[test]
fn real_tool_definitions_have_no_findings() {
    let mut tools = 0;
    let mut bad = Vec::new();
    for (server, defs) in corpus() {
        for d in &defs {
            tools += 1;
            for f in scan(d) {
                bad.push(format!("{server}/{}: {} at {}: {:?}", d["name"], f.reason, f.place, f.excerpt));
            }
        }
    }
    assert!(tools > 1200, "{tools}");
    assert!(bad.is_empty(), "{} false positives in {tools} tools:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn real_descriptions_name_no_other_servers_tool() {
    let servers: Vec<ServerTools> = corpus()
        .into_iter()
        .map(|(server, defs)| ServerTools { server, tools: defs.iter().filter_map(ToolDef::from_value).collect() })
        .collect();
    let found = shadowing(&servers);
    let named: Vec<String> = found
        .iter()
        .filter(|s| s.finding.kind == FindingKind::NamesOtherTool)
        .map(|s| format!("{}/{}: {}", s.server, s.tool, s.finding.reason))
        .collect();
    assert!(named.is_empty(), "{}", named.join("\n"));
    // Shared names are real (and reported): `search`, `create_issue` …
    let same = found.iter().filter(|s| s.finding.kind == FindingKind::SameName).count();
    println!("{same} tool names shared between corpus servers");
}

#[test]
fn poisoned_definitions_are_found() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/poisoned.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 40, "{}", cases.len());
    let mut missed = Vec::new();
    for c in &cases {
        let f = scan(&c["tool"]);
        if f.is_empty() {
            missed.push(c["after"].as_str().unwrap().to_owned());
        }
    }
    let found = cases.len() - missed.len();
    println!("poisoned definitions found: {found} of {}", cases.len());
    assert!(found * 100 >= cases.len() * 95, "found {found} of {}; missed:\n{}", cases.len(), missed.join("\n"));
}

/// Paraphrased payloads never used to tune the rules: what the phrase rules
/// catch of wording they were not written for. The figure is recorded, not
/// a target (1 of 10 when written): pinning and asking a person are the
/// defence against novel wording, not these rules.
#[test]
fn held_out_paraphrases_are_measured() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/poisoned_heldout.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let found = cases.iter().filter(|c| !scan(&c["tool"]).is_empty()).count();
    println!("held-out paraphrases found: {found} of {}", cases.len());
    assert!(found >= 1, "fewer than when the set was written");
}
