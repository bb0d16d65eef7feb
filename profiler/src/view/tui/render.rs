//! Drawing: a pure function of the last refresh and the view state. Nothing here reads the
//! kernel or the clock; user names and I/O priorities were looked up before, by the event
//! loop and the sampler. Columns that do not fit are dropped by priority, never squeezed.

use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::sampler::Refresh;
use super::state::{Column, Geometry, Grouping, InputKind, Shown, ViewState, HISTORY_LEN};
use crate::container::HOST;
use crate::counter::{Counter, Unit};
use crate::model::Row;
use crate::view::batch::NA;
use crate::view::{human_bytes, join, Joined, ViewOptions};

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
        let label = match input.kind {
            InputKind::Command => "filter command or container (regex): ",
            InputKind::User => "filter user (names or uids; empty: all): ",
        };
        let mut spans = vec![
            Span::styled(label, Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(input.text.clone()),
        ];
        if let Some(e) = &input.error {
            spans.push(Span::styled(format!("  {e}"), Style::new().fg(Color::Red)));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), at);
        let x = (label.chars().count() + input.text.chars().count())
            .min(usize::from(at.width.saturating_sub(1)));
        frame.set_cursor_position(Position {
            x: at.x + x as u16,
            y: at.y,
        });
    }
    if state.help {
        draw_help(frame, state);
    }
    laid_out
}

/// The first of `variants` that fits in `width`, else the last one cut.
fn fit(width: usize, variants: &[String]) -> String {
    variants
        .iter()
        .find(|v| v.chars().count() <= width)
        .cloned()
        .unwrap_or_else(|| truncate(variants.last().map_or("", String::as_str), width))
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        out.push('…');
    }
    out
}

/// Greedy word wrap into at most `max_lines`; an overflowing last line ends in `…`.
fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let needed = if cur.is_empty() {
            word.chars().count()
        } else {
            cur.chars().count() + 1 + word.chars().count()
        };
        if needed > width && !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
        while cur.chars().count() > width {
            let rest: String = cur.chars().skip(width).collect();
            lines.push(cur.chars().take(width).collect());
            cur = rest;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = truncate(&format!("{last} …"), width);
        }
    }
    lines
}

/// A byte amount or rate, a count, or a share of the interval, as the cells show it.
pub fn format_value(unit: Unit, v: f64, rate: bool, kilobytes: bool) -> String {
    match unit {
        Unit::Bytes => format!(
            "{}{}",
            human_bytes(v, kilobytes),
            if rate { "/s" } else { "" }
        ),
        Unit::Nanoseconds => format!("{:.2} %", v.min(99.99)),
        Unit::Calls => format!("{v:.0}"),
    }
}

/// Three significant digits at most, for terminals too narrow for [`format_value`].
pub fn format_compact(unit: Unit, v: f64, rate: bool, kilobytes: bool) -> String {
    match unit {
        Unit::Bytes => {
            let units = ["B", "K", "M", "G", "T"];
            let (mut v, mut at) = (v, 0);
            // With -k, always K: never B, never above.
            while at < units.len() - 1 && if kilobytes { at == 0 } else { v >= 1000.0 } {
                v /= 1024.0;
                at += 1;
            }
            let digits = if v < 10.0 && v != 0.0 { 1 } else { 0 };
            format!("{v:.digits$}{}{}", units[at], if rate { "/s" } else { "" })
        }
        Unit::Nanoseconds => format!("{:.0}%", v.min(99.99)),
        Unit::Calls => format!("{v:.0}"),
    }
}

/// A difference between sources, signed.
fn format_diff(unit: Unit, d: f64, rate: bool, kilobytes: bool) -> String {
    let sign = if d < 0.0 { '-' } else { '+' };
    match unit {
        Unit::Bytes => format!("{sign}{}", format_value(unit, d.abs(), rate, kilobytes)),
        Unit::Nanoseconds => format!("{sign}{:.2} %", d.abs()),
        Unit::Calls => format!("{sign}{:.0}", d.abs()),
    }
}

