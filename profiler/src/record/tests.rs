use crate::sample::Monotonic;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::format::{Header, UnavailableCounters, FRAME_LEN};
use super::*;
use crate::counter::{Counter, Counters};
use crate::fuzz::Rng;
use crate::sample::{Sample, TaskSample};
use crate::source::{IoSource, SourceError, SourceKind};

fn header() -> Header {
    Header {
        host_name: "box".into(),
        kernel_release: "6.1.0".into(),
        source: "procfs".into(),
        method: None,
        totals_since: "task start".into(),
        created_wall_ns: 1,
        counters: Counter::ALL.iter().map(|c| c.key().to_string()).collect(),
        unavailable: vec![UnavailableCounters {
            counters: vec!["swapin_delay_ns".into(), "a_future_counter".into()],
            reason: "no delay accounting".into(),
        }],
    }
}

fn task(tid: u32, tick: u64) -> TaskSample {
    let busy = tid.is_multiple_of(10);
    let c = if busy { tick * 4096 } else { 100 };
    TaskSample {
        tid,
        pid: tid - tid % 4,
        uid: (!tid.is_multiple_of(3)).then_some(tid % 5),
        command: format!("cmd{}", tid % 7).into(),
        start_time: (!tid.is_multiple_of(5)).then_some(u64::from(tid) * 3),
        cgroup_id: tid.is_multiple_of(2).then_some(u64::from(tid % 3)),
        counters: Counters {
            rchar: Some(c),
            wchar: Some(c / 2),
            syscr: Some(c / 100),
            read_bytes: Some(0),
            blkio_delay_ns: tid.is_multiple_of(4).then_some(tick),
            ..Default::default()
        },
        exited: false,
    }
}

const T0: u64 = 1_700_000_000;

/// Sample `tick` of a synthetic run: 40 tasks, a tenth of them busy, one exiting now and then.
fn sample(anchor: Monotonic, tick: u64) -> Sample {
    let mut tasks: Vec<TaskSample> = (100..140)
        .filter(|t| u64::from(*t) % 13 != tick % 13)
        .map(|t| task(t, tick))
        .collect();
    if tick.is_multiple_of(5) {
        let mut t = task(500 + tick as u32, tick);
        t.exited = true;
        tasks.push(t);
    }
    Sample {
        taken_at: anchor + Duration::from_secs(tick * 10),
        wall_time: UNIX_EPOCH + Duration::from_secs(T0 + tick * 10) + Duration::from_nanos(tick),
        tasks,
        lost_events: tick.is_multiple_of(2).then_some(tick),
        skipped_tasks: tick % 3,
        denied_tasks: 1,
        container_labels: Vec::new(),
    }
}

fn key(t: &TaskSample) -> (u32, Option<u64>, String, bool, Option<u32>, Option<u64>) {
    (
        t.tid,
        t.start_time,
        t.command.to_string(),
        t.exited,
        t.uid,
        t.cgroup_id,
    )
}

