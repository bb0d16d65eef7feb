//! The columns of the single-source table, and what every table's columns share: cells for
//! unavailable values, container labels, the history sparkline.

use ratatui::style::{Color, Style};
use ratatui::text::Span;

use super::grouping;
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

pub(super) const PRIORITY_ALWAYS: u8 = 0;
const PRIORITY_LAST: u8 = u8::MAX;

pub(super) fn na() -> Span<'static> {
    Span::styled(NA, Style::new().fg(Color::DarkGray))
}

/// No row for the task in that source.
pub(super) fn dash() -> Span<'static> {
    Span::styled("-", Style::new().fg(Color::DarkGray))
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

pub(super) fn value_min_width(unit: Unit, rate: bool, kilobytes: bool) -> usize {
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
    let model = &refresh.snapshot.models[view].model;
    let (rate, kb, grouping) = (
        !refresh.accumulated,
        state.view.kilobytes,
        grouping(refresh),
    );
    let history = state.history.get(view);
    let focus = state.focus();
    let container_priority =
        container_priority(rows.iter().copied(), state.sort == Column::Container);
    Column::display_order(state.char_columns, grouping)
        .into_iter()
        .filter(|&col| col != Column::Container || container_priority.is_some())
        .map(|col| {
            let (long, short) = col.headers(grouping, refresh.accumulated);
            let mut c = Col {
                long: long.into(),
                short: short.into(),
                right: matches!(col, Column::Id | Column::Counter(_)),
                cells: Vec::with_capacity(rows.len()),
                compact: Vec::new(),
                priority: PRIORITY_ALWAYS,
                min_long: 0,
                sorted: col == state.sort,
            };
            for r in rows {
                c.cells.push(match col {
                    Column::Id => Span::raw(r.id().to_string()),
                    Column::Prio => match state.prio.get(&r.id()) {
                        Some(p) => Span::raw(p.to_string()),
                        None => Span::styled("?", Style::new().fg(Color::DarkGray)),
                    },
                    Column::User => match (r.uid, state.user_name(r.uid)) {
                        (Some(_), Some(name)) => {
                            Span::raw(name.chars().take(8).collect::<String>())
                        }
                        (Some(uid), None) => Span::raw(uid.to_string()),
                        (None, _) => na(),
                    },
                    Column::Container => container_cell(r),
                    Column::Counter(k) => {
                        match k.value(&r.delta, model.interval_s, refresh.accumulated) {
                            Some(v) => {
                                c.compact
                                    .push(Span::raw(format_compact(k.unit(), v, rate, kb)));
                                Span::raw(format_value(k.unit(), v, rate, kb))
                            }
                            None => {
                                c.compact.push(na());
                                na()
                            }
                        }
                    }
                    Column::History => Span::styled(
                        sparkline(
                            &history
                                .map(|h| h.values(r, refresh.containers, focus))
                                .unwrap_or_default(),
                        ),
                        Style::new().fg(Color::Cyan),
                    ),
                    Column::Command if r.exited => Span::raw(format!("{} <exited>", r.name())),
                    Column::Command => Span::raw(r.name().to_string()),
                });
            }
            if col == Column::Container {
                widen_header(&mut c);
            }
            (c.priority, c.min_long) = match col {
                Column::Id => (PRIORITY_ALWAYS, 7),
                Column::Command => (PRIORITY_ALWAYS, 0),
                _ if c.sorted => (1, 0),
                Column::Counter(k) => (k.spec().priority, value_min_width(k.unit(), rate, kb)),
                Column::User => (5, 8),
                Column::Container => (container_priority.unwrap_or(PRIORITY_LAST), 0),
                Column::Prio => (10, 4),
                Column::History => (11, HISTORY_LEN),
            };
            c
        })
        .collect()
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
