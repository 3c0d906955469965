//! The shim's build id: a hash of the sources that make up a shim (this
//! crate, the protocol and the core). `latch` runs the small `latch-shim`
//! binary beside it only when both carry the same id, so a `latch-shim`
//! left over from another build is never run in its place.

use std::hash::{DefaultHasher, Hasher};
use std::path::Path;

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut h = DefaultHasher::new();
    for dir in ["src", "../proto/src", "../core/src"] {
        let dir = here.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        walk(&dir, &mut files);
        files.sort();
        for f in files {
            h.write(f.strip_prefix(here).unwrap_or(&f).to_string_lossy().as_bytes());
            h.write(&std::fs::read(&f).unwrap_or_default());
        }
    }
    println!("cargo:rustc-env=LATCH_SHIM_BUILD={:016x}", h.finish());
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}