fn assert_same(a: &Sample, b: &Sample, a0: Monotonic, b0: Monotonic) {
    assert_eq!(a.wall_time, b.wall_time);
    assert_eq!(
        a.taken_at.saturating_duration_since(a0),
        b.taken_at.saturating_duration_since(b0)
    );
    assert_eq!(
        (a.lost_events, a.skipped_tasks, a.denied_tasks),
        (b.lost_events, b.skipped_tasks, b.denied_tasks)
    );
    let mut ta = a.tasks.clone();
    let mut tb = b.tasks.clone();
    ta.sort_by_key(key);
    tb.sort_by_key(key);
    assert_eq!(ta, tb);
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("profiler-record-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn limits(records: u32) -> BlockLimits {
    BlockLimits {
        records,
        ..Default::default()
    }
}

/// Writes `n` samples in blocks of `per_block`; returns them.
fn record(path: &Path, n: u64, per_block: u32) -> (Vec<Sample>, Monotonic) {
    let anchor = Monotonic::now();
    let samples: Vec<Sample> = (0..n).map(|i| sample(anchor, i)).collect();
    let mut w = Recorder::create(path, &header())
        .expect("create")
        .with_limits(limits(per_block));
    for s in &samples {
        w.append(s.clone()).expect("append");
    }
    w.finish().expect("finish");
    (samples, anchor)
}

fn read_all(path: &Path) -> (Vec<Sample>, Vec<RecordError>) {
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    for r in RecordingReader::open(path).expect("open") {
        match r {
            Ok(s) => ok.push(s),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

/// Offsets at which blocks start, from the frames.
fn block_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut at = header().encode().len();
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at);
        let stored = format::le_u32(&bytes[at + 8..at + 12]) as usize;
        at += FRAME_LEN + stored;
    }
    out
}

#[test]
fn samples_read_back_equal_to_what_was_written() {
    let path = tmp("roundtrip");
    let (written, _) = record(&path, 50, 7);
    let reader = RecordingReader::open(&path).expect("open");
    assert_eq!(reader.header(), &header());
    let read: Vec<Sample> = reader.map(|r| r.expect("sample")).collect();
    assert_eq!(read.len(), written.len());
    for (a, b) in written.iter().zip(&read) {
        assert_same(a, b, written[0].taken_at, read[0].taken_at);
    }
}

#[test]
fn random_samples_round_trip_exactly() {
    let mut rng = Rng::from_env("record round trip");
    let path = tmp("random");
    let anchor = Monotonic::now();
    let mut tasks: Vec<TaskSample> = Vec::new();
    let mut written = Vec::new();
    let mut w = Recorder::create(&path, &header())
        .expect("create")
        .with_limits(limits(1 + rng.below(9) as u32));
    for tick in 0..60u64 {
        // Tasks come and go, change labels, counters move, go backwards, become unmeasured.
        for _ in 0..rng.below(4) {
            tasks.push(task(1 + rng.below(60) as u32, rng.below(1000) as u64));
        }
        for _ in 0..rng.below(3) {
            if !tasks.is_empty() {
                let i = rng.below(tasks.len());
                tasks.remove(i);
            }
        }
        for t in &mut tasks {
            for counter in Counter::ALL {
                let x = t.counters.get_mut(counter);
                match rng.below(12) {
                    0 => *x = None,
                    1 => *x = Some(rng.next_u64()),
                    2 => *x = x.map(|x| x.wrapping_sub(3)),
                    3 | 4 => *x = Some(x.unwrap_or(0).wrapping_add(rng.below(5000) as u64)),
                    _ => {}
                }
            }
            t.exited = rng.below(10) == 0;
            if rng.below(20) == 0 {
                t.command = String::from_utf8_lossy(&rng.bytes(3)).into();
            }
        }
        let s = Sample {
            taken_at: anchor + Duration::from_millis(tick * 10 + rng.below(5) as u64),
            wall_time: UNIX_EPOCH + Duration::from_nanos(rng.next_u64() >> 2),
            tasks: tasks.clone(),
            lost_events: (rng.below(2) == 0).then(|| rng.next_u64() >> 1),
            skipped_tasks: rng.next_u64(),
            denied_tasks: rng.below(3) as u64,
            container_labels: Vec::new(),
        };
        w.append(s.clone()).expect("append");
        written.push(s);
    }
    w.finish().expect("finish");
    let read: Vec<Sample> = RecordingReader::open(&path)
        .expect("open")
        .map(|r| r.expect("sample"))
        .collect();
    assert_eq!(read.len(), written.len());
    for (a, b) in written.iter().zip(&read) {
        assert_same(a, b, written[0].taken_at, read[0].taken_at);
    }
}

#[test]
fn a_time_range_reads_only_its_samples() {
    let path = tmp("range");
    let (written, _) = record(&path, 100, 10);
    let at = |tick: u64| written[tick as usize].wall_time;
    let read: Vec<SystemTime> = RecordingReader::open(&path)
        .expect("open")
        .range(Some(at(25)), Some(at(42)))
        .map(|r| r.expect("sample").wall_time)
        .collect();
    assert_eq!(read, (25..=42).map(at).collect::<Vec<_>>());

    // Blocks outside the range are not even read: damage there goes unnoticed.
    let mut bytes = fs::read(&path).expect("read");
    let blocks = block_offsets(&bytes);
    bytes[blocks[0] + FRAME_LEN + 3] ^= 0xff;
    bytes[blocks[9] + FRAME_LEN + 3] ^= 0xff;
    fs::write(&path, &bytes).expect("write");
    let read: Vec<Sample> = RecordingReader::open(&path)
        .expect("open")
        .range(Some(at(25)), Some(at(42)))
        .map(|r| r.expect("sample"))
        .collect();
    assert_eq!(read.len(), 18);
}

#[test]
fn a_truncated_recording_replays_up_to_the_cut_and_says_where() {
    let path = tmp("truncated");
    record(&path, 30, 10);
    let bytes = fs::read(&path).expect("read");
    let last = *block_offsets(&bytes).last().expect("blocks");
    fs::write(&path, &bytes[..bytes.len() - 5]).expect("write");
    let (ok, errors) = read_all(&path);
    assert_eq!(ok.len(), 20);
    assert_eq!(errors.len(), 1);
    let msg = errors[0].to_string();
    assert_eq!(errors[0].offset, last as u64);
    assert!(
        msg.starts_with(&format!("{}: at byte {last}: ", path.display())),
        "{msg}"
    );
    assert!(msg.contains("ends inside a block"), "{msg}");

    // Cut inside the file header.
    fs::write(&path, &bytes[..12]).expect("write");
    let e = RecordingReader::open(&path).err().expect("error");
    assert!(
        e.to_string()
            .contains("at byte 12: the file ends inside the file header"),
        "{e}"
    );
}

#[test]
fn a_corrupt_byte_costs_its_block_only() {
    let path = tmp("corrupt");
    record(&path, 30, 10);
    let mut bytes = fs::read(&path).expect("read");
    let blocks = block_offsets(&bytes);
    bytes[blocks[1] + FRAME_LEN + 10] ^= 0x20;
    fs::write(&path, &bytes).expect("write");
    let (ok, errors) = read_all(&path);
    assert_eq!(ok.len(), 20, "the blocks before and after replay");
    assert_eq!(errors.len(), 1);
    let msg = errors[0].to_string();
    assert!(
        msg.contains(&format!(
            "at byte {}: corrupt: block checksum mismatch",
            blocks[1]
        )),
        "{msg}"
    );

    // A damaged frame: what precedes it replays, then reading stops.
    bytes[blocks[1] + FRAME_LEN + 10] ^= 0x20;
    bytes[blocks[1] + 20] ^= 1;
    fs::write(&path, &bytes).expect("write");
    let (ok, errors) = read_all(&path);
    assert_eq!(ok.len(), 10);
    assert!(
        errors[0].to_string().contains("frame checksum"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_newer_format_version_is_refused_by_name() {
    let path = tmp("newer");
    record(&path, 3, 10);
    let mut bytes = fs::read(&path).expect("read");
    bytes[8] = 3;
    fs::write(&path, &bytes).expect("write");
    let e = RecordingReader::open(&path).err().expect("error");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: at byte 8: recorded in format version 3, and this profiler reads versions 1 to \
             2: replay it with a newer profiler",
            path.display()
        )
    );
}

#[test]
fn an_empty_file_and_one_that_is_not_a_recording_are_told_apart() {
    let path = tmp("empty");
    fs::write(&path, b"").expect("write");
    let e = RecordingReader::open(&path).err().expect("error");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: at byte 0: the file is empty, not a recording",
            path.display()
        )
    );
    fs::write(&path, b"#!/bin/sh\necho hello\n").expect("write");
    let e = RecordingReader::open(&path).err().expect("error");
    assert!(
        e.to_string()
            .contains("at byte 0: not a profiler recording"),
        "{e}"
    );
    let e = RecordingReader::open(tmp("missing")).err().expect("error");
    assert!(
        e.to_string().contains("at byte 0: opening: No such file"),
        "{e}"
    );
}

