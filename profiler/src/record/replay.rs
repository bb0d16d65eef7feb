//! `ReplaySource`: a recording played back through the `IoSource` trait, one recorded sample
//! per `sample()`, so the model and the views show history as they show the live kernel.

use crate::sample::Monotonic;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::convert;
use super::reader::RecordingReader;
use super::{Problem, RecordError};
use crate::sample::Sample;
use crate::source::{IoSource, SourceError, SourceKind, Unavailable};

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
        })
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
                Some(r) => return Ok(r?),
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
