//! The daemon's shape: no source file imports another that imports it back,
//! directly or around a circle, and no file is over 600 lines. Checked on
//! the source text, file by file (`crate::a::b` and `super::x` paths).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `a/b.rs` and `a/b/mod.rs` are module `a::b`; `lib.rs` is the root.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The code before the unit tests, without line comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Module paths named after `crate::` or `super::` (with `{a, b}` groups).
fn paths_in(code: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", me[..me.len().saturating_sub(1)].to_vec())] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let word_end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            let mut path = base.clone();
            path.extend(rest[..word_end].split("::").filter(|s| !s.is_empty()).map(str::to_owned));
            if rest[word_end..].starts_with('{') {
                let group = &rest[word_end + 1..rest[word_end..].find('}').map_or(word_end + 1, |j| word_end + j)];
                for item in group.split(',') {
                    let item = item.trim().split([' ', ':']).next().unwrap_or("");
                    if !item.is_empty() {
                        let mut p = path.clone();
                        p.push(item.to_owned());
                        out.push(p);
                    }
                }
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn no_import_circles_and_no_file_over_600_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap();
            (module_of(rel), rel.display().to_string())
        })
        .collect();
    let resolve = |path: &[String]| -> String {
        let mut p = path.to_vec();
        loop {
            if let Some(f) = modules.get(&p) {
                return f.clone();
            }
            if p.pop().is_none() {
                return modules[&Vec::new()].clone();
            }
        }
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut long = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let name = rel.display().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        if text.lines().count() > MAX_LINES {
            long.push(format!("{name}: {} lines", text.lines().count()));
        }
        let me = module_of(rel);
        let deps = edges.entry(name.clone()).or_default();
        for p in paths_in(&code(&text), &me) {
            let target = resolve(&p);
            if target != name {
                deps.insert(target);
            }
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
    // A circle: a file that reaches itself.
    let mut circles = Vec::new();
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = edges[start].iter().collect();
        while let Some(f) = todo.pop() {
            if f == start {
                circles.push(start.clone());
                break;
            }
            if seen.insert(f.clone()) {
                todo.extend(edges.get(f).into_iter().flatten());
            }
        }
    }
    assert!(circles.is_empty(), "files on an import circle: {circles:?}");
}