#[test]
fn a_header_only_recording_has_no_samples() {
    let path = tmp("header-only");
    Recorder::create(&path, &header())
        .expect("create")
        .finish()
        .expect("finish");
    let (ok, errors) = read_all(&path);
    assert!(ok.is_empty() && errors.is_empty());
}

#[test]
fn a_recorder_dropped_without_finish_keeps_its_open_block() {
    let path = tmp("dropped");
    let anchor = Monotonic::now();
    let mut w = Recorder::create(&path, &header()).expect("create");
    for i in 0..5 {
        w.append(sample(anchor, i)).expect("append");
    }
    drop(w);
    assert_eq!(read_all(&path).0.len(), 5);
}

#[test]
fn damaged_recordings_never_panic_and_errors_say_where() {
    let path = tmp("fuzz-source");
    record(&path, 40, 6);
    let good = fs::read(&path).expect("read");
    let mut rng = Rng::from_env("recording reader");
    let bad = tmp("fuzz");
    for case in 0..300 {
        let mut bytes = good.clone();
        // With a cut only, every block before it replays whole.
        let mut whole = None;
        match rng.below(3) {
            0 => {
                bytes.truncate(rng.below(good.len() + 1));
                let blocks = block_offsets(&good);
                let ends = blocks.iter().skip(1).copied().chain([good.len()]);
                whole = Some(6 * ends.filter(|&e| e <= bytes.len()).count());
            }
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            _ => {
                let i = rng.below(bytes.len());
                let n = rng.below(64).min(bytes.len() - i);
                let noise = rng.bytes(n);
                bytes[i..i + n].copy_from_slice(&noise);
                bytes.truncate(i + n + rng.below(bytes.len() - i - n + 1));
            }
        }
        fs::write(&bad, &bytes).expect("write");
        let prefix = format!("{}: at byte ", bad.display());
        let check = |e: &RecordError| {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&prefix) && !msg.contains('\n'),
                "case {case}: {msg}"
            );
            assert!(e.offset <= bytes.len() as u64, "case {case}: {msg}");
        };
        match RecordingReader::open(&bad) {
            Err(e) => check(&e),
            Ok(reader) => {
                let mut samples = 0;
                for r in reader.take(1000) {
                    match r {
                        Ok(_) => samples += 1,
                        Err(e) => check(&e),
                    }
                }
                if let Some(whole) = whole {
                    assert_eq!(
                        samples,
                        whole.min(40),
                        "case {case}: cut at {}",
                        bytes.len()
                    );
                }
            }
        }
    }
}

