//! Screens drawn into ratatui's TestBackend from hand-made samples, and key handling.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::render::{draw, geometry};
use super::sampler::{ActualIo, IoPrio, Refresh, SamplerCommand, SamplerEvent};
use super::state::{Action, Column, Geometry, Shown, Sources, ViewState};
use super::App;
use crate::counter::Counter;
use crate::model::{self, Model, ModelOptions};
use crate::sample::{Counters, Sample, TaskSample};
use crate::session::{Snapshot, SourceModel};
use crate::settings::Amounts;
use crate::source::{SourceKind, Unavailable};
use crate::view::{UserNames, ViewOptions};

mod keys;

/// A task and what it did during a one-second interval.
#[derive(Clone)]
struct Task {
    tid: u32,
    pid: u32,
    uid: u32,
    command: &'static str,
    delta: Counters,
}

fn task(tid: u32, uid: u32, command: &'static str, delta: Counters) -> Task {
    Task {
        tid,
        pid: tid,
        uid,
        command,
        delta,
    }
}

fn sample_of(tasks: &[Task], counters: impl Fn(&Task) -> Counters) -> Sample {
    Sample::new(
        tasks
            .iter()
            .map(|t| TaskSample {
                tid: t.tid,
                pid: t.pid,
                uid: Some(t.uid),
                command: t.command.into(),
                start_time: Some(1),
                cgroup_id: None,
                counters: counters(t),
                exited: false,
            })
            .collect(),
    )
}

/// The model of `tasks` over one second, built the way the session builds it.
fn model_of(tasks: &[Task], processes: bool) -> Model {
    let base = sample_of(tasks, |t| t.delta.zip_with(&t.delta, |v, _| v.map(|_| 0)));
    let mut cur = sample_of(tasks, |t| t.delta);
    cur.taken_at = base.taken_at + Duration::from_secs(1);
    model::compute(Some(&base), &cur, ModelOptions { processes })
}

fn refresh(views: Vec<(SourceKind, Model)>) -> Refresh {
    let snapshot = Snapshot {
        time: SystemTime::UNIX_EPOCH,
        models: views
            .into_iter()
            .map(|(kind, model)| SourceModel { kind, model })
            .collect(),
    };
    let actual = Some(ActualIo {
        read_bytes_per_s: 0.0,
        write_bytes_per_s: 2.5 * 1024.0 * 1024.0,
    });
    Refresh::new(snapshot, false, false, false, actual)
}

/// Labels the rows with their containers, in order, as the session does.
fn labelled(mut model: Model, labels: &[&str]) -> Model {
    for (row, label) in model.rows.iter_mut().zip(labels) {
        row.container = Some(label.to_string());
    }
    model
}

/// The refresh of `model` grouped by container, as the session sends it after `c`.
fn containers_refresh(model: Model) -> Refresh {
    let mut r = refresh(vec![(
        SourceKind::Taskstats,
        model::group_by_container(model),
    )]);
    r.containers = true;
    r
}

/// Every counter the taskstats source measures, in the order of `Counter::TABLE`; delays in ms.
fn all(v: [u64; 8]) -> Counters {
    let [read, write, swapin_ms, blkio_ms, syscr, syscw, rchar, wchar] = v;
    // Counter by counter, so that one added later is None here rather than a compile error.
    let mut c = Counters::default();
    for (counter, value) in [
        (Counter::Rchar, rchar),
        (Counter::Wchar, wchar),
        (Counter::Syscr, syscr),
        (Counter::Syscw, syscw),
        (Counter::ReadBytes, read),
        (Counter::WriteBytes, write),
        (Counter::CancelledWriteBytes, 0),
        (Counter::BlkioDelay, blkio_ms * 1_000_000),
        (Counter::SwapinDelay, swapin_ms * 1_000_000),
    ] {
        *c.get_mut(counter) = Some(value);
    }
    c
}

/// As procfs without delay accounting measures them.
fn no_delays(read: u64, write: u64, syscr: u64, syscw: u64) -> Counters {
    Counters {
        blkio_delay_ns: None,
        swapin_delay_ns: None,
        ..all([read, write, 0, 0, syscr, syscw, 0, 0])
    }
}

fn sources(kinds: &[SourceKind], unavailable: Vec<(SourceKind, Unavailable)>) -> Sources {
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    Sources {
        kinds: kinds.to_vec(),
        line: format!("source: {}", names.join(",")),
        unavailable,
    }
}

fn state_for(sources: Sources) -> ViewState {
    let mut state = ViewState::new(sources, ViewOptions::default(), false);
    for (uid, name) in [(0, "root"), (1000, "alice"), (1001, "bob"), (1002, "carol")] {
        state.users.insert(uid, name.to_string());
    }
    state
}

/// The screen as text, one string per line.
fn screen(width: u16, height: u16, refresh: Option<&Refresh>, state: &ViewState) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|f| {
            draw(f, refresh, state);
        })
        .expect("drawing");
    let buf = terminal.backend().buffer();
    (0..height)
        .map(|y| (0..width).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect()
}

