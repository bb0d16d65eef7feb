//! The `profiler` binary as a user meets it: errors for bad input and missing privileges,
//! and batch/JSON output that matches a child's known I/O.

use std::process::Command;

use profiler_tests::{
    profiler_as_nobody, profiler_bin, require_root, settle, Run, Scratch, Workload,
};
use serde_json::Value;

fn profiler(args: &[&str]) -> std::process::Output {
    Command::new(profiler_bin())
        .args(args)
        .output()
        .expect("running profiler")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    for (args, says) in [
        (&["--source", "disk"][..], "unknown source `disk`"),
        (&["-d", "0"][..], "more than 0 seconds"),
        (&["-d", "-1"][..], "more than 0 seconds"),
        (&["-n", "0"][..], "at least 1"),
        (&["--no-such-flag"][..], "--no-such-flag"),
        (
            &["-b", "-u", "no-such-user-here"][..],
            "no such user: no-such-user-here",
        ),
        (&["-b", "-p", "4000000"][..], "no process with pid 4000000"),
    ] {
        let out = profiler(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(says),
            "{args:?} should say {says:?}, said: {}",
            stderr(&out)
        );
    }
}

/// Runs the profiler as `nobody`, with no capabilities.
fn as_nobody(args: &[&str]) -> std::process::Output {
    profiler_as_nobody()
        .args(args)
        .output()
        .expect("running setpriv")
}

#[test]
fn unprivileged_run_names_the_missing_privileges_and_fails() {
    require_root();
    // As `nobody`, with no capabilities: no source can see every task.
    let out = as_nobody(&["-b", "-n", "1"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "must fail unprivileged: {err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "names eBPF's capabilities: {err}"
    );
    assert!(
        err.contains("CAP_SYS_PTRACE"),
        "names what procfs needs for other users' tasks: {err}"
    );
    assert!(err.contains("run as root"), "says how to get them: {err}");
}

#[test]
fn forced_ebpf_as_nobody_is_exit_code_2_with_the_reason() {
    require_root();
    let out = as_nobody(&["--source", "ebpf", "-b", "-n", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not permitted to load eBPF programs"),
        "{}",
        stderr(&out)
    );
}

/// Runs `profiler --json -b -n 2 -p CHILD` around a child writing N×B bytes; the second object
/// (the first covers the ops) must carry exactly that I/O.
fn json_matches_known_io(source: &str) {
    require_root();
    const N: u64 = 300;
    const B: u64 = 4096;
    let s = Scratch::new(&format!("cli-json-{source}"));
    let mut child = Workload::start(&[format!("write:{}:{N}:{B}", s.path("out"))]);
    let pid = child.pid().to_string();
    // The ops run inside the first interval.
    let run = Run::start(&[
        "--source", source, "--json", "-b", "-n", "2", "-d", "1", "-p", &pid,
    ]);
    settle();
    child.run_ops();
    let (status, lines, err) = run.finish();
    assert!(status.success(), "{err}");
    let text = lines.join("\n");
    let objects: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(objects.len(), 2, "two refreshes: {text}");
    let first = &objects[0];
    assert_eq!(first["source"], source);
    let task = first["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["tid"] == child.pid())
        .unwrap_or_else(|| panic!("child {pid} in {first}"));
    assert_eq!(task["command"], "workload");
    assert_eq!(task["delta"]["syscw"], N, "{task}");
    assert_eq!(task["delta"]["wchar"], N * B, "{task}");
    for key in [
        "rchar",
        "syscr",
        "read_bytes",
        "write_bytes",
        "cancelled_write_bytes",
        "blkio_delay_ns",
        "swapin_delay_ns",
    ] {
        assert!(task["delta"].get(key).is_some(), "delta has {key}");
        assert!(task["total"].get(key).is_some(), "total has {key}");
    }
    child.finish();
}

#[test]
fn json_of_a_child_matches_its_io_with_ebpf() {
    json_matches_known_io("ebpf");
}

#[test]
fn json_of_a_child_matches_its_io_with_procfs() {
    json_matches_known_io("procfs");
}

#[test]
fn ebpf_log_messages_reach_the_user_at_v() {
    require_root();
    let out = profiler(&["--source", "ebpf", "-b", "-n", "1", "-d", "0.2", "-v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("probes active: the task iterator read all tasks"),
        "{}",
        stderr(&out)
    );
}

/// IDs of the eBPF programs that `pid` holds, loaded or linked, from its fdinfo.
fn held_programs(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .expect("fdinfo")
        .flatten()
    {
        let info = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if info.contains("link_id:") || info.contains("prog_type:") {
            ids.extend(
                info.lines()
                    .filter_map(|l| l.strip_prefix("prog_id:"))
                    .filter_map(|v| v.trim().parse::<u32>().ok()),
            );
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn program_exists(id: u32) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .output()
        .expect("bpftool")
        .status
        .success()
}

#[test]
fn sigterm_detaches_the_probes() {
    require_root();
    // Bounded by -n, so a failed assertion cannot leave it running.
    let child = Command::new(profiler_bin())
        .args(["--source", "ebpf", "-b", "-d", "0.5", "-n", "20"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting profiler");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let mut ids = held_programs(child.id());
    while ids.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        ids = held_programs(child.id());
    }
    assert!(
        ids.len() >= 2,
        "the task iterator and the exit probe are loaded while profiler runs: {ids:?}"
    );
    assert!(
        ids.iter().all(|&id| program_exists(id)),
        "bpftool sees them"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait_with_output().expect("waiting").status;
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    // The kernel frees programs after an RCU grace period: give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut left: Vec<u32> = ids.clone();
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        left.retain(|&id| program_exists(id));
    }
    assert!(
        left.is_empty(),
        "nothing stays loaded or attached after SIGTERM: {left:?}"
    );
}
