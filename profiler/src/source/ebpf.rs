//! The eBPF source: loads the probes embedded from `profiler-ebpf` and reads per-thread
//! counters, one of two ways, chosen by trying:
//! - task iterator (kernel BTF, Linux 5.8+): each refresh reads every thread's own I/O
//!   accounting from the kernel, an exit probe keeps the last counters of threads that end in
//!   between. Counts since each thread started, exactly as /proc/PID/io; nothing on the syscall
//!   path.
//! - syscall hook (classic tracepoints, for kernels without BTF): counts syscalls, block reads
//!   and dirtied pages from the moment the probes were attached.

mod batch;
mod kernel_btf;
mod tid_table;
mod tracefs;
mod verifier;

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, Iter, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};
use profiler_common::{
    Config, Stat, TaskIo, BIO_QUEUE_PROG, CONFIG_GLOBAL, DIRTY_PROG, EXITED_MAP, IOWAIT_MAP,
    IOWAIT_SWITCH_PROG, IOWAIT_WAKEUP_PROG, MAX_TIDS, NOT_MEASURED, SCHED_EXEC_PROG,
    SCHED_EXIT_PROG, STATS_MAP, SYS_EXIT_PROG, TASKS_MAP, TASK_EXIT_PROG, TASK_ITER_PROG, TIDS_MAP,
};

use self::batch::{BatchError, BatchReader};
use self::tid_table::TidTable;
use super::{IoSource, Scope, SourceError, SourceKind, Unavailable};
use crate::sample::{printable_command, Counters, Sample, TaskSample};

/// The probes, built for bpfel-unknown-none by build.rs and embedded so the binary runs alone.
static PROBES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler-probes.o"));

/// Inode number of the initial pid namespace (PROC_PID_INIT_INO).
const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;

/// The kernel's default `kernel.pid_max`, for when it cannot be read.
const PID_MAX_DEFAULT: u32 = 32_768;

/// Bytes read from the task iterator per read(2); the kernel fills at most a few pages a call.
const ITER_READ_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error(
        "not permitted to load eBPF programs ({detail}): needs CAP_BPF and CAP_PERFMON \
         (CAP_SYS_ADMIN before Linux 5.8), and is refused inside a user namespace; \
         run as root, or give the binary those capabilities"
    )]
    PermissionDenied { detail: String },
    #[error("loading the eBPF object failed: {0}")]
    Load(String),
    #[error("{program} ({attach_point}): {message}")]
    Attach {
        program: &'static str,
        attach_point: String,
        message: String,
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
    #[error("task iterator: {iterator}; classic tracepoints: {hook}")]
    NoWay {
        iterator: String,
        hook: Box<EbpfError>,
    },
    #[error("reading {map} failed: {message}")]
    Read { map: &'static str, message: String },
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
    Hook(Box<HookMaps>),
}

/// What the syscall-hook path reads, and which of its disk probes are missing.
struct HookMaps {
    /// Threads with TIDs below its length; the others are in `tasks`.
    tids: TidTable,
    /// The TASKS hash map.
    tasks: Map,
    /// None once the kernel said it has no batch lookup: then `tasks` is read entry by entry.
    batch: Option<BatchReader<u32, TaskIo>>,
    /// Why the block or page-cache probe is missing, if one is.
    no_read_bytes: Option<String>,
    no_write_bytes: Option<String>,
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
    /// Owns the programs and their links: dropping it detaches everything.
    ebpf: Ebpf,
}

fn is_permission_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// An error and its causes on one line; a verifier log is reduced to the line that says why
/// (the whole log goes to the debug log, shown with `-v`).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    if let Some(aya::programs::ProgramError::LoadError {
        io_error,
        verifier_log,
    }) = err.downcast_ref::<aya::programs::ProgramError>()
    {
        let log = format!("{verifier_log:?}");
        log::debug!("ebpf: verifier log:\n{log}");
        return format!(
            "the verifier rejected it ({io_error}): {}",
            verifier::reason(&log)
        );
    }
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        // Some errors repeat their cause in their own text: say it once.
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
}

