//! `ReplaySource`: a recording played back through the `IoSource` trait, one recorded sample
//! per `sample()`, so the model and the views show history as they show the live kernel.

use crate::sample::Monotonic;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::convert;
use super::reader::RecordingReader;
use super::{Problem, RecordError};
use crate::sample::Sample;
use crate::source::{IoSource, Scope, SourceError, SourceKind, Unavailable};

pub struct ReplaySource {
    kind: SourceKind,
    method: Option<&'static str>,
    totals_since: &'static str,
    unavailable: Vec<Unavailable>,
    reader: RecordingReader,
    /// Files still to play, for a rotated recording.
    next_files: VecDeque<PathBuf>,
    range: (Option<SystemTime>, Option<SystemTime>),
    anchor: Monotonic,
    /// Only tasks of the processes in scope, as `-p` does live.
    scope: Scope,
    /// The last sample handed out, and what is added to the monotonic stamps of the file being
    /// played: each recording run counts them from its own start, so a series that spans a
    /// restart (the older file from before it) would otherwise go back in time.
    last: Option<(Monotonic, SystemTime)>,
    mono_shift: Duration,
}

impl ReplaySource {
    /// Replays `files` in order (one file, or `record::series` of a rotated one), taking
    /// samples from `begin` to `end`. The first file's header says which source was recorded.
    pub fn open(
        files: &[PathBuf],
        begin: Option<SystemTime>,
        end: Option<SystemTime>,
    ) -> Result<ReplaySource, RecordError> {
        let (first, rest) = files
            .split_first()
            .expect("ReplaySource::open needs at least one file");
        let anchor = Monotonic::now();
        let reader = RecordingReader::open(first)?
            .range(begin, end)
            .with_anchor(anchor);
        let header = reader.header();
        let kind = SourceKind::from_name(&header.source).ok_or_else(|| {
            RecordError::new(
                first,
                0,
                Problem::Corrupt(format!("recorded source {:?} is unknown", header.source)),
            )
        })?;
        // `IoSource` hands out 'static strings; these are leaked once per replay.
        let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
        Ok(ReplaySource {
            kind,
            method: header.method.as_deref().map(leak),
            totals_since: leak(&header.totals_since),
            unavailable: convert::unavailable(header),
            reader,
            next_files: rest.iter().cloned().collect(),
            range: (begin, end),
            anchor,
            scope: Scope::default(),
            last: None,
            mono_shift: Duration::ZERO,
        })
    }

    /// Keeps only the tasks of these processes, as `-p` does live.
    pub fn with_pids(mut self, pids: &[u32]) -> Self {
        self.scope.pids = pids.iter().copied().collect();
        self
    }

    /// A sample with the filter applied and its monotonic stamp continuing the last one's.
    fn deliver(&mut self, mut s: Sample) -> Sample {
        if !self.scope.pids.is_empty() {
            s.tasks.retain(|t| self.scope.includes(t.pid));
        }
        s.taken_at = s.taken_at + self.mono_shift;
        if let Some((taken_at, wall)) = self.last {
            if s.taken_at <= taken_at {
                // A new recording run: go on from the last sample by the wall-clock gap.
                let gap = s.wall_time.duration_since(wall).unwrap_or_default();
                let want = taken_at + gap.max(Duration::from_nanos(1));
                self.mono_shift += want.saturating_duration_since(s.taken_at);
                s.taken_at = want;
            }
        }
        self.last = Some((s.taken_at, s.wall_time));
        s
    }

    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    pub fn header(&self) -> &super::Header {
        self.reader.header()
    }
}

impl IoSource for ReplaySource {
    fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The next recorded sample; damage is an error once, then the replay goes on with what is
    /// readable after it. After the last sample: `Problem::End`.
    fn sample(&mut self) -> Result<Sample, SourceError> {
        loop {
            match self.reader.next() {
                Some(r) => return Ok(self.deliver(r?)),
                None => {
                    let Some(next) = self.next_files.pop_front() else {
                        let at = self.reader.offset();
                        return Err(RecordError::new(self.reader.path(), at, Problem::End).into());
                    };
                    self.reader = RecordingReader::open(&next)?
                        .range(self.range.0, self.range.1)
                        .with_anchor(self.anchor);
                }
            }
        }
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        self.unavailable.clone()
    }

    fn totals_since(&self) -> &'static str {
        self.totals_since
    }

    fn method(&self) -> Option<&'static str> {
        self.method
    }
}
