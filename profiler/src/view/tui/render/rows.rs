//! Which rows the table has, in what order: one source's tasks or every source's joined.

use crate::model::Row;
use crate::view::tui::sampler::Refresh;
use crate::view::tui::state::{Grouping, Shown, ViewState};
use crate::view::{join, Joined, ViewOptions};

/// The rows of the table, filtered and sorted.
pub(super) enum Rows<'a> {
    /// One source's rows.
    Single { view: usize, rows: Vec<&'a Row> },
    /// Every source's rows joined by task.
    Compare(Vec<Joined<'a>>),
}

impl Rows<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            Rows::Single { rows, .. } => rows.len(),
            Rows::Compare(rows) => rows.len(),
        }
    }

    /// The TID (PID for process rows) of each row in `range`.
    pub(super) fn ids(&self, range: std::ops::Range<usize>) -> Vec<u32> {
        match self {
            Rows::Single { rows, .. } => rows[range].iter().map(|r| r.id()).collect(),
            Rows::Compare(rows) => rows[range].iter().map(|j| j.label().id()).collect(),
        }
    }
}

/// Which source's table is shown, clamped to the snapshot.
pub(super) fn shown(refresh: &Refresh, state: &ViewState) -> Shown {
    let n = refresh.snapshot.models.len();
    match state.shown {
        Shown::Compare if n > 1 => Shown::Compare,
        Shown::Source(i) => Shown::Source(i.min(n.saturating_sub(1))),
        Shown::Compare => Shown::Source(0),
    }
}

/// What the rows of a refresh are.
pub(super) fn grouping(refresh: &Refresh) -> Grouping {
    Grouping::of(refresh.processes, refresh.containers)
}

/// The rows of the table, filtered and sorted as the state asks.
pub(super) fn rows<'a>(refresh: &'a Refresh, state: &ViewState) -> Rows<'a> {
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
