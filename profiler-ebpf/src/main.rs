//! Kernel side of the eBPF source: counts each thread's I/O the way the kernel's own
//! task I/O accounting (/proc/PID/io) does, keyed by host TID, and hands the last counters
//! of exiting threads to userspace through a ring buffer. The syscall probe runs on every
//! syscall of the machine: its common path is a handful of loads and one helper call.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{bpf_pidns_info, BPF_F_MMAPABLE, BPF_NOEXIST},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{
            bpf_get_current_cgroup_id, bpf_get_current_task_btf, bpf_get_ns_current_pid_tgid,
        },
    },
    macros::{btf_tracepoint, map, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, TracePointContext},
    EbpfContext,
};
use aya_log_ebpf::{info, warn};
use profiler_common::{
    syscalls as nr, Config, Stat, TaskIo, EXITED_RING_BYTES, MAX_TASKS, STATS_LEN,
};

// Map and global names are the constants of profiler-common (TIDS_MAP, TASKS_MAP, EXITED_MAP,
// STATS_MAP, CONFIG_GLOBAL); the `map` attribute takes the static's name.
/// Threads whose host TID is below its length, at index TID: an array lookup is a bounds check
/// the verifier inlines, where a hash lookup is several nested kernel calls, the dearest part of
/// the probe. A live TID belongs to one thread, so a slot has one writer. Userspace sets the
/// length at load time and maps the array to read it.
#[map]
static TIDS: Array<TaskIo> = Array::with_max_entries(1, BPF_F_MMAPABLE);
/// Threads with larger TIDs.
#[map]
static TASKS: HashMap<u32, TaskIo> = HashMap::with_max_entries(MAX_TASKS, 0);
#[map]
static EXITED: RingBuf = RingBuf::with_byte_size(EXITED_RING_BYTES, 0);
#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STATS_LEN + 1, 0);

#[no_mangle]
static CONFIG: Config = Config {
    translate_pids: 0,
    pidns_dev: 0,
    pidns_ino: 0,
    bio_queue_nr_sector_off: 0,
    bio_queue_rwbs_off: 0,
    dirty_folio_name_off: 0,
    task_pid_off: 0,
    ioac_off: 0,
};

/// Per-CPU flag (after the drop counters) that the "probes active" log line was written.
const STAT_LOGGED: u32 = STATS_LEN;

/// `offsetof(struct pt_regs, orig_ax)` on x86_64: the syscall number at syscall exit.
const PT_REGS_ORIG_AX: usize = 15 * 8;

const PAGE_SIZE: u64 = 4096;

const EBADF: i64 = 9;
const EFAULT: i64 = 14;
const EXDEV: i64 = 18;
const EISDIR: i64 = 21;
const EINVAL: i64 = 22;
const ETXTBSY: i64 = 26;
const EFBIG: i64 = 27;
const ESPIPE: i64 = 29;
const EOVERFLOW: i64 = 75;
const EOPNOTSUPP: i64 = 95;

/// One field of CONFIG. The loader writes it before the programs run and freezes it, so the
/// verifier knows each value and drops the branches it rules out; the volatile read keeps the
/// compiler from folding the zero initialiser in instead.
macro_rules! config {
    ($field:ident) => {
        // SAFETY: reading a plain integer field of a static that nothing writes after loading.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!(CONFIG.$field)) }
    };
}

fn bump(stat: Stat) {
    if let Some(p) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: a per-CPU slot is only touched by programs on this CPU, which do not nest here.
        unsafe { *p += 1 };
    }
}

/// What one syscall contributes, following fs/read_write.c.
#[derive(Clone, Copy)]
enum Kind {
    /// read, pread64: counted in vfs_read, after its argument checks.
    Read,
    Write,
    /// readv family: counted in do_readv/do_preadv whatever the outcome.
    ReadIter,
    WriteIter,
    /// sendfile: counted on both sides once the transfer was attempted.
    Sendfile,
    /// copy_file_range: counted on both sides after vfs_copy_file_range's checks.
    CopyRange,
}

fn kind_of(syscall: u64) -> Option<Kind> {
    match syscall {
        nr::READ | nr::PREAD64 => Some(Kind::Read),
        nr::WRITE | nr::PWRITE64 => Some(Kind::Write),
        nr::READV | nr::PREADV | nr::PREADV2 => Some(Kind::ReadIter),
        nr::WRITEV | nr::PWRITEV | nr::PWRITEV2 => Some(Kind::WriteIter),
        nr::SENDFILE => Some(Kind::Sendfile),
        nr::COPY_FILE_RANGE => Some(Kind::CopyRange),
        _ => None,
    }
}

