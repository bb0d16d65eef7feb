//! Golden output of every view for one fixed snapshot: batch text, JSON, TUI screens and the
//! `/metrics` exposition. It pins what users and scrapers read, so that a refactor that
//! changes a key, a title, a unit or a column by accident fails here. A change in the output
//! is a bug unless it was meant, and then the snapshot is reviewed with `cargo insta review`.

use std::time::{Duration, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::counter::{Counter, PerCounter};
use crate::model::{self, Model, Row};
use crate::sample::Counters;
use crate::serve::exposition::{self, exported_name, Frame, SelfMetrics};
use crate::serve::select;
use crate::serve::series::Tracker;
use crate::session::{Snapshot, SourceModel};
use crate::source::{Fallback, SourceError, SourceKind, Unavailable};
use crate::users::UserNames;
use crate::view::batch::{self, BatchOptions};
use crate::view::lookup::Lookup;
use crate::view::tui::render::draw;
use crate::view::tui::sampler::Refresh;
use crate::view::tui::state::{Sources, ViewState};
use crate::view::{json, ViewOptions};

/// 2023-11-14T22:13:20Z: a fixed wall clock, so that the JSON time is the same every run.
fn fixed_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Counters in the order rchar, wchar, syscr, syscw, read_bytes, write_bytes,
/// cancelled_write_bytes, blkio_delay_ns, swapin_delay_ns.
fn counters(v: [Option<u64>; 9]) -> Counters {
    use Counter::*;
    let order = [
        Rchar,
        Wchar,
        Syscr,
        Syscw,
        ReadBytes,
        WriteBytes,
        CancelledWriteBytes,
        BlkioDelay,
        SwapinDelay,
    ];
    // Counter by counter, so that one added later is None here rather than a compile error.
    let mut c = Counters::default();
    for (counter, v) in order.into_iter().zip(v) {
        *c.get_mut(counter) = v;
    }
    c
}

#[expect(
    clippy::too_many_arguments,
    reason = "a row literal, one argument per field"
)]
fn row(
    tid: u32,
    pid: u32,
    uid: Option<u32>,
    command: &str,
    container: Option<&str>,
    total: Counters,
    delta: Counters,
    exited: bool,
) -> Row {
    Row {
        kind: crate::model::RowKind::Task,
        pid,
        tid: Some(tid),
        uid,
        command: command.into(),
        cgroup_id: None,
        start_time: Some(u64::from(tid) * 10),
        container: container.map(String::from),
        total,
        delta,
        exited,
    }
}

fn s(v: u64) -> Option<u64> {
    Some(v)
}

const DOCKER: Option<&str> = Some("docker:4f1c2d3e4f5a");

/// What taskstats saw: every counter, a process with two threads in a container, an exited
/// task, an idle one and one without a known uid or container.
fn taskstats_threads() -> Vec<Row> {
    vec![
        row(
            100,
            100,
            Some(0),
            "postgres",
            DOCKER,
            counters([
                s(9_000_000),
                s(4_000_000),
                s(900),
                s(400),
                s(2_000_000),
                s(3_000_000),
                s(4096),
                s(1_500_000_000),
                s(20_000_000),
            ]),
            counters([
                s(3_145_728),
                s(1_048_576),
                s(300),
                s(100),
                s(524_288),
                s(2_097_152),
                s(0),
                s(500_000_000),
                s(10_000_000),
            ]),
            false,
        ),
        row(
            101,
            100,
            Some(0),
            "pg-walwriter",
            DOCKER,
            counters([
                s(100_000),
                s(8_000_000),
                s(10),
                s(2000),
                s(0),
                s(8_000_000),
                s(0),
                s(300_000_000),
                s(0),
            ]),
            counters([
                s(4096),
                s(6_291_456),
                s(2),
                s(1500),
                s(0),
                s(6_291_456),
                s(0),
                s(200_000_000),
                s(0),
            ]),
            false,
        ),
        row(
            200,
            200,
            Some(0),
            "backup",
            Some("host"),
            counters([
                s(50_000_000),
                s(10),
                s(5000),
                s(1),
                s(40_000_000),
                s(0),
                s(0),
                s(3_000_000_000),
                s(0),
            ]),
            counters([
                s(20_971_520),
                s(10),
                s(2000),
                s(1),
                s(16_777_216),
                s(0),
                s(0),
                s(1_000_000_000),
                s(0),
            ]),
            true,
        ),
        row(
            300,
            300,
            None,
            "idle \\x1b",
            None,
            counters([s(10), s(0), s(1), s(0), s(0), s(0), s(0), s(0), s(0)]),
            counters([s(0), s(0), s(0), s(0), s(0), s(0), s(0), s(0), s(0)]),
            false,
        ),
    ]
}

