//! Source selection and comparison through the `profiler` binary: the three sources agree on a
//! child's known I/O, `auto` says why it passed over a source, a forced source that cannot work
//! is exit code 2, and iotop's view options (-P -a -o -u -k -t -q) act on real output.

use std::collections::HashSet;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use profiler_tests::{profiler_bin, require_root, settle, ProcIo, Run, Scratch, Workload};
use serde_json::{json, Value};

/// Sizes that are not multiples of 1024 and counts that cross 1024, so that taskstats'
/// rounding shows in each of rchar, wchar, syscr and syscw.
const READS: u64 = 1100;
const READ_B: u64 = 2000;
const WRITES: u64 = 1200;
const WRITE_B: u64 = 1000;

const CHAR_COUNTERS: [&str; 4] = ["rchar", "wchar", "syscr", "syscw"];

/// What the workload of [`known_ops`] does, by counter name.
fn known(counter: &str) -> u64 {
    match counter {
        "rchar" => READS * READ_B,
        "wchar" => WRITES * WRITE_B,
        "syscr" => READS,
        "syscw" => WRITES,
        other => panic!("no known value for {other}"),
    }
}

fn known_ops(s: &Scratch, tag: &str) -> Vec<String> {
    let input = s.file(&format!("{tag}-in"), (READS * READ_B) as usize);
    vec![
        format!("read:{input}:{READS}:{READ_B}"),
        format!("write:{}:{WRITES}:{WRITE_B}", s.path(&format!("{tag}-out"))),
    ]
}

/// A child that stays stopped and never does I/O; dropping it kills it.
fn idle_child() -> Workload {
    Workload::start(&[])
}

/// Rounded down as taskstats rounds every I/O field (KB_MASK).
fn kb(x: u64) -> u64 {
    x & !1023
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Runs to the end and expects success; stdout lines.
fn finish_ok(run: Run) -> (Vec<String>, String) {
    let (status, lines, err) = run.finish();
    assert!(status.success(), "profiler failed ({status}): {err}");
    (lines, err)
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn tasks(refresh: &Value) -> &Vec<Value> {
    refresh["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks array in {refresh}"))
}

/// The entry of `id` (its tid, or its pid with -P), if shown.
fn find<'a>(refresh: &'a Value, key: &str, id: u32) -> Option<&'a Value> {
    tasks(refresh).iter().find(|t| t[key] == id)
}

fn entry<'a>(refresh: &'a Value, key: &str, id: u32) -> &'a Value {
    find(refresh, key, id).unwrap_or_else(|| panic!("no task with {key} {id} in {refresh}"))
}

fn counter(counters: &Value, name: &str) -> u64 {
    counters[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} is not a number in {counters}"))
}

fn ids(refresh: &Value, key: &str) -> HashSet<u64> {
    tasks(refresh)
        .iter()
        .map(|t| t[key].as_u64().expect("numeric id"))
        .collect()
}

/// A batch row split into cells: units ("K/s", "%", …) stay with their number.
fn cells(line: &str) -> Vec<String> {
    const UNITS: [&str; 11] = [
        "B", "K", "M", "G", "T", "B/s", "K/s", "M/s", "G/s", "T/s", "%",
    ];
    let mut out: Vec<String> = Vec::new();
    for token in line.split_whitespace() {
        match out.last_mut() {
            Some(last) if UNITS.contains(&token) => {
                last.push(' ');
                last.push_str(token);
            }
            _ => out.push(token.to_owned()),
        }
    }
    out
}

/// Batch rows of thread (or process) `id`, each split into cells.
fn rows(lines: &[String], id: u32) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| cells(l))
        .filter(|c| c.first().is_some_and(|first| *first == id.to_string()))
        .collect()
}

// ── the three sources agree ─────────────────────────────────────────────────────────────────

