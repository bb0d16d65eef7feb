//! A profiling session: the opened source(s), their previous samples, and one
//! [`Snapshot`] per refresh. Shared by every view (batch, JSON, TUI).

use std::time::SystemTime;

use crate::accumulate::Accumulator;
use crate::container::Containers;
use crate::counter::PerCounter;
use crate::model::{self, Model, ModelOptions};
use crate::sample::{Monotonic, Sample};
use crate::source::{
    self, Fallback, IoSource, Scope, SourceChoice, SourceError, SourceKind, Unavailable,
};

/// One source's part of a refresh.
#[derive(Clone, Debug)]
pub struct SourceModel {
    pub kind: SourceKind,
    pub model: Model,
}

/// Everything a view needs for one refresh.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub time: SystemTime,
    /// One per source; several in compare mode, in the order given.
    pub models: Vec<SourceModel>,
}

impl Snapshot {
    pub fn interval_s(&self) -> f64 {
        self.models.first().map_or(0.0, |v| v.model.interval_s)
    }
}

struct Opened {
    source: Box<dyn IoSource>,
    /// When the first sample was taken: accumulated mode counts from there.
    first_taken_at: Option<Monotonic>,
    prev: Option<Sample>,
    /// Sums since the first sample, kept in every mode so that the view can switch to them.
    accumulator: Accumulator,
}

/// Why a session could not start: the reasons, per source tried. There is no one cause to
/// chain: Display lists them all.
#[derive(Debug)]
pub struct OpenError {
    pub forced: bool,
    pub fallbacks: Vec<Fallback>,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.forced {
            write!(f, "no source works here:")?;
        }
        for (i, fb) in self.fallbacks.iter().enumerate() {
            let sep = if i == 0 && self.forced { "" } else { "\n  " };
            write!(f, "{sep}{}", fb.error)?;
        }
        Ok(())
    }
}

impl std::error::Error for OpenError {}

pub struct Session {
    sources: Vec<Opened>,
    /// Sources tried before the one in use, with why they did not work.
    pub fallbacks: Vec<Fallback>,
    pub model_options: ModelOptions,
    /// Deltas since the first sample instead of the previous one.
    pub accumulated: bool,
    /// One row per container instead of per thread or process.
    pub group_containers: bool,
    containers: Containers,
    proc_root: std::path::PathBuf,
    /// Replaying a recording: tasks are history, so /proc (what is alive now, which container
    /// a pid is in now) says nothing about them.
    history: bool,
}

impl Session {
    pub fn open(choice: &SourceChoice, scope: &Scope) -> Result<Session, OpenError> {
        let (sources, fallbacks) = match choice {
            SourceChoice::Auto => {
                let (source, fallbacks) =
                    source::open_first(&SourceKind::ALL, scope).map_err(|fallbacks| OpenError {
                        forced: false,
                        fallbacks,
                    })?;
                (vec![source], fallbacks)
            }
            SourceChoice::Given(kinds) => {
                let mut opened = Vec::new();
                for &kind in kinds {
                    match source::open(kind, scope) {
                        Ok(s) => opened.push(s),
                        Err(error) => {
                            return Err(OpenError {
                                forced: true,
                                fallbacks: vec![Fallback { kind, error }],
                            })
                        }
                    }
                }
                (opened, Vec::new())
            }
        };
        Ok(Session {
            sources: sources
                .into_iter()
                .map(|source| Opened {
                    source,
                    first_taken_at: None,
                    prev: None,
                    accumulator: Accumulator::default(),
                })
                .collect(),
            fallbacks,
            model_options: ModelOptions::default(),
            accumulated: false,
            group_containers: false,
            containers: Containers::new(&scope.proc_root),
            proc_root: scope.proc_root.clone(),
            history: false,
        })
    }

    /// A session over a recording played back (`record::ReplaySource`): the same model and
    /// views as live. Containers are labelled as the recording labelled them (files of format
    /// version 1 have no labels: their cgroup ids are resolved against this host's cgroup
    /// tree); a process is alive while the recording lists it.
    pub fn replay(source: Box<dyn IoSource>, proc_root: &std::path::Path) -> Session {
        Session {
            sources: vec![Opened {
                source,
                first_taken_at: None,
                prev: None,
                accumulator: Accumulator::default(),
            }],
            fallbacks: Vec::new(),
            model_options: ModelOptions::default(),
            accumulated: false,
            group_containers: false,
            containers: Containers::recorded(proc_root),
            proc_root: proc_root.to_path_buf(),
            history: true,
        }
    }

    /// The opened sources, for a mode that wants their raw samples (`record`).
    pub fn into_sources(self) -> Vec<Box<dyn IoSource>> {
        self.sources.into_iter().map(|s| s.source).collect()
    }

