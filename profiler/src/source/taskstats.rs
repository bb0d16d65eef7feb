//! The taskstats source: per-thread counters from the kernel's TASKSTATS generic netlink
//! family, one TASKSTATS_CMD_GET per thread (a TGID query carries no I/O fields), and the last
//! counters of threads that exit, from an exit listener where the kernel allows one.
//!
//! Taskstats rounds every I/O field down to a multiple of 1024, the syscall counts too
//! (`& KB_MASK` in xacct_add_tsk, kernel/tsacct.c): 5000 bytes read show as 4096, and a thread's
//! first 1023 read() calls show as none. Totals count from the thread's start.

pub mod decode;
mod netlink;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{openat, Mode, OFlags, RawDir, CWD};
use rustix::time::{clock_gettime, ClockId};

use super::procfs::{delayacct_enabled, DELAYACCT_OFF};
use super::{IoSource, Scope, SourceError, SourceKind, Unavailable};
use crate::sample::{printable_command, Counters, Sample, TaskSample};
use decode::Taskstats;
use netlink::{Conn, ExitListener, Reply, BATCH};

#[derive(Debug, thiserror::Error)]
pub enum TaskstatsError {
    #[error("cannot open a generic netlink socket: {0}")]
    Socket(String),
    #[error(
        "generic netlink family TASKSTATS not found in this network namespace (kernel < 5.19 in a container?) \
         or kernel without CONFIG_TASKSTATS"
    )]
    FamilyNotFound,
    #[error(
        "the kernel refused the TASKSTATS query (EPERM): it needs CAP_NET_ADMIN in the initial user namespace; \
         run as root on the host, or in a container started with --cap-add NET_ADMIN and the host user namespace"
    )]
    PermissionDenied,
    #[error("netlink failed while {during}: {message}")]
    Netlink {
        during: &'static str,
        message: String,
    },
    #[error("the kernel's answer to {during} does not parse: {detail}")]
    BadReply {
        during: &'static str,
        detail: String,
    },
    #[error("cannot list tasks in {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
}

/// How far apart two estimates of one thread's start may lie. A polled estimate is late by the
/// time the batch waited in `send`; a thread id comes back with a start this close to its last
/// user's only after the pid space wrapped within it.
const POLL_TOLERANCE_US: u64 = 1_000_000;
/// Exit records give the start only in whole wall-clock seconds (ac_btime64), either side.
const EXIT_TOLERANCE_US: u64 = 2_000_000;
/// Refreshes a thread's start time is remembered after it was last seen: one for an exit that
/// is read a refresh after the thread was, and one for a thread skipped once.
const KEEP_REFRESHES: u64 = 2;

#[derive(Clone, Copy, Debug)]
struct Known {
    start_us: u64,
    pid: u32,
    seen: u64,
    /// Its exit record was reported; what is still listed is an unreaped zombie.
    exited: bool,
}

/// Start times by thread id, as first estimated. The model takes a changed start time for a
/// reused thread id, and the kernel gives only elapsed time (ac_etime) as of each reply, so the
/// estimate from it must be pinned; ac_btime64 alone flips between two seconds.
#[derive(Default)]
struct StartTimes {
    by_tid: HashMap<u32, Known>,
    refresh: u64,
}

impl StartTimes {
    /// The start time of a thread found alive; `None` for one whose exit was already reported.
    fn polled(&mut self, tid: u32, pid: u32, estimate_us: u64) -> Option<u64> {
        let fresh = Known {
            start_us: estimate_us,
            pid,
            seen: self.refresh,
            exited: false,
        };
        let known = self.by_tid.entry(tid).or_insert(fresh);
        if known.pid != pid || known.start_us.abs_diff(estimate_us) > POLL_TOLERANCE_US {
            *known = fresh;
        }
        known.seen = self.refresh;
        (!known.exited).then_some(known.start_us)
    }

    /// The thread that just exited, if it is the one last seen with this id.
    fn exited(&mut self, tid: u32, estimate_us: u64) -> Option<Known> {
        let known = self
            .by_tid
            .get_mut(&tid)
            .filter(|k| k.start_us.abs_diff(estimate_us) <= EXIT_TOLERANCE_US)?;
        known.exited = true;
        known.seen = self.refresh;
        Some(*known)
    }

    fn finish_refresh(&mut self) {
        self.refresh += 1;
        let now = self.refresh;
        self.by_tid.retain(|_, k| now - k.seen <= KEEP_REFRESHES);
    }
}

fn micros(clock: ClockId) -> u64 {
    let t = clock_gettime(clock);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(t.tv_nsec as u64 / 1000)
}

