//! Table columns sized to what they hold: each column as wide as its
//! widest cell (within bounds), the last one taking what is left, and text
//! cut with `…` where it does not fit — never silently mid-word.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Display width of `s` in terminal cells.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` in at most `w` cells, with `…` as its last cell where it was cut.
pub fn fit(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_owned();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

/// One column: its widest cell (header included) and the bounds it is kept
/// in; `shrink` columns give up room first when the table is too wide.
#[derive(Clone, Copy, Debug)]
pub struct Col {
    pub want: usize,
    pub min: usize,
    pub max: usize,
    pub shrink: bool,
}

impl Col {
    pub fn fixed(w: usize) -> Col {
        Col { want: w, min: w, max: w, shrink: false }
    }

    /// Sized to `cells` (and the header), between `min` and `max`.
    pub fn fitted<'a>(header: &str, cells: impl Iterator<Item = &'a str>, min: usize, max: usize) -> Col {
        let widest = cells.map(width).max().unwrap_or(0).max(width(header));
        Col { want: widest.clamp(min, max), min, max, shrink: true }
    }
}

/// Widths for `cols` in `room` cells (column gaps of one cell already taken
/// out): each column gets what it wants; when that is too much, the
/// shrinkable ones give up room in turn, widest first, down to their
/// minimum. What is left over is not handed out (the caller's last column
/// fills it).
pub fn widths(cols: &[Col], room: usize) -> Vec<usize> {
    let mut w: Vec<usize> = cols.iter().map(|c| c.want.min(c.max)).collect();
    let mut total: usize = w.iter().sum();
    while total > room {
        let widest = (0..cols.len()).filter(|&i| cols[i].shrink && w[i] > cols[i].min).max_by_key(|&i| w[i]);
        let Some(i) = widest else { break };
        w[i] -= 1;
        total -= 1;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_marked_and_fits_wide_characters() {
        assert_eq!(fit("create_pull_request", 10), "create_pu…");
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("日本語のツール", 6), "日本…");
        assert!(width(&fit("日本語のツール", 6)) <= 6);
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn columns_take_their_content_and_shrink_the_widest_first() {
        let cols = [
            Col::fixed(8),
            Col::fitted("server", ["github-enterprise-prod"].into_iter(), 6, 24),
            Col::fitted("tool", ["create_pull_request_review_comment"].into_iter(), 4, 40),
        ];
        assert_eq!(widths(&cols, 200), vec![8, 22, 34]);
        assert_eq!(widths(&cols, 40), vec![8, 16, 16]);
        assert_eq!(widths(&cols, 10), vec![8, 6, 4]);
    }
}