fn assert_screen(actual: &[String], expected: &[&str]) {
    let padded: Vec<String> = expected
        .iter()
        .zip(actual)
        .map(|(e, a)| format!("{e:<w$}", w = a.chars().count()))
        .collect();
    assert_eq!(
        actual,
        padded.as_slice(),
        "\nscreen:\n{}\nexpected:\n{}\n",
        actual.join("|\n"),
        padded.join("|\n")
    );
    assert_eq!(actual.len(), expected.len(), "line count");
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// The ids in the table: the first number of each line after the column headers.
fn ids(lines: &[String]) -> Vec<u32> {
    let header = lines
        .iter()
        .position(|l| l.trim_start().starts_with("TID") || l.trim_start().starts_with("PID"));
    let header = header.unwrap_or_else(|| panic!("no table header in\n{}", lines.join("\n")));
    lines[header + 1..]
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn empty_model_says_so() {
    let state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let r = refresh(vec![(SourceKind::Taskstats, model_of(&[], false))]);
    assert_screen(
        &screen(80, 8, Some(&r), &state),
        &[
            "Total DISK READ: 0.00 B/s | Total DISK WRITE: 0.00 B/s",
            "Actual DISK READ: 0.00 B/s | Actual DISK WRITE: 2.50 M/s",
            "sort: IO> ▼ | threads | ? help",
            "source: taskstats",
            "TID PRIO USER READ WRITE SWAP IO> SYSCR/s SYSCW/s HIST COMMAND",
            "no tasks",
            "",
            "",
        ],
    );
    // Before the first refresh there is nothing to total, and no zeros are made up.
    let waiting = screen(80, 6, None, &state);
    assert!(
        waiting[0].starts_with("Total DISK READ: … | Total DISK WRITE: …"),
        "{waiting:?}"
    );
    assert!(
        waiting
            .iter()
            .any(|l| l.starts_with("waiting for the first refresh")),
        "{waiting:?}"
    );
}

/// Four tasks ordered differently by every column.
fn four_tasks() -> Vec<Task> {
    vec![
        task(
            101,
            0,
            "make",
            all([4000, 10_000, 300, 300, 30, 40, 30_000, 10_000]),
        ),
        task(
            102,
            1000,
            "dd",
            all([1000, 40_000, 200, 200, 40, 20, 10_000, 20_000]),
        ),
        task(
            103,
            1001,
            "tar",
            all([3000, 20_000, 400, 100, 10, 30, 20_000, 40_000]),
        ),
        task(
            104,
            1002,
            "cp",
            all([2000, 30_000, 100, 400, 20, 10, 40_000, 30_000]),
        ),
    ]
}

#[test]
fn rows_sort_by_each_column_both_ways() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    state.on_key(key(KeyCode::Char('w')), Geometry::default());
    state.prio = HashMap::from([
        (101, IoPrio::BestEffort(4)),
        (102, IoPrio::Realtime(0)),
        (103, IoPrio::Idle),
        (104, IoPrio::BestEffort(2)),
    ]);
    let r = refresh(vec![(
        SourceKind::Taskstats,
        labelled(
            model_of(&four_tasks(), false),
            &[
                "host",
                "podman:77aa01bc2d3e",
                "docker:3f2a9c1b7d4e",
                "k8s:web/0a1b",
            ],
        ),
    )]);
    let expected: [(Column, &str, [u32; 4]); 13] = [
        (Column::Id, "TID ▲", [101, 102, 103, 104]),
        (Column::Prio, "PRIO ▲", [102, 104, 101, 103]),
        (Column::User, "USER ▲", [102, 103, 104, 101]),
        (Column::Container, "CONTAINER ▲", [103, 101, 104, 102]),
        (
            Column::Counter(Counter::ReadBytes),
            "DISK READ ▼",
            [101, 103, 104, 102],
        ),
        (
            Column::Counter(Counter::WriteBytes),
            "DISK WRITE ▼",
            [102, 104, 103, 101],
        ),
        (
            Column::Counter(Counter::SwapinDelay),
            "SWAPIN ▼",
            [103, 101, 102, 104],
        ),
        (
            Column::Counter(Counter::BlkioDelay),
            "IO> ▼",
            [104, 101, 102, 103],
        ),
        (
            Column::Counter(Counter::Syscr),
            "READ SYSCALLS ▼",
            [102, 101, 104, 103],
        ),
        (
            Column::Counter(Counter::Syscw),
            "WRITE SYSCALLS ▼",
            [101, 103, 102, 104],
        ),
        (
            Column::Counter(Counter::Rchar),
            "RCHAR ▼",
            [104, 101, 103, 102],
        ),
        (
            Column::Counter(Counter::Wchar),
            "WCHAR ▼",
            [103, 104, 102, 101],
        ),
        (Column::Command, "COMMAND ▲", [104, 102, 101, 103]),
    ];
    // Right steps through every sortable column, in the order of the table.
    state.sort = Column::Id;
    for (column, name, order) in expected {
        assert_eq!(state.sort, column, "right arrow order");
        let lines = screen(200, 12, Some(&r), &state);
        assert!(
            lines[2].starts_with(&format!("sort: {name} |")),
            "{column:?}: {}",
            lines[2]
        );
        assert_eq!(
            ids(&lines),
            order,
            "sorted by {column:?}:\n{}",
            lines.join("\n")
        );
        state.on_key(key(KeyCode::Char('r')), Geometry::default());
        let mut reversed = order;
        reversed.reverse();
        assert_eq!(
            ids(&screen(200, 12, Some(&r), &state)),
            reversed,
            "reversed {column:?}"
        );
        state.on_key(key(KeyCode::Right), Geometry::default());
        assert!(
            !state.reverse,
            "a new sort column starts in its own direction"
        );
    }
    assert_eq!(state.sort, Column::Id, "right wraps around");
    state.on_key(key(KeyCode::Left), Geometry::default());
    assert_eq!(state.sort, Column::Command, "left wraps around");
}

#[test]
fn unmeasured_values_sort_last_both_ways() {
    let mut state = state_for(sources(&[SourceKind::Procfs], Vec::new()));
    state.sort = Column::Counter(Counter::BlkioDelay);
    let mut tasks = four_tasks();
    tasks[1].delta.blkio_delay_ns = None;
    let r = refresh(vec![(SourceKind::Procfs, model_of(&tasks, false))]);
    assert_eq!(
        ids(&screen(200, 12, Some(&r), &state)),
        [104, 101, 103, 102]
    );
    state.reverse = true;
    assert_eq!(
        ids(&screen(200, 12, Some(&r), &state)),
        [103, 101, 104, 102]
    );
}

fn procfs_unavailable() -> Vec<(SourceKind, Unavailable)> {
    vec![
        (
            SourceKind::Procfs,
            Unavailable {
                counters: &[Counter::SwapinDelay],
                reason: "/proc has no swap-in delay; use the taskstats source".into(),
            },
        ),
        (
            SourceKind::Procfs,
            Unavailable {
                counters: &[Counter::BlkioDelay],
                reason: "delay accounting is off: `sysctl -w kernel.task_delayacct=1`".into(),
            },
        ),
    ]
}

#[test]
fn delay_accounting_unavailable_is_said_once_and_never_shown_as_zero() {
    let mut state = state_for(sources(&[SourceKind::Procfs], procfs_unavailable()));
    let tasks = [
        task(200, 0, "writer", no_delays(0, 3 << 20, 1, 96)),
        task(201, 1000, "idle", no_delays(0, 0, 0, 0)),
    ];
    let r = refresh(vec![(SourceKind::Procfs, model_of(&tasks, false))]);
    state.record(&r);
    let lines = screen(100, 12, Some(&r), &state);
    assert_screen(
        &lines,
        &[
            "Total DISK READ: 0.00 B/s | Total DISK WRITE: 3.00 M/s | READ SYSCALLS: 1/s | WRITE SYSCALLS: 96/s",
            "Actual DISK READ: 0.00 B/s | Actual DISK WRITE: 2.50 M/s",
            "sort: DISK WRITE ▼ | threads | ? help",
            "source: procfs",
            "SWAPIN n/a: /proc has no swap-in delay; use the taskstats source",
            "IO> n/a: delay accounting is off: `sysctl -w kernel.task_delayacct=1`",
            "TID PRIO USER      READ    WRITE SWAP IO> SYSCR/s SYSCW/s HIST     COMMAND",
            "200 ?    root  0.00 B/s 3.00 M/s  n/a n/a       1      96        █ writer",
            "201 ?    alice 0.00 B/s 0.00 B/s  n/a n/a       0       0          idle",
            "",
            "",
            "",
        ],
    );
    assert!(
        !lines.iter().any(|l| l.contains('%')),
        "no delay shown as a number:\n{}",
        lines.join("\n")
    );
}

#[test]
fn compare_mode_shows_sources_side_by_side_and_s_cycles() {
    let unavailable = vec![(
        SourceKind::Ebpf,
        Unavailable {
            counters: &[Counter::BlkioDelay, Counter::SwapinDelay],
            reason: "delay accounting is read through taskstats only".into(),
        },
    )];
    let mut state = state_for(sources(
        &[SourceKind::Taskstats, SourceKind::Ebpf],
        unavailable,
    ));
    assert_eq!(
        state.shown,
        Shown::Compare,
        "compare mode starts side by side"
    );
    state.sort = Column::Counter(Counter::WriteBytes);
    let ts = [
        task(
            300,
            0,
            "writer",
            all([0, 2 << 20, 0, 50, 0, 32, 0, 2 << 20]),
        ),
        task(
            301,
            1000,
            "reader",
            all([1 << 20, 0, 0, 10, 8, 0, 1 << 20, 0]),
        ),
    ];
    let eb = [
        task(
            300,
            0,
            "writer",
            Counters {
                blkio_delay_ns: None,
                swapin_delay_ns: None,
                ..all([0, 3 << 20, 0, 0, 0, 48, 0, 3 << 20])
            },
        ),
        task(
            302,
            0,
            "late",
            Counters {
                blkio_delay_ns: None,
                swapin_delay_ns: None,
                ..all([0, 1 << 10, 0, 0, 0, 1, 0, 1 << 10])
            },
        ),
    ];
    let r = refresh(vec![
        (SourceKind::Taskstats, model_of(&ts, false)),
        (SourceKind::Ebpf, model_of(&eb, false)),
    ]);
    assert_screen(
        &screen(100, 12, Some(&r), &state),
        &[
            "[taskstats] Total DISK READ: 1.00 M/s | Total DISK WRITE: 2.00 M/s",
            "[ebpf] Total DISK READ: 0.00 B/s | Total DISK WRITE: 3.00 M/s",
            "Actual DISK READ: 0.00 B/s | Actual DISK WRITE: 2.50 M/s",
            "sort: DISK WRITE ▼ | threads | compare (Tab: next) | ? help",
            "source: taskstats,ebpf | compare DISK WRITE per source, DIFF = ebpf - taskstats",
            "    TID  USER      taskstats WRITE   ebpf WRITE          DIFF  COMMAND",
            "    300  root             2.00 M/s     3.00 M/s     +1.00 M/s  writer",
            "    302  root                    -     1.00 K/s             -  late",
            "    301  alice            0.00 B/s            -             -  reader",
            "",
            "",
            "",
        ],
    );
    // On IO>, the source that cannot measure it says so, and its cells are n/a.
    state.sort = Column::Counter(Counter::BlkioDelay);
    let lines = screen(100, 12, Some(&r), &state);
    assert!(
        lines.contains(&format!(
            "{:<100}",
            "[ebpf] IO> n/a: delay accounting is read through taskstats only"
        )),
        "{lines:#?}"
    );
    assert!(
        lines[7].starts_with("    300  root             5.00 %       n/a       n/a  writer"),
        "{lines:#?}"
    );

    state.on_key(key(KeyCode::Tab), Geometry::default());
    assert_eq!(state.shown, Shown::Source(0));
    let lines = screen(120, 12, Some(&r), &state);
    assert!(
        lines[3].contains("showing taskstats (Tab: next)"),
        "{}",
        lines[3]
    );
    assert_eq!(ids(&lines), [300, 301]);
    state.on_key(key(KeyCode::Tab), Geometry::default());
    let lines = screen(120, 12, Some(&r), &state);
    assert!(
        lines[3].contains("showing ebpf (Tab: next)"),
        "{}",
        lines[3]
    );
    assert_eq!(ids(&lines), [300, 302], "IO> is n/a for both: by id");
    state.on_key(key(KeyCode::Tab), Geometry::default());
    assert_eq!(state.shown, Shown::Compare);
}

fn busy_model() -> Model {
    model_of(
        &[
            task(
                4242,
                1000,
                "postgres: checkpointer",
                all([0, 12 << 20, 0, 250, 0, 300, 0, 12 << 20]),
            ),
            task(1, 0, "systemd", all([8 << 10, 0, 0, 10, 4, 0, 8 << 10, 0])),
            task(
                777,
                1001,
                "rsync",
                all([
                    700 << 20,
                    200 << 20,
                    0,
                    900,
                    5000,
                    1600,
                    700 << 20,
                    200 << 20,
                ]),
            ),
            task(
                31337,
                0,
                "kworker/u8:2-flush-8:0",
                all([0, 0, 0, 0, 0, 0, 0, 0]),
            ),
        ],
        false,
    )
}

/// [`busy_model`] on a host that runs containers.
fn containers_model() -> Model {
    labelled(
        busy_model(),
        &[
            "k8s:1a2b3c4d-5e6/4f1c2d3e4f5a",
            "host",
            "docker:3f2a9c1b7d4e",
            "host",
        ],
    )
}

#[test]
fn terminal_80x24() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    state.prio = HashMap::from([
        (4242, IoPrio::BestEffort(4)),
        (1, IoPrio::BestEffort(4)),
        (777, IoPrio::Idle),
    ]);
    let r = refresh(vec![(SourceKind::Taskstats, busy_model())]);
    state.record(&r);
    let mut expected = vec![
        "Total DISK READ: 700.01 M/s | Total DISK WRITE: 212.00 M/s",
        "Actual DISK READ: 0.00 B/s | Actual DISK WRITE: 2.50 M/s",
        "sort: IO> ▼ | threads | ? help",
        "source: taskstats",
        "  TID PRIO USER        READ      WRITE     IO> SYSCR/s SYSCW/s COMMAND",
        "  777 idle bob   700.00 M/s 200.00 M/s 90.00 %    5000    1600 rsync",
        " 4242 be/4 alice   0.00 B/s  12.00 M/s 25.00 %       0     300 postgres: checkpo",
        "    1 be/4 root    8.00 K/s   0.00 B/s  1.00 %       4       0 systemd",
        "31337 ?    root    0.00 B/s   0.00 B/s  0.00 %       0       0 kworker/u8:2-flus",
    ];
    expected.resize(24, "");
    assert_screen(&screen(80, 24, Some(&r), &state), &expected);
}

