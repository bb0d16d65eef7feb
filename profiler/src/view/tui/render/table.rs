//! Laying the columns out: which fit the width and how wide each is, then the lines drawn.

use std::ops::Range;

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::columns::{single_columns, Col};
use super::compare::compare_columns;
use super::rows::Rows;
use crate::view::tui::sampler::Refresh;
use crate::view::tui::state::ViewState;

/// The columns kept, in display order, with their widths; the last is the command.
struct Layout {
    kept: Vec<(usize, usize)>,
    long: bool,
    compact: bool,
    sep: usize,
}

impl Col {
    fn cells(&self, compact: bool) -> &[Span<'static>] {
        if compact && !self.compact.is_empty() {
            &self.compact
        } else {
            &self.cells
        }
    }

    fn width(&self, long: bool, compact: bool) -> usize {
        let header = if long { &self.long } else { &self.short };
        let cells = self
            .cells(compact)
            .iter()
            .map(Span::width)
            .max()
            .unwrap_or(0);
        let min = if long { self.min_long } else { 0 };
        header.chars().count().max(cells).max(min)
    }
}

/// Below this width, numbers lose their decimals rather than columns their place.
const COMPACT_BELOW: usize = 60;

/// Wide headers with every column if they fit (two spaces apart, else one); else short
/// headers, and the columns that fit by priority (with compact numbers on a narrow terminal).
/// The id and the command are always kept, the command gets what is left, and the sort
/// column may shrink it to a few characters.
fn pick(cols: &[Col], width: usize) -> Layout {
    let cmd_min = (width / 5).clamp(6, 16);
    let last = cols.len() - 1;
    let narrow = width < COMPACT_BELOW;
    let tiers = [
        (true, 2, false),
        (true, 1, false),
        (false, 1, false),
        (false, 1, narrow),
    ];
    for (tier, &(long, sep, compact)) in tiers.iter().enumerate() {
        let mut used = cols[0].width(long, compact) + sep + cmd_min;
        let mut by_priority: Vec<usize> = (1..last).collect();
        by_priority.sort_by_key(|&i| cols[i].priority);
        let mut keep = vec![false; cols.len()];
        keep[0] = true;
        keep[last] = true;
        for i in by_priority {
            let w = cols[i].width(long, compact);
            let squeeze = if cols[i].sorted {
                cmd_min.saturating_sub(CMD_SQUEEZED)
            } else {
                0
            };
            if used + w + sep <= width + squeeze {
                used += w + sep;
                keep[i] = true;
            }
        }
        if tier + 1 == tiers.len() || keep.iter().all(|&k| k) {
            let kept = (0..cols.len())
                .filter(|&i| keep[i])
                .map(|i| (i, cols[i].width(long, compact)))
                .collect();
            return Layout {
                kept,
                long,
                compact,
                sep,
            };
        }
    }
    unreachable!("the last tier always returns")
}

/// What is left of the command when the sort column needs the room.
const CMD_SQUEEZED: usize = 4;

fn pad(span: Span<'static>, width: usize, right: bool) -> Span<'static> {
    let w = span.width();
    let fill = " ".repeat(width.saturating_sub(w));
    let content = if right {
        format!("{fill}{}", span.content)
    } else {
        format!("{}{fill}", span.content)
    };
    Span::styled(content, span.style)
}

/// The table as lines: the header, then a line per row on screen, or why there is none.
///
/// Laid out by hand rather than with ratatui's `Table`: `pick` already fixes every width from
/// the cells, and `Table` would change what is drawn. It styles a whole row (an exited task's
/// DIM would cover the blank cells after the command), and on a terminal narrower than the id
/// and the command its layout solver shrinks columns where these lines are cut at the edge.
/// Only the rows on screen are formatted, so scrolling is an offset into the rows (see
/// `Screen`) rather than a `TableState` over cells built for every task.
pub(super) fn table_lines(
    rows: &Rows<'_>,
    range: Range<usize>,
    refresh: &Refresh,
    state: &ViewState,
    width: usize,
) -> Vec<Line<'static>> {
    let cols = match rows {
        Rows::Single { view, rows } => single_columns(&rows[range.clone()], *view, refresh, state),
        Rows::Compare(rows) => compare_columns(&rows[range.clone()], refresh, state),
    };
    let layout = pick(&cols, width);
    let mut lines = vec![header_line(&cols, &layout, width)];
    if range.is_empty() {
        lines.push(empty_line(rows, refresh, state));
        return lines;
    }
    let exited: Vec<bool> = match rows {
        Rows::Single { rows, .. } => rows[range].iter().map(|r| r.exited).collect(),
        Rows::Compare(rows) => rows[range].iter().map(|j| j.label().exited).collect(),
    };
    let sep = " ".repeat(layout.sep);
    for (row, gone) in exited.into_iter().enumerate() {
        let mut spans = Vec::new();
        for (n, &(i, w)) in layout.kept.iter().enumerate() {
            let c = &cols[i];
            let cell = c.cells(layout.compact)[row].clone();
            if n + 1 == layout.kept.len() {
                spans.push(cell);
            } else {
                spans.push(pad(cell, w, c.right));
                spans.push(Span::raw(sep.clone()));
            }
        }
        let line = Line::from(spans);
        lines.push(if gone {
            line.style(Style::new().add_modifier(Modifier::DIM))
        } else {
            line
        });
    }
    lines
}

/// The column titles in reverse video across the whole width, the sort column's underlined.
fn header_line(cols: &[Col], layout: &Layout, width: usize) -> Line<'static> {
    let sep = " ".repeat(layout.sep);
    let header_style = Style::new().add_modifier(Modifier::REVERSED);
    let mut header = Vec::new();
    for (n, &(i, w)) in layout.kept.iter().enumerate() {
        let c = &cols[i];
        let text = if layout.long {
            c.long.clone()
        } else {
            c.short.clone()
        };
        let style = if c.sorted {
            header_style.add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            header_style
        };
        let last = n + 1 == layout.kept.len();
        let w = if last {
            width.saturating_sub(header.iter().map(Span::width).sum())
        } else {
            w
        };
        header.push(pad(Span::styled(text, style), w, c.right && !last));
        if !last {
            header.push(Span::styled(sep.clone(), header_style));
        }
    }
    Line::from(header)
}

/// No row on screen: none at all, or none that passes the filters.
fn empty_line(rows: &Rows<'_>, refresh: &Refresh, state: &ViewState) -> Line<'static> {
    let filtered = state.view.only
        || state.filter.is_some()
        || !state.view.uids.is_empty()
        || !state.view.containers.is_empty();
    let what = if refresh.containers {
        ("container", "containers")
    } else {
        ("task", "tasks")
    };
    let why = if rows.len() == 0 && filtered {
        format!("no {} matches the filters", what.0)
    } else {
        format!("no {}", what.1)
    };
    Line::styled(why, Style::new().fg(Color::DarkGray))
}
