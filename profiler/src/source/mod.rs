//! Data sources. Each reads cumulative per-task counters from one kernel interface and
//! returns them as a [`Sample`]; `open` picks one, or tries them in order (`auto`).

mod choice;
pub mod ebpf;
pub mod procfs;
pub mod taskstats;

use std::fmt;
use std::path::PathBuf;

use crate::counter::Counter;
use crate::privileges::{self, Privileges};
use crate::sample::Sample;
pub use choice::{ChoiceError, SourceChoice};

/// A kernel interface that yields per-task I/O counters.
pub trait IoSource: Send {
    fn kind(&self) -> SourceKind;
    /// Cumulative counters of every task in scope, now.
    fn sample(&mut self) -> Result<Sample, SourceError>;
    /// Counters this source cannot measure here, each with the reason (said once to the user).
    fn unavailable(&self) -> Vec<Unavailable>;
    /// What `total` counts from, for people reading JSON or batch output.
    fn totals_since(&self) -> &'static str;
    /// How this source reads the kernel here, where it has more than one way.
    fn method(&self) -> Option<&'static str> {
        None
    }
    /// Why tasks that exit between two refreshes are missed here, if they are: their last I/O
    /// never reaches a sample. `auto` prefers a source that sees them.
    fn misses_exits(&self) -> Option<String> {
        None
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub counters: &'static [Counter],
    pub reason: String,
}

impl Unavailable {
    /// `blkio_delay_ns, swapin_delay_ns`: the counters as the JSON output names them.
    pub fn counter_names(&self) -> String {
        let names: Vec<&str> = self.counters.iter().map(|c| c.key()).collect();
        names.join(", ")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    Taskstats,
    Ebpf,
    Procfs,
}

impl SourceKind {
    /// The order `auto` tries them in.
    pub const ALL: [SourceKind; 3] = [SourceKind::Taskstats, SourceKind::Ebpf, SourceKind::Procfs];

    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Taskstats => "taskstats",
            SourceKind::Ebpf => "ebpf",
            SourceKind::Procfs => "procfs",
        }
    }

    pub fn from_name(name: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The privileges this source needs, for `--list-sources` and error messages.
    pub fn needs(self) -> &'static str {
        match self {
            SourceKind::Taskstats => {
                "CAP_NET_ADMIN in the initial user namespace, and the TASKSTATS generic netlink family \
                 visible from this network namespace (host network, or kernel >= 5.19)"
            }
            SourceKind::Ebpf => {
                "CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8), kernel >= 5.8; \
                 CAP_SYS_ADMIN as well to mount tracefs when it is not mounted"
            }
            SourceKind::Procfs => {
                "nothing for your own processes; CAP_SYS_PTRACE (or CAP_DAC_READ_SEARCH) to read other users' /proc/PID/io"
            }
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which tasks a source reads, and where it finds /proc.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Only these processes (TGIDs, in the profiler's pid namespace); empty: all.
    pub pids: Vec<u32>,
    pub proc_root: PathBuf,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            pids: Vec::new(),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("taskstats: {0}")]
    Taskstats(#[from] taskstats::TaskstatsError),
    /// Shown with its causes on one line, which makes it the end of the chain.
    #[error("ebpf: {}", ebpf::report(.0))]
    Ebpf(ebpf::EbpfError),
    #[error("procfs: {0}")]
    Procfs(#[from] procfs::ProcfsError),
    /// The kernel refused eBPF; the advice names the cause found in what this process holds.
    #[error(
        "ebpf: not permitted to load eBPF programs ({detail}): needs CAP_BPF and CAP_PERFMON \
         (CAP_SYS_ADMIN before Linux 5.8); {advice}"
    )]
    EbpfDenied { detail: String, advice: String },
    /// The kernel refused the TASKSTATS query, with the same kind of advice.
    #[error(
        "taskstats: the kernel refused the TASKSTATS query (EPERM): it needs CAP_NET_ADMIN in \
         the initial user namespace; {advice}"
    )]
    TaskstatsDenied { advice: String },
    /// `auto` skipped a source that opened because it misses exited tasks and another does not.
    #[error("{kind}: {why}")]
    MissesExits { kind: SourceKind, why: String },
    /// A recording played back as a source: damaged, or at its end (`RecordError::is_end`).
    #[error("replay: {0}")]
    Replay(#[from] crate::record::RecordError),
}

