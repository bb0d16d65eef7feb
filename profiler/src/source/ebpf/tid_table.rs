//! The probes' TIDS array, mapped read-only into this process: a refresh reads every live
//! thread's counters by scanning memory, with no syscall per thread.

use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;

use aya::maps::MapData;
use profiler_common::TaskIo;

/// Bytes between two slots: the kernel rounds array values up to 8 bytes.
const SLOT_BYTES: usize = std::mem::size_of::<TaskIo>().next_multiple_of(8);
const HOST_TID_OFFSET: usize = std::mem::offset_of!(TaskIo, host_tid);

pub struct TidTable {
    base: NonNull<u8>,
    mapped_bytes: usize,
    slots: usize,
    /// Holds the map open for as long as it is mapped.
    _map: MapData,
}

impl TidTable {
    pub fn new(map: MapData) -> Result<TidTable, String> {
        let slots = map
            .info()
            .map_err(|e| format!("reading the map's info: {e}"))?
            .max_entries() as usize;
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| "sysconf(_SC_PAGESIZE) failed".to_owned())?;
        let mapped_bytes = (slots * SLOT_BYTES).next_multiple_of(page);
        // SAFETY: a new shared read-only mapping of the map's fd, which is open; the kernel
        // checks the length against the array, and the result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_bytes,
                libc::PROT_READ,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or("mmap returned NULL")?;
        Ok(TidTable {
            base,
            mapped_bytes,
            slots,
            _map: map,
        })
    }

    /// Calls `f` with a copy of every slot in use.
    pub fn for_each_live(&self, mut f: impl FnMut(TaskIo)) {
        // Slot 0 would be TID 0, the idle task, which makes no syscalls.
        for index in 1..self.slots {
            // SAFETY: `index` < `slots`, so the slot lies inside the live mapping.
            let slot = unsafe { self.base.as_ptr().add(index * SLOT_BYTES) };
            // The probes write slots while this reads them: each read is a volatile copy (every
            // bit pattern is a valid TaskIo), and a slot counts only once its host_tid is set,
            // which the probes store after the rest of a new entry.
            // SAFETY: in the slot, 4-byte aligned (slots are 8-byte aligned, the field too).
            let host_tid = unsafe { slot.add(HOST_TID_OFFSET).cast::<u32>().read_volatile() };
            if host_tid as usize != index {
                continue;
            }
            // SAFETY: the whole slot is mapped and 8-byte aligned, as TaskIo needs.
            let io = unsafe { slot.cast::<TaskIo>().read_volatile() };
            if io.host_tid as usize == index {
                f(io);
            }
        }
    }
}

// SAFETY: the mapping belongs to the value, not to a thread, and is only ever read.
unsafe impl Send for TidTable {}
// SAFETY: as above; reads through `&self` do not touch any state of the value.
unsafe impl Sync for TidTable {}

impl Drop for TidTable {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; nothing borrows it past `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.mapped_bytes) };
    }
}
