//! Kernel side of the eBPF source, two ways to the same counters:
//! - the iterator path (BTF, Linux 5.8+): a task iterator reads every thread's own I/O
//!   accounting (the numbers of /proc/PID/io) at each refresh, and a BTF tracepoint on
//!   `sched_process_exit` hands over the last counters of threads that exit in between.
//!   Nothing runs on the syscall path.
//! - the syscall-hook path (classic tracepoints, for kernels without BTF): counts each
//!   thread's read/write syscalls the way fs/read_write.c does, disk bytes from the block and
//!   page-cache tracepoints, keyed by host TID.
//!
//! Both only use helpers of Linux 5.8 or older.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{bpf_pidns_info, BPF_F_MMAPABLE, BPF_NOEXIST},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_ktime_get_ns,
        bpf_probe_read_kernel,
        generated::{bpf_get_current_cgroup_id, bpf_get_ns_current_pid_tgid, bpf_seq_write},
    },
    macros::{btf_tracepoint, map, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, TracePointContext},
    EbpfContext,
};
use aya_log_ebpf::{info, warn};
use profiler_common::{
    syscalls as nr, Config, IoWait, Stat, TaskIo, EXITED_RING_BYTES, MAX_TASKS, NOT_MEASURED,
    STATS_LEN,
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
/// Block I/O wait per thread, at index host TID (userspace sets the length at load time): the
/// scheduler probes touch it only for threads that wait for I/O.
#[map]
static IOWAIT: Array<IoWait> = Array::with_max_entries(1, 0);

#[no_mangle]
// SAFETY: Config is made of integers only, for which all-zero bytes are a valid value.
static CONFIG: Config = unsafe { core::mem::zeroed() };

/// Per-CPU flag (after the drop counters) that the "probes active" log line was written.
const STAT_LOGGED: u32 = STATS_LEN;

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
    ($($field:ident).+) => {
        {
            #[allow(unused_unsafe)]
            // SAFETY: reading a plain integer field of a static that nothing writes after loading.
            let value = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(CONFIG.$($field).+)) };
            value
        }
    };
}