#[test]
fn three_sources_agree_on_a_known_workload_in_one_compare_run() {
    require_root();
    let s = Scratch::new("sources-compare-json");
    let mut child = Workload::start(&known_ops(&s, "w"));
    let pid = child.pid();
    let run = Run::start(&[
        "--source",
        "taskstats,ebpf,procfs",
        "--json",
        "-b",
        "-n",
        "2",
        "-d",
        "1",
        "-p",
        &pid.to_string(),
    ]);
    settle();
    child.run_ops();
    let (lines, _) = finish_ok(run);
    let refreshes = json_lines(&lines);
    assert_eq!(refreshes.len(), 2, "two refreshes: {lines:?}");
    let first = &refreshes[0];
    assert_eq!(first["source"], "taskstats,ebpf,procfs");
    assert_eq!(first["fallbacks"], json!([]), "nothing was skipped");
    let task = entry(first, "tid", pid);
    assert_eq!(task["command"], "workload");
    assert!(
        task.get("total").is_none() && task.get("delta").is_none(),
        "compare mode has by_source instead of total/delta: {task}"
    );
    let by = &task["by_source"];
    let (taskstats, ebpf, procfs) = (&by["taskstats"], &by["ebpf"], &by["procfs"]);
    for name in CHAR_COUNTERS {
        let want = known(name);
        assert_eq!(counter(&ebpf["delta"], name), want, "ebpf {name}: {task}");
        assert_eq!(
            counter(&procfs["delta"], name),
            want,
            "procfs {name}: {task}"
        );
        // The child is stopped while every source samples it, so all read the same totals.
        let after = counter(&procfs["total"], name);
        let before = after - counter(&procfs["delta"], name);
        assert_eq!(
            counter(&taskstats["total"], name),
            kb(after),
            "taskstats' total {name} is /proc's rounded down to 1024: {task}"
        );
        assert_eq!(
            counter(&taskstats["delta"], name),
            kb(after) - kb(before),
            "taskstats' delta {name} is the difference of rounded totals: {task}"
        );
    }
    // eBPF's task iterator reads the very counters of /proc/PID/io, since the task started.
    for name in [
        "rchar",
        "wchar",
        "syscr",
        "syscw",
        "read_bytes",
        "write_bytes",
        "cancelled_write_bytes",
    ] {
        assert_eq!(
            counter(&ebpf["total"], name),
            counter(&procfs["total"], name),
            "ebpf total {name} is /proc's: {task}"
        );
    }
    // Nothing ran in the second interval: no source may show movement.
    let still = &entry(&refreshes[1], "tid", pid)["by_source"];
    for source in ["taskstats", "ebpf", "procfs"] {
        for name in CHAR_COUNTERS {
            assert_eq!(
                counter(&still[source]["delta"], name),
                0,
                "{source} {name} of a stopped child: {still}"
            );
        }
    }
    child.finish();
}

#[test]
fn every_source_lists_the_same_threads_idle_ones_included() {
    require_root();
    const THREADS: usize = 6;
    let mut child = Workload::start(&[format!("threads:{THREADS}")]);
    child.run_ops();
    let pid = child.pid();
    let run = Run::start(&[
        "--source",
        "taskstats,ebpf,procfs",
        "--json",
        "-b",
        "-n",
        "1",
        "-p",
        &pid.to_string(),
    ]);
    let (lines, _) = finish_ok(run);
    let refresh = &json_lines(&lines)[0];
    let want: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("listing the child's threads")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .parse::<u64>()
                .expect("a tid")
        })
        .collect();
    assert_eq!(want.len(), THREADS + 1, "the child and its idle threads");
    assert_eq!(ids(refresh, "tid"), want, "one row per thread: {refresh}");
    for task in tasks(refresh) {
        for source in ["taskstats", "ebpf", "procfs"] {
            assert!(
                task["by_source"][source]["total"].is_object(),
                "{source} lists thread {} although it did no I/O: {task}",
                task["tid"]
            );
        }
    }
    child.finish();
}

