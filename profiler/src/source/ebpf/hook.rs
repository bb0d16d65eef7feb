//! The syscall-hook way (classic tracepoints, for kernels without BTF): attaching the syscall,
//! exit, exec and disk probes, and reading the per-thread maps they fill.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use aya::maps::{HashMap as BpfHashMap, Map};
use aya::Ebpf;
use profiler_common::{
    TaskIo, BIO_QUEUE_PROG, COMM_LEN, DIRTY_PROG, MAX_TIDS, SCHED_EXEC_PROG, SCHED_EXIT_PROG,
    SYS_EXIT_PROG, TASKS_MAP, TIDS_MAP,
};

use super::batch::{BatchError, BatchReader};
use super::loading::{
    attach, base_config, load_object, pid_max, report, take_map, AttachPoint, Cause, MapSizes,
};
use super::tid_table::TidTable;
use super::{tracefs, EbpfError, Reader};
use crate::source::procfs::{numeric_entries, open_dir};
use crate::source::Scope;

/// What the syscall-hook path reads, and which of its disk probes are missing.
pub(super) struct HookMaps {
    /// Threads with TIDs below its length; the others are in `tasks`.
    pub(super) tids: TidTable,
    /// The TASKS hash map.
    pub(super) tasks: Map,
    /// None once the kernel said it has no batch lookup: then `tasks` is read entry by entry.
    pub(super) batch: Option<BatchReader<u32, TaskIo>>,
    /// Why the block or page-cache probe is missing, if one is.
    pub(super) no_read_bytes: Option<String>,
    pub(super) no_write_bytes: Option<String>,
    pub(super) idle: IdleThreads,
}

/// Attaches the classic tracepoints; tracefs is mounted for as long as that takes when it is
/// not mounted already.
pub(super) fn open_hook(scope: &Scope) -> Result<(Ebpf, Reader), EbpfError> {
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
    let mut ebpf = load_object(&config, sizes)?;
    let tracepoint = |category, name| AttachPoint::Tracepoint { category, name };
    let sys_exit = tracepoint("raw_syscalls", "sys_exit");
    tracefs::check_sys_exit_format(root).map_err(|e| EbpfError::Attach {
        program: SYS_EXIT_PROG,
        attach_point: sys_exit.describe(),
        cause: e.into(),
    })?;
    for (program, point) in [
        (SYS_EXIT_PROG, sys_exit),
        (SCHED_EXIT_PROG, tracepoint("sched", "sched_process_exit")),
        (SCHED_EXEC_PROG, tracepoint("sched", "sched_process_exec")),
    ] {
        attach(&mut ebpf, program, point)?;
    }
    // The disk probes are attached one by one: a kernel without one still gets the other.
    let no_read_bytes = bio
        .and_then(|_| {
            attach(
                &mut ebpf,
                BIO_QUEUE_PROG,
                tracepoint("block", "block_bio_queue"),
            )
            .map_err(|e| report(&e))
        })
        .err();
    let no_write_bytes = dirty
        .and_then(|(name, _)| {
            attach(&mut ebpf, DIRTY_PROG, tracepoint("writeback", name)).map_err(|e| report(&e))
        })
        .err();
    drop(tracefs);
    let tids = match take_map(&mut ebpf, TIDS_MAP)? {
        Map::Array(data) => TidTable::new(data)
            .map_err(|e| EbpfError::Load(format!("mapping {TIDS_MAP}: {e}").into()))?,
        _ => {
            return Err(EbpfError::Load(
                format!("{TIDS_MAP} is not an array").into(),
            ))
        }
    };
    let tasks = take_map(&mut ebpf, TASKS_MAP)?;
    // Checked once here, so a map of another shape fails the start, not every refresh.
    BpfHashMap::<_, u32, TaskIo>::try_from(&tasks).map_err(|e| EbpfError::Load(e.into()))?;
    let reader = Reader::Hook(Box::new(HookMaps {
        tids,
        tasks,
        batch: Some(BatchReader::new()),
        no_read_bytes,
        no_write_bytes,
        idle: IdleThreads::default(),
    }));
    Ok((ebpf, reader))
}

