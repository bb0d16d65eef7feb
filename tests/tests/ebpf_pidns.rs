//! The eBPF source run inside a new pid namespace (`unshare -p -f --mount-proc`): a child
//! there is reported under its pid in that namespace, with its exact I/O, and no task from
//! outside the namespace shows up.

use std::process::Command;

use profiler_tests::{profiler_bin, require_root, workload_bin, Scratch};
use serde_json::Value;

#[test]
fn a_child_in_a_new_pid_namespace_shows_with_its_namespace_pid() {
    require_root();
    const N: u64 = 200;
    const B: u64 = 100;
    let s = Scratch::new("ebpf-pidns");
    let (fifo, out) = (s.path("profiler.err"), s.path("out"));
    let (profiler_pid, workload_pid) = (s.path("profiler.pid"), s.path("workload.pid"));
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("running mkfifo");
    assert!(made.success(), "mkfifo {fifo}: {made}");
    // The shell is pid 1. It starts the profiler first (pid 2) and reads its stderr with
    // builtins only, so no other process takes a pid, until the profiler says its source is open
    // (the probes are attached by then); only then does it start the workload, so the
    // probes count all of the workload's I/O. The workload waits a little more before writing:
    // the profiler's baseline refresh, which it does not print, follows its source line, and a
    // task that ends before it would be reported only there. `$!` is each child's pid as the
    // namespace sees it. If the profiler dies first, `read` meets the end of the pipe and the
    // test fails below.
    let script = format!(
        "{profiler} --source ebpf --json -b -n 3 -d 1 2>{fifo} &\n\
         echo $! >{profiler_pid}\n\
         exec 3<{fifo}\n\
         while read -r line <&3; do\n\
         \x20 echo \"$line\" >&2\n\
         \x20 case \"$line\" in 'source: '*) break ;; esac\n\
         done\n\
         {workload} sleep:300 write:{out}:{N}:{B} &\n\
         echo $! >{workload_pid}\n\
         cat <&3 >&2 &\n\
         wait",
        profiler = profiler_bin().display(),
        workload = workload_bin().display(),
    );
    let run = Command::new("unshare")
        .args(["-p", "-f", "--mount-proc", "sh", "-c", &script])
        .output()
        .expect("running unshare");
    let said = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(
        run.status.success(),
        "the script failed ({}): {said}",
        run.status
    );
    let pid_of = |path: &str| -> u64 {
        std::fs::read_to_string(path)
            .expect("the script wrote the pid")
            .trim()
            .parse()
            .expect("a pid")
    };
    let (profiler_pid, workload_pid) = (pid_of(&profiler_pid), pid_of(&workload_pid));
    // The profiler's own threads take ids from the same namespace, so the workload's pid is
    // the next one free after them: small, and after the profiler's.
    assert_eq!(
        profiler_pid, 2,
        "the shell's first child in the new namespace"
    );
    assert!(
        (3..100).contains(&workload_pid),
        "the workload is a namespace pid: {workload_pid}"
    );

    let text = String::from_utf8(run.stdout).expect("utf-8 JSON");
    let objects: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(objects.len(), 3, "three refreshes: {text}{said}");
    let tasks: Vec<&Value> = objects
        .iter()
        .flat_map(|o| o["tasks"].as_array().expect("tasks"))
        .collect();
    for task in &tasks {
        let pid = task["pid"].as_u64().expect("a pid");
        assert!(
            pid < 1000,
            "only this namespace's pids, no host pid: {task}"
        );
    }
    assert!(
        tasks
            .iter()
            .any(|t| t["pid"] == profiler_pid && t["command"] == "profiler"),
        "the profiler sees itself as pid {profiler_pid}: {text}"
    );
    let workload = tasks
        .iter()
        .find(|t| t["command"] == "workload")
        .unwrap_or_else(|| panic!("the workload is reported: {text}"));
    assert_eq!(workload["pid"], workload_pid, "{workload}");
    assert_eq!(workload["tid"], workload_pid, "one thread: {workload}");
    // It wrote nothing before its ops, and every write came after the probes were attached.
    assert_eq!(workload["total"]["syscw"], N, "{workload}");
    assert_eq!(workload["total"]["wchar"], N * B, "{workload}");
}