#[test]
fn batch_compare_shows_a_row_per_source_and_their_difference() {
    require_root();
    let s = Scratch::new("sources-compare-text");
    let mut child = Workload::start(&known_ops(&s, "w"));
    let pid = child.pid();
    let run = Run::start(&[
        "--source",
        "taskstats,ebpf,procfs",
        "-b",
        "-n",
        "1",
        "-d",
        "1",
        "-p",
        &pid.to_string(),
    ]);
    settle();
    child.run_ops();
    let (lines, _) = finish_ok(run);
    for source in ["taskstats", "ebpf", "procfs"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("[{source}] Total DISK READ: "))),
            "a totals line for {source}: {lines:#?}"
        );
    }
    let header = lines
        .iter()
        .find(|l| l.contains("COMMAND"))
        .unwrap_or_else(|| panic!("column names: {lines:#?}"));
    assert_eq!(
        cells(header),
        [
            "TID", "USER", "SOURCE", "DISK", "READ", "DISK", "WRITE", "RCHAR", "WCHAR", "SYSCR",
            "SYSCW", "COMMAND"
        ]
    );
    let at = lines
        .iter()
        .position(|l| cells(l).first().is_some_and(|c| *c == pid.to_string()))
        .unwrap_or_else(|| panic!("a row for {pid}: {lines:#?}"));
    let block: Vec<Vec<String>> = lines[at..].iter().take(4).map(|l| cells(l)).collect();
    assert_eq!(
        block.len(),
        4,
        "three source rows and a diff row: {lines:#?}"
    );
    assert_eq!(
        block[0][..3],
        [pid.to_string(), "root".into(), "taskstats".into()]
    );
    assert_eq!(block[0].last().map(String::as_str), Some("workload"));
    // Below the first row only the source names its row; cells: DISK READ, DISK WRITE,
    // RCHAR, WCHAR, SYSCR, SYSCW.
    let values = |row: &[String], name: &str| -> Vec<i64> {
        let at = row
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{name} row: {row:?}"));
        row[at + 1..at + 7]
            .iter()
            .map(|c| {
                c.parse()
                    .unwrap_or_else(|_| panic!("{name}: {c} is not a number: {row:?}"))
            })
            .collect()
    };
    let taskstats = values(&block[0], "taskstats");
    let ebpf = values(&block[1], "ebpf");
    let procfs = values(&block[2], "procfs");
    let diff = values(&block[3], "diff");
    assert_eq!(
        block[1].len(),
        7,
        "ebpf row has no id, user or command: {:?}",
        block[1]
    );
    for (i, name) in CHAR_COUNTERS.iter().enumerate() {
        let want = known(name) as i64;
        assert_eq!(ebpf[2 + i], want, "ebpf {name}: {block:?}");
        assert_eq!(procfs[2 + i], want, "procfs {name}: {block:?}");
        assert!(
            taskstats[2 + i] <= want && want - taskstats[2 + i] < 2048,
            "taskstats {name} is the workload within its rounding: {block:?}"
        );
    }
    for k in 0..6 {
        assert_eq!(
            diff[k],
            procfs[k] - taskstats[k],
            "diff is the last source minus the first: {block:?}"
        );
    }
    assert!(
        block[3]
            .iter()
            .skip(1)
            .all(|c| c.starts_with('+') || c.starts_with('-')),
        "diff cells are signed: {:?}",
        block[3]
    );
    child.finish();
}

// ── auto: which source, and why not the others ──────────────────────────────────────────────

