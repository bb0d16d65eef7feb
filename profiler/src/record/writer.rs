//! `Recorder`: appends samples to a recording, one block at a time (see `format`), and keeps
//! the file, or the rotated files, within a size bound.

use crate::sample::Monotonic;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::block::{BlockEncoder, Record, RecordHead};
use super::convert::{fields, record_head, wall_ns, Fields};
use super::format::{Codec, Frame, Header, FRAME_LEN, MAX_COUNTERS};
use super::RecordError;
use crate::sample::Sample;

/// When the open block is closed (compressed and written): whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct BlockLimits {
    pub records: u32,
    /// Wall time between the block's earliest and latest record.
    pub span: Duration,
    /// Encoded records, before compression.
    pub raw_bytes: usize,
}

impl BlockLimits {
    /// Whether a block of `records` records spanning `span_ns` whose records take
    /// `raw_bytes` has reached a limit.
    fn reached(&self, records: usize, span_ns: u64, raw_bytes: usize) -> bool {
        records >= self.records as usize
            || u128::from(span_ns) >= self.span.as_nanos()
            || raw_bytes >= self.raw_bytes
    }
}

impl Default for BlockLimits {
    fn default() -> Self {
        BlockLimits {
            records: 60,
            span: Duration::from_secs(600),
            raw_bytes: 4 << 20,
        }
    }
}

/// Bounds the disk a recording takes: at most `max_bytes` over the file and `keep` older
/// ones (FILE.1 the newest … FILE.keep the oldest); the oldest is dropped when FILE rotates.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: u32,
}

impl Rotation {
    fn file_bound(self) -> u64 {
        self.max_bytes / (u64::from(self.keep) + 1)
    }
}

pub struct Recorder {
    path: PathBuf,
    header: Vec<u8>,
    /// Where each counter the header names is in a sample.
    fields: Fields,
    file: File,
    file_len: u64,
    block: BlockEncoder,
    limits: BlockLimits,
    rotation: Option<Rotation>,
    codec: Codec,
    /// Monotonic stamps count from the first sample's `taken_at`.
    anchor: Option<Monotonic>,
    finished: bool,
    /// Reused from block to block: the payload, and the frame with the payload as stored.
    raw: Vec<u8>,
    framed: Vec<u8>,
    /// Samples of the open block not encoded yet, and their tasks: a block's samples are
    /// encoded together when it closes, one after the other while the encoder's code and
    /// state are in the cache (a refresh apart, one sample of ~70 tasks cost about 11 us
    /// instead of 7).
    /// Past `PENDING_TASKS` tasks they are encoded at once, so memory stays bounded.
    pending: Vec<Sample>,
    pending_tasks: usize,
    /// Container label of each cgroup id of the pending samples and of the open block, asked
    /// for when a sample comes (the container may be gone by the time it is encoded).
    labels: HashMap<u64, Option<String>>,
}

/// Tasks of the samples a recorder holds before encoding them (about 3.5 MB).
pub(super) const PENDING_TASKS: usize = 16_384;

impl Recorder {
    /// Starts a recording at `path`, replacing what was there. Samples are recorded with the
    /// counters `header` names, in its order (usually every counter, see `header_for`).
    pub fn create(path: impl AsRef<Path>, header: &Header) -> Result<Recorder, RecordError> {
        assert!(
            header.counters.len() <= MAX_COUNTERS,
            "a recording holds at most {MAX_COUNTERS} counters"
        );
        let path = path.as_ref().to_path_buf();
        let fields = fields(&header.counters);
        let counters = fields.counters.len();
        let header = header.encode();
        let file = start_file(&path, &header)?;
        Ok(Recorder {
            path,
            file_len: header.len() as u64,
            header,
            fields,
            file,
            block: BlockEncoder::new(counters),
            limits: BlockLimits::default(),
            rotation: None,
            codec: Codec::Lz4,
            anchor: None,
            finished: false,
            raw: Vec::new(),
            framed: Vec::new(),
            pending: Vec::new(),
            pending_tasks: 0,
            labels: HashMap::new(),
        })
    }