/// Whether the kernel's syscr/syscw counted this call, judged from its return value:
/// calls rejected by argument checks before any I/O return before the counting.
fn counted(kind: Kind, ret: i64) -> bool {
    if ret >= 0 {
        return true;
    }
    let err = -ret;
    match kind {
        Kind::ReadIter | Kind::WriteIter => err != EBADF && err != EINVAL,
        Kind::Read | Kind::Write | Kind::Sendfile => {
            !matches!(err, EBADF | EINVAL | EFAULT | ESPIPE | EOVERFLOW)
        }
        Kind::CopyRange => !matches!(
            err,
            EBADF | EINVAL | EFAULT | EXDEV | EISDIR | ETXTBSY | EFBIG | EOVERFLOW | EOPNOTSUPP
        ),
    }
}

/// The current thread as the syscall path needs it: its host TID and, where the kernel's BTF
/// gave the offsets, its task_struct to read fields from directly (one helper call instead of
/// two or three: calls are the dearest part of a probe that runs on every syscall).
struct Current {
    host_tid: u32,
    task: *const u8,
}

#[inline(always)]
fn current() -> Current {
    let pid_off = config!(task_pid_off);
    let task = if pid_off != 0 || config!(ioac_off) != 0 {
        // SAFETY: the helper only returns the current task's address, typed by BTF.
        unsafe { bpf_get_current_task_btf() }
            .cast::<u8>()
            .cast_const()
    } else {
        core::ptr::null()
    };
    let host_tid = if pid_off != 0 {
        // SAFETY: `pid_off` is `task_struct.pid` in this kernel's BTF; the verifier checks the
        // load against that BTF, and loads through BTF pointers cannot fault.
        unsafe { core::ptr::read_volatile(task.add(pid_off as usize).cast::<u32>()) }
    } else {
        bpf_get_current_pid_tgid() as u32
    };
    Current { host_tid, task }
}

/// The current thread's counters, created on first use. None: the thread is outside the
/// profiler's pid namespace, or the map is full (counted in STATS).
#[inline(always)]
fn task_entry<C: EbpfContext>(ctx: &C, host_tid: u32) -> Option<*mut TaskIo> {
    match TIDS.get_ptr_mut(host_tid) {
        // SAFETY: a slot of the array, valid for the program's run.
        Some(slot) if unsafe { core::ptr::read_volatile(&(*slot).host_tid) } == host_tid => {
            Some(slot)
        }
        Some(slot) => new_slot_entry(ctx, slot, host_tid),
        None => match TASKS.get_ptr_mut(host_tid) {
            Some(p) => Some(p),
            None => new_hashed_entry(ctx, host_tid),
        },
    }
}

/// The current thread's counters if it has them; never creates them.
#[inline(always)]
fn existing_entry(host_tid: u32) -> Option<*mut TaskIo> {
    match TIDS.get_ptr_mut(host_tid) {
        // SAFETY: a slot of the array, valid for the program's run.
        Some(slot) if unsafe { core::ptr::read_volatile(&(*slot).host_tid) } == host_tid => {
            Some(slot)
        }
        Some(_) => None,
        None => TASKS.get_ptr_mut(host_tid),
    }
}

/// Labels of the current thread and zero counters. None: outside the profiler's pid namespace.
#[inline(always)]
fn fresh_entry(host_tid: u32) -> Option<TaskIo> {
    let (tid, tgid) = if config!(translate_pids) != 0 {
        let mut ns = bpf_pidns_info { pid: 0, tgid: 0 };
        let (dev, ino) = (config!(pidns_dev), config!(pidns_ino));
        // SAFETY: `ns` is a live, correctly sized out-parameter for the helper.
        let r = unsafe {
            bpf_get_ns_current_pid_tgid(
                dev,
                ino,
                &mut ns,
                core::mem::size_of::<bpf_pidns_info>() as u32,
            )
        };
        if r != 0 {
            return None;
        }
        (ns.pid, ns.tgid)
    } else {
        (host_tid, (bpf_get_current_pid_tgid() >> 32) as u32)
    };
    Some(TaskIo {
        host_tid,
        tid,
        tgid,
        uid: bpf_get_current_uid_gid() as u32,
        comm: bpf_get_current_comm().unwrap_or_default(),
        // SAFETY: the helper takes no arguments and only reads the current task.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        ..TaskIo::default()
    })
}

