//! The recording file format, version 2: what `profiler` writes with `Recorder` and reads back
//! with `RecordingReader`. This comment is the specification; the code below implements its
//! byte-level pieces (varints, the file header, the block frame, compression).
//!
//! # Layout
//!
//! ```text
//! file   = file-header block*
//! block  = frame (44 bytes) payload (frame.stored_len bytes)
//! ```
//!
//! All fixed-width integers are little-endian. `varint` is unsigned LEB128 (at most 10 bytes
//! for a u64); `zigzag` is a signed value mapped to unsigned (`(n << 1) ^ (n >> 63)`) then
//! written as a varint; `string` is a varint byte length then that many bytes of UTF-8;
//! `opt` is a varint 0 for "none", else the value plus one. Times are nanoseconds: wall time
//! since the Unix epoch, monotonic time since the recorder's first sample. (`opt` stores
//! values up to 2^64 - 2; larger ones are stored as that.)
//!
//! # File header
//!
//! ```text
//! magic          8 bytes  "PROFREC\n"
//! version        u16      2 (see Compatibility)
//! header_len     u32      length of the header body
//! header_crc     u32      CRC-32 (IEEE) of the header body
//! header body:
//!   host name          string   as /proc/sys/kernel/hostname said
//!   kernel release     string   as /proc/sys/kernel/osrelease said
//!   source             string   the source that was recorded: taskstats, ebpf, procfs
//!   method             opt-string (varint 0, or 1 then string): how it read the kernel
//!   totals since       string   what the source's cumulative counters count from
//!   created            varint   wall time the file was started
//!   counters           varint n, then n strings: counter names, in the order records use
//!   unavailable        varint n, then n times: varint m, m counter names, reason string
//! ```
//!
//! Bytes after the last field of the header body are ignored, so a later writer of this version may
//! append header fields. A reader maps counters by name: a counter it does not know is
//! skipped, a counter it knows that the file lacks reads as unmeasured. At most 64 counters.
//!
//! # Block frame (44 bytes)
//!
//! ```text
//! 0   4  magic         "RBLK"
//! 4   1  codec         0 stored, 1 LZ4 block (lz4_flex), others reserved
//! 5   3  reserved      0
//! 8   4  stored_len    payload bytes in the file
//! 12  4  raw_len       payload bytes once decompressed (at most 256 MiB)
//! 16  4  records       number of records in the block (at least 1)
//! 20  8  first_wall    earliest wall time of a record in the block (ns)
//! 28  8  last_wall     latest wall time of a record in the block (ns)
//! 36  4  payload_crc   CRC-32 of the stored payload
//! 40  4  frame_crc     CRC-32 of bytes 0..40 of this frame
//! ```
//!
//! LZ4 rather than zstd: measured on these payloads (`cargo bench --bench record`), the pure
//! Rust zstd encoder (ruzstd, fastest level) saved 3% to 15% more for 15 to 30 times the CPU;
//! the varint deltas leave little for either to find.
//!
//! A reader seeks by time from frames alone: it skips a block whose `last_wall` is before the
//! range and stops at one whose `first_wall` is after it, without reading its payload. Each
//! block is self-contained (it needs nothing from earlier blocks), so damage costs the damaged
//! block only, and a crash (kill -9) costs the block that was still open in memory (see
//! "Durability" below).
//!
//! # Block payload (decompressed)
//!
//! ```text
//! varint   d: tasks in the block's dictionary, then d entries:
//!   zigzag   tid - tid of the previous entry (0 before the first)
//!   zigzag   pid - tid
//!   u8       flags: bit 0 uid, bit 1 start_time, bit 2 cgroup_id present
//!   varint   uid          (if flagged)
//!   string   command
//!   varint   start_time   (if flagged)
//!   varint   cgroup_id    (if flagged)
//! then the container labels (version 2; absent in version 1):
//!   varint   c, then c times:
//!     varint   cgroup_id
//!     string   container label, as the recorder labelled the id (`docker:4f1c2a…`, `host`,
//!              a systemd unit), in increasing cgroup id
//! then `records` records:
//!   zigzag   wall time - previous record's (the first: - 0)
//!   zigzag   monotonic time - previous record's (the first: - 0)
//!   opt      lost_events
//!   varint   skipped_tasks
//!   varint   denied_tasks
//!   varint   e: entries, in increasing dictionary index, each:
//!     varint   index - (previous entry's index + 1)  (the first: index)
//!     u8       tag: bits 0-1 kind, bit 2 exited
//!       kind 0 "set":   varint mask (bit i: counter i measured), a varint per measured counter
//!       kind 1 "delta": varint mask (bit i: counter i changed), a zigzag difference
//!                       (wrapping, modulo 2^64) per changed counter
//!       kind 2 "gone":  nothing; the task is not in this sample
//! ```
//!
//! The container labels name the container of each cgroup id of the block's dictionary that
//! the recorder could label when the id first appeared in the block, so that a replay shows the
//! containers as they were, also once they are gone or on another host (a replay of a version
//! 1 file resolves the ids against its own host's cgroup tree).
//!
//! A dictionary entry is one task with its labels (tid, pid, uid, command, start time, cgroup);
//! a task whose labels change (exec renames it, setuid) becomes a new entry. A record lists
//! only the tasks that differ from the previous record of the block: new ones ("set", with
//! every counter), those whose counters or exited flag changed ("delta"; "set" again when a
//! counter became measured or unmeasured), and those no longer sampled ("gone"). A task that
//! did nothing costs no byte in a record; it costs its dictionary entry and its first "set"
//! once per block. The first record of a block is therefore a "set" for every task. Replay
//! yields a record's tasks in dictionary order, which is the order the block first saw them.
//!
//! # Blocks close
//!
//! after 60 records, or once they span 10 minutes of wall time, or their records take 4 MiB
//! uncompressed, whichever comes first (`BlockLimits`), and on `Recorder::finish` (or when
//! the recorder is dropped). The writer writes a block when it closes it.
//!
//! # Durability
//!
//! A closed block is written but not fsynced: the profiler's own end (kill -9, a crash, the
//! OOM killer) loses only the open block, and the kernel writes a closed one back within its
//! dirty expiry (`vm.dirty_expire_centisecs`, 30 s by default). A power cut or a kernel crash
//! therefore loses the open block and, in the half minute after a block closed, that block
//! too. An fsync per block would save the latter only: for blocks of 10 minutes, it keeps the
//! expected loss of a power cut at a random time at about 5 minutes instead of 5.5, while an
//! fsync in the sampling loop waits for the disk the profiler is watching, which is slowest
//! exactly when it is busy. The header is fsynced when a file starts, and the whole file when
//! the recording ends (`Recorder::finish`).
//!
//! # Size bound and rotation
//!
//! With a size bound of SIZE and K kept files, each file holds at most SIZE / (K + 1) bytes
//! (a single block larger than that still goes in whole): before a block that would pass that
//! bound, FILE.K is deleted, FILE.(K-1) … FILE.1 become FILE.K … FILE.2, FILE becomes FILE.1,
//! and a new FILE starts with the same header (with K = 0, FILE starts over). So recording
//! takes at most SIZE on disk while a block fits in SIZE / (K + 1), and keeps the newest
//! history. Every file reads on its own; `record::series` lists them oldest first.
//!
//! # Compatibility
//!
//! `version` changes only when a reader of the previous version would misread the file; a
//! file of a version newer than the reader's is refused with its version named, older ones are
//! read. Adding counters, header fields at the end of the header body, or codecs (an unknown
//! one costs its blocks, each refused with its number) keep the version. Version 2 added the
//! container labels of each block.

