//! The `?` overlay (every binding, from the keymap) and the confirmation
//! popup shown before an `always` answer or approving a transfer.

use latch_proto::Scope;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::pieces::popup;
use crate::app::Confirm;
use crate::keymap::{self, BINDINGS, CONTEXTS};

/// Width of the keys column of the help.
const KEYS_W: usize = 16;

/// Splits `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    for word in text.split(' ') {
        let cur = out.last_mut().expect("never empty");
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            out.push(word.to_owned());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    out
}

pub fn draw_help(frame: &mut Frame<'_>, area: Rect, scroll: u16) {
    let r = popup(frame, area, area.width.min(100), area.height);
    let text_w = (r.width as usize).saturating_sub(KEYS_W + 4).max(20);
    let mut lines = Vec::new();
    for ctx in CONTEXTS {
        let rows: Vec<_> = BINDINGS.iter().filter(|b| b.context == ctx).collect();
        if rows.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::from(""));
        }
        lines.push(Line::from(Span::styled(ctx.title(), Style::new().bold().underlined())));
        for b in rows {
            let keys = keymap::keys_label(b);
            let mut first = true;
            for chunk in wrap(b.describe, text_w) {
                let lead = if first { format!("  {keys:<KEYS_W$}") } else { " ".repeat(KEYS_W + 2) };
                first = false;
                lines.push(Line::from(vec![Span::styled(lead, Style::new().bold()), Span::raw(chunk)]));
            }
        }
    }
    let max = lines.len().saturating_sub(1) as u16;
    let p = Paragraph::new(lines)
        .scroll((scroll.min(max), 0))
        .block(Block::bordered().title(" Keys · j/k scroll · Esc close "));
    frame.render_widget(p, r);
}

pub fn draw_confirm(frame: &mut Frame<'_>, area: Rect, c: &Confirm) {
    let r = popup(frame, area, 64, 10);
    let what = match (c.approve, c.scope) {
        (true, Scope::Always) => "Approve ALWAYS",
        (false, Scope::Always) => "Deny ALWAYS",
        (true, _) => "Approve a TRANSFER_VALUE call",
        (false, _) => "Deny",
    };
    let why = match (c.approve, c.scope) {
        (true, Scope::Always) => "Writes an allow rule to the policy: later calls of this tool run without asking.",
        (false, Scope::Always) => "Writes a deny rule to the policy: later calls of this tool are refused.",
        _ => "This call moves money or value once it runs.",
    };
    let lines = vec![
        Line::from(Span::styled(what, Style::new().fg(Color::Red).bold())),
        Line::from(Span::styled(
            format!("{} / {}  ({})", c.item.server, c.item.tool, c.item.class),
            Style::new().bold(),
        )),
        Line::from(""),
        Line::from(why),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", Style::new().bold()),
            Span::raw(" / "),
            Span::styled("Enter", Style::new().bold()),
            Span::raw(" confirm    "),
            Span::styled("n", Style::new().bold()),
            Span::raw(" / "),
            Span::styled("Esc", Style::new().bold()),
            Span::raw(" cancel"),
        ]),
    ];
    let p = Paragraph::new(lines).wrap(Wrap { trim: true }).block(Block::bordered().title(" Confirm "));
    frame.render_widget(p, r);
}
