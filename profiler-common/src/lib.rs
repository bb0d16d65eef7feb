//! Everything that crosses the kernel boundary between `profiler-ebpf` and `profiler`:
//! program and map names, map values and iterator records, the per-program configuration and
//! the drop counters. Both sides use these definitions; nothing here is ever mirrored by hand.
#![no_std]

/// The task iterator program (`iter/task`): one [`TaskIo`] record per task, read from the
/// kernel's own task I/O accounting. Needs BTF (Linux 5.8+); no hook on the syscall path.
pub const TASK_ITER_PROG: &str = "task_iter";
/// Exit probe of the iterator path (BTF tracepoint `sched_process_exit`).
pub const TASK_EXIT_PROG: &str = "task_exit";
/// Programs of the syscall-hook path, for kernels without BTF or task iterators: classic
/// tracepoints that count what fs/read_write.c counts.
pub const SYS_EXIT_PROG: &str = "sys_exit";
pub const SCHED_EXIT_PROG: &str = "sched_exit";
pub const SCHED_EXEC_PROG: &str = "sched_exec";
/// Scheduler probes of the iterator path that measure each thread's block I/O wait the way the
/// kernel's delay accounting does (from being switched out with `in_iowait` set until woken),
/// so IO> needs no `kernel.task_delayacct`. BTF tracepoints `sched_switch` and `sched_waking`.
pub const IOWAIT_SWITCH_PROG: &str = "iowait_switch";
pub const IOWAIT_WAKEUP_PROG: &str = "iowait_wakeup";
/// Block layer reads, charged like task_io_account_read in submit_bio.
pub const BIO_QUEUE_PROG: &str = "block_bio_queue";
/// Page-cache pages dirtied: attached to `writeback_dirty_folio` (Linux 5.17+) or
/// `writeback_dirty_page` (before), whichever the kernel has; both records have the same fields.
pub const DIRTY_PROG: &str = "writeback_dirty";

/// Per-thread counters of threads whose host TID is below the array's length, at index TID
/// (an array of [`TaskIo`], `BPF_F_MMAPABLE`). A slot is in use when its `host_tid` equals its
/// index. Userspace sets the length when it loads the object.
pub const TIDS_MAP: &str = "TIDS";
/// Per-thread counters of threads with larger TIDs, keyed by host TID (`u32`).
pub const TASKS_MAP: &str = "TASKS";
/// Ring buffer of [`TaskIo`] records of threads that exited: their last counters.
pub const EXITED_MAP: &str = "EXITED";
/// Per-CPU array of `u64`, indexed by [`Stat`].
pub const STATS_MAP: &str = "STATS";
/// Per-thread I/O wait of threads whose host TID is below the array's length, at index TID
/// (an array of [`IoWait`]); userspace sets the length at load time.
pub const IOWAIT_MAP: &str = "IOWAIT";
/// Global variable holding a [`Config`].
pub const CONFIG_GLOBAL: &str = "CONFIG";

/// Room for this many threads at once in [`TASKS_MAP`]: sized for 100k tasks with headroom.
pub const MAX_TASKS: u32 = 131_072;
/// Most slots [`TIDS_MAP`] gets: it covers the kernel's whole TID range (`kernel.pid_max`) up
/// to this, at `size_of::<TaskIo>()` bytes a slot.
pub const MAX_TIDS: u32 = 131_072;
/// Bytes of the exit ring buffer: room for about 40k exit records between two refreshes.
pub const EXITED_RING_BYTES: u32 = 4 << 20;

/// One thread's block I/O wait as the scheduler probes measure it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoWait {
    /// When the thread was switched out to wait for I/O (CLOCK_MONOTONIC ns); 0 when not waiting.
    pub since_ns: u64,
    /// Waits completed so far, in ns.
    pub total_ns: u64,
}

/// Length of a task's command, as in the kernel's `TASK_COMM_LEN`.
pub const COMM_LEN: usize = 16;

/// Cumulative I/O counters of one thread with its labels: a task iterator record or an exit
/// record (the kernel's own counters, since the thread started), or a map value of the
/// syscall-hook path (counted since the programs were attached, labels captured when the thread
/// was first seen). The counter names and meanings are those of /proc/PID/io.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskIo {
    pub rchar: u64,
    pub wchar: u64,
    pub syscr: u64,
    pub syscw: u64,
    /// Bytes of read bios this thread submitted to the block layer.
    pub read_bytes: u64,
    /// Bytes of page-cache pages this thread dirtied.
    pub write_bytes: u64,
    /// Bytes of dirty page-cache pages this thread truncated away before writeback.
    pub cancelled_write_bytes: u64,
    /// cgroup v2 id of the thread (the inode number of its cgroup directory).
    pub cgroup_id: u64,
    /// `task_struct.start_time` (CLOCK_MONOTONIC ns): with the TID, tells a reused TID from
    /// the thread that had it before. 0 where unknown (the syscall-hook path).
    pub start_time_ns: u64,
    /// Block I/O wait of the thread, ns, from the scheduler probes; `u64::MAX` where they do
    /// not measure it (not attached, or a TID beyond the IOWAIT array).
    pub blkio_delay_ns: u64,
    /// Host TID (the map key), repeated so an exit record is self-contained.
    pub host_tid: u32,
    /// TID and TGID as seen in the profiler's pid namespace.
    pub tid: u32,
    pub tgid: u32,
    /// Real uid, in the initial user namespace.
    pub uid: u32,
    /// Non-zero once the thread has exited (only set in exit records).
    pub exited: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}

