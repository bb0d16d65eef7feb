//! The help window: the keys, what the columns mean, the sources and what they cannot measure.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::text::wrap;
use crate::view::tui::state::{ViewState, HISTORY_LEN};

/// The full-screen view's keys and what each does: the help window, and the man page's KEYS.
pub const KEYS: &[(&str, &str)] = &[
    ("left/right", "sort by the previous / next column"),
    ("r space", "reverse the sort order"),
    ("o", "only tasks doing I/O"),
    ("p", "processes / threads (from the next refresh)"),
    (
        "v",
        "threads, processes, containers: one row per … (from the next refresh)",
    ),
    ("a", "accumulated, average since start, per refresh"),
    ("c", "full command line / command name"),
    (
        "1 … 9",
        "hide or show PID, PRIO, USER, READ, WRITE, SWAPIN, IO>, HISTORY, COMMAND",
    ),
    ("w", "RCHAR and WCHAR columns"),
    ("0", "show every column"),
    (
        "g G",
        "what the history plots: next / previous (sort column, io, r, w, rw, sw)",
    ),
    ("R", "reverse the history: newest on the left"),
    (
        "x",
        "mark exited tasks with x in their history / a reversed row",
    ),
    ("e", "hide / show exited tasks"),
    (
        "/",
        "filter commands or containers by regex (Enter keeps, Esc cancels)",
    ),
    (
        "f",
        "filter by user (names or uids), then by process (pids)",
    ),
    ("Esc", "clear the command, user and process filters"),
    ("i", "ionice a task: class and level"),
    ("s", "freeze the display; sampling goes on"),
    ("Tab", "compare mode: next source, or all side by side"),
    ("u", "Unicode / ASCII history"),
    ("l", "colours on / off"),
    ("Ctrl-B", "SI units (powers of 1000)"),
    ("Ctrl-R", "next unit threshold (1 … 10)"),
    ("Ctrl-T", "kernel.task_delayacct on / off (root)"),
    ("Ctrl-L", "redraw the screen"),
    ("W", "write these settings to the config file"),
    ("D", "every setting back to its default"),
    ("up/down", "scroll; also PgUp, PgDn, Home, End"),
    ("t / T", "replay: one interval back / forward"),
    ("j", "replay: jump to a time (03:00, -1h, 2026-12-02T03:00)"),
    (
        "? h",
        "key hints under the table / this help (any key closes it)",
    ),
    ("q", "quit"),
];

/// `?`: the keys in one line under the table, as iotop-c's inline help.
const INLINE: &str =
    "q quit  r sort  o only  p procs  v group  a accum  c cmdline  1-9 0 w columns  \
                      g graph  i ionice  f filter  / regex  s freeze  W save  D defaults  h help";

pub(super) fn draw_inline_help(frame: &mut Frame<'_>, at: Rect) {
    frame.render_widget(
        Paragraph::new(Line::styled(
            super::text::truncate(INLINE, usize::from(at.width)),
            Style::new().add_modifier(Modifier::REVERSED),
        )),
        at,
    );
}

pub(super) fn draw_help(frame: &mut Frame<'_>, state: &ViewState) {
    let area = frame.area();
    let w = area.width.min(100);
    let inner = usize::from(w.saturating_sub(2));
    let keys = KEYS.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut lines: Vec<Line<'static>> = KEYS
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
        format!(
            "HISTORY: the last {HISTORY_LEN} refreshes of the {} (DISK WRITE if the sort column has none).",
            super::columns::graph_name(state)
        ),
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