use std::io::{self, Read, Write};

pub const MAGIC: [u8; 8] = *b"PROFREC\n";
pub const VERSION: u16 = 2;
pub const BLOCK_MAGIC: [u8; 4] = *b"RBLK";
/// Bytes before the header body: magic, version, header_len, header_crc.
pub const PREAMBLE_LEN: usize = 8 + 2 + 4 + 4;
pub const FRAME_LEN: usize = 44;
/// Larger payloads are taken for corruption rather than allocated.
pub const MAX_RAW_LEN: u32 = 256 << 20;
pub const MAX_HEADER_LEN: u32 = 1 << 20;
pub const MAX_COUNTERS: usize = 64;

pub const KIND_SET: u8 = 0;
pub const KIND_DELTA: u8 = 1;
pub const KIND_GONE: u8 = 2;
pub const TAG_EXITED: u8 = 1 << 2;

/// How a block's payload is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Stored = 0,
    Lz4 = 1,
}

impl Codec {
    pub fn from_byte(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Stored),
            1 => Some(Codec::Lz4),
            _ => None,
        }
    }

    /// Appends `raw`, as this codec stores it, to `out`.
    pub fn compress_into(self, raw: &[u8], out: &mut Vec<u8>) {
        match self {
            Codec::Stored => out.extend_from_slice(raw),
            Codec::Lz4 => {
                let at = out.len();
                out.resize(at + lz4_flex::block::get_maximum_output_size(raw.len()), 0);
                let n = lz4_flex::block::compress_into(raw, &mut out[at..])
                    .expect("the output has room for the worst case");
                out.truncate(at + n);
            }
        }
    }

    /// `None` when the payload does not decompress to exactly `raw_len` bytes.
    pub fn decompress(self, stored: &[u8], raw_len: usize) -> Option<Vec<u8>> {
        let raw = match self {
            Codec::Stored => stored.to_vec(),
            Codec::Lz4 => lz4_flex::block::decompress(stored, raw_len).ok()?,
        };
        (raw.len() == raw_len).then_some(raw)
    }
}