    pub fn with_limits(mut self, limits: BlockLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = Some(rotation);
        self
    }

    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    pub fn append(&mut self, sample: Sample) -> Result<(), RecordError> {
        self.append_labelled(sample, |_, _, _| None)
    }

    /// Appends a sample whose tasks' cgroup ids `label` tells the container of (called with
    /// pid, cgroup id and exited flag, at once, once per id and block, for ids the sample's
    /// own `container_labels` do not name).
    pub fn append_labelled(
        &mut self,
        sample: Sample,
        mut label: impl FnMut(u32, u64, bool) -> Option<String>,
    ) -> Result<(), RecordError> {
        self.anchor.get_or_insert(sample.taken_at);
        for (id, l) in &sample.container_labels {
            let known = self.labels.entry(*id).or_default();
            if known.is_none() {
                *known = Some(l.clone());
            }
        }
        // Tasks of one process are listed together and share their cgroup: one lookup a run.
        let mut last = None;
        for t in &sample.tasks {
            let Some(id) = t.cgroup_id.filter(|&id| last != Some(id)) else {
                continue;
            };
            last = Some(id);
            self.labels
                .entry(id)
                .or_insert_with(|| label(t.pid, id, t.exited));
        }
        self.pending_tasks += sample.tasks.len();
        let last_ns = wall_ns(&sample);
        self.pending.push(sample);

        let records = self.block.count as usize + self.pending.len();
        let first_ns = if self.block.is_empty() {
            wall_ns(&self.pending[0])
        } else {
            self.block.first_wall_ns
        };
        let span_ns = last_ns.saturating_sub(first_ns);
        if self
            .limits
            .reached(records, span_ns, self.block.records_len())
            || self.pending_tasks > PENDING_TASKS
        {
            self.encode_pending()?;
        }
        Ok(())
    }

    /// Tasks of the samples appended and not encoded yet.
    pub fn pending_tasks(&self) -> usize {
        self.pending_tasks
    }

    /// Encodes the pending samples into the open block, closing it (and starting another)
    /// whenever it reaches a limit. On an error, the samples not encoded stay pending.
    fn encode_pending(&mut self) -> Result<(), RecordError> {
        let anchor = match (self.anchor, self.pending.first()) {
            (Some(a), Some(_)) => a,
            _ => return Ok(()),
        };
        let mut pending = std::mem::take(&mut self.pending);
        let mut done = 0;
        let mut result = Ok(());
        for sample in &pending {
            let labels = &self.labels;
            self.block.push(
                &record_head(sample, anchor),
                &sample.tasks,
                &self.fields,
                |id| labels.get(&id).cloned().flatten(),
            );
            done += 1;
            result = self.close_block_at_limit();
            if result.is_err() {
                break;
            }
        }
        pending.drain(..done);
        self.pending_tasks = pending.iter().map(|s| s.tasks.len()).sum();
        self.pending = pending;
        if self.pending.is_empty() && self.block.is_empty() {
            self.labels.clear();
        }
        result
    }

    /// Appends a record as the file stores it (its tasks' values in the order of the header's
    /// counters); closes the block when it reaches a limit.
    pub fn append_record(&mut self, record: &Record) -> Result<(), RecordError> {
        self.encode_pending()?;
        let counters = self.fields.counters.len();
        assert!(
            record.tasks.iter().all(|t| t.values.len() == counters),
            "every task of a record has the {counters} counters the header names"
        );
        self.block
            .push(&RecordHead::from(record), &record.tasks, &(), |_| None);
        self.block.label_containers(&record.container_labels);
        self.close_block_at_limit()
    }

    fn close_block_at_limit(&mut self) -> Result<(), RecordError> {
        let span_ns = self.block.last_wall_ns - self.block.first_wall_ns;
        if self
            .limits
            .reached(self.block.count as usize, span_ns, self.block.records_len())
        {
            self.write_block()?;
        }
        Ok(())
    }

