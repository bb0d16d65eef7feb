//! JSON view: one object per refresh, one line each. The shape is a public interface
//! (documented in README.md): fields may be added, never renamed or removed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::lookup::Lookup;
use super::{join, Joined, UserNames, ViewOptions};
use crate::model::Row;
use crate::sample::Counters;
use crate::session::Snapshot;
use crate::source::Fallback;

/// One JSON line: a refresh as JSON shows it.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    interval_s: f64,
    source: String,
    fallbacks: Vec<FallbackOut>,
    lost_events: Option<u64>,
    tasks: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct FallbackOut {
    source: &'static str,
    error: String,
}

/// A task, a process (`-P`: no `tid`) or a container (`--group container`).
#[derive(Serialize)]
struct Entry<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
    /// Present for tasks and processes, null when unknown; absent for containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    /// With `-c`: the command line, as batch mode shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cmdline: Option<String>,
    container: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    exited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<&'a Counters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a Counters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by_source: Option<BTreeMap<&'static str, Option<Both<'a>>>>,
}

#[derive(Serialize)]
struct Both<'a> {
    total: &'a Counters,
    delta: &'a Counters,
}

fn both(r: &Row) -> Both<'_> {
    Both {
        total: &r.total,
        delta: &r.delta,
    }
}

fn entry<'a>(
    j: &'a Joined<'a>,
    snapshot: &Snapshot,
    view: &ViewOptions,
    users: &'a UserNames,
    cmdline: Option<String>,
) -> Entry<'a> {
    let label = j.label();
    let by_source = (snapshot.models.len() > 1).then(|| {
        snapshot
            .models
            .iter()
            .zip(&j.per_source)
            .map(|(sv, row)| (sv.kind.name(), row.map(both)))
            .collect()
    });
    let single = by_source.is_none();
    let task = !view.by_container;
    Entry {
        pid: task.then_some(j.pid),
        tid: j.tid.filter(|_| task),
        uid: task.then_some(label.uid),
        user: task.then(|| label.uid.and_then(|u| users.cached(u))),
        command: task.then_some(label.command.as_str()),
        cmdline: cmdline.filter(|_| task),
        container: label.container.as_deref(),
        processes: label.processes(),
        exited: label.exited,
        total: single.then_some(&label.total),
        delta: single.then_some(&label.delta),
        by_source,
    }
}

/// The line of one refresh.
pub fn render(
    snapshot: &Snapshot,
    view: &ViewOptions,
    fallbacks: &[Fallback],
    lookup: &mut Lookup,
) -> String {
    let rows = join(snapshot, view);
    let mut cmdlines = Vec::with_capacity(rows.len());
    for j in &rows {
        if let Some(uid) = j.label().uid {
            lookup.users.name(uid);
        }
        cmdlines.push(view.full_command.then(|| lookup.command_line(j.label())));
    }
    lookup.forget_unused();
    let users: &UserNames = &lookup.users;
    let refresh = Line {
        time: jiff::Timestamp::try_from(snapshot.time)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        interval_s: snapshot.interval_s(),
        source: snapshot
            .models
            .iter()
            .map(|v| v.kind.name())
            .collect::<Vec<_>>()
            .join(","),
        fallbacks: fallbacks
            .iter()
            .map(|f| FallbackOut {
                source: f.kind.name(),
                error: f.error.to_string(),
            })
            .collect(),
        lost_events: snapshot
            .models
            .iter()
            .filter_map(|v| v.model.lost_events)
            .reduce(|a, b| a + b),
        tasks: rows
            .iter()
            .zip(cmdlines)
            .map(|(j, cmdline)| entry(j, snapshot, view, users, cmdline))
            .collect(),
    };
    serde_json::to_string(&refresh).expect("a refresh serialises: only strings, numbers and maps")
}