/// The counters a source could not measure, with its reason, as the header stores them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnavailableCounters {
    pub counters: Vec<String>,
    pub reason: String,
}

/// What a file says about the recording before its first block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub host_name: String,
    pub kernel_release: String,
    pub source: String,
    pub method: Option<String>,
    pub totals_since: String,
    pub created_wall_ns: u64,
    pub counters: Vec<String>,
    pub unavailable: Vec<UnavailableCounters>,
}

impl Header {
    /// Magic, version, length, checksum and body, ready to be written at the start of a file.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        put_str(&mut body, &self.host_name);
        put_str(&mut body, &self.kernel_release);
        put_str(&mut body, &self.source);
        match &self.method {
            None => put_varint(&mut body, 0),
            Some(m) => {
                put_varint(&mut body, 1);
                put_str(&mut body, m);
            }
        }
        put_str(&mut body, &self.totals_since);
        put_varint(&mut body, self.created_wall_ns);
        put_varint(&mut body, self.counters.len() as u64);
        for c in &self.counters {
            put_str(&mut body, c);
        }
        put_varint(&mut body, self.unavailable.len() as u64);
        for u in &self.unavailable {
            put_varint(&mut body, u.counters.len() as u64);
            for c in &u.counters {
                put_str(&mut body, c);
            }
            put_str(&mut body, &u.reason);
        }
        let mut out = Vec::with_capacity(PREAMBLE_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a header body (after the preamble, its checksum verified).
    pub fn decode_body(body: &[u8]) -> Result<Header, &'static str> {
        let mut c = Cursor::new(body);
        let host_name = c.string()?;
        let kernel_release = c.string()?;
        let source = c.string()?;
        let method = match c.varint()? {
            0 => None,
            _ => Some(c.string()?),
        };
        let totals_since = c.string()?;
        let created_wall_ns = c.varint()?;
        let n = c.count(1)?;
        if n > MAX_COUNTERS {
            return Err("more than 64 counters");
        }
        let counters = (0..n).map(|_| c.string()).collect::<Result<_, _>>()?;
        let n = c.count(2)?;
        let mut unavailable = Vec::with_capacity(n);
        for _ in 0..n {
            let m = c.count(1)?;
            let counters = (0..m).map(|_| c.string()).collect::<Result<_, _>>()?;
            unavailable.push(UnavailableCounters {
                counters,
                reason: c.string()?,
            });
        }
        Ok(Header {
            host_name,
            kernel_release,
            source,
            method,
            totals_since,
            created_wall_ns,
            counters,
            unavailable,
        })
    }
}

/// The fixed-size frame before each block's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub codec: u8,
    pub stored_len: u32,
    pub raw_len: u32,
    pub records: u32,
    pub first_wall_ns: u64,
    pub last_wall_ns: u64,
    pub payload_crc: u32,
}

