//! `[audit]`: how long the audit log keeps its rows.
//!
//! Retention is off unless the user asks for it: a security tool must not
//! quietly delete its own evidence. With `keep_days` and/or `max_rows` set,
//! the daemon removes the oldest rows (always a prefix of the log, so the
//! hash chain stays whole) and leaves a chained checkpoint row that says
//! what went and why. There is deliberately no size limit in MiB: an SQLite
//! file does not shrink when rows are deleted (its free pages are reused),
//! and `VACUUM` would lock the log for seconds; `max_rows` bounds the size
//! just as well (a row is about a kilobyte on disk with its indexes).

use toml::de::DeTable;

use super::error::ProblemKind;
use super::read::{Cx, entries};

const AUDIT_KEYS: &[&str] = &["keep_days", "max_rows"];
/// A hundred years.
const MAX_KEEP_DAYS: u64 = 36_500;
/// Fewer rows than this is not a log any more.
const MIN_ROWS: u64 = 100;
const MAX_ROWS: u64 = 1 << 40;

/// The `[audit]` settings. The default keeps every row forever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditSettings {
    /// Rows older than this many days are removed.
    pub keep_days: Option<u64>,
    /// At most this many rows are kept, the retention checkpoint included.
    pub max_rows: Option<u64>,
}

impl AuditSettings {
    /// No limit is set: nothing is ever removed.
    pub fn keeps_everything(&self) -> bool {
        self.keep_days.is_none() && self.max_rows.is_none()
    }

    /// The settings as the policy file spells them, e.g. `keep_days = 90,
    /// max_rows = 1000000` (for the checkpoint's "why").
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.keep_days {
            parts.push(format!("keep_days = {d}"));
        }
        if let Some(n) = self.max_rows {
            parts.push(format!("max_rows = {n}"));
        }
        if parts.is_empty() { "no limit".to_owned() } else { parts.join(", ") }
    }
}

/// Reads the `[audit]` table; problems go to `cx` with their line.
pub(crate) fn parse(cx: &mut Cx<'_>, t: &DeTable<'_>) -> AuditSettings {
    let mut s = AuditSettings::default();
    for (k, v) in entries(t) {
        match k.get_ref().as_ref() {
            "keep_days" => {
                s.keep_days = cx.int(
                    v,
                    "keep_days",
                    (1, MAX_KEEP_DAYS),
                    "rows older than this many days are removed: 1 to 36500; leave it out to keep every row",
                )
            }
            "max_rows" => {
                s.max_rows = cx.int(
                    v,
                    "max_rows",
                    (MIN_ROWS, MAX_ROWS),
                    "the log keeps at most this many rows: 100 or more (a million rows is about 1 GiB); leave it \
                     out for no limit",
                )
            }
            "max_mib" | "max_size" | "max_bytes" => cx.problem(
                ProblemKind::UnknownKey,
                k.span(),
                format!("unknown key `{}` in [audit]: the log's size is not a setting", k.get_ref()),
                "an SQLite file does not shrink when rows are removed; limit the rows instead with `max_rows` \
                 (a million rows is about 1 GiB)",
            ),
            _ => cx.unknown_key(k, "in [audit]", AUDIT_KEYS),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::policy::{Policy, ProblemKind};

    #[test]
    fn retention_is_off_by_default() {
        let p = Policy::parse("").unwrap();
        assert!(p.audit().keeps_everything());
        assert_eq!(p.audit().describe(), "no limit");
    }

    #[test]
    fn keep_days_and_max_rows_are_read() {
        let p = Policy::parse("[audit]\nkeep_days = 90\nmax_rows = 1000000\n").unwrap();
        assert_eq!(p.audit().keep_days, Some(90));
        assert_eq!(p.audit().max_rows, Some(1_000_000));
        assert_eq!(p.audit().describe(), "keep_days = 90, max_rows = 1000000");
    }

    #[test]
    fn a_typo_names_its_line_and_the_right_key() {
        let e = Policy::parse("[audit]\n\nkeep_day = 90\n").unwrap_err();
        let p = &e.problems[0];
        assert_eq!((p.kind, p.line), (ProblemKind::UnknownKey, 3));
        assert!(p.hint.contains("keep_days"), "{}", p.hint);
    }

    #[test]
    fn out_of_range_and_wrong_types_are_refused() {
        let e = Policy::parse("[audit]\nkeep_days = 0\nmax_rows = 5\n").unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e:?}");
        assert!(e.problems.iter().all(|p| p.kind == ProblemKind::OutOfRange), "{e:?}");
        let e = Policy::parse("[audit]\nkeep_days = \"90\"\n").unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::WrongType);
        let e = Policy::parse("audit = 3\n").unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::WrongType);
    }

    #[test]
    fn a_size_limit_is_refused_with_what_to_use_instead() {
        let e = Policy::parse("[audit]\nmax_mib = 500\n").unwrap_err();
        assert_eq!(e.problems[0].line, 2);
        assert!(e.problems[0].hint.contains("max_rows"), "{}", e.problems[0].hint);
    }
}
