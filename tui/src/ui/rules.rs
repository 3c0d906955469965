//! The rules view: one line per rule (number, effect, name or matchers),
//! who added it, and the selected rule as written in the file.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::pieces::popup;
use crate::app::RulesView;

fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(w.saturating_sub(1)).collect::<String>())
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, v: &RulesView) {
    let r = popup(frame, area, area.width.saturating_sub(2).max(40), area.height.saturating_sub(2).max(10));
    let inner = r.width.saturating_sub(2) as usize;
    let mut lines = Vec::new();
    match (&v.rules, &v.error) {
        (_, Some(e)) => {
            lines.extend(e.lines().map(|l| Line::from(Span::styled(l.to_owned(), Style::new().fg(Color::Red)))))
        }
        (None, None) => lines.push(Line::from("loading…")),
        (Some(rules), None) if rules.is_empty() => lines.push(Line::from("no rules: the class defaults decide")),
        (Some(rules), None) => {
            // Rows around the selection, leaving room for the selected
            // rule's text below.
            let room = (r.height as usize).saturating_sub(4) / 2;
            let room = room.max(2);
            let first = v.sel.saturating_sub(room.saturating_sub(1));
            for (i, rule) in rules.iter().enumerate().skip(first).take(room) {
                let what = rule.name.clone().unwrap_or_else(|| rule.summary.clone());
                let head = format!("{:>3} {:<5} {}", rule.number, rule.effect, what);
                let style = if i == v.sel { Style::new().reversed() } else { Style::new() };
                lines.push(Line::from(Span::styled(cut(&head, inner), style)));
            }
            if let Some(rule) = v.selected() {
                lines.push(Line::from(""));
                lines.push(Line::from(Span::styled(cut(&format!("added {}", rule.added), inner), Style::new().bold())));
                lines.extend(
                    rule.text.lines().map(|l| Line::from(Span::styled(l.to_owned(), Style::new().fg(Color::Yellow)))),
                );
            }
        }
    }
    let title = if v.confirm {
        " Rules · delete this rule? y yes · any other key no ".to_owned()
    } else {
        " Rules · j/k choose · d delete · r reload · Esc close ".to_owned()
    };
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(title));
    frame.render_widget(p, r);
}
