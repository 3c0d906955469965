//! Edits of a message's bytes: the shim changes a field by replacing its
//! raw value in place, so every other byte reaches the peer as it was sent
//! (a token written as a big integer stays that integer).

use std::ops::Range;

/// `range` of a message's bytes replaced by `with`.
#[derive(Debug, PartialEq)]
pub struct Edit {
    pub range: Range<usize>,
    pub with: Vec<u8>,
}

impl Edit {
    pub fn apply(&self, line: &[u8]) -> Vec<u8> {
        apply_all(line, std::slice::from_ref(self))
    }
}

/// Applies edits that do not overlap, in any order.
pub fn apply_all(line: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| e.range.start);
    let extra: usize = edits.iter().map(|e| e.with.len()).sum();
    let mut out = Vec::with_capacity(line.len() + extra);
    let mut at = 0;
    for e in sorted {
        out.extend_from_slice(&line[at..e.range.start]);
        out.extend_from_slice(&e.with);
        at = e.range.end;
    }
    out.extend_from_slice(&line[at..]);
    out
}

/// Where `part` (a slice of `line`) sits in it.
pub fn range_in(line: &[u8], part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= line.len()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_in_position_order() {
        let line = b"0123456789";
        let edits = [Edit { range: 6..8, with: b"xy".to_vec() }, Edit { range: 1..2, with: b"ABC".to_vec() }];
        assert_eq!(apply_all(line, &edits), b"0ABC2345xy89");
        let text = std::str::from_utf8(line).unwrap();
        assert_eq!(range_in(line, &text[3..5]), Some(3..5));
        assert_eq!(range_in(line, "34"), None);
    }
}
