//! Views: pure functions from a [`Snapshot`] (and view options) to text or JSON, plus the
//! full-screen TUI. Shared here: which rows to show, units, user names, compare-mode joins.

pub mod batch;
pub mod ioprio;
pub mod json;
pub mod lookup;
pub mod tui;

use std::collections::{BTreeMap, HashMap};

use crate::model::Row;
use crate::session::Snapshot;
use crate::settings::{Amounts, Column, Settings, Units};
// The views name users; where names are looked up is `users`.
pub use crate::users::UserNames;

/// What the user asked to see; independent of the source.
#[derive(Clone, Debug, Default)]
pub struct ViewOptions {
    /// Only rows with I/O in the interval.
    pub only: bool,
    /// Only rows of these uids; empty: everyone.
    pub uids: Vec<u32>,
    pub kilobytes: bool,
    /// Show amounts since the start (accumulated) instead of rates.
    pub accumulated: bool,
    /// Only rows whose container label starts with one of these; empty: all.
    pub containers: Vec<String>,
    /// Rows are containers (see `model::group_by_container`), not tasks.
    pub by_container: bool,
    /// Columns shown or hidden by choice; the others as the view has them by default.
    pub columns: BTreeMap<Column, bool>,
    /// The command line (`/proc/PID/cmdline`) instead of the command name.
    pub full_command: bool,
    /// Leave out tasks that exited.
    pub hide_exited: bool,
    /// `--si`, `--threshold`.
    pub units: Units,
}

impl ViewOptions {
    /// What the settings say the views show. With [`Amounts::AverageSinceStart`] the session
    /// sums since the start and its interval is the time since then: the view shows rates.
    pub fn from_settings(s: &Settings) -> ViewOptions {
        ViewOptions {
            only: s.only,
            kilobytes: s.kilobytes,
            accumulated: s.amounts == Amounts::Accumulated,
            columns: s.columns.clone(),
            full_command: s.full_command,
            hide_exited: s.hide_exited,
            units: s.units(),
            ..ViewOptions::default()
        }
    }

    /// Whether a column is shown, in a view that shows it by default or not.
    pub fn shows_column(&self, column: Column, by_default: bool) -> bool {
        self.columns.get(&column).copied().unwrap_or(by_default)
    }

    pub fn shows(&self, row: &Row) -> bool {
        (!self.only || row.active())
            && !(self.hide_exited && row.exited)
            && (self.uids.is_empty() || row.uid.is_some_and(|u| self.uids.contains(&u)))
            && self.in_chosen_containers(row)
    }

    /// `--container ID`: the row's container matches one of them (see
    /// [`crate::container::label_matches`]). An unlabelled row is in none.
    pub fn in_chosen_containers(&self, row: &Row) -> bool {
        self.containers.is_empty()
            || row.container.as_deref().is_some_and(|label| {
                self.containers
                    .iter()
                    .any(|id| crate::container::label_matches(label, id))
            })
    }
}

/// A task across the sources of a snapshot (one entry per source, None where it has no row).
pub struct Joined<'a> {
    pub pid: u32,
    pub tid: Option<u32>,
    pub per_source: Vec<Option<&'a Row>>,
}

impl Joined<'_> {
    /// The first source's row that exists: for labels (command, user).
    pub fn label(&self) -> &Row {
        self.per_source
            .iter()
            .flatten()
            .next()
            .expect("a joined row has at least one source row")
    }
}

