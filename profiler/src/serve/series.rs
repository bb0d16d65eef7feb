//! Which tasks get a series of their own and what each counts: the `--top` tasks by I/O, and
//! `other` for the rest. Every interval's delta lands in exactly one series, and every series
//! only grows, so `sum(rate(...))` stays right while tasks move in and out of the top set.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use crate::counter::{Counter, PerCounter};
use crate::model::Row;
use crate::sample::{Command, Counters};

/// A value per counter; `None`: not measured.
pub type Values = PerCounter<Option<u64>>;

/// What identifies a task's series, apart from the container label (looked up only for the
/// tasks that get a series). A changed command (exec) or a reused pid makes a new series.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    pid: u32,
    tid: Option<u32>,
    uid: Option<u32>,
    command: Command,
}

impl SeriesKey {
    fn of(row: &Row) -> SeriesKey {
        SeriesKey {
            pid: row.pid,
            tid: row.tid,
            uid: row.uid,
            command: row.command.clone(),
        }
    }
}

/// One refresh's series: the top rows with their counter values, then `other`.
#[derive(Debug)]
pub struct Selection<'a> {
    pub top: Vec<(&'a Row, Values)>,
    pub other: Values,
}

/// Keeps the running value of each series between refreshes.
#[derive(Debug)]
pub struct Tracker {
    top: usize,
    /// Every series shown at least once whose task is still seen. A series starts at its
    /// task's total, then adds the deltas of the intervals in which it is shown: a process
    /// whose thread exits would otherwise go backwards (its threads' sum drops), and one that
    /// comes back into the top set would count the time it spent in `other` twice.
    running: HashMap<SeriesKey, Values>,
    other: Values,
}

/// Bytes moved, the measure of "most I/O".
fn io_bytes(c: &Counters) -> u64 {
    Counter::ALL
        .into_iter()
        .filter(|k| k.spec().ranks)
        .map(|k| c.get(k).unwrap_or(0))
        .fold(0, u64::saturating_add)
}

/// Busiest in the last interval first; among equals (idle tasks, the first refresh) the larger
/// total, so that a quiet machine keeps a stable set; then pid for a deterministic order.
fn rank(row: &Row) -> (Reverse<u64>, Reverse<u64>, u32, Option<u32>) {
    (
        Reverse(io_bytes(&row.delta)),
        Reverse(io_bytes(&row.total)),
        row.pid,
        row.tid,
    )
}

/// Adds a delta to a running value. A counter first measured now starts from the task's total.
fn advance(running: &Values, row: &Row) -> Values {
    PerCounter::from_fn(|c| match running[c] {
        Some(v) => Some(v.saturating_add(row.delta.get(c).unwrap_or(0))),
        None => row.total.get(c),
    })
}

impl Tracker {
    fn add_to_other(&mut self, row: &Row) {
        for (c, acc) in self.other.iter_mut() {
            if let Some(d) = row.delta.get(c) {
                *acc = Some(acc.unwrap_or(0).saturating_add(d));
            }
        }
    }

    /// `measurable`: the counters the source can measure, for which `other` is shown from the
    /// start (at 0) rather than from the first time a task falls into it.
    pub fn new(top: usize, measurable: PerCounter<bool>) -> Tracker {
        Tracker {
            top,
            running: HashMap::new(),
            other: measurable.map(|m| m.then_some(0)),
        }
    }

