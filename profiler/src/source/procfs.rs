//! The procfs source: /proc/PID/task/TID/io (and stat, for the command, start time and
//! block I/O delay). Exact counters, no privileges needed for the user's own processes.
//! A refresh reads each thread's `io`; `stat` only for threads not seen before or whose counters
//! moved (an exec reads the new program, so a new command shows with it), or every time when
//! delay accounting is on (its tick count is in `stat`).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use procfs::process::{Io, Stat};
use procfs::{FromBufRead, FromRead};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::{IoSource, Scope, SourceError, SourceKind, Unavailable};
use crate::counter::Counter;
use crate::sample::{printable_command, Command, Counters, Sample, TaskSample};

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

/// What `stat` said of a thread, kept while its /proc directory stays the same.
struct Known {
    /// Inode of /proc/PID/task/TID: a reused TID is a new directory with a new inode.
    dir_ino: u64,
    command: Command,
    start_time: u64,
    blkio_ticks: Option<u64>,
    io: [u64; 7],
}

pub struct ProcfsSource {
    scope: Scope,
    delayacct: bool,
    known: HashMap<u32, Known>,
    /// Reused for every file read.
    buf: Vec<u8>,
}

/// Why one thread could not be read.
enum TaskError {
    Denied,
    /// Gone between listing and reading, or unreadable for another reason: skipped.
    Gone,
}

fn io_values(io: &Io) -> [u64; 7] {
    [
        io.rchar,
        io.wchar,
        io.syscr,
        io.syscw,
        io.read_bytes,
        io.write_bytes,
        io.cancelled_write_bytes,
    ]
}

/// Reads `name` under `dir` into `buf`.
fn read_at(dir: impl AsFd, name: &str, buf: &mut Vec<u8>) -> Result<(), TaskError> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| match e {
            Errno::ACCESS | Errno::PERM => TaskError::Denied,
            _ => TaskError::Gone,
        })?;
    buf.clear();
    std::fs::File::from(fd).read_to_end(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            TaskError::Denied
        } else {
            TaskError::Gone
        }
    })?;
    Ok(())
}

pub(super) fn open_dir(dir: impl AsFd, name: impl rustix::path::Arg) -> Option<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Numeric entries of a directory (pids, tids), with their inode numbers: a TID given to a new
/// thread is a new directory with a new inode.
pub(super) fn numeric_entries(dir: &OwnedFd) -> Vec<(u32, u64)> {
    let Ok(entries) = rustix::fs::Dir::read_from(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str().ok()?.parse().ok()?, e.ino())))
        .collect()
}

impl ProcfsSource {
    pub fn open(scope: Scope) -> Result<Self, ProcfsError> {
        let io = scope.proc_root.join("self/io");
        std::fs::read(&io).map_err(|e| ProcfsError::Unreadable {
            path: io,
            message: e.to_string(),
        })?;
        let delayacct = delayacct_enabled(&scope.proc_root);
        Ok(ProcfsSource {
            scope,
            delayacct,
            known: HashMap::new(),
            buf: Vec::with_capacity(1024),
        })
    }

