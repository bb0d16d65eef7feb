//! The `record` and `replay` commands around `record`'s storage: the recording loop (a
//! source's raw samples appended to a file every interval, until a signal), the times that
//! `--begin`/`--end` take, and sizes for `--max-size`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{Instant, MissedTickBehavior};

use crate::container::{label_matches, Containers};
use crate::record::{self, RecordError, Recorder, Rotation};
use crate::sample::Sample;
use crate::session::{Session, Snapshot};
use crate::source::{IoSource, Scope, SourceChoice};
use crate::startup::{self, SignalRuntime};

/// What `profiler record` was asked for.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub path: PathBuf,
    pub source: SourceChoice,
    pub delay: Duration,
    pub scope: Scope,
    /// Only tasks of these uids; empty: everyone.
    pub uids: Vec<u32>,
    /// Only tasks in containers whose label starts with one of these; empty: all.
    pub containers: Vec<String>,
    /// Stop after this many records.
    pub iterations: Option<u64>,
    /// Bound on the recording and its rotated files together.
    pub max_bytes: Option<u64>,
    /// Older files kept: FILE.1 … FILE.keep.
    pub keep: u32,
    /// Replace an existing FILE when none is kept.
    pub force: bool,
}

/// Why a recording cannot start where it was asked to, before any source is opened.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: the directory {} does not exist", path.display(), dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("{}: is a directory: give a file name (-o DIR/profiler.rec)", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: cannot write in {}: {source}", path.display(), dir.display())]
    NotWritable {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: exists: give --keep K to move it to {}.1 as a rotation does, or --force to \
         replace it",
        path.display(),
        path.display()
    )]
    Exists { path: PathBuf },
}

