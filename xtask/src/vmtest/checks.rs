//! The checks each guest runs (the lines of init.sh's /checks.list) and what must be true of their
//! outputs on a given kernel. All parsing and asserting happens here, on the host.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::guest::Console;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Netns {
    Initial,
    New,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Btf {
    Shown,
    Hidden,
}

enum Kind {
    /// `profiler --list-sources`.
    ListSources,
    /// `profiler --source auto -b -n 2 -d 0.5 --json`.
    Auto,
    /// The workload on the ext4 disk, measured by `--source SOURCE`.
    Workload { btf: Btf, source: &'static str },
}

struct Check {
    name: &'static str,
    netns: Netns,
    kind: Kind,
}

const CHECKS: [Check; 10] = [
    Check {
        name: "list-sources",
        netns: Netns::Initial,
        kind: Kind::ListSources,
    },
    Check {
        name: "list-sources-netns",
        netns: Netns::New,
        kind: Kind::ListSources,
    },
    Check {
        name: "auto",
        netns: Netns::Initial,
        kind: Kind::Auto,
    },
    Check {
        name: "auto-netns",
        netns: Netns::New,
        kind: Kind::Auto,
    },
    Check {
        name: "workload-auto-netns",
        netns: Netns::New,
        kind: Kind::Workload {
            btf: Btf::Shown,
            source: "auto",
        },
    },
    Check {
        name: "workload-auto-netns-nobtf",
        netns: Netns::New,
        kind: Kind::Workload {
            btf: Btf::Hidden,
            source: "auto",
        },
    },
    Check {
        name: "workload-taskstats",
        netns: Netns::Initial,
        kind: Kind::Workload {
            btf: Btf::Shown,
            source: "taskstats",
        },
    },
    Check {
        name: "workload-ebpf",
        netns: Netns::Initial,
        kind: Kind::Workload {
            btf: Btf::Shown,
            source: "ebpf",
        },
    },
    Check {
        name: "workload-ebpf-nobtf",
        netns: Netns::Initial,
        kind: Kind::Workload {
            btf: Btf::Hidden,
            source: "ebpf",
        },
    },
    Check {
        name: "workload-procfs",
        netns: Netns::Initial,
        kind: Kind::Workload {
            btf: Btf::Shown,
            source: "procfs",
        },
    },
];

/// What the workload does (init.sh): 2048 writes of 4 KiB to a new file, then 2048 O_DIRECT reads
/// of it, so both disk counters move by at least this much.
const WORKLOAD_BYTES: u64 = 2048 * 4096;
const SOURCES: [&str; 3] = ["taskstats", "ebpf", "procfs"];
/// The counters compared with /proc/PID/io; the last two within DISK_TOLERANCE_PERCENT.
const FIELDS: [&str; 6] = [
    "rchar",
    "wchar",
    "syscr",
    "syscw",
    "read_bytes",
    "write_bytes",
];
const DISK_FIELDS: [&str; 2] = ["read_bytes", "write_bytes"];
const DISK_TOLERANCE_PERCENT: u64 = 1;
/// taskstats rounds every I/O field down to a multiple of this (KB_MASK).
const TASKSTATS_UNIT: u64 = 1024;

/// /checks.list for the guest: `run NAME NETNS ARGS…` or `workload NAME NETNS BTF SOURCE`.
pub fn guest_list() -> String {
    let mut list = String::new();
    for c in &CHECKS {
        let netns = match c.netns {
            Netns::Initial => "init",
            Netns::New => "new",
        };
        let line = match &c.kind {
            Kind::ListSources => format!("run {} {netns} --list-sources", c.name),
            Kind::Auto => format!("run {} {netns} --source auto -b -n 2 -d 0.5 --json", c.name),
            Kind::Workload { btf, source } => format!(
                "workload {} {netns} {} {source}",
                c.name,
                match btf {
                    Btf::Shown => "yes",
                    Btf::Hidden => "hidden",
                }
            ),
        };
        list.push_str(&line);
        list.push('\n');
    }
    list
}

/// The verdict on one check.
pub struct Outcome {
    pub name: String,
    pub what: String,
    pub pass: bool,
    pub detail: String,
}

/// Facts about the booted kernel that decide what is expected of it.
struct KernelFacts {
    /// Since about 5.19 the TASKSTATS family is visible from every network namespace.
    taskstats_in_netns: bool,
    /// /sys/kernel/btf/vmlinux exists: eBPF must take its task iterator (and measure IO>).
    btf: bool,
}

fn kernel_facts(release: &str, btf: bool) -> KernelFacts {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    KernelFacts {
        taskstats_in_netns: version >= (5, 19),
        btf,
    }
}

/// Judges every check from what the guest framed on its console.
pub fn evaluate(release: &str, console: &Console) -> Vec<Outcome> {
    let btf = console.file("info/btf").is_some_and(|b| b.trim() == "yes");
    let facts = kernel_facts(release, btf);
    CHECKS
        .iter()
        .map(|c| {
            let netns = match c.netns {
                Netns::Initial => "initial netns",
                Netns::New => "new netns (unshare -n)",
            };
            let (what, result) = match &c.kind {
                Kind::ListSources => (
                    format!("--list-sources, {netns}"),
                    list_sources(c, &facts, console),
                ),
                Kind::Auto => (
                    format!("--source auto -n 2 --json, {netns}"),
                    auto(c, console),
                ),
                Kind::Workload { btf, source } => (
                    format!(
                        "workload on ext4, --source {source}, {netns}, BTF {}",
                        match btf {
                            Btf::Shown => "present",
                            Btf::Hidden => "hidden",
                        }
                    ),
                    workload(c, source, &facts, console),
                ),
            };
            let (pass, detail) = match result {
                Ok(detail) => (true, detail),
                Err(detail) => (false, detail),
            };
            Outcome {
                name: c.name.to_string(),
                what,
                pass,
                detail,
            }
        })
        .collect()
}

type Verdict = Result<String, String>;

fn file<'a>(console: &'a Console, check: &Check, name: &str) -> Result<&'a str, String> {
    console
        .file(&format!("{}/{name}", check.name))
        .ok_or_else(|| format!("the guest reported no {name} for this check"))
}

