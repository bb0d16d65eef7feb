//! The help window: the keys, what the columns mean, the sources and what they cannot measure.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::text::wrap;
use crate::view::tui::state::{ViewState, HISTORY_LEN};

const HELP: &[(&str, &str)] = &[
    ("left/right", "sort by the previous / next column"),
    ("r", "reverse the sort order"),
    ("o", "only tasks doing I/O"),
    ("p", "processes / threads (from the next refresh)"),
    ("a", "accumulated since start / per second"),
    (
        "c",
        "one row per container / per task (from the next refresh)",
    ),
    ("x", "RCHAR and WCHAR columns"),
    (
        "/",
        "filter commands or containers by regex (Enter keeps, Esc cancels)",
    ),
    ("u", "filter by user: names or uids, empty for all"),
    ("Esc", "clear the command and user filters"),
    ("f", "freeze the display; sampling goes on"),
    ("s", "compare mode: next source, or all side by side"),
    ("up/down", "scroll; also PgUp, PgDn, Home, End"),
    ("t / T", "replay: one interval back / forward"),
    ("g", "replay: go to a time (03:00, -1h, 2026-12-02T03:00)"),
    ("? h", "this help (any key closes it)"),
    ("q", "quit"),
];

pub(super) fn draw_help(frame: &mut Frame<'_>, state: &ViewState) {
    let area = frame.area();
    let w = area.width.min(100);
    let inner = usize::from(w.saturating_sub(2));
    let keys = HELP.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut lines: Vec<Line<'static>> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!(" {k:<keys$}  "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    let mut text = vec![
        String::new(),
        "IO> and SWAPIN: share of the interval spent waiting for block I/O and swap-in.".to_string(),
        "RCHAR, WCHAR: bytes through read and write calls, page cache included.".to_string(),
        "CONTAINER: docker:ID, podman:ID, k8s:POD/CONTAINER, lxc:NAME, a systemd unit, a cgroup path, or host; PROCS: its processes.".to_string(),
        format!("HISTORY: the last {HISTORY_LEN} refreshes of the sort column (DISK WRITE if it has none)."),
        String::new(),
        state.sources.line.clone(),
    ];
    let reasons = state
        .sources
        .unavailable
        .iter()
        .map(|(kind, u)| format!("{kind}: {} unavailable: {}", u.counter_names(), u.reason));
    text.extend(reasons);
    for t in text {
        lines.extend(wrap(&t, inner, usize::MAX).into_iter().map(Line::raw));
        if t.is_empty() {
            lines.push(Line::raw(""));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let at = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, at);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" keys ")),
        at,
    );
}
