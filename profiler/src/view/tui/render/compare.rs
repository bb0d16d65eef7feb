//! The compare table: one counter side by side for every source, and their difference.

use ratatui::style::{Color, Style};
use ratatui::text::Span;

use super::columns::{
    container_cell, container_priority, dash, na, user_cell, widen_header, Col, Number,
};
use super::rows::grouping;
use super::text::{format_compact, format_diff};
use crate::view::tui::sampler::Refresh;
use crate::view::tui::state::{Column, Grouping, ViewState};
use crate::view::Joined;

pub(super) fn compare_columns(
    rows: &[Joined<'_>],
    refresh: &Refresh,
    state: &ViewState,
) -> Vec<Col> {
    let grouping = grouping(refresh);
    let focus = state.focus();
    let number = Number::new(focus.unit(), refresh, state);
    let views = &refresh.snapshot.models;
    // None: the source has no row for the task; Some(None): it cannot measure the counter.
    let value = |j: &Joined<'_>, i: usize| {
        j.per_source[i]
            .map(|r| focus.value(&r.delta, views[i].model.interval_s, refresh.accumulated))
    };
    let n = rows.len();
    let sorted = |c: Column| state.sort == c;
    let (id_header, _) = Column::Id.headers(grouping, false);
    let mut id = Col::new(
        id_header.to_string(),
        id_header.into(),
        true,
        sorted(Column::Id),
        n,
    );
    id.min_long = 7;
    let mut user = Col::new("USER".into(), "USER".into(), false, sorted(Column::User), n);
    user.min_long = 8;
    let (long, short) = Column::Container.headers(grouping, false);
    let mut container = Col::new(
        long.into(),
        short.into(),
        false,
        sorted(Column::Container),
        n,
    );
    let container_priority = container_priority(rows.iter().map(Joined::label), container.sorted);
    let (command_header, _) = Column::Command.headers(grouping, false);
    let mut command = Col::new(
        command_header.to_string(),
        command_header.into(),
        false,
        sorted(Column::Command),
        n,
    );
    let mut per_source = source_columns(refresh, state, number, n);
    let mut diff = Col::new("DIFF".into(), "DIFF".into(), true, false, n);
    (diff.priority, diff.min_long) = (DIFF_PRIORITY, number.min_width() + 1);
    let last = views.len().saturating_sub(1);
    for j in rows {
        let label = j.label();
        id.cells.push(Span::raw(label.id().to_string()));
        user.cells.push(user_cell(label.uid, state));
        container.cells.push(container_cell(label));
        command.cells.push(Span::raw(label.name().to_string()));
        for (i, col) in per_source.iter_mut().enumerate() {
            col.push(value(j, i).map_or_else(|| (dash(), dash()), |v| number.cells(v)));
        }
        diff.push(diff_cells(value(j, 0), value(j, last), number));
    }
    widen_header(&mut container);
    let mut cols = vec![id];
    if grouping != Grouping::Containers {
        user.priority = USER_PRIORITY;
        cols.push(user);
        if let Some(p) = container_priority {
            // Behind the user, as in the single-source table.
            container.priority = p.max(USER_PRIORITY + 1);
            cols.push(container);
        }
    }
    cols.append(&mut per_source);
    cols.push(diff);
    cols.push(command);
    cols
}

/// One column per source for the focused counter, kept in the sources' order; the first
/// carries the sort mark.
fn source_columns(refresh: &Refresh, state: &ViewState, number: Number, rows: usize) -> Vec<Col> {
    let (_, header) =
        Column::Counter(state.focus()).headers(grouping(refresh), refresh.accumulated);
    refresh
        .snapshot
        .models
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let first_sorted = i == 0 && matches!(state.sort, Column::Counter(_));
            let long = format!("{} {header}", v.kind);
            let mut c = Col::new(long, v.kind.name().into(), true, first_sorted, rows);
            (c.priority, c.min_long) = (i as u8 + 1, number.min_width());
            c
        })
        .collect()
}

/// Kept after every source's value, and the user after the difference.
const DIFF_PRIORITY: u8 = 40;
const USER_PRIORITY: u8 = 50;

/// The last source's value less the first's, yellow where they differ.
fn diff_cells(
    first: Option<Option<f64>>,
    last: Option<Option<f64>>,
    number: Number,
) -> (Span<'static>, Span<'static>) {
    let Number {
        unit,
        rate,
        kilobytes: kb,
    } = number;
    match (first, last) {
        (Some(Some(a)), Some(Some(b))) => {
            let style = if (b - a).abs() > f64::EPSILON {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            };
            let sign = if b < a { "-" } else { "+" };
            let compact = format_compact(unit, (b - a).abs(), rate, kb);
            (
                Span::styled(format_diff(unit, b - a, rate, kb), style),
                Span::styled(format!("{sign}{compact}"), style),
            )
        }
        (Some(_), Some(_)) => (na(), na()),
        _ => (dash(), dash()),
    }
}