#[test]
fn terminal_20x10_keeps_id_sort_column_and_command() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    state.sort = Column::Counter(Counter::WriteBytes);
    let r = refresh(vec![(SourceKind::Taskstats, busy_model())]);
    assert_screen(
        &screen(20, 10, Some(&r), &state),
        &[
            "R 700M/s W 212M/s",
            "Act R 0B/s W 2.5M/s",
            "sort DISK WRITE▼ th…",
            "source: taskstats",
            "  TID  WRITE COMMAND",
            "  777 200M/s rsync",
            " 4242  12M/s postgre",
            "    1   0B/s systemd",
            "31337   0B/s kworker",
            "",
        ],
    );
}

#[test]
fn history_charts_the_sort_column() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    state.sort = Column::Counter(Counter::WriteBytes);
    for write in [1u64, 2, 4, 8] {
        let r = refresh(vec![(
            SourceKind::Taskstats,
            model_of(
                &[task(9, 0, "w", all([0, write << 20, 0, 0, 0, 1, 0, 0]))],
                false,
            ),
        )]);
        state.record(&r);
        let lines = screen(120, 8, Some(&r), &state);
        let row = lines
            .iter()
            .find(|l| l.trim_start().starts_with("9 "))
            .expect("row 9");
        assert!(
            row.contains("HISTORY") || lines.iter().any(|l| l.contains("HISTORY")),
            "{lines:#?}"
        );
        if write == 8 {
            assert!(row.contains("    ▂▃▅█ w"), "{row}");
        }
    }
}