#[test]
fn rotation_keeps_the_newest_history_within_the_bound() {
    let path = tmp("rotated");
    let anchor = Monotonic::now();
    let rotation = Rotation {
        max_bytes: 12_000,
        keep: 2,
    };
    let mut w = Recorder::create(&path, &header())
        .expect("create")
        .with_limits(limits(5))
        .with_rotation(rotation);
    for i in 0..200 {
        w.append(sample(anchor, i)).expect("append");
    }
    w.finish().expect("finish");
    let files = series(&path);
    assert_eq!(files.len(), 3, "{files:?}");
    let total: u64 = files
        .iter()
        .map(|f| fs::metadata(f).expect("stat").len())
        .sum();
    assert!(total <= rotation.max_bytes, "{total} bytes");
    let mut replay = ReplaySource::open(&files, None, None).expect("open");
    let mut times = Vec::new();
    loop {
        match replay.sample() {
            Ok(s) => times.push(s.wall_time),
            Err(SourceError::Replay(e)) if e.is_end() => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert_eq!(times.last(), Some(&sample(anchor, 199).wall_time));
    assert!(times.len() < 200 && times.len() > 20, "{}", times.len());
}

#[test]
fn replay_is_a_source_that_reports_what_was_recorded() {
    let path = tmp("replay");
    let (written, _) = record(&path, 12, 5);
    let mut replay = ReplaySource::open(
        std::slice::from_ref(&path),
        Some(written[2].wall_time),
        None,
    )
    .expect("open");
    assert_eq!(replay.kind(), SourceKind::Procfs);
    assert_eq!(replay.totals_since(), "task start");
    let unavailable = replay.unavailable();
    assert_eq!(unavailable.len(), 1);
    assert_eq!(unavailable[0].counters, [Counter::SwapinDelay]);
    assert_eq!(unavailable[0].reason, "no delay accounting");
    let first = replay.sample().expect("sample");
    assert_eq!(first.wall_time, written[2].wall_time);
    for _ in 3..12 {
        replay.sample().expect("sample");
    }
    let end = replay.sample().expect_err("end");
    let msg = end.to_string();
    assert!(msg.contains("end of the recording"), "{msg}");
}

#[test]
fn a_file_with_other_counters_maps_them_by_name() {
    let path = tmp("renamed");
    let mut h = header();
    h.counters = vec!["wchar".into(), "new_counter".into(), "rchar".into()];
    let mut w = Recorder::create(&path, &h).expect("create");
    w.append_record(&Record {
        wall_ns: 5,
        mono_ns: 0,
        lost_events: None,
        skipped_tasks: 0,
        denied_tasks: 0,
        tasks: vec![TaskRecord {
            labels: Labels {
                tid: 1,
                pid: 1,
                uid: None,
                command: "x".into(),
                start_time: None,
                cgroup_id: None,
            },
            values: vec![Some(2), Some(99), Some(1)],
            exited: false,
        }],
        container_labels: Vec::new(),
    })
    .expect("append");
    w.finish().expect("finish");
    let (ok, errors) = read_all(&path);
    assert!(errors.is_empty());
    let c = ok[0].tasks[0].counters;
    assert_eq!((c.rchar, c.wchar, c.syscr), (Some(1), Some(2), None));
}

/// A source as a recorder meets it: only what `header_for` asks of it.
struct Fake;

impl IoSource for Fake {
    fn kind(&self) -> SourceKind {
        SourceKind::Ebpf
    }
    fn sample(&mut self) -> Result<Sample, SourceError> {
        unreachable!("not sampled")
    }
    fn unavailable(&self) -> Vec<crate::source::Unavailable> {
        vec![crate::source::Unavailable {
            counters: &[Counter::CancelledWriteBytes, Counter::SwapinDelay],
            reason: "no tracepoint for these".into(),
        }]
    }
    fn totals_since(&self) -> &'static str {
        "probes attached"
    }
    fn method(&self) -> Option<&'static str> {
        Some("classic tracepoints")
    }
}

