//! The eBPF source: loads the probes embedded from `profiler-ebpf`, attaches them (BTF
//! tracepoints where the kernel has BTF, classic tracepoints otherwise) and reads the
//! per-thread counters they keep. Counters count from the moment the probes were attached.

mod batch;
mod kernel_btf;
mod tid_table;
mod tracefs;

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};
use profiler_common::{
    Config, Stat, TaskIo, CONFIG_GLOBAL, EXITED_MAP, MAX_TIDS, STATS_MAP, TASKS_MAP, TIDS_MAP,
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
    #[error("attaching {program} to {tracepoint} failed: {message}")]
    Attach {
        program: &'static str,
        tracepoint: String,
        message: String,
    },
    #[error(
        "no way to attach: the kernel has no BTF (/sys/kernel/btf/vmlinux) and tracefs is not \
         available ({tracefs}); mount it with `mount -t tracefs nodev /sys/kernel/tracing` (needs CAP_SYS_ADMIN)"
    )]
    NoAttachPoint { tracefs: String },
    #[error("reading map {map} failed: {message}")]
    Read { map: &'static str, message: String },
}

/// How the syscall and exit probes were attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    Btf,
    Classic,
}

pub struct EbpfSource {
    scope: Scope,
    /// Threads with TIDs below its length; the others are in `tasks`.
    tids: TidTable,
    /// The TASKS hash map.
    tasks: Map,
    /// None once the kernel said it has no batch lookup: then `tasks` is read entry by entry.
    batch: Option<BatchReader<u32, TaskIo>>,
    exited: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    /// Why the block and page-cache probes are missing, if they are.
    no_disk_probes: Option<String>,
    /// Disk counters come from the kernel's task accounting (exact, cancelled writes included).
    kernel_disk_counters: bool,
    attachment: Attachment,
    /// Owns the programs and their links: dropping it detaches everything.
    _ebpf: Ebpf,
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

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

impl EbpfSource {
    pub fn open(scope: Scope) -> Result<Self, EbpfError> {
        let btf = Btf::from_sys_fs().ok();
        let tracefs = tracefs::ensure_mounted();
        let mut config = Config::default();
        let ns = std::fs::metadata(scope.proc_root.join("self/ns/pid")).ok();
        if let Some(ns) = ns.filter(|ns| ns.ino() != INIT_PID_NS_INO) {
            config.translate_pids = 1;
            config.pidns_dev = ns.dev();
            config.pidns_ino = ns.ino();
        }
        // With BTF the probes read the kernel's own disk counters and the TID from the task;
        // else they count tracepoints and ask helpers. The parsed BTF (tens of MB) is parsed
        // once for both offsets and dropped before the object is loaded.
        let (ioac, pid_off) = match btf.as_ref().map(|_| kernel_btf::load()) {
            Some(Ok(vmlinux)) => (
                kernel_btf::task_ioac_offset(&vmlinux),
                kernel_btf::task_pid_offset(&vmlinux).ok(),
            ),
            Some(Err(why)) => (Err(why), None),
            None => (Err("no kernel BTF".into()), None),
        };
        config.task_pid_off = pid_off.unwrap_or(0);
        match &ioac {
            Ok(off) => config.ioac_off = *off,
            Err(why) => log::info!("ebpf: kernel disk counters not readable ({why}); counting block and page-cache tracepoints"),
        }
        let formats = match (&ioac, &tracefs) {
            (Err(_), Ok(root)) => Some(tracefs::DiskFormats::read(root)),
            _ => None,
        };
        if let Some(Ok(f)) = &formats {
            config.bio_queue_nr_sector_off = f.bio_nr_sector;
            config.bio_queue_rwbs_off = f.bio_rwbs;
            config.dirty_folio_name_off = f.dirty_folio_name;
        }

        // The TIDS array covers every TID the kernel hands out, when that range is not too large.
        // In a pid namespace (Linux 6.14+) this is the namespace's limit, which may be lower than
        // the host's: TIDs above the array go to the hash map, slower but just as complete.
        let pid_max = std::fs::read_to_string(scope.proc_root.join("sys/kernel/pid_max"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(PID_MAX_DEFAULT);
        let mut ebpf = EbpfLoader::new()
            .override_global(CONFIG_GLOBAL, &config, true)
            .map_max_entries(TIDS_MAP, pid_max.clamp(1, MAX_TIDS))
            .load(PROBES)
            .map_err(|e| {
                if is_permission_error(&e) {
                    EbpfError::PermissionDenied { detail: chain(&e) }
                } else {
                    EbpfError::Load(chain(&e))
                }
            })?;
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(l) => Some(l),
            Err(e) => {
                log::warn!("ebpf: kernel-side log messages unavailable: {e}");
                None
            }
        };

        let attachment = match (&btf, &tracefs) {
            (Some(btf), _) => {
                for (program, tracepoint) in [
                    ("sys_exit_btf", "sys_exit"),
                    ("sched_exit_btf", "sched_process_exit"),
                    ("sched_exec_btf", "sched_process_exec"),
                ] {
                    attach_btf(&mut ebpf, btf, program, tracepoint)?;
                }
                Attachment::Btf
            }
            (None, Ok(root)) => {
                tracefs::check_sys_exit_format(root).map_err(|message| EbpfError::Attach {
                    program: "sys_exit_tp",
                    tracepoint: "raw_syscalls/sys_exit".into(),
                    message,
                })?;
                for (program, category, name) in [
                    ("sys_exit_tp", "raw_syscalls", "sys_exit"),
                    ("sched_exit_tp", "sched", "sched_process_exit"),
                    ("sched_exec_tp", "sched", "sched_process_exec"),
                ] {
                    attach_classic(&mut ebpf, program, category, name)?;
                }
                Attachment::Classic
            }
            (None, Err(why)) => {
                return Err(EbpfError::NoAttachPoint {
                    tracefs: why.clone(),
                })
            }
        };

        let no_disk_probes = match (&tracefs, formats) {
            _ if ioac.is_ok() => None,
            (Err(why), _) => Some(format!("tracefs unavailable ({why})")),
            (Ok(_), Some(Err(why))) => Some(why),
            (Ok(_), _) => {
                let mut why = None;
                for (program, category, name) in [
                    ("block_bio_queue", "block", "block_bio_queue"),
                    (
                        "writeback_dirty_folio",
                        "writeback",
                        "writeback_dirty_folio",
                    ),
                ] {
                    if let Err(e) = attach_classic(&mut ebpf, program, category, name) {
                        why = Some(e.to_string());
                        break;
                    }
                }
                why
            }
        };

        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name)
                .ok_or_else(|| EbpfError::Load(format!("map {name} missing from the object")))
        };
        let tids = match take(&mut ebpf, TIDS_MAP)? {
            Map::Array(data) => TidTable::new(data)
                .map_err(|e| EbpfError::Load(format!("mapping {TIDS_MAP}: {e}")))?,
            _ => return Err(EbpfError::Load(format!("{TIDS_MAP} is not an array"))),
        };
        let tasks = take(&mut ebpf, TASKS_MAP)?;
        // Checked once here, so a map of another shape fails the start, not every refresh.
        BpfHashMap::<_, u32, TaskIo>::try_from(&tasks).map_err(|e| EbpfError::Load(chain(&e)))?;
        let exited = RingBuf::try_from(take(&mut ebpf, EXITED_MAP)?)
            .map_err(|e| EbpfError::Load(chain(&e)))?;
        let stats = PerCpuArray::try_from(take(&mut ebpf, STATS_MAP)?)
            .map_err(|e| EbpfError::Load(chain(&e)))?;
        log::info!(
            "ebpf: probes attached ({}), pid namespace {}",
            match attachment {
                Attachment::Btf => "BTF tracepoints",
                Attachment::Classic => "classic tracepoints",
            },
            if config.translate_pids != 0 {
                "of this container"
            } else {
                "initial"
            },
        );
        let kernel_disk_counters = ioac.is_ok();
        Ok(EbpfSource {
            scope,
            tids,
            tasks,
            batch: Some(BatchReader::new()),
            exited,
            stats,
            logger,
            no_disk_probes,
            kernel_disk_counters,
            attachment,
            _ebpf: ebpf,
        })
    }