#[test]
fn filters_by_command_user_and_activity() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let r = refresh(vec![(SourceKind::Taskstats, busy_model())]);
    let g = Geometry::default();
    state.on_key(key(KeyCode::Char('o')), g);
    assert_eq!(
        ids(&screen(120, 12, Some(&r), &state)),
        [777, 4242, 1],
        "only active hides the idle kworker"
    );
    state.on_key(key(KeyCode::Char('o')), g);

    state.on_key(key(KeyCode::Char('/')), g);
    for c in "rsync|sys(".chars() {
        state.on_key(key(KeyCode::Char(c)), g);
    }
    let lines = screen(120, 12, Some(&r), &state);
    assert!(
        lines[11].starts_with(
            "filter command or container (regex): rsync|sys(  invalid regex: unclosed group"
        ),
        "{}",
        lines[11]
    );
    assert_eq!(
        ids(&lines),
        [777, 1],
        "the last valid pattern, rsync|sys, still filters"
    );
    state.on_key(key(KeyCode::Enter), g);
    assert!(
        state.input.is_some(),
        "Enter keeps the prompt open on an invalid pattern"
    );
    state.on_key(key(KeyCode::Backspace), g);
    state.on_key(key(KeyCode::Enter), g);
    assert!(state.input.is_none());
    let lines = screen(120, 12, Some(&r), &state);
    assert!(lines[2].contains("filter: /rsync|sys/"), "{}", lines[2]);
    assert_eq!(ids(&lines), [777, 1]);

    state.on_key(key(KeyCode::Char('f')), g);
    for c in "root".chars() {
        state.on_key(key(KeyCode::Char(c)), g);
    }
    state.on_key(key(KeyCode::Enter), g);
    assert_eq!(state.view.uids, [0]);
    // Then the process filter: none.
    state.on_key(key(KeyCode::Enter), g);
    assert_eq!(ids(&screen(120, 12, Some(&r), &state)), [1]);
    state.on_key(key(KeyCode::Char('f')), g);
    state.on_key(key(KeyCode::Char('x')), g);
    for _ in 0.."rootx".len() {
        state.on_key(key(KeyCode::Backspace), g);
    }
    for c in "no-such-user-here".chars() {
        state.on_key(key(KeyCode::Char(c)), g);
    }
    state.on_key(key(KeyCode::Enter), g);
    assert_eq!(
        state.input.as_ref().and_then(|i| i.error.as_deref()),
        Some("no such user: no-such-user-here")
    );
    state.on_key(key(KeyCode::Esc), g);
    assert_eq!(state.view.uids, [0], "Esc in the prompt keeps the filter");
    state.on_key(key(KeyCode::Esc), g);
    assert!(
        state.filter.is_none() && state.view.uids.is_empty(),
        "Esc clears the filters"
    );
    let lines = screen(120, 12, Some(&r), &state);
    assert_eq!(ids(&lines).len(), 4);
}

#[test]
fn scrolling_stays_within_the_rows() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let tasks: Vec<Task> = (1..=50)
        .map(|i| task(i, 0, "t", all([0, u64::from(i), 0, 0, 0, 0, 0, 0])))
        .collect();
    let r = refresh(vec![(SourceKind::Taskstats, model_of(&tasks, false))]);
    state.sort = Column::Id;
    let area = ratatui::layout::Rect::new(0, 0, 120, 15);
    let (g, on_screen) = geometry(area, Some(&r), &state);
    assert_eq!(
        g,
        Geometry {
            rows: 50,
            page: 10,
            top: Some(1)
        }
    );
    assert_eq!(
        on_screen,
        (1..=10).collect::<Vec<u32>>(),
        "the sampler is asked for these priorities"
    );
    state.on_key(key(KeyCode::PageDown), g);
    assert_eq!(ids(&screen(120, 15, Some(&r), &state))[0], 11);
    state.on_key(key(KeyCode::End), g);
    assert_eq!(
        ids(&screen(120, 15, Some(&r), &state)),
        (41..=50).collect::<Vec<u32>>()
    );
    state.on_key(key(KeyCode::Down), g);
    assert_eq!(state.scroll, 40, "no scrolling past the end");
    state.on_key(key(KeyCode::Up), g);
    assert_eq!(ids(&screen(120, 15, Some(&r), &state))[0], 40);
    state.on_key(key(KeyCode::Home), g);
    assert_eq!(state.scroll, 0);
    state.on_key(key(KeyCode::Up), g);
    assert_eq!(state.scroll, 0);
    state.sort = Column::Prio;
    assert_eq!(
        geometry(area, Some(&r), &state).1.len(),
        50,
        "sorting by priority needs every task's"
    );
}

fn app(state: ViewState) -> (App, tokio::sync::mpsc::UnboundedReceiver<SamplerCommand>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = App {
        state,
        current: None,
        pending: None,
        users: UserNames::default(),
        geometry: Geometry::default(),
        on_screen: Vec::new(),
        commands: tx,
        lookup: crate::view::lookup::Lookup::default(),
        redraw: false,
        delayacct: std::path::PathBuf::from("/nonexistent/task_delayacct"),
    };
    (app, rx)
}

fn press(app: &mut App, code: KeyCode) {
    app.on_keyboard(Ok(crossterm::event::Event::Key(key(code))))
        .expect("key handled");
}