fn header_lines(refresh: Option<&Refresh>, state: &ViewState, width: usize) -> Vec<Line<'static>> {
    let kb = state.view.kilobytes;
    let mut lines = Vec::new();
    let compare = state.sources.compare();
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
            let rate = !r.accumulated;
            for (sv, t) in r.snapshot.models.iter().zip(&r.totals) {
                let interval = sv.model.interval_s;
                let value = |c: Counter| match c.value(t, interval, r.accumulated) {
                    // No task at all: nothing was done, if the source can measure it.
                    None if sv.model.rows.is_empty() && state.sources.measures(sv.kind, c) => {
                        Some(0.0)
                    }
                    v => v,
                };
                let v = |c: Counter| {
                    value(c).map_or_else(|| NA.into(), |v| format_value(c.unit(), v, rate, kb))
                };
                let short = |c: Counter| {
                    value(c).map_or_else(|| NA.into(), |v| format_compact(c.unit(), v, rate, kb))
                };
                let (dr, dw) = (v(Counter::ReadBytes), v(Counter::WriteBytes));
                let (cr, cw) = (short(Counter::ReadBytes), short(Counter::WriteBytes));
                let per = if rate { "/s" } else { "" };
                let (sr, sw) = (v(Counter::Syscr), v(Counter::Syscw));
                let label = if compare {
                    format!("[{}] ", sv.kind)
                } else {
                    String::new()
                };
                let lost = match sv.model.lost_events {
                    Some(n) if n > 0 => format!(" | LOST EVENTS: {n}"),
                    _ => String::new(),
                };
                lines.push(Line::raw(fit(
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
                )));
            }
            let actual = |f: fn(f64, bool, bool) -> String| match r.actual {
                Some(a) => (
                    f(a.read_bytes_per_s, true, kb),
                    f(a.write_bytes_per_s, true, kb),
                ),
                None => (NA.to_string(), NA.to_string()),
            };
            let (ar, aw) = actual(|v, rate, kb| format_value(Unit::Bytes, v, rate, kb));
            let (cr, cw) = actual(|v, rate, kb| format_compact(Unit::Bytes, v, rate, kb));
            lines.push(Line::raw(fit(
                width,
                &[
                    format!("Actual DISK READ: {ar} | Actual DISK WRITE: {aw}"),
                    format!("Actual R: {ar} W: {aw}"),
                    format!("Act R {ar} W {aw}"),
                    format!("Act R {cr} W {cw}"),
                ],
            )));
        }
    }
    lines.push(Line::styled(
        info_line(refresh, state, grouping, width),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    if let Some(e) = &state.error {
        lines.push(Line::styled(
            truncate(&format!("refresh failed: {e}"), width),
            Style::new().fg(Color::Red),
        ));
    }
    let mut source = state.sources.line.clone();
    if let Some(r) = refresh {
        if shown(r, state) == Shown::Compare {
            let kinds = &state.sources.kinds;
            if let (Some(first), Some(last)) = (kinds.first(), kinds.last()) {
                source.push_str(&format!(
                    " | compare {} per source, DIFF = {last} - {first}",
                    Column::Counter(state.focus()).name(grouping)
                ));
            }
        }
    }
    lines.extend(wrap(&source, width, 2).into_iter().map(Line::raw));
    let notes: Vec<String> = refresh
        .map(|r| notes(r, state))
        .unwrap_or_default()
        .into_iter()
        .flat_map(|n| wrap(&n, width, 3))
        .collect();
    let shown_notes = notes.len().min(3);
    lines.extend(
        notes
            .into_iter()
            .take(shown_notes)
            .map(|n| Line::styled(n, Style::new().fg(Color::Yellow))),
    );
    lines
}

/// What the rows of a refresh are.
fn grouping(refresh: &Refresh) -> Grouping {
    Grouping::of(refresh.processes, refresh.containers)
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
            Grouping::Containers => "containers (c: tasks)",
        }
        .into(),
    );
    if state.view.only {
        parts.push("only active".into());
    }
    if state.view.accumulated {
        parts.push("accumulated".into());
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
    if let Some(r) = refresh {
        match shown(r, state) {
            Shown::Compare => parts.push("compare (s: next)".into()),
            Shown::Source(i) if state.sources.compare() => {
                if let Some(kind) = state.sources.kinds.get(i) {
                    parts.push(format!("showing {kind} (s: next)"));
                }
            }
            Shown::Source(_) => {}
        }
    }
    if let Some(replay) = &state.replay {
        parts.insert(1, replay.label(refresh.map(|r| r.snapshot.time)));
    }
    parts.push("? help".into());
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
            .filter(|&c| state.char_columns || !c.spec().on_request)
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

/// A column of the table for the rows on screen.
struct Col {
    long: String,
    short: String,
    right: bool,
    cells: Vec<Span<'static>>,
    /// Shorter cells for narrow terminals; empty when the cells are short already.
    compact: Vec<Span<'static>>,
    /// Lower is kept first when the terminal is narrow; the id and the command always stay.
    priority: u8,
    /// Width the column keeps in the wide layout whatever its cells, so it does not jitter.
    min_long: usize,
    sorted: bool,
}

const PRIORITY_ALWAYS: u8 = 0;
const PRIORITY_LAST: u8 = u8::MAX;

fn na() -> Span<'static> {
    Span::styled(NA, Style::new().fg(Color::DarkGray))
}

