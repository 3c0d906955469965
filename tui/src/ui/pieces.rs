//! The small pieces every pane is drawn with: coloured decision, class
//! and outcome labels, times and durations, frames and popups.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear};

/// A pane's frame with its title.
pub(super) fn pane_block(title: impl Into<Line<'static>>) -> Block<'static> {
    Block::bordered().title(title.into())
}

/// `✓ allow` / `? ask` / `✗ deny`, coloured.
pub fn decision_span(decision: &str) -> Span<'static> {
    match decision {
        "allow" => Span::styled("✓ allow", Style::new().fg(Color::Green)),
        "ask" => Span::styled("? ask", Style::new().fg(Color::Yellow)),
        "deny" => Span::styled("✗ deny", Style::new().fg(Color::Red).bold()),
        "" => Span::raw(""),
        other => Span::raw(format!("· {other}")),
    }
}

/// Where a call ended: the policy's decision, or a person's answer to it
/// (`✓ approved` / `✗ denied`) once one came.
pub fn final_span(r: &latch_proto::AuditRow) -> Span<'static> {
    match (r.kind.as_str(), r.answer.as_deref()) {
        ("call", Some("allow")) => Span::styled("✓ approved", Style::new().fg(Color::Green)),
        ("call", Some("deny")) => Span::styled("✗ denied", Style::new().fg(Color::Red).bold()),
        _ => decision_span(&r.decision),
    }
}

pub use latch_proto::words::who_answered as who_words;

/// `24s`, `2m05s`: how long a call waited for a person.
pub fn waited(ms: i64) -> String {
    latch_proto::words::duration_ms(ms)
}

pub fn class_span(class: &str) -> Span<'static> {
    let style = match class {
        "TRANSFER_VALUE" => Style::new().fg(Color::Red).bold(),
        "EXECUTE" | "SUBMIT" => Style::new().fg(Color::Magenta),
        "SEND" => Style::new().fg(Color::Blue),
        _ => Style::new(),
    };
    Span::styled(class.to_owned(), style)
}

pub fn outcome_span(outcome: Option<&str>) -> Span<'static> {
    match outcome {
        None => Span::styled("…", Style::new().dim()),
        Some("ok") => Span::styled("ok", Style::new().fg(Color::Green)),
        Some(o) => Span::styled(o.to_owned(), Style::new().fg(Color::Red)),
    }
}

/// `850µs`, `12ms`, `1.2s`, `2m05s`.
pub fn latency(us: Option<i64>) -> String {
    let Some(us) = us else { return String::new() };
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 10_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else if us < 1_000_000 {
        format!("{}ms", us / 1_000)
    } else if us < 60_000_000 {
        format!("{:.1}s", us as f64 / 1e6)
    } else {
        format!("{}m{:02}s", us / 60_000_000, us / 1_000_000 % 60)
    }
}

/// Time left before the hold limit: `0:42`, `12:05`, or `over`.
pub fn countdown(hold_until: i64, now: i64) -> String {
    let left = hold_until - now;
    if left <= 0 {
        return "over".into();
    }
    let secs = (left + 999) / 1000;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// `3s ago`, `5m ago`, `2h ago`, `4d ago`.
pub fn ago(t: i64, now: i64) -> String {
    let s = ((now - t) / 1000).max(0);
    match s {
        ..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// Local `(year, month, day, seconds of day)` of a Unix ms time.
pub(super) fn civil(ms: i64, tz: i32) -> (i64, u32, u32, i64) {
    let secs = ms.div_euclid(1000) + tz as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = latch_proto::civil::civil_from_days(days);
    (year, month, day, sod)
}

/// `HH:MM:SS`, local time.
pub fn clock(ms: i64, tz: i32) -> String {
    let (_, _, _, s) = civil(ms, tz);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `HH:MM:SS` for today, `MM-DD HH:MM` for another day.
pub fn stamp(ms: i64, now: i64, tz: i32) -> String {
    let (y, m, d, s) = civil(ms, tz);
    let (ny, nm, nd, _) = civil(now, tz);
    if (y, m, d) == (ny, nm, nd) { clock(ms, tz) } else { format!("{m:02}-{d:02} {:02}:{:02}", s / 3600, s / 60 % 60) }
}

/// `YYYY-MM-DD HH:MM:SS`, local time.
pub fn full_time(ms: i64, tz: i32) -> String {
    let (y, m, d, _) = civil(ms, tz);
    format!("{y:04}-{m:02}-{d:02} {}", clock(ms, tz))
}

/// The first row to show so that row `sel` is visible in `height` rows.
pub fn scroll_offset(sel: usize, height: usize) -> usize {
    if height == 0 { 0 } else { sel.saturating_sub(height - 1) }
}

/// A popup of at most `w`×`h`, centred in `area`, with the area cleared.
pub(super) fn popup(frame: &mut Frame<'_>, area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    frame.render_widget(Clear, r);
    r
}

/// Pretty JSON lines of (already redacted) arguments.
pub fn pretty_args(args: &serde_json::Value) -> Vec<String> {
    let text = serde_json::to_string_pretty(args).unwrap_or_else(|_| args.to_string());
    text.lines().map(str::to_owned).collect()
}

/// Style for labels in key/value views.
pub(super) fn label(s: &str) -> Span<'static> {
    Span::styled(format!("{s:<10}"), Style::new().dim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_right_around_leap_days_and_the_epoch() {
        assert_eq!(full_time(0, 0), "1970-01-01 00:00:00");
        // 2024-02-29 12:34:56 UTC
        assert_eq!(full_time(1_709_210_096_000, 0), "2024-02-29 12:34:56");
        // 2000-03-01 00:00:00 UTC
        assert_eq!(full_time(951_868_800_000, 0), "2000-03-01 00:00:00");
        // An offset moves the day.
        assert_eq!(full_time(0, -3600), "1969-12-31 23:00:00");
    }

    #[test]
    fn countdown_rounds_up_and_says_over() {
        assert_eq!(countdown(10_000, 0), "0:10");
        assert_eq!(countdown(10_000, 1), "0:10");
        assert_eq!(countdown(10_000, 9_001), "0:01");
        assert_eq!(countdown(10_000, 10_000), "over");
        assert_eq!(countdown(125_000, 0), "2:05");
    }

    #[test]
    fn latency_picks_a_readable_unit() {
        assert_eq!(latency(Some(850)), "850µs");
        assert_eq!(latency(Some(4_200)), "4.2ms");
        assert_eq!(latency(Some(42_000)), "42ms");
        assert_eq!(latency(Some(1_500_000)), "1.5s");
        assert_eq!(latency(Some(125_000_000)), "2m05s");
        assert_eq!(latency(None), "");
    }
}