    /// Closes the open block: encodes what is pending and writes it (see `write_block`).
    pub fn close_block(&mut self) -> Result<(), RecordError> {
        self.encode_pending()?;
        self.write_block()?;
        self.labels.clear();
        Ok(())
    }

    /// Writes the open block, if any, encoded as it is. Not fsynced (see "Durability" in
    /// `format`): it is in the page cache, safe from the profiler's own end, and the kernel
    /// writes it back.
    fn write_block(&mut self) -> Result<(), RecordError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let (records, first_wall_ns, last_wall_ns) = (
            self.block.count,
            self.block.first_wall_ns,
            self.block.last_wall_ns,
        );
        self.raw.clear();
        self.block.take_into(&mut self.raw);
        self.framed.clear();
        self.framed.resize(FRAME_LEN, 0);
        self.codec.compress_into(&self.raw, &mut self.framed);
        let stored = &self.framed[FRAME_LEN..];
        let frame = Frame {
            codec: self.codec as u8,
            stored_len: stored.len() as u32,
            raw_len: self.raw.len() as u32,
            records,
            first_wall_ns,
            last_wall_ns,
            payload_crc: crc32fast::hash(stored),
        };
        self.framed[..FRAME_LEN].copy_from_slice(&frame.encode());
        let len = self.framed.len() as u64;
        if let Some(r) = self.rotation {
            if self.file_len > self.header.len() as u64 && self.file_len + len > r.file_bound() {
                self.rotate(r.keep)?;
            }
        }
        let at = self.file_len;
        let wrote = self.file.write_all(&self.framed);
        if let Err(e) = wrote {
            // A partial block (disk full) would hide every later one from readers: cut it off,
            // so that recording can go on once there is room again.
            let _ = self.file.set_len(at);
            let _ = self.file.seek(SeekFrom::Start(at));
            return Err(RecordError::io(&self.path, at, "writing a block", e));
        }
        self.file_len += len;
        Ok(())
    }

    /// Closes the open block and fsyncs the file: what was appended is then all on disk.
    pub fn finish(mut self) -> Result<(), RecordError> {
        self.finished = true;
        self.close_block()?;
        self.file
            .sync_data()
            .map_err(|e| RecordError::io(&self.path, self.file_len, "syncing the recording", e))
    }

    fn rotate(&mut self, keep: u32) -> Result<(), RecordError> {
        shift(&self.path, keep)
            .map_err(|e| RecordError::io(&self.path, self.file_len, "rotating", e))?;
        self.file = start_file(&self.path, &self.header)?;
        self.file_len = self.header.len() as u64;
        Ok(())
    }
}

/// FILE.keep is deleted, FILE.(keep-1) … FILE.1 become FILE.keep … FILE.2, and FILE becomes
/// FILE.1; with `keep` 0, nothing is moved. Files that are missing are skipped.
pub fn shift(path: &Path, keep: u32) -> std::io::Result<()> {
    let numbered = |n: u32| {
        let mut p = path.to_path_buf().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if keep > 0 {
        gone(fs::remove_file(numbered(keep)))?;
        for n in (1..keep).rev() {
            gone(fs::rename(numbered(n), numbered(n + 1)))?;
        }
        gone(fs::rename(path, numbered(1)))?;
    }
    Ok(())
}

impl Drop for Recorder {
    /// Keeps what was appended when the recorder goes away without `finish` (an error
    /// path, a panic); errors can no longer be told to anyone here.
    fn drop(&mut self) {
        if !self.finished && self.close_block().is_ok() {
            let _ = self.file.sync_data();
        }
    }
}

fn start_file(path: &Path, header: &[u8]) -> Result<File, RecordError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| RecordError::io(path, 0, "creating the recording", e))?;
    file.write_all(header)
        .and_then(|()| file.sync_data())
        .map_err(|e| RecordError::io(path, 0, "writing the header", e))?;
    Ok(file)
}
