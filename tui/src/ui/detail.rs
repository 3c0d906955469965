//! The detail popup of an approval or an audit row: everything the daemon
//! told us, arguments pretty-printed (they arrive redacted).

use latch_proto::AuditRow;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::pending::Args;
use super::pieces::{
    ago, class_span, decision_span, final_span, full_time, label, latency, outcome_span, popup, pretty_args, waited,
    who_words,
};
use crate::app::{App, DetailItem};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, item: &DetailItem, scroll: u16, now: i64) {
    // The whole pane: arguments need the room, and nothing half-hidden
    // peeks out from behind.
    let r = popup(frame, area, area.width, area.height);
    let (title, lines) = match item {
        DetailItem::Pending(p) => (
            format!(" Pending · {} / {} · {} ", p.server, p.tool, p.id),
            super::pending::item_lines(
                p,
                app.revealed_args(&p.id).map_or(Args::Revealable, Args::Revealed),
                now,
                app.tz_offset_s,
            ),
        ),
        DetailItem::Row(row) => {
            (format!(" #{} · {} / {} ", row.id, row.server, row.tool), row_lines(row, now, app.tz_offset_s))
        }
    };
    let max = lines.len().saturating_sub(1) as u16;
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((scroll.min(max), 0))
        .block(Block::bordered().title(Span::styled(title, Style::new().bold())));
    frame.render_widget(p, r);
}

/// `decision  ? ask → ✓ approved`: the policy's word, then a person's.
fn decision_line(row: &AuditRow) -> Vec<Span<'static>> {
    let mut spans = vec![label("decision"), decision_span(&row.decision)];
    if row.answer.is_some() && row.decision == "ask" {
        spans.push(Span::raw(" → "));
        spans.push(final_span(row));
    }
    spans
}

/// The lines describing one audit row.
pub fn row_lines(row: &AuditRow, now: i64, tz: i32) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(vec![label("when"), Span::raw(format!("{} ({})", full_time(row.time, tz), ago(row.time, now)))]),
        Line::from(vec![label("server"), Span::raw(row.server.clone())]),
        Line::from(vec![label("tool"), Span::styled(row.tool.clone(), Style::new().bold())]),
        Line::from(vec![label("kind"), Span::raw(row.kind.clone())]),
        Line::from(vec![label("class"), class_span(&row.class)]),
        Line::from(decision_line(row)),
        Line::from(vec![label("why"), Span::styled("classification, then the rule that decided", Style::new().dim())]),
    ];
    if let Some(d) = &row.damaged {
        let red = Style::new().fg(ratatui::style::Color::Red).bold();
        lines.insert(0, Line::from(vec![label("DAMAGED"), Span::styled(d.to_string(), red)]));
    }
    if row.reasons.is_empty() {
        lines.push(Line::from("  (no reason recorded)"));
    }
    for r in &row.reasons {
        lines.push(Line::from(format!("  • {r}")));
    }
    let rule = match &row.rule {
        Some(r) => Span::raw(r.clone()),
        None => Span::styled("the class default", Style::new().dim()),
    };
    lines.push(Line::from(vec![label("rule"), rule]));
    let answered = match (&row.approval_id, &row.answered_by, row.answer.as_deref()) {
        (None, _, _) => Span::styled("no approval needed", Style::new().dim()),
        (Some(id), Some(by), Some(answer)) => {
            let verb = if answer == "allow" { "approved" } else { "denied" };
            let wait = row.waited_ms.map(|ms| format!(" after {}", waited(ms))).unwrap_or_default();
            Span::raw(format!("{id} · {verb} by {}{wait}", who_words(by)))
        }
        (Some(id), Some(by), None) => Span::raw(format!("{id} · answered by {}", who_words(by))),
        (Some(id), None, _) => Span::raw(format!("{id} · not answered yet")),
    };
    lines.push(Line::from(vec![label("approval"), answered]));
    let mut outcome = vec![label("outcome"), outcome_span(row.outcome.as_deref())];
    if row.latency_us.is_some() {
        outcome.push(Span::raw(format!(" in {}", latency(row.latency_us))));
    }
    lines.push(Line::from(outcome));
    lines.push(Line::from(vec![label("args hash"), Span::styled(row.args_hash.clone(), Style::new().dim())]));
    lines.push(Line::from(vec![label("arguments"), Span::styled("(redacted)", Style::new().dim())]));
    for l in pretty_args(&row.args) {
        lines.push(Line::from(format!("  {l}")));
    }
    lines
}