/// Rows of every source joined by (pid, tid), in first-seen order, filtered by `opts`. One
/// source can have two rows with the same ids in a refresh (a task's exit record and the new
/// task that took its id; two tasks that took it in turn): the n-th such row of one source
/// joins the n-th of another, exit records with exit records, and none is dropped. Start times
/// do not join rows, as each source counts them in its own unit.
pub fn join<'a>(snapshot: &'a Snapshot, opts: &ViewOptions) -> Vec<Joined<'a>> {
    let n = snapshot.models.len();
    // Container rows are told apart by their label; task rows by pid and tid; then exit
    // records from the rest, and the n-th row with those from the one before.
    type Ids<'k> = (u32, Option<u32>, Option<&'k str>, bool);
    let mut index: HashMap<(Ids<'a>, usize), usize> = HashMap::new();
    let mut out: Vec<Joined<'a>> = Vec::new();
    for (i, view) in snapshot.models.iter().enumerate() {
        let mut seen: HashMap<Ids<'a>, usize> = HashMap::new();
        for row in &view.model.rows {
            // A container row is its label: sources that count its processes differently
            // (one misses a short-lived one) still show it on one line, side by side.
            let label = opts.by_container.then_some(row.name());
            let ids = (row.pid, row.tid, label, row.exited);
            let nth = seen.entry(ids).or_default();
            let key = (ids, *nth);
            *nth += 1;
            let at = *index.entry(key).or_insert_with(|| {
                out.push(Joined {
                    pid: row.pid,
                    tid: row.tid,
                    per_source: vec![None; n],
                });
                out.len() - 1
            });
            out[at].per_source[i] = Some(row);
        }
    }
    out.retain(|j| j.per_source.iter().flatten().any(|r| opts.shows(r)));
    out
}

/// `1.50 M` style: binary units, two decimals, as iotop prints them.
pub fn human_bytes(bytes: f64, kilobytes: bool) -> String {
    scaled_bytes(bytes, kilobytes, Units::default())
}

