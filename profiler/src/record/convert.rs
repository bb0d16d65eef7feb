//! The only code that knows the shape of `Sample`, `TaskSample`, `Counters` and
//! `Unavailable`: the rest of `record` works on `Record` and `Header`, and counters by name.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::block::{Labels, Record, TaskRecord};
use super::format::{Header, UnavailableCounters};
use crate::sample::{Counters, Sample, TaskSample, COUNTER_NAMES};
use crate::source::{IoSource, Unavailable};

/// A sample as the file stores it; `anchor` is the instant monotonic stamps count from, and
/// `fields[i]` is where the file's counter `i` is in `COUNTER_NAMES` (see `fields`).
pub fn record_from_sample(s: &Sample, anchor: Instant, fields: &[Option<usize>]) -> Record {
    Record {
        wall_ns: s
            .wall_time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        mono_ns: s.taken_at.saturating_duration_since(anchor).as_nanos() as u64,
        lost_events: s.lost_events,
        skipped_tasks: s.skipped_tasks,
        denied_tasks: s.denied_tasks,
        tasks: s
            .tasks
            .iter()
            .map(|t| TaskRecord {
                labels: Labels {
                    tid: t.tid,
                    pid: t.pid,
                    uid: t.uid,
                    command: t.command.clone(),
                    start_time: t.start_time,
                    cgroup_id: t.cgroup_id,
                },
                values: {
                    let v = t.counters.values();
                    fields.iter().map(|f| f.and_then(|f| v[f])).collect()
                },
                exited: t.exited,
            })
            .collect(),
    }
}

/// A stored sample back; `columns[i]` is where the file keeps counter `COUNTER_NAMES[i]`.
pub fn sample_from_record(r: Record, columns: &[Option<usize>], anchor: Instant) -> Sample {
    let tasks = r
        .tasks
        .into_iter()
        .map(|t| TaskSample {
            tid: t.labels.tid,
            pid: t.labels.pid,
            uid: t.labels.uid,
            command: t.labels.command,
            start_time: t.labels.start_time,
            cgroup_id: t.labels.cgroup_id,
            counters: Counters::from_values(std::array::from_fn(|i| {
                columns[i].and_then(|c| t.values[c])
            })),
            exited: t.exited,
        })
        .collect();
    Sample {
        taken_at: anchor + Duration::from_nanos(r.mono_ns),
        wall_time: UNIX_EPOCH + Duration::from_nanos(r.wall_ns),
        tasks,
        lost_events: r.lost_events,
        skipped_tasks: r.skipped_tasks,
        denied_tasks: r.denied_tasks,
    }
}

/// The counters this build records, in record order.
pub fn counter_names() -> Vec<String> {
    COUNTER_NAMES.iter().map(|n| n.to_string()).collect()
}

/// For each counter this build knows, where a file with these counter names keeps it.
pub fn columns(file_counters: &[String]) -> Vec<Option<usize>> {
    COUNTER_NAMES
        .iter()
        .map(|n| file_counters.iter().position(|f| f == n))
        .collect()
}

/// For each counter a file names, where it is in `COUNTER_NAMES`.
pub fn fields(file_counters: &[String]) -> Vec<Option<usize>> {
    file_counters
        .iter()
        .map(|f| COUNTER_NAMES.iter().position(|n| n == f))
        .collect()
}

/// The recorded source's unavailable counters, as a replay reports them. Names this build
/// does not know are left out (it cannot show them anyway). The names are leaked once per
/// replay opened, since `Unavailable` holds `'static` ones.
pub fn unavailable(header: &Header) -> Vec<Unavailable> {
    header
        .unavailable
        .iter()
        .map(|u| Unavailable {
            counters: Box::leak(
                u.counters
                    .iter()
                    .filter_map(|c| COUNTER_NAMES.iter().find(|n| *n == c).copied())
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            ),
            reason: u.reason.clone(),
        })
        .collect()
}

/// The header for recording `source` on this machine (`proc_root` is usually `/proc`).
pub fn header_for(source: &dyn IoSource, proc_root: &std::path::Path) -> Header {
    let read = |name: &str| {
        std::fs::read_to_string(proc_root.join("sys/kernel").join(name))
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default()
    };
    Header {
        host_name: read("hostname"),
        kernel_release: read("osrelease"),
        source: source.kind().name().to_string(),
        method: source.method().map(str::to_string),
        totals_since: source.totals_since().to_string(),
        created_wall_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        counters: counter_names(),
        unavailable: source
            .unavailable()
            .into_iter()
            .map(|u| UnavailableCounters {
                counters: u.counters.iter().map(|c| c.to_string()).collect(),
                reason: u.reason,
            })
            .collect(),
    }
}
