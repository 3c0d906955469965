//! The paths an `apply_patch` text touches (Codex's patch format):
//!
//! ```text
//! *** Begin Patch
//! *** Add File: a.txt
//! *** Update File: b.txt
//! *** Move to: c.txt
//! *** Delete File: d.txt
//! *** End Patch
//! ```
//!
//! Every header counts, wherever it stands: a line is a header when, with
//! leading blanks removed, it starts with one of the markers. Reading more
//! than the patch tool would (a header inside a hunk's context, say) only
//! adds paths to check, never hides one.

/// What a patch does to one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Add,
    Update,
    MoveTo,
    Delete,
}

const MARKERS: [(&str, Change); 4] = [
    ("*** Add File:", Change::Add),
    ("*** Update File:", Change::Update),
    ("*** Move to:", Change::MoveTo),
    ("*** Delete File:", Change::Delete),
];

/// Every path the patch names, in order, with what it does to it.
pub fn paths(patch: &str) -> Vec<(Change, String)> {
    let mut out = Vec::new();
    for line in patch.lines() {
        // A hunk line starts with ' ', '+' or '-' before its text: look past them too.
        let l = line.trim_start_matches([' ', '\t', '+', '-']);
        if !l.starts_with("***") {
            continue;
        }
        // Blanks and case as a lenient parser might accept them.
        let Some(colon) = l.find(':') else { continue };
        let squash = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        let head = squash(&l[..colon + 1]);
        for (marker, change) in MARKERS {
            if head == squash(marker) {
                let p = l[colon + 1..].trim();
                if !p.is_empty() {
                    out.push((change, p.to_owned()));
                }
            }
        }
    }
    out
}