// The two below run once per thread: out of line (BPF subprograms), so the per-syscall path
// stays short.

#[inline(never)]
fn new_slot_entry<C: EbpfContext>(
    ctx: &C,
    slot: *mut TaskIo,
    host_tid: u32,
) -> Option<*mut TaskIo> {
    let mut value = fresh_entry(host_tid)?;
    // Userspace takes a slot whose host_tid is set for a whole entry: that goes in last.
    value.host_tid = 0;
    // SAFETY: `slot` is this thread's own array slot (indexed by its TID, which no other live
    // thread has); volatile keeps the stores in this order.
    unsafe {
        core::ptr::write_volatile(slot, value);
        core::ptr::write_volatile(&mut (*slot).host_tid, host_tid);
    }
    log_first_event(ctx, host_tid);
    Some(slot)
}

#[inline(never)]
fn new_hashed_entry<C: EbpfContext>(ctx: &C, host_tid: u32) -> Option<*mut TaskIo> {
    let value = fresh_entry(host_tid)?;
    if TASKS.insert(host_tid, value, BPF_NOEXIST as u64).is_err() {
        // Only this thread creates its own key, so a failure means the map is full.
        bump(Stat::TaskMapFull);
        warn!(
            ctx,
            "TASKS map full: I/O of tid {} is not counted", host_tid
        );
        return None;
    }
    log_first_event(ctx, host_tid);
    TASKS.get_ptr_mut(host_tid)
}

/// Copies the kernel's disk counters of the current thread into its entry. They count since
/// the thread started: a baseline taken when the thread is first seen would already include the
/// disk I/O of the syscall that made it seen.
#[inline(always)]
fn sync_ioac(t: *mut TaskIo, task: *const u8) {
    let off = config!(ioac_off);
    if off == 0 {
        return;
    }
    // SAFETY: `task` is the current task_struct (see `current`) and `off` is `ioac.read_bytes`
    // in this kernel's BTF, followed by write_bytes and cancelled_write_bytes; the verifier checks
    // each load against that BTF, and loads through BTF pointers cannot fault. `t` is this
    // thread's own map value.
    unsafe {
        let ioac = task.add(off as usize).cast::<u64>();
        (*t).read_bytes = core::ptr::read_volatile(ioac);
        (*t).write_bytes = core::ptr::read_volatile(ioac.add(1));
        (*t).cancelled_write_bytes = core::ptr::read_volatile(ioac.add(2));
    }
}

fn log_first_event<C: EbpfContext>(ctx: &C, host_tid: u32) {
    if let Some(p) = STATS.get_ptr_mut(STAT_LOGGED) {
        // SAFETY: per-CPU slot, see `bump`.
        unsafe {
            if *p == 0 {
                *p = 1;
                info!(
                    ctx,
                    "probes active: first task seen on this CPU is tid {}", host_tid
                );
            }
        }
    }
}

#[inline(always)]
fn on_sys_exit<C: EbpfContext>(ctx: &C, syscall: u64, ret: i64) {
    let Some(kind) = kind_of(syscall) else { return };
    if !counted(kind, ret) {
        return;
    }
    let cur = current();
    let Some(t) = task_entry(ctx, cur.host_tid) else {
        return;
    };
    sync_ioac(t, cur.task);
    let bytes = if ret > 0 { ret as u64 } else { 0 };
    // SAFETY: `t` points at this thread's map value; only this thread writes it.
    unsafe {
        match kind {
            Kind::Read | Kind::ReadIter => {
                (*t).rchar += bytes;
                (*t).syscr += 1;
            }
            Kind::Write | Kind::WriteIter => {
                (*t).wchar += bytes;
                (*t).syscw += 1;
            }
            Kind::Sendfile | Kind::CopyRange => {
                (*t).rchar += bytes;
                (*t).wchar += bytes;
                (*t).syscr += 1;
                (*t).syscw += 1;
            }
        }
    }
}

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit_btf(ctx: BtfTracePointContext) -> u32 {
    let regs: *const u8 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    // SAFETY: `regs` is the tracepoint's struct pt_regs; the verifier checks this load against BTF.
    let syscall = unsafe { core::ptr::read_volatile(regs.add(PT_REGS_ORIG_AX).cast::<u64>()) };
    on_sys_exit(&ctx, syscall, ret);
    0
}

