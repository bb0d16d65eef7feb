//! The model: deltas and rates from two samples of one source, per thread or per process.
//! A pure function of (previous sample, current sample); nothing here reads the kernel.

use std::collections::HashMap;

use crate::counter::{Counter, PerCounter};
use crate::sample::{Command, Counters, Sample, TaskSample};

/// How to group and what to compare against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelOptions {
    /// One row per process (summed threads) instead of one per thread.
    pub processes: bool,
}

/// What a row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// A thread, or a process (`tid == None`).
    Task,
    /// The tasks labelled with one container (see [`group_by_container`]), summed: named by
    /// `container`, with `processes` processes in it. Its `pid` (0), `tid` and `command` name
    /// no task.
    Container { processes: u32 },
}

/// One row: a thread, a process with `tid == None`, or a container (see [`RowKind`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub kind: RowKind,
    pub pid: u32,
    pub tid: Option<u32>,
    pub uid: Option<u32>,
    pub command: Command,
    pub cgroup_id: Option<u64>,
    /// When the thread started, in the unit of its source (see [`TaskSample::start_time`]);
    /// a process row has its main thread's. Only comparable between rows of one source.
    pub start_time: Option<u64>,
    /// The container the task runs in (see `container`), once labelled; `host` outside any.
    pub container: Option<String>,
    /// What the source counts (since task start, or since attach for eBPF).
    pub total: Counters,
    /// Since the baseline sample; a counter is `None` when the source cannot measure it or
    /// when there is no trustworthy baseline (first sample, counter went backwards).
    pub delta: Counters,
    /// The task exited during the interval; these are its last counters.
    pub exited: bool,
}

impl Row {
    /// The number shown in a view's id column: the TID, the PID of a process row, or how many
    /// processes a container row holds.
    pub fn id(&self) -> u32 {
        match self.kind {
            RowKind::Task => self.tid.unwrap_or(self.pid),
            RowKind::Container { processes } => processes,
        }
    }

    /// What a view calls the row: the command, or a container row's label.
    pub fn name(&self) -> &str {
        match self.kind {
            RowKind::Task => &self.command,
            RowKind::Container { .. } => self.container.as_deref().unwrap_or_default(),
        }
    }

    /// How many processes a container row holds; None for a task.
    pub fn processes(&self) -> Option<u32> {
        match self.kind {
            RowKind::Task => None,
            RowKind::Container { processes } => Some(processes),
        }
    }

    /// Per second over `interval_s`.
    pub fn rate(&self, counter: Option<u64>, interval_s: f64) -> Option<f64> {
        counter
            .filter(|_| interval_s > 0.0)
            .map(|v| v as f64 / interval_s)
    }