fn to_task(
    t: &Taskstats,
    tid: u32,
    pid: u32,
    start_us: u64,
    delayacct: bool,
    exited: bool,
) -> TaskSample {
    TaskSample {
        tid,
        pid,
        uid: Some(t.uid),
        command: printable_command(&t.comm),
        start_time: Some(start_us),
        cgroup_id: None,
        counters: Counters {
            rchar: Some(t.read_char),
            wchar: Some(t.write_char),
            syscr: Some(t.read_syscalls),
            syscw: Some(t.write_syscalls),
            read_bytes: Some(t.read_bytes),
            write_bytes: Some(t.write_bytes),
            cancelled_write_bytes: Some(t.cancelled_write_bytes),
            blkio_delay_ns: delayacct.then_some(t.blkio_delay_total),
            swapin_delay_ns: delayacct.then_some(t.swapin_delay_total),
        },
        exited,
    }
}

fn parse_id(name: &[u8]) -> Option<u32> {
    std::str::from_utf8(name).ok()?.parse().ok()
}

fn open_dir(at: &OwnedFd, path: &str) -> rustix::io::Result<OwnedFd> {
    openat(
        at,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Appends the numeric entries of `dir` to `out`.
fn read_ids(
    dir: OwnedFd,
    buf: &mut [MaybeUninit<u8>],
    mut out: impl FnMut(u32),
) -> rustix::io::Result<()> {
    let mut dir = RawDir::new(dir, buf);
    while let Some(entry) = dir.next() {
        if let Some(id) = parse_id(entry?.file_name().to_bytes()) {
            out(id);
        }
    }
    Ok(())
}

/// Inode of the initial network namespace (PROC_NET_INIT_INO) on kernels that fix it (6.x).
const INIT_NET_NS_INO: u64 = 0xEFFF_FFF9;

/// How long a registered listener may take to report the exit of a thread of ours.
const EXIT_PROBE_WAIT: Duration = Duration::from_millis(200);

/// Whether the listener hears exits: a thread of ours exits and its record must arrive. The
/// kernel accepts registrations from any network namespace but sends exit records only to
/// listeners in the initial one (genlmsg_unicast(&init_net, ...) in kernel/taskstats.c).
fn hears_exits(listener: &mut ExitListener) -> bool {
    let thread = std::thread::spawn(|| rustix::thread::gettid().as_raw_nonzero().get() as u32);
    let Ok(tid) = thread.join() else {
        return false;
    };
    // The record is sent in do_exit before the thread's exit wakes join(); waiting a little
    // covers a delayed socket. Exits of others read here precede the first sample anyway.
    let deadline = Instant::now() + EXIT_PROBE_WAIT;
    loop {
        let mut heard = false;
        listener.drain(|reply| heard |= matches!(reply, Reply::Stats { pid, .. } if pid == tid));
        if heard {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn deaf_listener_reason(proc_root: &Path) -> String {
    let own_netns = std::fs::metadata(proc_root.join("self/ns/net"))
        .is_ok_and(|ns| ns.ino() != INIT_NET_NS_INO);
    format!(
        "the exit listener registered but the exit of a thread of ours never arrived{}: the \
         kernel sends exit records only to listeners in the initial network namespace; run with \
         the host's network (docker/podman run --network=host, hostNetwork in Kubernetes)",
        if own_netns {
            " (this process has a network namespace of its own)"
        } else {
            ""
        }
    )
}

pub struct TaskstatsSource {
    scope: Scope,
    conn: Conn,
    listener: Option<ExitListener>,
    /// Why exits are not reported, when they are not.
    misses_exits: Option<String>,
    delayacct: bool,
    struct_version: u16,
    struct_len: usize,
    proc_dir: OwnedFd,
    // Reused from refresh to refresh: listing and querying allocate nothing per task but the
    // TaskSample itself.
    dir_buf: Vec<MaybeUninit<u8>>,
    path: String,
    pids: Vec<u32>,
    tids: Vec<u32>,
    tgids: Vec<u32>,
    starts: StartTimes,
    by_tid: HashMap<u32, usize>,
    exit_overflows: u64,
}

impl TaskstatsSource {
    /// Resolves the family and queries the calling thread, so that a missing family or missing
    /// privileges show here; then registers the exit listener where the kernel allows it.
    pub fn open(scope: Scope) -> Result<Self, TaskstatsError> {
        let mut conn = Conn::open()?;
        let (struct_version, struct_len) = probe(&mut conn)?;
        if let Some(size) = decode::known_size(struct_version).filter(|&size| size != struct_len) {
            log::debug!("taskstats: struct taskstats v{struct_version} is {struct_len} bytes here, not {size}");
        }
        let proc_dir = openat(
            CWD,
            &scope.proc_root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| TaskstatsError::Unreadable {
            path: scope.proc_root.clone(),
            message: e.to_string(),
        })?;
        let (listener, misses_exits) = match ExitListener::register(conn.family()) {
            Ok(mut listener) => {
                if hears_exits(&mut listener) {
                    (Some(listener), None)
                } else {
                    (None, Some(deaf_listener_reason(&scope.proc_root)))
                }
            }
            Err(why) => (
                None,
                Some(format!(
                    "the kernel refused the exit listener ({why}); it allows one only from the \
                     initial user and pid namespaces, and sends exit records only to the initial \
                     network namespace (a container needs --pid=host --network=host)"
                )),
            ),
        };
        let delayacct = delayacct_enabled(&scope.proc_root);
        Ok(TaskstatsSource {
            scope,
            conn,
            listener,
            misses_exits,
            delayacct,
            struct_version,
            struct_len,
            proc_dir,
            dir_buf: vec![MaybeUninit::uninit(); 64 * 1024],
            path: String::new(),
            pids: Vec::new(),
            tids: Vec::new(),
            tgids: Vec::new(),
            starts: StartTimes::default(),
            by_tid: HashMap::new(),
            exit_overflows: 0,
        })
    }

    /// The version of `struct taskstats` this kernel sends, and its size in bytes.
    pub fn struct_version(&self) -> (u16, usize) {
        (self.struct_version, self.struct_len)
    }

    /// Whether exited threads are reported (see [`TaskSample::exited`]).
    pub fn listens_for_exits(&self) -> bool {
        self.listener.is_some()
    }

    fn unreadable(&self, e: impl std::fmt::Display) -> TaskstatsError {
        TaskstatsError::Unreadable {
            path: self.scope.proc_root.clone(),
            message: e.to_string(),
        }
    }

    /// Fills `tids` and `tgids` with the threads in scope, from /proc/PID/task/TID.
    fn list_tasks(&mut self) -> Result<(), TaskstatsError> {
        self.tids.clear();
        self.tgids.clear();
        self.pids.clear();
        if self.scope.pids.is_empty() {
            // A fresh descriptor each time: a directory read to its end stays there.
            let root = open_dir(&self.proc_dir, ".").map_err(|e| self.unreadable(e))?;
            let pids = &mut self.pids;
            read_ids(root, &mut self.dir_buf, |pid| pids.push(pid))
                .map_err(|e| self.unreadable(e))?;
        } else {
            self.pids.extend_from_slice(&self.scope.pids);
        }
        for &pid in &self.pids {
            self.path.clear();
            let _ = write!(self.path, "{pid}/task");
            // Gone since the listing, or never there: nothing to report.
            let Ok(dir) = open_dir(&self.proc_dir, &self.path) else {
                continue;
            };
            let (tids, tgids) = (&mut self.tids, &mut self.tgids);
            let listed = read_ids(dir, &mut self.dir_buf, |tid| {
                tids.push(tid);
                tgids.push(pid);
            });
            if let Err(e) = listed {
                log::debug!("taskstats: listing threads of {pid}: {e}");
            }
        }
        Ok(())
    }

    /// Adds the exits read since the last refresh to `tasks`.
    fn add_exits(&mut self, tasks: &mut Vec<TaskSample>) {
        let Some(listener) = &mut self.listener else {
            return;
        };
        // ac_btime64 is wall-clock seconds; start times here are CLOCK_MONOTONIC microseconds.
        let boot_wall_us = micros(ClockId::Realtime).saturating_sub(micros(ClockId::Monotonic));
        let (starts, scope, delayacct) = (&mut self.starts, &self.scope, self.delayacct);
        let mut exited = Vec::new();
        self.exit_overflows += listener.drain(|reply| {
            let (tid, t) = match reply {
                Reply::Stats { pid, stats } => match decode::decode(stats) {
                    Ok(t) => (pid, t),
                    Err(e) => return log::debug!("taskstats: exit of {pid}: {e}"),
                },
                other => return log::debug!("taskstats: exit message: {other:?}"),
            };
            let estimate = t
                .btime_s
                .saturating_mul(1_000_000)
                .saturating_sub(boot_wall_us);
            let known = starts.exited(tid, estimate);
            // Before v12 only a thread seen alive tells its process.
            let Some(pid) = t.tgid.or(known.map(|k| k.pid)) else {
                return;
            };
            if scope.pids.is_empty() || scope.pids.contains(&pid) {
                let start = known.map_or(estimate, |k| k.start_us);
                exited.push(to_task(&t, tid, pid, start, delayacct, true));
            }
        });
        if exited.is_empty() {
            return;
        }
        self.by_tid.clear();
        self.by_tid
            .extend(tasks.iter().enumerate().map(|(i, t)| (t.tid, i)));
        for task in exited {
            match self.by_tid.get(&task.tid) {
                // Polled, then exited: the exit record is the later one.
                Some(&i) if tasks[i].start_time == task.start_time => tasks[i] = task,
                // The id already belongs to a new thread, which the next refresh compares with;
                // two records under one id would leave the model to pick either.
                Some(_) => {}
                None => tasks.push(task),
            }
        }
    }
}

/// Queries the calling thread: the real test of family, privileges and struct layout.
fn probe(conn: &mut Conn) -> Result<(u16, usize), TaskstatsError> {
    const DURING: &str = "querying the profiler's own thread";
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    let mut outcome = None;
    conn.query(&[tid], |_, reply| {
        outcome = Some(match reply {
            Reply::Stats { stats, .. } => decode::decode(stats)
                .map(|t| (t.version, stats.len()))
                .map_err(|e| TaskstatsError::BadReply {
                    during: DURING,
                    detail: e.to_string(),
                }),
            Reply::Errno(libc::EPERM) => Err(TaskstatsError::PermissionDenied),
            Reply::Errno(errno) => Err(TaskstatsError::Netlink {
                during: DURING,
                message: io::Error::from_raw_os_error(errno).to_string(),
            }),
            Reply::Malformed(why) => Err(TaskstatsError::BadReply {
                during: DURING,
                detail: why.into(),
            }),
        })
    })
    .map_err(|e| TaskstatsError::Netlink {
        during: DURING,
        message: e.to_string(),
    })?;
    outcome.unwrap_or_else(|| {
        Err(TaskstatsError::Netlink {
            during: DURING,
            message: "the kernel sent no reply".into(),
        })
    })
}

impl IoSource for TaskstatsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Taskstats
    }

    fn sample(&mut self) -> Result<Sample, SourceError> {
        self.list_tasks()?;
        let mut tasks = Vec::with_capacity(self.tids.len());
        let (mut skipped, mut denied) = (0u64, false);
        let (conn, starts, delayacct) = (&mut self.conn, &mut self.starts, self.delayacct);
        for (tids, tgids) in self.tids.chunks(BATCH).zip(self.tgids.chunks(BATCH)) {
            // No later than the kernel's clock reading for any reply in the batch.
            let sent_us = micros(ClockId::Monotonic);
            let answered = conn
                .query(tids, |i, reply| {
                    let (tid, pid) = (tids[i], tgids[i]);
                    match reply {
                        Reply::Stats { pid: about, stats } if about == tid => {
                            match decode::decode(stats) {
                                Ok(t) => {
                                    // A process leader stays listed, and answers, until its
                                    // parent reaps it; its exit record was the last word.
                                    let estimate = sent_us.saturating_sub(t.etime_us);
                                    if let Some(start) = starts.polled(tid, pid, estimate) {
                                        tasks.push(to_task(&t, tid, pid, start, delayacct, false));
                                    }
                                }
                                Err(e) => {
                                    log::debug!("taskstats: thread {tid}: {e}");
                                    skipped += 1;
                                }
                            }
                        }
                        Reply::Errno(libc::EPERM) => denied = true,
                        // Exited between listing and query.
                        Reply::Errno(libc::ESRCH) => skipped += 1,
                        other => {
                            log::debug!("taskstats: thread {tid}: {other:?}");
                            skipped += 1;
                        }
                    }
                })
                .map_err(|e| TaskstatsError::Netlink {
                    during: "querying threads",
                    message: e.to_string(),
                })?;
            skipped += (tids.len() - answered) as u64;
        }
        if denied {
            return Err(TaskstatsError::PermissionDenied.into());
        }
        self.add_exits(&mut tasks);
        self.starts.finish_refresh();
        let mut sample = Sample::new(tasks);
        sample.skipped_tasks = skipped;
        sample.lost_events = self.listener.as_ref().map(|_| self.exit_overflows);
        Ok(sample)
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        if self.delayacct {
            return Vec::new();
        }
        vec![Unavailable {
            counters: &["blkio_delay_ns", "swapin_delay_ns"],
            reason: DELAYACCT_OFF.into(),
        }]
    }

    fn totals_since(&self) -> &'static str {
        "task start"
    }

    fn misses_exits(&self) -> Option<String> {
        self.misses_exits
            .as_ref()
            .map(|why| format!("misses tasks that exit between refreshes: {why}"))
    }
}
