//! What a source returns: cumulative counters per task, raw, as the source counts them.
//! Nothing here is derived; deltas and rates live in the model.

use std::time::{Instant, SystemTime};

use serde::Serialize;

/// The nine counters every source is normalised into. `None` means the source cannot
/// measure that counter (not that it measured zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub rchar: Option<u64>,
    pub wchar: Option<u64>,
    pub syscr: Option<u64>,
    pub syscw: Option<u64>,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    pub cancelled_write_bytes: Option<u64>,
    pub blkio_delay_ns: Option<u64>,
    pub swapin_delay_ns: Option<u64>,
}

/// Names of the counters, in the order of [`Counters::values`]; also their JSON keys.
pub const COUNTER_NAMES: [&str; 9] = [
    "rchar",
    "wchar",
    "syscr",
    "syscw",
    "read_bytes",
    "write_bytes",
    "cancelled_write_bytes",
    "blkio_delay_ns",
    "swapin_delay_ns",
];

impl Counters {
    pub fn values(&self) -> [Option<u64>; 9] {
        [
            self.rchar,
            self.wchar,
            self.syscr,
            self.syscw,
            self.read_bytes,
            self.write_bytes,
            self.cancelled_write_bytes,
            self.blkio_delay_ns,
            self.swapin_delay_ns,
        ]
    }

    pub fn from_values(v: [Option<u64>; 9]) -> Self {
        Counters {
            rchar: v[0],
            wchar: v[1],
            syscr: v[2],
            syscw: v[3],
            read_bytes: v[4],
            write_bytes: v[5],
            cancelled_write_bytes: v[6],
            blkio_delay_ns: v[7],
            swapin_delay_ns: v[8],
        }
    }

    /// Field by field, `f(self, other)`.
    pub fn zip_with(
        &self,
        other: &Counters,
        f: impl Fn(Option<u64>, Option<u64>) -> Option<u64>,
    ) -> Counters {
        let (a, b) = (self.values(), other.values());
        Counters::from_values(std::array::from_fn(|i| f(a[i], b[i])))
    }

    /// Sum where at least one side is measured.
    pub fn add(&self, other: &Counters) -> Counters {
        self.zip_with(other, |a, b| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        })
    }
}

/// One task (thread) in one sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSample {
    /// Thread id and process id (TGID) as the profiler's pid namespace sees them.
    pub tid: u32,
    pub pid: u32,
    pub uid: Option<u32>,
    /// Command name, printable: bytes that are not UTF-8 or not printable are escaped.
    pub command: String,
    /// When the task started, in a unit of the source's choosing; tells a reused TID from the
    /// task that had it before. `None` when the source cannot tell.
    pub start_time: Option<u64>,
    /// cgroup v2 id (inode of the cgroup directory), where the source knows it.
    pub cgroup_id: Option<u64>,
    pub counters: Counters,
    /// The task exited; these are its last counters.
    pub exited: bool,
}

/// One reading of a source: every task it saw, with cumulative counters.
#[derive(Clone, Debug)]
pub struct Sample {
    pub taken_at: Instant,
    pub wall_time: SystemTime,
    pub tasks: Vec<TaskSample>,
    /// Events the source knows it lost since it started (eBPF map or ring full), if it can lose any.
    pub lost_events: Option<u64>,
    /// Tasks the source could not read this time (vanished, unparsable reply), skipped.
    pub skipped_tasks: u64,
    /// Tasks whose counters the source was not allowed to read (other users' tasks, unprivileged).
    pub denied_tasks: u64,
}

impl Sample {
    pub fn new(tasks: Vec<TaskSample>) -> Self {
        Sample {
            taken_at: Instant::now(),
            wall_time: SystemTime::now(),
            tasks,
            lost_events: None,
            skipped_tasks: 0,
            denied_tasks: 0,
        }
    }
}

/// Makes a task's command printable: valid UTF-8 stays, except control characters, and every
/// other byte becomes `\xNN`. Trailing NULs (from fixed-size kernel buffers) are dropped.
pub fn printable_command(raw: &[u8]) -> String {
    let raw = match raw.iter().position(|&b| b == 0) {
        Some(end) => &raw[..end],
        None => raw,
    };
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_command_escapes_what_a_terminal_should_not_see() {
        assert_eq!(printable_command(b"bash\0\0\0"), "bash");
        assert_eq!(printable_command(b"a\xffb"), "a\\xffb");
        assert_eq!(printable_command(b"x\ty"), "x\\ty");
        assert_eq!(printable_command("héllo".as_bytes()), "héllo");
    }

    #[test]
    fn add_keeps_unmeasured_counters_unmeasured() {
        let a = Counters {
            rchar: Some(1),
            ..Default::default()
        };
        let b = Counters {
            rchar: Some(2),
            wchar: Some(5),
            ..Default::default()
        };
        let s = a.add(&b);
        assert_eq!(s.rchar, Some(3));
        assert_eq!(s.wchar, Some(5));
        assert_eq!(s.syscr, None);
    }
}
