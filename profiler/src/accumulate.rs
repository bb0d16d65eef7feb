//! Accumulated mode (`-a`): the I/O of each thread, process and container since the profiler
//! started. Built from the deltas of every interval rather than from one baseline sample, so
//! that what a thread did before it exited stays in its process and its container: an
//! accumulated figure never goes down.

use std::collections::HashMap;

use crate::model::{Row, RowKind};
use crate::sample::{Command, Counters};

/// Refreshes a process's exited threads are remembered after its last row: one for a process
/// a source skipped once.
const KEEP_REFRESHES: u64 = 2;

/// A thread as the accumulator knows it: (tid, start time) within one source.
type ThreadKey = (u32, Option<u64>);

struct ThreadSum {
    pid: u32,
    /// Which process with this pid it belongs to (see [`ProcessSum::generation`]).
    generation: u64,
    container: Option<String>,
    sum: Counters,
    seen: u64,
}

struct ProcessSum {
    /// The main thread's start time, once seen: a pid whose main thread started at another
    /// time is a new process.
    start_time: Option<u64>,
    /// Changes when the pid goes to a new process.
    generation: u64,
    /// What its threads that are gone did.
    retired: Counters,
    seen: u64,
    /// Its last process row, to show it by when none of its threads has a row any more.
    last_row: Option<Row>,
    /// Its main thread's exit record came: the process is gone.
    main_exited: bool,
}

/// Sums of one source's deltas, per thread, and what threads that are gone left to their
/// process and container.
#[derive(Default)]
pub struct Accumulator {
    threads: HashMap<ThreadKey, ThreadSum>,
    /// Threads whose exit record was the last refresh's: their sum was shown in their own row
    /// then, and goes to their process and container from the next refresh on.
    exited: Vec<ThreadSum>,
    processes: HashMap<u32, ProcessSum>,
    /// By container label (`?` when unknown), of threads that are gone; kept for the session,
    /// as containers are few.
    containers: HashMap<String, Counters>,
    refresh: u64,
    generations: u64,
}

fn label(container: &Option<String>) -> String {
    container.clone().unwrap_or_else(|| "?".into())
}

impl Accumulator {
    /// Adds one refresh of thread rows (deltas since the previous refresh, containers already
    /// labelled) and returns, in the order of `rows`, each thread's sum since the start.
    pub fn add(&mut self, rows: &[Row]) -> Vec<Counters> {
        self.refresh += 1;
        let now = self.refresh;
        for gone in std::mem::take(&mut self.exited) {
            self.retire(gone);
        }
        for row in rows {
            if !row.exited && row.tid == Some(row.pid) {
                self.main_thread_seen(row.pid, row.start_time);
            }
            let p = self.process(row.pid);
            p.seen = now;
            if row.exited && row.tid == Some(row.pid) {
                p.main_exited = true;
            }
        }
        let mut sums = vec![Counters::default(); rows.len()];
        // Exit records first: a live thread with the same key (a source that cannot tell start
        // times, and a thread id reused within the interval) must not take the exited one's sum.
        let order = (0..rows.len())
            .filter(|&i| rows[i].exited)
            .chain((0..rows.len()).filter(|&i| !rows[i].exited));
        for i in order {
            let row = &rows[i];
            let Some(tid) = row.tid else {
                continue;
            };
            let key = (tid, row.start_time);
            if self.threads.get(&key).is_some_and(|t| t.pid != row.pid) {
                let gone = self.threads.remove(&key).expect("just found");
                self.retire(gone);
            }
            let generation = self.process(row.pid).generation;
            let thread = self.threads.entry(key).or_insert(ThreadSum {
                pid: row.pid,
                generation,
                container: row.container.clone(),
                sum: Counters::default(),
                seen: now,
            });
            thread.sum = thread.sum.add(&row.delta);
            thread.seen = now;
            if thread.container.is_none() {
                thread.container.clone_from(&row.container);
            }
            sums[i] = thread.sum;
            if row.exited {
                let gone = self.threads.remove(&key).expect("just inserted");
                self.exited.push(gone);
            }
        }
        // Threads gone without an exit record keep what they were last seen doing.
        let vanished: Vec<ThreadKey> = self
            .threads
            .iter()
            .filter(|(_, t)| t.seen != now)
            .map(|(k, _)| *k)
            .collect();
        for key in vanished {
            let gone = self.threads.remove(&key).expect("listed");
            self.retire(gone);
        }
        self.processes.retain(|_, p| now - p.seen <= KEEP_REFRESHES);
        sums
    }

    fn process(&mut self, pid: u32) -> &mut ProcessSum {
        let (refresh, generations) = (self.refresh, &mut self.generations);
        self.processes.entry(pid).or_insert_with(|| {
            *generations += 1;
            ProcessSum {
                start_time: None,
                generation: *generations,
                retired: Counters::default(),
                seen: refresh,
                last_row: None,
                main_exited: false,
            }
        })
    }

