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
    let line = |l: usize| &text[starts[l]..line_end(l)];
    // Blocks of edits that share lines: old lines a..=b are replaced.
    let mut blocks: Vec<(usize, usize, Vec<&Edit>)> = Vec::new();
    for e in edits {
        let a = line_of(&starts, e.range.start);
        let b = line_of(&starts, e.range.end.max(e.range.start + 1) - 1).max(a);
        match blocks.last_mut() {
            Some(blk) if a <= blk.1 => {
                blk.1 = blk.1.max(b);
                blk.2.push(e);
            }
            _ => blocks.push((a, b, vec![e])),
        }
    }
    // Hunks: blocks whose context lines touch.
    let mut hunks: Vec<Vec<(usize, usize, Vec<&Edit>)>> = Vec::new();
    for blk in blocks {
        match hunks.last_mut() {
            Some(h) if blk.0 <= h.last().map_or(0, |l| l.1) + 2 * CONTEXT + 1 => h.push(blk),
            _ => hunks.push(vec![blk]),
        }
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let mut shift: isize = 0;
    for hunk in hunks {
        let first = hunk[0].0.saturating_sub(CONTEXT);
        let last = (hunk[hunk.len() - 1].1 + CONTEXT).min(starts.len() - 1);
        // The hunk as unchanged lines and changes (old lines, new lines).
        let mut segs: Vec<Seg<'_>> = Vec::new();
        let mut next = first;
        for (a, b, group) in &hunk {
            segs.extend((next..*a).map(|l| Seg::Same(line(l).to_owned())));
            let (from, to) = (starts[*a], line_end(*b));
            let mut new_chunk = String::new();
            let mut at = from;
            for e in group {
                new_chunk.push_str(&text[at..e.range.start]);
                new_chunk.push_str(&e.text);
                at = e.range.end;
            }
            new_chunk.push_str(&text[at..to]);
            let old: Vec<&str> = text[from..to].split_inclusive('\n').collect();
            let new: Vec<String> = new_chunk.split_inclusive('\n').map(str::to_owned).collect();
            // Lines an edit touched without changing stay context.
            let head = old.iter().zip(&new).take_while(|(o, n)| **o == n.as_str()).count();
            let tail =
                old[head..].iter().rev().zip(new[head..].iter().rev()).take_while(|(o, n)| **o == n.as_str()).count();
            segs.extend(old[..head].iter().map(|l| Seg::Same((*l).to_owned())));
            let change = Seg::Change(old[head..old.len() - tail].to_vec(), new[head..new.len() - tail].to_vec());
            // Consecutive changes read as one: all removals, then all additions.
            match (segs.last_mut(), change) {
                (Some(Seg::Change(o, n)), Seg::Change(o2, n2)) => {
                    o.extend(o2);
                    n.extend(n2);
                }
                (_, change) => segs.push(change),
            }
            segs.extend(old[old.len() - tail..].iter().map(|l| Seg::Same((*l).to_owned())));
            next = b + 1;
        }
        segs.extend((next..=last).map(|l| Seg::Same(line(l).to_owned())));
        let mut body = String::new();
        let (mut old_len, mut new_len) = (0, 0);
        let mut push = |mark: char, s: &str| {
            body.push(mark);
            body.push_str(s.strip_suffix('\n').unwrap_or(s));
            body.push('\n');
        };
        for seg in &segs {
            match seg {
                Seg::Same(l) => {
                    push(' ', l);
                    old_len += 1;
                    new_len += 1;
                }
                Seg::Change(old, new) => {
                    old.iter().for_each(|l| push('-', l));
                    new.iter().for_each(|l| push('+', l));
                    old_len += old.len();
                    new_len += new.len();
                }
            }
        }
        let new_start = (first as isize + 1 + shift) as usize;
        out.push_str(&format!("@@ -{},{old_len} +{new_start},{new_len} @@\n", first + 1));
        out.push_str(&body);
        shift += new_len as isize - old_len as isize;
    }
    out
}

enum Seg<'a> {
    Same(String),
    Change(Vec<&'a str>, Vec<String>),
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

    #[test]
    fn unchanged_lines_between_two_edits_are_context() {
        let text = "a\nb\nc\nd\n";
        let edits = [Edit { range: 0..1, text: "A".into() }, Edit { range: 4..5, text: "C".into() }];
        assert_eq!(unified(text, &edits, "x", "y"), "--- x\n+++ y\n@@ -1,4 +1,4 @@\n-a\n+A\n b\n-c\n+C\n d\n");
    }

    #[test]
    fn lines_before_an_insertion_point_stay_context_and_neighbouring_changes_merge() {
        let text = "[\n  x,\n  y\n]\n";
        let at = text.find('x').unwrap();
        let edits = [Edit { range: 0..1, text: "{".into() }, Edit { range: at..at, text: "new,\n  ".into() }];
        assert_eq!(
            unified(text, &edits, "x", "y"),
            "--- x\n+++ y\n@@ -1,4 +1,5 @@\n-[\n+{\n+  new,\n   x,\n   y\n ]\n"
        );
    }
}
