//! The eBPF source: loads the probes embedded from `profiler-ebpf` and reads per-thread
//! counters, one of two ways, chosen by trying:
//! - task iterator (kernel BTF, Linux 5.8+): each refresh reads every thread's own I/O
//!   accounting from the kernel, an exit probe keeps the last counters of threads that end in
//!   between. Counts since each thread started, exactly as /proc/PID/io; nothing on the syscall
//!   path.
//! - syscall hook (classic tracepoints, for kernels without BTF): counts syscalls, block reads
//!   and dirtied pages from the moment the probes were attached.

mod batch;
mod hook;
mod iterator;
mod kernel_btf;
mod loading;
mod tid_table;
mod tracefs;
mod verifier;

use std::collections::HashSet;

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::Ebpf;
use profiler_common::{Stat, TaskIo, EXITED_MAP, NOT_MEASURED, STATS_MAP};

pub use self::loading::report;
use self::loading::{kernel_version, release_freed_heap, take_map, Cause};
use super::{IoSource, Scope, SourceError, SourceKind, Unavailable};
use crate::counter::Counter;
use crate::sample::{printable_command, Counters, Sample, TaskSample};

/// Why the eBPF source cannot open or read. A variant keeps what aya or the kernel said as its
/// source; [`report`] puts the chain on one line for people.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error(
        "not permitted to load eBPF programs: needs CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN \
         before Linux 5.8), and is refused inside a user namespace; run as root, or give the \
         binary those capabilities"
    )]
    PermissionDenied {
        #[source]
        cause: Cause,
    },
    #[error("loading the eBPF object failed")]
    Load(#[source] Cause),
    #[error("{program} ({attach_point})")]
    Attach {
        program: &'static str,
        attach_point: String,
        #[source]
        cause: Cause,
    },
    #[error(
        "no kernel BTF (/sys/kernel/btf/vmlinux), and tracefs is not available ({tracefs}); \
         mount it with `mount -t tracefs nodev /sys/kernel/tracing` (needs CAP_SYS_ADMIN)"
    )]
    NoAttachPoint { tracefs: String },
    #[error(
        "needs Linux 5.8 or later (BPF ring buffer); this kernel is {release}: use \
         `--source procfs`, or taskstats from the host's network namespace"
    )]
    KernelTooOld { release: String },
    #[error("the kernel has no BTF ({0})")]
    NoBtf(String),
    #[error("task iterator: {}; classic tracepoints", report(.iterator.as_ref()))]
    NoWay {
        iterator: Box<EbpfError>,
        #[source]
        hook: Box<EbpfError>,
    },
    #[error("reading {map} failed")]
    Read {
        map: &'static str,
        #[source]
        cause: Cause,
    },
}

/// How the counters are collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probes {
    /// A task iterator reads the kernel's own counters at each refresh (needs BTF).
    TaskIterator,
    /// Classic tracepoints count each syscall, block read and dirtied page.
    SyscallHook,
}

impl Probes {
    pub fn describe(self) -> &'static str {
        match self {
            Probes::TaskIterator => {
                "task iterator (kernel counters, no syscall hook; IO> from scheduler tracepoints)"
            }
            Probes::SyscallHook => "classic tracepoints (syscall hook)",
        }
    }
}

enum Reader {
    Iterator {
        /// Reused across refreshes.
        buf: Vec<u8>,
        /// Why the scheduler probes that measure I/O wait are missing, if they are.
        no_iowait: Option<String>,
    },
    Hook(Box<hook::HookMaps>),
}

pub struct EbpfSource {
    scope: Scope,
    reader: Reader,
    exited: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    probes: Probes,
    /// Threads whose exit record was reported and that the kernel still lists (zombies not
    /// yet reaped), by (TID, start time): not shown again as live.
    reported_exits: HashSet<(u32, u64)>,
    /// The records of live threads of the last refresh, kept for its capacity.
    live: Vec<TaskIo>,
    /// Owns the programs and their links: dropping it detaches everything.
    ebpf: Ebpf,
}

impl EbpfSource {
    /// Opens the task iterator where the kernel takes it, the classic tracepoints otherwise.
    pub fn open(scope: Scope) -> Result<Self, EbpfError> {
        Self::open_with(scope, None)
    }

    /// Opens the given way, or the best one the kernel takes with `None`. Each way finds what
    /// it needs in the kernel (BTF or tracefs), loads the object and attaches its programs;
    /// then the maps every way reads are taken, and the heap start-up used is given back.
    pub fn open_with(scope: Scope, probes: Option<Probes>) -> Result<Self, EbpfError> {
        check_kernel_version(&scope)?;
        let (mut ebpf, reader, probes) = open_probes(&scope, probes)?;
        let logger = kernel_log(&mut ebpf);
        let exited = RingBuf::try_from(take_map(&mut ebpf, EXITED_MAP)?)
            .map_err(|e| EbpfError::Load(e.into()))?;
        let stats = PerCpuArray::try_from(take_map(&mut ebpf, STATS_MAP)?)
            .map_err(|e| EbpfError::Load(e.into()))?;
        log::info!("ebpf: {}", probes.describe());
        release_freed_heap();
        Ok(EbpfSource {
            scope,
            reader,
            exited,
            stats,
            logger,
            probes,
            reported_exits: HashSet::new(),
            live: Vec::new(),
            ebpf,
        })
    }