    /// Takes the baseline sample, so that the first refresh shown has deltas.
    pub fn start(&mut self) -> Result<(), SourceError> {
        self.refresh().map(drop)
    }

    pub fn kinds(&self) -> Vec<SourceKind> {
        self.sources.iter().map(|s| s.source.kind()).collect()
    }

    /// `taskstats,ebpf` style name of what is in use.
    pub fn source_name(&self) -> String {
        self.kinds()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The line that says which source answered and why the ones before it did not.
    pub fn source_line(&self) -> String {
        let mut line = format!("source: {}", self.source_name());
        if !self.fallbacks.is_empty() {
            let why: Vec<String> = self.fallbacks.iter().map(|f| f.error.to_string()).collect();
            line.push_str(&format!(" ({})", why.join("; ")));
        }
        line
    }

    /// Counters each source cannot measure, and why.
    pub fn unavailable(&self) -> Vec<(SourceKind, Unavailable)> {
        self.sources
            .iter()
            .flat_map(|s| {
                s.source
                    .unavailable()
                    .into_iter()
                    .map(move |u| (s.source.kind(), u))
            })
            .collect()
    }

    /// Sources in use that miss tasks exiting between refreshes, and why.
    pub fn misses_exits(&self) -> Vec<(SourceKind, String)> {
        self.sources
            .iter()
            .filter_map(|s| Some((s.source.kind(), s.source.misses_exits()?)))
            .collect()
    }

    pub fn totals_since(&self) -> Vec<(SourceKind, &'static str)> {
        self.sources
            .iter()
            .map(|s| (s.source.kind(), s.source.totals_since()))
            .collect()
    }

    /// Samples every source and builds its model against the previous sample: per thread,
    /// then summed since the start (accumulated mode), then grouped into processes or
    /// containers.
    pub fn refresh(&mut self) -> Result<Snapshot, SourceError> {
        let mut models = Vec::with_capacity(self.sources.len());
        let mut live = std::collections::HashSet::new();
        let mut time = None;
        for s in &mut self.sources {
            let sample = s.source.sample()?;
            // When the first source was read: the recorded time in a replay.
            time.get_or_insert(sample.wall_time);
            let recorded: std::collections::HashSet<u32> = if self.history {
                sample
                    .tasks
                    .iter()
                    .filter(|t| !t.exited)
                    .map(|t| t.pid)
                    .collect()
            } else {
                Default::default()
            };
            if self.history {
                self.containers.learn_recorded(&sample.container_labels);
            }
            let mut model = model::compute(s.prev.as_ref(), &sample, ModelOptions::default());
            let unmeasured = s.source.unavailable();
            model.measured = Some(PerCounter::from_fn(|c| {
                !unmeasured.iter().any(|u| u.counters.contains(&c))
            }));
            // The cgroup id the probes captured outlives the task; /proc/PID/cgroup does not.
            // Live tasks first: they can teach a cgroup id's label to the exited ones.
            for exited in [false, true] {
                for row in model.rows.iter_mut().filter(|r| r.exited == exited) {
                    row.container = self.containers.of_task(row.pid, row.cgroup_id, row.exited);
                }
            }
            live.extend(model.rows.iter().map(|r| r.pid));
            let sums = s.accumulator.add(&model.rows);
            let first_taken_at = *s.first_taken_at.get_or_insert(sample.taken_at);
            if self.accumulated {
                for (row, sum) in model.rows.iter_mut().zip(sums) {
                    row.delta = sum;
                }
                if s.prev.is_some() {
                    model.interval_s = sample
                        .taken_at
                        .saturating_duration_since(first_taken_at)
                        .as_secs_f64();
                }
            }
            if self.model_options.processes || self.group_containers {
                let threads = std::mem::take(&mut model.rows);
                model.rows = if self.group_containers {
                    threads
                } else {
                    model::group_processes(threads)
                };
                if self.accumulated && !self.group_containers {
                    let proc_root = &self.proc_root;
                    let history = self.history;
                    s.accumulator.add_retired_threads(&mut model.rows, |pid| {
                        if history {
                            recorded.contains(&pid)
                        } else {
                            proc_root.join(pid.to_string()).exists()
                        }
                    });
                }
            }
            if self.group_containers {
                model = model::group_by_container(model);
                if self.accumulated && s.prev.is_some() {
                    s.accumulator.add_retired_to_containers(&mut model.rows);
                }
            }
            models.push(SourceModel {
                kind: s.source.kind(),
                model,
            });
            s.prev = Some(sample);
        }
        self.containers.retain_pids(|pid| live.contains(&pid));
        Ok(Snapshot {
            time: time.unwrap_or_else(SystemTime::now),
            models,
        })
    }
}