    /// The series of this refresh. `rows` are the tasks in scope (already filtered by user).
    pub fn update<'a>(&mut self, rows: &'a [Row]) -> Selection<'a> {
        let mut order: Vec<&Row> = rows.iter().collect();
        order.sort_by_key(|r| rank(r));
        let mut shown: HashSet<(u32, Option<u32>)> = HashSet::new();
        let mut seen: HashSet<SeriesKey> = HashSet::with_capacity(rows.len());
        let mut top = Vec::with_capacity(self.top.min(rows.len()));
        for row in order {
            let key = SeriesKey::of(row);
            // Two rows with one pid (a pid reused within the interval, the old task's exit
            // record beside the new task) would give two samples with one label set, and
            // Prometheus rejects a scrape with duplicates: the second one goes to `other`.
            if top.len() < self.top && shown.insert((row.pid, row.tid)) {
                let values = match self.running.get(&key) {
                    Some(running) => advance(running, row),
                    None => {
                        // rate() takes a new series' first value as its start, not as an
                        // increase: the interval it appears in is counted in `other`.
                        self.add_to_other(row);
                        row.total.values()
                    }
                };
                self.running.insert(key.clone(), values);
                top.push((row, values));
            } else {
                self.add_to_other(row);
            }
            seen.insert(key);
        }
        // A task no longer seen has exited (its exit record was in an earlier refresh).
        self.running.retain(|key, _| seen.contains(key));
        Selection {
            top,
            other: self.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a source without delay accounting measures.
    fn all() -> PerCounter<bool> {
        PerCounter::from_fn(|c| c.unit() != crate::counter::Unit::Nanoseconds)
    }

    fn row(pid: u32, total_wchar: u64, delta_wchar: Option<u64>) -> Row {
        Row {
            kind: crate::model::RowKind::Task,
            pid,
            tid: None,
            uid: Some(0),
            command: format!("p{pid}").into(),
            cgroup_id: None,
            start_time: None,
            container: None,
            total: Counters {
                wchar: Some(total_wchar),
                rchar: Some(0),
                ..Default::default()
            },
            delta: Counters {
                wchar: delta_wchar,
                rchar: delta_wchar.map(|_| 0),
                ..Default::default()
            },
            exited: false,
        }
    }

    fn wchar(v: &Values) -> Option<u64> {
        v[Counter::Wchar]
    }

    fn top_pids(s: &Selection<'_>) -> Vec<u32> {
        s.top.iter().map(|(r, _)| r.pid).collect()
    }

    #[test]
    fn the_busiest_in_the_interval_win_and_the_rest_is_other() {
        let mut t = Tracker::new(2, all());
        let rows = vec![
            row(1, 1000, Some(10)),
            row(2, 50, Some(50)),
            row(3, 9000, Some(0)),
            row(4, 30, Some(30)),
        ];
        let s = t.update(&rows);
        assert_eq!(top_pids(&s), [2, 4]);
        assert_eq!(
            wchar(&s.top[0].1),
            Some(50),
            "a series starts at the task's total"
        );
        assert_eq!(
            wchar(&s.other),
            Some(10 + 50 + 30),
            "other adds the rest's deltas, and those of the series that appear"
        );
        assert_eq!(
            s.other[Counter::BlkioDelay],
            None,
            "what the source cannot measure stays unmeasured"
        );
    }

    #[test]
    fn idle_tasks_rank_by_total() {
        let mut t = Tracker::new(1, all());
        let rows = vec![row(1, 10, None), row(2, 99, None)];
        assert_eq!(top_pids(&t.update(&rows)), [2]);
    }

    #[test]
    fn other_never_decreases_and_every_delta_counts_once() {
        let mut t = Tracker::new(1, all());
        // pid 1 is top, then falls into other, then comes back; pid 2 the other way; pid 3
        // exits (its exit record is its last row) and is gone afterwards.
        let steps = [
            vec![
                row(1, 100, Some(100)),
                row(2, 5, Some(5)),
                row(3, 7, Some(7)),
            ],
            vec![row(1, 101, Some(1)), row(2, 55, Some(50)), {
                let mut r = row(3, 9, Some(2));
                r.exited = true;
                r
            }],
            vec![row(1, 301, Some(200)), row(2, 56, Some(1))],
            vec![row(1, 302, Some(1)), row(2, 57, Some(1))],
        ];
        let mut prev_other = 0;
        let mut prev_series: HashMap<u32, u64> = HashMap::new();
        let mut increases = 0;
        for rows in &steps {
            let s = t.update(rows);
            let other = wchar(&s.other).expect("other measured");
            assert!(
                other >= prev_other,
                "other went from {prev_other} to {other}"
            );
            increases += other - prev_other;
            prev_other = other;
            for (r, v) in &s.top {
                let v = wchar(v).expect("measured");
                if let Some(&before) = prev_series.get(&r.pid) {
                    assert!(v >= before, "pid {} went from {before} to {v}", r.pid);
                    increases += v - before;
                }
                prev_series.insert(r.pid, v);
            }
        }
        assert_eq!(
            increases,
            (100 + 5 + 7) + (1 + 50 + 2) + (200 + 1) + (1 + 1)
        );
        // pid 1 came back after a refresh in `other`: it continues from its last value plus
        // the interval it is shown in, not from its total (which includes the time in other).
        let rows = [row(1, 303, Some(1)), row(2, 58, Some(1))];
        let s = t.update(&rows);
        assert_eq!(top_pids(&s), [1]);
        assert_eq!(wchar(&s.top[0].1), Some(100 + 200 + 1 + 1));
    }

    #[test]
    fn a_process_whose_thread_exited_does_not_go_backwards() {
        let mut t = Tracker::new(5, all());
        t.update(&[row(1, 1000, Some(0))]);
        // The exited thread's counters left the process's sum: the total dropped by 600.
        let rows = [row(1, 400, Some(0))];
        let s = t.update(&rows);
        assert_eq!(wchar(&s.top[0].1), Some(1000));
        let rows = [row(1, 410, Some(10))];
        let s = t.update(&rows);
        assert_eq!(wchar(&s.top[0].1), Some(1010));
    }

    #[test]
    fn duplicate_pids_go_to_other() {
        let mut t = Tracker::new(5, all());
        let mut old = row(7, 100, Some(20));
        old.exited = true;
        let rows = [old, row(7, 3, Some(3))];
        let s = t.update(&rows);
        assert_eq!(top_pids(&s), [7]);
        assert_eq!(s.top.len(), 1);
        assert_eq!(wchar(&s.other), Some(20 + 3));
    }

    #[test]
    fn gone_tasks_are_forgotten() {
        let mut t = Tracker::new(5, all());
        t.update(&[row(1, 10, Some(10)), row(2, 10, Some(10))]);
        t.update(&[row(2, 11, Some(1))]);
        assert_eq!(t.running.len(), 1);
        // A new task with pid 1 (reused) starts from its own total.
        let rows = [row(1, 4, Some(4))];
        let s = t.update(&rows);
        assert_eq!(wchar(&s.top[0].1), Some(4));
    }

    #[test]
    fn top_zero_puts_everything_in_other() {
        let mut t = Tracker::new(0, all());
        let rows = [row(1, 10, Some(10)), row(2, 10, Some(5))];
        let s = t.update(&rows);
        assert!(s.top.is_empty());
        assert_eq!(wchar(&s.other), Some(15));
    }
}
