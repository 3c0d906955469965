//! `latch audit` without a subcommand: recent rows read straight from the
//! database (no daemon needed), in local time, under a header line; with
//! `--follow`, new rows as they are written.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use latch_proto::{AuditFilter, AuditRow};

/// How often `--follow` looks for new rows.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Rows read per query while `--follow` catches up.
const PAGE: u32 = 1_000;

/// `--class`: one of the action classes, any case.
pub fn parse_class(s: &str) -> Result<String, String> {
    match latch_core::Class::parse(s) {
        Some(c) => Ok(c.as_str().to_owned()),
        None => {
            let all: Vec<&str> = latch_core::Class::ALL.iter().map(|c| c.as_str()).collect();
            Err(format!("`{s}` is not a class; the classes are {}", all.join(", ")))
        }
    }
}

/// `--decision`: allow, ask or deny, any case.
pub fn parse_decision(s: &str) -> Result<String, String> {
    let d = s.trim().to_ascii_lowercase();
    match d.as_str() {
        "allow" | "ask" | "deny" => Ok(d),
        _ => Err(format!("`{s}` is not a decision; the decisions are allow, ask, deny")),
    }
}

pub struct Listing {
    pub filter: AuditFilter,
    pub limit: u32,
    pub json: bool,
    pub follow: bool,
}

/// Prints `rows` (the daemon's answer) or, when no daemon answered, the
/// rows read from `database`.
pub fn run(database: &Path, rows: Option<Vec<AuditRow>>, l: Listing) -> anyhow::Result<i32> {
    if rows.is_none() && !database.exists() {
        if l.json && !l.follow {
            println!("[]");
        } else {
            eprintln!("no calls recorded yet ({} does not exist)", database.display());
        }
        if !l.follow {
            return Ok(0);
        }
    }
    let rows = match rows {
        Some(rows) => rows,
        None if database.exists() => latch_daemon::audit::query_rows(database, &l.filter, None, l.limit)?,
        None => vec![],
    };
    let mut last = rows.first().map_or(0, |r| r.id);
    if l.json && !l.follow {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    if l.json {
        // One row per line, oldest first, as `audit export` writes them.
        for r in rows.iter().rev() {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        }
    } else {
        let widths = Widths::of(&rows);
        writeln!(out, "{}", widths.header())?;
        let now = now_ms();
        // Newest first, as a log one reads from the top; with --follow the
        // newest come last so that new rows follow on below.
        let ordered: Vec<&AuditRow> = if l.follow { rows.iter().rev().collect() } else { rows.iter().collect() };
        for r in ordered {
            writeln!(out, "{}", widths.line(r, now))?;
        }
        if rows.is_empty() && !l.follow {
            writeln!(out, "(no rows match)")?;
        }
    }
    out.flush()?;
    drop(out);
    if !l.follow {
        return Ok(0);
    }
    let widths = Widths::of(&rows);
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        if !database.exists() {
            continue;
        }
        let fresh = newer_than(database, &l.filter, last)?;
        let mut out = std::io::stdout().lock();
        let now = now_ms();
        for r in &fresh {
            let line = if l.json { serde_json::to_string(r)? } else { widths.line(r, now) };
            // A closed pipe (`| head`) ends the command quietly.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return Ok(0);
            }
            last = last.max(r.id);
        }
    }
}

/// Every matching row with an id above `last`, oldest first.
fn newer_than(database: &Path, filter: &AuditFilter, last: i64) -> anyhow::Result<Vec<AuditRow>> {
    let mut fresh = Vec::new();
    let mut before = None;
    loop {
        let page = latch_daemon::audit::query_rows(database, filter, before, PAGE)?;
        let full = page.len() == PAGE as usize;
        let mut reached = !full;
        for r in page {
            if r.id <= last {
                reached = true;
                break;
            }
            before = Some(r.id);
            fresh.push(r);
        }
        if reached {
            break;
        }
    }
    fresh.reverse();
    Ok(fresh)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Column widths sized to the rows shown (within bounds), so that short
/// names take little room and long ones are cut with a mark.
struct Widths {
    id: usize,
    server: usize,
    tool: usize,
}

const TIME_W: usize = 16;
const KIND_W: usize = 10;
const CLASS_W: usize = 14;
const DECISION_W: usize = 10;

impl Widths {
    fn of(rows: &[AuditRow]) -> Widths {
        let widest = |f: fn(&AuditRow) -> &str, min: usize, max: usize| {
            rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0).clamp(min, max)
        };
        Widths {
            id: rows.iter().map(|r| r.id.to_string().len()).max().unwrap_or(0).max(2),
            server: widest(|r| &r.server, 6, 24),
            tool: widest(|r| &r.tool, 4, 28),
        }
    }

    fn header(&self) -> String {
        format!(
            "{:>iw$}  {:<TIME_W$}  {:<KIND_W$}  {:<sw$}  {:<tw$}  {:<CLASS_W$}  {:<DECISION_W$}  OUTCOME",
            "ID",
            "TIME",
            "KIND",
            "SERVER",
            "TOOL",
            "CLASS",
            "DECISION",
            iw = self.id,
            sw = self.server,
            tw = self.tool,
        )
    }

    fn line(&self, r: &AuditRow, now: i64) -> String {
        let outcome = cut(r.outcome.as_deref().unwrap_or(""), usize::MAX);
        // A call a person answered ends with the answer, who and the wait.
        let by = match latch_proto::words::answered(r) {
            Some(words) if outcome.is_empty() => words,
            Some(words) => format!(" ({words})"),
            None => {
                let by = r.answered_by.as_deref().filter(|b| !b.is_empty());
                by.map(|b| format!(" (by {})", latch_proto::words::who_answered(b))).unwrap_or_default()
            }
        };
        let decision = match (r.decision.as_str(), r.answer.as_deref()) {
            ("ask", Some(a)) => format!("ask→{a}"),
            (d, _) => d.to_owned(),
        };
        let line = format!(
            "{:>iw$}  {:<TIME_W$}  {:<KIND_W$}  {:<sw$}  {:<tw$}  {:<CLASS_W$}  {:<DECISION_W$}  {outcome}{by}",
            r.id,
            when(r.time, now),
            cut(&r.kind, KIND_W),
            cut(&r.server, self.server),
            cut(&r.tool, self.tool),
            cut(&r.class, CLASS_W),
            cut(&decision, DECISION_W),
            iw = self.id,
            sw = self.server,
            tw = self.tool,
        );
        let line = line.trim_end().to_owned();
        // A row whose stored bytes were overwritten is shown, and says so.
        match &r.damaged {
            Some(d) => format!("{line}  [{}]", cut(d, usize::MAX)),
            None => line,
        }
    }
}

