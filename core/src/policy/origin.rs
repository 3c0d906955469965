//! Who added a rule, when, and from which approval: the comment line Latch
//! writes above an "always" rule, and reading it back.
//!
//! `# from tui (alice) at 2026-11-24 15:30 UTC, approval a1b2c3 "always"`
//!
//! Rules written before this format carry
//! `# added by answering approval a1b2c3 "always" (unix ms 1796451217523)`;
//! they are read too (without who).

/// Where a rule came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// `tui`, `cli`, `telegram`, `desktop`; empty when unknown.
    pub channel: String,
    /// The person (a login, a Telegram name); empty when unknown.
    pub who: String,
    /// `2026-11-24 15:30 UTC`, as written.
    pub at: String,
    /// Unix ms, for the older comments that gave only that.
    pub at_ms: Option<i64>,
    pub approval: String,
}

impl Origin {
    /// `tui (alice) at 2026-11-24 15:30 UTC, approval a1b2`; `utc` turns
    /// the Unix ms of older comments into a date.
    pub fn describe(&self, utc: impl Fn(i64) -> String) -> String {
        let who = match (self.channel.as_str(), self.who.as_str()) {
            ("", _) => String::new(),
            (c, "") => format!("{c} "),
            (c, w) => format!("{c} ({w}) "),
        };
        let at = if self.at.is_empty() { self.at_ms.map(utc).unwrap_or_default() } else { self.at.clone() };
        let approval = if self.approval.is_empty() { String::new() } else { format!(", approval {}", self.approval) };
        format!("{who}at {at}{approval}")
    }
}

/// The comment for a rule answered by `by` (`channel:who`, as the audit
/// log records it) on `approval_id` at `at` (`2026-11-24 15:30 UTC`).
pub fn comment(by: Option<&str>, approval_id: &str, at: &str) -> String {
    let (channel, who) = by.and_then(|b| b.split_once(':')).unwrap_or((by.unwrap_or("unknown"), ""));
    let whom = if who.is_empty() { String::new() } else { format!(" ({who})") };
    format!("from {channel}{whom} at {at}, approval {approval_id} \"always\"")
}

/// Reads a comment line (with or without its `#`).
pub fn parse(line: &str) -> Option<Origin> {
    let text = line.trim().trim_start_matches('#').trim();
    if let Some(rest) = text.strip_prefix("from ") {
        let (head, tail) = rest.split_once(" at ")?;
        let (channel, who) = match head.split_once(" (") {
            Some((c, w)) => (c, w.strip_suffix(')').unwrap_or(w)),
            None => (head, ""),
        };
        let (at, approval) = match tail.split_once(", approval ") {
            Some((at, a)) => (at, a.split_whitespace().next().unwrap_or_default()),
            None => (tail, ""),
        };
        return Some(Origin {
            channel: channel.to_owned(),
            who: who.to_owned(),
            at: at.to_owned(),
            at_ms: None,
            approval: approval.to_owned(),
        });
    }
    let rest = text.strip_prefix("added by answering approval ")?;
    let approval = rest.split_whitespace().next()?.to_owned();
    let at_ms = rest.split_once("(unix ms ").and_then(|(_, n)| n.trim_end_matches(')').trim().parse().ok());
    Some(Origin { approval, at_ms, ..Origin::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_reads_back() {
        let c = comment(Some("tui:alice"), "a1b2c3", "2026-11-24 15:30 UTC");
        assert_eq!(c, "from tui (alice) at 2026-11-24 15:30 UTC, approval a1b2c3 \"always\"");
        let o = parse(&format!("# {c}")).unwrap();
        assert_eq!((o.channel.as_str(), o.who.as_str()), ("tui", "alice"));
        assert_eq!((o.at.as_str(), o.approval.as_str()), ("2026-11-24 15:30 UTC", "a1b2c3"));
        assert_eq!(parse(&comment(None, "x", "t")).unwrap().channel, "unknown");
    }

    #[test]
    fn older_comments_are_read_too() {
        let o = parse("# added by answering approval a7 \"always\" (unix ms 1796451217523)").unwrap();
        assert_eq!((o.approval.as_str(), o.at_ms), ("a7", Some(1_796_451_217_523)));
        assert_eq!(parse("# ask for every fs write"), None);
    }
}
