//! Everything that crosses the kernel boundary between `profiler-ebpf` and `profiler`:
//! map names, map values, the per-program configuration and the drop counters.
//! Both sides use these definitions; nothing here is ever mirrored by hand.
#![no_std]

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
/// Global variable holding a [`Config`].
pub const CONFIG_GLOBAL: &str = "CONFIG";

/// Room for this many threads at once in [`TASKS_MAP`]: sized for 100k tasks with headroom.
pub const MAX_TASKS: u32 = 131_072;
/// Most slots [`TIDS_MAP`] gets: it covers the kernel's whole TID range (`kernel.pid_max`) up
/// to this, at `size_of::<TaskIo>()` bytes a slot.
pub const MAX_TIDS: u32 = 131_072;
/// Bytes of the exit ring buffer: room for about 40k exit records between two refreshes.
pub const EXITED_RING_BYTES: u32 = 4 << 20;

/// Length of a task's command, as in the kernel's `TASK_COMM_LEN`.
pub const COMM_LEN: usize = 16;

/// Cumulative I/O counters of one thread since the programs were attached,
/// with the labels captured in the kernel when the thread was first seen.
/// The counter names and meanings are those of /proc/PID/io.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskIo {
    pub rchar: u64,
    pub wchar: u64,
    pub syscr: u64,
    pub syscw: u64,
    /// Bytes of read bios this thread submitted to the block layer. With [`Config::ioac_off`]
    /// this and the next two are the kernel's own counters, since the thread started.
    pub read_bytes: u64,
    /// Bytes of page-cache pages this thread dirtied.
    pub write_bytes: u64,
    /// Bytes of dirty page-cache pages this thread truncated away before writeback.
    pub cancelled_write_bytes: u64,
    /// cgroup v2 id of the thread (the inode number of its cgroup directory).
    pub cgroup_id: u64,
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

/// Settings userspace writes into the object before loading it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Non-zero: translate pids into the pid namespace given by `pidns_dev`/`pidns_ino`,
    /// and ignore tasks whose own pid namespace is another one.
    pub translate_pids: u64,
    pub pidns_dev: u64,
    pub pidns_ino: u64,
    /// Byte offsets of fields in the classic tracepoint records, read from tracefs `format` files.
    pub bio_queue_nr_sector_off: u32,
    pub bio_queue_rwbs_off: u32,
    pub dirty_folio_name_off: u32,
    /// Byte offset of `pid` (the TID) in `struct task_struct`, from the kernel's BTF; 0 when
    /// unknown. When set, the syscall probe reads the TID straight from the task instead of
    /// calling a helper for it.
    pub task_pid_off: u32,
    /// Byte offset of `ioac.read_bytes` in `struct task_struct`, from the kernel's BTF; 0 when
    /// unknown. When set, read_bytes, write_bytes and cancelled_write_bytes are read from the
    /// kernel's task I/O accounting (followed by write_bytes and cancelled_write_bytes, 8 bytes
    /// apart) instead of being counted from block and page-cache tracepoints.
    pub ioac_off: u64,
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

/// Syscall numbers the programs account, per architecture.
pub mod syscalls {
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
    use super::{Config, TaskIo};
    // SAFETY: both are repr(C), made only of integers, with every padding byte written out as a field.
    unsafe impl aya::Pod for TaskIo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Config {}
}