    /// A pid whose main thread has a new start time was reused: the old process's threads
    /// belong to no one here any more (their containers keep them).
    fn main_thread_seen(&mut self, pid: u32, start_time: Option<u64>) {
        let Some(start) = start_time else {
            return;
        };
        self.generations += 1;
        let next = self.generations;
        let p = self.process(pid);
        if p.start_time.is_some_and(|s| s != start) {
            p.generation = next;
            p.retired = Counters::default();
            p.main_exited = false;
        }
        p.start_time = Some(start);
    }

    fn retire(&mut self, thread: ThreadSum) {
        if let Some(p) = self
            .processes
            .get_mut(&thread.pid)
            .filter(|p| p.generation == thread.generation)
        {
            p.retired = p.retired.add(&thread.sum);
        }
        let c = self.containers.entry(label(&thread.container)).or_default();
        *c = c.add(&thread.sum);
    }

    /// Adds to each process row (`tid == None`) what its exited threads did. When a pid was
    /// reused within the interval (two rows), that belongs to the new process. A process
    /// still `alive` whose threads all left the sample (sources that list only tasks doing
    /// I/O) keeps its row.
    pub fn add_retired_threads(&mut self, processes: &mut Vec<Row>, alive: impl Fn(u32) -> bool) {
        let live: std::collections::HashSet<u32> = processes
            .iter()
            .filter(|r| !r.exited)
            .map(|r| r.pid)
            .collect();
        for row in processes.iter_mut() {
            if row.exited && live.contains(&row.pid) {
                continue;
            }
            if let Some(p) = self.processes.get_mut(&row.pid) {
                row.delta = row.delta.add(&p.retired);
                p.last_row = Some(Row {
                    exited: false,
                    ..row.clone()
                });
            }
        }
        let shown: std::collections::HashSet<u32> = processes.iter().map(|r| r.pid).collect();
        let mut kept: Vec<Row> = Vec::new();
        for (&pid, p) in &mut self.processes {
            let Some(last) = p.last_row.as_ref() else {
                continue;
            };
            if shown.contains(&pid) || p.main_exited || !alive(pid) {
                continue;
            }
            p.seen = self.refresh;
            kept.push(Row {
                delta: p.retired,
                ..last.clone()
            });
        }
        kept.sort_by_key(|r| r.pid);
        processes.extend(kept);
    }

