//! Rendering: a pure function of the [`App`] state and `now` (Unix ms).
//! Nothing here reads a clock or changes state, which is what makes the
//! snapshot tests stable.
//!
//! Screen: one header line (panes, pending count, daemon connection), the
//! pane, one footer line (the search input, a message, or the keys that
//! apply now). Popups (detail, help, confirmation) draw over the pane.
//! Decisions read without colour: `✓ allow`, `? ask`, `✗ deny`.

mod detail;
mod health;
mod help;
mod history;
mod live;
mod pending;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::app::{App, Conn, Level, Mode, Pane};
use crate::keymap;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App, now: i64) {
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(frame.area());
    draw_header(frame, header, app);
    let body = match &app.conn {
        Conn::Down { error, retry_at } => {
            let [banner, rest] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(body);
            let text = format!(" ✗ daemon down, next try at {}: {error}", clock(*retry_at, app.tz_offset_s));
            let style = Style::new().fg(Color::White).bg(Color::Red);
            frame.render_widget(Paragraph::new(text).style(style).wrap(Wrap { trim: true }), banner);
            rest
        }
        _ => body,
    };
    // What the person must know before answering anything: one line each.
    let mut warnings = Vec::new();
    if let Some(st) = &app.status {
        if !st.pin_set {
            let text =
                " ⚠ approvals UNPROTECTED: no PIN is set, any program running as you can approve (latch pin set)";
            warnings.push(Paragraph::new(text).style(Style::new().fg(Color::White).bg(Color::Red).bold()));
        }
        if let Some(p) = &st.policy_pending {
            let text = format!(
                " ⚠ policy change pending: {} rules loosen, not in force (4 Health shows it, P accepts)",
                p.loosen
            );
            warnings.push(Paragraph::new(text).style(Style::new().fg(Color::Black).bg(Color::Yellow).bold()));
        }
    }
    let body = if warnings.is_empty() {
        body
    } else {
        let [top, rest] = Layout::vertical([Constraint::Length(warnings.len() as u16), Constraint::Min(0)]).areas(body);
        for (i, w) in warnings.into_iter().enumerate() {
            frame.render_widget(w, Rect { y: top.y + i as u16, height: 1, ..top });
        }
        rest
    };
    match app.pane {
        Pane::Pending => pending::draw(frame, body, app, now),
        Pane::Live => live::draw(frame, body, app, now),
        Pane::History => history::draw(frame, body, app, now),
        Pane::Health => health::draw(frame, body, app, now),
    }
    match &app.mode {
        Mode::Detail { item, scroll } => detail::draw(frame, body, app, item, *scroll, now),
        Mode::Help { scroll } => help::draw_help(frame, body, *scroll),
        Mode::Confirm(c) => help::draw_confirm(frame, body, c),
        Mode::Normal | Mode::Search { .. } | Mode::Pin { .. } | Mode::NewPin { .. } => {}
    }
    draw_footer(frame, footer, app);
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let mut spans = vec![Span::styled(" latch ", Style::new().bold())];
    for (i, pane) in Pane::ALL.iter().enumerate() {
        let name = match pane {
            Pane::Pending if !app.pending.is_empty() => {
                format!(" {} ⚠ Pending {} ", i + 1, app.pending.len())
            }
            Pane::Pending => format!(" {} Pending ", i + 1),
            Pane::Live => format!(" {} Live ", i + 1),
            Pane::History => format!(" {} History ", i + 1),
            Pane::Health => format!(" {} Health ", i + 1),
        };
        let mut style = Style::new();
        if *pane == Pane::Pending && !app.pending.is_empty() {
            style = style.fg(Color::Red).add_modifier(Modifier::BOLD);
        }
        if *pane == app.pane {
            style = style.add_modifier(Modifier::REVERSED);
        }
        spans.push(Span::styled(name, style));
        spans.push(Span::raw("│"));
    }
    spans.pop();
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    let conn = match app.conn {
        Conn::Up { .. } => Span::styled("● connected ", Style::new().fg(Color::Green)),
        Conn::Connecting => Span::styled("◌ connecting ", Style::new().fg(Color::Yellow)),
        Conn::Down { .. } => Span::styled("✗ daemon down ", Style::new().fg(Color::Red).bold()),
    };
    let width = conn.width() as u16;
    if area.width > width + 50 {
        let right = Rect { x: area.right() - width, width, ..area };
        frame.render_widget(Paragraph::new(conn).alignment(Alignment::Right), right);
    }
}

fn draw_footer(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let line = if let Mode::NewPin { input, first } = &app.mode {
        let prompt = if first.is_none() { " New PIN (4+ characters): " } else { " The new PIN again: " };
        Line::from(vec![
            Span::styled(prompt, Style::new().bold()),
            Span::raw("•".repeat(input.chars().count())),
            Span::raw("▏"),
            Span::styled("   Enter · Esc cancel", Style::new().dim()),
        ])
    } else if let Mode::Pin { input } = &app.mode {
        Line::from(vec![
            Span::styled(" PIN: ", Style::new().bold()),
            Span::raw("•".repeat(input.chars().count())),
            Span::raw("▏"),
            Span::styled("   Enter unlock · Esc cancel", Style::new().dim()),
        ])
    } else if let Mode::Search { input } = &app.mode {
        Line::from(vec![
            Span::styled(" / ", Style::new().bold()),
            Span::raw(input.clone()),
            Span::raw("▏"),
            Span::styled("   Enter search · Esc cancel", Style::new().dim()),
        ])
    } else if let Some(t) = &app.toast {
        let color = match t.level {
            Level::Info => Color::Cyan,
            Level::Warn => Color::Yellow,
            Level::Error => Color::Red,
        };
        Line::from(Span::styled(format!(" {}", t.text), Style::new().fg(color).bold()))
    } else {
        hint_line(&app.key_chain(), area.width)
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The help bar: `key hint  key hint …` for a context chain, as many as
/// fit in `width`, in keymap order, with `? help` always last.
fn hint_line(chain: &[keymap::Context], width: u16) -> Line<'static> {
    let item =
        |key: &str, hint: &str| [Span::styled(format!(" {key}"), Style::new().bold()), Span::raw(format!(" {hint} "))];
    let all = keymap::hints(chain);
    let help = all.iter().find(|(_, h)| *h == "help").cloned();
    let mut budget = width as usize;
    if let Some((k, h)) = &help {
        budget = budget.saturating_sub(k.chars().count() + h.chars().count() + 3);
    }
    let mut spans = Vec::new();
    for (key, hint) in all.iter().filter(|(_, h)| *h != "help") {
        let w = key.chars().count() + hint.chars().count() + 3;
        if w > budget {
            break;
        }
        budget -= w;
        spans.extend(item(key, hint));
    }
    if let Some((k, h)) = help {
        spans.extend(item(&k, h));
    }
    Line::from(spans)
}

// ---- shared helpers for the views ----

/// A pane's frame with its title.
fn pane_block(title: impl Into<Line<'static>>) -> Block<'static> {
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
fn civil(ms: i64, tz: i32) -> (i64, u32, u32, i64) {
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
fn popup(frame: &mut Frame<'_>, area: Rect, w: u16, h: u16) -> Rect {
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
fn label(s: &str) -> Span<'static> {
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
