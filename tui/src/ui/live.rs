//! Live calls as they happen, newest first: time, decision, server, tool,
//! class, and latency and outcome once the call has finished.

use latch_proto::AuditRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::pieces::{class_span, decision_span, latency, outcome_span, pane_block, scroll_offset, stamp};
use crate::app::App;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, now: i64) {
    let title = format!(" Live calls ({}) ", app.live.len());
    if app.live.is_empty() {
        let p =
            Paragraph::new(vec![Line::from(""), Line::from("  No calls yet: they appear here as agents make them.")]);
        frame.render_widget(p.block(pane_block(title)), area);
        return;
    }
    let sel = app.live_index();
    let height = area.height.saturating_sub(3) as usize;
    let offset = scroll_offset(sel, height);
    let rows = app.live.iter().skip(offset).take(height);
    let block = pane_block(title);
    call_table(frame, area, rows, Some(sel - offset), false, now, app.tz_offset_s, block);
}

/// A table of audit rows (live and history share it). `rows` are only the
/// visible ones; `sel` is relative to them.
#[allow(clippy::too_many_arguments)]
pub fn call_table<'a>(
    frame: &mut Frame<'_>,
    area: Rect,
    rows: impl Iterator<Item = &'a AuditRow>,
    sel: Option<usize>,
    with_id: bool,
    now: i64,
    tz: i32,
    block: Block<'static>,
) {
    let rows: Vec<&AuditRow> = rows.collect();
    // Today's times need 8 columns, older ones 11 (`MM-DD HH:MM`).
    let stamps: Vec<String> = rows.iter().map(|r| stamp(r.time, now, tz)).collect();
    let time_w = stamps.iter().map(|s| s.len()).max().unwrap_or(8).max(4) as u16;
    let rows = rows.iter().zip(stamps).map(|(r, stamp)| {
        let mut cells = Vec::with_capacity(8);
        if with_id {
            cells.push(Cell::from(format!("#{}", r.id)));
        }
        cells.extend([
            Cell::from(stamp),
            Cell::from(decision_span(&r.decision)),
            Cell::from(r.server.clone()),
            Cell::from(tool_cell(r)),
            Cell::from(class_span(&r.class)),
            Cell::from(Line::from(latency(r.latency_us)).right_aligned()),
            Cell::from(outcome_cell(r)),
        ]);
        Row::new(cells)
    });
    let mut widths = Vec::with_capacity(8);
    let mut header = Vec::with_capacity(8);
    if with_id {
        widths.push(Constraint::Length(9));
        header.push("id");
    }
    widths.extend([
        Constraint::Length(time_w),
        Constraint::Length(8),
        Constraint::Length(12),
        Constraint::Min(10),
        Constraint::Length(14),
        Constraint::Length(7),
        Constraint::Length(9),
    ]);
    header.extend(["time", "decision", "server", "tool", "class", "latency", "outcome"]);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().dim()))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ")
        .block(block);
    let mut state = TableState::default().with_selected(sel);
    frame.render_stateful_widget(table, area, &mut state);
}

/// The tool of a call; for the log's other rows (answers, shims coming and
/// going, policy rules…) their kind, in brackets, then the tool if any.
fn tool_cell(r: &AuditRow) -> Line<'static> {
    if r.kind == "call" {
        return Line::from(r.tool.clone());
    }
    let mut spans = vec![Span::styled(format!("[{}]", r.kind), Style::new().dim())];
    if !r.tool.is_empty() {
        spans.push(Span::raw(format!(" {}", r.tool)));
    }
    Line::from(spans)
}

/// What became of a call; a denied call never runs, so it has no outcome
/// to wait for.
fn outcome_cell(r: &AuditRow) -> Span<'static> {
    match (r.kind.as_str(), r.decision.as_str(), r.outcome.as_deref()) {
        ("call", "deny", None) => Span::styled("blocked", Style::new().dim()),
        ("call", _, outcome) => outcome_span(outcome),
        _ => Span::raw(""),
    }
}
