//! The columns of the single-source table, and what every table's columns share: cells for
//! unavailable values, container labels, the history sparkline.

use ratatui::style::{Color, Style};
use ratatui::text::Span;

use super::rows::grouping;
use super::text::{format_compact, format_value, truncate};
use crate::container::HOST;
use crate::counter::Unit;
use crate::model::Row;
use crate::view::batch::NA;
use crate::view::tui::sampler::Refresh;
use crate::view::tui::state::{Column, ViewState, HISTORY_LEN};

/// A column of the table for the rows on screen.
pub(super) struct Col {
    pub(super) long: String,
    pub(super) short: String,
    pub(super) right: bool,
    pub(super) cells: Vec<Span<'static>>,
    /// Shorter cells for narrow terminals; empty when the cells are short already.
    pub(super) compact: Vec<Span<'static>>,
    /// Lower is kept first when the terminal is narrow; the id and the command always stay.
    pub(super) priority: u8,
    /// Width the column keeps in the wide layout whatever its cells, so it does not jitter.
    pub(super) min_long: usize,
    pub(super) sorted: bool,
}

impl Col {
    /// A column without cells yet, kept first (see [`Col::priority`]), with no minimum width.
    pub(super) fn new(long: String, short: String, right: bool, sorted: bool, rows: usize) -> Col {
        Col {
            long,
            short,
            right,
            cells: Vec::with_capacity(rows),
            compact: Vec::new(),
            priority: PRIORITY_ALWAYS,
            min_long: 0,
            sorted,
        }
    }

    /// Adds a row's cell and its compact form.
    pub(super) fn push(&mut self, (full, compact): (Span<'static>, Span<'static>)) {
        self.cells.push(full);
        self.compact.push(compact);
    }
}

/// How a counter's values are written: its unit, per second or not, in kilobytes or not.
#[derive(Clone, Copy)]
pub(super) struct Number {
    pub(super) unit: Unit,
    pub(super) rate: bool,
    pub(super) kilobytes: bool,
}

impl Number {
    pub(super) fn new(unit: Unit, refresh: &Refresh, state: &ViewState) -> Number {
        Number {
            unit,
            rate: !refresh.accumulated,
            kilobytes: state.view.kilobytes,
        }
    }

    /// The cell and its compact form; `n/a` when the source cannot measure it.
    pub(super) fn cells(self, v: Option<f64>) -> (Span<'static>, Span<'static>) {
        match v {
            Some(v) => (
                Span::raw(format_value(self.unit, v, self.rate, self.kilobytes)),
                Span::raw(format_compact(self.unit, v, self.rate, self.kilobytes)),
            ),
            None => (na(), na()),
        }
    }

    pub(super) fn min_width(self) -> usize {
        value_min_width(self.unit, self.rate, self.kilobytes)
    }
}

pub(super) const PRIORITY_ALWAYS: u8 = 0;
const PRIORITY_LAST: u8 = u8::MAX;

pub(super) fn na() -> Span<'static> {
    Span::styled(NA, Style::new().fg(Color::DarkGray))
}

/// No row for the task in that source.
pub(super) fn dash() -> Span<'static> {
    Span::styled("-", Style::new().fg(Color::DarkGray))
}

/// The user's name, cut to 8 characters as iotop does, else the uid.
pub(super) fn user_cell(uid: Option<u32>, state: &ViewState) -> Span<'static> {
    match (uid, state.user_name(uid)) {
        (Some(_), Some(name)) => Span::raw(name.chars().take(8).collect::<String>()),
        (Some(uid), None) => Span::raw(uid.to_string()),
        (None, _) => na(),
    }
}

/// Widest a container label gets in the CONTAINER column: `docker:` and a 12-digit id fit;
/// longer labels (kubernetes pod/container, cgroup paths) end in `…`. The per-container view
/// shows them whole.
const CONTAINER_WIDTH: usize = 20;

pub(super) fn container_cell(row: &Row) -> Span<'static> {
    match &row.container {
        Some(label) => Span::raw(truncate(label, CONTAINER_WIDTH)),
        None => Span::styled("?", Style::new().fg(Color::DarkGray)),
    }
}

/// How much the CONTAINER column tells about `rows`: nothing without labels (a kernel without
/// cgroups), so it is left out unless sorted by; little when all are `host`, so it is the first
/// column dropped, rather than push the priority or the syscalls off a host's terminal.
pub(super) fn container_priority<'r>(
    rows: impl Iterator<Item = &'r Row>,
    sorted: bool,
) -> Option<u8> {
    let mut labelled = false;
    for label in rows.filter_map(|r| r.container.as_deref()) {
        if label != HOST {
            return Some(CONTAINER_PRIORITY);
        }
        labelled = true;
    }
    (labelled || sorted).then_some(PRIORITY_LAST)
}

