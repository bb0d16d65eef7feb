//! The sampler task: owns the session, refreshes it on a fixed schedule and sends each
//! snapshot to the event loop, with what else the screen needs from the kernel (actual disk
//! I/O from /proc/vmstat, I/O priorities of the rows on screen), so that drawing reads nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::{Instant, MissedTickBehavior};

use super::state::SamplerCommand;
use crate::session::{Session, Snapshot};

/// One refresh, as the sampler sends it.
#[derive(Clone, Debug)]
pub struct Refresh {
    pub snapshot: Snapshot,
    /// How the session grouped and based this snapshot (the user may have asked otherwise since).
    pub processes: bool,
    /// Rows are containers (see `model::group_by_container`).
    pub containers: bool,
    pub accumulated: bool,
    /// Block I/O of the whole system; None on the first refresh or without /proc/vmstat.
    pub actual: Option<ActualIo>,
}

/// What reached the disks, as the kernel counts it for the whole system (iotop's "Actual").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActualIo {
    pub read_bytes_per_s: f64,
    pub write_bytes_per_s: f64,
}

/// What the sampler tells the event loop.
#[derive(Debug)]
pub enum SamplerEvent {
    Refresh(Box<Refresh>),
    Failed(String),
    Prio(HashMap<u32, IoPrio>),
}

/// Reads /proc/vmstat's pgpgin/pgpgout (KiB since boot) and turns two readings into rates.
pub struct Vmstat {
    path: PathBuf,
    prev: Option<(std::time::Instant, u64, u64)>,
}

/// (pgpgin, pgpgout): KiB read from and written to block devices since boot.
pub fn parse_vmstat(text: &str) -> Option<(u64, u64)> {
    let mut pgpgin = None;
    let mut pgpgout = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("pgpgin", v)) => pgpgin = v.trim().parse().ok(),
            Some(("pgpgout", v)) => pgpgout = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some((pgpgin?, pgpgout?))
}

impl Vmstat {
    pub fn new(proc_root: &Path) -> Vmstat {
        Vmstat {
            path: proc_root.join("vmstat"),
            prev: None,
        }
    }

    /// Rates since the previous reading; None for the first one or when vmstat is unreadable.
    pub fn next(&mut self) -> Option<ActualIo> {
        let now = std::time::Instant::now();
        let cur = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| parse_vmstat(&t));
        let prev = std::mem::replace(&mut self.prev, cur.map(|(i, o)| (now, i, o)));
        let ((then, in0, out0), (in1, out1)) = (prev?, cur?);
        let secs = now.duration_since(then).as_secs_f64();
        // A counter that went backwards (it cannot, short of a wrap) gives no rate.
        (secs > 0.0 && in1 >= in0 && out1 >= out0).then(|| ActualIo {
            read_bytes_per_s: (in1 - in0) as f64 * 1024.0 / secs,
            write_bytes_per_s: (out1 - out0) as f64 * 1024.0 / secs,
        })
    }
}

/// A task's I/O scheduling class and level, as `ioprio_get` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoPrio {
    Realtime(u8),
    BestEffort(u8),
    Idle,
}

impl IoPrio {
    /// Highest priority first.
    pub fn rank(self) -> (u8, u8) {
        match self {
            IoPrio::Realtime(l) => (0, l),
            IoPrio::BestEffort(l) => (1, l),
            IoPrio::Idle => (2, 0),
        }
    }
}

impl std::fmt::Display for IoPrio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoPrio::Realtime(l) => write!(f, "rt/{l}"),
            IoPrio::BestEffort(l) => write!(f, "be/{l}"),
            IoPrio::Idle => f.write_str("idle"),
        }
    }
}

const IOPRIO_WHO_PROCESS: libc::c_long = 1;
const IOPRIO_CLASS_SHIFT: libc::c_long = 13;

/// The I/O priority of one thread; None when it is gone.
pub fn ioprio(tid: u32) -> Option<IoPrio> {
    // SAFETY: ioprio_get takes two integers and touches no memory of ours.
    let value = unsafe {
        libc::syscall(
            libc::SYS_ioprio_get,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_long,
        )
    };
    if value < 0 {
        return None;
    }
    // Levels are the low three bits; newer kernels keep hints above them.
    let level = (value & 0x7) as u8;
    match value >> IOPRIO_CLASS_SHIFT {
        1 => Some(IoPrio::Realtime(level)),
        2 => Some(IoPrio::BestEffort(level)),
        3 => Some(IoPrio::Idle),
        _ => nice_ioprio(tid),
    }
}

/// A task that never set an I/O priority gets one from its CPU policy and nice value, as the
/// kernel's `task_nice_ioclass`/`task_nice_ioprio` derive it.
fn nice_ioprio(tid: u32) -> Option<IoPrio> {
    // SAFETY: sched_getscheduler takes a task id and touches no memory of ours.
    let policy = unsafe { libc::sched_getscheduler(tid as libc::pid_t) };
    // SAFETY: the raw getpriority syscall takes two integers and touches no memory of ours; it
    // returns 20 - nice (1..=40), so unlike the libc wrapper a failure is not a valid value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_getpriority,
            libc::PRIO_PROCESS as libc::c_long,
            tid as libc::c_long,
        )
    };
    if policy < 0 || ret < 0 {
        return None;
    }
    let level = ((20 - ret) + 20).clamp(0, 39) as u8 / 5;
    Some(match policy {
        libc::SCHED_IDLE => IoPrio::Idle,
        libc::SCHED_FIFO | libc::SCHED_RR => IoPrio::Realtime(level),
        _ => IoPrio::BestEffort(level),
    })
}

