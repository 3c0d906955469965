//! Rendering: a pure function of the [`App`] state and `now` (Unix ms).
//! Nothing here reads a clock or changes state, which is what makes the
//! snapshot tests stable.
//!
//! Screen: one header line (panes, pending count, daemon connection), the
//! pane, one footer line (the search input, a message, or the keys that
//! apply now). Popups (detail, help, confirmation) draw over the pane.
//! Decisions read without colour: `✓ allow`, `? ask`, `✗ deny`.

mod always;
mod columns;
mod detail;
mod findings;
mod health;
mod help;
mod history;
mod live;
mod pending;
mod pieces;
mod rules;
mod taint;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::{App, Conn, Level, Mode, Pane};
use crate::keymap;

pub use pieces::{
    ago, class_span, clock, countdown, decision_span, full_time, latency, outcome_span, pretty_args, scroll_offset,
    stamp, who_words,
};

/// The screen without colours, for `NO_COLOR` (no-color.org): text,
/// bold and underline stay; a coloured background (the selected row, a
/// banner) becomes reverse video so that it still stands out.
pub fn without_color(buf: &mut ratatui::buffer::Buffer) {
    use ratatui::style::{Color, Modifier};
    for cell in buf.content.iter_mut() {
        if cell.bg != Color::Reset {
            cell.modifier.insert(Modifier::REVERSED);
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

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
    let mut warnings = taint::warnings(app);
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
    if !app.findings.is_empty() {
        let text = format!(
            " ⚠ {} tools changed or suspect: their calls ask until a person accepts them (F shows them)",
            app.findings.len()
        );
        warnings.push(Paragraph::new(text).style(Style::new().fg(Color::Black).bg(Color::Yellow).bold()));
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
        Mode::Findings { sel, scroll } => findings::draw(frame, body, app, *sel, *scroll, now),
        Mode::Always(pick) => always::draw(frame, body, pick, &app.who, now),
        Mode::Rules(v) => rules::draw(frame, body, v),
        Mode::Normal | Mode::Search { .. } | Mode::Pin { .. } | Mode::NewPin { .. } | Mode::DenyReason { .. } => {}
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
    } else if let Mode::DenyReason { item, input } = &app.mode {
        Line::from(vec![
            Span::styled(format!(" Deny {}: why, for the agent (optional): ", item.tool), Style::new().bold()),
            Span::raw(input.clone()),
            Span::raw("▏"),
            Span::styled("   Enter deny · Esc cancel", Style::new().dim()),
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
        let mut chain = app.key_chain();
        // Nothing to answer: the answer keys are no help, only noise.
        if matches!(app.mode, Mode::Normal) && app.pending.is_empty() {
            chain.retain(|c| *c != keymap::Context::Pending);
        }
        hint_line(&chain, area.width)
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

#[cfg(test)]
mod no_color_tests {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::style::{Color, Modifier, Style};

    #[test]
    fn colours_go_and_a_coloured_background_becomes_reverse_video() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 1));
        buf.set_string(0, 0, "deny", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD));
        buf.set_string(5, 0, "sel", Style::new().bg(Color::Blue));
        super::without_color(&mut buf);
        for cell in buf.content.iter() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset));
        }
        assert!(buf[(0, 0)].modifier.contains(Modifier::BOLD));
        assert!(buf[(5, 0)].modifier.contains(Modifier::REVERSED));
        assert!(!buf[(0, 0)].modifier.contains(Modifier::REVERSED));
    }
}
