//! The compare table: one counter side by side for every source, and their difference.

use ratatui::style::{Color, Style};
use ratatui::text::Span;

use super::columns::{
    container_cell, container_priority, dash, na, value_min_width, widen_header, Col,
    PRIORITY_ALWAYS,
};
use super::grouping;
use super::text::{format_compact, format_diff, format_value};
use crate::view::tui::sampler::Refresh;
use crate::view::tui::state::{Column, Grouping, ViewState};
use crate::view::Joined;

pub(super) fn compare_columns(
    rows: &[Joined<'_>],
    refresh: &Refresh,
    state: &ViewState,
) -> Vec<Col> {
    let (rate, kb, grouping) = (
        !refresh.accumulated,
        state.view.kilobytes,
        grouping(refresh),
    );
    let focus = state.focus();
    let unit = focus.unit();
    let views = &refresh.snapshot.models;
    let value = |j: &Joined<'_>, i: usize| {
        j.per_source[i]
            .map(|r| focus.value(&r.delta, views[i].model.interval_s, refresh.accumulated))
    };
    let id_header = Column::Id.headers(grouping, false).0;
    let short = Column::Counter(focus)
        .headers(grouping, refresh.accumulated)
        .1;
    let base = |long: String, short: String, right: bool, priority: u8, min_long: usize| Col {
        long,
        short,
        right,
        cells: Vec::with_capacity(rows.len()),
        compact: Vec::new(),
        priority,
        min_long,
        sorted: false,
    };
    let mut id = base(
        id_header.to_string(),
        id_header.into(),
        true,
        PRIORITY_ALWAYS,
        7,
    );
    id.sorted = state.sort == Column::Id;
    let user_priority = 50;
    let mut user = base("USER".into(), "USER".into(), false, user_priority, 8);
    user.sorted = state.sort == Column::User;
    let (long, short_container) = Column::Container.headers(grouping, false);
    let mut container = base(long.into(), short_container.into(), false, 55, 0);
    container.sorted = state.sort == Column::Container;
    let container_priority = container_priority(rows.iter().map(Joined::label), container.sorted);
    let command_header = Column::Command.headers(grouping, false).0;
    let mut command = base(
        command_header.to_string(),
        command_header.into(),
        false,
        PRIORITY_ALWAYS,
        0,
    );
    command.sorted = state.sort == Column::Command;
    let mut per_source: Vec<Col> = views
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut c = base(
                format!("{} {short}", v.kind),
                v.kind.name().into(),
                true,
                i as u8 + 1,
                value_min_width(unit, rate, kb),
            );
            c.sorted = i == 0 && matches!(state.sort, Column::Counter(_));
            c
        })
        .collect();
    let mut diff = base(
        "DIFF".into(),
        "DIFF".into(),
        true,
        40,
        value_min_width(unit, rate, kb) + 1,
    );
    for j in rows {
        let label = j.label();
        id.cells.push(Span::raw(label.id().to_string()));
        user.cells
            .push(match (label.uid, state.user_name(label.uid)) {
                (Some(_), Some(name)) => Span::raw(name.chars().take(8).collect::<String>()),
                (Some(uid), None) => Span::raw(uid.to_string()),
                (None, _) => na(),
            });
        container.cells.push(container_cell(label));
        command.cells.push(Span::raw(label.name().to_string()));
        for (i, col) in per_source.iter_mut().enumerate() {
            let (full, compact) = match value(j, i) {
                None => (dash(), dash()),
                Some(None) => (na(), na()),
                Some(Some(v)) => (
                    Span::raw(format_value(unit, v, rate, kb)),
                    Span::raw(format_compact(unit, v, rate, kb)),
                ),
            };
            col.cells.push(full);
            col.compact.push(compact);
        }
        let last = views.len().saturating_sub(1);
        let (full, compact) = match (value(j, 0), value(j, last)) {
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
        };
        diff.cells.push(full);
        diff.compact.push(compact);
    }
    widen_header(&mut container);
    let mut cols = vec![id];
    if grouping != Grouping::Containers {
        cols.push(user);
        if let Some(p) = container_priority {
            // Behind the user, as in the single-source table.
            container.priority = p.max(user_priority + 1);
            cols.push(container);
        }
    }
    cols.append(&mut per_source);
    cols.push(diff);
    cols.push(command);
    cols
}
