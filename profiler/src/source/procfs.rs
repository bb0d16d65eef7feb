//! The procfs source: /proc/PID/task/TID/io (and stat, for the command, start time and
//! block I/O delay). Exact counters, no privileges needed for the user's own processes.

use std::path::{Path, PathBuf};

use procfs::process::{Process, Task};
use procfs::ProcError;

use super::{IoSource, Scope, SourceError, SourceKind, Unavailable};
use crate::sample::{printable_command, Counters, Sample, TaskSample};

/// USER_HZ: the unit of the tick counts in /proc/PID/stat.
const TICKS_PER_S: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    #[error("cannot read {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error(
        "no task's I/O counters are readable ({denied} denied): reading another user's /proc/PID/io \
         needs CAP_SYS_PTRACE over it (root on the host has it; in a container, --cap-add SYS_PTRACE)"
    )]
    NothingReadable { denied: u64 },
    #[error(
        "the I/O counters of {denied} tasks are not readable: other users' /proc/PID/io needs \
         CAP_SYS_PTRACE over them (root on the host has it; in a container, --cap-add \
         SYS_PTRACE); `--source procfs` shows the readable ones"
    )]
    Partial { denied: u64 },
}

pub struct ProcfsSource {
    scope: Scope,
    delayacct: bool,
}

impl ProcfsSource {
    pub fn open(scope: Scope) -> Result<Self, ProcfsError> {
        let io = scope.proc_root.join("self/io");
        std::fs::read(&io).map_err(|e| ProcfsError::Unreadable {
            path: io,
            message: e.to_string(),
        })?;
        let delayacct = delayacct_enabled(&scope.proc_root);
        Ok(ProcfsSource { scope, delayacct })
    }

    fn read_task(&self, task: &Task, uid: Option<u32>) -> Result<TaskSample, ProcError> {
        let io = task.io()?;
        let stat = task.stat()?;
        let blkio_delay_ns = match (self.delayacct, stat.delayacct_blkio_ticks) {
            (true, Some(ticks)) => Some(ticks * (1_000_000_000 / TICKS_PER_S)),
            _ => None,
        };
        Ok(TaskSample {
            tid: task.tid as u32,
            pid: task.pid as u32,
            uid,
            command: printable_command(stat.comm.as_bytes()),
            start_time: Some(stat.starttime),
            cgroup_id: None,
            counters: Counters {
                rchar: Some(io.rchar),
                wchar: Some(io.wchar),
                syscr: Some(io.syscr),
                syscw: Some(io.syscw),
                read_bytes: Some(io.read_bytes),
                write_bytes: Some(io.write_bytes),
                cancelled_write_bytes: Some(io.cancelled_write_bytes),
                blkio_delay_ns,
                swapin_delay_ns: None,
            },
            exited: false,
        })
    }

    fn processes(&self) -> Result<Vec<Process>, SourceError> {
        let root = &self.scope.proc_root;
        if self.scope.pids.is_empty() {
            let all = procfs::process::all_processes_with_root(root).map_err(|e| {
                ProcfsError::Unreadable {
                    path: root.clone(),
                    message: e.to_string(),
                }
            })?;
            return Ok(all.filter_map(Result::ok).collect());
        }
        Ok(self
            .scope
            .pids
            .iter()
            .filter_map(|pid| Process::new_with_root(root.join(pid.to_string())).ok())
            .collect())
    }
}

impl IoSource for ProcfsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Procfs
    }

    fn sample(&mut self) -> Result<Sample, SourceError> {
        let mut tasks = Vec::new();
        let (mut skipped, mut denied) = (0, 0);
        for process in self.processes()? {
            let uid = process.uid().ok();
            let Ok(iter) = process.tasks() else {
                skipped += 1;
                continue;
            };
            for task in iter {
                match task.and_then(|t| self.read_task(&t, uid)) {
                    Ok(t) => tasks.push(t),
                    Err(ProcError::PermissionDenied(_)) => denied += 1,
                    // Gone between listing and reading: nothing to report.
                    Err(_) => skipped += 1,
                }
            }
        }
        if tasks.is_empty() && denied > 0 {
            return Err(ProcfsError::NothingReadable { denied }.into());
        }
        let mut sample = Sample::new(tasks);
        sample.skipped_tasks = skipped;
        sample.denied_tasks = denied;
        Ok(sample)
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        let mut out = vec![Unavailable {
            counters: &["swapin_delay_ns"],
            reason: "/proc has no swap-in delay; use the taskstats source".into(),
        }];
        if !self.delayacct {
            out.push(Unavailable {
                counters: &["blkio_delay_ns"],
                reason: DELAYACCT_OFF.into(),
            });
        }
        out
    }

    fn totals_since(&self) -> &'static str {
        "task start"
    }

    fn misses_exits(&self) -> Option<String> {
        Some(
            "misses tasks that exit between refreshes: /proc lists only tasks that are alive"
                .into(),
        )
    }
}

pub const DELAYACCT_OFF: &str = "delay accounting is off: `sysctl -w kernel.task_delayacct=1` \
    (only tasks started afterwards are measured)";

/// Whether the kernel's per-task delay accounting is switched on.
pub fn delayacct_enabled(proc_root: &Path) -> bool {
    std::fs::read_to_string(proc_root.join("sys/kernel/task_delayacct"))
        .is_ok_and(|s| s.trim() == "1")
}
