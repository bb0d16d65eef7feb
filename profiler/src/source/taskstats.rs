//! The taskstats source: per-thread counters from the kernel's TASKSTATS generic netlink
//! family, one TASKSTATS_CMD_GET per thread (a TGID query carries no I/O fields), and the last
//! counters of threads that exit, from an exit listener where the kernel allows one.
//!
//! Taskstats rounds every I/O field down to a multiple of 1024, the syscall counts too
//! (`& KB_MASK` in xacct_add_tsk, kernel/tsacct.c): 5000 bytes read show as 4096, and a thread's
//! first 1023 read() calls show as none. Totals count from the thread's start.

pub mod decode;
mod exits;
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
use crate::counter::Counter;
use crate::sample::{printable_command, Counters, Sample, TaskSample};
use decode::Taskstats;
use exits::{ExitReader, ExitRecord};
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

/// Slack on the bounds of a start time: `ac_etime` is cut to the microsecond, and this side
/// reads the clock a moment before or after the kernel does.
const SLACK_US: u64 = 1_000;
/// Refreshes a thread's start time is remembered after it was last seen: one for an exit that
/// is read a refresh after the thread was, and one for a thread skipped once.
const KEEP_REFRESHES: u64 = 2;

#[derive(Clone, Copy, Debug)]
struct Known {
    /// What the samples say: its first estimate, so that it never changes.
    start_us: u64,
    /// Bounds on its true start (CLOCK_MONOTONIC microseconds), narrowed by every reply.
    earliest_us: u64,
    latest_us: u64,
    pid: u32,
    seen: u64,
    /// Its exit record was reported; what is still listed is an unreaped zombie.
    exited: bool,
}

impl Known {
    fn fits(&self, earliest_us: u64, latest_us: u64) -> bool {
        earliest_us <= self.latest_us.saturating_add(SLACK_US)
            && self.earliest_us <= latest_us.saturating_add(SLACK_US)
    }
}

/// Start times by thread id. The kernel gives a live thread's elapsed time (`ac_etime`, in
/// microseconds) as of each reply, so its start lies between the time the query was sent and
/// the time the reply was read, less that; an exit record gives it from when the record was
/// queued, and `ac_btime` in whole seconds. Two threads that held one id in turn have start
/// bounds that do not meet: that tells a reused id from the thread that had it, however fast
/// ids come back. Several threads may be remembered under one id, oldest first, until their
/// exit records come.
#[derive(Default)]
struct StartTimes {
    by_tid: HashMap<u32, Vec<Known>>,
    refresh: u64,
}

impl StartTimes {
    /// The start time of a thread found alive; `None` for one whose exit was already reported.
    fn polled(&mut self, tid: u32, pid: u32, earliest_us: u64, latest_us: u64) -> Option<u64> {
        let refresh = self.refresh;
        let known = self.by_tid.entry(tid).or_default();
        match known.last_mut() {
            Some(k) if k.pid == pid && k.fits(earliest_us, latest_us) => {
                k.earliest_us = k.earliest_us.max(earliest_us);
                k.latest_us = k.latest_us.min(latest_us).max(k.earliest_us);
                k.seen = refresh;
                (!k.exited).then_some(k.start_us)
            }
            _ => {
                known.push(Known {
                    start_us: earliest_us,
                    earliest_us,
                    latest_us,
                    pid,
                    seen: refresh,
                    exited: false,
                });
                Some(earliest_us)
            }
        }
    }

    /// The thread whose exit record this is: exits come in order, so the oldest one known
    /// under this id, not yet exited, whose start fits the record's.
    fn exited(&mut self, tid: u32, earliest_us: u64, latest_us: u64) -> Option<Known> {
        let refresh = self.refresh;
        let known = self
            .by_tid
            .get_mut(&tid)?
            .iter_mut()
            .find(|k| !k.exited && k.fits(earliest_us, latest_us))?;
        known.exited = true;
        known.seen = refresh;
        Some(*known)
    }

    fn finish_refresh(&mut self) {
        self.refresh += 1;
        let now = self.refresh;
        self.by_tid.retain(|_, known| {
            known.retain(|k| now - k.seen <= KEEP_REFRESHES);
            !known.is_empty()
        });
    }
}

