//! The lines above the table: totals per source, actual disk rates, the sort and modes, the
//! last refresh error, the sources in use, and why a shown column is unavailable.

use ratatui::style::{Modifier, Style};
use ratatui::text::Line;

use super::columns::scale;
use super::rows::{grouping, shown};
use super::text::{fit, format_compact, format_value, truncate, wrap, Scale};
use super::theme::Palette;
use crate::counter::{Counter, Unit};
use crate::sample::Counters;
use crate::session::SourceModel;
use crate::settings::{Amounts, GraphSource, HelpType};
use crate::view::batch::NA;
use crate::view::tui::sampler::Refresh;
use crate::view::tui::state::{Column, Grouping, Shown, ViewState};

pub(super) fn header_lines(
    refresh: Option<&Refresh>,
    state: &ViewState,
    width: usize,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let grouping = refresh.map_or(state.grouping(), grouping);
    match refresh {
        None => lines.push(Line::raw(fit(
            width,
            &[
                "Total DISK READ: … | Total DISK WRITE: …".into(),
                "…".into(),
            ],
        ))),
        Some(r) => {
            for (sv, totals) in r.snapshot.models.iter().zip(&r.totals) {
                lines.push(Line::raw(total_line(r, sv, totals, state, width)));
            }
            lines.push(Line::raw(actual_line(r, scale(state), width)));
        }
    }
    lines.push(Line::styled(
        info_line(refresh, state, grouping, width),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    let palette = Palette::of(state);
    if let Some(status) = &state.status {
        lines.extend(
            wrap(status, width, 2)
                .into_iter()
                .map(|l| Line::styled(l, palette.note())),
        );
    }
    if let Some(e) = &state.error {
        lines.push(Line::styled(
            truncate(&format!("refresh failed: {e}"), width),
            palette.error(),
        ));
    }
    let source = source_line(refresh, state, grouping);
    lines.extend(wrap(&source, width, 2).into_iter().map(Line::raw));
    lines.extend(
        refresh
            .map(|r| notes(r, state))
            .unwrap_or_default()
            .into_iter()
            .flat_map(|n| wrap(&n, width, 3))
            .take(3)
            .map(|n| Line::styled(n, palette.note())),
    );
    lines
}

/// One source's totals: disk and syscalls, and the events it lost.
fn total_line(
    refresh: &Refresh,
    sv: &SourceModel,
    totals: &Counters,
    state: &ViewState,
    width: usize,
) -> String {
    let (rate, kb) = (!refresh.accumulated, scale(state));
    let value = |c: Counter| match c.value(totals, sv.model.interval_s, refresh.accumulated) {
        // No task at all: nothing was done, if the source can measure it.
        None if sv.model.rows.is_empty() && state.sources.measures(sv.kind, c) => Some(0.0),
        v => v,
    };
    let v =
        |c: Counter| value(c).map_or_else(|| NA.into(), |v| format_value(c.unit(), v, rate, kb));
    let short =
        |c: Counter| value(c).map_or_else(|| NA.into(), |v| format_compact(c.unit(), v, rate, kb));
    let (dr, dw) = (v(Counter::ReadBytes), v(Counter::WriteBytes));
    let (cr, cw) = (short(Counter::ReadBytes), short(Counter::WriteBytes));
    let per = if rate { "/s" } else { "" };
    let (sr, sw) = (v(Counter::Syscr), v(Counter::Syscw));
    let label = if state.sources.compare() {
        format!("[{}] ", sv.kind)
    } else {
        String::new()
    };
    let lost = match sv.model.lost_events {
        Some(n) if n > 0 => format!(" | LOST EVENTS: {n}"),
        _ => String::new(),
    };
    fit(
        width,
        &[
            format!(
                "{label}Total DISK READ: {dr} | Total DISK WRITE: {dw} | READ SYSCALLS: {sr}{per} | \
                 WRITE SYSCALLS: {sw}{per}{lost}"
            ),
            format!("{label}Total DISK READ: {dr} | Total DISK WRITE: {dw}{lost}"),
            format!("{label}Total R: {dr} W: {dw}"),
            format!("{label}R {dr} W {dw}"),
            format!("{label}R {cr} W {cw}"),
        ],
    )
}

/// What the disks did, from /proc/vmstat: always a rate.
fn actual_line(refresh: &Refresh, kb: Scale, width: usize) -> String {
    let actual = |f: fn(Unit, f64, bool, Scale) -> String| match refresh.actual {
        Some(a) => (
            f(Unit::Bytes, a.read_bytes_per_s, true, kb),
            f(Unit::Bytes, a.write_bytes_per_s, true, kb),
        ),
        None => (NA.to_string(), NA.to_string()),
    };
    let (ar, aw) = actual(format_value);
    let (cr, cw) = actual(format_compact);
    fit(
        width,
        &[
            format!("Actual DISK READ: {ar} | Actual DISK WRITE: {aw}"),
            format!("Actual R: {ar} W: {aw}"),
            format!("Act R {ar} W {aw}"),
            format!("Act R {cr} W {cw}"),
        ],
    )
}

/// The sources in use, and in compare mode what the table compares.
fn source_line(refresh: Option<&Refresh>, state: &ViewState, grouping: Grouping) -> String {
    let mut source = state.sources.line.clone();
    if refresh.is_some_and(|r| shown(r, state) == Shown::Compare) {
        let kinds = &state.sources.kinds;
        if let (Some(first), Some(last)) = (kinds.first(), kinds.last()) {
            source.push_str(&format!(
                " | compare {} per source, DIFF = {last} - {first}",
                Column::Counter(state.focus()).name(grouping)
            ));
        }
    }
    source
}

/// Sort, modes and filters: the state the keys change.
fn info_line(
    refresh: Option<&Refresh>,
    state: &ViewState,
    grouping: Grouping,
    width: usize,
) -> String {
    let arrow = if state.descending() { "▼" } else { "▲" };
    let sort = state.sort.name(grouping);
    let mut parts = vec![format!("sort: {sort} {arrow}")];
    parts.push(
        match state.grouping() {
            Grouping::Threads => "threads",
            Grouping::Processes => "processes",
            Grouping::Containers => "containers (v: threads)",
        }
        .into(),
    );
    if state.view.only {
        parts.push("only active".into());
    }
    match state.settings.amounts {
        Amounts::Current => {}
        Amounts::Accumulated => parts.push("accumulated".into()),
        Amounts::AverageSinceStart => parts.push("average since start".into()),
    }
    if state.settings.hide_exited {
        parts.push("exited hidden".into());
    }
    if state.settings.full_command {
        parts.push("command lines".into());
    }
    if state.settings.graph != GraphSource::SortColumn {
        parts.push(format!("graph: {}", state.settings.graph));
    }
    if state.settings.si {
        parts.push("SI units".into());
    }
    if state.frozen {
        parts.push(format!("FROZEN ({} behind)", state.behind));
    }
    if let Some(re) = &state.filter {
        parts.push(format!("filter: /{}/", re.as_str()));
    }
    if let Some(u) = &state.user_label {
        parts.push(format!("user: {u}"));
    }
    if !state.pids.is_empty() {
        let pids: Vec<String> = state.pids.iter().map(u32::to_string).collect();
        parts.push(format!("pid: {}", pids.join(",")));
    }
    if let Some(r) = refresh {
        match shown(r, state) {
            Shown::Compare => parts.push("compare (Tab: next)".into()),
            Shown::Source(i) if state.sources.compare() => {
                if let Some(kind) = state.sources.kinds.get(i) {
                    parts.push(format!("showing {kind} (Tab: next)"));
                }
            }
            Shown::Source(_) => {}
        }
    }
    if let Some(replay) = &state.replay {
        parts.insert(1, replay.label(refresh.map(|r| r.snapshot.time)));
    }
    if state.settings.help != HelpType::None {
        parts.push("? help".into());
    }
    let compact: Vec<String> = std::iter::once(format!("sort {sort}{arrow}"))
        .chain(parts[1..].iter().cloned())
        .collect();
    fit(width, &[parts.join(" | "), compact.join(" ")])
}

/// One line per reason a shown counter is unavailable, with the fix the source suggests.
fn notes(refresh: &Refresh, state: &ViewState) -> Vec<String> {
    let shown = shown(refresh, state);
    let counters: Vec<Counter> = match shown {
        Shown::Compare => vec![state.focus()],
        Shown::Source(_) => Counter::TABLE
            .iter()
            .copied()
            .filter(|&c| state.shows_column(Column::Counter(c)))
            .collect(),
    };
    let compare = state.sources.compare();
    let grouping = grouping(refresh);
    state
        .sources
        .unavailable
        .iter()
        .enumerate()
        .filter(|(_, (kind, _))| match shown {
            Shown::Compare => true,
            Shown::Source(i) => state.sources.kinds.get(i) == Some(kind),
        })
        .filter_map(|(_, (kind, u))| {
            let names: Vec<_> = counters
                .iter()
                .filter(|c| u.counters.contains(c))
                .map(|&c| Column::Counter(c).headers(grouping, refresh.accumulated).0)
                .collect();
            if names.is_empty() {
                return None;
            }
            let label = if compare {
                format!("[{kind}] ")
            } else {
                String::new()
            };
            Some(format!("{label}{} n/a: {}", names.join(", "), u.reason))
        })
        .collect()
}
