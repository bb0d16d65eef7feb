//! What a source returns: cumulative counters per task, raw, as the source counts them.
//! Nothing here is derived; deltas and rates live in the model.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use crate::counter::Counters;

/// A reading of CLOCK_MONOTONIC in nanoseconds: what `Instant` reads, but a plain number, so
/// that a recorded sample keeps it. Intervals between samples come from it, never from the
/// wall clock, which can step.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Monotonic(pub u64);

impl Monotonic {
    pub fn now() -> Monotonic {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        // The monotonic clock counts from boot: never negative, and u64 nanoseconds last
        // 584 years.
        Monotonic(
            u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec).unwrap_or(0),
        )
    }

    /// Zero when `earlier` is later, as `Instant::saturating_duration_since`.
    pub fn saturating_duration_since(self, earlier: Monotonic) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Monotonic {
    type Output = Monotonic;
    fn add(self, d: Duration) -> Monotonic {
        Monotonic(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl std::ops::Sub<Duration> for Monotonic {
    type Output = Monotonic;
    fn sub(self, d: Duration) -> Monotonic {
        Monotonic(
            self.0
                .saturating_sub(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl std::ops::SubAssign<Duration> for Monotonic {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

/// One task (thread) in one sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSample {
    /// Thread id and process id (TGID) as the profiler's pid namespace sees them.
    pub tid: u32,
    pub pid: u32,
    pub uid: Option<u32>,
    /// Command name, printable: bytes that are not UTF-8 or not printable are escaped.
    pub command: Command,
    /// When the task started, in a unit of the source's choosing; tells a reused TID from the
    /// task that had it before. `None` when the source cannot tell.
    pub start_time: Option<u64>,
    /// cgroup v2 id (inode of the cgroup directory), where the source knows it.
    pub cgroup_id: Option<u64>,
    pub counters: Counters,
    /// The task exited; these are its last counters.
    pub exited: bool,
}

/// One reading of a source: every task it saw, with cumulative counters. Serialisable, so
/// that samples can be recorded and replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was taken, on the monotonic clock: the model's intervals.
    pub taken_at: Monotonic,
    /// When it was taken, on the wall clock: for people and for other machines.
    pub wall_time: SystemTime,
    pub tasks: Vec<TaskSample>,
    /// Events the source knows it lost since it started (eBPF map or ring full), if it can lose any.
    pub lost_events: Option<u64>,
    /// Tasks the source could not read this time (vanished, unparsable reply), skipped.
    pub skipped_tasks: u64,
    /// Tasks whose counters the source was not allowed to read (other users' tasks, unprivileged).
    pub denied_tasks: u64,
    /// Container labels of cgroup ids, where the source knows them itself: a recording keeps
    /// its tasks' labels as they were when it was made, and a replay gives them back. Empty
    /// from live sources, whose tasks the session labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_labels: Vec<(u64, String)>,
}

impl Sample {
    pub fn new(tasks: Vec<TaskSample>) -> Self {
        Sample {
            taken_at: Monotonic::now(),
            wall_time: SystemTime::now(),
            tasks,
            lost_events: None,
            skipped_tasks: 0,
            denied_tasks: 0,
            container_labels: Vec::new(),
        }
    }
}

/// A task's command name. The kernel's are at most 15 bytes: kept inline, a command costs
/// no allocation when a source reads it or a view copies it.
pub type Command = compact_str::CompactString;

/// Makes a task's command printable: valid UTF-8 stays, except control characters, and every
/// other byte becomes `\xNN`. Trailing NULs (from fixed-size kernel buffers) are dropped.
pub fn printable_command(raw: &[u8]) -> Command {
    let raw = match raw.iter().position(|&b| b == 0) {
        Some(end) => &raw[..end],
        None => raw,
    };
    // The usual name: valid UTF-8 without control characters, taken as it is.
    if let Ok(name) = std::str::from_utf8(raw) {
        if !name.chars().any(char::is_control) {
            return Command::from(name);
        }
    }
    let mut out = Command::with_capacity(raw.len());
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
    fn a_sample_survives_a_round_trip_through_json() {
        let mut sample = Sample::new(vec![TaskSample {
            tid: 7,
            pid: 5,
            uid: None,
            command: "a \\x1b".into(),
            start_time: Some(123),
            cgroup_id: Some(u64::MAX),
            counters: Counters {
                rchar: Some(4096),
                swapin_delay_ns: Some(0),
                ..Counters::default()
            },
            exited: true,
        }]);
        sample.lost_events = Some(2);
        sample.skipped_tasks = 3;
        sample.denied_tasks = 4;
        let json = serde_json::to_string(&sample).expect("serialises");
        let back: Sample = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, sample);
        assert_eq!(
            back.taken_at.saturating_duration_since(sample.taken_at),
            Duration::ZERO
        );
    }

    #[test]
    fn the_monotonic_stamp_moves_forward_with_instant() {
        let (a, i) = (Monotonic::now(), std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        let (b, j) = (Monotonic::now(), std::time::Instant::now());
        let ours = b.saturating_duration_since(a);
        let std = j.duration_since(i);
        assert!(ours >= Duration::from_millis(5), "{ours:?}");
        assert!(
            ours.abs_diff(std) < Duration::from_millis(5),
            "{ours:?} vs {std:?}"
        );
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }
}
