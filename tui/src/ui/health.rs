//! Health: the daemon connection, the policy in force and its last reload
//! error, the approval channels (desktop, Telegram) and what is wrong with
//! them, security findings, the shims connected (server names, since when).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Wrap};

use super::pieces::{ago, clock, label, pane_block};
use crate::app::{App, Conn};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, now: i64) {
    let tz = app.tz_offset_s;
    let mut lines = Vec::new();
    let conn = match &app.conn {
        Conn::Up { since } => Span::styled(
            format!("● connected since {} ({})", clock(*since, tz), ago(*since, now)),
            Style::new().fg(Color::Green),
        ),
        Conn::Connecting => Span::styled("◌ connecting…", Style::new().fg(Color::Yellow)),
        Conn::Down { error, .. } => {
            Span::styled(format!("✗ not reachable: {error}"), Style::new().fg(Color::Red).bold())
        }
    };
    lines.push(Line::from(vec![label("daemon"), conn]));
    let shims = match &app.status {
        None => {
            lines.push(Line::from(Span::styled("  no status received yet", Style::new().dim())));
            Vec::new()
        }
        Some(st) => {
            let stale = if app.connected() { "" } else { " (last known)" };
            lines.push(Line::from(vec![
                label(""),
                Span::raw(format!("pid {} · latch {}", st.daemon_pid, st.version)),
                Span::styled(stale, Style::new().dim()),
            ]));
            lines.push(Line::from(vec![label("socket"), Span::raw(st.socket.clone())]));
            lines.push(Line::from(vec![label("database"), Span::raw(st.database.clone())]));
            let policy_state = match &st.policy_error {
                None => Span::styled(" ✓ in force", Style::new().fg(Color::Green)),
                Some(_) => {
                    Span::styled(" ✗ reload failed, previous policy in force", Style::new().fg(Color::Red).bold())
                }
            };
            lines.push(Line::from(vec![label("policy"), Span::raw(st.policy.clone()), policy_state]));
            if let Some(e) = &st.policy_error {
                for l in e.lines() {
                    lines.push(Line::from(Span::styled(format!("  {l}"), Style::new().fg(Color::Red))));
                }
            }
            if let Some(p) = &st.policy_pending {
                let head = format!("policy change pending: {} rules loosen — not in force; P accepts it", p.loosen);
                lines.push(Line::from(vec![label(""), Span::styled(head, Style::new().fg(Color::Yellow).bold())]));
                for l in &p.diff {
                    lines.push(Line::from(Span::styled(format!("  {l}"), Style::new().fg(Color::Yellow))));
                }
                // What the change would have decided differently lately.
                for l in &p.replay {
                    lines.push(Line::from(Span::styled(format!("  ↺ {l}"), Style::new().fg(Color::Yellow).italic())));
                }
            }
            if let Some(n) = &st.policy_note {
                lines.push(Line::from(vec![label(""), Span::styled(n.clone(), Style::new().fg(Color::Yellow))]));
            }
            let pin = if st.pin_set {
                Span::styled("✓ set; answers need it", Style::new().fg(Color::Green))
            } else {
                Span::styled(
                    "✗ none: any program running as you can approve (latch pin set)",
                    Style::new().fg(Color::Red).bold(),
                )
            };
            lines.push(Line::from(vec![label("PIN"), pin]));
            // Approval channels beyond the console: working, off, or what
            // is wrong with them.
            for ch in &st.channels {
                let state = match (&ch.problem, ch.enabled) {
                    (Some(p), _) => Span::styled(format!("✗ {p}"), Style::new().fg(Color::Red).bold()),
                    (None, true) => Span::styled("✓ working", Style::new().fg(Color::Green)),
                    (None, false) => Span::styled("off", Style::new().dim()),
                };
                lines.push(Line::from(vec![label(&ch.name), state]));
            }
            // Security findings: what is wrong and what to do.
            for f in &st.findings {
                lines.push(Line::from(vec![
                    label("finding"),
                    Span::styled(format!("✗ {f}"), Style::new().fg(Color::Red).bold()),
                ]));
            }
            lines.extend(super::taint::health_lines(app));
            lines.push(Line::from(vec![
                label("consoles"),
                Span::raw(format!("{} · pending {}", st.consoles, app.pending.len())),
            ]));
            st.shims.clone()
        }
    };
    // Long paths and reload errors wrap: count the rows they take.
    let inner_w = area.width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner_w)).sum();
    let top_h = rows as u16 + 2;
    let [top, bottom] = Layout::vertical([Constraint::Length(top_h), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane_block(" Health ")), top);

    let mut shims = shims;
    shims.sort_by(|a, b| a.server.cmp(&b.server).then(a.since.cmp(&b.since)));
    let rows = shims.iter().map(|s| {
        let client = s.client.as_ref().map(|c| format!("{} {}", c.name, c.version)).unwrap_or_default();
        Row::new(vec![
            s.server.clone(),
            s.pid.to_string(),
            format!("{} ({})", clock(s.since, tz), ago(s.since, now)),
            client.trim().to_owned(),
        ])
    });
    let table =
        Table::new(rows, [Constraint::Length(16), Constraint::Length(8), Constraint::Length(20), Constraint::Min(10)])
            .header(Row::new(["server", "pid", "since", "client"]).style(Style::new().dim()))
            .block(pane_block(format!(" Shims connected ({}) ", shims.len())));
    frame.render_widget(table, bottom);
}