fn permission_or(e: &(dyn std::error::Error + 'static), other: EbpfError) -> EbpfError {
    if is_permission_error(e) {
        EbpfError::PermissionDenied { detail: chain(e) }
    } else {
        other
    }
}

/// Settings every path shares: the pid namespace the profiler sees.
fn base_config(scope: &Scope) -> Config {
    let mut config = Config::default();
    let ns = std::fs::metadata(scope.proc_root.join("self/ns/pid")).ok();
    if let Some(ns) = ns.filter(|ns| ns.ino() != INIT_PID_NS_INO) {
        config.translate_pids = 1;
        config.pidns_dev = ns.dev();
        config.pidns_ino = ns.ino();
    }
    config
}

/// Sizes of the maps that grow with the number of threads; 1 for those a path does not use.
struct MapSizes {
    tids: u32,
    tasks: u32,
    iowait: u32,
}

/// The kernel's `kernel.pid_max`: TIDs stay below it.
fn pid_max(scope: &Scope) -> u32 {
    std::fs::read_to_string(scope.proc_root.join("sys/kernel/pid_max"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(PID_MAX_DEFAULT)
}

/// Loads the object; `btf` is the kernel's, parsed once by the caller (the loader would parse
/// it again on its own otherwise), or None where no program needs it.
fn load_object(config: &Config, sizes: MapSizes, btf: Option<&Btf>) -> Result<Ebpf, EbpfError> {
    EbpfLoader::new()
        .btf(btf)
        .override_global(CONFIG_GLOBAL, config, true)
        .map_max_entries(TIDS_MAP, sizes.tids)
        .map_max_entries(TASKS_MAP, sizes.tasks)
        .map_max_entries(IOWAIT_MAP, sizes.iowait)
        .load(PROBES)
        .map_err(|e| {
            if is_permission_error(&e) {
                EbpfError::PermissionDenied { detail: chain(&e) }
            } else {
                EbpfError::Load(chain(&e))
            }
        })
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, EbpfError> {
    ebpf.take_map(name)
        .ok_or_else(|| EbpfError::Load(format!("map {name} missing from the object")))
}

fn attach_error<'a>(
    program: &'static str,
    attach_point: &'a str,
) -> impl Fn(String) -> EbpfError + 'a {
    move |message| EbpfError::Attach {
        program,
        attach_point: attach_point.into(),
        message,
    }
}

fn attach_btf(
    ebpf: &mut Ebpf,
    btf: &Btf,
    program: &'static str,
    tracepoint: &str,
) -> Result<(), EbpfError> {
    let err = attach_error(program, tracepoint);
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| err("program missing from the object".into()))?
        .try_into()
        .map_err(|e| err(chain(&e)))?;
    prog.load(tracepoint, btf)
        .map_err(|e| permission_or(&e, err(chain(&e))))?;
    prog.attach()
        .map_err(|e| permission_or(&e, err(chain(&e))))?;
    Ok(())
}

fn attach_classic(
    ebpf: &mut Ebpf,
    program: &'static str,
    category: &str,
    name: &str,
) -> Result<(), EbpfError> {
    let point = format!("{category}/{name}");
    let err = attach_error(program, &point);
    let prog: &mut TracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| err("program missing from the object".into()))?
        .try_into()
        .map_err(|e| err(chain(&e)))?;
    prog.load().map_err(|e| permission_or(&e, err(chain(&e))))?;
    prog.attach(category, name)
        .map_err(|e| permission_or(&e, err(chain(&e))))?;
    Ok(())
}

