//! History: samples recorded to a file and read back, like `atop -w/-r` and `below record`.
//! `Recorder` writes a source's samples in compressed, checksummed blocks (see `format` for
//! the file format); `RecordingReader` reads them back by time range, and `ReplaySource`
//! replays them as an `IoSource`, so the model and the views work on history unchanged.

mod block;
mod convert;
pub mod format;
mod reader;
mod replay;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

pub use block::{Labels, Record, TaskRecord};
pub use convert::header_for;
pub use format::{Header, UnavailableCounters};
pub use reader::{series, RecordingReader};
pub use replay::ReplaySource;
pub use writer::{shift, BlockLimits, Recorder, Rotation};

/// A recording that cannot be written or read, with the file and the byte it went wrong at.
#[derive(Debug, thiserror::Error)]
#[error("{}: at byte {offset}: {problem}", path.display())]
pub struct RecordError {
    pub path: PathBuf,
    pub offset: u64,
    pub problem: Problem,
}

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("{doing}: {source}")]
    Io {
        doing: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the file is empty, not a recording")]
    Empty,
    #[error("not a profiler recording (it does not start with the recording magic)")]
    NotARecording,
    #[error(
        "recorded in format version {found}, and this profiler reads versions 1 to \
         {supported}: replay it with a newer profiler"
    )]
    NewerVersion { found: u16, supported: u16 },
    #[error("the file ends inside {0} (the recording was interrupted); what comes before replays")]
    Truncated(&'static str),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("end of the recording")]
    End,
}

impl RecordError {
    pub fn new(path: &Path, offset: u64, problem: Problem) -> Self {
        RecordError {
            path: path.to_path_buf(),
            offset,
            problem,
        }
    }

    pub fn io(path: &Path, offset: u64, doing: &'static str, source: io::Error) -> Self {
        RecordError::new(path, offset, Problem::Io { doing, source })
    }

    /// The replay has nothing more to give; not damage.
    pub fn is_end(&self) -> bool {
        matches!(self.problem, Problem::End)
    }
}
