//! Drawing: a pure function of the last refresh and the view state. Nothing here reads the
//! kernel or the clock; user names and I/O priorities were looked up before, by the event
//! loop and the sampler. Columns that do not fit are dropped by priority, never squeezed.

mod columns;
mod compare;
mod header;
mod help;
mod prompt;
mod table;
mod text;

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::sampler::Refresh;
use super::state::{Column, Geometry, Grouping, Shown, ViewState};
use crate::model::Row;
use crate::view::{join, Joined, ViewOptions};
use header::header_lines;
use help::draw_help;
use prompt::draw_prompt;
use table::table_lines;

/// The rows of the table, filtered and sorted.
enum Rows<'a> {
    /// One source's rows.
    Single { view: usize, rows: Vec<&'a Row> },
    /// Every source's rows joined by task.
    Compare(Vec<Joined<'a>>),
}

impl Rows<'_> {
    fn len(&self) -> usize {
        match self {
            Rows::Single { rows, .. } => rows.len(),
            Rows::Compare(rows) => rows.len(),
        }
    }

    /// The TID (PID for process rows) of each row in `range`.
    fn ids(&self, range: std::ops::Range<usize>) -> Vec<u32> {
        match self {
            Rows::Single { rows, .. } => rows[range].iter().map(|r| r.id()).collect(),
            Rows::Compare(rows) => rows[range].iter().map(|j| j.label().id()).collect(),
        }
    }
}

/// Which source's table is shown, clamped to the snapshot.
fn shown(refresh: &Refresh, state: &ViewState) -> Shown {
    let n = refresh.snapshot.models.len();
    match state.shown {
        Shown::Compare if n > 1 => Shown::Compare,
        Shown::Source(i) => Shown::Source(i.min(n.saturating_sub(1))),
        Shown::Compare => Shown::Source(0),
    }
}

/// What the rows of a refresh are.
fn grouping(refresh: &Refresh) -> Grouping {
    Grouping::of(refresh.processes, refresh.containers)
}

fn rows<'a>(refresh: &'a Refresh, state: &ViewState) -> Rows<'a> {
    let snapshot = &refresh.snapshot;
    let accumulated = refresh.accumulated;
    match shown(refresh, state) {
        Shown::Source(view) => {
            let Some(model) = snapshot.models.get(view).map(|v| &v.model) else {
                return Rows::Single {
                    view,
                    rows: Vec::new(),
                };
            };
            // Each row's sort value is computed once, not at each of the n log n comparisons:
            // with thousands of tasks, sorting is most of a frame.
            let mut keyed: Vec<(&Row, Option<f64>)> = model
                .rows
                .iter()
                .filter(|r| state.shows(r))
                .map(|r| (r, state.sort_value(r, model.interval_s, accumulated)))
                .collect();
            keyed.sort_by(|a, b| state.order_by(a, b, |k| k.0, |k| k.1));
            let rows = keyed.into_iter().map(|(r, _)| r).collect();
            Rows::Single { view, rows }
        }
        Shown::Compare => {
            // Rows are joined as what the refresh holds, which may not be what was asked yet.
            let opts = ViewOptions {
                by_container: refresh.containers,
                ..state.view.clone()
            };
            let mut rows = join(snapshot, &opts);
            rows.retain(|j| state.matches_filter(j.label()));
            let focus = state.focus();
            // A counter sorts by the first source that measured it for the task.
            let value = |j: &Joined<'_>| {
                j.per_source
                    .iter()
                    .zip(&snapshot.models)
                    .find_map(|(r, v)| {
                        focus.value(&r.as_ref()?.delta, v.model.interval_s, accumulated)
                    })
            };
            rows.sort_by(|a, b| state.order_by(a, b, |j| j.label(), value));
            Rows::Compare(rows)
        }
    }
}

/// Everything laid out, before it is drawn.
struct Screen<'a> {
    header: Vec<Line<'static>>,
    rows: Rows<'a>,
    table: Rect,
    prompt: Option<Rect>,
    /// First row on screen.
    offset: usize,
    /// Rows that fit under the table's header line.
    page: usize,
}

impl<'a> Screen<'a> {
    fn new(area: Rect, refresh: Option<&'a Refresh>, state: &ViewState) -> Screen<'a> {
        let width = usize::from(area.width);
        let prompt_lines = u16::from(state.input.is_some());
        let room = area.height.saturating_sub(prompt_lines);
        // Keep the table's header and one row, and at least half the screen for the table.
        let budget = room.saturating_sub(2).min((room / 2).max(3));
        let mut header = header_lines(refresh, state, width);
        header.truncate(usize::from(budget));
        let header_h = header.len() as u16;
        let table = Rect {
            y: area.y + header_h,
            height: room.saturating_sub(header_h),
            ..area
        };
        let prompt = state.input.as_ref().map(|_| Rect {
            y: area.y + area.height.saturating_sub(1),
            height: 1,
            ..area
        });
        let rows = refresh.map_or(
            Rows::Single {
                view: 0,
                rows: Vec::new(),
            },
            |r| rows(r, state),
        );
        let page = usize::from(table.height.saturating_sub(1));
        let offset = state.scroll.min(rows.len().saturating_sub(page.max(1)));
        Screen {
            header,
            rows,
            table,
            prompt,
            offset,
            page,
        }
    }

    fn on_screen(&self) -> std::ops::Range<usize> {
        self.offset..(self.offset + self.page).min(self.rows.len())
    }
}

impl Screen<'_> {
    /// The table's size, for the scrolling keys, and the tasks on screen (whose I/O priority the
    /// sampler reads; every task when the table sorts by priority).
    fn geometry(&self, refresh: Option<&Refresh>, state: &ViewState) -> (Geometry, Vec<u32>) {
        let geometry = Geometry {
            rows: self.rows.len(),
            page: self.page,
        };
        // A container row's pid is a count of processes, not a task.
        let ids = if refresh.is_some_and(|r| r.containers) {
            Vec::new()
        } else if state.sort == Column::Prio {
            self.rows.ids(0..self.rows.len())
        } else {
            self.rows.ids(self.on_screen())
        };
        (geometry, ids)
    }
}

/// What [`draw`] returns, without drawing.
#[cfg(test)]
pub fn geometry(area: Rect, refresh: Option<&Refresh>, state: &ViewState) -> (Geometry, Vec<u32>) {
    Screen::new(area, refresh, state).geometry(refresh, state)
}

/// Draws the frame and returns how it laid the table out: filtering and sorting every row is
/// most of a frame's work with thousands of tasks, so it is done once, here.
pub fn draw(
    frame: &mut Frame<'_>,
    refresh: Option<&Refresh>,
    state: &ViewState,
) -> (Geometry, Vec<u32>) {
    let area = frame.area();
    let mut screen = Screen::new(area, refresh, state);
    let laid_out = screen.geometry(refresh, state);
    let header_area = Rect {
        height: screen.header.len() as u16,
        ..area
    };
    let header = std::mem::take(&mut screen.header);
    frame.render_widget(Paragraph::new(header), header_area);
    let lines = match refresh {
        Some(r) => table_lines(&screen, r, state, usize::from(area.width)),
        None => vec![Line::styled(
            "waiting for the first refresh…",
            Style::new().fg(Color::DarkGray),
        )],
    };
    frame.render_widget(Paragraph::new(lines), screen.table);
    if let (Some(input), Some(at)) = (&state.input, screen.prompt) {
        draw_prompt(frame, input, at);
    }
    if state.help {
        draw_help(frame, state);
    }
    laid_out
}