/// What eBPF saw of the same tasks: no delays, no cancelled writes, and not the idle task.
fn ebpf_threads() -> Vec<Row> {
    vec![
        row(
            100,
            100,
            Some(0),
            "postgres",
            DOCKER,
            counters([
                s(9_000_100),
                s(4_000_000),
                s(901),
                s(400),
                s(2_000_000),
                s(3_000_000),
                None,
                None,
                None,
            ]),
            counters([
                s(3_145_828),
                s(1_048_576),
                s(301),
                s(100),
                s(520_192),
                s(2_097_152),
                None,
                None,
                None,
            ]),
            false,
        ),
        row(
            101,
            100,
            Some(0),
            "pg-walwriter",
            DOCKER,
            counters([
                s(100_000),
                s(8_000_000),
                s(10),
                s(2000),
                s(0),
                s(8_000_000),
                None,
                None,
                None,
            ]),
            counters([
                s(4096),
                s(6_291_456),
                s(2),
                s(1500),
                s(0),
                s(6_291_456),
                None,
                None,
                None,
            ]),
            false,
        ),
        row(
            200,
            200,
            Some(0),
            "backup",
            Some("host"),
            counters([
                s(50_000_000),
                s(10),
                s(5000),
                s(1),
                s(40_000_000),
                s(0),
                None,
                None,
                None,
            ]),
            counters([
                s(20_971_520),
                s(10),
                s(2000),
                s(1),
                s(16_777_216),
                s(0),
                None,
                None,
                None,
            ]),
            true,
        ),
    ]
}

fn model(rows: Vec<Row>, processes: bool, lost_events: Option<u64>) -> Model {
    Model {
        rows: if processes {
            model::group_processes(rows)
        } else {
            rows
        },
        interval_s: 2.0,
        lost_events,
        ..Model::default()
    }
}

fn snapshot(kinds: &[SourceKind], processes: bool) -> Snapshot {
    Snapshot {
        time: fixed_time(),
        models: kinds
            .iter()
            .map(|&kind| SourceModel {
                kind,
                model: match kind {
                    SourceKind::Ebpf => model(ebpf_threads(), processes, Some(3)),
                    _ => model(taskstats_threads(), processes, None),
                },
            })
            .collect(),
    }
}

const ONE: &[SourceKind] = &[SourceKind::Taskstats];
const EBPF: &[SourceKind] = &[SourceKind::Ebpf];
const BOTH: &[SourceKind] = &[SourceKind::Taskstats, SourceKind::Ebpf];

fn ebpf_unavailable() -> Vec<Unavailable> {
    vec![
        Unavailable {
            counters: &[Counter::BlkioDelay, Counter::SwapinDelay],
            reason: "measured only with kernel BTF (task iterator)".into(),
        },
        Unavailable {
            counters: &[Counter::CancelledWriteBytes],
            reason: "no tracepoint marks truncated dirty pages".into(),
        },
    ]
}

/// Nothing looked up on this machine: the fixture's tids may be live tasks here (kernel threads
/// have low tids), whose priorities and command lines would leak into the output.
fn no_lookup() -> Lookup {
    Lookup::new(std::path::Path::new("/nonexistent"), |_| None)
}

fn batch_text(kinds: &[SourceKind], processes: bool, view: &ViewOptions) -> String {
    let opts = BatchOptions {
        time_prefix: false,
        quiet: 0,
        processes,
    };
    let mut lookup = no_lookup();
    batch::render(&snapshot(kinds, processes), view, &opts, &mut lookup, true).join("\n")
}

#[test]
fn batch() {
    let view = ViewOptions::default();
    insta::assert_snapshot!("batch_threads", batch_text(ONE, false, &view));
    insta::assert_snapshot!("batch_processes_ebpf", batch_text(EBPF, true, &view));
    insta::assert_snapshot!("batch_compare", batch_text(BOTH, false, &view));
    let accumulated = ViewOptions {
        accumulated: true,
        kilobytes: true,
        only: true,
        ..ViewOptions::default()
    };
    insta::assert_snapshot!(
        "batch_accumulated_only_kilobytes",
        batch_text(ONE, true, &accumulated)
    );
}

/// iotop-c's options in batch mode: PRIO where iotop prints it, profiler's own columns hidden
/// (iotop's layout), exited tasks left out, SI units that move on at twice their size.
#[test]
fn batch_with_iotop_c_options() {
    use crate::settings::{Column, Settings, Threshold};
    use crate::view::lookup::IoPrio;
    let mut settings = Settings {
        hide_exited: true,
        si: true,
        threshold: Threshold::new(2).expect("in range"),
        ..Settings::default()
    };
    for (column, shown) in [
        (Column::Prio, true),
        (Column::Chars, false),
        (Column::Syscalls, false),
    ] {
        settings.columns.insert(column, shown);
    }
    let view = ViewOptions::from_settings(&settings);
    let opts = BatchOptions::default();
    // Priorities come from a syscall: faked; no /proc, so commands stay the sampled names.
    let mut lookup = Lookup::new(std::path::Path::new("/nonexistent"), |tid| {
        Some(if tid == 101 {
            IoPrio::Idle
        } else {
            IoPrio::BestEffort(4)
        })
    });
    let text = batch::render(&snapshot(ONE, false), &view, &opts, &mut lookup, true).join("\n");
    insta::assert_snapshot!("batch_iotop_c_options", text);
    settings.columns = [Column::Pid, Column::User, Column::Command]
        .into_iter()
        .map(|c| (c, false))
        .collect();
    settings.full_command = true;
    let view = ViewOptions::from_settings(&settings);
    let text = batch::render(&snapshot(ONE, false), &view, &opts, &mut lookup, true).join("\n");
    insta::assert_snapshot!("batch_hidden_columns", text);
}