    /// Adds to each container row what its exited tasks did, and a row for each container
    /// whose tasks have all exited (with no processes).
    pub fn add_retired_to_containers(&self, containers: &mut Vec<Row>) {
        for row in containers.iter_mut() {
            if let Some(retired) = self.containers.get(&label(&row.container)) {
                row.delta = row.delta.add(retired);
            }
        }
        let mut gone: Vec<(&String, &Counters)> = self
            .containers
            .iter()
            .filter(|(l, _)| !containers.iter().any(|r| label(&r.container) == l.as_str()))
            .collect();
        gone.sort_by(|a, b| a.0.cmp(b.0));
        for (l, retired) in gone {
            containers.push(Row {
                kind: RowKind::Container { processes: 0 },
                pid: 0,
                tid: None,
                uid: None,
                command: Command::default(),
                cgroup_id: None,
                start_time: None,
                container: Some(l.clone()),
                total: Counters::default(),
                delta: *retired,
                exited: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{group_by_container, group_processes, Model};

    fn row(tid: u32, pid: u32, start: Option<u64>, wchar: u64, exited: bool) -> Row {
        Row {
            kind: RowKind::Task,
            pid,
            tid: Some(tid),
            uid: Some(0),
            command: format!("t{tid}").into(),
            cgroup_id: None,
            start_time: start,
            container: Some("docker:abc".into()),
            total: Counters::default(),
            delta: Counters {
                wchar: Some(wchar),
                ..Default::default()
            },
            exited,
        }
    }

    /// The accumulated process and container figures of one refresh; no process is alive but
    /// those with rows.
    fn refresh(acc: &mut Accumulator, rows: Vec<Row>) -> (Vec<Row>, Vec<Row>) {
        refresh_alive(acc, rows, |_| false)
    }

    fn refresh_alive(
        acc: &mut Accumulator,
        mut rows: Vec<Row>,
        alive: impl Fn(u32) -> bool,
    ) -> (Vec<Row>, Vec<Row>) {
        let sums = acc.add(&rows);
        for (r, s) in rows.iter_mut().zip(sums) {
            r.delta = s;
        }
        let mut processes = group_processes(rows.clone());
        acc.add_retired_threads(&mut processes, alive);
        let mut containers = group_by_container(Model {
            rows,
            ..Model::default()
        })
        .rows;
        acc.add_retired_to_containers(&mut containers);
        (processes, containers)
    }

    fn wchar(rows: &[Row], pid: u32) -> Option<u64> {
        rows.iter()
            .find(|r| r.pid == pid)
            .and_then(|r| r.delta.wchar)
    }

    #[test]
    fn a_process_keeps_the_io_of_its_exited_thread() {
        let mut acc = Accumulator::default();
        let (p, c) = refresh(
            &mut acc,
            vec![
                row(10, 10, Some(1), 6, false),
                row(11, 10, Some(2), 100_000, false),
            ],
        );
        assert_eq!(wchar(&p, 10), Some(100_006));
        assert_eq!(c[0].delta.wchar, Some(100_006));
        // The writer's exit record, with nothing more written.
        let (p, c) = refresh(
            &mut acc,
            vec![
                row(10, 10, Some(1), 0, false),
                row(11, 10, Some(2), 0, true),
            ],
        );
        assert_eq!(wchar(&p, 10), Some(100_006));
        assert_eq!(c[0].delta.wchar, Some(100_006));
        // Gone from the sample: the process and its container still count it.
        let (p, c) = refresh(&mut acc, vec![row(10, 10, Some(1), 1, false)]);
        assert_eq!(wchar(&p, 10), Some(100_007));
        assert_eq!(c[0].delta.wchar, Some(100_007));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_live_process_without_rows_keeps_its_row() {
        // A source that lists only tasks doing I/O: the writer exits, the idle main thread
        // never had a row.
        let mut acc = Accumulator::default();
        refresh(&mut acc, vec![row(11, 10, Some(2), 4096, false)]);
        refresh(&mut acc, vec![row(11, 10, Some(2), 0, true)]);
        for _ in 0..4 {
            let (p, _) = refresh_alive(&mut acc, vec![], |pid| pid == 10);
            assert_eq!(wchar(&p, 10), Some(4096));
        }
        let (p, _) = refresh(&mut acc, vec![]);
        assert!(p.is_empty(), "gone once it exited");
    }

    #[test]
    fn a_container_keeps_the_io_of_processes_that_exited() {
        let mut acc = Accumulator::default();
        refresh(
            &mut acc,
            vec![
                row(1, 1, Some(1), 12_000_000, false),
                row(2, 2, Some(1), 4_000, false),
            ],
        );
        // Process 1 vanishes without an exit record (procfs); then process 2 exits.
        let (_, c) = refresh(&mut acc, vec![row(2, 2, Some(1), 100, false)]);
        assert_eq!(c[0].delta.wchar, Some(12_004_100));
        let (_, c) = refresh(&mut acc, vec![row(2, 2, Some(1), 0, true)]);
        assert_eq!(c[0].delta.wchar, Some(12_004_100));
        let (p, c) = refresh(&mut acc, vec![]);
        assert!(p.is_empty(), "both processes exited");
        assert_eq!(
            (c.len(), c[0].processes(), c[0].delta.wchar),
            (1, Some(0), Some(12_004_100)),
            "a container whose tasks all exited keeps its row"
        );
    }

    #[test]
    fn a_reused_pid_starts_from_zero() {
        let mut acc = Accumulator::default();
        refresh(
            &mut acc,
            vec![
                row(7, 7, Some(100), 500, false),
                row(8, 7, Some(100), 50, true),
            ],
        );
        // Process 7 exited; a new process got pid 7 (and tid 8 for a thread) within one interval.
        let (p, c) = refresh(
            &mut acc,
            vec![
                row(7, 7, Some(100), 0, true),
                row(7, 7, Some(900), 3, false),
                row(8, 7, Some(901), 4, false),
            ],
        );
        let of = |exited: bool| {
            p.iter()
                .find(|r| r.pid == 7 && r.exited == exited)
                .and_then(|r| r.delta.wchar)
        };
        assert_eq!(
            (of(true), of(false)),
            (Some(500), Some(7)),
            "two processes 7"
        );
        assert_eq!(c[0].delta.wchar, Some(557));
        let (p, c) = refresh(
            &mut acc,
            vec![
                row(7, 7, Some(900), 1, false),
                row(8, 7, Some(901), 1, false),
            ],
        );
        assert_eq!(wchar(&p, 7), Some(9), "nothing of the old process 7");
        assert_eq!(c[0].delta.wchar, Some(559));
    }

    #[test]
    fn an_exit_and_a_reused_tid_in_one_refresh_keep_their_own_sums() {
        let mut acc = Accumulator::default();
        acc.add(&[row(5, 5, None, 10, false)]);
        // The new thread comes first in the sample; without start times only the order of
        // exit and life tells them apart.
        let sums = acc.add(&[row(5, 5, None, 2, false), row(5, 5, None, 1, true)]);
        assert_eq!(sums[1].wchar, Some(11), "the exited thread's own sum");
        assert_eq!(sums[0].wchar, Some(2), "the new thread starts from nothing");
    }
}