fn first_line(text: &str) -> String {
    if text.trim().is_empty() {
        return "(nothing)".into();
    }
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut short: String = line.chars().take(240).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    let more = text.lines().filter(|l| !l.trim().is_empty()).count();
    if more > 1 {
        let _ = write!(short, " (+{} more lines)", more - 1);
    }
    short
}

/// The source auto must pick here: taskstats in the initial network namespace; in another,
/// eBPF, since there taskstats is invisible (before 5.19) or deaf to exits (the kernel sends
/// exit records to the initial network namespace only).
fn auto_source(netns: Netns) -> &'static str {
    if netns == Netns::Initial {
        "taskstats"
    } else {
        "ebpf"
    }
}

fn list_sources(c: &Check, facts: &KernelFacts, console: &Console) -> Verdict {
    let out = file(console, c, "stdout")?;
    let rc = file(console, c, "rc")?.trim();
    if rc != "0" {
        return Err(format!(
            "exit code {rc}: {}",
            first_line(file(console, c, "stderr").unwrap_or(""))
        ));
    }
    let mut status = BTreeMap::new();
    for line in out.lines() {
        if let Some((name, rest)) = line.split_once(char::is_whitespace) {
            if SOURCES.contains(&name) {
                status.insert(name, rest.trim().to_string());
            }
        }
    }
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for source in SOURCES {
        let want_available =
            !(source == "taskstats" && c.netns == Netns::New && !facts.taskstats_in_netns);
        match status.get(source) {
            None => problems.push(format!("{source} not listed")),
            Some(s) => {
                // "available", "available: how" (e.g. which eBPF path), or "available, but"
                // what it misses (taskstats deaf to exits in a new network namespace, procfs).
                let available = s == "available"
                    || s.starts_with("available:")
                    || s.starts_with("available, but ");
                seen.push(format!("{source} {}", first_line(s)));
                if source == "taskstats"
                    && c.netns == Netns::New
                    && available
                    && !s.starts_with("available, but misses tasks that exit")
                {
                    problems.push(format!(
                        "taskstats: {} (expected it to say it misses exits: the kernel sends \
                         them to the initial network namespace only)",
                        first_line(s)
                    ));
                }
                if source == "ebpf" && facts.btf && !s.starts_with("available: task iterator") {
                    problems.push(format!(
                        "ebpf: {} (expected its task iterator: the kernel has BTF)",
                        first_line(s)
                    ));
                }
                if available != want_available {
                    problems.push(format!(
                        "{source}: {} (expected {})",
                        first_line(s),
                        if want_available {
                            "available"
                        } else {
                            "unavailable"
                        }
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(seen.join("; "))
    } else {
        Err(problems.join("; "))
    }
}

/// The `source:` announcement: one line, naming `want` (and for a fallback, why taskstats did
/// not answer), and no other stderr lines than the counters it cannot measure.
fn announcement(stderr: &str, want: &str, fallback_from: Option<&str>) -> Verdict {
    let announced: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("source:"))
        .collect();
    let [line] = announced.as_slice() else {
        return Err(format!(
            "expected one `source:` line on stderr, got {}: {}",
            announced.len(),
            first_line(stderr)
        ));
    };
    let prefix = match fallback_from {
        Some(from) => format!("source: {want} ({from}: "),
        None => format!("source: {want}"),
    };
    if !line.starts_with(&prefix) {
        return Err(format!(
            "announced `{}`, expected `{prefix}…`",
            first_line(line)
        ));
    }
    if fallback_from.is_some() && !line.ends_with(')') {
        return Err(format!(
            "the announcement goes on past its line (a multi-line message?): `{}`",
            first_line(line)
        ));
    }
    // Besides it: the counters a source cannot measure, and log messages (`[WARN ] …`), one line
    // each. Anything else is the tail of a message that spans lines, such as a verifier log.
    let stray: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("source:") && !l.trim().is_empty())
        .filter(|l| !is_log_line(l))
        .filter(|l| {
            !SOURCES.iter().any(|s| {
                l.starts_with(&format!("{s}: "))
                    && (l.contains(" unavailable: ") || l.contains(": misses tasks that exit"))
            })
        })
        .collect();
    if let Some(first) = stray.first() {
        return Err(format!(
            "{} unexpected stderr line(s) besides the announcement (a multi-line message?), first: `{}`",
            stray.len(),
            first_line(first)
        ));
    }
    let notes: Vec<String> = stderr
        .lines()
        .filter(|l| is_log_line(l))
        .map(first_line)
        .collect();
    if notes.is_empty() {
        Ok(line.to_string())
    } else {
        Ok(format!("{line} (logged: {})", notes.join(" | ")))
    }
}

/// A line of env_logger's output, e.g. `[WARN ] ebpf: …`.
fn is_log_line(line: &str) -> bool {
    ["[ERROR]", "[WARN ]", "[INFO ]", "[DEBUG]", "[TRACE]"]
        .iter()
        .any(|level| line.starts_with(level))
}

fn auto(c: &Check, console: &Console) -> Verdict {
    let rc = file(console, c, "rc")?.trim();
    let stderr = file(console, c, "stderr")?;
    if rc != "0" {
        return Err(format!("exit code {rc}: {}", first_line(stderr)));
    }
    let want = auto_source(c.netns);
    let fallback = (want != "taskstats").then_some("taskstats");
    let line = announcement(stderr, want, fallback)?;
    let out = file(console, c, "stdout")?;
    let refreshes: Vec<Value> = out
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("stdout is not JSON lines ({e}): {}", first_line(out)))?;
    if refreshes.len() != 2 {
        return Err(format!("{} refreshes, expected 2", refreshes.len()));
    }
    for r in &refreshes {
        let source = r.get("source").and_then(Value::as_str).unwrap_or("?");
        if source != want {
            return Err(format!("JSON says source {source}, expected {want}"));
        }
        let tasks = r.get("tasks").and_then(Value::as_array).map_or(0, Vec::len);
        if tasks == 0 {
            return Err("a refresh lists no tasks".into());
        }
    }
    let tasks = refreshes[1]["tasks"].as_array().map_or(0, Vec::len);
    Ok(format!("{line}; 2 refreshes, {tasks} tasks"))
}

fn proc_io(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut io = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not /proc/PID/io: `{line}`"))?;
        let value = value
            .trim()
            .parse()
            .map_err(|_| format!("not /proc/PID/io: `{line}`"))?;
        io.insert(key.trim().to_string(), value);
    }
    if io.is_empty() {
        return Err("the guest could not read the workload's /proc/PID/io".into());
    }
    Ok(io)
}

/// The workload's `total` counters in one refresh.
fn totals_of(
    refresh: &str,
    pid: u64,
    which: &str,
) -> Result<BTreeMap<String, Option<u64>>, String> {
    let task = task_of(refresh, pid, which)?;
    let total = task
        .get("total")
        .ok_or_else(|| format!("the workload's entry {which} has no total"))?;
    Ok(FIELDS
        .iter()
        .map(|f| (f.to_string(), total.get(*f).and_then(Value::as_u64)))
        .collect())
}

/// The workload's entry (its main thread) in one refresh.
fn task_of(refresh: &str, pid: u64, which: &str) -> Result<Value, String> {
    let json: Value = serde_json::from_str(refresh)
        .map_err(|e| format!("the refresh {which} is not JSON ({e})"))?;
    let tasks = json
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("the refresh {which} has no tasks"))?;
    let task = tasks
        .iter()
        .find(|t| {
            t.get("pid").and_then(Value::as_u64) == Some(pid)
                && t.get("tid")
                    .and_then(Value::as_u64)
                    .is_none_or(|tid| tid == pid)
        })
        .cloned()
        .ok_or_else(|| format!("the workload (pid {pid}) is missing from the refresh {which}"))?;
    Ok(task)
}

