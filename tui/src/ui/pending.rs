//! The pending approvals: a list (most urgent first) with a countdown to
//! each hold limit, and below it the selected approval in full: class,
//! reasons, redacted arguments.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::columns::{Col, fit, widths};
use super::pieces::{class_span, countdown, label, pane_block, pretty_args, scroll_offset};
use crate::app::App;
use latch_proto::PendingItem;
use serde_json::Value;

/// Rows of the list shown at most; the detail below gets the rest.
const LIST_ROWS: usize = 6;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, now: i64) {
    if app.pending.is_empty() {
        let text = vec![
            Line::from(""),
            Line::from(Span::styled("  No approvals waiting.", Style::new().bold())),
            Line::from(""),
            Line::from("  Calls that need a human appear here, with a countdown to the"),
            Line::from("  moment the agent is told the call awaits approval."),
        ];
        frame.render_widget(Paragraph::new(text).block(pane_block(" Pending approvals ")), area);
        return;
    }
    let list_h = app.pending.len().min(LIST_ROWS) as u16 + 3;
    let [list, detail] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(area);
    draw_list(frame, list, app, now);
    match app.selected_pending() {
        Some(item) => draw_item(frame, detail, app, item, now),
        None => {
            frame.render_widget(Paragraph::new("  Select an approval with j/k or ↑/↓.").block(pane_block("")), detail)
        }
    }
}

fn draw_list(frame: &mut Frame<'_>, area: Rect, app: &App, now: i64) {
    let n = app.pending.len();
    let title = Line::from(Span::styled(
        format!(" ⚠ {n} approval{} waiting ", if n == 1 { "" } else { "s" }),
        Style::new().fg(Color::Red).bold(),
    ));
    let height = area.height.saturating_sub(3) as usize;
    let sel = app.pending_index();
    let offset = scroll_offset(sel.unwrap_or(0), height);
    let shown: Vec<&PendingItem> = app.pending.iter().skip(offset).take(height).collect();
    // Columns as wide as the names they hold.
    let inner = area.width.saturating_sub(2) as usize;
    let room = inner.saturating_sub(2 + 4);
    let cols = [
        Col::fixed(5),
        Col::fitted("server", shown.iter().map(|p| p.server.as_str()), 6, 32),
        Col::fitted("tool", shown.iter().map(|p| p.tool.as_str()), 8, 60),
        Col::fitted("class", shown.iter().map(|p| p.class.as_str()), 5, 14),
        Col::fixed(9),
    ];
    let w = widths(&cols, room);
    let rows = shown.iter().map(|p| {
        let waiting = if app.answering.contains(&p.id) {
            Span::styled("sending…", Style::new().fg(Color::Cyan))
        } else {
            Span::raw(format!("{} waiting", p.waiting))
        };
        let left = countdown(p.hold_until, now);
        let left_style = if p.hold_until - now <= 10_000 { Style::new().fg(Color::Red) } else { Style::new() };
        Row::new(vec![
            Cell::from(Span::styled(format!("{left:>5}"), left_style)),
            Cell::from(fit(&p.server, w[1])),
            Cell::from(Span::styled(fit(&p.tool, w[2]), Style::new().bold())),
            Cell::from(Span::styled(fit(&p.class, w[3]), class_span(&p.class).style)),
            Cell::from(waiting),
        ])
    });
    let constraints: Vec<Constraint> = w.iter().map(|&cw| Constraint::Length(cw as u16)).collect();
    let table = Table::new(rows, constraints)
        .header(Row::new(["left", "server", "tool", "class", ""]).style(Style::new().dim()))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ")
        .block(pane_block(title));
    let mut state = TableState::default().with_selected(sel.map(|s| s - offset));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The lines describing a pending approval (shared with the detail popup).
/// Which arguments an approval's lines show.
#[derive(Clone, Copy)]
pub enum Args<'a> {
    /// The redacted ones (the pending pane).
    Redacted,
    /// The redacted ones, and `r` reveals them (the detail).
    Revealable,
    /// The unredacted ones the daemon sent to this unlocked console.
    Revealed(&'a Value),
}

pub fn item_lines(item: &PendingItem, args: Args<'_>, now: i64, tz: i32) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(vec![label("class"), class_span(&item.class)]),
        Line::from(vec![
            label("hold"),
            if item.hold_until > now {
                Span::raw(format!("{} left before the agent is told to retry", countdown(item.hold_until, now)))
            } else {
                Span::styled(
                    "over: the agent was told to retry; approving lets the identical retry through",
                    Style::new().fg(Color::Yellow),
                )
            },
        ]),
        Line::from(vec![
            label("asked"),
            Span::raw(format!(
                "{} ({}) · {} call{} waiting",
                super::pieces::clock(item.created_at, tz),
                super::pieces::ago(item.created_at, now),
                item.waiting,
                if item.waiting == 1 { "" } else { "s" }
            )),
        ]),
        Line::from(vec![label("why")]),
    ];
    if item.reasons.is_empty() {
        lines.push(Line::from("  (no reason given)"));
    }
    for r in &item.reasons {
        lines.push(Line::from(format!("  • {r}")));
    }
    let (args, note) = match args {
        Args::Revealed(raw) => {
            (raw, Span::styled("(REVEALED — on this screen only; r masks again)", Style::new().fg(Color::Red).bold()))
        }
        Args::Revealable => (&item.args, Span::styled("(redacted; r reveals, with the PIN)", Style::new().dim())),
        Args::Redacted => (&item.args, Span::styled("(redacted)", Style::new().dim())),
    };
    lines.push(Line::from(vec![label("arguments"), note]));
    for l in pretty_args(args) {
        lines.push(Line::from(format!("  {l}")));
    }
    lines
}

fn draw_item(frame: &mut Frame<'_>, area: Rect, app: &App, item: &PendingItem, now: i64) {
    let title = Line::from(vec![
        Span::raw(" "),
        Span::styled(format!("{} / {}", item.server, item.tool), Style::new().bold()),
        Span::styled(format!(" · {} ", item.id), Style::new().dim()),
    ]);
    let lines = item_lines(item, Args::Redacted, now, app.tz_offset_s);
    let mut block = pane_block(title);
    let inner = block.inner(area);
    // A command's dangerous tail may be what is cut off: say so.
    if rows_needed(&lines, inner.width) > inner.height as usize {
        block = block.title_bottom(
            Line::from(Span::styled(" ▼ more below: Enter shows it all ", Style::new().fg(Color::Yellow).bold()))
                .right_aligned(),
        );
    }
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(block);
    frame.render_widget(p, area);
}

/// Screen rows `lines` take wrapped at `width`, counted so that it is never
/// less than what the paragraph draws: a word wrapped to the next row may
/// leave up to its length unused, so every wrapped line is given a row to
/// spare.
fn rows_needed(lines: &[Line<'_>], width: u16) -> usize {
    let width = width.max(1) as usize;
    lines
        .iter()
        .map(|l| {
            let w = l.width();
            if w <= width { 1 } else { w.div_ceil(width) + 1 }
        })
        .sum()
}