/// Why a frame could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    Magic,
    Checksum,
    Fields,
}

impl Frame {
    pub fn encode(&self) -> [u8; FRAME_LEN] {
        let mut b = [0u8; FRAME_LEN];
        b[0..4].copy_from_slice(&BLOCK_MAGIC);
        b[4] = self.codec;
        b[8..12].copy_from_slice(&self.stored_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.records.to_le_bytes());
        b[20..28].copy_from_slice(&self.first_wall_ns.to_le_bytes());
        b[28..36].copy_from_slice(&self.last_wall_ns.to_le_bytes());
        b[36..40].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; FRAME_LEN]) -> Result<Frame, FrameError> {
        if b[0..4] != BLOCK_MAGIC {
            return Err(FrameError::Magic);
        }
        if crc32fast::hash(&b[..40]) != le_u32(&b[40..44]) {
            return Err(FrameError::Checksum);
        }
        let frame = Frame {
            codec: b[4],
            stored_len: le_u32(&b[8..12]),
            raw_len: le_u32(&b[12..16]),
            records: le_u32(&b[16..20]),
            first_wall_ns: le_u64(&b[20..28]),
            last_wall_ns: le_u64(&b[28..36]),
            payload_crc: le_u32(&b[36..40]),
        };
        if frame.raw_len > MAX_RAW_LEN
            || frame.records == 0
            || frame.first_wall_ns > frame.last_wall_ns
            || b[5..8] != [0, 0, 0]
        {
            return Err(FrameError::Fields);
        }
        Ok(frame)
    }
}

pub fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

pub fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

/// Reads as many bytes as there are, up to `buf.len()`; fewer means the file ended.
pub fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

pub fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_varint(out, zigzag(v));
}

pub fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    // u64::MAX cannot be written as "value plus one"; no counter the kernel keeps gets there.
    put_varint(out, v.map_or(0, |v| v.saturating_add(1)));
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn write_all(w: &mut impl Write, parts: &[&[u8]]) -> io::Result<()> {
    parts.iter().try_for_each(|p| w.write_all(p))
}

/// Reads the pieces above from a byte slice; every failure is "the data is not well formed",
/// named by what was being read.
pub struct Cursor<'a> {
    data: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    pub fn byte(&mut self) -> Result<u8, &'static str> {
        let b = *self.data.get(self.pos).ok_or("data ends inside a field")?;
        self.pos += 1;
        Ok(b)
    }

    pub fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    pub fn zigzag(&mut self) -> Result<i64, &'static str> {
        self.varint().map(unzigzag)
    }

    pub fn opt(&mut self) -> Result<Option<u64>, &'static str> {
        Ok(self.varint()?.checked_sub(1))
    }

    /// A count of items that each take at least `min_bytes`, checked against what is left so
    /// that a corrupt count cannot make a reader allocate without bound.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, &'static str> {
        let n = self.varint()?;
        let left = (self.data.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes as u64) > left {
            return Err("count larger than the data left");
        }
        Ok(n as usize)
    }

    pub fn string(&mut self) -> Result<String, &'static str> {
        let n = self.count(1)?;
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut c = Cursor::new(&b);
            assert_eq!(c.varint(), Ok(v));
            assert!(c.at_end());
        }
        for v in [0, 1, -1, i64::MIN, i64::MAX, -300] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert!(Cursor::new(&[0xff; 11]).varint().is_err());
        assert!(
            Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
    }

    #[test]
    fn a_frame_round_trips_and_any_flipped_bit_is_caught() {
        let f = Frame {
            codec: 1,
            stored_len: 10,
            raw_len: 20,
            records: 3,
            first_wall_ns: 5,
            last_wall_ns: 9,
            payload_crc: 42,
        };
        let b = f.encode();
        assert_eq!(Frame::decode(&b), Ok(f));
        for i in 0..FRAME_LEN * 8 {
            let mut c = b;
            c[i / 8] ^= 1 << (i % 8);
            assert!(Frame::decode(&c).is_err(), "bit {i}");
        }
    }
}