fn workload(c: &Check, forced: &str, facts: &KernelFacts, console: &Console) -> Verdict {
    let want = if forced == "auto" {
        auto_source(c.netns)
    } else {
        forced
    };
    let meta: BTreeMap<&str, &str> = file(console, c, "meta")?
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let stderr = file(console, c, "stderr")?;
    if let Some(error) = meta.get("error") {
        return Err(format!(
            "{error} (profiler exit code {}): {}",
            meta.get("profiler_rc").unwrap_or(&"?"),
            first_line(stderr)
        ));
    }
    let fallback = (forced == "auto" && want != "taskstats").then_some("taskstats");
    // A wrong announcement fails the check, and the counters are still judged and shown.
    let (line, announced) = match announcement(stderr, want, fallback) {
        Ok(line) => (line, true),
        Err(e) => (e, false),
    };
    if meta.get("workload_rc") != Some(&"0") {
        return Err(format!(
            "the workload failed (exit code {})",
            meta.get("workload_rc").unwrap_or(&"?")
        ));
    }
    let pid: u64 = meta
        .get("pid")
        .and_then(|p| p.parse().ok())
        .ok_or("the guest reported no workload pid")?;
    let before = totals_of(file(console, c, "json_before")?, pid, "before")?;
    let after = totals_of(file(console, c, "json_after")?, pid, "after")?;
    let source = serde_json::from_str::<Value>(file(console, c, "json_after")?)
        .ok()
        .and_then(|v| v.get("source").and_then(Value::as_str).map(String::from))
        .unwrap_or_default();
    if source != want {
        return Err(format!(
            "{line}; JSON says source {source}, expected {want}"
        ));
    }
    // With BTF, eBPF measures the workload's I/O wait itself (O_DIRECT reads wait for the
    // disk); without, it says IO> is unavailable rather than showing 0.
    if want == "ebpf" {
        let btf_shown = matches!(
            c.kind,
            Kind::Workload {
                btf: Btf::Shown,
                ..
            }
        );
        let blkio = |refresh: &str| -> Result<Option<u64>, String> {
            Ok(task_of(refresh, pid, "for IO>")?
                .get("total")
                .and_then(|t| t.get("blkio_delay_ns"))
                .and_then(Value::as_u64))
        };
        let (b, a) = (
            blkio(file(console, c, "json_before")?)?,
            blkio(file(console, c, "json_after")?)?,
        );
        match (facts.btf && btf_shown, b, a) {
            (true, Some(b), Some(a)) if a > b => {}
            (true, b, a) => {
                return Err(format!(
                    "{line}; IO> not measured by eBPF with BTF: blkio_delay_ns {b:?} -> {a:?}"
                ))
            }
            (false, None, None) => {}
            (false, b, a) => {
                return Err(format!(
                    "{line}; without BTF blkio_delay_ns must be unavailable, got {b:?} -> {a:?}"
                ))
            }
        }
    }
    let io_before = proc_io(file(console, c, "io_before")?)?;
    let io_after = proc_io(file(console, c, "io_after")?)?;

    let mut problems = Vec::new();
    let mut shown = Vec::new();
    for field in FIELDS {
        let (Some(&pb), Some(&pa)) = (io_before.get(field), io_after.get(field)) else {
            return Err(format!("/proc/PID/io has no {field}"));
        };
        let proc_delta = pa.saturating_sub(pb);
        if DISK_FIELDS.contains(&field) && proc_delta < WORKLOAD_BYTES {
            return Err(format!(
                "the workload's I/O did not reach the disk: /proc {field} grew by {proc_delta}, \
                 expected at least {WORKLOAD_BYTES}"
            ));
        }
        // taskstats reports each value rounded down: compare with /proc rounded the same way.
        let expected = if want == "taskstats" {
            pa / TASKSTATS_UNIT * TASKSTATS_UNIT - pb / TASKSTATS_UNIT * TASKSTATS_UNIT
        } else {
            proc_delta
        };
        let got = match (before[field], after[field]) {
            (Some(b), Some(a)) => a.checked_sub(b),
            _ => {
                problems.push(format!(
                    "{field}: n/a (/proc +{expected}){}",
                    unavailable_reason(stderr, field)
                        .map(|r| format!(", the profiler says: {r}"))
                        .unwrap_or_default()
                ));
                continue;
            }
        };
        let Some(got) = got else {
            problems.push(format!("{field}: went backwards (expected +{expected})"));
            continue;
        };
        let ok = if DISK_FIELDS.contains(&field) {
            got.abs_diff(expected) * 100 <= expected * DISK_TOLERANCE_PERCENT
        } else {
            got == expected
        };
        if ok && got == expected {
            shown.push(format!("{field} {got}"));
        } else if ok {
            shown.push(format!("{field} {got} (/proc +{expected})"));
        } else {
            problems.push(format!(
                "{field}: profiler +{got}, /proc +{expected}{}",
                if DISK_FIELDS.contains(&field) {
                    " (within 1% expected)"
                } else {
                    ""
                }
            ));
        }
    }
    if problems.is_empty() && announced {
        Ok(format!("{line}; {} as /proc says", shown.join(", ")))
    } else if problems.is_empty() {
        Err(format!(
            "{line}; the counters agree with /proc: {}",
            shown.join(", ")
        ))
    } else {
        Err(format!("{line}; {}", problems.join("; ")))
    }
}