#[test]
fn scrolling_keys_move_through_the_table_as_last_drawn() {
    let (mut app, _commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    let tasks: Vec<Task> = (1..=50)
        .map(|i| task(i, 0, "t", all([0, u64::from(i), 0, 0, 0, 0, 0, 0])))
        .collect();
    let r = refresh(vec![(SourceKind::Taskstats, model_of(&tasks, false))]);
    app.on_sample(SamplerEvent::Refresh(Box::new(r)));
    app.state.sort = Column::Id;
    let mut terminal = Terminal::new(TestBackend::new(120, 15)).expect("test terminal");
    let mut laid_out = Default::default();
    terminal
        .draw(|f| laid_out = draw(f, app.current.as_ref(), &app.state))
        .expect("drawing");
    let area = ratatui::layout::Rect::new(0, 0, 120, 15);
    assert_eq!(
        laid_out,
        geometry(area, app.current.as_ref(), &app.state),
        "a frame lays the table out as `geometry` does"
    );
    assert_eq!(
        laid_out.0,
        Geometry {
            rows: 50,
            page: 10,
            top: Some(1)
        }
    );
    app.geometry = laid_out.0;
    press(&mut app, KeyCode::End);
    assert_eq!(app.state.scroll, 40, "the last page of the table drawn");
}

#[test]
fn freeze_holds_the_display_while_refreshes_arrive() {
    let (mut app, _commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    let first = refresh(vec![(SourceKind::Taskstats, busy_model())]);
    app.on_sample(SamplerEvent::Refresh(Box::new(first)));
    press(&mut app, KeyCode::Char('s'));
    let newer = refresh(vec![(
        SourceKind::Taskstats,
        model_of(&[task(5, 0, "new", all([0, 1, 0, 0, 0, 0, 0, 0]))], false),
    )]);
    app.on_sample(SamplerEvent::Refresh(Box::new(newer.clone())));
    app.on_sample(SamplerEvent::Refresh(Box::new(newer)));
    let lines = screen(120, 12, app.current.as_ref(), &app.state);
    assert!(lines[2].contains("FROZEN (2 behind)"), "{}", lines[2]);
    assert_eq!(ids(&lines).len(), 4, "still the first refresh");
    press(&mut app, KeyCode::Char('s'));
    let lines = screen(120, 12, app.current.as_ref(), &app.state);
    assert_eq!(ids(&lines), [5], "unfreezing shows the newest refresh");
    assert!(!lines[2].contains("FROZEN"));
}

#[test]
fn mode_keys_reach_the_sampler_and_q_quits() {
    let (mut app, mut commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    press(&mut app, KeyCode::Char('p'));
    assert_eq!(
        commands.try_recv().ok(),
        Some(SamplerCommand::Rows {
            processes: true,
            containers: false,
            amounts: Amounts::Current
        })
    );
    press(&mut app, KeyCode::Char('a'));
    assert_eq!(
        commands.try_recv().ok(),
        Some(SamplerCommand::Rows {
            processes: true,
            containers: false,
            amounts: Amounts::Accumulated
        })
    );
    let lines = screen(120, 12, None, &app.state);
    assert!(
        lines[1].starts_with("sort: IO> ▼ | processes | accumulated | ? help"),
        "{}",
        lines[1]
    );

    // The next refresh is grouped by process and counts since the start.
    let mut r = refresh(vec![(SourceKind::Taskstats, model_of(&four_tasks(), true))]);
    r.processes = true;
    r.accumulated = true;
    app.on_sample(SamplerEvent::Refresh(Box::new(r)));
    let lines = screen(200, 12, app.current.as_ref(), &app.state);
    let header = lines
        .iter()
        .find(|l| l.contains("COMMAND"))
        .expect("table header");
    assert!(header.trim_start().starts_with("PID"), "{header}");
    assert!(
        header.contains("READ SYSCALLS ") && !header.contains("SYSCALLS/s"),
        "amounts, not rates: {header}"
    );
    assert!(
        lines[0].contains("Total DISK WRITE: 97.66 K |"),
        "{}",
        lines[0]
    );

    assert_eq!(
        app.state
            .on_key(key(KeyCode::Char('h')), Geometry::default()),
        Action::None
    );
    assert!(screen(120, 30, app.current.as_ref(), &app.state)
        .iter()
        .any(|l| l.contains("reverse the sort order")));
    assert_eq!(
        app.state
            .on_key(key(KeyCode::Char('x')), Geometry::default()),
        Action::None
    );
    assert!(!app.state.help, "any key closes the help");
    assert_eq!(
        app.state
            .on_key(key(KeyCode::Char('q')), Geometry::default()),
        Action::Quit
    );
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.state.on_key(ctrl_c, Geometry::default()), Action::Quit);
}

#[test]
fn sampling_errors_are_shown_not_fatal() {
    let (mut app, _commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    app.on_sample(SamplerEvent::Failed(
        "taskstats: netlink socket closed".into(),
    ));
    let lines = screen(80, 8, None, &app.state);
    assert!(
        lines.contains(&format!(
            "{:<80}",
            "refresh failed: taskstats: netlink socket closed"
        )),
        "{lines:#?}"
    );
    app.on_sample(SamplerEvent::Refresh(Box::new(refresh(vec![(
        SourceKind::Taskstats,
        busy_model(),
    )]))));
    assert!(app.state.error.is_none(), "a good refresh clears it");
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut state = state_for(sources(
        &[SourceKind::Taskstats, SourceKind::Ebpf],
        Vec::new(),
    ));
    let r = refresh(vec![
        (SourceKind::Taskstats, busy_model()),
        (SourceKind::Ebpf, busy_model()),
    ]);
    for (width, height) in [(0, 0), (1, 1), (5, 3), (12, 2), (20, 10)] {
        for shown in [Shown::Compare, Shown::Source(1)] {
            state.shown = shown;
            state.help = false;
            state.on_key(key(KeyCode::Char('/')), Geometry::default());
            screen(width, height, Some(&r), &state);
            state.on_key(key(KeyCode::Esc), Geometry::default());
            state.on_key(key(KeyCode::Char('h')), Geometry::default());
            let lines = screen(width, height, Some(&r), &state);
            if width >= 8 && height >= 3 {
                assert!(lines[0].contains("keys"), "the help box: {lines:#?}");
            }
        }
    }
}

#[test]
fn container_column_at_80x24() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    state.prio = HashMap::from([
        (4242, IoPrio::BestEffort(4)),
        (1, IoPrio::BestEffort(4)),
        (777, IoPrio::Idle),
    ]);
    let r = refresh(vec![(SourceKind::Taskstats, containers_model())]);
    // Where containers run, the column outranks the priority and the syscalls; a label longer
    // than the column ends in an ellipsis.
    let mut expected = vec![
        "Total DISK READ: 700.01 M/s | Total DISK WRITE: 212.00 M/s",
        "Actual DISK READ: 0.00 B/s | Actual DISK WRITE: 2.50 M/s",
        "sort: IO> ▼ | threads | ? help",
        "source: taskstats",
        "  TID USER  CONTAINER                  READ      WRITE     IO> COMMAND",
        "  777 bob   docker:3f2a9c1b7d4e  700.00 M/s 200.00 M/s 90.00 % rsync",
        " 4242 alice k8s:1a2b3c4d-5e6/4f…   0.00 B/s  12.00 M/s 25.00 % postgres: checkpo",
        "    1 root  host                   8.00 K/s   0.00 B/s  1.00 % systemd",
        "31337 root  host                   0.00 B/s   0.00 B/s  0.00 % kworker/u8:2-flus",
    ];
    expected.resize(24, "");
    assert_screen(&screen(80, 24, Some(&r), &state), &expected);

    // On a host without containers it is the first column dropped: 80 columns look as before.
    let host = refresh(vec![(
        SourceKind::Taskstats,
        labelled(busy_model(), &["host"; 4]),
    )]);
    let unlabelled = refresh(vec![(SourceKind::Taskstats, busy_model())]);
    assert_eq!(
        screen(80, 24, Some(&host), &state),
        screen(80, 24, Some(&unlabelled), &state)
    );
    let wide = screen(120, 10, Some(&host), &state);
    assert!(
        wide[4].starts_with("  TID PRIO USER  CONT       READ")
            && wide[5].starts_with("  777 idle bob   host 700.00 M/s"),
        "with room to spare:\n{}",
        wide.join("\n")
    );
    let unlabelled = screen(200, 10, Some(&unlabelled), &state);
    assert!(
        !unlabelled[4].contains("CONT"),
        "no labels, no column: {}",
        unlabelled[4]
    );
}

#[test]
fn narrow_terminal_drops_the_container_column_first() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let r = refresh(vec![(SourceKind::Taskstats, containers_model())]);
    assert_screen(
        &screen(50, 9, Some(&r), &state),
        &[
            "Total R: 700.01 M/s W: 212.00 M/s",
            "Actual R: 0.00 B/s W: 2.50 M/s",
            "sort: IO> ▼ | threads | ? help",
            "source: taskstats",
            "  TID USER    READ  WRITE IO> SYSCR/s COMMAND",
            "  777 bob   700M/s 200M/s 90%    5000 rsync",
            " 4242 alice   0B/s  12M/s 25%       0 postgres: ch",
            "    1 root  8.0K/s   0B/s  1%       4 systemd",
            "31337 root    0B/s   0B/s  0%       0 kworker/u8:2",
        ],
    );
    // Unless it is the sort column.
    state.sort = Column::Container;
    assert_screen(
        &screen(40, 9, Some(&r), &state),
        &[
            "Total R: 700.01 M/s W: 212.00 M/s",
            "Actual R: 0.00 B/s W: 2.50 M/s",
            "sort: CONTAINER ▲ | threads | ? help",
            "source: taskstats",
            "  TID CONTAINER            IO> COMMAND",
            "  777 docker:3f2a9c1b7d4e  90% rsync",
            "    1 host                  1% systemd",
            "31337 host                  0% kworker/u",
            " 4242 k8s:1a2b3c4d-5e6/4f… 25% postgres:",
        ],
    );
}

#[test]
fn v_shows_one_row_per_container() {
    let (mut app, mut commands) = app(state_for(sources(&[SourceKind::Taskstats], Vec::new())));
    app.on_sample(SamplerEvent::Refresh(Box::new(refresh(vec![(
        SourceKind::Taskstats,
        containers_model(),
    )]))));
    press(&mut app, KeyCode::Char('v'));
    press(&mut app, KeyCode::Char('v'));
    assert_eq!(
        commands.try_recv().ok(),
        Some(SamplerCommand::Rows {
            processes: true,
            containers: false,
            amounts: Amounts::Current
        }),
        "v: threads, then processes"
    );
    assert_eq!(
        commands.try_recv().ok(),
        Some(SamplerCommand::Rows {
            processes: true,
            containers: true,
            amounts: Amounts::Current
        }),
        "then containers"
    );
    let lines = screen(80, 12, app.current.as_ref(), &app.state);
    assert!(
        lines[2].starts_with("sort: IO> ▼ | containers (v: threads) | ? help"),
        "asked for at once: {}",
        lines[2]
    );
    assert_eq!(
        ids(&lines),
        [777, 4242, 1, 31337],
        "tasks until the next refresh"
    );

    app.on_sample(SamplerEvent::Refresh(Box::new(containers_refresh(
        containers_model(),
    ))));
    // PROCS where the id was, the whole label where the command was; no user, no priority.
    assert_screen(
        &screen(80, 10, app.current.as_ref(), &app.state),
        &[
            "Total DISK READ: 700.01 M/s | Total DISK WRITE: 212.00 M/s",
            "Actual DISK READ: 0.00 B/s | Actual DISK WRITE: 2.50 M/s",
            "sort: IO> ▼ | containers (v: threads) | ? help",
            "source: taskstats",
            "PROCS       READ      WRITE   SWAP     IO> SYSCR/s SYSCW/s CONTAINER",
            "    1 700.00 M/s 200.00 M/s 0.00 % 90.00 %    5000    1600 docker:3f2a9c1b7d4e",
            "    1   0.00 B/s  12.00 M/s 0.00 % 25.00 %       0     300 k8s:1a2b3c4d-5e6/4f1c",
            "    2   8.00 K/s   0.00 B/s 0.00 %  1.00 %       4       0 host",
            "",
            "",
        ],
    );
    let area = ratatui::layout::Rect::new(0, 0, 80, 10);
    assert_eq!(
        geometry(area, app.current.as_ref(), &app.state).1,
        Vec::<u32>::new(),
        "a container's PROCS is no task to read a priority of"
    );

    press(&mut app, KeyCode::Char('h'));
    let help = screen(100, 30, app.current.as_ref(), &app.state);
    for binding in [
        " v           threads, processes, containers: one row per …",
        " w           RCHAR and WCHAR columns",
        " /           filter commands or containers by regex",
    ] {
        assert!(
            help.iter().any(|l| l.contains(binding)),
            "{binding}: {help:#?}"
        );
    }
    press(&mut app, KeyCode::Esc);

    press(&mut app, KeyCode::Char('v'));
    assert_eq!(
        commands.try_recv().ok(),
        Some(SamplerCommand::Rows {
            processes: false,
            containers: false,
            amounts: Amounts::Current
        })
    );
    let lines = screen(80, 10, app.current.as_ref(), &app.state);
    assert!(lines[2].contains("| threads |"), "{}", lines[2]);
}

#[test]
fn container_view_from_the_options_and_its_sort_columns() {
    let view = ViewOptions {
        by_container: true,
        ..ViewOptions::default()
    };
    let mut state = ViewState::new(sources(&[SourceKind::Taskstats], Vec::new()), view, false);
    let r = containers_refresh(containers_model());
    let lines = screen(200, 10, Some(&r), &state);
    assert!(
        lines[2].contains("| containers (v: threads) |"),
        "{}",
        lines[2]
    );

    // Right steps through PROCS, the counters and the label; no user, priority or CONTAINER.
    state.sort = Column::Id;
    let mut seen = vec![state.sort];
    for _ in 0..7 {
        state.on_key(key(KeyCode::Right), Geometry::default());
        seen.push(state.sort);
    }
    assert_eq!(
        seen,
        [
            Column::Id,
            Column::Counter(Counter::ReadBytes),
            Column::Counter(Counter::WriteBytes),
            Column::Counter(Counter::SwapinDelay),
            Column::Counter(Counter::BlkioDelay),
            Column::Counter(Counter::Syscr),
            Column::Counter(Counter::Syscw),
            Column::Command,
        ]
    );
    let lines = screen(200, 10, Some(&r), &state);
    assert!(lines[2].starts_with("sort: CONTAINER ▲"), "{}", lines[2]);
    let labels: Vec<&str> = lines[5..8]
        .iter()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        labels,
        [
            "docker:3f2a9c1b7d4e",
            "host",
            "k8s:1a2b3c4d-5e6/4f1c2d3e4f5a"
        ]
    );
    state.on_key(key(KeyCode::Right), Geometry::default());
    assert_eq!(state.sort, Column::Id, "right wraps around");

    // Columns container rows lack give way to the default; the CONTAINER column to the label.
    let v = |state: &mut ViewState| state.on_key(key(KeyCode::Char('v')), Geometry::default());
    v(&mut state);
    state.sort = Column::User;
    // Threads, processes, then containers.
    v(&mut state);
    v(&mut state);
    assert_eq!(state.sort, Column::Counter(Counter::BlkioDelay));
    v(&mut state);
    state.sort = Column::Container;
    v(&mut state);
    v(&mut state);
    assert_eq!(state.sort, Column::Command);
}