    pub fn probes(&self) -> Probes {
        self.probes
    }

    fn to_task(&self, io: &TaskIo) -> TaskSample {
        let (read_bytes, write_bytes, cancelled, iowait) = match &self.reader {
            Reader::Iterator { no_iowait, .. } => (true, true, true, no_iowait.is_none()),
            Reader::Hook(hook) => (
                hook.no_read_bytes.is_none(),
                hook.no_write_bytes.is_none(),
                false,
                false,
            ),
        };
        TaskSample {
            tid: io.tid,
            pid: io.tgid,
            uid: Some(io.uid),
            command: printable_command(&io.comm),
            start_time: (io.start_time_ns != 0).then_some(io.start_time_ns),
            cgroup_id: Some(io.cgroup_id),
            counters: Counters {
                rchar: Some(io.rchar),
                wchar: Some(io.wchar),
                syscr: Some(io.syscr),
                syscw: Some(io.syscw),
                read_bytes: read_bytes.then_some(io.read_bytes),
                write_bytes: write_bytes.then_some(io.write_bytes),
                cancelled_write_bytes: cancelled.then_some(io.cancelled_write_bytes),
                blkio_delay_ns: (iowait && io.blkio_delay_ns != NOT_MEASURED)
                    .then_some(io.blkio_delay_ns),
                swapin_delay_ns: None,
            },
            exited: io.exited != 0,
        }
    }

    fn in_scope(&self, io: &TaskIo) -> bool {
        self.scope.pids.is_empty() || self.scope.pids.contains(&io.tgid)
    }

    /// Every live thread into `out`; returns how many vanished while being read.
    fn read_live(&mut self, out: &mut Vec<TaskIo>) -> Result<u64, EbpfError> {
        match &mut self.reader {
            Reader::Iterator { buf, .. } => {
                iterator::read_iterator(&mut self.ebpf, buf, out)?;
                Ok(0)
            }
            Reader::Hook(hook) => {
                hook.tids.for_each_live(|io| out.push(io));
                hook::read_hashed(&hook.tasks, &mut hook.batch, out)
            }
        }
    }

    fn lost_events(&self) -> Result<u64, EbpfError> {
        let mut lost = 0;
        for stat in [Stat::TaskMapFull, Stat::ExitRingFull] {
            let per_cpu = self
                .stats
                .get(&(stat as u32), 0)
                .map_err(|e| EbpfError::Read {
                    map: STATS_MAP,
                    cause: e.into(),
                })?;
            lost += per_cpu.iter().sum::<u64>();
        }
        Ok(lost)
    }
}

/// The ring buffer of BPF needs Linux 5.8: older kernels are refused with that reason rather
/// than with whatever the loader trips over first.
fn check_kernel_version(scope: &Scope) -> Result<(), EbpfError> {
    let release =
        std::fs::read_to_string(scope.proc_root.join("sys/kernel/osrelease")).unwrap_or_default();
    if kernel_version(&release).is_some_and(|v| v < (5, 8)) {
        return Err(EbpfError::KernelTooOld {
            release: release.trim().to_owned(),
        });
    }
    Ok(())
}

/// The probes loaded and attached the way asked for; with `None`, the task iterator, else the
/// classic tracepoints, saying why once. A refusal of the kernel's ends the search: the other
/// way would be refused too.
fn open_probes(scope: &Scope, probes: Option<Probes>) -> Result<(Ebpf, Reader, Probes), EbpfError> {
    let hook = || hook::open_hook(scope).map(|(ebpf, reader)| (ebpf, reader, Probes::SyscallHook));
    if probes == Some(Probes::SyscallHook) {
        return hook();
    }
    let iterator = match iterator::open_iterator(scope) {
        Ok((ebpf, reader)) => return Ok((ebpf, reader, Probes::TaskIterator)),
        Err(e) if probes.is_some() => return Err(e),
        Err(e @ EbpfError::PermissionDenied { .. }) => return Err(e),
        Err(e) => e,
    };
    match hook() {
        Ok(opened) => {
            log::warn!(
                "ebpf: task iterator unavailable: {}; counting with classic tracepoints \
                 instead (a hook on every syscall)",
                report(&iterator)
            );
            Ok(opened)
        }
        Err(hook @ EbpfError::PermissionDenied { .. }) => Err(hook),
        Err(hook) => Err(EbpfError::NoWay {
            iterator: Box::new(iterator),
            hook: Box::new(hook),
        }),
    }
}

/// The probes' own log messages, shown with `-v`; without them the probes work all the same.
fn kernel_log(ebpf: &mut Ebpf) -> Option<aya_log::EbpfLogger<&'static dyn log::Log>> {
    aya_log::EbpfLogger::init(ebpf)
        .inspect_err(|e| log::debug!("ebpf: kernel-side log messages unavailable: {e}"))
        .ok()
}