/// The reason the profiler gave (stderr: `SOURCE: a, b unavailable: REASON`) for not measuring
/// `field`.
fn unavailable_reason<'a>(stderr: &'a str, field: &str) -> Option<&'a str> {
    stderr.lines().find_map(|l| {
        let (counters, reason) = l.split_once(" unavailable: ")?;
        let (_, counters) = counters.split_once(": ")?;
        counters.split(", ").any(|c| c == field).then_some(reason)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taskstats_is_expected_in_a_netns_from_5_19() {
        assert!(!kernel_facts("5.10.0-32-cloud-amd64", true).taskstats_in_netns);
        assert!(kernel_facts("5.19.0", true).taskstats_in_netns);
        assert!(kernel_facts("6.1.0-50-cloud-amd64", true).taskstats_in_netns);
    }

    #[test]
    fn a_multi_line_announcement_is_refused() {
        let one = "source: ebpf (taskstats: family not found)\nebpf: cancelled_write_bytes unavailable: no BTF\n";
        assert!(announcement(one, "ebpf", Some("taskstats")).is_ok());
        let warned =
            "[WARN ] ebpf: task iterator unavailable: x; counting with tracepoints\nsource: ebpf\n";
        let ok = announcement(warned, "ebpf", None).expect("a one-line log message is allowed");
        assert!(ok.contains("logged: [WARN ] ebpf: task iterator"), "{ok}");
        let verifier = "source: ebpf\n[WARN ] ebpf: verifier:\n0: (79) r8 = *(u64 *)(r1 +8)\n";
        assert!(
            announcement(verifier, "ebpf", None).is_err(),
            "a log message spanning lines is refused"
        );
        let multi = "source: ebpf (taskstats: family not found; ebpf: verifier:\n0: (79) r1 = *(u64 *)(r1 +0)\n)\n";
        let err = announcement(multi, "ebpf", Some("taskstats")).expect_err("multi-line refused");
        assert!(err.contains("goes on past its line"), "{err}");
        assert!(announcement(
            "source: procfs (taskstats: x; ebpf: y)\n",
            "ebpf",
            Some("taskstats")
        )
        .is_err());
    }

    fn console(files: &[(&str, &str)]) -> Console {
        Console {
            files: files
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            text: String::new(),
            done: true,
            fatal: None,
            cut_short: None,
            elapsed: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn list_sources_accepts_an_available_source_with_its_detail() {
        let out = "taskstats  unavailable: family not found\n           needs: x\n\
                   ebpf       available: classic tracepoints (syscall hook)\n           needs: y\n\
                   procfs     available\n           needs: z";
        let c = console(&[
            ("list-sources-netns/stdout", out),
            ("list-sources-netns/rc", "0"),
        ]);
        let check = &CHECKS[1];
        assert_eq!(check.name, "list-sources-netns");
        let old = kernel_facts("5.10.0-32-cloud-amd64", false);
        assert!(
            list_sources(check, &old, &c).is_ok(),
            "taskstats unavailable before 5.19"
        );
        let with_btf = kernel_facts("5.10.0-32-cloud-amd64", true);
        let err = list_sources(check, &with_btf, &c).expect_err("the iterator expected with BTF");
        assert!(err.contains("expected its task iterator"), "{err}");
        let new = kernel_facts("6.1.0-50-cloud-amd64", false);
        let err = list_sources(check, &new, &c).expect_err("taskstats expected from 5.19");
        assert!(err.starts_with("taskstats: unavailable"), "{err}");
    }

    #[test]
    fn the_reason_for_an_unavailable_counter_is_found() {
        let stderr = "source: ebpf\nebpf: read_bytes, write_bytes unavailable: no BTF here\n";
        assert_eq!(
            unavailable_reason(stderr, "write_bytes"),
            Some("no BTF here")
        );
        assert_eq!(unavailable_reason(stderr, "rchar"), None);
    }

    #[test]
    fn totals_are_found_by_pid() {
        let refresh = r#"{"source":"ebpf","tasks":[{"pid":7,"tid":7,"total":{"rchar":1,"wchar":2,"syscr":3,"syscw":4,"read_bytes":5,"write_bytes":null}}]}"#;
        let t = totals_of(refresh, 7, "before").expect("pid 7 present");
        assert_eq!(t["syscw"], Some(4));
        assert_eq!(t["write_bytes"], None);
        assert!(totals_of(refresh, 8, "before").is_err());
    }
}