/// Settings userspace writes into the object before loading it. The object's programs see
/// them as constants (a frozen read-only map), so the verifier drops the branches they rule out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Non-zero: translate pids into the pid namespace given by `pidns_dev`/`pidns_ino`, and
    /// ignore tasks outside it.
    pub translate_pids: u64,
    pub pidns_dev: u64,
    pub pidns_ino: u64,
    /// Byte offsets of fields in the classic tracepoint records, read from tracefs `format` files.
    pub bio_queue_nr_sector_off: u32,
    pub bio_queue_rwbs_off: u32,
    pub dirty_name_off: u32,
    /// Bytes the kernel charges per dirtied page (its page size).
    pub page_size: u32,
    /// Non-zero: the scheduler probes measure I/O wait into IOWAIT, and records carry it.
    pub iowait: u32,
    pub _pad: u32,
    /// Where the iterator path finds what it reads, from the kernel's BTF.
    pub task: TaskLayout,
}

/// Byte offsets of the kernel fields the task iterator and its exit probe read, taken from the
/// running kernel's BTF (so no kernel version's layout is assumed). Fields of `task_struct`
/// unless named otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskLayout {
    pub pid: u32,
    pub tgid: u32,
    pub comm: u32,
    pub start_time: u32,
    /// `ioac.rchar` … `ioac.cancelled_write_bytes` (struct task_io_accounting).
    pub rchar: u32,
    pub wchar: u32,
    pub syscr: u32,
    pub syscw: u32,
    pub read_bytes: u32,
    pub write_bytes: u32,
    pub cancelled_write_bytes: u32,
    /// `real_cred`, then `struct cred.uid`.
    pub real_cred: u32,
    pub cred_uid: u32,
    /// `cgroups`, then `struct css_set.dfl_cgrp`, `struct cgroup.kn`, `struct kernfs_node.id`.
    pub cgroups: u32,
    pub css_set_dfl_cgrp: u32,
    pub cgroup_kn: u32,
    pub kernfs_node_id: u32,
    /// `thread_pid`, `group_leader`, then `struct pid.level`, `struct pid.numbers`, the size of
    /// `struct upid` and its `nr` and `ns`, and `struct pid_namespace.ns.inum`: a thread's pid at
    /// the profiler's namespace depth, and whether that namespace is the profiler's.
    pub thread_pid: u32,
    pub group_leader: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_nr: u32,
    pub upid_ns: u32,
    pub pid_namespace_inum: u32,
    /// `__state` (`state` before Linux 5.14), and the byte and bit of the `in_iowait` bitfield.
    pub state: u32,
    pub in_iowait_byte: u32,
    pub in_iowait_mask: u32,
    /// `se.sched_delayed` (Linux 6.12+; 0 where the kernel has none): a sleeping task the
    /// scheduler has not taken off its run queue yet, whose blkio delay the kernel does not start.
    pub sched_delayed: u32,
    pub _pad: u32,
}

/// Indices into [`STATS_MAP`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// A new thread could not get an entry in [`TASKS_MAP`]: its I/O was not counted.
    TaskMapFull = 0,
    /// An exit record did not fit in the ring buffer: the thread's last counters were lost.
    ExitRingFull = 1,
}
pub const STATS_LEN: u32 = 2;

/// What [`TaskIo::blkio_delay_ns`] holds when the thread's I/O wait is not measured.
pub const NOT_MEASURED: u64 = u64::MAX;

/// Syscall numbers the programs account, per architecture.
pub mod syscalls {
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        bpf_target_arch = "x86_64",
        bpf_target_arch = "aarch64"
    )))]
    compile_error!(
        "profiler knows the syscall numbers of x86_64 and aarch64 only; add this architecture's \
         read/write family here"
    );
    #[cfg(any(target_arch = "x86_64", bpf_target_arch = "x86_64"))]
    mod nr {
        pub const READ: u64 = 0;
        pub const WRITE: u64 = 1;
        pub const PREAD64: u64 = 17;
        pub const PWRITE64: u64 = 18;
        pub const READV: u64 = 19;
        pub const WRITEV: u64 = 20;
        pub const SENDFILE: u64 = 40;
        pub const PREADV: u64 = 295;
        pub const PWRITEV: u64 = 296;
        pub const PREADV2: u64 = 327;
        pub const PWRITEV2: u64 = 328;
        pub const COPY_FILE_RANGE: u64 = 326;
    }
    #[cfg(any(target_arch = "aarch64", bpf_target_arch = "aarch64"))]
    mod nr {
        pub const READ: u64 = 63;
        pub const WRITE: u64 = 64;
        pub const PREAD64: u64 = 67;
        pub const PWRITE64: u64 = 68;
        pub const READV: u64 = 65;
        pub const WRITEV: u64 = 66;
        pub const SENDFILE: u64 = 71;
        pub const PREADV: u64 = 69;
        pub const PWRITEV: u64 = 70;
        pub const PREADV2: u64 = 286;
        pub const PWRITEV2: u64 = 287;
        pub const COPY_FILE_RANGE: u64 = 285;
    }
    pub use nr::*;
}

#[cfg(feature = "user")]
mod pod {
    use super::{Config, IoWait, TaskIo};
    // SAFETY: both are repr(C), made only of integers, with every padding byte written out as a field.
    unsafe impl aya::Pod for TaskIo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for IoWait {}
}