fn prio_of(ids: &[u32]) -> HashMap<u32, IoPrio> {
    ids.iter()
        .filter_map(|&id| Some((id, ioprio(id)?)))
        .collect()
}

/// Refreshes `session` every `delay` until the event loop hangs up. Session sources are not
/// `Send` (eBPF maps, netlink sockets), so this runs as a local task on the event loop's
/// thread; a refresh is a few milliseconds, and keys queue meanwhile.
pub async fn run(
    mut session: Session,
    delay: Duration,
    proc_root: PathBuf,
    mut commands: UnboundedReceiver<SamplerCommand>,
    events: UnboundedSender<SamplerEvent>,
) {
    // Absolute deadlines: a slow refresh delays the next one, never shifts the ones after it.
    let mut ticks = tokio::time::interval_at(Instant::now() + delay, delay);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut vmstat = Vmstat::new(&proc_root);
    // Primes the baseline, as session.start() did for the counters.
    vmstat.next();
    let mut on_screen: Vec<u32> = Vec::new();
    loop {
        let event = tokio::select! {
            _ = ticks.tick() => match session.refresh() {
                Ok(snapshot) => SamplerEvent::Refresh(Box::new(Refresh {
                    snapshot,
                    processes: session.model_options.processes,
                    containers: session.group_containers,
                    accumulated: session.accumulated,
                    actual: vmstat.next(),
                })),
                Err(e) => SamplerEvent::Failed(e.to_string()),
            },
            command = commands.recv() => match command {
                None => break,
                Some(SamplerCommand::Processes(p)) => {
                    session.model_options.processes = p;
                    continue;
                }
                Some(SamplerCommand::Containers(c)) => {
                    session.group_containers = c;
                    continue;
                }
                Some(SamplerCommand::Accumulated(a)) => {
                    session.accumulated = a;
                    continue;
                }
                Some(SamplerCommand::Prio(ids)) => {
                    on_screen = ids;
                    SamplerEvent::Prio(prio_of(&on_screen))
                }
            },
        };
        let refreshed = matches!(event, SamplerEvent::Refresh(_));
        if events.send(event).is_err() {
            break;
        }
        // Priorities change rarely; the rows on screen get theirs with every refresh.
        if refreshed
            && !on_screen.is_empty()
            && events
                .send(SamplerEvent::Prio(prio_of(&on_screen)))
                .is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmstat_pages_are_kib() {
        let text = "nr_free_pages 12\npgpgin 1000\npgpgout 2500\npswpin 0\n";
        assert_eq!(parse_vmstat(text), Some((1000, 2500)));
        assert_eq!(parse_vmstat("pgpgin 1\n"), None, "both counters are needed");
    }

    #[test]
    fn actual_io_from_two_readings() {
        let dir = std::env::temp_dir().join(format!("tui-vmstat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("vmstat"), "pgpgin 100\npgpgout 100\n").expect("writing vmstat");
        let mut v = Vmstat::new(&dir);
        assert_eq!(v.next(), None, "no rate from one reading");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.join("vmstat"), "pgpgin 100\npgpgout 110\n").expect("writing vmstat");
        let actual = v.next().expect("a rate from two readings");
        assert_eq!(actual.read_bytes_per_s, 0.0);
        assert!(actual.write_bytes_per_s > 0.0 && actual.write_bytes_per_s <= 10.0 * 1024.0 / 0.02);
        std::fs::remove_dir_all(&dir).expect("removing temp dir");
    }

    /// Sets the calling thread's I/O priority, as `ionice` would.
    fn set_own_ioprio(class: libc::c_long, level: libc::c_long) -> u32 {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        // SAFETY: ioprio_set takes three integers and touches no memory of ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                tid as libc::c_long,
                (class << IOPRIO_CLASS_SHIFT) | level,
            )
        };
        assert_eq!(r, 0, "ioprio_set: {}", std::io::Error::last_os_error());
        tid
    }

    #[test]
    fn io_priority_reads_back_what_was_set() {
        // A thread of its own, so that the rest of the tests keep their priority.
        let read = std::thread::spawn(|| {
            let tid = set_own_ioprio(2, 2);
            let be = ioprio(tid);
            set_own_ioprio(3, 0);
            let idle = ioprio(tid);
            // No class: the kernel derives one from the nice value, (nice + 20) / 5.
            set_own_ioprio(0, 0);
            // SAFETY: setpriority takes integers only; on Linux a TID names one thread.
            let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 10) };
            assert_eq!(r, 0, "setpriority: {}", std::io::Error::last_os_error());
            (be, idle, ioprio(tid))
        })
        .join()
        .expect("ioprio thread");
        assert_eq!(
            read,
            (
                Some(IoPrio::BestEffort(2)),
                Some(IoPrio::Idle),
                Some(IoPrio::BestEffort(6))
            )
        );
        assert_eq!(IoPrio::BestEffort(2).to_string(), "be/2");
        assert_eq!(IoPrio::Realtime(0).to_string(), "rt/0");
        assert_eq!(IoPrio::Idle.to_string(), "idle");
        assert_eq!(ioprio(i32::MAX as u32), None, "no such task");
    }
}
