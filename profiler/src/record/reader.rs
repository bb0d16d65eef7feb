//! `RecordingReader`: the samples of one recording file, in a time range, found by reading
//! block frames only and decompressing just the blocks that overlap the range.

use crate::sample::Monotonic;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::block::{self, Record};
use super::convert::{columns, sample_from_record};
use super::format::{
    le_u32, read_up_to, Codec, Frame, FrameError, Header, FRAME_LEN, MAGIC, MAX_HEADER_LEN,
    MAX_RAW_LEN, PREAMBLE_LEN, VERSION,
};
use super::{Problem, RecordError};
use crate::sample::Sample;

/// Iterates the samples of a recording. Damage is an `Err` naming the file and the byte:
/// after a block whose payload is damaged, reading goes on with the next block; after a
/// damaged frame or a truncated block, it ends.
pub struct RecordingReader {
    path: PathBuf,
    file: BufReader<File>,
    header: Header,
    /// The file's format version.
    version: u16,
    columns: Vec<Option<usize>>,
    /// Where the next block frame starts.
    offset: u64,
    pending: VecDeque<Record>,
    begin_ns: u64,
    end_ns: u64,
    anchor: Monotonic,
    done: bool,
}

fn ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl RecordingReader {
    /// Opens a recording and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<RecordingReader, RecordError> {
        let path = path.as_ref();
        let err = |offset, problem| RecordError::new(path, offset, problem);
        let file = File::open(path).map_err(|e| RecordError::io(path, 0, "opening", e))?;
        let mut file = BufReader::with_capacity(64 << 10, file);
        let mut pre = [0u8; PREAMBLE_LEN];
        let n =
            read_up_to(&mut file, &mut pre).map_err(|e| RecordError::io(path, 0, "reading", e))?;
        if n == 0 {
            return Err(err(0, Problem::Empty));
        }
        let magic = n.min(MAGIC.len());
        if pre[..magic] != MAGIC[..magic] {
            return Err(err(0, Problem::NotARecording));
        }
        if n < PREAMBLE_LEN {
            return Err(err(n as u64, Problem::Truncated("the file header")));
        }
        let version = u16::from_le_bytes([pre[8], pre[9]]);
        if version > VERSION {
            return Err(err(
                8,
                Problem::NewerVersion {
                    found: version,
                    supported: VERSION,
                },
            ));
        }
        if version == 0 {
            return Err(err(8, Problem::Corrupt("format version 0".into())));
        }
        let len = le_u32(&pre[10..14]);
        if len > MAX_HEADER_LEN {
            return Err(err(10, Problem::Corrupt("header length over 1 MiB".into())));
        }
        let mut body = vec![0u8; len as usize];
        let n = read_up_to(&mut file, &mut body)
            .map_err(|e| RecordError::io(path, PREAMBLE_LEN as u64, "reading", e))?;
        if n < body.len() {
            return Err(err(
                (PREAMBLE_LEN + n) as u64,
                Problem::Truncated("the file header"),
            ));
        }
        if crc32fast::hash(&body) != le_u32(&pre[14..18]) {
            return Err(err(
                14,
                Problem::Corrupt("file header checksum mismatch".into()),
            ));
        }
        let header = Header::decode_body(&body).map_err(|e| {
            err(
                PREAMBLE_LEN as u64,
                Problem::Corrupt(format!("file header: {e}")),
            )
        })?;
        Ok(RecordingReader {
            path: path.to_path_buf(),
            file,
            columns: columns(&header.counters),
            header,
            version,
            offset: (PREAMBLE_LEN + len as usize) as u64,
            pending: VecDeque::new(),
            begin_ns: 0,
            end_ns: u64::MAX,
            anchor: Monotonic::now(),
            done: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the next block would start: after the end, the readable length of the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Only samples taken from `begin` to `end` (inclusive); blocks entirely outside are
    /// skipped unread. Blocks are taken to be in time order.
    pub fn range(mut self, begin: Option<SystemTime>, end: Option<SystemTime>) -> Self {
        self.begin_ns = begin.map_or(0, ns);
        self.end_ns = end.map_or(u64::MAX, ns);
        self
    }

    /// Replayed samples' `taken_at` are this instant plus their recorded monotonic stamp.
    pub fn with_anchor(mut self, anchor: Monotonic) -> Self {
        self.anchor = anchor;
        self
    }

    /// The next record in range, as the file stores it.
    pub fn next_record(&mut self) -> Option<Result<Record, RecordError>> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                if (self.begin_ns..=self.end_ns).contains(&r.wall_ns) {
                    return Some(Ok(r));
                }
                continue;
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.next_block() {
                return Some(Err(e));
            }
        }
    }

    /// Reads the next block in range into `pending`, or sets `done`.
    fn next_block(&mut self) -> Result<(), RecordError> {
        let at = self.offset;
        let err = |problem| RecordError::new(&self.path, at, problem);
        let io = |e| RecordError::io(&self.path, at, "reading", e);
        self.file.seek(SeekFrom::Start(at)).map_err(io)?;
        let mut fb = [0u8; FRAME_LEN];
        let n = read_up_to(&mut self.file, &mut fb).map_err(io)?;
        if n == 0 {
            self.done = true;
            return Ok(());
        }
        if n < FRAME_LEN {
            self.done = true;
            return Err(err(Problem::Truncated("a block frame")));
        }
        let frame = Frame::decode(&fb).map_err(|e| {
            self.done = true;
            err(Problem::Corrupt(
                match e {
                    FrameError::Magic => "no block starts here",
                    FrameError::Checksum => "block frame checksum mismatch",
                    FrameError::Fields => "block frame fields out of range",
                }
                .into(),
            ))
        })?;
        if frame.stored_len > MAX_RAW_LEN + MAX_RAW_LEN / 8 {
            self.done = true;
            return Err(err(Problem::Corrupt("block length out of range".into())));
        }
        let next = at + (FRAME_LEN as u64) + u64::from(frame.stored_len);
        if frame.first_wall_ns > self.end_ns {
            self.done = true;
            return Ok(());
        }
        if frame.last_wall_ns < self.begin_ns {
            self.offset = next;
            return Ok(());
        }
        let mut stored = vec![0u8; frame.stored_len as usize];
        let n = read_up_to(&mut self.file, &mut stored).map_err(io)?;
        if n < stored.len() {
            self.done = true;
            return Err(err(Problem::Truncated("a block")));
        }
        // The frame is sound, so a damaged payload costs this block only.
        self.offset = next;
        let lost = |what: String| {
            err(Problem::Corrupt(format!(
                "{what}; its {} records are skipped",
                frame.records
            )))
        };
        if crc32fast::hash(&stored) != frame.payload_crc {
            return Err(lost("block checksum mismatch".into()));
        }
        let codec = Codec::from_byte(frame.codec).ok_or_else(|| {
            lost(format!(
                "block compressed with unknown codec {}",
                frame.codec
            ))
        })?;
        let raw = codec
            .decompress(&stored, frame.raw_len as usize)
            .ok_or_else(|| lost("block does not decompress".into()))?;
        let records = block::decode(
            &raw,
            frame.records,
            self.header.counters.len(),
            self.version,
        )
        .map_err(lost)?;
        self.pending = records.into();
        Ok(())
    }
}

impl Iterator for RecordingReader {
    type Item = Result<Sample, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.next_record()?;
        Some(r.map(|r| sample_from_record(r, &self.columns, self.anchor)))
    }
}

/// The files of a rotated recording, oldest first: FILE.N … FILE.1, then FILE (those that
/// exist; numbering stops at the first gap).
pub fn series(path: impl AsRef<Path>) -> Vec<PathBuf> {
    let path = path.as_ref();
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| {
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        })
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    files
}
