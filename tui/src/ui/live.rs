//! Live calls as they happen, newest first: time, decision, server, tool,
//! class, and latency and outcome once the call has finished.

use latch_proto::AuditRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::columns::{Col, fit, widths};
use super::pieces::{
    class_span, final_span, latency, outcome_span, pane_block, scroll_offset, stamp, waited, who_words,
};
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
/// visible ones; `sel` is relative to them. Columns are as wide as what
/// they hold; the outcome column takes the rest of the line and says who
/// answered when there is room.
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
    let texts: Vec<Texts> = rows.iter().map(|r| Texts::of(r, now, tz)).collect();
    let header = ["id", "time", "decision", "server", "tool", "class", "took", "outcome"];
    let col =
        |i: usize, min: usize, max: usize| Col::fitted(header[i], texts.iter().map(|t| t.cells[i].as_str()), min, max);
    // Only names give up room; the decision, class, wait and the bare
    // outcome are never cut.
    let keep = |c: Col| Col { shrink: false, min: c.want, ..c };
    let cols = [
        keep(col(0, 3, 10)),
        keep(col(1, 4, 11)),
        keep(col(2, 8, 10)),
        col(3, 6, 48),
        col(4, 8, 60),
        keep(col(5, 5, 14)),
        keep(col(6, 4, 8)),
        Col::fixed(8),
    ];
    let shown: Vec<usize> = (if with_id { 0 } else { 1 }..header.len()).collect();
    let inner = block.inner(area).width as usize;
    // The highlight mark and one cell between columns.
    let room = inner.saturating_sub(2 + shown.len() - 1);
    let chosen: Vec<Col> = shown.iter().map(|&i| cols[i]).collect();
    let mut w = widths(&chosen, room);
    // The outcome column takes what is left.
    let last = w.len() - 1;
    w[last] = room.saturating_sub(w[..last].iter().sum::<usize>()).max(8);
    let table_rows = rows.iter().zip(&texts).map(|(r, t)| {
        let cells = shown.iter().zip(&w).map(|(&i, &cw)| {
            let text = fit(&t.cells[i], cw);
            match i {
                2 => Cell::from(Span::styled(text, final_span(r).style)),
                4 if r.kind != "call" => Cell::from(Span::styled(text, Style::new().dim())),
                5 => Cell::from(Span::styled(text, class_span(&r.class).style)),
                6 => Cell::from(Line::from(text).right_aligned()),
                7 => Cell::from(outcome_line(r, outcome_fitted(r, cw))),
                _ => Cell::from(text),
            }
        });
        Row::new(cells.collect::<Vec<_>>())
    });
    let constraints: Vec<Constraint> = w.iter().map(|&cw| Constraint::Length(cw as u16)).collect();
    let table = Table::new(table_rows, constraints)
        .header(Row::new(shown.iter().map(|&i| header[i]).collect::<Vec<_>>()).style(Style::new().dim()))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ")
        .block(block);
    let mut state = TableState::default().with_selected(sel);
    frame.render_stateful_widget(table, area, &mut state);
}

/// The text of one row's cells, before they are fitted.
struct Texts {
    cells: [String; 8],
}

impl Texts {
    fn of(r: &AuditRow, now: i64, tz: i32) -> Texts {
        let tool = if r.kind == "call" {
            r.tool.clone()
        } else if r.kind == "connections" {
            format!("⇄ {}", r.tool)
        } else if r.tool.is_empty() {
            format!("[{}]", r.kind)
        } else {
            format!("[{}] {}", r.kind, r.tool)
        };
        Texts {
            cells: [
                format!("#{}", r.id),
                stamp(r.time, now, tz),
                final_span(r).content.into_owned(),
                r.server.clone(),
                tool,
                r.class.clone(),
                took(r),
                outcome_text(r),
            ],
        }
    }
}

/// The outcome, coloured, from its fitted text.
fn outcome_line(r: &AuditRow, text: String) -> Line<'static> {
    let style = match (r.kind.as_str(), r.outcome.as_deref()) {
        ("call", Some("ok")) => outcome_span(Some("ok")).style,
        ("call", Some(_)) => outcome_span(Some("x")).style,
        _ => Style::new().dim(),
    };
    Line::from(Span::styled(text, style))
}

/// The outcome in `w` cells: with who answered when that fits, else the
/// outcome alone.
fn outcome_fitted(r: &AuditRow, w: usize) -> String {
    let full = outcome_text(r);
    if super::columns::width(&full) <= w {
        return full;
    }
    fit(&bare_outcome(r), w)
}

/// What became of a call; a denied call never runs, so it has no outcome
/// to wait for.
fn bare_outcome(r: &AuditRow) -> String {
    match (r.decision.as_str(), r.answer.as_deref(), r.outcome.as_deref()) {
        ("deny", _, None) | (_, Some("deny"), None) => "blocked".to_owned(),
        (_, _, Some(o)) => o.to_owned(),
        (_, _, None) => "…".to_owned(),
    }
}

/// What became of a call, and who answered it when a person did.
fn outcome_text(r: &AuditRow) -> String {
    // A row whose stored bytes were overwritten says so first.
    if r.damaged.is_some() {
        return "DAMAGED".to_owned();
    }
    if r.kind != "call" {
        return String::new();
    }
    let outcome = bare_outcome(r);
    match r.answered_by.as_deref().filter(|_| r.answer.is_some()) {
        Some(by) => format!("{outcome} · {}", who_words(by)),
        None => outcome,
    }
}

/// How long a call took: the wait for a person when there was one (the
/// run itself is in the detail), else the run.
fn took(r: &AuditRow) -> String {
    match r.waited_ms {
        Some(ms) => waited(ms),
        None => latency(r.latency_us),
    }
}
