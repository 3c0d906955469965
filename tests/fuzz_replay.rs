//! Replays every committed fuzz corpus (`fuzz/corpus/TARGET/`) through the
//! same target functions libFuzzer runs (`fuzz/targets.rs`), oracles
//! included, on the stable toolchain. Seconds, not a fuzzing run: it keeps
//! the corpora and every minimized crash passing as the code changes.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_corpus_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut failed = Vec::new();
    for (name, target) in targets::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: empty corpus");
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let run = std::panic::catch_unwind(|| target(&data));
            if run.is_err() {
                failed.push(format!("{name}: {}", file.display()));
            }
        }
    }
    assert!(failed.is_empty(), "corpus files failing their oracle:\n{}", failed.join("\n"));
}

#[test]
fn every_target_has_a_corpus_and_a_fuzz_binary() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, _) in targets::TARGETS {
        assert!(fuzz.join("corpus").join(name).is_dir(), "{name}: no corpus");
        assert!(fuzz.join("fuzz_targets").join(format!("{name}.rs")).is_file(), "{name}: no fuzz target");
    }
}