/// Loads the task iterator, its exit probe and the I/O wait probes (their failure costs only
/// IO>, and says why). Needs the kernel's BTF for both the offsets and the attach points.
fn open_iterator(scope: &Scope) -> Result<(Ebpf, Reader), EbpfError> {
    if !std::path::Path::new(kernel_btf::VMLINUX).exists() {
        return Err(EbpfError::NoBtf(format!("no {}", kernel_btf::VMLINUX)));
    }
    let btf = Btf::from_sys_fs()
        .map_err(|e| EbpfError::NoBtf(format!("{}: {e}", kernel_btf::VMLINUX)))?;
    let mut config = base_config(scope);
    // The parsed BTF (tens of MB) is dropped as soon as the offsets are known.
    config.task = kernel_btf::load()
        .and_then(|vmlinux| kernel_btf::task_layout(&vmlinux))
        .map_err(EbpfError::Load)?;
    config.iowait = 1;
    // The syscall-hook maps are not used on this path: the smallest size the kernel takes.
    let sizes = MapSizes {
        tids: 1,
        tasks: 1,
        iowait: pid_max(scope).clamp(1, MAX_TIDS),
    };
    let mut ebpf = load_object(&config, sizes, Some(&btf))?;
    let err = attach_error(TASK_ITER_PROG, "iter/task");
    let prog: &mut Iter = ebpf
        .program_mut(TASK_ITER_PROG)
        .ok_or_else(|| err("program missing from the object".into()))?
        .try_into()
        .map_err(|e| err(chain(&e)))?;
    prog.load("task", &btf)
        .map_err(|e| permission_or(&e, err(chain(&e))))?;
    attach_btf(&mut ebpf, &btf, TASK_EXIT_PROG, "sched_process_exit")?;
    let no_iowait = [
        (IOWAIT_SWITCH_PROG, "sched_switch"),
        (IOWAIT_WAKEUP_PROG, "sched_waking"),
    ]
    .into_iter()
    .find_map(|(program, tracepoint)| {
        attach_btf(&mut ebpf, &btf, program, tracepoint)
            .err()
            .map(|e| e.to_string())
    });
    let reader = Reader::Iterator {
        buf: Vec::with_capacity(ITER_READ_BYTES),
        no_iowait,
    };
    Ok((ebpf, reader))
}

/// Attaches the classic tracepoints; tracefs is mounted for as long as that takes when it is
/// not mounted already.
fn open_hook(scope: &Scope) -> Result<(Ebpf, Reader), EbpfError> {
    let tracefs =
        tracefs::ensure_mounted().map_err(|tracefs| EbpfError::NoAttachPoint { tracefs })?;
    let root = &tracefs.root;
    let mut config = base_config(scope);
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    config.page_size = u32::try_from(page_size).unwrap_or(4096);
    let bio = tracefs::bio_queue_offsets(root);
    if let Ok((nr_sector, rwbs)) = bio {
        config.bio_queue_nr_sector_off = nr_sector;
        config.bio_queue_rwbs_off = rwbs;
    }
    let dirty = tracefs::dirty_tracepoint(root);
    if let Ok((_, name)) = dirty {
        config.dirty_name_off = name;
    }
    // The TIDS array covers every TID the kernel hands out, when that range is not too large.
    // In a pid namespace (Linux 6.14+) this is the namespace's limit, which may be lower than
    // the host's: TIDs above the array go to the hash map, slower but just as complete.
    let sizes = MapSizes {
        tids: pid_max(scope).clamp(1, MAX_TIDS),
        tasks: profiler_common::MAX_TASKS,
        iowait: 1,
    };
    let mut ebpf = load_object(&config, sizes, None)?;
    tracefs::check_sys_exit_format(root)
        .map_err(attach_error(SYS_EXIT_PROG, "raw_syscalls/sys_exit"))?;
    for (program, category, name) in [
        (SYS_EXIT_PROG, "raw_syscalls", "sys_exit"),
        (SCHED_EXIT_PROG, "sched", "sched_process_exit"),
        (SCHED_EXEC_PROG, "sched", "sched_process_exec"),
    ] {
        attach_classic(&mut ebpf, program, category, name)?;
    }
    // The disk probes are attached one by one: a kernel without one still gets the other.
    let no_read_bytes = bio
        .and_then(|_| {
            attach_classic(&mut ebpf, BIO_QUEUE_PROG, "block", "block_bio_queue")
                .map_err(|e| e.to_string())
        })
        .err();
    let no_write_bytes = dirty
        .and_then(|(tracepoint, _)| {
            attach_classic(&mut ebpf, DIRTY_PROG, "writeback", tracepoint)
                .map_err(|e| e.to_string())
        })
        .err();
    drop(tracefs);
    let tids = match take_map(&mut ebpf, TIDS_MAP)? {
        Map::Array(data) => {
            TidTable::new(data).map_err(|e| EbpfError::Load(format!("mapping {TIDS_MAP}: {e}")))?
        }
        _ => return Err(EbpfError::Load(format!("{TIDS_MAP} is not an array"))),
    };
    let tasks = take_map(&mut ebpf, TASKS_MAP)?;
    // Checked once here, so a map of another shape fails the start, not every refresh.
    BpfHashMap::<_, u32, TaskIo>::try_from(&tasks).map_err(|e| EbpfError::Load(chain(&e)))?;
    let reader = Reader::Hook(Box::new(HookMaps {
        tids,
        tasks,
        batch: Some(BatchReader::new()),
        no_read_bytes,
        no_write_bytes,
    }));
    Ok((ebpf, reader))
}