    pub fn attachment(&self) -> Attachment {
        self.attachment
    }

    fn to_task(&self, io: &TaskIo) -> TaskSample {
        let disk = self.no_disk_probes.is_none();
        TaskSample {
            tid: io.tid,
            pid: io.tgid,
            uid: Some(io.uid),
            command: printable_command(&io.comm),
            start_time: None,
            cgroup_id: Some(io.cgroup_id),
            counters: Counters {
                rchar: Some(io.rchar),
                wchar: Some(io.wchar),
                syscr: Some(io.syscr),
                syscw: Some(io.syscw),
                read_bytes: disk.then_some(io.read_bytes),
                write_bytes: disk.then_some(io.write_bytes),
                cancelled_write_bytes: self
                    .kernel_disk_counters
                    .then_some(io.cancelled_write_bytes),
                blkio_delay_ns: None,
                swapin_delay_ns: None,
            },
            exited: io.exited != 0,
        }
    }

    fn in_scope(&self, io: &TaskIo) -> bool {
        self.scope.pids.is_empty() || self.scope.pids.contains(&io.tgid)
    }

    /// Every entry of the TASKS map into `out`; returns how many vanished while being read.
    fn read_hashed(&mut self, out: &mut Vec<TaskIo>) -> Result<u64, EbpfError> {
        let read_error = |message: String| EbpfError::Read {
            map: TASKS_MAP,
            message,
        };
        if let (Some(reader), Map::HashMap(data)) = (&mut self.batch, &self.tasks) {
            match reader.read(data.fd().as_fd(), |_, io| out.push(*io)) {
                Ok(()) => return Ok(0),
                Err(BatchError::Unsupported(e)) => {
                    log::info!("ebpf: {e}; reading {TASKS_MAP} entry by entry");
                    self.batch = None;
                }
                Err(BatchError::Os(e)) => return Err(read_error(e.to_string())),
            }
        }
        let tasks = BpfHashMap::<_, u32, TaskIo>::try_from(&self.tasks)
            .map_err(|e| read_error(chain(&e)))?;
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

fn attach_btf(
    ebpf: &mut Ebpf,
    btf: &Btf,
    program: &'static str,
    tracepoint: &str,
) -> Result<(), EbpfError> {
    let err = |message: String| EbpfError::Attach {
        program,
        tracepoint: tracepoint.into(),
        message,
    };
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
    let err = |message: String| EbpfError::Attach {
        program,
        tracepoint: format!("{category}/{name}"),
        message,
    };
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

fn permission_or(e: &(dyn std::error::Error + 'static), other: EbpfError) -> EbpfError {
    if is_permission_error(e) {
        EbpfError::PermissionDenied { detail: chain(e) }
    } else {
        other
    }
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
        self.tids.for_each_live(|io| live.push(io));
        let skipped = self.read_hashed(&mut live)?;
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
        let gone: HashSet<u32> = exited.iter().map(|io| io.tid).collect();
        tasks.retain(|t| !gone.contains(&t.tid));
        for io in exited.iter().filter(|io| self.in_scope(io)) {
            tasks.push(self.to_task(io));
        }
        let mut sample = Sample::new(tasks);
        sample.lost_events = Some(self.lost_events()?);
        sample.skipped_tasks = skipped;
        Ok(sample)
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        let mut out = vec![Unavailable {
            counters: &["blkio_delay_ns", "swapin_delay_ns"],
            reason: "delay accounting is read through taskstats only".into(),
        }];
        if !self.kernel_disk_counters {
            out.push(Unavailable {
                counters: &["cancelled_write_bytes"],
                reason:
                    "no kernel BTF to read it from, and no tracepoint marks truncated dirty pages"
                        .into(),
            });
        }
        if let Some(why) = &self.no_disk_probes {
            out.push(Unavailable {
                counters: &["read_bytes", "write_bytes"],
                reason: why.clone(),
            });
        }
        out
    }

    fn totals_since(&self) -> &'static str {
        if self.kernel_disk_counters {
            "probes attached (rchar, wchar, syscr, syscw); task start (read_bytes, write_bytes, cancelled_write_bytes)"
        } else {
            "probes attached"
        }
    }
}