/// Every entry of the TASKS map into `out`; returns how many vanished while being read.
pub(super) fn read_hashed(
    tasks: &Map,
    batch: &mut Option<BatchReader<u32, TaskIo>>,
    out: &mut Vec<TaskIo>,
) -> Result<u64, EbpfError> {
    let read_error = |cause: Cause| EbpfError::Read {
        map: TASKS_MAP,
        cause,
    };
    if let (Some(reader), Map::HashMap(data)) = (batch.as_mut(), tasks) {
        match reader.read(data.fd().as_fd(), |_, io| out.push(*io)) {
            Ok(()) => return Ok(0),
            Err(BatchError::Unsupported(e)) => {
                log::info!("ebpf: {e}; reading {TASKS_MAP} entry by entry");
                *batch = None;
            }
            Err(BatchError::Os(e)) => return Err(read_error(e.into())),
        }
    }
    let tasks = BpfHashMap::<_, u32, TaskIo>::try_from(tasks).map_err(|e| read_error(e.into()))?;
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

/// What is known of a thread that did no I/O since the probes were attached (the maps have
/// no entry for it): read once, kept while its /proc directory stays the same.
struct IdleLabels {
    /// Inode of /proc/PID/task/TID, from the directory listing: a reused TID is a new one.
    dir_ino: u64,
    uid: Option<u32>,
    comm: [u8; COMM_LEN],
}

/// Threads the kernel lists that the probes have not seen: so that this way of counting shows
/// the same rows as the others, idle threads included, with the zero I/O they did since the
/// probes were attached. A refresh costs a listing of /proc; a thread's `comm` and owner are
/// read once.
#[derive(Default)]
pub(super) struct IdleThreads {
    known: HashMap<u32, IdleLabels>,
}

impl IdleThreads {
    /// Records of the threads of `pids` (every process when empty) under `proc_root` that are
    /// not in `seen`, with zero counters; returns every thread listed.
    pub(super) fn list(
        &mut self,
        proc_root: &Path,
        pids: &[u32],
        seen: &HashSet<u32>,
        out: &mut Vec<TaskIo>,
    ) -> HashSet<u32> {
        let mut listed = HashSet::new();
        let Some(proc_dir) = open_dir(rustix::fs::CWD, proc_root) else {
            return listed;
        };
        let pids: Vec<(u32, u64)> = if pids.is_empty() {
            numeric_entries(&proc_dir)
        } else {
            pids.iter().map(|&p| (p, 0)).collect()
        };
        for (pid, _) in pids {
            let Some(tasks) = open_dir(&proc_dir, format!("{pid}/task")) else {
                continue;
            };
            for (tid, dir_ino) in numeric_entries(&tasks) {
                listed.insert(tid);
                if seen.contains(&tid) {
                    continue;
                }
                let fresh = self.known.get(&tid).is_none_or(|k| k.dir_ino != dir_ino);
                if fresh {
                    let dir = proc_root.join(format!("{pid}/task/{tid}"));
                    let uid = std::fs::metadata(&dir).ok().map(|m| m.uid());
                    let Ok(name) = std::fs::read(dir.join("comm")) else {
                        continue;
                    };
                    let mut comm = [0u8; COMM_LEN];
                    let name = name.strip_suffix(b"\n").unwrap_or(&name);
                    let len = name.len().min(COMM_LEN - 1);
                    comm[..len].copy_from_slice(&name[..len]);
                    self.known.insert(tid, IdleLabels { dir_ino, uid, comm });
                }
                let Some(k) = self.known.get(&tid) else {
                    continue;
                };
                out.push(TaskIo {
                    tid,
                    tgid: pid,
                    host_tid: tid,
                    uid: k.uid.unwrap_or(u32::MAX),
                    comm: k.comm,
                    ..TaskIo::default()
                });
            }
        }
        self.known.retain(|tid, _| listed.contains(tid));
        listed
    }
}