impl EbpfSource {
    /// Opens the task iterator where the kernel takes it, the classic tracepoints otherwise.
    pub fn open(scope: Scope) -> Result<Self, EbpfError> {
        Self::open_with(scope, None)
    }

    /// Opens the given way, or the best one the kernel takes with `None`.
    pub fn open_with(scope: Scope, probes: Option<Probes>) -> Result<Self, EbpfError> {
        let release = std::fs::read_to_string(scope.proc_root.join("sys/kernel/osrelease"))
            .unwrap_or_default();
        if kernel_version(&release).is_some_and(|v| v < (5, 8)) {
            return Err(EbpfError::KernelTooOld {
                release: release.trim().to_owned(),
            });
        }
        let iterator = match probes {
            Some(Probes::SyscallHook) => None,
            _ => Some(open_iterator(&scope)),
        };
        let (mut ebpf, reader, probes) = match iterator {
            Some(Ok((ebpf, reader))) => (ebpf, reader, Probes::TaskIterator),
            Some(Err(e)) if probes.is_some() => return Err(e),
            Some(Err(e @ EbpfError::PermissionDenied { .. })) => return Err(e),
            Some(Err(iterator)) => match open_hook(&scope) {
                Ok((ebpf, reader)) => {
                    log::warn!(
                        "ebpf: task iterator unavailable: {iterator}; counting with classic \
                         tracepoints instead (a hook on every syscall)"
                    );
                    (ebpf, reader, Probes::SyscallHook)
                }
                Err(hook @ EbpfError::PermissionDenied { .. }) => return Err(hook),
                Err(hook) => {
                    return Err(EbpfError::NoWay {
                        iterator: iterator.to_string(),
                        hook: Box::new(hook),
                    })
                }
            },
            None => {
                let (ebpf, reader) = open_hook(&scope)?;
                (ebpf, reader, Probes::SyscallHook)
            }
        };
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(l) => Some(l),
            Err(e) => {
                log::debug!("ebpf: kernel-side log messages unavailable: {e}");
                None
            }
        };
        let exited = RingBuf::try_from(take_map(&mut ebpf, EXITED_MAP)?)
            .map_err(|e| EbpfError::Load(chain(&e)))?;
        let stats = PerCpuArray::try_from(take_map(&mut ebpf, STATS_MAP)?)
            .map_err(|e| EbpfError::Load(chain(&e)))?;
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
                read_iterator(&mut self.ebpf, buf, out)?;
                Ok(0)
            }
            Reader::Hook(hook) => {
                hook.tids.for_each_live(|io| out.push(io));
                read_hashed(&hook.tasks, &mut hook.batch, out)
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
                    message: chain(&e),
                })?;
            lost += per_cpu.iter().sum::<u64>();
        }
        Ok(lost)
    }
}

