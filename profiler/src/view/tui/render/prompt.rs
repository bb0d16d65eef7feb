//! The prompt line of the `/`, `f`, `i` and replay `j` prompts, with the cursor where the editor has it.

use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_width::UnicodeWidthChar;

use super::theme::Palette;
use crate::view::tui::state::{Input, InputKind};

pub(super) fn draw_prompt(frame: &mut Frame<'_>, input: &Input, at: Rect, palette: Palette) {
    let label = match input.kind {
        InputKind::Command => "filter command or container (regex): ".to_string(),
        InputKind::User => "filter user (names or uids; empty: all): ".to_string(),
        InputKind::Pid => "filter process (pids; empty: all): ".to_string(),
        InputKind::IoniceId => "ionice which task (TID, or PID with p): ".to_string(),
        InputKind::IoniceClass { id } => format!("ionice {id}: class (rt, be, idle): "),
        InputKind::IoniceLevel { id, .. } => format!("ionice {id}: level (0 highest … 7): "),
        InputKind::Time => "go to time (03:00, -1h, 2026-12-02T03:00): ".to_string(),
    };
    let label_width = label.chars().count();
    // Past the label, a line longer than the room scrolls to keep the cursor in sight, with a
    // cell left for the cursor after the last character.
    let room = usize::from(at.width).saturating_sub(label_width + 1);
    let scroll = input.line.visual_scroll(room);
    let mut skipped = 0;
    let text: String = input
        .text()
        .chars()
        .skip_while(|c| {
            let skip = skipped < scroll;
            skipped += c.width().unwrap_or(0);
            skip
        })
        .collect();
    let mut spans = vec![
        Span::styled(label, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(text),
    ];
    if let Some(e) = &input.error {
        spans.push(Span::styled(format!("  {e}"), palette.error()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), at);
    let x = (label_width + input.line.visual_cursor() - scroll)
        .min(usize::from(at.width.saturating_sub(1)));
    frame.set_cursor_position(Position {
        x: at.x + x as u16,
        y: at.y,
    });
}
