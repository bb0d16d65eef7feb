//! Batch view: text lines per refresh, close to `iotop -b`, with syscall columns.
//! Pure: returns the lines; the caller prints them.

use std::fmt::Write;

use super::{human_bytes, join, Joined, UserNames, ViewOptions};
use crate::model::Row;
use crate::sample::Counters;
use crate::session::Snapshot;

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
        format!("{}{suffix}", human_bytes(per, view.kilobytes))
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

/// The lines of one refresh.
pub fn render(
    snapshot: &Snapshot,
    view: &ViewOptions,
    opts: &BatchOptions,
    users: &mut UserNames,
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
            lines.push(format!(
                "{prefix}{id:>7}  {:<8} {:<10} {:>12} {:>12} {:>12} {:>12} {:>8} {:>8}  {name}",
                "USER", "SOURCE", "DISK READ", "DISK WRITE", "RCHAR", "WCHAR", "SYSCR", "SYSCW"
            ));
        }
        for j in join(snapshot, view) {
            compare_lines(&mut lines, &prefix, &j, snapshot, users);
        }
        return lines;
    }
    if show_columns {
        lines.push(format!(
            "{prefix}{id:>7}  {:<8} {:>12} {:>12} {:>8} {:>8} {:>12} {:>12} {:>9} {:>9}  {name}",
            "USER", "DISK READ", "DISK WRITE", "SWAPIN", "IO>", "READ", "WRITE", "SYSCR", "SYSCW"
        ));
    }
    for j in join(snapshot, view) {
        let r = j.label();
        lines.push(format!(
            "{prefix}{:>7}  {:<8} {:>12} {:>12} {:>8} {:>8} {:>12} {:>12} {:>9} {:>9}  {}{}",
            r.id(),
            user(r, users),
            amount(r.delta.read_bytes, interval, view, true),
            amount(r.delta.write_bytes, interval, view, true),
            percent(r.delta.swapin_delay_ns, interval),
            percent(r.delta.blkio_delay_ns, interval),
            amount(r.delta.rchar, interval, view, true),
            amount(r.delta.wchar, interval, view, true),
            amount(r.delta.syscr, interval, view, false),
            amount(r.delta.syscw, interval, view, false),
            r.name(),
            if r.exited { " <exited>" } else { "" },
        ));
    }
    lines
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
    let pick = |c: &Counters| {
        [
            c.read_bytes,
            c.write_bytes,
            c.rchar,
            c.wchar,
            c.syscr,
            c.syscw,
        ]
    };
    for (i, sv) in snapshot.models.iter().enumerate() {
        let vals = j.per_source[i].map(|r| pick(&r.delta));
        let cell = |k: usize| vals.map_or_else(|| "-".to_string(), |v| exact(v[k]));
        let (shown_id, shown_user, cmd) = if i == 0 {
            (id.to_string(), user.clone(), label.name())
        } else {
            (String::new(), String::new(), "")
        };
        lines.push(format!(
            "{prefix}{shown_id:>7}  {shown_user:<8} {:<10} {:>12} {:>12} {:>12} {:>12} {:>8} {:>8}  {cmd}",
            sv.kind.name(),
            cell(0),
            cell(1),
            cell(2),
            cell(3),
            cell(4),
            cell(5)
        ));
    }
    let first = j
        .per_source
        .first()
        .copied()
        .flatten()
        .map(|r| pick(&r.delta));
    let last = j
        .per_source
        .last()
        .copied()
        .flatten()
        .map(|r| pick(&r.delta));
    let d = |k: usize| match (first, last) {
        (Some(a), Some(b)) => diff(a[k], b[k]),
        _ => "-".into(),
    };
    lines.push(format!(
        "{prefix}{:>7}  {:<8} {:<10} {:>12} {:>12} {:>12} {:>12} {:>8} {:>8}",
        "",
        "",
        "diff",
        d(0),
        d(1),
        d(2),
        d(3),
        d(4),
        d(5)
    ));
}
