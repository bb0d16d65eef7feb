//! The only code that knows the shape of `Sample`, `TaskSample`, `Counters` and
//! `Unavailable`: the rest of `record` works on `Record` and `Header`, and counters by name.

use crate::sample::Monotonic;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::block::{measured_into, EncodeTask, Labels, Record, RecordHead};
use super::format::{Header, UnavailableCounters};
use crate::counter::{Counter, Counters};
use crate::sample::{Sample, TaskSample};
use crate::source::{IoSource, Unavailable};

/// When `s` was taken, as a record stores it.
pub fn wall_ns(s: &Sample) -> u64 {
    s.wall_time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What `s` stores besides its tasks; `anchor` is the instant monotonic stamps count from.
pub fn record_head(s: &Sample, anchor: Monotonic) -> RecordHead {
    RecordHead {
        wall_ns: wall_ns(s),
        mono_ns: s.taken_at.saturating_duration_since(anchor).as_nanos() as u64,
        lost_events: s.lost_events,
        skipped_tasks: s.skipped_tasks,
        denied_tasks: s.denied_tasks,
    }
}

/// A sample's task is encoded as it is, without a copy into a `TaskRecord`: its columns are
/// the counters of this build that the file's columns hold (see `fields`).
impl EncodeTask for TaskSample {
    type Columns = Fields;

    fn tid(&self) -> u32 {
        self.tid
    }

    fn start_time(&self) -> Option<u64> {
        self.start_time
    }

    #[inline]
    fn labels_are(&self, l: &Labels) -> bool {
        self.tid == l.tid
            && self.pid == l.pid
            && self.uid == l.uid
            && self.start_time == l.start_time
            && self.cgroup_id == l.cgroup_id
            && self.command == l.command
    }

    fn labels(&self) -> Labels {
        Labels {
            tid: self.tid,
            pid: self.pid,
            uid: self.uid,
            command: self.command.clone(),
            start_time: self.start_time,
            cgroup_id: self.cgroup_id,
        }
    }

    #[inline]
    fn values(&self, fields: &Fields, out: &mut [u64]) -> u64 {
        if fields.all_in_order {
            measured_into(self.counters.values().as_slice().iter().copied(), out)
        } else {
            let values = fields.counters.iter();
            measured_into(values.map(|f| f.and_then(|c| self.counters.get(c))), out)
        }
    }

    fn exited(&self) -> bool {
        self.exited
    }
}

/// A stored sample back; `columns[c]` is where the file keeps counter `Counter::ALL[c]`.
pub fn sample_from_record(r: Record, columns: &[Option<usize>], anchor: Monotonic) -> Sample {
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
            counters: {
                let mut counters = Counters::default();
                for (counter, column) in Counter::ALL.iter().zip(columns) {
                    *counters.get_mut(*counter) = column.and_then(|c| t.values[c]);
                }
                counters
            },
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
        container_labels: r.container_labels,
    }
}

/// The counters this build records, in record order.
pub fn counter_names() -> Vec<String> {
    Counter::ALL.iter().map(|c| c.key().to_string()).collect()
}

fn by_name(name: &str) -> Option<Counter> {
    Counter::ALL.into_iter().find(|c| c.key() == name)
}

/// For each counter this build knows (in `Counter::ALL` order), where a file with these
/// counter names keeps it.
pub fn columns(file_counters: &[String]) -> Vec<Option<usize>> {
    Counter::ALL
        .iter()
        .map(|c| file_counters.iter().position(|f| f == c.key()))
        .collect()
}

/// For each counter a file names, which counter of this build it is.
pub struct Fields {
    pub counters: Vec<Option<Counter>>,
    /// The file names every counter of this build, in its order (what `header_for` makes):
    /// a sample's counters are the file's columns as they are.
    all_in_order: bool,
}

pub fn fields(file_counters: &[String]) -> Fields {
    let counters: Vec<Option<Counter>> = file_counters.iter().map(|f| by_name(f)).collect();
    let all_in_order = counters
        .iter()
        .copied()
        .eq(Counter::ALL.iter().map(|&c| Some(c)));
    Fields {
        counters,
        all_in_order,
    }
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
                    .filter_map(|c| by_name(c))
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
                counters: u.counters.iter().map(|c| c.key().to_string()).collect(),
                reason: u.reason,
            })
            .collect(),
    }
}
