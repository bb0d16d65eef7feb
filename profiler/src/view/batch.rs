//! Batch view: text lines per refresh, close to `iotop -b`, with syscall columns.
//! Pure: returns the lines; the caller prints them.

use std::fmt::Write;

use super::lookup::Lookup;
use super::{join, scaled_bytes, Joined, UserNames, ViewOptions};
use crate::counter::{Counter, Unit};
use crate::model::Row;
use crate::session::Snapshot;
use crate::settings::Column;

pub const NA: &str = "n/a";

/// Header options of batch mode (`-t`, `-q`).
#[derive(Clone, Debug, Default)]
pub struct BatchOptions {
    pub time_prefix: bool,
    /// iotop's levels: 1, column names in the first refresh only; 2, never; 3, no totals either.
    pub quiet: u8,
    pub processes: bool,
}

fn amount(v: Option<u64>, interval_s: f64, view: &ViewOptions, bytes: bool) -> String {
    let Some(v) = v else { return NA.into() };
    let per = if view.accumulated || interval_s <= 0.0 {
        v as f64
    } else {
        v as f64 / interval_s
    };
    let suffix = if view.accumulated { "" } else { "/s" };
    if bytes {
        format!("{}{suffix}", scaled_bytes(per, view.kilobytes, view.units))
    } else {
        format!("{per:.0}{suffix}")
    }
}

/// Share of the interval spent waiting, as iotop's SWAPIN and IO> columns.
fn percent(delay_ns: Option<u64>, interval_s: f64) -> String {
    match delay_ns {
        Some(ns) if interval_s > 0.0 => {
            format!("{:.2} %", (ns as f64 / 1e9 / interval_s * 100.0).min(99.99))
        }
        Some(_) => "0.00 %".into(),
        None => NA.into(),
    }
}

fn time_prefix(snapshot: &Snapshot, opts: &BatchOptions) -> String {
    if !opts.time_prefix {
        return String::new();
    }
    let ts = jiff::Timestamp::try_from(snapshot.time).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!(
        "{} ",
        ts.to_zoned(jiff::tz::TimeZone::system())
            .strftime("%H:%M:%S")
    )
}

/// Whether batch mode shows a column: all by default, PRIO included where iotop prints it, so
/// that scripts reading iotop's columns by position read the same ones here.
fn shows(view: &ViewOptions, column: Column) -> bool {
    view.shows_column(column, true)
}

/// The counter columns shown, left to right.
fn counters(view: &ViewOptions) -> impl Iterator<Item = Counter> + '_ {
    Counter::BATCH
        .iter()
        .copied()
        .filter(|&c| Column::of_counter(c).is_none_or(|col| shows(view, col)))
}

/// Appends a cell, after `sep` unless it is the line's first.
fn push(line: &mut String, sep: &str, cell: std::fmt::Arguments<'_>) {
    if !line.is_empty() {
        line.push_str(sep);
    }
    let _ = line.write_fmt(cell);
}

