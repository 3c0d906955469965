//! The audit history, one page at a time (see [`crate::app`] for paging),
//! with the search and the filters in force on the first line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::live::call_table;
use super::pieces::{pane_block, scroll_offset};
use crate::app::{App, PAGE};

/// Below this width the id column is left out.
const WIDE: u16 = 100;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, now: i64) {
    let h = &app.history;
    let mut title = vec![Span::raw(" History")];
    if !h.rows.is_empty() {
        let first = h.page * PAGE as usize + 1;
        title.push(Span::raw(format!(" · page {} · rows {first}–{}", h.page + 1, first + h.rows.len() - 1)));
    }
    if h.at_end {
        title.push(Span::raw(" · oldest"));
    }
    if h.loading.is_some() {
        title.push(Span::styled(" · loading…", Style::new().fg(Color::Cyan)));
    }
    if h.new_rows > 0 {
        title.push(Span::styled(format!(" · +{} new (r)", h.new_rows), Style::new().fg(Color::Yellow)));
    }
    title.push(Span::raw(" "));
    let block = pane_block(Line::from(title));
    let inner = block.inner(area);
    let [filters, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(filter_line(app)), filters);

    if h.rows.is_empty() {
        let msg = if h.loading.is_some() {
            "  loading…"
        } else if h.filtered() {
            "  Nothing matches: x clears the search and the filters."
        } else {
            "  The audit log is empty."
        };
        frame.render_widget(Paragraph::new(msg), table);
        return;
    }
    let height = table.height.saturating_sub(1) as usize;
    let offset = scroll_offset(h.sel, height);
    let rows = h.rows.iter().skip(offset).take(height);
    let wide = area.width >= WIDE;
    call_table(frame, table, rows, Some(h.sel - offset), wide, now, app.tz_offset_s, Default::default());
}

fn filter_line(app: &App) -> Line<'static> {
    let h = &app.history;
    let item = |key: &'static str, name: &'static str, value: Option<String>| {
        let set = value.is_some();
        let value = value.unwrap_or_else(|| if name == "time" { "all" } else { "any" }.into());
        let vstyle = if set { Style::new().fg(Color::Yellow).bold() } else { Style::new().dim() };
        [
            Span::styled(format!(" {key} "), Style::new().bold()),
            Span::raw(format!("{name}:")),
            Span::styled(value, vstyle),
        ]
    };
    let mut spans = Vec::new();
    spans.extend(item("/", "search", h.text.as_ref().map(|t| format!("\"{t}\""))));
    spans.extend(item("v", "decision", h.decision.map(str::to_owned)));
    spans.extend(item("c", "class", h.class.map(str::to_owned)));
    spans.extend(item("e", "server", h.server.clone()));
    let window = (h.window != crate::app::Window::All).then(|| h.window.label().to_owned());
    spans.extend(item("t", "time", window));
    Line::from(spans)
}
