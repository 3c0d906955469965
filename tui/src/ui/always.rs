//! The "always" scope picker: the scopes offered, narrowest first, and the
//! exact rule the chosen one writes.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::pieces::popup;
use crate::app::AlwaysPick;

pub fn draw(frame: &mut Frame<'_>, area: Rect, pick: &AlwaysPick, who: &str, now: i64) {
    let rule = pick.rule_text(who, now);
    let h = (pick.offers.len() + rule.lines().count() + 9) as u16;
    let r = popup(frame, area, 100.min(area.width.saturating_sub(2)).max(40), h);
    let mut lines = vec![
        Line::from(Span::styled("Approve ALWAYS: how far?", Style::new().fg(Color::Red).bold())),
        Line::from(Span::styled(
            format!("{} / {}  ({})", pick.item.server, pick.item.tool, pick.item.class),
            Style::new().bold(),
        )),
    ];
    for (i, o) in pick.offers.iter().enumerate() {
        let (mark, style) = if i == pick.sel { ("› ", Style::new().reversed()) } else { ("  ", Style::new()) };
        lines.push(Line::from(vec![Span::raw(mark), Span::styled(o.label.clone(), style)]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("Writes to the policy:", Style::new().bold())));
    lines.extend(rule.lines().map(|l| Line::from(Span::styled(l.to_owned(), Style::new().fg(Color::Yellow)))));
    if let Some((asked, counts)) = &pick.asked {
        let text = match counts.get(pick.sel).copied().flatten() {
            Some(n) => format!(
                "Would have allowed {n} of the {asked} calls of this tool asked in the last 7 days (by their logged, redacted arguments)."
            ),
            None => format!(
                "{asked} calls of this tool were asked in the last 7 days; the log cannot tell which this allows."
            ),
        };
        lines.push(Line::from(Span::styled(text, Style::new().fg(Color::Cyan))));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled("j/k", Style::new().bold()),
        Span::raw(" choose   "),
        Span::styled("y", Style::new().bold()),
        Span::raw(" / "),
        Span::styled("Enter", Style::new().bold()),
        Span::raw(" save   "),
        Span::styled("Esc", Style::new().bold()),
        Span::raw(" cancel"),
    ]));
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(" Always "));
    frame.render_widget(p, r);
}
