//! The layout ARCHITECTURE.md promises for `core/` and `tui/`, checked on
//! their sources: `core` does not depend on the wire crate, no module
//! imports its way back to itself (no import circle), and no source file
//! is over 600 lines.
//!
//! A module's imports are the paths it names outside comments and test
//! modules: `use` lines (braces expanded) and paths written in code
//! (`super::x::f()`, `crate::y::Z`, `child::g()`). Each is resolved to the
//! longest module it names; a circle is a set of modules that reach each
//! other that way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

type Module = Vec<String>;

const MAX_LINES: usize = 600;

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module path of a source file: `policy/parse/mod.rs` is `policy::parse`.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut m: Module = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        m.pop();
    }
    m
}

/// The code of a file without comments and without its inline test module.
fn code(text: &str) -> String {
    let tests = Regex::new(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{").unwrap();
    let text = match tests.find(text) {
        Some(m) => &text[..m.start()],
        None => text,
    };
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let leaf = tree.split(" as ").next().unwrap().trim();
        if !leaf.is_empty() {
            out.push(if prefix.is_empty() { leaf.to_owned() } else { format!("{prefix}::{leaf}") });
        }
        return;
    };
    let head = tree[..open].trim().trim_end_matches("::");
    let prefix = match (prefix.is_empty(), head.is_empty()) {
        (_, true) => prefix.to_owned(),
        (true, false) => head.to_owned(),
        (false, false) => format!("{prefix}::{head}"),
    };
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&inner[start..i], &prefix, out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand(&inner[start..], &prefix, out);
}

/// The modules `module` names, by path.
fn imports(module: &Module, code: &str, modules: &BTreeSet<Module>) -> BTreeSet<Module> {
    let uses = Regex::new(r"\buse\s+([^;]+);").unwrap();
    let inline = Regex::new(r"(?:^|[^:\w])((?:[a-z_][a-z0-9_]*)(?:::[A-Za-z_][A-Za-z0-9_]*)+)").unwrap();
    let mut paths = Vec::new();
    for c in uses.captures_iter(code) {
        expand(&c[1], "", &mut paths);
    }
    paths.extend(inline.captures_iter(code).map(|c| c[1].to_owned()));
    let mut out = BTreeSet::new();
    for path in paths {
        let segs: Vec<&str> = path.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "*").collect();
        let target: Module = match segs.first().copied() {
            Some("crate") => segs[1..].iter().map(|s| s.to_string()).collect(),
            Some("self") => module.iter().cloned().chain(segs[1..].iter().map(|s| s.to_string())).collect(),
            Some("super") => {
                let mut base = module.clone();
                let mut rest = &segs[..];
                while rest.first() == Some(&"super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.into_iter().chain(rest.iter().map(|s| s.to_string())).collect()
            }
            Some(first) if modules.contains(&[module.as_slice(), &[first.to_owned()]].concat()) => {
                module.iter().cloned().chain(segs.iter().map(|s| s.to_string())).collect()
            }
            _ => continue,
        };
        let resolved = (0..=target.len()).rev().map(|n| target[..n].to_vec()).find(|m| modules.contains(m));
        if let Some(m) = resolved
            && m != *module
        {
            out.insert(m);
        }
    }
    out
}

/// Sets of two or more modules that import each other, round and round.
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, (usize, usize)>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a Module) {
            let n = self.index.len();
            self.index.insert(v, (n, n));
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in &self.edges[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.index[v].1.min(self.index[w].1);
                    self.index.get_mut(v).unwrap().1 = low;
                } else if self.on_stack.contains(w) {
                    let low = self.index[v].1.min(self.index[w].0);
                    self.index.get_mut(v).unwrap().1 = low;
                }
            }
            if self.index[v].0 == self.index[v].1 {
                let mut set = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on_stack.remove(w);
                    set.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    self.found.push(set);
                }
            }
        }
    }
    let mut t =
        Tarjan { edges, index: BTreeMap::new(), stack: Vec::new(), on_stack: BTreeSet::new(), found: Vec::new() };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

fn name(m: &Module) -> String {
    if m.is_empty() { "(crate root)".to_owned() } else { m.join("::") }
}

fn check_crate(krate: &str) {
    let src = crate_src(krate);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut sources = BTreeMap::new();
    let mut long = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if text.lines().count() > MAX_LINES {
            long.push(format!("{} ({} lines)", f.strip_prefix(&src).unwrap().display(), text.lines().count()));
        }
        sources.insert(module_of(&src, f), code(&text));
    }
    assert!(long.is_empty(), "{krate}/src: files over {MAX_LINES} lines: split them by what their parts are: {long:?}");
    let modules: BTreeSet<Module> = sources.keys().cloned().collect();
    let edges: BTreeMap<Module, BTreeSet<Module>> =
        sources.iter().map(|(m, code)| (m.clone(), imports(m, code, &modules))).collect();
    let found = circles(&edges);
    let report: Vec<String> = found
        .iter()
        .map(|set| {
            let members: BTreeSet<&Module> = set.iter().collect();
            set.iter()
                .map(|m| {
                    let to: Vec<String> = edges[m].iter().filter(|t| members.contains(t)).map(name).collect();
                    format!("{} -> {}", name(m), to.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect();
    assert!(
        report.is_empty(),
        "{krate}/src has import circles (move what both sides need into a leaf module):\n{}",
        report.join("\n")
    );
}

#[test]
fn core_has_no_import_circle_and_no_long_file() {
    check_crate("core");
}

#[test]
fn the_console_has_no_import_circle_and_no_long_file() {
    check_crate("tui");
}

#[test]
fn core_does_not_depend_on_the_wire_crate() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let table: toml::Table = manifest.parse().unwrap();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = table.get(section).and_then(|d| d.as_table()) {
            assert!(!deps.contains_key("latch-proto"), "core/Cargo.toml [{section}] names latch-proto");
        }
    }
}

#[test]
fn the_checker_sees_a_circle_through_a_parent_module() {
    let modules: BTreeSet<Module> =
        [vec![], vec!["a".to_owned()], vec!["a".to_owned(), "b".to_owned()]].into_iter().collect();
    let parent = vec!["a".to_owned()];
    let child = vec!["a".to_owned(), "b".to_owned()];
    let to_child = imports(&parent, "use b::{Thing, other::{X}};", &modules);
    let to_parent = imports(&child, "fn f() { super::helper(); }", &modules);
    assert_eq!(to_child, BTreeSet::from([child.clone()]));
    assert_eq!(to_parent, BTreeSet::from([parent.clone()]));
    let edges = BTreeMap::from([(vec![], BTreeSet::new()), (parent.clone(), to_child), (child.clone(), to_parent)]);
    assert_eq!(circles(&edges).len(), 1);
    // Comments and test modules do not count.
    let quiet = code("// super::helper()\nfn g() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n");
    assert!(imports(&child, &quiet, &modules).is_empty());
}