/// Checks that FILE can be written, without touching it.
pub fn check_output(path: &Path, keep: u32, force: bool) -> Result<(), OutputError> {
    if path.is_dir() {
        return Err(OutputError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(OutputError::NoDirectory {
            path: path.to_path_buf(),
            dir,
        });
    }
    if let Err(source) = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK) {
        return Err(OutputError::NotWritable {
            path: path.to_path_buf(),
            dir,
            source: source.into(),
        });
    }
    if keep == 0 && !force && path.exists() {
        return Err(OutputError::Exists {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Keeps the tasks of `uids` and of containers matching `filters`, as the views do live.
struct TaskFilter {
    uids: Vec<u32>,
    filters: Vec<String>,
}

impl TaskFilter {
    fn apply(&self, containers: &mut Containers, sample: &mut Sample) {
        if !self.uids.is_empty() {
            sample
                .tasks
                .retain(|t| t.uid.is_some_and(|u| self.uids.contains(&u)));
        }
        if !self.filters.is_empty() {
            sample.tasks.retain(|t| {
                containers
                    .of_task(t.pid, t.cgroup_id, t.exited)
                    .is_some_and(|label| self.filters.iter().any(|f| label_matches(&label, f)))
            });
        }
    }
}

/// Gives tasks the cgroup id their source did not capture (taskstats, procfs), read once per
/// process, so that a replay can tell their containers.
struct CgroupIds {
    /// Per live process: its cgroup id, or None where it has none to find (read once either way).
    by_pid: HashMap<u32, Option<u64>>,
}

impl CgroupIds {
    fn apply(&mut self, containers: &Containers, sample: &mut Sample) {
        let mut missing = false;
        for t in sample.tasks.iter_mut().filter(|t| t.cgroup_id.is_none()) {
            missing = true;
            t.cgroup_id = match self.by_pid.get(&t.pid) {
                Some(&id) => id,
                // An exited task's pid may be another process's by now.
                None if t.exited => None,
                None => *self
                    .by_pid
                    .entry(t.pid)
                    .or_insert_with(|| containers.cgroup_id_of_pid(t.pid)),
            };
        }
        if missing {
            let live: HashSet<u32> = sample
                .tasks
                .iter()
                .filter(|t| !t.exited)
                .map(|t| t.pid)
                .collect();
            self.by_pid.retain(|pid, _| live.contains(pid));
        }
    }
}

/// What `profiler record` does with each sample: keeps the tasks asked for, gives them the
/// cgroup ids their source did not capture, and appends the sample, with the container label
/// of each cgroup id new to the block (so that a replay tells the containers as they were,
/// also once they are gone or on another host).
pub struct Recording {
    recorder: Recorder,
    filter: TaskFilter,
    cgroup_ids: CgroupIds,
    containers: Containers,
}

impl Recording {
    /// `uids` and `container_filters` as `profiler record -u` and `--container` take them.
    pub fn new(
        recorder: Recorder,
        proc_root: &Path,
        uids: Vec<u32>,
        container_filters: Vec<String>,
    ) -> Recording {
        Recording {
            recorder,
            filter: TaskFilter {
                uids,
                filters: container_filters,
            },
            cgroup_ids: CgroupIds {
                by_pid: HashMap::new(),
            },
            containers: Containers::new(proc_root),
        }
    }

    pub fn append(&mut self, mut sample: Sample) -> Result<(), RecordError> {
        // Labels cached per live process (those filtered out included) go with the process.
        let live: Option<HashSet<u32>> = (!self.filter.filters.is_empty()
            || self.containers.knows_pids())
        .then(|| sample.tasks.iter().map(|t| t.pid).collect());
        self.filter.apply(&mut self.containers, &mut sample);
        self.cgroup_ids.apply(&self.containers, &mut sample);
        let containers = &mut self.containers;
        let appended = self.recorder.append_labelled(sample, |pid, id, exited| {
            containers.of_task(pid, Some(id), exited)
        });
        if let Some(live) = live {
            self.containers.retain_pids(|pid| live.contains(&pid));
        }
        appended
    }

    /// Closes the open block; what was appended is then all on disk.
    pub fn finish(self) -> Result<(), RecordError> {
        self.recorder.finish()
    }
}

/// `profiler record`: samples the source every `delay` (the first at once) and appends each
/// sample to the file; SIGINT, SIGTERM and SIGHUP close the open block and end it.
pub fn record(opts: &RecordOptions) -> ExitCode {
    if let SourceChoice::Given(kinds) = &opts.source {
        if kinds.len() > 1 {
            return startup::usage_error(
                "record takes one source: run one `profiler record --source S -o FILE` per \
                 source to compare them",
            );
        }
    }
    if let Err(e) = check_output(&opts.path, opts.keep, opts.force) {
        return startup::usage_error(&e.to_string());
    }
    let (session, signals) = match startup::open(&opts.source, &opts.scope) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    startup::announce(&session);
    let mut source = session
        .into_sources()
        .pop()
        .expect("a session has a source");
    match run_recording(opts, source.as_mut(), signals) {
        Ok(n) => {
            eprintln!("profiler: recorded {n} samples to {}", opts.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("profiler: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_recording(
    opts: &RecordOptions,
    source: &mut dyn IoSource,
    signals: SignalRuntime,
) -> Result<u64, RecordError> {
    let SignalRuntime {
        runtime,
        mut sigint,
        mut sigterm,
    } = signals;
    let header = record::header_for(source, &opts.scope.proc_root);
    if opts.path.exists() {
        record::shift(&opts.path, opts.keep)
            .map_err(|e| RecordError::io(&opts.path, 0, "moving the existing recording", e))?;
    }
    let mut recorder = Recorder::create(&opts.path, &header)?;
    if let Some(max_bytes) = opts.max_bytes {
        recorder = recorder.with_rotation(Rotation {
            max_bytes,
            keep: opts.keep,
        });
    }
    let mut recording = Recording::new(
        recorder,
        &opts.scope.proc_root,
        opts.uids.clone(),
        opts.containers.clone(),
    );
    let mut recorded = 0u64;
    // The last error said, so that one that repeats every interval is said once.
    let mut said: Option<String> = None;
    let mut say = |e: &dyn std::fmt::Display| {
        let line = e.to_string();
        if said.as_ref() != Some(&line) {
            eprintln!("profiler: {line}");
            said = Some(line);
        }
    };
    runtime.block_on(async {
        let mut sighup = signal(SignalKind::hangup())
            .map_err(|e| RecordError::io(&opts.path, 0, "registering the SIGHUP handler", e))?;
        let mut ticks = tokio::time::interval_at(Instant::now(), opts.delay);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = SignalRuntime::stopped(&mut sigint, &mut sigterm) => break,
                _ = sighup.recv() => break,
                _ = ticks.tick() => {
                    match source.sample() {
                        Ok(sample) => {
                            match recording.append(sample) {
                                Ok(()) => recorded += 1,
                                Err(e) => say(&e),
                            }
                        }
                        Err(e) => say(&e),
                    }
                    if opts.iterations.is_some_and(|n| recorded >= n) {
                        break;
                    }
                }
            }
        }
        Ok::<(), RecordError>(())
    })?;
    recording.finish()?;
    Ok(recorded)
}

/// A recording's refreshes by index, for a view that moves through them (the full-screen
/// view's `t`/`T` and jump to a time): the recorded times, read once, and any refresh rebuilt
/// on demand from the few records it needs, through the same session as a plain replay.
pub struct Timeline {
    files: Vec<PathBuf>,
    pids: Vec<u32>,
    /// Wall times of the records in range, in order.
    times: Vec<SystemTime>,
    day: Date,
    tz: TimeZone,
    /// What could not be read, for the caller to say: it costs only the damaged records.
    pub damage: Vec<RecordError>,
}

impl Timeline {
    /// Reads the record times of `files` (a `record::series`) from `begin` to `end`.
    pub fn open(
        files: &[PathBuf],
        begin: Option<SystemTime>,
        end: Option<SystemTime>,
        pids: &[u32],
        tz: TimeZone,
    ) -> Result<Timeline, RecordError> {
        let mut times = Vec::new();
        let mut created = None;
        let mut damage = Vec::new();
        for file in files {
            let mut reader = match record::RecordingReader::open(file) {
                Ok(reader) => reader.range(begin, end),
                Err(e) if created.is_some() => {
                    damage.push(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            created.get_or_insert(reader.header().created_wall_ns);
            while let Some(r) = reader.next_record() {
                match r {
                    Ok(r) => times.push(SystemTime::UNIX_EPOCH + Duration::from_nanos(r.wall_ns)),
                    Err(e) => damage.push(e),
                }
            }
        }
        Ok(Timeline {
            files: files.to_vec(),
            pids: pids.to_vec(),
            times,
            day: day_of(created.unwrap_or(0), &tz),
            tz,
            damage,
        })
    }

    /// Refreshes there are: every record but the first, which is the baseline.
    pub fn refreshes(&self) -> usize {
        self.times.len().saturating_sub(1)
    }

    /// Refresh `i` (1 to `refreshes()`), grouped and summed as `like` is: the interval
    /// that ends at record `i`, or with `like.accumulated` everything from the first record.
    pub fn refresh(
        &self,
        i: usize,
        like: &Session,
    ) -> Result<Snapshot, crate::source::SourceError> {
        use crate::source::SourceError;
        let i = i.clamp(1, self.refreshes().max(1));
        let from = if like.accumulated { 0 } else { i - 1 };
        let (begin, end) = (self.times.get(from).copied(), self.times.get(i).copied());
        let source = record::ReplaySource::open(&self.files, begin, end)?.with_pids(&self.pids);
        let mut session = Session::replay(Box::new(source), Path::new("/proc"));
        session.model_options = like.model_options;
        session.accumulated = like.accumulated;
        session.group_containers = like.group_containers;
        let mut last = None;
        let mut samples = 0;
        loop {
            match session.refresh() {
                Ok(snapshot) => {
                    samples += 1;
                    last = Some(snapshot);
                }
                Err(SourceError::Replay(e)) if e.is_end() => break,
                Err(SourceError::Replay(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match last {
            Some(snapshot) if samples > 1 => Ok(snapshot),
            _ => Err(SourceError::Replay(RecordError::new(
                &self.files[0],
                0,
                record::Problem::Corrupt("the records of this interval are unreadable".into()),
            ))),
        }
    }

    /// The refresh that shows `t`: the first whose record is at or after it, within range.
    pub fn index_at(&self, t: SystemTime) -> usize {
        self.times
            .partition_point(|&r| r < t)
            .clamp(1, self.refreshes().max(1))
    }

    /// A time as `--begin` takes it, the recording's first day for `HH:MM`.
    pub fn parse(&self, text: &str) -> Result<SystemTime, TimeError> {
        parse_time(text, Timestamp::now(), self.day, &self.tz)
    }
}

/// Why `--max-size` is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SizeError {
    #[error("`{0}` is not a size: give bytes, or a number with K, M or G (1024-based), as 500M")]
    NotASize(String),
    #[error("the size must be at least 64K, not {0}")]
    TooSmall(String),
}

/// `500M`, `2G`, `64k`, `1048576`: bytes, 1024-based suffixes (an optional `iB`/`B` after).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let bad = || SizeError::NotASize(text.to_string());
    let upper = t.to_ascii_uppercase();
    let unit_less = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match unit_less.chars().last() {
        Some('K') => (&unit_less[..unit_less.len() - 1], 10),
        Some('M') => (&unit_less[..unit_less.len() - 1], 20),
        Some('G') => (&unit_less[..unit_less.len() - 1], 30),
        Some('T') => (&unit_less[..unit_less.len() - 1], 40),
        _ => (unit_less, 0),
    };
    let n: f64 = digits.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    let bytes = n * (1u64 << shift) as f64;
    if bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    if bytes < 65_536.0 {
        return Err(SizeError::TooSmall(text.to_string()));
    }
    Ok(bytes as u64)
}

/// Why a `--begin`/`--end` time is refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a time: give HH:MM[:SS] (on the recording's first day), -1h / -30m / -2d \
     (before now), or a date and time such as 2026-12-02T03:00 (local) or \
     2026-12-02T03:00:00Z"
)]
pub struct TimeError(pub String);

/// A `--begin`/`--end` time. `HH:MM[:SS]` is that time on `day` (the recording's first day);
/// `-SPAN` is that long before `now`; a date and time without an offset is local time.
pub fn parse_time(
    text: &str,
    now: Timestamp,
    day: Date,
    tz: &TimeZone,
) -> Result<SystemTime, TimeError> {
    let t = text.trim();
    let bad = || TimeError(text.to_string());
    let zoned = |dt: DateTime| dt.to_zoned(tz.clone()).map(|z| z.timestamp());
    let ts = if let Some(span) = t.strip_prefix('-') {
        let span: Span = span.parse().map_err(|_| bad())?;
        now.to_zoned(tz.clone())
            .checked_sub(span)
            .map(|z| z.timestamp())
            .map_err(|_| bad())?
    } else if let Ok(ts) = t.parse::<Timestamp>() {
        ts
    } else if let Ok(dt) = t.parse::<DateTime>() {
        zoned(dt).map_err(|_| bad())?
    } else if let Ok(time) = t.parse::<Time>() {
        zoned(day.to_datetime(time)).map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    Ok(SystemTime::from(ts))
}

/// The date, in `tz`, of a wall time in nanoseconds since the epoch.
pub fn day_of(wall_ns: u64, tz: &TimeZone) -> Date {
    let ts = Timestamp::from_nanosecond(i128::from(wall_ns)).unwrap_or(Timestamp::UNIX_EPOCH);
    ts.to_zoned(tz.clone()).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Result<String, TimeError> {
        let now: Timestamp = "2026-12-02T12:00:00Z".parse().expect("now");
        let day = Date::new(2026, 11, 30).expect("day");
        parse_time(text, now, day, &TimeZone::UTC)
            .map(|t| Timestamp::try_from(t).expect("in range").to_string())
    }

    #[test]
    fn times_of_day_relative_and_absolute() {
        assert_eq!(at("03:00").unwrap(), "2026-11-30T03:00:00Z");
        assert_eq!(at("03:00:30").unwrap(), "2026-11-30T03:00:30Z");
        assert_eq!(at("-1h").unwrap(), "2026-12-02T11:00:00Z");
        assert_eq!(at("-90s").unwrap(), "2026-12-02T11:58:30Z");
        assert_eq!(at("-2d").unwrap(), "2026-11-30T12:00:00Z");
        assert_eq!(at("2026-12-01T03:00").unwrap(), "2026-12-01T03:00:00Z");
        assert_eq!(at("2026-12-01 03:00:05").unwrap(), "2026-12-01T03:00:05Z");
        assert_eq!(
            at("2026-12-01T03:00:00+01:00").unwrap(),
            "2026-12-01T02:00:00Z"
        );
        assert_eq!(at("2026-12-01T03:00:00Z").unwrap(), "2026-12-01T03:00:00Z");
        for bad in [
            "",
            "yesterday",
            "25:00",
            "-",
            "-1 fortnight",
            "2026-13-01T00:00",
        ] {
            let e = at(bad).expect_err(bad).to_string();
            assert!(!e.contains('\n') && e.contains("is not a time"), "{e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(matches!(parse_size("1k"), Err(SizeError::TooSmall(_))));
        for bad in ["", "M", "-5M", "lots", "1e30T", "5X"] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::NotASize(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn output_checks_name_the_problem() {
        let dir = std::env::temp_dir().join(format!("profiler-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("r.rec");
        assert!(check_output(&file, 0, false).is_ok());
        std::fs::write(&file, b"x").expect("write");
        assert!(matches!(
            check_output(&file, 0, false),
            Err(OutputError::Exists { .. })
        ));
        assert!(check_output(&file, 0, true).is_ok());
        assert!(check_output(&file, 3, false).is_ok());
        assert!(matches!(
            check_output(&dir, 3, false),
            Err(OutputError::IsDirectory { .. })
        ));
        assert!(matches!(
            check_output(&dir.join("no/such/r.rec"), 3, false),
            Err(OutputError::NoDirectory { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