impl From<ebpf::EbpfError> for SourceError {
    fn from(e: ebpf::EbpfError) -> Self {
        SourceError::Ebpf(e)
    }
}

/// A permission error, with advice from what this process holds in place of generic advice.
fn with_advice(error: SourceError, scope: &Scope) -> SourceError {
    match error {
        SourceError::Ebpf(ebpf::EbpfError::PermissionDenied { cause }) => SourceError::EbpfDenied {
            detail: ebpf::report(cause.as_ref()),
            advice: privileges::ebpf_advice(&Privileges::read(&scope.proc_root)),
        },
        SourceError::Taskstats(taskstats::TaskstatsError::PermissionDenied) => {
            SourceError::TaskstatsDenied {
                advice: privileges::taskstats_advice(&Privileges::read(&scope.proc_root)),
            }
        }
        other => other,
    }
}

/// Opens one source; the probe is real (the source is sampled once). A source that can read
/// only part of the tasks in scope (procfs, unprivileged) opens, with a warning.
pub fn open(kind: SourceKind, scope: &Scope) -> Result<Box<dyn IoSource>, SourceError> {
    let (source, probe) = open_probed(kind, scope)?;
    if probe.denied_tasks > 0 {
        // Not `ProcfsError::Partial`: that one advises `--source procfs`, which was asked for.
        log::warn!(
            "{kind}: {} tasks are not shown: reading other users' /proc/PID/io needs \
             CAP_SYS_PTRACE over them (run as root, in the initial user namespace)",
            probe.denied_tasks
        );
    }
    Ok(source)
}

/// Opens one source and returns it with its probe sample, whose `denied_tasks` tells whether
/// it can read every task in scope.
pub fn open_probed(
    kind: SourceKind,
    scope: &Scope,
) -> Result<(Box<dyn IoSource>, Sample), SourceError> {
    let opened: Result<Box<dyn IoSource>, SourceError> = match kind {
        SourceKind::Taskstats => taskstats::TaskstatsSource::open(scope.clone())
            .map(|s| Box::new(s) as _)
            .map_err(Into::into),
        SourceKind::Ebpf => ebpf::EbpfSource::open(scope.clone())
            .map(|s| Box::new(s) as _)
            .map_err(Into::into),
        SourceKind::Procfs => procfs::ProcfsSource::open(scope.clone())
            .map(|s| Box::new(s) as _)
            .map_err(Into::into),
    };
    let mut source = opened.map_err(|e| with_advice(e, scope))?;
    let probe = source.sample().map_err(|e| with_advice(e, scope))?;
    Ok((source, probe))
}

/// A source that did not open, and why.
#[derive(Debug)]
pub struct Fallback {
    pub kind: SourceKind,
    pub error: SourceError,
}

/// The source that opened, and why the ones tried before it did not.
pub type FirstOpened = (Box<dyn IoSource>, Vec<Fallback>);

/// Tries each source in order; the first that opens and sees tasks that exit wins. Returns it
/// with the reasons the ones before it were not used, or every reason when none opened. When
/// every source that opens misses exits, the first of them is used (it has said why, once).
pub fn open_first(kinds: &[SourceKind], scope: &Scope) -> Result<FirstOpened, Vec<Fallback>> {
    let mut fallbacks = Vec::new();
    // The first source that opened but misses exits, and where its reason goes in `fallbacks`.
    let mut incomplete: Option<(Box<dyn IoSource>, usize)> = None;
    for &kind in kinds {
        match open_probed(kind, scope) {
            // Automatic choice wants a source that sees every task in scope.
            Ok((_, probe)) if probe.denied_tasks > 0 => fallbacks.push(Fallback {
                kind,
                error: procfs::ProcfsError::Partial {
                    denied: probe.denied_tasks,
                }
                .into(),
            }),
            Ok((source, _)) => match source.misses_exits() {
                None => return Ok((source, fallbacks)),
                Some(why) => {
                    if incomplete.is_none() {
                        incomplete = Some((source, fallbacks.len()));
                    }
                    fallbacks.push(Fallback {
                        kind,
                        error: SourceError::MissesExits { kind, why },
                    });
                }
            },
            Err(error) => fallbacks.push(Fallback { kind, error }),
        }
    }
    match incomplete {
        Some((source, at)) => {
            // It is used after all: the reasons are those of the sources tried before it.
            fallbacks.truncate(at);
            Ok((source, fallbacks))
        }
        None => Err(fallbacks),
    }
}