#[tracepoint(category = "raw_syscalls", name = "sys_exit")]
pub fn sys_exit_tp(ctx: TracePointContext) -> u32 {
    // Offsets of `id` and `ret` in raw_syscalls/sys_exit/format; userspace checks them before attaching.
    // SAFETY: both offsets lie inside the record, as the format file says.
    let (Ok(syscall), Ok(ret)) = (unsafe { ctx.read_at::<i64>(8) }, unsafe {
        ctx.read_at::<i64>(16)
    }) else {
        return 0;
    };
    on_sys_exit(&ctx, syscall as u64, ret);
    0
}

fn on_exit<C: EbpfContext>(ctx: &C) {
    let cur = current();
    let host_tid = cur.host_tid;
    let Some(t) = existing_entry(host_tid) else {
        return;
    };
    sync_ioac(t, cur.task);
    match EXITED.reserve::<TaskIo>(0) {
        Some(mut slot) => {
            // SAFETY: `t` points at this thread's live map value.
            let mut last = unsafe { *t };
            last.exited = 1;
            slot.write(last);
            slot.submit(0);
        }
        None => {
            bump(Stat::ExitRingFull);
            warn!(
                ctx,
                "exit ring full: last counters of tid {} lost", host_tid
            );
        }
    }
    match TIDS.get_ptr_mut(host_tid) {
        // SAFETY: this thread's own slot; a slot whose host_tid is not its index is empty.
        Some(slot) => unsafe { core::ptr::write_volatile(&mut (*slot).host_tid, 0) },
        None => {
            let _ = TASKS.remove(host_tid);
        }
    }
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_exit_btf(ctx: BtfTracePointContext) -> u32 {
    on_exit(&ctx);
    0
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_exit_tp(ctx: TracePointContext) -> u32 {
    on_exit(&ctx);
    0
}

/// A thread that exec()s keeps its TID: take the new command name.
fn on_exec() {
    if let Some(t) = existing_entry(current().host_tid) {
        if let Ok(comm) = bpf_get_current_comm() {
            // SAFETY: this thread's own map value.
            unsafe { (*t).comm = comm };
        }
    }
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_exec_btf(_ctx: BtfTracePointContext) -> u32 {
    on_exec();
    0
}

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_exec_tp(_ctx: TracePointContext) -> u32 {
    on_exec();
    0
}

/// Block layer: bytes of read bios, charged to the submitting thread like task_io_account_read
/// in submit_bio.
#[tracepoint(category = "block", name = "block_bio_queue")]
pub fn block_bio_queue(ctx: TracePointContext) -> u32 {
    let (rwbs_off, sectors_off) = (
        config!(bio_queue_rwbs_off),
        config!(bio_queue_nr_sector_off),
    );
    // SAFETY: offsets come from this tracepoint's format file, checked by userspace.
    let rwbs0 = unsafe { ctx.read_at::<u8>(rwbs_off as usize) };
    // SAFETY: as above.
    let sectors = unsafe { ctx.read_at::<u32>(sectors_off as usize) };
    let (Ok(b'R'), Ok(sectors)) = (rwbs0, sectors) else {
        return 0;
    };
    if let Some(t) = task_entry(&ctx, bpf_get_current_pid_tgid() as u32) {
        // SAFETY: this thread's own map value.
        unsafe { (*t).read_bytes += u64::from(sectors) * 512 };
    }
    0
}

/// Page cache: a folio became dirty; the kernel charges its size to the dirtying task
/// (task_io_account_write in folio_account_dirtied) when the mapping can write back.
#[tracepoint(category = "writeback", name = "writeback_dirty_folio")]
pub fn writeback_dirty_folio(ctx: TracePointContext) -> u32 {
    // The bdi name is "(unknown)" exactly for mappings without a backing device (tmpfs, ramfs),
    // which the kernel does not charge.
    let name_off = config!(dirty_folio_name_off);
    // SAFETY: offset from the format file, checked by userspace.
    let Ok(first) = (unsafe { ctx.read_at::<[u8; 2]>(name_off as usize) }) else {
        return 0;
    };
    if first == *b"(u" {
        return 0;
    }
    if let Some(t) = task_entry(&ctx, bpf_get_current_pid_tgid() as u32) {
        // SAFETY: this thread's own map value.
        unsafe { (*t).write_bytes += PAGE_SIZE };
    }
    0
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