#[test]
fn a_replay_tells_what_the_recorded_source_told() {
    let proc_root = tmp("proc");
    fs::create_dir_all(proc_root.join("sys/kernel")).expect("mkdir");
    fs::write(proc_root.join("sys/kernel/hostname"), "db1\n").expect("write");
    fs::write(proc_root.join("sys/kernel/osrelease"), "5.10.0-28-amd64\n").expect("write");
    let h = header_for(&Fake, &proc_root);
    assert_eq!(
        (h.host_name.as_str(), h.kernel_release.as_str()),
        ("db1", "5.10.0-28-amd64")
    );

    // A header that records only some counters takes them from samples by name.
    let mut h = h;
    h.counters = vec!["wchar".into(), "rchar".into()];
    let path = tmp("told");
    let anchor = Monotonic::now();
    let mut w = Recorder::create(&path, &h).expect("create");
    w.append(sample(anchor, 1)).expect("append");
    w.finish().expect("finish");
    let mut replay = ReplaySource::open(std::slice::from_ref(&path), None, None).expect("open");
    assert_eq!(replay.kind(), SourceKind::Ebpf);
    assert_eq!(replay.method(), Some("classic tracepoints"));
    assert_eq!(replay.totals_since(), "probes attached");
    assert_eq!(replay.unavailable(), Fake.unavailable());
    let s = replay.sample().expect("sample");
    let t = s.tasks.iter().find(|t| t.tid == 110).expect("task 110");
    let want = task(110, 1).counters;
    assert_eq!(
        (t.counters.rchar, t.counters.wchar, t.counters.syscr),
        (want.rchar, want.wchar, None)
    );
}