fn json_line(kinds: &[SourceKind], processes: bool) -> String {
    let fallbacks = [Fallback {
        kind: SourceKind::Taskstats,
        error: SourceError::TaskstatsDenied {
            advice: "run as root".into(),
        },
    }];
    let mut lookup = no_lookup();
    json::render(
        &snapshot(kinds, processes),
        &ViewOptions::default(),
        &fallbacks,
        &mut lookup,
    )
}

#[test]
fn json() {
    insta::assert_snapshot!("json_threads", json_line(ONE, false));
    insta::assert_snapshot!("json_processes_ebpf", json_line(EBPF, true));
    insta::assert_snapshot!("json_compare", json_line(BOTH, false));
}

fn screen(kinds: &[SourceKind], processes: bool, width: u16, height: u16) -> String {
    screen_with(kinds, processes, false, width, height)
}

fn screen_with(
    kinds: &[SourceKind],
    processes: bool,
    char_columns: bool,
    width: u16,
    height: u16,
) -> String {
    let unavailable = kinds
        .iter()
        .filter(|&&k| k == SourceKind::Ebpf)
        .flat_map(|&k| ebpf_unavailable().into_iter().map(move |u| (k, u)))
        .collect();
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let sources = Sources {
        kinds: kinds.to_vec(),
        line: format!("source: {}", names.join(",")),
        unavailable,
    };
    let mut state = ViewState::new(sources, ViewOptions::default(), processes);
    state.users.insert(0, "root".into());
    if char_columns {
        state
            .settings
            .toggle_column(crate::settings::Column::Chars, false);
    }
    let refresh = Refresh::new(snapshot(kinds, processes), processes, false, false, None);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|f| {
            draw(f, Some(&refresh), &state);
        })
        .expect("drawing");
    let buf = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            let line: String = (0..width).map(|x| buf[(x, y)].symbol()).collect();
            format!("{line}|")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn tui() {
    for (w, h) in [(120, 30), (80, 24)] {
        insta::assert_snapshot!(format!("tui_threads_{w}x{h}"), screen(ONE, false, w, h));
        insta::assert_snapshot!(
            format!("tui_processes_ebpf_{w}x{h}"),
            screen(EBPF, true, w, h)
        );
        insta::assert_snapshot!(format!("tui_compare_{w}x{h}"), screen(BOTH, false, w, h));
        insta::assert_snapshot!(
            format!("tui_char_columns_{w}x{h}"),
            screen_with(ONE, false, true, w, h)
        );
    }
}

fn exposition_text(per_thread: bool, openmetrics: bool) -> String {
    let snapshot = snapshot(EBPF, !per_thread);
    let rows = &snapshot.models[0].model.rows;
    let unavailable = [
        Counter::CancelledWriteBytes,
        Counter::BlkioDelay,
        Counter::SwapinDelay,
    ];
    let mut tracker = Tracker::new(2, PerCounter::from_fn(|c| !unavailable.contains(&c)));
    // The rows' uids are all 0, whose name is root everywhere.
    let (tasks, other, observed) = select(
        &mut tracker,
        &mut UserNames::default(),
        &[],
        per_thread,
        rows,
    );
    let frame = Frame {
        per_thread,
        tasks,
        other,
        meta: SelfMetrics {
            source: "ebpf".into(),
            fallbacks: vec![("taskstats".into(), "taskstats: refused".into())],
            unavailable: unavailable
                .iter()
                .map(|&c| (exported_name(c), format!("reason {}", c as usize)))
                .collect(),
            misses_exits: None,
            samples: 2,
            sample_errors: 0,
            last_sample_duration_s: 0.25,
            interval_s: 2.0,
            lost_events: Some(3),
            skipped_tasks: 1,
            observed_tasks: observed as u64,
        },
    };
    let rendered = exposition::render(frame);
    let bytes = if openmetrics {
        rendered.openmetrics
    } else {
        rendered.text
    };
    String::from_utf8(bytes.to_vec()).expect("utf-8 exposition")
}

#[test]
fn metrics() {
    insta::assert_snapshot!("metrics_openmetrics", exposition_text(false, true));
    insta::assert_snapshot!("metrics_text", exposition_text(false, false));
    insta::assert_snapshot!("metrics_per_thread", exposition_text(true, true));
}