    /// Did anything move in the interval (for `--only`)?
    pub fn active(&self) -> bool {
        Counter::ALL
            .into_iter()
            .filter(|c| c.spec().activity)
            .any(|c| self.delta.get(c).is_some_and(|v| v > 0))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    pub rows: Vec<Row>,
    /// Seconds between the baseline and the current sample; 0 for the first sample.
    pub interval_s: f64,
    pub lost_events: Option<u64>,
    pub skipped_tasks: u64,
    /// Which counters the source measures, when known: lets a refresh without rows total 0
    /// for them instead of "unavailable".
    pub measured: Option<PerCounter<bool>>,
}

impl Model {
    /// Sum of every row, the way the header shows it.
    pub fn total_delta(&self) -> Counters {
        let sum = self
            .rows
            .iter()
            .fold(Counters::default(), |acc, r| acc.add(&r.delta));
        match self.measured {
            // With a baseline, a measured counter that no row moved is a measured 0.
            Some(measured) if self.interval_s > 0.0 => {
                Counters::from_values(PerCounter::from_fn(|c| {
                    sum.get(c).or(measured[c].then_some(0))
                }))
            }
            _ => sum,
        }
    }
}

/// Is `cur` the same task `prev` was, or did the TID get reused? A task is its thread id and
/// its start time, both from one source (whatever that source's unit); where a source cannot
/// tell the start time, the process id is the best evidence left. A task that exited is never
/// the same as one seen afterwards: its thread id can only have been given to a new task.
pub fn same_task(prev: &TaskSample, cur: &TaskSample) -> bool {
    prev.tid == cur.tid
        && !prev.exited
        && match (prev.start_time, cur.start_time) {
            (Some(a), Some(b)) => a == b,
            _ => prev.pid == cur.pid,
        }
}

/// Delta of one task. A task absent from the baseline started (or first did I/O) within the
/// interval, so all it counted belongs to the interval. A counter that went backwards gives None:
/// no rate, rather than a huge or negative one.
fn task_delta(base: Option<&TaskSample>, cur: &TaskSample) -> Counters {
    match base.filter(|b| same_task(b, cur)) {
        Some(b) => cur
            .counters
            .zip_with(&b.counters, |c, p| c?.checked_sub(p?)),
        None => cur.counters,
    }
}

/// Builds the model of `cur` against `base` (the previous sample, or the first one for
/// accumulated mode). With no baseline, every delta is None.
pub fn compute(base: Option<&Sample>, cur: &Sample, opts: ModelOptions) -> Model {
    let interval_s = base.map_or(0.0, |b| {
        cur.taken_at
            .saturating_duration_since(b.taken_at)
            .as_secs_f64()
    });
    // An exited task can be no one's baseline (see `same_task`); leaving it out also keeps the
    // live task that took its thread id within the same sample.
    let by_tid: HashMap<u32, &TaskSample> = base
        .map(|b| {
            b.tasks
                .iter()
                .filter(|t| !t.exited)
                .map(|t| (t.tid, t))
                .collect()
        })
        .unwrap_or_default();
    let thread_rows = cur.tasks.iter().map(|t| Row {
        kind: RowKind::Task,
        pid: t.pid,
        tid: Some(t.tid),
        uid: t.uid,
        command: t.command.clone(),
        cgroup_id: t.cgroup_id,
        start_time: t.start_time,
        container: None,
        total: t.counters,
        delta: match base {
            Some(_) => task_delta(by_tid.get(&t.tid).copied(), t),
            None => Counters::default(),
        },
        exited: t.exited,
    });
    let rows = if opts.processes {
        group_processes(thread_rows.collect())
    } else {
        thread_rows.collect()
    };
    Model {
        rows,
        interval_s,
        lost_events: cur.lost_events,
        skipped_tasks: cur.skipped_tasks,
        measured: None,
    }
}

/// Sums threads into their process. The process row is labelled by its main thread
/// (tid == pid) when present, else by its first thread; its start time is the main thread's.
/// A pid reused within the interval gives two rows: the old process's exit records, and the
/// new process.
pub fn group_processes(threads: Vec<Row>) -> Vec<Row> {
    let replaced = replaced_pids(&threads);
    let mut order = Vec::new();
    let mut procs: HashMap<(u32, bool), Row> = HashMap::new();
    for t in threads {
        let key = (t.pid, t.exited && replaced.contains(&t.pid));
        match procs.get_mut(&key) {
            Some(p) => {
                p.total = p.total.add(&t.total);
                p.delta = p.delta.add(&t.delta);
                p.exited &= t.exited;
                if t.tid == Some(t.pid) {
                    p.command = t.command;
                    p.uid = t.uid;
                    p.start_time = t.start_time;
                }
            }
            None => {
                order.push(key);
                let start_time = t.start_time.filter(|_| t.tid == Some(t.pid));
                procs.insert(
                    key,
                    Row {
                        tid: None,
                        start_time,
                        ..t
                    },
                );
            }
        }
    }
    order
        .into_iter()
        .filter_map(|key| procs.remove(&key))
        .collect()
}

/// Pids whose main thread both exited and is alive in these rows: the pid went to a new process.
pub fn replaced_pids(threads: &[Row]) -> std::collections::HashSet<u32> {
    let mains = |exited: bool| {
        threads
            .iter()
            .filter(move |t| t.tid == Some(t.pid) && t.exited == exited)
            .map(|t| t.pid)
    };
    let live: std::collections::HashSet<u32> = mains(false).collect();
    mains(true).filter(|pid| live.contains(pid)).collect()
}

/// One row per container: the sum of the rows labelled with it. Rows without a label are
/// summed under `?`.
pub fn group_by_container(model: Model) -> Model {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, (Row, std::collections::HashSet<u32>)> = HashMap::new();
    for row in model.rows {
        let label = row.container.clone().unwrap_or_else(|| "?".into());
        match groups.get_mut(&label) {
            Some((g, pids)) => {
                g.total = g.total.add(&row.total);
                g.delta = g.delta.add(&row.delta);
                g.exited &= row.exited;
                pids.insert(row.pid);
            }
            None => {
                order.push(label.clone());
                let pids = std::collections::HashSet::from([row.pid]);
                let g = Row {
                    pid: 0,
                    tid: None,
                    uid: None,
                    cgroup_id: None,
                    start_time: None,
                    command: Command::default(),
                    container: Some(label.clone()),
                    ..row
                };
                groups.insert(label, (g, pids));
            }
        }
    }
    let rows = order
        .into_iter()
        .filter_map(|label| groups.remove(&label))
        .map(|(g, pids)| Row {
            kind: RowKind::Container {
                processes: pids.len() as u32,
            },
            ..g
        })
        .collect();
    Model { rows, ..model }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn task(tid: u32, pid: u32, start: Option<u64>, rchar: u64, wchar: u64) -> TaskSample {
        TaskSample {
            tid,
            pid,
            uid: Some(0),
            command: format!("t{tid}").into(),
            start_time: start,
            cgroup_id: None,
            counters: Counters {
                rchar: Some(rchar),
                wchar: Some(wchar),
                ..Default::default()
            },
            exited: false,
        }
    }

    fn sample(tasks: Vec<TaskSample>) -> Sample {
        Sample::new(tasks)
    }

    /// A sample taken `secs` after `base`.
    fn after(base: &Sample, secs: u64, tasks: Vec<TaskSample>) -> Sample {
        let mut s = Sample::new(tasks);
        s.taken_at = base.taken_at + Duration::from_secs(secs);
        s
    }

    #[test]
    fn first_sample_has_totals_but_no_deltas() {
        let m = compute(
            None,
            &sample(vec![task(1, 1, Some(5), 10, 20)]),
            ModelOptions::default(),
        );
        assert_eq!(m.rows[0].total.rchar, Some(10));
        assert_eq!(m.rows[0].delta.rchar, None);
        assert_eq!(m.interval_s, 0.0);
    }

    #[test]
    fn delta_and_rate_over_the_interval() {
        let a = sample(vec![task(1, 1, Some(5), 100, 0)]);
        let b = after(&a, 2, vec![task(1, 1, Some(5), 300, 40)]);
        let m = compute(Some(&a), &b, ModelOptions::default());
        assert_eq!(m.rows[0].delta.rchar, Some(200));
        assert_eq!(m.rows[0].delta.wchar, Some(40));
        assert_eq!(m.rows[0].delta.syscr, None, "unmeasured stays unmeasured");
        assert!((m.interval_s - 2.0).abs() < 1e-9);
        assert_eq!(
            m.rows[0].rate(m.rows[0].delta.rchar, m.interval_s),
            Some(100.0)
        );
    }

    #[test]
    fn counter_going_backwards_gives_no_rate() {
        let a = sample(vec![task(1, 1, None, 100, 50)]);
        let b = after(&a, 1, vec![task(1, 1, None, 10, 60)]);
        let m = compute(Some(&a), &b, ModelOptions::default());
        assert_eq!(m.rows[0].delta.rchar, None);
        assert_eq!(m.rows[0].delta.wchar, Some(10));
    }

    #[test]
    fn reused_tid_counts_from_the_new_task_start() {
        let a = sample(vec![task(7, 7, Some(1000), 5000, 0)]);
        let b = after(&a, 1, vec![task(7, 7, Some(2000), 30, 0)]);
        let m = compute(Some(&a), &b, ModelOptions::default());
        assert_eq!(m.rows[0].delta.rchar, Some(30));
        // Without start times, a different process id gives the same verdict.
        let a = sample(vec![task(7, 7, None, 5000, 0)]);
        let b = after(&a, 1, vec![task(7, 9, None, 6000, 0)]);
        assert_eq!(
            compute(Some(&a), &b, ModelOptions::default()).rows[0]
                .delta
                .rchar,
            Some(6000)
        );
    }

    #[test]
    fn appearing_and_vanishing_tasks() {
        let a = sample(vec![task(1, 1, Some(1), 10, 0), task(2, 2, Some(1), 10, 0)]);
        let b = after(
            &a,
            1,
            vec![task(1, 1, Some(1), 15, 0), task(3, 3, Some(9), 7, 0)],
        );
        let m = compute(Some(&a), &b, ModelOptions::default());
        assert_eq!(m.rows.len(), 2, "the vanished task is gone");
        assert_eq!(m.rows[1].tid, Some(3));
        assert_eq!(
            m.rows[1].delta.rchar,
            Some(7),
            "a new task's I/O all happened in the interval"
        );
    }

    #[test]
    fn processes_sum_their_threads() {
        let a = sample(vec![
            task(10, 10, Some(1), 1, 1),
            task(11, 10, Some(1), 1, 1),
            task(20, 20, Some(1), 0, 0),
        ]);
        let b = after(
            &a,
            1,
            vec![
                task(10, 10, Some(1), 3, 1),
                task(11, 10, Some(1), 5, 2),
                task(20, 20, Some(1), 0, 9),
            ],
        );
        let m = compute(Some(&a), &b, ModelOptions { processes: true });
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.rows[0].tid, None);
        assert_eq!(m.rows[0].command, "t10");
        assert_eq!(m.rows[0].total.rchar, Some(8));
        assert_eq!(m.rows[0].delta.rchar, Some(6));
        assert_eq!(m.rows[0].delta.wchar, Some(1));
        assert_eq!(m.total_delta().wchar, Some(10));
    }

