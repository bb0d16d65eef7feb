//! What a source returns: cumulative counters per task, raw, as the source counts them.
//! Nothing here is derived; deltas and rates live in the model.

use std::time::{Instant, SystemTime};

pub use crate::counter::Counters;

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
}