#[test]
fn container_history_is_keyed_by_label() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    state.view.by_container = true;
    state.sort = Column::Counter(Counter::WriteBytes);
    // One process each: PROCS is 1 for both, so only the label tells them apart.
    let mut r = containers_refresh(containers_model());
    for (a, b) in [(1u64, 8u64), (2, 4), (4, 2), (8, 1)] {
        let tasks = [
            task(10, 0, "a", all([0, a << 20, 0, 0, 0, 1, 0, 0])),
            task(20, 0, "b", all([0, b << 20, 0, 0, 0, 1, 0, 0])),
        ];
        r = containers_refresh(labelled(
            model_of(&tasks, false),
            &["docker:aaaaaaaaaaaa", "docker:bbbbbbbbbbbb"],
        ));
        state.record(&r);
    }
    let lines = screen(140, 8, Some(&r), &state);
    let row = |label: &str| {
        lines
            .iter()
            .find(|l| l.trim_end().ends_with(label))
            .unwrap_or_else(|| panic!("no {label} row:\n{}", lines.join("\n")))
    };
    assert!(
        row("docker:aaaaaaaaaaaa").contains("    ▂▃▅█ "),
        "{lines:#?}"
    );
    assert!(
        row("docker:bbbbbbbbbbbb").contains("    █▅▃▂ "),
        "{lines:#?}"
    );
}