/// `capsh --drop=cap_net_admin -- -c 'exec PROFILER ARGS'`, started: root without CAP_NET_ADMIN.
fn without_cap_net_admin(args: &str) -> Child {
    Command::new("capsh")
        .args(["--drop=cap_net_admin", "--", "-c"])
        .arg(format!("exec {} {args}", profiler_bin().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running capsh")
}

#[test]
fn auto_without_cap_net_admin_picks_ebpf_and_says_why() {
    require_root();
    let batch = without_cap_net_admin("-b -n 1 -d 0.2");
    let json = without_cap_net_admin("--json -n 1 -d 0.2");
    let out = batch.wait_with_output().expect("waiting for capsh");
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let said: Vec<&str> = err.lines().filter(|l| l.starts_with("source: ")).collect();
    assert_eq!(said.len(), 1, "the choice is said once: {err}");
    let line = said[0];
    assert!(
        line.starts_with("source: ebpf (taskstats: ") && line.ends_with(')'),
        "{line}"
    );
    assert!(
        line.contains("EPERM") && line.contains("CAP_NET_ADMIN"),
        "names taskstats' refusal and what it needs: {line}"
    );
    assert!(
        text(&out.stdout).starts_with("Total DISK READ: "),
        "{}",
        text(&out.stdout)
    );

    let out = json.wait_with_output().expect("waiting for capsh");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let refresh: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(refresh["source"], "ebpf", "{refresh}");
    let fallbacks = refresh["fallbacks"].as_array().expect("fallbacks");
    assert_eq!(fallbacks.len(), 1, "{refresh}");
    assert_eq!(fallbacks[0]["source"], "taskstats");
    let why = fallbacks[0]["error"].as_str().expect("error text");
    assert!(
        why.starts_with("taskstats: ") && why.contains("CAP_NET_ADMIN"),
        "{why}"
    );
}

/// `unshare -U -r PROFILER ARGS`: root inside a user namespace, no capability outside it.
fn in_user_namespace(args: &[&str]) -> Output {
    output(
        Command::new("unshare")
            .args(["-U", "-r"])
            .arg(profiler_bin())
            .args(args),
    )
}

fn assert_taskstats_and_ebpf_reasons(err: &str) {
    assert!(
        err.contains("taskstats: the kernel refused the TASKSTATS query (EPERM)")
            && err.contains("CAP_NET_ADMIN in the initial user namespace"),
        "taskstats' reason: {err}"
    );
    assert!(
        err.contains("ebpf: not permitted to load eBPF programs")
            && err.contains("Operation not permitted")
            && err.contains("CAP_BPF"),
        "ebpf's reason: {err}"
    );
}

#[test]
fn auto_in_a_user_namespace_fails_naming_every_source() {
    require_root();
    // The host's tasks belong to the initial user namespace: procfs may read none of theirs.
    let out = in_user_namespace(&["-b", "-n", "1", "-d", "0.2"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        out.stdout.is_empty(),
        "no rows of zeros: {}",
        text(&out.stdout)
    );
    assert!(
        err.starts_with("profiler: no source works here:\n"),
        "{err}"
    );
    assert_taskstats_and_ebpf_reasons(&err);
    assert!(
        err.contains("  procfs: the I/O counters of ") && err.contains("CAP_SYS_PTRACE"),
        "procfs' reason: {err}"
    );
    assert!(
        err.contains("profiler: this runs in a user namespace")
            && !err.contains("profiler: run as root"),
        "says that the user namespace is the obstacle, where root is no help: {err}"
    );
    assert!(!err.contains("source: "), "no source was chosen: {err}");
}

#[test]
fn auto_in_a_user_namespace_uses_procfs_for_its_own_process() {
    require_root();
    let child = Command::new("unshare")
        .args(["-U", "-r", "sh", "-c"])
        .arg(format!(
            "exec {} -b -n 1 -d 0.2 -p $$",
            profiler_bin().display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running unshare");
    // unshare and sh exec, so the child's pid is the profiler's, watching itself.
    let pid = child.id();
    let out = child.wait_with_output().expect("waiting for unshare");
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("source: "))
        .unwrap_or_else(|| panic!("a source line: {err}"));
    assert!(line.starts_with("source: procfs (taskstats: "), "{line}");
    assert!(line.contains("; ebpf: "), "{line}");
    assert_taskstats_and_ebpf_reasons(line);
    // procfs opened, so the failure message never comes: the hint must be said anyway.
    assert!(
        err.contains("profiler: this runs in a user namespace")
            && err.contains("runs in a user namespace (uid_map \"0 0 1\")"),
        "says that the user namespace is the obstacle: {err}"
    );
    let stdout = text(&out.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let row = rows(&lines, pid);
    assert_eq!(row.len(), 1, "its own row: {stdout}");
    assert_eq!(row[0].last().map(String::as_str), Some("profiler"));
}

#[test]
fn forced_source_that_cannot_work_is_exit_code_2_with_its_reason() {
    require_root();
    for (source, says) in [
        (
            "taskstats",
            &["profiler: taskstats: ", "EPERM", "CAP_NET_ADMIN"][..],
        ),
        ("ebpf", &["profiler: ebpf: not permitted", "CAP_BPF"][..]),
        (
            "procfs,taskstats",
            &["profiler: taskstats: ", "CAP_NET_ADMIN"][..],
        ),
    ] {
        let out = in_user_namespace(&["--source", source, "-b", "-n", "1", "-d", "0.2"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--source {source}: {err}");
        assert!(
            out.stdout.is_empty(),
            "--source {source}: {}",
            text(&out.stdout)
        );
        for s in says {
            assert!(err.contains(s), "--source {source} should say {s:?}: {err}");
        }
        assert!(
            !err.contains("no source works"),
            "a forced source is not auto: {err}"
        );
    }
}

#[test]
fn forced_procfs_shows_the_readable_tasks_and_says_what_is_hidden() {
    require_root();
    let out = in_user_namespace(&["--source", "procfs", "-b", "-n", "1", "-d", "0.2"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("not readable") || l.contains("not shown"))
        .collect();
    assert_eq!(warnings.len(), 1, "said once: {err}");
    assert!(warnings[0].contains("CAP_SYS_PTRACE"), "{}", warnings[0]);
    assert!(
        !warnings[0].contains("--source procfs"),
        "no advice to do what was done: {}",
        warnings[0]
    );
    assert!(
        text(&out.stdout).contains("  profiler"),
        "its own row: {}",
        text(&out.stdout)
    );
}

#[test]
fn list_sources_in_a_user_namespace_says_why_each_falls_short() {
    require_root();
    let out = in_user_namespace(&["--list-sources"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.is_empty(),
        "everything is in the list, nothing logged: {err}"
    );
    let stdout = text(&out.stdout);
    let status = |kind: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{kind:<10} ")))
            .unwrap_or_else(|| panic!("a line for {kind}: {stdout}"))
    };
    assert!(
        status("taskstats").contains("unavailable: taskstats: ")
            && status("taskstats").contains("CAP_NET_ADMIN"),
        "{stdout}"
    );
    assert!(
        status("ebpf").contains("unavailable: ebpf: not permitted")
            && status("ebpf").contains("CAP_BPF"),
        "{stdout}"
    );
    assert!(
        status("procfs").contains("partly available: the I/O counters of ")
            && status("procfs").contains("CAP_SYS_PTRACE"),
        "{stdout}"
    );
}

// ── view options on real output ─────────────────────────────────────────────────────────────

#[test]
fn processes_in_json_are_entries_without_tid() {
    require_root();
    let s = Scratch::new("sources-processes");
    let mut child = Workload::start(&known_ops(&s, "w"));
    let pid = child.pid();
    let run = Run::start(&[
        "--source", "procfs", "--json", "-P", "-b", "-n", "1", "-d", "1",
    ]);
    settle();
    child.run_ops();
    let (lines, _) = finish_ok(run);
    let refresh = &json_lines(&lines)[0];
    let all = tasks(refresh);
    assert!(all.len() > 1, "every process: {refresh}");
    for t in all {
        assert!(t.get("tid").is_none(), "a process has no tid: {t}");
    }
    assert_eq!(
        ids(refresh, "pid").len(),
        all.len(),
        "one entry per process"
    );
    let threads = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count();
    assert!(threads > 1, "the test harness runs tests on threads");
    let me = entry(refresh, "pid", std::process::id());
    assert!(
        me.get("tid").is_none(),
        "the test's own threads are one entry: {me}"
    );
    let task = entry(refresh, "pid", pid);
    let proc_io = ProcIo::read(pid);
    for (name, total) in [
        ("rchar", proc_io.rchar),
        ("wchar", proc_io.wchar),
        ("syscr", proc_io.syscr),
        ("syscw", proc_io.syscw),
    ] {
        assert_eq!(counter(&task["delta"], name), known(name), "{task}");
        assert_eq!(counter(&task["total"], name), total, "/proc/PID/io: {task}");
    }
    child.finish();
}

#[test]
fn accumulated_delta_keeps_the_first_refresh_io() {
    require_root();
    let s = Scratch::new("sources-accumulated");
    let mut early = Workload::start(&[format!("write:{}:{WRITES}:{WRITE_B}", s.path("a"))]);
    let mut late = Workload::start(&[format!("write:{}:500:3000", s.path("b"))]);
    let pids = [
        "-p".to_string(),
        early.pid().to_string(),
        "-p".into(),
        late.pid().to_string(),
    ];
    let pids: Vec<&str> = pids.iter().map(String::as_str).collect();
    let common = [
        &["--source", "procfs", "--json", "-b", "-n", "2", "-d", "1"][..],
        &pids,
    ]
    .concat();
    let mut acc = Run::start(&[&common[..], &["-a"]].concat());
    let mut plain = Run::start(&common);
    settle();
    early.run_ops();
    let acc_first = json_lines(&[acc.line()]).remove(0);
    let plain_first = json_lines(&[plain.line()]).remove(0);
    late.run_ops();
    let (acc_rest, _) = finish_ok(acc);
    let (plain_rest, _) = finish_ok(plain);
    let acc_second = &json_lines(&acc_rest)[0];
    let plain_second = &json_lines(&plain_rest)[0];
    let wchar =
        |refresh: &Value, w: &Workload| counter(&entry(refresh, "tid", w.pid())["delta"], "wchar");
    for first in [&acc_first, &plain_first] {
        assert_eq!(wchar(first, &early), WRITES * WRITE_B, "{first}");
        assert_eq!(wchar(first, &late), 0, "{first}");
    }
    assert_eq!(
        wchar(acc_second, &early),
        WRITES * WRITE_B,
        "-a: the second refresh still counts the first one's I/O: {acc_second}"
    );
    assert_eq!(wchar(acc_second, &late), 500 * 3000, "{acc_second}");
    assert_eq!(wchar(plain_second, &early), 0, "without -a: {plain_second}");
    assert_eq!(wchar(plain_second, &late), 500 * 3000, "{plain_second}");
    early.finish();
    late.finish();
}

#[test]
fn only_leaves_out_idle_tasks() {
    require_root();
    let s = Scratch::new("sources-only");
    let mut busy = Workload::start(&known_ops(&s, "w"));
    let idle = idle_child();
    let (b, i) = (busy.pid().to_string(), idle.pid().to_string());
    let common = [
        "--source", "procfs", "--json", "-b", "-n", "1", "-d", "1", "-p", &b, "-p", &i,
    ];
    let only = Run::start(&[&common[..], &["-o"]].concat());
    let all = Run::start(&common);
    settle();
    busy.run_ops();
    let only = &json_lines(&finish_ok(only).0)[0];
    let all = &json_lines(&finish_ok(all).0)[0];
    assert_eq!(
        ids(all, "tid"),
        HashSet::from([busy.pid().into(), idle.pid().into()]),
        "{all}"
    );
    assert_eq!(
        ids(only, "tid"),
        HashSet::from([busy.pid().into()]),
        "-o: {only}"
    );
    let idle_delta = &entry(all, "tid", idle.pid())["delta"];
    for name in CHAR_COUNTERS {
        assert_eq!(counter(idle_delta, name), 0, "{all}");
    }
    busy.finish();
    drop(idle);
}

/// A process of user `nobody` (65534), running as such by the time this returns.
struct NobodyProcess(Child);

impl NobodyProcess {
    fn start() -> NobodyProcess {
        let child = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sleep",
                "30",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting setpriv");
        let status = format!("/proc/{}/status", child.id());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let s = std::fs::read_to_string(&status).unwrap_or_default();
            if s.contains("Name:\tsleep") && s.contains("Uid:\t65534") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "setpriv did not become nobody: {s}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        NobodyProcess(child)
    }
}

impl Drop for NobodyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn user_filter_by_name_or_uid() {
    require_root();
    let root = idle_child();
    let nobody = NobodyProcess::start();
    let (r, n) = (root.pid().to_string(), nobody.0.id().to_string());
    let runs: Vec<(&[&str], HashSet<u64>)> = vec![
        (&["-u", "root"], HashSet::from([root.pid().into()])),
        (&["-u", "65534"], HashSet::from([nobody.0.id().into()])),
        (
            &["-u", "nobody", "-u", "0"],
            HashSet::from([root.pid().into(), nobody.0.id().into()]),
        ),
    ];
    let children: Vec<Child> = runs
        .iter()
        .map(|(users, _)| {
            Command::new(profiler_bin())
                .args([
                    "--source", "procfs", "--json", "-b", "-n", "1", "-d", "0.2", "-p", &r, "-p",
                    &n,
                ])
                .args(*users)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting profiler")
        })
        .collect();
    for ((users, want), child) in runs.iter().zip(children) {
        let out = child.wait_with_output().expect("profiler output");
        assert!(out.status.success(), "{users:?}: {}", text(&out.stderr));
        let refresh = &json_lines(
            &text(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )[0];
        assert_eq!(&ids(refresh, "tid"), want, "{users:?}: {refresh}");
        for t in tasks(refresh) {
            let (uid, user) = if t["tid"] == root.pid() {
                (0, "root")
            } else {
                (65534, "nobody")
            };
            assert_eq!(t["uid"], uid, "{t}");
            assert_eq!(t["user"], user, "{t}");
        }
    }
    drop(root);
}

#[test]
fn kilobytes_print_every_amount_in_k() {
    require_root();
    let s = Scratch::new("sources-kilobytes");
    let mut child = Workload::start(&known_ops(&s, "w"));
    let pid = child.pid();
    let p = pid.to_string();
    let common = [
        "--source", "procfs", "-b", "-k", "-n", "1", "-d", "1", "-p", &p,
    ];
    let rates = Run::start(&common);
    let accumulated = Run::start(&[&common[..], &["-a"]].concat());
    settle();
    child.run_ops();
    let (rates, _) = finish_ok(rates);
    let (accumulated, _) = finish_ok(accumulated);

    let totals = &rates[0];
    assert!(totals.starts_with("Total DISK READ: "), "{rates:#?}");
    for amount in totals.split(" | ").take(2) {
        assert!(amount.ends_with(" K/s"), "{amount} in {totals}");
    }
    let row = &rows(&rates, pid)[0];
    // TID PRIO USER DISK-READ DISK-WRITE SWAPIN IO> READ WRITE SYSCR SYSCW COMMAND
    for cell in [&row[3], &row[4], &row[7], &row[8]] {
        assert!(cell.ends_with(" K/s"), "{cell} in {row:?}");
    }
    let rate = |cell: &str| -> f64 {
        cell.trim_end_matches(" K/s")
            .parse()
            .unwrap_or_else(|_| panic!("{cell}"))
    };
    // The ops take a fraction of the ~1 s interval, so the rate is the workload over about 1 s.
    let wrote_k = (WRITES * WRITE_B) as f64 / 1024.0;
    assert!(
        (wrote_k * 0.8..=wrote_k * 1.05).contains(&rate(&row[8])),
        "WRITE {} is about {wrote_k:.2} K/s: {row:?}",
        row[8]
    );

    assert_eq!(
        accumulated[0],
        format!(
            "Total DISK READ: {} | Total DISK WRITE: {} | READ SYSCALLS: {READS} | WRITE SYSCALLS: {WRITES}",
            rows(&accumulated, pid)[0][3],
            rows(&accumulated, pid)[0][4]
        ),
        "-a: amounts, not rates"
    );
    let row = &rows(&accumulated, pid)[0];
    assert_eq!(
        row[7],
        format!("{:.2} K", (READS * READ_B) as f64 / 1024.0),
        "{row:?}"
    );
    assert_eq!(row[8], format!("{:.2} K", wrote_k), "{row:?}");
    assert_eq!(
        row[9..12],
        [READS.to_string(), WRITES.to_string(), "workload".into()]
    );
    child.finish();
}

/// Local time of day as HH:MM:SS.
fn now_hms() -> String {
    let out = output(Command::new("date").arg("+%H:%M:%S"));
    text(&out.stdout).trim().to_owned()
}

fn is_hms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 8
        && b[2] == b':'
        && b[5] == b':'
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && s[..2] < *"24"
        && s[3..5] < *"60"
        && s[6..] < *"60"
}

#[test]
fn time_prefixes_every_line_and_implies_batch() {
    require_root();
    let child = idle_child();
    let before = now_hms();
    // No -b: -t implies batch mode, as in iotop.
    let out = output(Command::new(profiler_bin()).args([
        "--source",
        "procfs",
        "-t",
        "-n",
        "2",
        "-d",
        "0.3",
        "-p",
        &child.pid().to_string(),
    ]));
    let after = now_hms();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        6,
        "totals, column names and the row, twice: {stdout}"
    );
    for line in &lines {
        let time = &line[..9];
        assert!(is_hms(&time[..8]) && time.ends_with(' '), "{line}");
        // Midnight between `before` and `after` would put `after` first.
        if before <= after {
            assert!(
                (before.as_str()..=after.as_str()).contains(&&time[..8]),
                "{line} is between {before} and {after}"
            );
        }
    }
    assert!(lines[0][9..].starts_with("Total DISK READ: "), "{stdout}");
    assert!(
        lines[1][9..].trim_start().starts_with("TID  PRIO  USER"),
        "{stdout}"
    );
    assert!(
        lines[2][9..]
            .trim_start()
            .starts_with(&child.pid().to_string()),
        "{stdout}"
    );
    drop(child);
}

#[test]
fn quiet_drops_header_lines_as_iotop_does() {
    require_root();
    let child = idle_child();
    let pid = child.pid();
    let p = pid.to_string();
    // No -b with -q: -q implies batch mode, as in iotop.
    let runs: Vec<(&[&str], usize, usize)> = vec![
        // (flags, totals lines, column-name lines)
        (&["-b"], 3, 3),
        (&["-q"], 3, 1),
        (&["-qq"], 3, 0),
        (&["-qqq"], 0, 0),
    ];
    let children: Vec<Child> = runs
        .iter()
        .map(|(flags, _, _)| {
            Command::new(profiler_bin())
                .args(["--source", "procfs", "-n", "3", "-d", "0.2", "-p", &p])
                .args(*flags)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting profiler")
        })
        .collect();
    for ((flags, totals, columns), child) in runs.iter().zip(children) {
        let out = child.wait_with_output().expect("profiler output");
        assert!(out.status.success(), "{flags:?}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
        let kind = |l: &String| {
            if l.starts_with("Total DISK READ: ") {
                'T'
            } else if l.trim_start().starts_with("TID  PRIO  USER") {
                'C'
            } else if cells(l).first().is_some_and(|c| *c == p) {
                'R'
            } else {
                panic!("{flags:?}: unexpected line {l:?} in {stdout}")
            }
        };
        let kinds: String = lines.iter().map(kind).collect();
        assert_eq!(
            kinds.matches('T').count(),
            *totals,
            "{flags:?} totals: {stdout}"
        );
        assert_eq!(
            kinds.matches('C').count(),
            *columns,
            "{flags:?} column names: {stdout}"
        );
        assert_eq!(
            kinds.matches('R').count(),
            3,
            "{flags:?} one row a refresh: {stdout}"
        );
        if *columns == 1 {
            assert!(
                kinds.starts_with("TCR"),
                "{flags:?}: column names in the first refresh: {stdout}"
            );
        }
    }
    drop(child);
}