/// [`human_bytes`] with iotop-c's `--si` (powers of 1000, same letters as iotop-c) and
/// `--threshold` (move to the next unit at `threshold` times its size).
pub fn scaled_bytes(bytes: f64, kilobytes: bool, units: Units) -> String {
    let base = units.base();
    if kilobytes {
        return format!("{:.2} K", bytes / base);
    }
    let names = ["B", "K", "M", "G", "T"];
    let switch_at = base * f64::from(units.threshold.get());
    let mut v = bytes;
    let mut unit = 0;
    while v >= switch_at && unit < names.len() - 1 {
        v /= base;
        unit += 1;
    }
    format!("{v:.2} {}", names[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_filter_is_a_prefix_match() {
        let opts = ViewOptions {
            containers: vec!["docker:4f".into()],
            ..ViewOptions::default()
        };
        let mut row = crate::model::Row {
            kind: crate::model::RowKind::Task,
            pid: 1,
            tid: Some(1),
            uid: Some(0),
            command: "x".into(),
            cgroup_id: None,
            start_time: None,
            container: Some("docker:4f1c2d3e4f5a".into()),
            total: Default::default(),
            delta: Default::default(),
            exited: false,
        };
        assert!(opts.shows(&row));
        row.container = Some("host".into());
        assert!(!opts.shows(&row));
        row.container = None;
        assert!(!opts.shows(&row));
        assert!(ViewOptions::default().shows(&row));
    }

    fn task_row(tid: u32, start: u64, wchar: u64, exited: bool) -> Row {
        Row {
            kind: crate::model::RowKind::Task,
            pid: tid,
            tid: Some(tid),
            uid: Some(0),
            command: "w".into(),
            cgroup_id: None,
            start_time: Some(start),
            container: None,
            total: Default::default(),
            delta: crate::sample::Counters {
                wchar: Some(wchar),
                ..Default::default()
            },
            exited,
        }
    }

    /// What `kind` saw in one refresh: `rows`.
    fn view(kind: crate::source::SourceKind, rows: Vec<Row>) -> crate::session::SourceModel {
        crate::session::SourceModel {
            kind,
            model: crate::model::Model {
                rows,
                ..crate::model::Model::default()
            },
        }
    }

    #[test]
    fn a_container_is_one_row_whatever_each_source_counts_in_it() {
        use crate::model::RowKind;
        use crate::source::SourceKind;
        let container = |label: &str, processes, wchar| Row {
            kind: RowKind::Container { processes },
            pid: 0,
            tid: None,
            command: Default::default(),
            container: Some(label.into()),
            ..task_row(0, 0, wchar, false)
        };
        let snapshot = Snapshot {
            time: std::time::SystemTime::now(),
            models: vec![
                view(
                    SourceKind::Ebpf,
                    vec![container("docker:aa", 3, 30), container("host", 90, 1)],
                ),
                view(
                    SourceKind::Procfs,
                    vec![container("host", 88, 2), container("docker:aa", 2, 20)],
                ),
            ],
        };
        let opts = ViewOptions {
            by_container: true,
            ..ViewOptions::default()
        };
        let joined = join(&snapshot, &opts);
        let got: Vec<(&str, Option<u64>, Option<u64>)> = joined
            .iter()
            .map(|j| {
                let wchar = |i: usize| j.per_source[i].and_then(|r| r.delta.wchar);
                (j.label().name(), wchar(0), wchar(1))
            })
            .collect();
        assert_eq!(
            got,
            [
                ("docker:aa", Some(30), Some(20)),
                ("host", Some(1), Some(2))
            ]
        );
    }

    #[test]
    fn rows_with_the_same_ids_in_one_refresh_all_stay() {
        use crate::source::SourceKind;
        // Thread 9 exited and its id went to a new thread; then that one exited too.
        let snapshot = Snapshot {
            time: std::time::SystemTime::now(),
            models: vec![
                view(
                    SourceKind::Ebpf,
                    vec![
                        task_row(9, 1, 100, true),
                        task_row(9, 2, 7, false),
                        task_row(9, 3, 5, true),
                    ],
                ),
                view(
                    SourceKind::Taskstats,
                    vec![task_row(9, 1000, 7, false), task_row(9, 10, 100, true)],
                ),
            ],
        };
        let joined = join(&snapshot, &ViewOptions::default());
        let wchar = |j: &Joined, i: usize| j.per_source[i].and_then(|r| r.delta.wchar);
        let got: Vec<(Option<u64>, Option<u64>)> =
            joined.iter().map(|j| (wchar(j, 0), wchar(j, 1))).collect();
        assert_eq!(
            got,
            vec![(Some(100), Some(100)), (Some(7), Some(7)), (Some(5), None)],
            "every row stays, exit records join exit records"
        );
        let total: u64 = joined.iter().filter_map(|j| wchar(j, 0)).sum();
        assert_eq!(total, 112);
    }

    #[test]
    fn bytes_scale_like_iotop() {
        assert_eq!(human_bytes(0.0, false), "0.00 B");
        assert_eq!(human_bytes(1536.0, false), "1.50 K");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0, false), "3.00 M");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0, true), "3072.00 K");
    }

    #[test]
    fn si_and_threshold_scale_like_iotop_c() {
        use crate::settings::Threshold;
        let units = |si, t| Units {
            si,
            threshold: Threshold::new(t).expect("in range"),
        };
        assert_eq!(scaled_bytes(1500.0, false, units(true, 1)), "1.50 K");
        assert_eq!(scaled_bytes(1500.0, false, units(false, 1)), "1.46 K");
        assert_eq!(scaled_bytes(1500.0, false, units(false, 2)), "1500.00 B");
        assert_eq!(scaled_bytes(2048.0, false, units(false, 2)), "2.00 K");
        assert_eq!(scaled_bytes(5e6, false, units(false, 10)), "4882.81 K");
        assert_eq!(scaled_bytes(5e6, false, units(true, 10)), "5000.00 K");
        assert_eq!(scaled_bytes(5e6, true, units(true, 1)), "5000.00 K");
    }

    #[test]
    fn hide_exited_leaves_out_exit_records() {
        let opts = ViewOptions {
            hide_exited: true,
            ..ViewOptions::default()
        };
        assert!(!opts.shows(&task_row(1, 1, 5, true)));
        assert!(opts.shows(&task_row(1, 1, 5, false)));
        assert!(ViewOptions::default().shows(&task_row(1, 1, 5, true)));
    }
}