#[test]
fn slash_and_container_option_filter_by_container() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let r = refresh(vec![(SourceKind::Taskstats, containers_model())]);
    let g = Geometry::default();
    state.on_key(key(KeyCode::Char('/')), g);
    for c in "docker".chars() {
        state.on_key(key(KeyCode::Char(c)), g);
    }
    state.on_key(key(KeyCode::Enter), g);
    assert_eq!(
        ids(&screen(120, 12, Some(&r), &state)),
        [777],
        "rsync's label matches, though its command does not"
    );
    state.on_key(key(KeyCode::Char('/')), g);
    for _ in 0.."docker".len() {
        state.on_key(key(KeyCode::Backspace), g);
    }
    for c in "^host$|post".chars() {
        state.on_key(key(KeyCode::Char(c)), g);
    }
    state.on_key(key(KeyCode::Enter), g);
    let lines = screen(120, 12, Some(&r), &state);
    assert_eq!(ids(&lines), [4242, 1, 31337], "label or command");
    assert!(lines[2].contains("filter: /^host$|post/"), "{}", lines[2]);

    // In the container view the regex finds the label where the command was.
    let grouped = containers_refresh(containers_model());
    state.view.by_container = true;
    let lines = screen(80, 12, Some(&grouped), &state);
    let rows: Vec<&str> = lines[5..]
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 1, "{lines:#?}");
    assert!(rows[0].ends_with(" host"), "{}", rows[0]);

    // --container ID: a prefix of the label, in either view.
    state.on_key(key(KeyCode::Esc), g);
    state.view.containers = vec!["k8s:1a2b".into(), "podman".into()];
    let lines = screen(100, 12, Some(&grouped), &state);
    assert!(
        lines[5]
            .trim_end()
            .ends_with(" k8s:1a2b3c4d-5e6/4f1c2d3e4f5a")
            && lines[6].trim().is_empty(),
        "{lines:#?}"
    );
    state.view.by_container = false;
    assert_eq!(ids(&screen(120, 12, Some(&r), &state)), [4242]);
    state.view.containers = vec!["kube".into()];
    let lines = screen(120, 12, Some(&r), &state);
    assert_eq!(
        lines[5].trim_end(),
        "no task matches the filters",
        "{lines:#?}"
    );
}

#[test]
fn w_shows_rchar_and_wchar() {
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let r = refresh(vec![(SourceKind::Taskstats, busy_model())]);
    let header = |state: &ViewState| screen(200, 10, Some(&r), state)[4].clone();
    assert!(!header(&state).contains("RCHAR"), "{}", header(&state));
    state.on_key(key(KeyCode::Char('w')), Geometry::default());
    assert!(
        header(&state).contains("RCHAR") && header(&state).contains("WCHAR"),
        "{}",
        header(&state)
    );
    state.sort = Column::Counter(Counter::Wchar);
    state.on_key(key(KeyCode::Char('w')), Geometry::default());
    assert!(!header(&state).contains("RCHAR"), "{}", header(&state));
    assert_eq!(
        state.sort,
        Column::Counter(Counter::WriteBytes),
        "a hidden column sorts no more"
    );
}

#[test]
fn compare_mode_joins_containers_by_label() {
    let mut state = state_for(sources(
        &[SourceKind::Taskstats, SourceKind::Ebpf],
        Vec::new(),
    ));
    state.view.by_container = true;
    state.sort = Column::Counter(Counter::WriteBytes);
    let mut r = refresh(vec![
        (
            SourceKind::Taskstats,
            model::group_by_container(containers_model()),
        ),
        (
            SourceKind::Ebpf,
            model::group_by_container(containers_model()),
        ),
    ]);
    r.containers = true;
    assert_screen(
        &screen(100, 10, Some(&r), &state),
        &[
            "[taskstats] Total DISK READ: 700.01 M/s | Total DISK WRITE: 212.00 M/s",
            "[ebpf] Total DISK READ: 700.01 M/s | Total DISK WRITE: 212.00 M/s",
            "Actual DISK READ: 0.00 B/s | Actual DISK WRITE: 2.50 M/s",
            "sort: DISK WRITE ▼ | containers (v: threads) | compare (Tab: next) | ? help",
            "source: taskstats,ebpf | compare DISK WRITE per source, DIFF = ebpf - taskstats",
            "  PROCS  taskstats WRITE   ebpf WRITE          DIFF  CONTAINER",
            "      1       200.00 M/s   200.00 M/s     +0.00 B/s  docker:3f2a9c1b7d4e",
            "      1        12.00 M/s    12.00 M/s     +0.00 B/s  k8s:1a2b3c4d-5e6/4f1c2d3e4f5a",
            "      2         0.00 B/s     0.00 B/s     +0.00 B/s  host",
            "",
        ],
    );
}

fn with(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, modifiers)
}

/// What the prompt holds and where its cursor is, in characters.
fn prompt(state: &ViewState) -> (&str, usize) {
    let input = state.input.as_ref().expect("a prompt is open");
    (input.text(), input.line.cursor())
}

fn type_in(state: &mut ViewState, text: &str) {
    for c in text.chars() {
        state.on_key(key(KeyCode::Char(c)), Geometry::default());
    }
}

