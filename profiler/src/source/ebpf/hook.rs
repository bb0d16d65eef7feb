//! The syscall-hook way (classic tracepoints, for kernels without BTF): attaching the syscall,
//! exit, exec and disk probes, and reading the per-thread maps they fill.

use std::os::fd::AsFd;

use aya::maps::{HashMap as BpfHashMap, Map};
use aya::Ebpf;
use profiler_common::{
    TaskIo, BIO_QUEUE_PROG, DIRTY_PROG, MAX_TIDS, SCHED_EXEC_PROG, SCHED_EXIT_PROG, SYS_EXIT_PROG,
    TASKS_MAP, TIDS_MAP,
};

use super::batch::{BatchError, BatchReader};
use super::loading::{
    attach_classic, attach_error, base_config, chain, load_object, pid_max, take_map, MapSizes,
};
use super::tid_table::TidTable;
use super::{tracefs, EbpfError, Reader};
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

/// Every entry of the TASKS map into `out`; returns how many vanished while being read.
pub(super) fn read_hashed(
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
