//! The kill switch and the sessions' taint (the lethal trifecta) on
//! screen: a line over every pane while stopped or while a session is
//! tainted, and the sessions on the Health pane.

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::pieces::{clock, label};
use crate::app::App;

/// Lines over every pane: STOPPED first.
pub fn warnings(app: &App) -> Vec<Paragraph<'static>> {
    let mut out = Vec::new();
    if let Some(since) = app.stopped_since() {
        let text = format!(
            " ■ STOPPED since {}: every tool call of every agent is denied (U resumes, with the PIN)",
            clock(since, app.tz_offset_s)
        );
        out.push(Paragraph::new(text).style(Style::new().fg(Color::White).bg(Color::Red).bold()));
    }
    let n = app.tainted();
    if n > 0 {
        let first = app.taints.iter().find(|t| t.tainted).map(|t| t.label.clone()).unwrap_or_default();
        let more = if n > 1 { format!(" and {} more", n - 1) } else { String::new() };
        let text = format!(
            " ⚠ trifecta: {first}{more} read untrusted content and private data; calls that could send it out ask (4 \
             Health)"
        );
        out.push(Paragraph::new(text).style(Style::new().fg(Color::Black).bg(Color::Yellow).bold()));
    }
    out
}

/// The Health pane's lines: the kill switch when on, then each session's
/// reads.
pub fn health_lines(app: &App) -> Vec<Line<'static>> {
    let tz = app.tz_offset_s;
    let mut lines = Vec::new();
    if let Some(since) = app.stopped_since() {
        let text = format!("■ STOPPED since {}: every call is denied; U resumes", clock(since, tz));
        lines.push(Line::from(vec![label("stop"), Span::styled(text, Style::new().fg(Color::Red).bold())]));
    }
    for t in app.taints.iter().take(20) {
        let (mark, style) = if t.tainted {
            ("✗ tainted", Style::new().fg(Color::Red).bold())
        } else {
            ("· one source", Style::new().fg(Color::Yellow))
        };
        let mut parts = Vec::new();
        for (what, ev) in [("untrusted", &t.untrusted), ("private", &t.private)] {
            if let Some((at, l)) = ev {
                parts.push(format!("{what} {l} at {}", clock(*at, tz)));
            }
        }
        lines.push(Line::from(vec![
            label("session"),
            Span::styled(format!("{mark} {}: ", t.label), style),
            Span::raw(parts.join("; ")),
        ]));
    }
    lines
}