/// No row for the task in that source.
fn dash() -> Span<'static> {
    Span::styled("-", Style::new().fg(Color::DarkGray))
}

/// Widest a container label gets in the CONTAINER column: `docker:` and a 12-digit id fit;
/// longer labels (kubernetes pod/container, cgroup paths) end in `…`. The per-container view
/// shows them whole.
const CONTAINER_WIDTH: usize = 20;

fn container_cell(row: &Row) -> Span<'static> {
    match &row.container {
        Some(label) => Span::raw(truncate(label, CONTAINER_WIDTH)),
        None => Span::styled("?", Style::new().fg(Color::DarkGray)),
    }
}

/// How much the CONTAINER column tells about `rows`: nothing without labels (a kernel without
/// cgroups), so it is left out unless sorted by; little when all are `host`, so it is the first
/// column dropped, rather than push the priority or the syscalls off a host's terminal.
fn container_priority<'r>(rows: impl Iterator<Item = &'r Row>, sorted: bool) -> Option<u8> {
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
fn widen_header(col: &mut Col) {
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

fn single_columns(rows: &[&Row], view: usize, refresh: &Refresh, state: &ViewState) -> Vec<Col> {
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

fn compare_columns(rows: &[Joined<'_>], refresh: &Refresh, state: &ViewState) -> Vec<Col> {
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

fn table_lines(
    screen: &Screen<'_>,
    refresh: &Refresh,
    state: &ViewState,
    width: usize,
) -> Vec<Line<'static>> {
    let range = screen.on_screen();
    let cols = match &screen.rows {
        Rows::Single { view, rows } => single_columns(&rows[range.clone()], *view, refresh, state),
        Rows::Compare(rows) => compare_columns(&rows[range.clone()], refresh, state),
    };
    let layout = pick(&cols, width);
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
    let mut lines = vec![Line::from(header)];
    if range.is_empty() {
        let filtered = state.view.only
            || state.filter.is_some()
            || !state.view.uids.is_empty()
            || !state.view.containers.is_empty();
        let what = if refresh.containers {
            ("container", "containers")
        } else {
            ("task", "tasks")
        };
        let why = if screen.rows.len() == 0 && filtered {
            format!("no {} matches the filters", what.0)
        } else {
            format!("no {}", what.1)
        };
        lines.push(Line::styled(why, Style::new().fg(Color::DarkGray)));
        return lines;
    }
    let exited: Vec<bool> = match &screen.rows {
        Rows::Single { rows, .. } => rows[range].iter().map(|r| r.exited).collect(),
        Rows::Compare(rows) => rows[range].iter().map(|j| j.label().exited).collect(),
    };
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

const HELP: &[(&str, &str)] = &[
    ("left/right", "sort by the previous / next column"),
    ("r", "reverse the sort order"),
    ("o", "only tasks doing I/O"),
    ("p", "processes / threads (from the next refresh)"),
    ("a", "accumulated since start / per second"),
    (
        "c",
        "one row per container / per task (from the next refresh)",
    ),
    ("x", "RCHAR and WCHAR columns"),
    (
        "/",
        "filter commands or containers by regex (Enter keeps, Esc cancels)",
    ),
    ("u", "filter by user: names or uids, empty for all"),
    ("Esc", "clear the command and user filters"),
    ("f", "freeze the display; sampling goes on"),
    ("s", "compare mode: next source, or all side by side"),
    ("up/down", "scroll; also PgUp, PgDn, Home, End"),
    ("t / T", "replay: one interval back / forward"),
    ("g", "replay: go to a time (03:00, -1h, 2026-12-02T03:00)"),
    ("? h", "this help (any key closes it)"),
    ("q", "quit"),
];

fn draw_help(frame: &mut Frame<'_>, state: &ViewState) {
    let area = frame.area();
    let w = area.width.min(100);
    let inner = usize::from(w.saturating_sub(2));
    let keys = HELP.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut lines: Vec<Line<'static>> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!(" {k:<keys$}  "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    let mut text = vec![
        String::new(),
        "IO> and SWAPIN: share of the interval spent waiting for block I/O and swap-in.".to_string(),
        "RCHAR, WCHAR: bytes through read and write calls, page cache included.".to_string(),
        "CONTAINER: docker:ID, podman:ID, k8s:POD/CONTAINER, lxc:NAME, a systemd unit, a cgroup path, or host; PROCS: its processes.".to_string(),
        format!("HISTORY: the last {HISTORY_LEN} refreshes of the sort column (DISK WRITE if it has none)."),
        String::new(),
        state.sources.line.clone(),
    ];
    let reasons = state
        .sources
        .unavailable
        .iter()
        .map(|(kind, u)| format!("{kind}: {} unavailable: {}", u.counter_names(), u.reason));
    text.extend(reasons);
    for t in text {
        lines.extend(wrap(&t, inner, usize::MAX).into_iter().map(Line::raw));
        if t.is_empty() {
            lines.push(Line::raw(""));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let at = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, at);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" keys ")),
        at,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_and_wrap() {
        assert_eq!(fit(10, &["long variant".into(), "short".into()]), "short");
        assert_eq!(fit(3, &["long variant".into(), "short".into()]), "sh…");
        assert_eq!(wrap("a bb ccc dddd", 6, 5), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("a bb ccc dddd", 6, 2), ["a bb", "ccc …"]);
        assert_eq!(wrap("abcdefgh", 3, 5), ["abc", "def", "gh"]);
    }

    #[test]
    fn sparkline_scales_to_the_peak() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0]), "     ▃▅█");
        assert_eq!(sparkline(&[f32::NAN, 0.0]), "        ");
        assert_eq!(sparkline(&[]).chars().count(), HISTORY_LEN);
    }

    #[test]
    fn values_format_like_the_batch_view() {
        assert_eq!(format_value(Unit::Bytes, 1536.0, true, false), "1.50 K/s");
        assert_eq!(format_value(Unit::Bytes, 1536.0, false, true), "1.50 K");
        assert_eq!(
            format_value(Unit::Nanoseconds, 150.0, true, false),
            "99.99 %"
        );
        assert_eq!(format_value(Unit::Calls, 12.4, true, false), "12");
        assert_eq!(format_diff(Unit::Bytes, -2048.0, true, false), "-2.00 K/s");
        assert_eq!(format_diff(Unit::Calls, 3.0, true, false), "+3");
        assert_eq!(format_compact(Unit::Bytes, 0.0, true, false), "0B/s");
        assert_eq!(format_compact(Unit::Bytes, 1536.0, true, false), "1.5K/s");
        assert_eq!(
            format_compact(Unit::Bytes, 700.0 * 1048576.0, true, false),
            "700M/s"
        );
        assert_eq!(
            format_compact(Unit::Bytes, 3.0 * 1048576.0, false, true),
            "3072K"
        );
        assert_eq!(format_compact(Unit::Nanoseconds, 12.4, true, false), "12%");
    }
}