#[test]
fn the_filter_prompt_edits_like_a_line_editor() {
    let g = Geometry::default();
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    state.on_key(key(KeyCode::Char('/')), g);
    type_in(&mut state, "rsync kworker");
    assert_eq!(prompt(&state), ("rsync kworker", 13));

    state.on_key(key(KeyCode::Left), g);
    state.on_key(key(KeyCode::Left), g);
    type_in(&mut state, "X");
    assert_eq!(
        prompt(&state),
        ("rsync kworkXer", 12),
        "typing inserts at the cursor"
    );
    state.on_key(key(KeyCode::Right), g);
    state.on_key(key(KeyCode::Backspace), g);
    assert_eq!(
        prompt(&state),
        ("rsync kworkXr", 12),
        "Backspace deletes left"
    );
    state.on_key(key(KeyCode::Delete), g);
    assert_eq!(prompt(&state), ("rsync kworkX", 12), "Del deletes right");

    state.on_key(key(KeyCode::Home), g);
    assert_eq!(prompt(&state).1, 0);
    state.on_key(key(KeyCode::End), g);
    assert_eq!(prompt(&state).1, 12);
    state.on_key(with(KeyCode::Char('a'), KeyModifiers::CONTROL), g);
    assert_eq!(prompt(&state).1, 0, "Ctrl-A goes to the start");
    state.on_key(with(KeyCode::Char('e'), KeyModifiers::CONTROL), g);
    assert_eq!(prompt(&state).1, 12, "Ctrl-E goes to the end");

    state.on_key(with(KeyCode::Char('w'), KeyModifiers::CONTROL), g);
    assert_eq!(
        prompt(&state),
        ("rsync ", 6),
        "Ctrl-W deletes the word left"
    );
    type_in(&mut state, "dd");
    state.on_key(with(KeyCode::Backspace, KeyModifiers::ALT), g);
    assert_eq!(prompt(&state), ("rsync ", 6), "so does Alt-Backspace");

    state.on_key(key(KeyCode::Home), g);
    state.on_key(key(KeyCode::Right), g);
    state.on_key(key(KeyCode::Right), g);
    state.on_key(with(KeyCode::Char('k'), KeyModifiers::CONTROL), g);
    assert_eq!(prompt(&state), ("rs", 2), "Ctrl-K deletes to the end");
    assert_eq!(
        state.filter.as_ref().map(|re| re.as_str()),
        Some("rs"),
        "the filter follows every edit"
    );
    state.on_key(with(KeyCode::Char('u'), KeyModifiers::CONTROL), g);
    assert_eq!(prompt(&state), ("", 0), "Ctrl-U clears the line");
    assert!(state.filter.is_none(), "an empty pattern is no filter");

    type_in(&mut state, "sync");
    state.on_key(key(KeyCode::Enter), g);
    assert!(state.input.is_none(), "Enter keeps the filter");
    assert_eq!(state.filter.as_ref().map(|re| re.as_str()), Some("sync"));

    state.on_key(key(KeyCode::Char('/')), g);
    assert_eq!(
        prompt(&state),
        ("sync", 4),
        "the prompt opens on the filter, at its end"
    );
    state.on_key(with(KeyCode::Char('u'), KeyModifiers::CONTROL), g);
    type_in(&mut state, "dd");
    state.on_key(key(KeyCode::Esc), g);
    assert!(state.input.is_none());
    assert_eq!(
        state.filter.as_ref().map(|re| re.as_str()),
        Some("sync"),
        "Esc gives back the filter from before the prompt"
    );
}

#[test]
fn the_user_prompt_edits_the_same_way() {
    let g = Geometry::default();
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    state.on_key(key(KeyCode::Char('f')), g);
    type_in(&mut state, "root,alice");
    state.on_key(with(KeyCode::Char('w'), KeyModifiers::CONTROL), g);
    assert_eq!(prompt(&state), ("root,", 5));
    state.on_key(key(KeyCode::Home), g);
    type_in(&mut state, "q");
    assert_eq!(
        prompt(&state),
        ("qroot,", 1),
        "q is typed into the prompt, it does not quit"
    );
    assert!(
        state.view.uids.is_empty(),
        "the user filter waits for Enter"
    );
}

#[test]
fn the_prompt_shows_the_cursor_where_the_editor_has_it() {
    let g = Geometry::default();
    let mut state = state_for(sources(&[SourceKind::Taskstats], Vec::new()));
    let cursor = |state: &ViewState, width: u16| {
        let mut terminal = Terminal::new(TestBackend::new(width, 10)).expect("test terminal");
        terminal
            .draw(|f| {
                draw(f, None, state);
            })
            .expect("drawing");
        let at = terminal.get_cursor_position().expect("cursor");
        let buf = terminal.backend().buffer();
        let line: String = (0..width).map(|x| buf[(x, 9)].symbol()).collect();
        (line.trim_end().to_string(), at.x, at.y)
    };
    state.on_key(key(KeyCode::Char('/')), g);
    type_in(&mut state, "kworker");
    let label = "filter command or container (regex): ";
    let at_end = label.len() as u16 + 7;
    assert_eq!(cursor(&state, 80), (format!("{label}kworker"), at_end, 9));
    state.on_key(key(KeyCode::Home), g);
    assert_eq!(cursor(&state, 80).1, label.len() as u16);
    state.on_key(key(KeyCode::Right), g);
    assert_eq!(cursor(&state, 80).1, label.len() as u16 + 1);

    // Too long for the room after the label: the line scrolls to keep the cursor in sight.
    state.on_key(key(KeyCode::End), g);
    type_in(&mut state, "|rsync|systemd");
    let (line, x, _) = cursor(&state, 50);
    assert_eq!(
        x, 49,
        "the cursor after the last character, on the last cell"
    );
    assert_eq!(line, format!("{label}sync|systemd"));
    state.on_key(key(KeyCode::Home), g);
    let (line, x, _) = cursor(&state, 50);
    assert_eq!(x, label.len() as u16);
    assert_eq!(line, format!("{label}kworker|rsync"));
}

/// A replay's `j` asks for a time at the prompt line, with the editor the other prompts have;
/// while it is open every key is text (`q`, `t`), Enter asks the sampler for that time, Esc
/// cancels. `t`/`T` step the replay when no prompt is open.
#[test]
fn replay_keys_step_and_j_asks_for_a_time_at_the_prompt_line() {
    let mut state = state_for(sources(&[SourceKind::Procfs], procfs_unavailable()));
    state.replay = Some(super::replay::Replay { at: 3, count: 9 });
    let g = Geometry::default();
    let on = |state: &mut ViewState, code| state.on_key(key(code), g);
    assert_eq!(
        on(&mut state, KeyCode::Char('t')),
        Action::Sampler(SamplerCommand::Step(-1))
    );
    assert_eq!(
        on(&mut state, KeyCode::Char('T')),
        Action::Sampler(SamplerCommand::Step(1))
    );
    assert_eq!(on(&mut state, KeyCode::Char('j')), Action::None);
    for c in "03:0q".chars() {
        assert_eq!(
            on(&mut state, KeyCode::Char(c)),
            Action::None,
            "{c} is text"
        );
    }
    on(&mut state, KeyCode::Backspace);
    on(&mut state, KeyCode::Char('0'));
    assert_eq!(state.input.as_ref().map(|i| i.text()), Some("03:00"));
    assert_eq!(
        on(&mut state, KeyCode::Enter),
        Action::Sampler(SamplerCommand::Seek("03:00".into()))
    );
    assert!(state.input.is_none());
    on(&mut state, KeyCode::Char('j'));
    on(&mut state, KeyCode::Char('1'));
    assert_eq!(on(&mut state, KeyCode::Esc), Action::None);
    assert!(state.input.is_none(), "Esc cancels");
}