    /// One thread, from its directory under /proc/PID/task (whose inode the listing gave).
    fn read_task(
        &mut self,
        tasks_dir: &OwnedFd,
        pid: u32,
        (tid, dir_ino): (u32, u64),
        uid: Option<u32>,
    ) -> Result<TaskSample, TaskError> {
        let name = tid.to_string();
        read_at(tasks_dir, &format!("{name}/io"), &mut self.buf)?;
        let io = Io::from_buf_read(&self.buf[..]).map_err(|_| TaskError::Gone)?;
        let values = io_values(&io);
        let fresh = match self.known.get(&tid) {
            Some(k) => k.dir_ino != dir_ino || k.io != values || self.delayacct,
            None => true,
        };
        if fresh {
            read_at(tasks_dir, &format!("{name}/stat"), &mut self.buf)?;
            let stat = Stat::from_read(&self.buf[..]).map_err(|_| TaskError::Gone)?;
            self.known.insert(
                tid,
                Known {
                    dir_ino,
                    command: printable_command(stat.comm.as_bytes()),
                    start_time: stat.starttime,
                    blkio_ticks: stat.delayacct_blkio_ticks,
                    io: values,
                },
            );
        }
        let known = self.known.get(&tid).ok_or(TaskError::Gone)?;
        let blkio_delay_ns = match (self.delayacct, known.blkio_ticks) {
            (true, Some(ticks)) => Some(ticks * (1_000_000_000 / TICKS_PER_S)),
            _ => None,
        };
        Ok(TaskSample {
            tid,
            pid,
            uid,
            command: known.command.clone(),
            start_time: Some(known.start_time),
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
}

impl IoSource for ProcfsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Procfs
    }

    fn sample(&mut self) -> Result<Sample, SourceError> {
        let root = self.scope.proc_root.clone();
        let unreadable = |e: Errno| ProcfsError::Unreadable {
            path: root.clone(),
            message: e.to_string(),
        };
        let proc_dir = rustix::fs::open(
            &root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(unreadable)?;
        let pids: Vec<u32> = if self.scope.pids.is_empty() {
            numeric_entries(&proc_dir)
                .into_iter()
                .map(|(pid, _)| pid)
                .collect()
        } else {
            self.scope.pids.iter().copied().collect()
        };
        let mut tasks = Vec::new();
        let (mut skipped, mut denied) = (0, 0);
        let mut seen = HashSet::with_capacity(self.known.len());
        for pid in pids {
            let name = pid.to_string();
            let uid = rustix::fs::statat(&proc_dir, name.as_str(), rustix::fs::AtFlags::empty())
                .ok()
                .map(|st| st.st_uid);
            let Some(tasks_dir) = open_dir(&proc_dir, format!("{name}/task")) else {
                skipped += 1;
                continue;
            };
            for thread in numeric_entries(&tasks_dir) {
                match self.read_task(&tasks_dir, pid, thread, uid) {
                    Ok(t) => {
                        seen.insert(thread.0);
                        tasks.push(t);
                    }
                    Err(TaskError::Denied) => denied += 1,
                    // Gone between listing and reading: nothing to report.
                    Err(TaskError::Gone) => skipped += 1,
                }
            }
        }
        // Threads no longer listed are forgotten.
        self.known.retain(|tid, _| seen.contains(tid));
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
            counters: &[Counter::SwapinDelay],
            reason: "/proc has no swap-in delay; use the taskstats source".into(),
        }];
        if !self.delayacct {
            out.push(Unavailable {
                counters: &[Counter::BlkioDelay],
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

#[cfg(test)]
mod tests {
    use super::*;

    const IO: &str = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 0\nwrite_bytes: 0\n\
                      cancelled_write_bytes: 0\n";

    fn stat(comm: &str) -> String {
        format!(
            "42 ({comm}) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 777 1000000 100 \
             18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 3 0 0\n"
        )
    }

    /// A /proc with one process 42 and its one thread.
    fn fixture(root: &Path, comm: &str, io: &str) {
        let task = root.join("42/task/42");
        std::fs::create_dir_all(&task).expect("fixture dirs");
        std::fs::create_dir_all(root.join("self")).expect("fixture dirs");
        std::fs::write(root.join("self/io"), IO).expect("self/io");
        std::fs::write(task.join("io"), io).expect("io");
        std::fs::write(task.join("stat"), stat(comm)).expect("stat");
    }

    fn command(source: &mut ProcfsSource) -> String {
        let sample = source.sample().expect("sample");
        assert_eq!(sample.tasks.len(), 1, "one thread");
        sample.tasks[0].command.to_string()
    }

    #[test]
    fn stat_is_read_again_only_when_the_thread_moved_or_is_new() {
        let dir = std::env::temp_dir().join(format!("profiler-procfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        fixture(&dir, "first", IO);
        let mut source = ProcfsSource::open(Scope {
            pids: Default::default(),
            proc_root: dir.clone(),
        })
        .expect("open on the fixture");
        assert_eq!(command(&mut source), "first");
        // Idle: only io is read, the command is the one known.
        std::fs::write(dir.join("42/task/42/stat"), stat("renamed")).expect("stat");
        assert_eq!(command(&mut source), "first");
        // Its counters moved (an exec reads the new program): stat is read again.
        fixture(&dir, "renamed", &IO.replace("rchar: 10", "rchar: 900"));
        assert_eq!(command(&mut source), "renamed");
        // The TID went to a new thread (a new directory: the old one is moved away first, so
        // its inode is not reused), counters by chance the same.
        std::fs::rename(dir.join("42"), dir.join("gone")).expect("rename");
        fixture(&dir, "reused", &IO.replace("rchar: 10", "rchar: 900"));
        assert_eq!(command(&mut source), "reused");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