/// The lines of one refresh. `lookup` is asked only about the rows shown, and only for what
/// the options show (a command line with `-c`, a priority with PRIO shown).
pub fn render(
    snapshot: &Snapshot,
    view: &ViewOptions,
    opts: &BatchOptions,
    lookup: &mut Lookup,
    first: bool,
) -> Vec<String> {
    let prefix = time_prefix(snapshot, opts);
    let interval = snapshot.interval_s();
    let mut lines = Vec::new();
    let compare = snapshot.models.len() > 1;
    if opts.quiet < 3 {
        for sv in &snapshot.models {
            let t = sv.model.total_delta();
            let label = if compare {
                format!("[{}] ", sv.kind)
            } else {
                String::new()
            };
            let mut line = format!(
                "{prefix}{label}Total DISK READ: {} | Total DISK WRITE: {} | READ SYSCALLS: {} | WRITE SYSCALLS: {}",
                amount(t.read_bytes, interval, view, true),
                amount(t.write_bytes, interval, view, true),
                amount(t.syscr, interval, view, false),
                amount(t.syscw, interval, view, false),
            );
            if let Some(lost) = sv.model.lost_events.filter(|&l| l > 0) {
                let _ = write!(line, " | LOST EVENTS: {lost}");
            }
            lines.push(line);
        }
    }
    let id = match (view.by_container, opts.processes) {
        (true, _) => "PROCS",
        (false, true) => "PID",
        (false, false) => "TID",
    };
    let name = if view.by_container {
        "CONTAINER"
    } else {
        "COMMAND"
    };
    let show_columns = opts.quiet == 0 || (opts.quiet == 1 && first);
    if compare {
        if show_columns {
            let mut line = format!("{prefix}{id:>7}  {:<8} {:<10}", "USER", "SOURCE");
            for &c in Counter::COMPARE {
                let w = compare_width(c);
                // The long title where it fits the narrower compare columns.
                let spec = c.spec();
                let title = if spec.title.len() <= w {
                    spec.title
                } else {
                    spec.short
                };
                let _ = write!(line, " {title:>w$}");
            }
            let _ = write!(line, "  {name}");
            lines.push(line);
        }
        for j in join(snapshot, view) {
            compare_lines(&mut lines, &prefix, &j, snapshot, &mut lookup.users);
        }
        return lines;
    }
    // Container rows have no priority.
    let prio = shows(view, Column::Prio) && !view.by_container;
    if show_columns {
        let mut line = String::new();
        if shows(view, Column::Pid) {
            push(&mut line, "", format_args!("{id:>7}"));
        }
        if prio {
            push(&mut line, "  ", format_args!("{:<4}", "PRIO"));
        }
        if shows(view, Column::User) {
            push(&mut line, "  ", format_args!("{:<8}", "USER"));
        }
        for c in counters(view) {
            push(
                &mut line,
                " ",
                format_args!("{:>w$}", c.spec().batch_title, w = width(c)),
            );
        }
        if shows(view, Column::Command) {
            push(&mut line, "  ", format_args!("{name}"));
        }
        lines.push(format!("{prefix}{line}"));
    }
    for j in join(snapshot, view) {
        let r = j.label();
        let mut line = String::new();
        if shows(view, Column::Pid) {
            push(&mut line, "", format_args!("{:>7}", r.id()));
        }
        if prio {
            let p = lookup
                .io_priority(r)
                .map_or_else(|| NA.to_string(), |p| p.to_string());
            push(&mut line, "  ", format_args!("{p:<4}"));
        }
        if shows(view, Column::User) {
            push(
                &mut line,
                "  ",
                format_args!("{:<8}", user(r, &mut lookup.users)),
            );
        }
        for c in counters(view) {
            let v = r.delta.get(c);
            let cell = match c.unit() {
                Unit::Bytes => amount(v, interval, view, true),
                Unit::Calls => amount(v, interval, view, false),
                Unit::Nanoseconds => percent(v, interval),
            };
            push(&mut line, " ", format_args!("{cell:>w$}", w = width(c)));
        }
        if shows(view, Column::Command) {
            let exited = if r.exited { " <exited>" } else { "" };
            let command = if view.full_command {
                lookup.command_line(r)
            } else {
                r.name().to_string()
            };
            push(&mut line, "  ", format_args!("{command}{exited}"));
        }
        lines.push(format!("{prefix}{line}"));
    }
    lookup.forget_unused();
    lines
}

/// Column width in the per-task table, as `iotop -b` lays it out.
fn width(c: Counter) -> usize {
    match c.unit() {
        Unit::Bytes => 12,
        Unit::Calls => 9,
        Unit::Nanoseconds => 8,
    }
}

/// Column width when sources are compared: exact numbers, calls narrower.
fn compare_width(c: Counter) -> usize {
    match c.unit() {
        Unit::Bytes => 12,
        Unit::Calls | Unit::Nanoseconds => 8,
    }
}

fn user(r: &Row, users: &mut UserNames) -> String {
    let mut name = r
        .uid
        .map_or_else(|| NA.to_string(), |u| users.name(u).to_string());
    name.truncate(8);
    name
}

fn exact(v: Option<u64>) -> String {
    v.map_or_else(|| NA.into(), |v| v.to_string())
}

/// Difference of the last source from the first: what the fallback would get wrong.
fn diff(a: Option<u64>, b: Option<u64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+}", b as i128 - a as i128),
        _ => NA.into(),
    }
}

fn compare_lines(
    lines: &mut Vec<String>,
    prefix: &str,
    j: &Joined<'_>,
    snapshot: &Snapshot,
    users: &mut UserNames,
) {
    let label = j.label();
    let id = label.id();
    let user = user(label, users);
    // The compare columns, each cell from `f`.
    let cells = |f: &dyn Fn(Counter) -> String| {
        let mut out = String::new();
        for &c in Counter::COMPARE {
            let _ = write!(out, " {:>w$}", f(c), w = compare_width(c));
        }
        out
    };
    for (i, sv) in snapshot.models.iter().enumerate() {
        let (shown_id, shown_user, cmd) = if i == 0 {
            (id.to_string(), user.clone(), label.name())
        } else {
            (String::new(), String::new(), "")
        };
        let row = j.per_source[i];
        let values = cells(&|c| row.map_or_else(|| "-".to_string(), |r| exact(r.delta.get(c))));
        lines.push(format!(
            "{prefix}{shown_id:>7}  {shown_user:<8} {:<10}{values}  {cmd}",
            sv.kind.name(),
        ));
    }
    let first = j.per_source.first().copied().flatten();
    let last = j.per_source.last().copied().flatten();
    let diffs = cells(&|c| match (first, last) {
        (Some(a), Some(b)) => diff(a.delta.get(c), b.delta.get(c)),
        _ => "-".into(),
    });
    lines.push(format!(
        "{prefix}{:>7}  {:<8} {:<10}{diffs}",
        "", "", "diff"
    ));
}