/// (major, minor) of a kernel release string such as `5.10.0-46-cloud-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Hands the heap that opening freed (the parsed kernel BTF, several tens of MB) back to the
/// system, which glibc would otherwise keep for reuse.
fn release_freed_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One pass of the task iterator: a record per thread, read from a new iterator instance.
fn read_iterator(
    ebpf: &mut Ebpf,
    buf: &mut Vec<u8>,
    out: &mut Vec<TaskIo>,
) -> Result<(), EbpfError> {
    let read_error = |message: String| EbpfError::Read {
        map: TASK_ITER_PROG,
        message,
    };
    let prog: &mut Iter = ebpf
        .program_mut(TASK_ITER_PROG)
        .ok_or_else(|| read_error("program missing".into()))?
        .try_into()
        .map_err(|e| read_error(chain(&e)))?;
    let link = prog.attach().map_err(|e| read_error(chain(&e)))?;
    let link = prog.take_link(link).map_err(|e| read_error(chain(&e)))?;
    let mut file = link.into_file().map_err(|e| read_error(chain(&e)))?;
    buf.clear();
    file.read_to_end(buf)
        .map_err(|e| read_error(e.to_string()))?;
    const RECORD: usize = std::mem::size_of::<TaskIo>();
    out.reserve(buf.len() / RECORD);
    for record in buf.chunks_exact(RECORD) {
        // SAFETY: the iterator writes whole TaskIo records (repr(C), plain integers) back to
        // back; `record` has exactly that length and read_unaligned copes with alignment.
        out.push(unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<TaskIo>()) });
    }
    Ok(())
}

/// Every entry of the TASKS map into `out`; returns how many vanished while being read.
fn read_hashed(
    tasks: &Map,
    batch: &mut Option<BatchReader<u32, TaskIo>>,
    out: &mut Vec<TaskIo>,
) -> Result<u64, EbpfError> {
    let read_error = |message: String| EbpfError::Read {
        map: TASKS_MAP,
        message,
    };
    if let (Some(reader), Map::HashMap(data)) = (batch.as_mut(), tasks) {
        match reader.read(data.fd().as_fd(), |_, io| out.push(*io)) {
            Ok(()) => return Ok(0),
            Err(BatchError::Unsupported(e)) => {
                log::info!("ebpf: {e}; reading {TASKS_MAP} entry by entry");
                *batch = None;
            }
            Err(BatchError::Os(e)) => return Err(read_error(e.to_string())),
        }
    }
    let tasks = BpfHashMap::<_, u32, TaskIo>::try_from(tasks).map_err(|e| read_error(chain(&e)))?;
    let mut skipped = 0;
    for entry in tasks.iter() {
        match entry {
            Ok((_, io)) => out.push(io),
            // Removed by its exit between listing and reading: its record is in the ring.
            Err(_) => skipped += 1,
        }
    }
    Ok(skipped)
}

impl IoSource for EbpfSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Ebpf
    }

    fn sample(&mut self) -> Result<Sample, SourceError> {
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
        let mut live = Vec::new();
        let skipped = self.read_live(&mut live)?;
        let key = |io: &TaskIo| (io.tid, io.start_time_ns);
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
        let mut tasks: Vec<TaskSample> = live
            .iter()
            .filter(|io| self.in_scope(io))
            .map(|io| self.to_task(io))
            .collect();
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
        let mut sample = Sample::new(tasks);
        sample.lost_events = Some(self.lost_events()?);
        sample.skipped_tasks = skipped;
        Ok(sample)
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        let mut out = Vec::new();
        if let Reader::Iterator { no_iowait, .. } = &self.reader {
            out.push(Unavailable {
                counters: &["swapin_delay_ns"],
                reason: "no tracepoint marks swap-in waits; taskstats has them with \
                         kernel.task_delayacct=1"
                    .into(),
            });
            if let Some(why) = no_iowait {
                out.push(Unavailable {
                    counters: &["blkio_delay_ns"],
                    reason: format!("the scheduler probes that measure it: {why}"),
                });
            }
        }
        if let Reader::Hook(hook) = &self.reader {
            out.push(Unavailable {
                counters: &["blkio_delay_ns", "swapin_delay_ns"],
                reason: "measured only with kernel BTF (task iterator), or by taskstats with \
                         kernel.task_delayacct=1"
                    .into(),
            });
            out.push(Unavailable {
                counters: &["cancelled_write_bytes"],
                reason: "no kernel BTF to read it from, and no tracepoint marks truncated dirty \
                         pages"
                    .into(),
            });
            if let Some(why) = &hook.no_read_bytes {
                out.push(Unavailable {
                    counters: &["read_bytes"],
                    reason: why.clone(),
                });
            }
            if let Some(why) = &hook.no_write_bytes {
                out.push(Unavailable {
                    counters: &["write_bytes"],
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
