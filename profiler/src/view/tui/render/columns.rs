//! The columns of the single-source table, and what every table's columns share: cells for
//! unavailable values, container labels, the history sparkline.

use ratatui::style::{Modifier, Style};
use ratatui::text::Span;

use super::rows::grouping;
use super::text::{format_compact, format_value, truncate, Scale};
use super::theme::Palette;
use crate::container::HOST;
use crate::counter::Unit;
use crate::model::Row;
use crate::settings::{Charset, ExitedMark, GraphSource};
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
    pub(super) scale: Scale,
}

impl Number {
    pub(super) fn new(unit: Unit, refresh: &Refresh, state: &ViewState) -> Number {
        Number {
            unit,
            rate: !refresh.accumulated,
            scale: scale(state),
        }
    }

    /// The cell and its compact form; `n/a` when the source cannot measure it.
    pub(super) fn cells(self, v: Option<f64>) -> (Span<'static>, Span<'static>) {
        match v {
            Some(v) => (
                Span::raw(format_value(self.unit, v, self.rate, self.scale)),
                Span::raw(format_compact(self.unit, v, self.rate, self.scale)),
            ),
            None => (na(), na()),
        }
    }

    pub(super) fn min_width(self) -> usize {
        value_min_width(self.unit, self.rate, self.scale.kilobytes)
    }
}

/// How the state scales byte amounts.
pub(super) fn scale(state: &ViewState) -> Scale {
    Scale {
        kilobytes: state.view.kilobytes,
        units: state.settings.units(),
    }
}

/// What is not a value: `n/a`, `-`, `?`. Dim rather than grey: the 8-colour palette has no grey.
pub(super) fn faint() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

pub(super) const PRIORITY_ALWAYS: u8 = 0;
const PRIORITY_LAST: u8 = u8::MAX;

pub(super) fn na() -> Span<'static> {
    Span::styled(NA, faint())
}

/// No row for the task in that source.
pub(super) fn dash() -> Span<'static> {
    Span::styled("-", faint())
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
        None => Span::styled("?", faint()),
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

/// How the history column draws.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Graph {
    pub(super) charset: Charset,
    /// `R`: the newest value on the left.
    pub(super) reverse: bool,
    /// `x` on an exited task: its empty cells are `x`.
    pub(super) dead_x: bool,
}

/// " ▁▂▃▄▅▆▇█" (ASCII: " .:-=+*#") scaled to the row's own peak; blanks where it did nothing or
/// had no value; the oldest on the left unless reversed.
fn sparkline(values: &[f32], graph: Graph) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    const ASCII: [char; 8] = ['_', '.', ':', '-', '=', '+', '*', '#'];
    let bars = match graph.charset {
        Charset::Unicode => &BARS,
        Charset::Ascii => &ASCII,
    };
    let empty = if graph.dead_x { 'x' } else { ' ' };
    let peak = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f32, f32::max);
    let mut cells: Vec<char> =
        std::iter::repeat_n(empty, HISTORY_LEN.saturating_sub(values.len())).collect();
    for v in values {
        cells.push(if v.is_finite() && *v > 0.0 && peak > 0.0 {
            bars[((v / peak) * 7.0).round().clamp(0.0, 7.0) as usize]
        } else {
            empty
        });
    }
    if graph.reverse {
        cells.reverse();
    }
    cells.into_iter().collect()
}

/// The values the history column plots for a row: the sort column's, or what `g` chose
/// (DISK READ + DISK WRITE summed).
fn graph_values(r: &Row, view: usize, refresh: &Refresh, state: &ViewState) -> Vec<f32> {
    let Some(history) = state.history.get(view) else {
        return Vec::new();
    };
    let of = |c| history.values(r, refresh.containers, c);
    match state.settings.graph.counters() {
        None => of(state.focus()),
        Some(counters) => {
            let mut sum: Vec<f32> = Vec::new();
            for &c in counters {
                let values = of(c);
                if sum.is_empty() {
                    sum = values;
                } else {
                    sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
                }
            }
            sum
        }
    }
}

/// The counter the history plots, named for the help and the header.
pub(super) fn graph_name(state: &ViewState) -> &'static str {
    match state.settings.graph {
        GraphSource::SortColumn => "sort column",
        GraphSource::Io => "IO>",
        GraphSource::Read => "DISK READ",
        GraphSource::Write => "DISK WRITE",
        GraphSource::ReadWrite => "DISK READ+WRITE",
        GraphSource::Swapin => "SWAPIN",
    }
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
    Column::display_order(&state.settings, grouping)
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
            None => Span::styled("?", faint()),
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
                &graph_values(r, view, refresh, state),
                Graph {
                    charset: state.settings.charset,
                    reverse: state.settings.reverse_graph,
                    dead_x: r.exited && state.settings.exited == ExitedMark::DeadX,
                },
            ),
            Palette::of(state).history(),
        ),
        Column::Command => {
            let name = if state.settings.full_command {
                state
                    .cmdlines
                    .get(&(r.pid, r.start_time))
                    .map_or(r.name(), String::as_str)
            } else {
                r.name()
            };
            if r.exited {
                Span::raw(format!("{name} <exited>"))
            } else {
                Span::raw(name.to_string())
            }
        }
    };
    (full, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_peak() {
        let g = Graph::default();
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0], g), "     ▃▅█");
        assert_eq!(sparkline(&[f32::NAN, 0.0], g), "        ");
        assert_eq!(sparkline(&[], g).chars().count(), HISTORY_LEN);
    }

    #[test]
    fn sparkline_in_ascii_reversed_and_dead_x() {
        let ascii = Graph {
            charset: Charset::Ascii,
            ..Graph::default()
        };
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0], ascii), "     :=#");
        let reversed = Graph {
            reverse: true,
            ..Graph::default()
        };
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0], reversed), "█▅▃     ");
        let dead = Graph {
            dead_x: true,
            ..Graph::default()
        };
        assert_eq!(sparkline(&[4.0, 0.0], dead), "xxxxxx█x");
    }
}