    #[test]
    fn an_empty_refresh_totals_zero_for_measured_counters_only() {
        let a = sample(vec![]);
        let b = after(&a, 1, vec![]);
        let mut m = compute(Some(&a), &b, ModelOptions::default());
        assert_eq!(
            m.total_delta().wchar,
            None,
            "nothing known about the source"
        );
        let mut measured = PerCounter::from_fn(|_| true);
        measured[Counter::SwapinDelay] = false;
        m.measured = Some(measured);
        assert_eq!(m.total_delta().wchar, Some(0));
        assert_eq!(m.total_delta().swapin_delay_ns, None);
    }

    #[test]
    fn containers_sum_their_tasks() {
        let a = sample(vec![
            task(1, 1, Some(1), 0, 0),
            task(2, 2, Some(1), 0, 0),
            task(3, 2, Some(1), 0, 0),
        ]);
        let b = after(
            &a,
            1,
            vec![
                task(1, 1, Some(1), 0, 100),
                task(2, 2, Some(1), 0, 30),
                task(3, 2, Some(1), 0, 7),
            ],
        );
        let mut m = compute(Some(&a), &b, ModelOptions::default());
        for (row, label) in m.rows.iter_mut().zip(["host", "docker:abc", "docker:abc"]) {
            row.container = Some(label.into());
        }
        let g = group_by_container(m);
        assert_eq!(g.rows.len(), 2);
        assert_eq!(
            (
                g.rows[0].name(),
                g.rows[0].delta.wchar,
                g.rows[0].processes()
            ),
            ("host", Some(100), Some(1))
        );
        assert_eq!(
            (
                g.rows[1].name(),
                g.rows[1].delta.wchar,
                g.rows[1].processes()
            ),
            ("docker:abc", Some(37), Some(1))
        );
        assert_eq!(g.rows[1].tid, None);
    }
}