impl IoSource for EbpfSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Ebpf
    }

    fn sample(&mut self) -> Result<Sample, SourceError> {
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
        // Reused: a fresh vector of 10,000 records is a megabyte of new pages each refresh.
        let mut live = std::mem::take(&mut self.live);
        live.clear();
        let skipped = self.read_live(&mut live)?;
        let key = |io: &TaskIo| (io.tid, io.start_time_ns);
        let previously_reported = self.reported_exits.clone();
        let mut still_listed = HashSet::new();
        if !self.reported_exits.is_empty() {
            live.retain(|io| {
                let reported = self.reported_exits.contains(&key(io));
                if reported {
                    still_listed.insert(key(io));
                }
                !reported
            });
        }
        // Sized at once: grown by doubling, the vector would be copied a dozen times over.
        let mut tasks = Vec::with_capacity(live.len() + 64);
        tasks.extend(
            live.iter()
                .filter(|io| self.in_scope(io))
                .map(|io| self.to_task(io)),
        );
        let mut exited = Vec::new();
        while let Some(item) = self.exited.next() {
            if item.len() >= std::mem::size_of::<TaskIo>() {
                // SAFETY: the kernel side writes whole TaskIo records (repr(C), plain integers)
                // into the ring; the length was checked and read_unaligned copes with alignment.
                let io = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<TaskIo>()) };
                exited.push(io);
            }
        }
        // A thread listed live and then found in the ring exited in between: its record is final.
        let gone: HashSet<(u32, u64)> = exited.iter().map(key).collect();
        tasks.retain(|t| !gone.contains(&(t.tid, t.start_time.unwrap_or(0))));
        still_listed.extend(&gone);
        self.reported_exits = still_listed;
        for io in exited.iter().filter(|io| self.in_scope(io)) {
            tasks.push(self.to_task(io));
        }
        if let Reader::Hook(hook) = &mut self.reader {
            // The threads the probes have not seen did no I/O since they were attached; a
            // thread whose exit was reported is not listed again while it waits to be reaped.
            let seen: HashSet<u32> = live
                .iter()
                .chain(&exited)
                .map(|io| io.tid)
                .chain(previously_reported.iter().map(|&(tid, _)| tid))
                .collect();
            let mut idle = Vec::new();
            let listed = hook
                .idle
                .list(&self.scope.proc_root, &self.scope.pids, &seen, &mut idle);
            self.reported_exits.extend(
                previously_reported
                    .iter()
                    .filter(|(tid, _)| listed.contains(tid)),
            );
            for io in &idle {
                let mut task = self.to_task(io);
                task.cgroup_id = None;
                task.uid = (io.uid != u32::MAX).then_some(io.uid);
                tasks.push(task);
            }
        }
        self.live = live;
        let mut sample = Sample::new(tasks);
        sample.lost_events = Some(self.lost_events()?);
        sample.skipped_tasks = skipped;
        Ok(sample)
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        let mut out = Vec::new();
        if let Reader::Iterator { no_iowait, .. } = &self.reader {
            out.push(Unavailable {
                counters: &[Counter::SwapinDelay],
                reason: "no tracepoint marks swap-in waits; taskstats has them with \
                         kernel.task_delayacct=1"
                    .into(),
            });
            if let Some(why) = no_iowait {
                out.push(Unavailable {
                    counters: &[Counter::BlkioDelay],
                    reason: format!("the scheduler probes that measure it: {why}"),
                });
            }
        }
        if let Reader::Hook(hook) = &self.reader {
            out.push(Unavailable {
                counters: &[Counter::BlkioDelay, Counter::SwapinDelay],
                reason: "measured only with kernel BTF (task iterator), or by taskstats with \
                         kernel.task_delayacct=1"
                    .into(),
            });
            out.push(Unavailable {
                counters: &[Counter::CancelledWriteBytes],
                reason: "no kernel BTF to read it from, and no tracepoint marks truncated dirty \
                         pages"
                    .into(),
            });
            if let Some(why) = &hook.no_read_bytes {
                out.push(Unavailable {
                    counters: &[Counter::ReadBytes],
                    reason: why.clone(),
                });
            }
            if let Some(why) = &hook.no_write_bytes {
                out.push(Unavailable {
                    counters: &[Counter::WriteBytes],
                    reason: why.clone(),
                });
            }
        }
        out
    }

    fn method(&self) -> Option<&'static str> {
        Some(self.probes.describe())
    }

    fn totals_since(&self) -> &'static str {
        match self.probes {
            Probes::TaskIterator => "task start",
            Probes::SyscallHook => "probes attached",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_compare_numerically() {
        assert_eq!(kernel_version("5.10.0-46-cloud-amd64\n"), Some((5, 10)));
        assert_eq!(kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(kernel_version("4.19.0-27-amd64"), Some((4, 19)));
        assert!(kernel_version("4.19.0").unwrap() < (5, 8));
        assert!(kernel_version("5.10.0").unwrap() >= (5, 8));
        assert_eq!(kernel_version("garbage"), None);
    }
}
