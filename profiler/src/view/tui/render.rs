//! Drawing: a pure function of the last refresh and the view state. Nothing here reads the
//! kernel or the clock; user names and I/O priorities were looked up before, by the event
//! loop and the sampler. Columns that do not fit are dropped by priority, never squeezed.

mod columns;
mod compare;
mod header;
mod help;
pub use help::KEYS;
mod prompt;
mod rows;
mod table;
mod text;
mod theme;

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::sampler::Refresh;
use super::state::{Column, Geometry, ViewState};
use crate::settings::HelpType;
use header::header_lines;
use help::{draw_help, draw_inline_help};
use prompt::draw_prompt;
use rows::{rows, Rows};
use table::table_lines;

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
        let inline_help = state.settings.help == HelpType::Inline;
        let prompt_lines = u16::from(state.input.is_some() || inline_help);
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
        let prompt = (state.input.is_some() || inline_help).then_some(Rect {
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
        let on_screen = self.on_screen();
        let top = (!refresh.is_some_and(|r| r.containers) && !on_screen.is_empty())
            .then(|| self.rows.ids(on_screen.start..on_screen.start + 1)[0]);
        let geometry = Geometry {
            rows: self.rows.len(),
            page: self.page,
            top,
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
        Some(r) => table_lines(
            &screen.rows,
            screen.on_screen(),
            r,
            state,
            usize::from(area.width),
        ),
        None => vec![Line::styled(
            "waiting for the first refresh…",
            columns::faint(),
        )],
    };
    frame.render_widget(Paragraph::new(lines), screen.table);
    match (&state.input, screen.prompt) {
        (Some(input), Some(at)) => draw_prompt(frame, input, at, theme::Palette::of(state)),
        (None, Some(at)) => draw_inline_help(frame, at),
        _ => {}
    }
    if state.help {
        draw_help(frame, state);
    }
    laid_out
}
