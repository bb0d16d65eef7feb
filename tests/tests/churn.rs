//! Truth under churn and abuse: tasks that exit, ids the kernel hands out again, bursts of
//! exits, closed pipes and absurd arguments. Every churn here is bounded in count and time.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use profiler_tests::{profiler_bin, require_root, settle, Run, Scratch, Workload};
use serde_json::Value;

fn objects(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `-a` with rows per process or per container: a thread writes N×B bytes and exits while
/// the process goes on; every refresh after that must still count its bytes, and no refresh
/// may count fewer than the one before.
fn accumulated_group_keeps_an_exited_thread(source: &str, group: &str) {
    require_root();
    const N: u64 = 256;
    const B: u64 = 4096;
    let s = Scratch::new(&format!("churn-acc-{source}-{group}"));
    // The thread lingers past a refresh, so that procfs, which sees only live threads, sees
    // its writes too.
    let mut child = Workload::start(&[format!("thread-write:{}:{N}:{B}:700", s.path("out"))]);
    let pid = child.pid().to_string();
    let run = Run::start(&[
        "--source", source, "--json", "-a", "--group", group, "-n", "6", "-d", "0.4", "-p", &pid,
    ]);
    settle();
    child.run_ops();
    let (status, lines, err) = run.finish();
    assert!(status.success(), "{err}");
    let objects = objects(&lines);
    assert_eq!(objects.len(), 6, "{lines:?}");
    let mut last = 0;
    let mut seen = false;
    for o in &objects {
        let tasks = o["tasks"].as_array().expect("tasks");
        // Sources that list only tasks doing I/O have no row before the writes.
        if tasks.is_empty() && !seen {
            continue;
        }
        seen = true;
        assert_eq!(
            tasks.len(),
            1,
            "one row for the one process, to the end: {lines:?}"
        );
        let wchar = tasks[0]["delta"]["wchar"].as_u64().unwrap_or(0);
        assert!(
            wchar >= last,
            "{source} --group {group} -a went down from {last} to {wchar}: {lines:?}"
        );
        last = wchar;
    }
    assert_eq!(
        last,
        N * B,
        "{source} --group {group} -a keeps the exited thread's bytes: {lines:?}"
    );
    child.finish();
}

#[test]
fn accumulated_processes_keep_exited_threads_ebpf() {
    accumulated_group_keeps_an_exited_thread("ebpf", "process");
}

#[test]
fn accumulated_processes_keep_exited_threads_taskstats() {
    accumulated_group_keeps_an_exited_thread("taskstats", "process");
}

#[test]
fn accumulated_processes_keep_exited_threads_procfs() {
    accumulated_group_keeps_an_exited_thread("procfs", "process");
}

#[test]
fn accumulated_containers_keep_exited_threads_ebpf() {
    accumulated_group_keeps_an_exited_thread("ebpf", "container");
}

#[test]
fn accumulated_containers_keep_exited_threads_procfs() {
    accumulated_group_keeps_an_exited_thread("procfs", "container");
}

/// Runs `profiler ARGS`, reads up to `first` bytes of its stdout (or of its stderr, when
/// `from_stderr`), then closes both pipes; returns the exit status. Bounded: after `limit`
/// it is sent SIGTERM.
fn with_closed_pipes(
    args: &[&str],
    from_stderr: bool,
    first: usize,
    limit: Duration,
) -> std::process::ExitStatus {
    let mut child = Command::new(profiler_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting profiler");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut buf = vec![0u8; first];
    let read = if from_stderr {
        stderr.read(&mut buf)
    } else {
        stdout.read(&mut buf)
    };
    assert!(read.expect("reading") > 0, "{args:?} said nothing");
    drop(stdout);
    drop(stderr);
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            return status;
        }
        if Instant::now() > deadline {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            return child.wait().expect("waiting");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_closed_pipe_ends_every_mode_quietly() {
    require_root();
    for (args, from_stderr) in [
        (&["--list-sources"][..], false),
        (&["-b", "-d", "0.1", "-n", "50"], false),
        (&["--json", "-d", "0.1", "-n", "50"], false),
        (&["-b", "-d", "0.1", "-n", "50"], true),
        (&["serve", "--listen", "127.0.0.1:0", "-d", "0.2"], true),
        (&["--help"], false),
    ] {
        let status = with_closed_pipes(args, from_stderr, 10, Duration::from_secs(6));
        assert_ne!(
            status.code(),
            Some(101),
            "{args:?} panicked on a closed pipe"
        );
        assert!(status.success(), "{args:?}: {status}");
    }
}

#[test]
fn delays_out_of_range_are_refused_in_one_line() {
    for delay in [
        "1e-10", "0.001", "1e19", "9.3e18", "86401", "inf", "nan", "0",
    ] {
        for mode in [&["-b", "-n", "1"][..], &[], &["serve"]] {
            let mut args: Vec<&str> = mode.to_vec();
            args.extend(["-d", delay]);
            let out = Command::new(profiler_bin())
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("running profiler");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
            assert!(
                err.contains("seconds") && err.starts_with("profiler: "),
                "{args:?}: says the range: {err}"
            );
        }
    }
}
