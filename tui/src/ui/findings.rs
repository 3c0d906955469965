//! The tool findings popup: the tools whose definition changed since first
//! seen or holds text aimed at the model, the selected one's reasons, and
//! its description as a diff (`-` pinned lines red, `+` new lines green).
//! Everything a server chose is shown with control characters escaped.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::pieces::{ago, label, popup, scroll_offset};
use crate::app::App;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, sel: usize, scroll: u16, now: i64) {
    let r = popup(frame, area, area.width, area.height);
    let title = format!(" Tool findings · {} ", app.findings.len());
    let block = Block::bordered().title(Span::styled(title, Style::new().bold()));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    if app.findings.is_empty() {
        let text =
            "No tool has findings: every listed definition is as first seen, and none holds text aimed at the model.";
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    }
    let rows = (app.findings.len() as u16).min(8);
    let [list, _, detail] =
        Layout::vertical([Constraint::Length(rows), Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let first = scroll_offset(sel, list.height as usize);
    let lines: Vec<Line<'static>> = app
        .findings
        .iter()
        .enumerate()
        .skip(first)
        .take(list.height as usize)
        .map(|(i, f)| {
            let mut style = Style::new();
            if i == sel {
                style = style.bg(Color::Blue).fg(Color::White);
            }
            let since = if f.since > 0 { ago(f.since, now) } else { "before restart".to_owned() };
            let text = format!(
                " {} / {}  [{}]  {since}",
                latch_core::threat::visible(&f.server),
                latch_core::threat::visible(&f.tool),
                f.kinds.join(", ")
            );
            Line::styled(text, style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
    let Some(f) = app.findings.get(sel) else { return };
    let mut lines = vec![
        Line::from(vec![label("server"), Span::raw(latch_core::threat::visible(&f.server))]),
        Line::from(vec![label("tool"), Span::styled(latch_core::threat::visible(&f.tool), Style::new().bold())]),
        Line::from(vec![label("kind"), Span::styled(f.kinds.join(", "), Style::new().fg(Color::Yellow))]),
        Line::from(vec![
            label("calls"),
            Span::raw("ask (or are denied, by policy) until a person accepts this definition: a (needs the PIN)"),
        ]),
    ];
    for reason in &f.reasons {
        lines.push(Line::from(format!("  • {}", latch_core::threat::visible(reason))));
    }
    if let Some(diff) = &f.diff {
        lines.push(Line::from(vec![
            label("description"),
            Span::styled("as pinned → as listed now", Style::new().dim()),
        ]));
        for l in diff.lines() {
            let style = match l.chars().next() {
                _ if l.starts_with("---") || l.starts_with("+++") => Style::new().bold(),
                Some('-') => Style::new().fg(Color::Red),
                Some('+') => Style::new().fg(Color::Green),
                _ => Style::new().dim(),
            };
            lines.push(Line::styled(format!("  {}", latch_core::threat::visible(l)), style));
        }
    }
    let max = lines.len().saturating_sub(1) as u16;
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((scroll.min(max), 0)), detail);
}
