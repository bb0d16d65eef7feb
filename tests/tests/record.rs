//! `profiler record` and `profiler replay` as a user meets them: a recording made while a
//! child does known I/O replays to the figures the live view showed for the same run; a
//! recording cut by kill -9 replays up to its last complete block; damaged files are one line
//! on stderr naming the file and the byte; --begin/--end pick the right records; a container
//! gone by the time of the replay keeps its recorded label.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use profiler_tests::{
    cgroup2_mount, profiler_bin, require_root, settle, Group, ProcIo, Run, Scratch, Workload,
};
use serde_json::Value;

fn profiler(args: &[&str]) -> Output {
    Command::new(profiler_bin())
        .args(args)
        .output()
        .expect("running profiler")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn task_of(object: &Value, pid: u32) -> Option<&Value> {
    object["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["pid"] == pid)
}

/// A recording of this test process (procfs), `records` samples `delay` apart: blocks of 60.
fn record_self(s: &Scratch, name: &str, records: u32, delay: &str) -> String {
    let file = s.path(name);
    let me = std::process::id().to_string();
    let n = records.to_string();
    let out = profiler(&[
        "record", "--source", "procfs", "-p", &me, "-d", delay, "-n", &n, "-o", &file,
    ]);
    assert!(out.status.success(), "record: {}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("recorded {records} samples")),
        "{}",
        stderr(&out)
    );
    file
}

/// Records with `source` while the live JSON view (-a) watches the same child do N writes of
/// B bytes; the replay with -a must end on the live figures, which are the child's I/O.
fn replay_matches_live(source: &str) {
    require_root();
    const N: u64 = 200;
    const B: u64 = 4096;
    let s = Scratch::new(&format!("record-live-{source}"));
    let rec = s.path("live.rec");
    let mut child = Workload::start(&[format!("write:{}:{N}:{B}", s.path("out"))]);
    let pid = child.pid().to_string();
    let recording = Run::start(&[
        "record", "--source", source, "-d", "0.25", "-n", "8", "-p", &pid, "-o", &rec,
    ]);
    let live = Run::start(&[
        "--source", source, "--json", "-a", "-d", "0.25", "-n", "6", "-p", &pid,
    ]);
    settle();
    child.run_ops();
    let (status, lines, err) = live.finish();
    assert!(status.success(), "live: {err}");
    let (status, _, err) = recording.finish();
    assert!(status.success(), "record: {err}");
    let live_last: Value = serde_json::from_str(lines.last().expect("live lines")).expect("JSON");
    let out = profiler(&["replay", &rec, "--json", "-a"]);
    assert!(out.status.success(), "replay: {}", stderr(&out));
    let replayed = json_lines(&out);
    assert_eq!(replayed.len(), 7, "8 records: a baseline and 7 refreshes");
    let last = replayed.last().expect("replayed lines");
    assert_eq!(last["source"], source);
    let from_live = task_of(&live_last, child.pid()).expect("the child, live");
    let from_replay = task_of(last, child.pid()).expect("the child, replayed");
    assert_eq!(from_replay["command"], "workload");
    assert_eq!(from_replay["delta"]["wchar"], N * B, "{from_replay}");
    if source != "taskstats" {
        // taskstats rounds every field down to 1024: 200 calls read as 0, live and replayed.
        assert_eq!(from_replay["delta"]["syscw"], N, "{from_replay}");
    }
    assert_eq!(
        from_replay["delta"], from_live["delta"],
        "replayed -a against live -a"
    );
    assert_eq!(from_replay["total"]["wchar"], from_live["total"]["wchar"]);
    // Each refresh carries its recorded time, and they move forward.
    let times: Vec<&str> = replayed
        .iter()
        .map(|o| o["time"].as_str().expect("time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    child.finish();
}

#[test]
fn replay_with_procfs_gives_the_live_figures() {
    replay_matches_live("procfs");
}

#[test]
fn replay_with_taskstats_gives_the_live_figures() {
    replay_matches_live("taskstats");
}

#[test]
fn replay_with_ebpf_gives_the_live_figures() {
    replay_matches_live("ebpf");
}

#[test]
fn batch_replay_prints_the_recorded_time() {
    let s = Scratch::new("record-batch");
    let file = record_self(&s, "b.rec", 4, "0.05");
    let out = profiler(&["replay", &file, "-b", "-t", "-qq"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = json_lines(&profiler(&["replay", &file, "--json"]));
    let text = String::from_utf8_lossy(&out.stdout);
    // -t prefixes each line with the recorded time of day (UTC here: TZ is not set).
    let first_time = &json[0]["time"].as_str().expect("time")[11..19];
    assert!(
        text.lines().next().expect("a line").starts_with(first_time),
        "{first_time} begins: {text}"
    );
    assert!(
        stderr(&out).contains("replay: ") && stderr(&out).contains("procfs recorded on"),
        "{}",
        stderr(&out)
    );
    // This test process is alive, but what its pid has now is not history: no priority.
    assert!(!text.contains("be/"), "{text}");
}

#[test]
fn sigterm_closes_the_open_block() {
    let s = Scratch::new("record-sigterm");
    let file = s.path("t.rec");
    let me = std::process::id().to_string();
    let mut child = Command::new(profiler_bin())
        .args([
            "record", "--source", "procfs", "-p", &me, "-d", "0.05", "-o",
        ])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("record");
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().expect("record ends");
    assert!(status.success(), "{status}");
    // Fewer than the 60 records that close a block: all were in the open one.
    let out = profiler(&["replay", &file, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let n = json_lines(&out).len();
    assert!(
        (5..59).contains(&n),
        "{n} refreshes after a second at 50 ms"
    );
}

#[test]
fn kill_9_leaves_what_was_written_before_the_open_block() {
    let s = Scratch::new("record-kill");
    let file = s.path("k.rec");
    let me = std::process::id().to_string();
    let mut child = Command::new(profiler_bin())
        .args([
            "record", "--source", "procfs", "-p", &me, "-d", "0.02", "-o",
        ])
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .expect("record");
    // Killed once two blocks of 60 records are written, while the third is open.
    let blocks = || {
        std::fs::read(&file)
            .unwrap_or_default()
            .windows(4)
            .filter(|w| w == b"RBLK")
            .count()
    };
    let started = std::time::Instant::now();
    while blocks() < 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "two blocks");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let out = profiler(&["replay", &file, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let n = json_lines(&out).len();
    assert!(
        n >= 119 && (n + 1).is_multiple_of(60),
        "whole blocks of 60 records, less the baseline: {n}"
    );
    // Cut inside the last block (as a crash while it was being written would): the blocks
    // before it replay, and the cut is named.
    let len = std::fs::metadata(&file).expect("size").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open");
    f.set_len(len - 10).expect("truncate");
    let out = profiler(&["replay", &file, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), n - 60, "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("ends inside a block"))
        .unwrap_or_else(|| panic!("says where it is cut: {err}"));
    assert!(line.contains(&file) && line.contains("at byte "), "{line}");
}

/// Where the first block's payload starts: after the preamble (18 bytes), the header body and
/// the 44-byte frame.
fn first_payload(bytes: &[u8]) -> usize {
    let header_len = u32::from_le_bytes(bytes[10..14].try_into().expect("4 bytes")) as usize;
    18 + header_len + 44
}

#[test]
fn bad_files_are_one_line_naming_the_file_and_the_byte() {
    let s = Scratch::new("record-bad");
    let good = record_self(&s, "good.rec", 130, "0.01");
    let bytes = std::fs::read(&good).expect("read");
    let write = |name: &str, data: &[u8]| {
        let p = s.path(name);
        std::fs::write(&p, data).expect("write");
        p
    };
    let empty = write("empty.rec", b"");
    let passwd = write("passwd.rec", b"root:x:0:0:root:/root:/bin/bash\n");
    let mut newer = bytes.clone();
    newer[8] = 3;
    let newer = write("newer.rec", &newer);
    let head_cut = write("head.rec", &bytes[..12]);
    let mut corrupt = bytes.clone();
    corrupt[first_payload(&bytes) + 5] ^= 0x40;
    let corrupt = write("corrupt.rec", &corrupt);
    let missing = s.path("missing.rec");

    // Nothing readable: exit 1, one line.
    for (file, says, at) in [
        (&empty, "the file is empty, not a recording", 0),
        (&passwd, "not a profiler recording", 0),
        (&newer, "recorded in format version 3", 8),
        (&head_cut, "ends inside the file header", 12),
        (&missing, "No such file", 0),
    ] {
        for view in ["--json", "-b"] {
            let out = profiler(&["replay", file, view]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{file}: {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(
                err.contains(file.as_str())
                    && err.contains(&format!("at byte {at}:"))
                    && err.contains(says),
                "{file} should say {says:?} at byte {at}: {err}"
            );
            assert!(out.stdout.is_empty());
        }
    }

    // A corrupt byte costs its block (60 records); the rest replays, exit 0.
    let out = profiler(&["replay", &corrupt, "--json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(json_lines(&out).len(), 130 - 60 - 1, "{err}");
    let at = first_payload(&bytes) - 44;
    assert!(
        err.contains(&format!(
            "{corrupt}: at byte {at}: corrupt: block checksum mismatch"
        )),
        "{err}"
    );

    // A header with no block after it (killed before the first block closed).
    let header_only = write("header-only.rec", &bytes[..first_payload(&bytes) - 44]);
    let out = profiler(&["replay", &header_only, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no samples"), "{}", stderr(&out));
}

#[test]
fn begin_and_end_select_the_records_in_range() {
    let s = Scratch::new("record-range");
    let file = record_self(&s, "r.rec", 30, "0.02");
    let all = json_lines(&profiler(&["replay", &file, "--json"]));
    assert_eq!(all.len(), 29);
    let time = |i: usize| all[i]["time"].as_str().expect("time").to_string();
    // Records 11 to 20: the 11th is the baseline, 9 refreshes follow.
    let (begin, end) = (time(9), time(18));
    let out = profiler(&["replay", &file, "--json", "--begin", &begin, "--end", &end]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<String> = json_lines(&out)
        .iter()
        .map(|o| o["time"].as_str().expect("time").to_string())
        .collect();
    let want: Vec<String> = (10..=18).map(time).collect();
    assert_eq!(got, want);

    // Past the end: nothing in range, said, exit 1.
    let out = profiler(&["replay", &file, "--json", "--begin", "2999-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no samples between --begin and --end"),
        "{}",
        stderr(&out)
    );
    // -1h is before the whole recording: everything.
    let out = profiler(&["replay", &file, "--json", "--begin", "-1h"]);
    assert_eq!(json_lines(&out).len(), 29, "{}", stderr(&out));

    for bad in ["yesterday", "25:61", "-3 fortnights"] {
        let out = profiler(&["replay", &file, "--json", "--begin", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("`{bad}` is not a time")), "{err}");
    }
    let out = profiler(&["replay", &file, "--json", "--begin", &end, "--end", &begin]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--begin is after --end"));
}

#[test]
fn record_refuses_bad_outputs_in_one_line() {
    let s = Scratch::new("record-output");
    let existing = s.path("there.rec");
    std::fs::write(&existing, b"x").expect("write");
    for (args, says) in [
        (
            vec!["record", "-o", "/no/such/dir/r.rec"],
            "the directory /no/such/dir does not exist",
        ),
        (vec!["record", "-o", "/tmp"], "is a directory"),
        (vec!["record", "--max-size", "5X"], "`5X` is not a size"),
        (vec!["record", "--max-size", "1k"], "at least 64K"),
        (
            vec!["record", "-o", &existing, "--keep", "0"],
            "exists: give --keep K",
        ),
        (
            vec!["record", "--source", "procfs,ebpf"],
            "record takes one source",
        ),
    ] {
        let out = profiler(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    }
}

#[test]
fn an_existing_recording_is_kept_as_file_1() {
    let s = Scratch::new("record-keep");
    let first = record_self(&s, "k.rec", 3, "0.02");
    let before = std::fs::read(&first).expect("read");
    record_self(&s, "k.rec", 5, "0.02");
    assert_eq!(
        std::fs::read(format!("{first}.1")).expect("k.rec.1"),
        before
    );
    // The series replays both, oldest first: 3 + 5 records, one baseline.
    let out = profiler(&["replay", &first, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let objects = json_lines(&out);
    assert_eq!(objects.len(), 7);
    let times: Vec<&str> = objects
        .iter()
        .map(|o| o["time"].as_str().expect("time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    // Across the restart the interval is the wall-clock gap, never zero or negative.
    assert!(objects.iter().all(|o| o["interval_s"].as_f64() > Some(0.0)));
}

/// The full-screen replay in a real terminal (tmux): the header shows the recorded time and
/// the place, `T`/`t` move one interval, `j` jumps to a time.
#[test]
fn full_screen_replay_steps_through_time() {
    let s = Scratch::new("record-tui");
    let file = record_self(&s, "tui.rec", 4, "1.1");
    let socket = format!("profiler-replay-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    struct Server<'a>(&'a dyn Fn(&[&str]) -> String);
    impl Drop for Server<'_> {
        fn drop(&mut self) {
            (self.0)(&["kill-server"]);
        }
    }
    let command = format!("{} replay {file}; sleep 60", profiler_bin().display());
    tmux(&["new-session", "-d", "-x", "120", "-y", "24", &command]);
    let _server = Server(&tmux);
    // The REPLAY part of the header once it shows `place`: (time, place).
    let wait_for = |place: &str| -> String {
        let started = std::time::Instant::now();
        loop {
            let screen = tmux(&["capture-pane", "-p"]);
            if let Some(at) = screen.find("REPLAY ") {
                let part: Vec<&str> = screen[at..].split_whitespace().take(4).collect();
                if part.get(3) == Some(&place) {
                    return format!("{} {}", part[1], part[2]);
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no {place} on screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = wait_for("1/3");
    tmux(&["send-keys", "T"]);
    let second = wait_for("2/3");
    assert!(second > first, "{second} after {first}");
    tmux(&["send-keys", "T", "T"]);
    let third = wait_for("3/3");
    assert!(third > second, "{third} after {second}; T stops at the end");
    tmux(&["send-keys", "t"]);
    assert_eq!(wait_for("2/3"), second);
    tmux(&["send-keys", "j"]);
    tmux(&["send-keys", "-l", "--", "-1h"]);
    tmux(&["send-keys", "Enter"]);
    assert_eq!(
        wait_for("1/3"),
        first,
        "-1h is before the recording: its start"
    );
    tmux(&["send-keys", "q"]);
}

/// `record --container` keeps only that container's tasks, and the replay labels them from
/// the cgroup ids recorded: eBPF's own, and for procfs (which has none) read at recording.
fn record_keeps_only_the_containers_asked_for(source: &str) {
    require_root();
    let s = Scratch::new(&format!("record-container-{source}"));
    let file = s.path("c.rec");
    let out = profiler(&[
        "record",
        "--source",
        source,
        "--container",
        "host",
        "-n",
        "3",
        "-d",
        "0.2",
        "-o",
        &file,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = profiler(&["replay", &file, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for object in json_lines(&out) {
        let tasks = object["tasks"].as_array().expect("tasks");
        assert!(!tasks.is_empty());
        assert!(tasks.iter().all(|t| t["container"] == "host"), "{object}");
    }
}

#[test]
fn record_keeps_only_the_containers_asked_for_with_ebpf() {
    record_keeps_only_the_containers_asked_for("ebpf");
}

#[test]
fn record_keeps_only_the_containers_asked_for_with_procfs() {
    record_keeps_only_the_containers_asked_for("procfs");
}

/// A container that is gone when the recording is replayed keeps the label it had when it was
/// recorded: the recording keeps each cgroup id's label, not only the id (whose directory is
/// gone by then, and whose inode the kernel may give to another group).
fn a_gone_container_keeps_its_recorded_label(source: &str) {
    require_root();
    let s = Scratch::new(&format!("record-gone-container-{source}"));
    let file = s.path("gone.rec");
    let id = format!("{:064x}", 0x9e37_79b9_u64 * u64::from(std::process::id()));
    let group = Group::new(format!("docker-{id}.scope"));
    let mut w = Workload::start(&[format!("write:{}:20:4096", s.path("w"))]);
    group.adopt(w.pid());
    w.run_ops();
    let wpid = w.pid();
    let pid = wpid.to_string();
    let out = profiler(&[
        "record", "--source", source, "-p", &pid, "-n", "2", "-d", "0.2", "-o", &file,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    w.finish();
    drop(group);
    assert!(!cgroup2_mount().join(format!("docker-{id}.scope")).exists());

    let out = profiler(&["replay", &file, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let objects = json_lines(&out);
    assert!(!objects.is_empty());
    let label = format!("docker:{}", &id[..12]);
    for object in objects {
        let task = task_of(&object, wpid).unwrap_or_else(|| panic!("no task {pid}: {object}"));
        assert_eq!(task["container"], label.as_str(), "{object}");
    }
}

#[test]
fn a_gone_container_keeps_its_recorded_label_with_ebpf() {
    a_gone_container_keeps_its_recorded_label("ebpf");
}

#[test]
fn a_gone_container_keeps_its_recorded_label_with_procfs() {
    a_gone_container_keeps_its_recorded_label("procfs");
}

/// `replay --openmetrics` gives, for every recorded refresh and at its recorded time, the
/// series `profiler serve` would have exported, and Prometheus' own backfill tool loads them:
/// the child's write_chars series ends on the bytes /proc says it wrote.
#[test]
fn openmetrics_replay_backfills_prometheus() {
    require_root();
    const N: u64 = 100;
    const B: u64 = 4096;
    let s = Scratch::new("record-openmetrics");
    let rec = s.path("om.rec");
    let mut child = Workload::start(&[format!("write:{}:{N}:{B}", s.path("out"))]);
    let pid = child.pid().to_string();
    let recording = Run::start(&[
        "record", "--source", "procfs", "-d", "0.25", "-n", "6", "-p", &pid, "-o", &rec,
    ]);
    settle();
    child.run_ops();
    let wrote = ProcIo::read(child.pid()).wchar;
    let (status, _, err) = recording.finish();
    assert!(status.success(), "record: {err}");

    let out = profiler(&["replay", &rec, "--openmetrics"]);
    assert!(out.status.success(), "replay: {}", stderr(&out));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let series = format!(
        "profiler_write_chars_bytes_total{{pid=\"{pid}\",command=\"workload\",user=\"root\","
    );
    let points: Vec<(u64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&series))
        .map(|l| {
            let mut fields = l.rsplitn(3, ' ');
            let at: f64 = fields
                .next()
                .and_then(|t| t.parse().ok())
                .expect("timestamp");
            let value: u64 = fields.next().and_then(|v| v.parse().ok()).expect("value");
            (value, at)
        })
        .collect();
    assert_eq!(
        points.len(),
        5,
        "6 records: a baseline and 5 refreshes\n{text}"
    );
    assert!(
        points
            .windows(2)
            .all(|w| w[0].1 < w[1].1 && w[0].0 <= w[1].0),
        "{points:?}"
    );
    assert_eq!(points.last().expect("points").0, wrote, "{text}");
    let out = profiler(&["replay", &rec, "--openmetrics", "-n", "2"]);
    let two = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(
        two.lines().filter(|l| l.starts_with(&series)).count(),
        2,
        "-n 2\n{two}"
    );

    let om = s.path("backfill.om");
    std::fs::write(&om, &text).expect("writing the backfill");
    let tsdb = s.path("tsdb");
    let promtool = |args: &[&str]| {
        let out = Command::new("promtool")
            .args(args)
            .output()
            .expect("running promtool (Debian's prometheus package)");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    promtool(&["tsdb", "create-blocks-from", "openmetrics", &om, &tsdb]);
    // The blocks alone are a database to read; `dump` also wants the (empty) write-ahead log.
    std::fs::create_dir_all(format!("{tsdb}/wal")).expect("creating tsdb/wal");
    let selector = format!("profiler_write_chars_bytes_total{{pid=\"{pid}\"}}");
    let dumped = promtool(&["tsdb", "dump", "--match", &selector, &tsdb]);
    let stored: Vec<u64> = dumped
        .lines()
        .filter_map(|l| l.rsplit(' ').nth(1)?.parse().ok())
        .collect();
    assert_eq!(
        stored,
        points.iter().map(|p| p.0).collect::<Vec<_>>(),
        "{dumped}"
    );
}