/// `s` in at most `w` characters, with `…` where it was cut.
fn cut(s: &str, w: usize) -> String {
    // Control characters (a server's name is its own choice) never reach
    // the terminal.
    let clean: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if clean.chars().count() <= w {
        return clean;
    }
    let mut kept: String = clean.chars().take(w.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

/// A row's time for a person: relative when it is under an hour old, else
/// local clock time (with the date when it is not today).
pub fn when(ms: i64, now: i64) -> String {
    let age = now - ms;
    if (0..60_000).contains(&age) {
        return format!("{}s ago", age / 1_000);
    }
    if (0..3_600_000).contains(&age) {
        return format!("{}m ago", age / 60_000);
    }
    let (y, m, d, sod) = local(ms);
    let (ny, nm, nd, _) = local(now);
    let clock = format!("{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60);
    if (y, m, d) == (ny, nm, nd) { clock } else { format!("{y:04}-{m:02}-{d:02} {}", &clock[..5]) }
}

/// Local `(year, month, day, seconds of day)` of a Unix ms time.
fn local(ms: i64) -> (i64, u32, u32, i64) {
    let secs = ms.div_euclid(1000) + offset_s(ms.div_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = latch_proto::civil::civil_from_days(days);
    (y, m, d, sod)
}

/// Offset of local time from UTC at Unix second `t`.
fn offset_s(t: i64) -> i64 {
    let t = t as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_name_the_valid_set() {
        assert_eq!(parse_class("execute").unwrap(), "EXECUTE");
        let e = parse_class("exec").unwrap_err();
        assert!(e.contains("READ") && e.contains("TRANSFER_VALUE"), "{e}");
        assert_eq!(parse_decision("DENY").unwrap(), "deny");
        let e = parse_decision("allowed").unwrap_err();
        assert!(e.contains("allow, ask, deny"), "{e}");
    }

    #[test]
    fn recent_rows_are_relative() {
        let now = 1_800_000_000_000;
        assert_eq!(when(now - 5_000, now), "5s ago");
        assert_eq!(when(now - 125_000, now), "2m ago");
        assert!(!when(now - 7_200_000, now).contains("ago"));
    }

    #[test]
    fn a_damaged_row_says_so() {
        let row = |damaged: Option<&str>| AuditRow {
            id: 2,
            time: 0,
            kind: "call".into(),
            server: "fs".into(),
            tool: "t\u{fffd}ol".into(),
            class: "READ".into(),
            decision: "allow".into(),
            reasons: vec![],
            outcome: Some("ok".into()),
            damaged: damaged.map(|d| Box::new(d.to_owned())),
            ..AuditRow::default()
        };
        let w = Widths::of(&[row(None)]);
        assert!(!w.line(&row(None), 0).contains("damaged"));
        let line = w.line(&row(Some("damaged: tool does not hold what the log writes there")), 0);
        assert!(
            line.starts_with(" 2 ") && line.ends_with("ok  [damaged: tool does not hold what the log writes there]"),
            "{line}"
        );
    }

    #[test]
    fn cut_marks_what_it_removed() {
        assert_eq!(cut("filesystem", 20), "filesystem");
        assert_eq!(cut("a-very-long-server-name", 10), "a-very-lo…");
        assert_eq!(cut("evil\x1b[2Jname", 20), "evil?[2Jname");
    }
}
