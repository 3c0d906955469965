//! A unified diff built from the edits themselves (`--dry-run`): exact and
//! linear, even in a large `~/.claude.json`.

use crate::plan::Edit;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// Starts of every line of TEXT (a last line without newline included).
fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(text.match_indices('\n').map(|(i, _)| i + 1).filter(|&i| i < text.len()));
    v
}

fn line_of(starts: &[usize], at: usize) -> usize {
    starts.partition_point(|&s| s <= at).saturating_sub(1)
}

/// `--- OLD_NAME` / `+++ NEW_NAME` and the hunks of EDITS (sorted, not
/// overlapping) applied to TEXT. Empty when there are no edits.
pub fn unified(text: &str, edits: &[Edit], old_name: &str, new_name: &str) -> String {
    if edits.is_empty() {
        return String::new();
    }
    let starts = line_starts(text);
    let line_end = |l: usize| starts.get(l + 1).copied().unwrap_or(text.len());
    // The old lines each edit touches.
    let spans: Vec<(usize, usize)> = edits
        .iter()
        .map(|e| (line_of(&starts, e.range.start), line_of(&starts, e.range.end.max(e.range.start + 1) - 1)))
        .map(|(a, b)| (a, b.max(a)))
        .collect();
    // Group edits whose lines (with context) touch.
    let mut groups: Vec<(usize, usize, Vec<&Edit>)> = Vec::new();
    for (e, (a, b)) in edits.iter().zip(spans) {
        match groups.last_mut() {
            Some(g) if a <= g.1 + 2 * CONTEXT + 1 => {
                g.1 = g.1.max(b);
                g.2.push(e);
            }
            _ => groups.push((a, b, vec![e])),
        }
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let mut shift: isize = 0;
    for (a, b, group) in groups {
        let from = starts[a];
        let to = line_end(b);
        let mut new_chunk = String::new();
        let mut at = from;
        for e in &group {
            new_chunk.push_str(&text[at..e.range.start]);
            new_chunk.push_str(&e.text);
            at = e.range.end;
        }
        new_chunk.push_str(&text[at..to]);
        let old_lines: Vec<&str> = text[from..to].split_inclusive('\n').collect();
        let new_lines: Vec<&str> = new_chunk.split_inclusive('\n').collect();
        let before = a.saturating_sub(CONTEXT)..a;
        let after = (b + 1)..(b + 1 + CONTEXT).min(starts.len());
        let old_start = before.start + 1;
        let old_len = before.len() + old_lines.len() + after.len();
        let new_len = before.len() + new_lines.len() + after.len();
        let new_start = (old_start as isize + shift) as usize;
        out.push_str(&format!("@@ -{old_start},{old_len} +{new_start},{new_len} @@\n"));
        let line = |l: usize| &text[starts[l]..line_end(l)];
        let mut push = |mark: char, s: &str| {
            out.push(mark);
            out.push_str(s.strip_suffix('\n').unwrap_or(s));
            out.push('\n');
        };
        for l in before {
            push(' ', line(l));
        }
        for s in &old_lines {
            push('-', s);
        }
        for s in &new_lines {
            push('+', s);
        }
        for l in after {
            push(' ', line(l));
        }
        shift += new_lines.len() as isize - old_lines.len() as isize;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_line_change_has_context_around_it() {
        let text = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let at = text.find('e').unwrap();
        let d = unified(text, &[Edit { range: at..at + 1, text: "E\nE2".into() }], "x", "y");
        assert_eq!(d, "--- x\n+++ y\n@@ -2,7 +2,8 @@\n b\n c\n d\n-e\n+E\n+E2\n f\n g\n h\n");
    }

    #[test]
    fn no_edits_no_diff() {
        assert_eq!(unified("a\n", &[], "x", "y"), "");
    }
}
