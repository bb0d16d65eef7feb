//! The taskstats source (generic netlink TASKSTATS family).

use super::{IoSource, Scope, SourceError, SourceKind, Unavailable};
use crate::sample::Sample;

#[derive(Debug, thiserror::Error)]
pub enum TaskstatsError {
    #[error("not implemented yet")]
    NotImplemented,
}

pub struct TaskstatsSource;

impl TaskstatsSource {
    pub fn open(_scope: Scope) -> Result<Self, TaskstatsError> {
        Err(TaskstatsError::NotImplemented)
    }
}

impl IoSource for TaskstatsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Taskstats
    }
    fn sample(&mut self) -> Result<Sample, SourceError> {
        Err(TaskstatsError::NotImplemented.into())
    }
    fn unavailable(&self) -> Vec<Unavailable> {
        Vec::new()
    }
    fn totals_since(&self) -> &'static str {
        "task start"
    }
}