const CONTAINER_PRIORITY: u8 = 6;

/// The short header is for narrow columns: over labels as wide, the long one costs nothing.
pub(super) fn widen_header(col: &mut Col) {
    let widest = col.cells.iter().map(Span::width).max().unwrap_or(0);
    if widest >= col.long.chars().count() {
        col.short.clone_from(&col.long);
    }
}

fn value_min_width(unit: Unit, rate: bool, kilobytes: bool) -> usize {
    match unit {
        // "1023.99 K/s"; in kilobytes, up to a GiB/s.
        Unit::Bytes => (if kilobytes { 13 } else { 9 }) + if rate { 2 } else { 0 },
        Unit::Nanoseconds => 7,
        Unit::Calls => 5,
    }
}

/// " ▁▂▃▄▅▆▇█" scaled to the row's own peak; blanks where it did nothing or had no value.
fn sparkline(values: &[f32]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let peak = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f32, f32::max);
    let mut s = " ".repeat(HISTORY_LEN.saturating_sub(values.len()));
    for v in values {
        s.push(if v.is_finite() && *v > 0.0 && peak > 0.0 {
            BARS[((v / peak) * 7.0).round().clamp(0.0, 7.0) as usize]
        } else {
            ' '
        });
    }
    s
}

pub(super) fn single_columns(
    rows: &[&Row],
    view: usize,
    refresh: &Refresh,
    state: &ViewState,
) -> Vec<Col> {
    let grouping = grouping(refresh);
    let container_priority =
        container_priority(rows.iter().copied(), state.sort == Column::Container);
    Column::display_order(state.char_columns, grouping)
        .into_iter()
        .filter(|&col| col != Column::Container || container_priority.is_some())
        .map(|col| {
            let (long, short) = col.headers(grouping, refresh.accumulated);
            let right = matches!(col, Column::Id | Column::Counter(_));
            let mut c = Col::new(
                long.into(),
                short.into(),
                right,
                col == state.sort,
                rows.len(),
            );
            for r in rows {
                match single_cell(col, r, view, refresh, state) {
                    (full, Some(compact)) => c.push((full, compact)),
                    (full, None) => c.cells.push(full),
                }
            }
            if col == Column::Container {
                widen_header(&mut c);
            }
            (c.priority, c.min_long) = match col {
                Column::Id => (PRIORITY_ALWAYS, 7),
                Column::Command => (PRIORITY_ALWAYS, 0),
                _ if c.sorted => (1, 0),
                Column::Counter(k) => (
                    k.spec().priority,
                    Number::new(k.unit(), refresh, state).min_width(),
                ),
                Column::User => (5, 8),
                Column::Container => (container_priority.unwrap_or(PRIORITY_LAST), 0),
                Column::Prio => (10, 4),
                Column::History => (11, HISTORY_LEN),
            };
            c
        })
        .collect()
}

/// A row's cell in `col` of source `view`'s table, and a compact form for counters.
fn single_cell(
    col: Column,
    r: &Row,
    view: usize,
    refresh: &Refresh,
    state: &ViewState,
) -> (Span<'static>, Option<Span<'static>>) {
    let full = match col {
        Column::Id => Span::raw(r.id().to_string()),
        Column::Prio => match state.prio.get(&r.id()) {
            Some(p) => Span::raw(p.to_string()),
            None => Span::styled("?", Style::new().fg(Color::DarkGray)),
        },
        Column::User => user_cell(r.uid, state),
        Column::Container => container_cell(r),
        Column::Counter(k) => {
            let interval_s = refresh.snapshot.models[view].model.interval_s;
            let value = k.value(&r.delta, interval_s, refresh.accumulated);
            let (full, compact) = Number::new(k.unit(), refresh, state).cells(value);
            return (full, Some(compact));
        }
        Column::History => Span::styled(
            sparkline(
                &state
                    .history
                    .get(view)
                    .map(|h| h.values(r, refresh.containers, state.focus()))
                    .unwrap_or_default(),
            ),
            Style::new().fg(Color::Cyan),
        ),
        Column::Command if r.exited => Span::raw(format!("{} <exited>", r.name())),
        Column::Command => Span::raw(r.name().to_string()),
    };
    (full, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_peak() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0]), "     ▃▅█");
        assert_eq!(sparkline(&[f32::NAN, 0.0]), "        ");
        assert_eq!(sparkline(&[]).chars().count(), HISTORY_LEN);
    }
}