fn bump(stat: Stat) {
    if let Some(p) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: a per-CPU slot is only touched by programs on this CPU, which do not nest here.
        unsafe { *p += 1 };
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

fn log_first_pass<C: EbpfContext>(ctx: &C) {
    if let Some(p) = STATS.get_ptr_mut(STAT_LOGGED) {
        // SAFETY: per-CPU slot, see `bump`.
        unsafe {
            if *p == 0 {
                *p = 1;
                info!(ctx, "probes active: the task iterator read all tasks");
            }
        }
    }
}

/// Hands the last counters of an exiting thread to userspace.
fn submit_exit<C: EbpfContext>(ctx: &C, mut last: TaskIo) {
    last.exited = 1;
    match EXITED.reserve::<TaskIo>(0) {
        Some(mut slot) => {
            slot.write(last);
            slot.submit(0);
        }
        None => {
            bump(Stat::ExitRingFull);
            warn!(
                ctx,
                "exit ring full: last counters of tid {} lost", last.host_tid
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The iterator path: the kernel's own counters, read at each refresh and at exit.

/// A `T` at `off` bytes into a kernel object.
///
/// # Safety
/// `base` is a pointer the verifier tracks by its BTF type (a program argument, or a pointer
/// field loaded through one), and `off` is the offset of a field of type `T` in that type, per
/// the running kernel's BTF. The verifier checks each such load against the BTF; a load through
/// a NULL or stale pointer of this kind reads zero instead of faulting.
#[inline(always)]
unsafe fn field<T: Copy>(base: *const u8, off: u32) -> T {
    // SAFETY: as the caller promises.
    unsafe { core::ptr::read_volatile(base.add(off as usize).cast::<T>()) }
}

/// The I/O wait the scheduler probes measured for the thread, or NOT_MEASURED.
#[inline(always)]
fn iowait_total(host_tid: u32) -> u64 {
    if config!(iowait) == 0 {
        return NOT_MEASURED;
    }
    match IOWAIT.get(host_tid) {
        Some(w) => w.total_ns,
        None => NOT_MEASURED,
    }
}

/// Whether `task` (a BTF-typed task_struct) has `in_iowait` set: it waits in io_schedule().
#[inline(always)]
fn in_iowait(task: *const u8) -> bool {
    // SAFETY: a BTF-typed task; the byte is the one holding the `in_iowait` bitfield, per BTF.
    let byte: u8 = unsafe { field(task, config!(task.in_iowait_byte)) };
    byte & config!(task.in_iowait_mask) as u8 != 0
}

/// A thread is switched out. Not preempted, no longer runnable and waiting for I/O: the kernel
/// starts its blkio delay here (delayacct_blkio_start in __schedule), and so does this.
#[btf_tracepoint(function = "sched_switch")]
pub fn iowait_switch(ctx: BtfTracePointContext) -> u32 {
    let preempt: u64 = ctx.arg(0);
    let prev: *const u8 = ctx.arg(1);
    if preempt & 0xff != 0 || !in_iowait(prev) {
        return 0;
    }
    // SAFETY: a BTF-typed task; `task.state` is `__state` (or `state`), whose low 32 bits hold
    // the task state on a little-endian machine.
    let state: u32 = unsafe { field(prev, config!(task.state)) };
    if state == 0 {
        return 0;
    }
    // Left on its run queue for now (Linux 6.12+ delays the dequeue of some sleepers): the
    // kernel's delay accounting does not start this wait, and neither does this.
    let delayed = config!(task.sched_delayed);
    // SAFETY: as above; `se.sched_delayed` is a byte of the task's sched_entity, per BTF.
    if delayed != 0 && unsafe { field::<u8>(prev, delayed) } != 0 {
        return 0;
    }
    // SAFETY: as above, `task.pid` is the thread's id.
    let tid: u32 = unsafe { field(prev, config!(task.pid)) };
    if let Some(w) = IOWAIT.get_ptr_mut(tid) {
        // SAFETY: the thread's own slot; it is switched out, so nothing else writes it now.
        unsafe { (*w).since_ns = bpf_ktime_get_ns() };
    }
    0
}

/// A thread is being woken (try_to_wake_up has found it asleep). Where it was waiting for I/O,
/// the wait ends: delay accounting ends it a moment later in the same wakeup, on this CPU when
/// the thread moves to another, else on its own CPU.
#[btf_tracepoint(function = "sched_waking")]
pub fn iowait_wakeup(ctx: BtfTracePointContext) -> u32 {
    let task: *const u8 = ctx.arg(0);
    if !in_iowait(task) {
        return 0;
    }
    // SAFETY: a BTF-typed task (see `field`).
    let tid: u32 = unsafe { field(task, config!(task.pid)) };
    if let Some(w) = IOWAIT.get_ptr_mut(tid) {
        // SAFETY: the thread's own slot; its waker holds the thread's pi_lock, so one at a time.
        unsafe {
            let since = (*w).since_ns;
            if since != 0 {
                (*w).total_ns += bpf_ktime_get_ns().saturating_sub(since);
                (*w).since_ns = 0;
            }
        }
    }
    0
}

/// The counters and labels of `task` (a `struct task_struct` known to the verifier by BTF),
/// read from its own fields: exactly what /proc/PID/io reads, exec's reads included.
#[inline(always)]
fn task_record(task: *const u8) -> TaskIo {
    // SAFETY: `task` is a BTF-typed task_struct (the iterator's or the tracepoint's argument);
    // every offset is the named field's in this kernel's BTF (userspace fills `CONFIG.task` from
    // it and refuses this path when a field is missing), and each pointer loaded on the way is a
    // BTF-typed field of the object before it.
    unsafe {
        let comm = config!(task.comm);
        let comm: [u64; 2] = [field(task, comm), field(task, comm + 8)];
        let cred: *const u8 = field(task, config!(task.real_cred));
        let css_set: *const u8 = field(task, config!(task.cgroups));
        let cgroup: *const u8 = field(css_set, config!(task.css_set_dfl_cgrp));
        let kernfs_node: *const u8 = field(cgroup, config!(task.cgroup_kn));
        let pid: u32 = field(task, config!(task.pid));
        TaskIo {
            rchar: field(task, config!(task.rchar)),
            wchar: field(task, config!(task.wchar)),
            syscr: field(task, config!(task.syscr)),
            syscw: field(task, config!(task.syscw)),
            read_bytes: field(task, config!(task.read_bytes)),
            write_bytes: field(task, config!(task.write_bytes)),
            cancelled_write_bytes: field(task, config!(task.cancelled_write_bytes)),
            cgroup_id: field(kernfs_node, config!(task.kernfs_node_id)),
            start_time_ns: field(task, config!(task.start_time)),
            blkio_delay_ns: iowait_total(pid),
            host_tid: pid,
            tid: pid,
            tgid: field(task, config!(task.tgid)),
            uid: field(cred, config!(task.cred_uid)),
            exited: 0,
            _pad: 0,
            comm: core::mem::transmute::<[u64; 2], [u8; 16]>(comm),
        }
    }
}

/// Deepest pid namespace nesting the kernel allows (MAX_PID_NS_LEVEL), plus one.
const PID_NS_LEVELS: u32 = 33;

/// The number of `task` in the profiler's pid namespace; None when the thread is not in it or
/// in one below it. A `struct pid` has one number per namespace level, from the initial one
/// down to the thread's own: the profiler's is the one whose namespace has its inode number.
#[inline(always)]
fn pid_in_namespace(task: *const u8) -> Option<u32> {
    let (upid_size, nr_off, ns_off) = (
        config!(task.upid_size),
        config!(task.upid_nr),
        config!(task.upid_ns),
    );
    // SAFETY: `task` and the `struct pid` loaded from it are BTF-typed (see `field`). The
    // numbers past the first lie beyond the declared one-element array, so they are read with
    // bpf_probe_read_kernel, which checks each address; the pid's own depth bounds the walk.
    unsafe {
        let pid: *const u8 = field(task, config!(task.thread_pid));
        let depth: u32 = field(pid, config!(task.pid_level));
        let numbers = pid.add(config!(task.pid_numbers) as usize);
        for level in 0..PID_NS_LEVELS {
            if level > depth {
                return None;
            }
            let upid = numbers.add((level * upid_size) as usize);
            let ns = bpf_probe_read_kernel(upid.add(ns_off as usize).cast::<u64>()).ok()?;
            let inum = bpf_probe_read_kernel(
                (ns as *const u8)
                    .add(config!(task.pid_namespace_inum) as usize)
                    .cast::<u32>(),
            )
            .ok()?;
            if u64::from(inum) == config!(pidns_ino) {
                return bpf_probe_read_kernel(upid.add(nr_off as usize).cast::<u32>()).ok();
            }
        }
    }
    None
}

/// `task`'s record with TID and TGID as the profiler's pid namespace numbers them; None for a
/// thread outside that namespace.
#[inline(always)]
fn task_record_in_namespace(task: *const u8) -> Option<TaskIo> {
    let mut rec = task_record(task);
    if config!(translate_pids) != 0 {
        rec.tid = pid_in_namespace(task)?;
        // SAFETY: a BTF-typed pointer field of a BTF-typed task (see `field`).
        let leader: *const u8 = unsafe { field(task, config!(task.group_leader)) };
        rec.tgid = pid_in_namespace(leader)?;
    }
    Some(rec)
}

/// `struct bpf_iter__task`: the iterator's context.
#[repr(C)]
struct IterTaskCtx {
    /// `struct bpf_iter_meta`, whose first member is the output `struct seq_file *`.
    meta: *const *mut c_void,
    /// NULL on the last call, after the last task.
    task: *const u8,
}

/// The iterator's context as the logging macros take it.
struct IterContext(*const IterTaskCtx);

impl EbpfContext for IterContext {
    fn as_ptr(&self) -> *mut c_void {
        self.0.cast_mut().cast()
    }
}

/// Task iterator: one [`TaskIo`] per thread of the pid namespace that reads it.
#[no_mangle]
#[link_section = "iter/task"]
extern "C" fn task_iter(ctx: *const IterTaskCtx) -> i32 {
    // SAFETY: the kernel passes a `struct bpf_iter__task`; the verifier checks both loads.
    let (meta, task) = unsafe { ((*ctx).meta, (*ctx).task) };
    if task.is_null() {
        // The end of a pass.
        log_first_pass(&IterContext(ctx));
        return 0;
    }
    let Some(rec) = task_record_in_namespace(task) else {
        return 0;
    };
    // SAFETY: `meta` points at the iterator's bpf_iter_meta, whose first member is the seq_file
    // to write to; `rec` is a live stack value of the length passed. A full buffer makes the
    // kernel show this task again in the next read, so the result needs no handling.
    unsafe {
        let seq = *meta;
        bpf_seq_write(
            seq.cast(),
            (&rec as *const TaskIo).cast(),
            core::mem::size_of::<TaskIo>() as u32,
        );
    }
    0
}

/// A thread exits: its last counters, read from the task, go to userspace, and its I/O wait
/// slot is cleared for the next thread with its TID.
#[btf_tracepoint(function = "sched_process_exit")]
pub fn task_exit(ctx: BtfTracePointContext) -> u32 {
    let task: *const u8 = ctx.arg(0);
    if let Some(last) = task_record_in_namespace(task) {
        submit_exit(&ctx, last);
    }
    if config!(iowait) != 0 {
        // SAFETY: a BTF-typed task (see `field`).
        let tid: u32 = unsafe { field(task, config!(task.pid)) };
        if let Some(w) = IOWAIT.get_ptr_mut(tid) {
            // SAFETY: the exiting thread's own slot.
            unsafe { *w = IoWait::default() };
        }
    }
    0
}

// ---------------------------------------------------------------------------------------------
// The syscall-hook path: counting, for kernels without BTF.

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

#[inline(always)]
fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
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

/// raw_syscalls/sys_exit: every syscall of the machine passes here; the common path is a
/// handful of loads and one helper call.
#[tracepoint(category = "raw_syscalls", name = "sys_exit")]
pub fn sys_exit(ctx: TracePointContext) -> u32 {
    // Offsets of `id` and `ret` in raw_syscalls/sys_exit/format; userspace checks them before attaching.
    // SAFETY: both offsets lie inside the record, as the format file says.
    let (Ok(syscall), Ok(ret)) = (unsafe { ctx.read_at::<i64>(8) }, unsafe {
        ctx.read_at::<i64>(16)
    }) else {
        return 0;
    };
    let Some(kind) = kind_of(syscall as u64) else {
        return 0;
    };
    if !counted(kind, ret) {
        return 0;
    }
    let Some(t) = task_entry(&ctx, current_tid()) else {
        return 0;
    };
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
    0
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_exit(ctx: TracePointContext) -> u32 {
    let host_tid = current_tid();
    let Some(t) = existing_entry(host_tid) else {
        return 0;
    };
    // SAFETY: `t` points at this thread's live map value.
    submit_exit(&ctx, unsafe { *t });
    match TIDS.get_ptr_mut(host_tid) {
        // SAFETY: this thread's own slot; a slot whose host_tid is not its index is empty.
        Some(slot) => unsafe { core::ptr::write_volatile(&mut (*slot).host_tid, 0) },
        None => {
            let _ = TASKS.remove(host_tid);
        }
    }
    0
}

/// A thread that exec()s keeps its TID: take the new command name.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_exec(_ctx: TracePointContext) -> u32 {
    if let Some(t) = existing_entry(current_tid()) {
        if let Ok(comm) = bpf_get_current_comm() {
            // SAFETY: this thread's own map value.
            unsafe { (*t).comm = comm };
        }
    }
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
    if let Some(t) = task_entry(&ctx, current_tid()) {
        // SAFETY: this thread's own map value.
        unsafe { (*t).read_bytes += u64::from(sectors) * 512 };
    }
    0
}

/// Page cache: a page (or folio) became dirty; the kernel charges it to the dirtying task
/// (task_io_account_write in account_page_dirtied / folio_account_dirtied) when the mapping can
/// write back. Attached to `writeback_dirty_folio` or `writeback_dirty_page`.
#[tracepoint(category = "writeback", name = "writeback_dirty_folio")]
pub fn writeback_dirty(ctx: TracePointContext) -> u32 {
    // The bdi name is "(unknown)" exactly for mappings without a backing device (tmpfs, ramfs),
    // which the kernel does not charge.
    let name_off = config!(dirty_name_off);
    // SAFETY: offset from the format file, checked by userspace.
    let Ok(first) = (unsafe { ctx.read_at::<[u8; 2]>(name_off as usize) }) else {
        return 0;
    };
    if first == *b"(u" {
        return 0;
    }
    if let Some(t) = task_entry(&ctx, current_tid()) {
        // SAFETY: this thread's own map value.
        unsafe { (*t).write_bytes += u64::from(config!(page_size)) };
    }
    0
}

/// The licence the kernel reads from the object: GPL-compatible, as the GPL-only helpers these
/// programs call (bpf_probe_read_kernel, bpf_seq_write, ...) require.
#[no_mangle]
#[link_section = "license"]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