/// A recording made by the version 1 writer (procfs, a `sleep` process, 3 samples) replays:
/// its blocks have no container labels, which version 2 added after the dictionary.
#[test]
fn a_version_1_recording_still_replays() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/record/testdata/v1.rec");
    let (ok, errors) = read_all(&path);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(ok.len(), 3);
    for s in &ok {
        assert!(s.container_labels.is_empty());
        let t = &s.tasks[0];
        assert_eq!((t.tid, t.pid, t.command.as_str()), (11527, 11527, "sleep"));
        assert!(t.counters.rchar.is_some());
    }
}

/// The labeller is asked once per cgroup id and block, for ids new to the block, when the
/// sample comes (its container may be gone by the time the block is encoded), and every
/// replayed sample of a block gets the labels of the block's ids.
#[test]
fn container_labels_are_kept_per_block() {
    let path = tmp("labels");
    let anchor = Monotonic::now();
    let mut w = Recorder::create(&path, &header())
        .expect("create")
        .with_limits(limits(2));
    let mut asked = Vec::new();
    for tick in 0..4 {
        let mut s = sample(anchor, tick);
        for (i, t) in s.tasks.iter_mut().enumerate() {
            t.cgroup_id = Some(100 + i as u64 % 2);
        }
        w.append_labelled(s, |_, id, _| {
            asked.push(id);
            (id == 100).then(|| "docker:0123456789ab".to_string())
        })
        .expect("append");
        assert_eq!(
            asked.len() as u64,
            2 * (tick / 2 + 1),
            "asked at tick {tick}"
        );
    }
    w.finish().expect("finish");
    // Two blocks of two records: each asks for both ids once.
    assert_eq!(asked, [100, 101, 100, 101]);
    let (ok, errors) = read_all(&path);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(ok.len(), 4);
    for s in &ok {
        assert_eq!(
            s.container_labels,
            [(100, "docker:0123456789ab".to_string())]
        );
    }
}

/// A block's samples wait to be encoded together, but no more than `PENDING_TASKS` tasks of
/// them: past that they are encoded at once, into the open block, and replay the same.
#[test]
fn pending_samples_are_bounded_and_replay_the_same() {
    let path = tmp("pending");
    let anchor = Monotonic::now();
    let mut w = Recorder::create(&path, &header()).expect("create");
    let big = |tick: u64| {
        let mut s = sample(anchor, tick);
        let tasks: Vec<TaskSample> = (0..6_000).map(|t| task(1000 + t, tick)).collect();
        s.tasks = tasks;
        s
    };
    let mut written = Vec::new();
    for tick in 0..5 {
        let s = big(tick);
        written.push(s.clone());
        w.append(s).expect("append");
        assert!(
            w.pending_tasks() <= writer::PENDING_TASKS,
            "{} tasks pending after sample {tick}",
            w.pending_tasks()
        );
    }
    assert!(w.pending_tasks() > 0, "the open block's last samples wait");
    w.finish().expect("finish");
    let (ok, errors) = read_all(&path);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(ok.len(), written.len());
    for (got, want) in ok.iter().zip(&written) {
        assert_eq!(got.tasks, want.tasks);
        assert_eq!(got.wall_time, want.wall_time);
    }
}
