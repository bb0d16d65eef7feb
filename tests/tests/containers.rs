//! Containers made without an engine: fresh cgroup v2 groups and `unshare` namespaces. From the
//! host, each group's I/O is attributed to it; from inside, the profiler picks a working source,
//! reports the others with their reasons, and shows the namespace's own pids.

use std::process::Command;

use profiler_tests::{profiler_bin, require_root, settle, Group, Run, Scratch, Workload};
use serde_json::Value;

fn per_container_totals(source: &str) {
    require_root();
    let s = Scratch::new(&format!("containers-{source}"));
    let (a, b) = (
        Group::new(format!("profiler-test-{}-{source}-a", std::process::id())),
        Group::new(format!("profiler-test-{}-{source}-b", std::process::id())),
    );
    const B: u64 = 4096;
    let (na, nb) = (300u64, 700u64);
    let mut wa = Workload::start(&[format!("write:{}:{na}:{B}", s.path("a"))]);
    let mut wb = Workload::start(&[format!("write:{}:{nb}:{B}", s.path("b"))]);
    a.adopt(wa.pid());
    b.adopt(wb.pid());
    let (pa, pb) = (wa.pid().to_string(), wb.pid().to_string());
    let run = Run::start(&[
        "--source",
        source,
        "--group",
        "container",
        "--json",
        "-b",
        "-n",
        "2",
        "-d",
        "1",
        "-p",
        &pa,
        "-p",
        &pb,
    ]);
    settle();
    wa.run_ops();
    wb.run_ops();
    let (status, lines, err) = run.finish();
    assert!(status.success(), "{source}: {err}");
    let first: Value = serde_json::from_str(lines.first().expect("a refresh")).expect("JSON");
    let entry = |name: &str| {
        first["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["container"] == name)
            .unwrap_or_else(|| panic!("container {name} in {first}"))
            .clone()
    };
    for (group, n) in [(&a, na), (&b, nb)] {
        let e = entry(&group.name);
        assert_eq!(e["processes"], 1, "{e}");
        let wchar = e["delta"]["wchar"].as_u64().expect("wchar measured");
        if source == "taskstats" {
            // Rounded down to 1024 at both ends of the interval.
            assert!(
                wchar.abs_diff(n * B) < 1024,
                "{group:?} wchar {wchar} vs {}",
                n * B,
                group = group.name
            );
        } else {
            assert_eq!(wchar, n * B, "{} wchar", group.name);
            assert_eq!(e["delta"]["syscw"], n, "{} syscw", group.name);
        }
    }
    wa.finish();
    wb.finish();
}

#[test]
fn two_containers_get_their_own_io_with_ebpf() {
    per_container_totals("ebpf");
}

#[test]
fn two_containers_get_their_own_io_with_procfs() {
    per_container_totals("procfs");
}

#[test]
fn two_containers_get_their_own_io_with_taskstats() {
    per_container_totals("taskstats");
}

/// Runs the profiler as pid 1 of new pid, mount, network and cgroup namespaces.
fn inside(args: &[&str]) -> std::process::Output {
    Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--net",
            "--cgroup",
            "--mount",
        ])
        .arg(profiler_bin())
        .args(args)
        .output()
        .expect("running unshare")
}

#[test]
fn inside_the_namespaces_each_source_works_or_says_why() {
    require_root();
    let out = inside(&["--list-sources"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut available = 0;
    for source in ["taskstats", "ebpf", "procfs"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(source))
            .unwrap_or_else(|| panic!("{source} listed: {text}"));
        let status = line[source.len()..].trim();
        if status == "available"
            || status.starts_with("available:")
            || status.starts_with("available, but ")
        {
            available += 1;
        } else {
            let reason = status
                .strip_prefix("unavailable: ")
                .unwrap_or_else(|| panic!("{source}: {status}"));
            assert!(
                reason.len() > 10,
                "{source} says why it is unavailable: {status}"
            );
        }
    }
    assert!(
        available >= 1,
        "a privileged container has a working source: {text}"
    );
}

#[test]
fn inside_the_namespaces_the_namespace_pids_are_shown() {
    require_root();
    for source in ["auto", "ebpf", "procfs"] {
        let out = inside(&["--source", source, "--json", "-b", "-n", "1", "-d", "0.3"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{source}: {err}");
        assert!(
            err.contains("source: "),
            "{source} names the source it uses: {err}"
        );
        let json: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        let tasks = json["tasks"].as_array().expect("tasks");
        let me = tasks
            .iter()
            .find(|t| t["pid"] == 1)
            .unwrap_or_else(|| panic!("{source}: the profiler is pid 1 inside: {json}"));
        assert_eq!(me["command"], "profiler", "{source}");
        assert!(
            tasks
                .iter()
                .all(|t| t["pid"].as_u64().is_some_and(|p| p < 100)),
            "{source}: only namespace pids: {json}"
        );
    }
}

/// `unshare --net PROFILER ARGS`: root in the initial user and pid namespaces, in a network
/// namespace of its own, where the kernel sends taskstats' exit records to no listener.
fn in_own_network_namespace(args: &[&str]) -> std::process::Output {
    Command::new("unshare")
        .arg("--net")
        .arg(profiler_bin())
        .args(args)
        .output()
        .expect("running unshare")
}

#[test]
fn in_its_own_network_namespace_auto_prefers_a_source_that_sees_exits() {
    require_root();
    let out = in_own_network_namespace(&["-b", "-n", "1", "-d", "0.3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("source: "))
        .unwrap_or_else(|| panic!("a source line: {err}"));
    assert!(
        line.starts_with("source: ebpf (taskstats: misses tasks that exit between refreshes: ")
            && line.contains("initial network namespace")
            && line.contains("--network=host"),
        "{line}"
    );
}

#[test]
fn in_its_own_network_namespace_forced_taskstats_warns_once() {
    require_root();
    let out = in_own_network_namespace(&["--source", "taskstats", "-b", "-n", "2", "-d", "0.3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("source: taskstats\n"), "{err}");
    let list = in_own_network_namespace(&["--list-sources"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.lines().any(|l| l.starts_with("taskstats")
            && l.contains("available, but misses tasks that exit between refreshes")),
        "--list-sources says it too: {listed}"
    );
    assert_eq!(
        err.matches(
            "taskstats: misses tasks that exit between refreshes: the exit listener registered but"
        )
        .count(),
        1,
        "said once: {err}"
    );
}

#[test]
fn a_container_filter_that_matches_nothing_says_so_once() {
    require_root();
    let out = Command::new(profiler_bin())
        .args(["-b", "-n", "2", "-d", "0.3", "--container", "4f1c2d3e4f5a"])
        .args(["--container", "host"])
        .output()
        .expect("running profiler");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("matches none of the containers seen"))
        .collect();
    assert_eq!(
        said.len(),
        1,
        "said once, for the filter that matches nothing: {err}"
    );
    assert!(
        said[0].starts_with("profiler: --container 4f1c2d3e4f5a matches none")
            && said[0].contains("host"),
        "names the filter and the containers there are: {}",
        said[0]
    );
}