/// Bounds on the start of a thread whose exit record was queued after `queued_after_us` and
/// read by `read_us`, from its elapsed time then and its `ac_btime` (whole wall-clock seconds,
/// a second either side; `boot_wall_us` turns them into CLOCK_MONOTONIC).
fn exit_start_bounds(
    queued_after_us: u64,
    read_us: u64,
    t: &Taskstats,
    boot_wall_us: u64,
) -> (u64, u64) {
    let (lo, hi) = (
        queued_after_us.saturating_sub(t.etime_us),
        read_us.saturating_sub(t.etime_us),
    );
    let btime = t
        .btime_s
        .saturating_mul(1_000_000)
        .saturating_sub(boot_wall_us);
    let (blo, bhi) = (btime.saturating_sub(1_000_000), btime + 1_000_000);
    // A clock step between the two readings can leave them apart; the queue's is the finer.
    if lo.max(blo) <= hi.min(bhi) {
        (lo.max(blo), hi.min(bhi))
    } else {
        (lo, hi)
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
        listener.drain(|reply| {
            heard |= matches!(reply, Reply::Stats { tid: about, .. } if about == tid)
        });
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
    exits: Option<ExitReader>,
    exit_records: Vec<ExitRecord>,
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
        let (exits, misses_exits) = match ExitListener::register(conn.family()) {
            Ok(mut listener) => {
                if !hears_exits(&mut listener) {
                    (None, Some(deaf_listener_reason(&scope.proc_root)))
                } else {
                    match ExitReader::spawn(listener) {
                        Ok(reader) => (Some(reader), None),
                        Err(e) => (
                            None,
                            Some(format!("the exit listener's thread did not start: {e}")),
                        ),
                    }
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
            exits,
            exit_records: Vec::new(),
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
        })
    }

    /// The version of `struct taskstats` this kernel sends, and its size in bytes.
    pub fn struct_version(&self) -> (u16, usize) {
        (self.struct_version, self.struct_len)
    }

    /// Whether exited threads are reported (see [`TaskSample::exited`]).
    pub fn listens_for_exits(&self) -> bool {
        self.exits.is_some()
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
            self.pids.extend(&self.scope.pids);
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
        let Some(reader) = &mut self.exits else {
            return;
        };
        self.exit_records.clear();
        reader.take(&mut self.exit_records);
        if self.exit_records.is_empty() {
            return;
        }
        // ac_btime64 is wall-clock seconds; start times here are CLOCK_MONOTONIC microseconds.
        let boot_wall_us = micros(ClockId::Realtime).saturating_sub(micros(ClockId::Monotonic));
        self.by_tid.clear();
        self.by_tid
            .extend(tasks.iter().enumerate().map(|(i, t)| (t.tid, i)));
        for r in &self.exit_records {
            let (t, tid) = (&r.stats, r.tid);
            let (earliest, latest) =
                exit_start_bounds(r.queued_after_us, r.read_us, t, boot_wall_us);
            let known = self.starts.exited(tid, earliest, latest);
            // Before v12 only a thread seen alive tells its process.
            let Some(pid) = t.tgid.or(known.map(|k| k.pid)) else {
                continue;
            };
            if !self.scope.includes(pid) {
                continue;
            }
            let start = known.map_or(earliest, |k| k.start_us);
            let task = to_task(t, tid, pid, start, self.delayacct, true);
            match self.by_tid.get(&tid) {
                // Polled, then exited: the exit record is the later one.
                Some(&i) if tasks[i].start_time == task.start_time => tasks[i] = task,
                // Another thread with this id (the one before, or after): both are rows.
                _ => tasks.push(task),
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
            // No later than the kernel's clock reading for any reply in the batch; the kernel
            // answers while `send` runs, so the first reply read comes after all of them.
            let sent_us = micros(ClockId::Monotonic);
            let mut answered_by_us = None;
            let answered = conn
                .query(tids, |i, reply| {
                    let (tid, pid) = (tids[i], tgids[i]);
                    match reply {
                        Reply::Stats { tid: about, stats } if about == tid => {
                            match decode::decode(stats) {
                                Ok(t) => {
                                    // A process leader stays listed, and answers, until its
                                    // parent reaps it; its exit record was the last word.
                                    let answered_by = *answered_by_us
                                        .get_or_insert_with(|| micros(ClockId::Monotonic));
                                    let earliest = sent_us.saturating_sub(t.etime_us);
                                    let latest = answered_by.saturating_sub(t.etime_us);
                                    if let Some(start) = starts.polled(tid, pid, earliest, latest) {
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
        sample.lost_events = self.exits.as_ref().map(ExitReader::lost);
        Ok(sample)
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        if self.delayacct {
            return Vec::new();
        }
        vec![Unavailable {
            counters: &[Counter::BlkioDelay, Counter::SwapinDelay],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_id_given_again_a_millisecond_later_is_a_new_thread() {
        let mut starts = StartTimes::default();
        // Thread A: started at 10.000 s, answered within 200 us.
        let a = starts.polled(7, 7, 10_000_000, 10_000_200).expect("alive");
        starts.finish_refresh();
        assert_eq!(
            starts.polled(7, 7, 9_999_900, 10_000_100),
            Some(a),
            "same thread"
        );
        starts.finish_refresh();
        // Thread B took the id 1.5 ms after A started.
        let b = starts.polled(7, 7, 10_001_700, 10_001_900).expect("alive");
        assert_ne!(a, b, "a new start time");
        // A's exit record (queued within the last refresh) goes to A, the oldest; B's to B.
        assert_eq!(
            starts.exited(7, 9_990_000, 10_000_500).map(|k| k.start_us),
            Some(a)
        );
        assert_eq!(
            starts.exited(7, 9_990_000, 10_100_000).map(|k| k.start_us),
            Some(b)
        );
        assert!(starts.exited(7, 0, u64::MAX).is_none(), "both exits taken");
    }

    #[test]
    fn a_zombie_after_its_exit_record_is_not_shown_again() {
        let mut starts = StartTimes::default();
        let a = starts.polled(9, 9, 5_000_000, 5_000_100).expect("alive");
        assert_eq!(
            starts.exited(9, 4_000_000, 6_000_000).map(|k| k.start_us),
            Some(a)
        );
        starts.finish_refresh();
        assert_eq!(starts.polled(9, 9, 5_000_000, 5_000_100), None);
    }

    #[test]
    fn exit_bounds_come_from_the_queue_and_the_seconds() {
        let t = decode::Taskstats {
            etime_us: 2_000_000,
            btime_s: 1_000,
            ..Default::default()
        };
        // Boot at wall-clock 990 s: the start was at about 10 s of CLOCK_MONOTONIC.
        let (lo, hi) = exit_start_bounds(12_000_000, 12_000_300, &t, 990_000_000);
        assert_eq!((lo, hi), (10_000_000, 10_000_300));
        // A record read long after it was queued: the seconds narrow it.
        let (lo, hi) = exit_start_bounds(0, 30_000_000, &t, 990_000_000);
        assert_eq!((lo, hi), (9_000_000, 11_000_000));
    }
}
