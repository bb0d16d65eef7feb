//! A whole BPF hash map in a few bpf(2) calls (BPF_MAP_LOOKUP_BATCH, Linux 5.6+), where aya's
//! iterator makes two calls per entry (next key, then lookup).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use aya::Pod;

/// `BPF_MAP_LOOKUP_BATCH` in the kernel's `enum bpf_cmd`.
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// The kernel's internal ENOTSUPP, which reaches userspace from map types without batch ops.
const ENOTSUPP: i32 = 524;
/// Entries asked for per call: one call covers most maps this source sees.
const FIRST_CHUNK: usize = 4096;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The kernel has no batch lookup for this map (or at all): read it another way.
    #[error("batch lookup not supported: {0}")]
    Unsupported(io::Error),
    #[error("{0}")]
    Os(io::Error),
}

/// Reusable buffers for reading one map; `K` and `V` are the map's key and value types.
pub struct BatchReader<K, V> {
    keys: Vec<K>,
    values: Vec<V>,
}

impl<K: Pod, V: Pod> BatchReader<K, V> {
    pub fn new() -> Self {
        BatchReader {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    fn grow_to(&mut self, entries: usize) {
        // SAFETY: Pod types are plain integers and arrays of them: all-zero is a valid value.
        let zero_key: K = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let zero_value: V = unsafe { std::mem::zeroed() };
        self.keys.resize(entries, zero_key);
        self.values.resize(entries, zero_value);
    }

    /// Calls `each` for every entry of the map behind `fd`. Entries that others add or remove
    /// meanwhile may or may not be seen.
    pub fn read(
        &mut self,
        fd: BorrowedFd<'_>,
        mut each: impl FnMut(&K, &V),
    ) -> Result<(), BatchError> {
        if self.keys.is_empty() {
            self.grow_to(FIRST_CHUNK);
        }
        // The position between calls; hash maps use a u32 bucket index, kept in room for more.
        let (mut in_token, mut out_token) = (0u64, 0u64);
        let mut first = true;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first {
                    0
                } else {
                    std::ptr::from_ref(&in_token) as u64
                },
                out_batch: std::ptr::from_mut(&mut out_token) as u64,
                keys: self.keys.as_mut_ptr() as u64,
                values: self.values.as_mut_ptr() as u64,
                count: u32::try_from(self.keys.len()).unwrap_or(u32::MAX),
                map_fd: fd.as_raw_fd() as u32,
                ..BatchAttr::default()
            };
            // SAFETY: `attr` is a valid BPF_MAP_LOOKUP_BATCH request: the key and value buffers
            // hold `count` entries of the map's key and value types (K and V, as the caller
            // says), the batch tokens point at live u64s, and all outlive the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_MAP_LOOKUP_BATCH,
                    std::ptr::from_mut(&mut attr),
                    std::mem::size_of::<BatchAttr>(),
                )
            };
            let outcome = if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            };
            let end = match outcome {
                Ok(()) => false,
                // The end of the map; this last call's entries are still to be taken.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
                // A bucket holds more entries than the buffer: retry the same position, larger.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && attr.count == 0 => {
                    let twice = self.keys.len() * 2;
                    self.grow_to(twice);
                    continue;
                }
                Err(e)
                    if first
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
                        ) =>
                {
                    return Err(BatchError::Unsupported(e));
                }
                Err(e) => return Err(BatchError::Os(e)),
            };
            // The kernel wrote back how many entries it filled in.
            let n = (attr.count as usize).min(self.keys.len());
            for (k, v) in self.keys[..n].iter().zip(&self.values[..n]) {
                each(k, v);
            }
            if end {
                return Ok(());
            }
            in_token = out_token;
            first = false;
        }
    }
}
